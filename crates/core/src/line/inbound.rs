//! Delivering a received message into tag values: will messages first, then routing to one
//! station, the station's command and ACK_ID gate, inflating a gzip payload, and the order in
//! which the payload's tags (reading.rs) and the IN_* tags are set.

use std::time::Instant;

use super::Line;
use crate::ack_gate::{Held, HeldLimit, Offered};
use crate::codec::{Publish, PublishProperties, QoS};
use crate::config::PayloadType;
use crate::event::{
    Event, LogLevel, RouteOutcome, FLAG_DUPLICATE, FLAG_RETAINED, FLAG_VALID, ROUTE_PAYLOAD_MAX,
};
use crate::gzip::{self, Encoding};
use crate::ids::{StationIndex, TagIndex};
use crate::payload::{self, PayloadError};
use crate::station::StationCommand;
use crate::tag::TagAddress;
use crate::text::hex;
use crate::value::Value;

impl Line {
    /// Routes a received message. Stations without ACK_ID get it at once and it is confirmed to
    /// the broker; a station with ACK_ID shows it when the previous one was confirmed.
    pub(super) fn deliver(&mut self, p: Publish, now: Instant, wall_ns: i64) {
        self.stats.received += 1;
        self.stats.bytes_received += p.payload.len() as u64;
        self.stats.last_message_ns = Some(wall_ns);
        if let Some(hit) = self.will_stations(&p) {
            self.stats.will_messages += 1;
            self.trace(&p, RouteOutcome::Will, hit.first().copied(), wall_ns);
            self.devices_lost(&hit, topic(&p), wall_ns);
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
        if self.edge.is_some() {
            self.deliver_edge(p, now, wall_ns);
            return;
        }
        if self.sparkplug.is_some() {
            self.deliver_sparkplug(p, now, wall_ns);
            return;
        }
        let routed = self.router.route(topic(&p)).map(StationIndex);
        let Some(i) = self.account(&p, routed, now, wall_ns) else {
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        };
        // An MQTT 5 Content-Type may say the payload is gzip.
        let encoding = content_type(&p).map_or(Encoding::Detect, Encoding::from_content_type);
        let s = &mut self.stations[i];
        let epoch = self.session.epoch();
        if !s.gated {
            self.fill_inputs_as(i, &p, encoding, wall_ns);
            self.session.confirm(p.pkid, epoch);
            return;
        }
        let held = Held {
            publish: p,
            wall_ns,
            epoch,
            encoding,
        };
        if let Offered::Show(now_shown) = s
            .gate
            .offer(held, HeldLimit::station(s.params.max_held_messages))
        {
            self.show(i, *now_shown, now);
            return;
        }
        if let Some(warning) = s.gate.warning() {
            let text = warning.text(&s.name);
            self.log(LogLevel::Warn, text);
        }
    }

    /// Counts and traces a message routed to `routed` (`None`: to no station). Returns the
    /// station when it is on and takes the message (its STALE clock restarts); a station that
    /// is off or simulated drops it.
    pub(super) fn account(
        &mut self,
        p: &Publish,
        routed: Option<StationIndex>,
        now: Instant,
        wall_ns: i64,
    ) -> Option<StationIndex> {
        let Some(i) = routed else {
            self.stats.unrouted += 1;
            self.trace(p, RouteOutcome::Unrouted, None, wall_ns);
            let text = format!(
                "message matches no station topic={} unrouted={}",
                payload::escape(topic(p)),
                self.stats.unrouted
            );
            self.log(LogLevel::Debug, text);
            return None;
        };
        let s = &mut self.stations[i];
        s.counters.received += 1;
        s.counters.last_message_ns = Some(wall_ns);
        let dropped = match s.command {
            StationCommand::On => None,
            StationCommand::Off => Some(RouteOutcome::StationOff),
            StationCommand::Simulate => Some(RouteOutcome::Simulated),
        };
        if let Some(outcome) = dropped {
            s.counters.dropped += 1;
            if outcome == RouteOutcome::StationOff {
                self.stats.dropped_off += 1;
            } else {
                self.stats.dropped_simulated += 1;
            }
            let text = format!(
                "message for a station that is off or simulated is dropped station={} topic={}",
                self.stations[i].name,
                payload::escape(topic(p))
            );
            self.trace(p, outcome, Some(i), wall_ns);
            self.log(LogLevel::Debug, text);
            return None;
        }
        self.trace(p, RouteOutcome::Taken, Some(i), wall_ns);
        self.station_heard(i, now, wall_ns);
        Some(i)
    }

    /// The routing trace's event for `p`, built only while the trace is on.
    fn trace(
        &mut self,
        p: &Publish,
        outcome: RouteOutcome,
        station: Option<StationIndex>,
        wall_ns: i64,
    ) {
        if !self.trace_routing {
            return;
        }
        self.events.push_back(Event::Route {
            topic: topic(p).to_string(),
            payload: route_excerpt(&p.payload),
            outcome,
            station: station.map(|i| self.stations[i].id),
            time_ns: wall_ns,
        });
    }

    /// The stations `p` is the will message of: a message on a station's will topic (with its
    /// will payload, when one is set) says the device is gone. `None` when it is no will message.
    fn will_stations(&self, p: &Publish) -> Option<Vec<StationIndex>> {
        let stations = self.wills.get(topic(p))?;
        let hit: Vec<StationIndex> = stations
            .iter()
            .copied()
            .filter(|&i| {
                let swp = &self.stations[i].params.will_payload;
                swp.is_empty() || swp.as_bytes() == &p.payload[..]
            })
            .collect();
        (!hit.is_empty()).then_some(hit)
    }

    /// The devices of these stations are gone: hard error until data comes again; the message is
    /// not data.
    fn devices_lost(&mut self, hit: &[StationIndex], topic: &str, wall_ns: i64) {
        let topic = payload::escape(topic);
        for &i in hit {
            let st = &mut self.stations[i];
            st.device_lost = true;
            let text = format!("station '{}': will message on '{topic}'", st.name);
            self.log(LogLevel::Info, text);
            let reason = format!("will message received on '{topic}'");
            self.refresh_station(i, &reason, wall_ns);
        }
    }

    /// Sets a station's input tags from a message: with a JSON or CSV payload the JA= or CSV=
    /// tags first, then IN_TOPIC, IN_DATA, IN_ID, so that a script triggered by IN_ID sees the
    /// whole message. Every value carries the payload's time stamp when there is one (a tag of
    /// a selected array item its item's). A gzip payload is inflated first (gzip.rs); with
    /// [`Encoding::Gzip`] (the message said so) the payload must be a gzip stream.
    pub(super) fn fill_inputs_as(
        &mut self,
        i: StationIndex,
        p: &Publish,
        encoding: Encoding,
        wall_ns: i64,
    ) {
        let mut flags = FLAG_VALID;
        if p.dup && p.qos == QoS::AtLeastOnce {
            flags |= FLAG_DUPLICATE;
        }
        if p.retain {
            flags |= FLAG_RETAINED;
        }
        let body = match gzip::inflate(&p.payload, encoding, self.config.max_decompressed_size) {
            Ok(body) => Some(body),
            Err(e) => {
                self.payload_error(i, topic(p), PayloadError::Gzip(e));
                None
            }
        };
        let (time_ns, flags) = match &body {
            Some(body) => self.read_payload(i, topic(p), body, wall_ns, flags),
            None => {
                self.invalidate_payload_tags(i, wall_ns, flags);
                (wall_ns, flags)
            }
        };

        if self.stations[i].in_tags {
            self.fill_in_tags(i, p, body.as_deref(), time_ns, flags);
        }

        if self.stations[i].device_lost {
            self.stations[i].device_lost = false;
            self.refresh_station(i, "data received", wall_ns);
        }
    }

    /// A payload the station cannot read at all (not JSON, not one CSV record, a gzip stream
    /// that does not inflate): one warning naming the station, the topic and the reason. The
    /// tags it concerns are invalidated by the caller.
    pub(super) fn payload_error(&mut self, i: StationIndex, topic: &str, error: PayloadError) {
        self.stats.payload_errors += 1;
        let st = &self.stations[i];
        let tags = match st.payload.payload_type {
            PayloadType::Json => Some("JA="),
            PayloadType::Csv => Some("CSV="),
            PayloadType::Text | PayloadType::SparkplugB | PayloadType::SparkplugEdge => None,
        };
        let invalid = match (tags, matches!(error, PayloadError::Gzip(_))) {
            (Some(t), false) => format!("its {t} tags are invalid"),
            (Some(t), true) => format!("its {t} tags and IN_DATA are invalid"),
            (None, _) => "IN_DATA is invalid".to_string(),
        };
        let text = format!(
            "station '{}': the payload of '{}' {}; {invalid}",
            st.name,
            payload::escape(topic),
            payload::escape(&error.to_string()),
        );
        self.log(LogLevel::Warn, text);
    }

    /// IN_TOPIC, IN_DATA and IN_ID of a station, in that order, after the MQTT 5 properties
    /// (IN_PROPERTY=, IN_CONTENT_TYPE, IN_RESPONSE_TOPIC, IN_CORRELATION_DATA), so that a script
    /// triggered by IN_ID sees them too. `body` is the payload as read (inflated when it was
    /// gzip); `None`: it could not be read, so IN_DATA is invalid.
    fn fill_in_tags(
        &mut self,
        i: StationIndex,
        p: &Publish,
        body: Option<&[u8]>,
        time_ns: i64,
        flags: u32,
    ) {
        if let Some(props) = &p.properties {
            self.fill_property_tags(i, props, time_ns, flags);
        }
        let text = match body.map(std::str::from_utf8) {
            None => None,
            Some(Ok(s)) => Some(std::borrow::Cow::Borrowed(s)),
            Some(Err(e)) => {
                let text = format!(
                    "payload is not valid UTF-8 ({e}); invalid bytes are replaced topic={}",
                    payload::escape(topic(p))
                );
                self.log(LogLevel::Warn, text);
                body.map(String::from_utf8_lossy)
            }
        };
        let id = p.pkid.to_string();
        for (address, text) in [
            (TagAddress::InTopic, Some(topic(p))),
            (TagAddress::InData, text.as_deref()),
            (TagAddress::InId, Some(id.as_str())),
        ] {
            for k in 0..self.stations[i].tags.len() {
                let t = self.stations[i].tags[k];
                if self.tags[t].address != address {
                    continue;
                }
                let value = match text.map(|text| Value::parse(text, self.tags[t].ty)) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(reason)) => {
                        self.warn_invalid(t, &format!("{address}: {reason}"));
                        None
                    }
                };
                self.set_value(t, value, time_ns, flags);
            }
        }
    }

    /// The station's tags bound to the message's MQTT 5 properties; a property the message does
    /// not carry makes its tag invalid. Correlation Data, binary, is shown in hexadecimal.
    fn fill_property_tags(
        &mut self,
        i: StationIndex,
        props: &PublishProperties,
        time_ns: i64,
        flags: u32,
    ) {
        for k in 0..self.stations[i].tags.len() {
            let t = self.stations[i].tags[k];
            let text = match &self.tags[t].address {
                TagAddress::InProperty(name) => props
                    .user_properties
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone()),
                TagAddress::InContentType => props.content_type.clone(),
                TagAddress::InResponseTopic => props.response_topic.clone(),
                TagAddress::InCorrelationData => props.correlation_data.as_deref().map(hex),
                _ => continue,
            };
            self.set_value(t, text.map(Value::Text), time_ns, flags);
        }
    }

    pub(super) fn warn_invalid(&mut self, t: TagIndex, why: &str) {
        let tag = &self.tags[t];
        let text = format!(
            "tag '{}.{}': {why}; the tag is invalid",
            self.stations[tag.station].name, tag.name
        );
        self.log(LogLevel::Warn, text);
    }

    pub(super) fn set_value(
        &mut self,
        t: TagIndex,
        value: Option<Value>,
        time_ns: i64,
        flags: u32,
    ) {
        let tag = &mut self.tags[t];
        tag.valid = value.is_some();
        self.events.push_back(Event::TagValue {
            station: self.stations[tag.station].id,
            tag: tag.id,
            flags: if value.is_some() {
                flags
            } else {
                flags & !FLAG_VALID
            },
            value,
            time_ns,
        });
    }
}

/// A payload as the routing trace shows it: lossy UTF-8, at most [`ROUTE_PAYLOAD_MAX`] bytes, cut
/// on a character boundary.
fn route_excerpt(payload: &[u8]) -> String {
    // A character cut at the byte limit becomes U+FFFD and is cut off below.
    let head = &payload[..payload.len().min(ROUTE_PAYLOAD_MAX)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    if text.len() > ROUTE_PAYLOAD_MAX {
        let mut end = ROUTE_PAYLOAD_MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The received message's Content Type (MQTT 5): one that names gzip announces a gzip payload
/// (gzip.rs).
fn content_type(p: &Publish) -> Option<&str> {
    p.properties.as_ref()?.content_type.as_deref()
}

/// A received message's topic. The codec made sure it is UTF-8 (and the session resolved its
/// topic alias), so the empty fallback is never used.
pub(super) fn topic(p: &Publish) -> &str {
    std::str::from_utf8(&p.topic).unwrap_or_default()
}
