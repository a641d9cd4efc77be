//! Delivering a received message into tag values: will messages first, then routing to one
//! station, the station's command and ACK_ID gate, the one-pass JSON extraction, the payload's
//! time stamp, and the order in which the JA= and IN_* tags are set.

use std::collections::VecDeque;
use std::time::Instant;

use super::{log_to, Line, Station};
use crate::ack_gate::{Held, HeldLimit, Offered};
use crate::codec::{Publish, QoS};
use crate::event::{
    Event, LogLevel, RouteOutcome, FLAG_DUPLICATE, FLAG_RETAINED, FLAG_TIME_FROM_PAYLOAD,
    FLAG_VALID, ROUTE_PAYLOAD_MAX,
};
use crate::ids::{StationIndex, TagIndex};
use crate::json_value;
use crate::payload::{self, Stamp};
use crate::station::StationCommand;
use crate::tag::TagAddress;
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
            self.devices_lost(&hit, &p.topic, wall_ns);
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
        let Some(i) = self.router.route(&p.topic).map(StationIndex) else {
            self.stats.unrouted += 1;
            self.trace(&p, RouteOutcome::Unrouted, None, wall_ns);
            let text = format!(
                "message matches no station topic={} unrouted={}",
                payload::escape(&p.topic),
                self.stats.unrouted
            );
            self.log(LogLevel::Debug, text);
            self.session.confirm(p.pkid, self.session.epoch());
            return;
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
                payload::escape(&p.topic)
            );
            self.trace(&p, outcome, Some(i), wall_ns);
            self.log(LogLevel::Debug, text);
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
        self.trace(&p, RouteOutcome::Taken, Some(i), wall_ns);
        self.station_heard(i, now, wall_ns);
        let s = &mut self.stations[i];
        let epoch = self.session.epoch();
        if !s.gated {
            self.fill_inputs(i, &p, wall_ns);
            self.session.confirm(p.pkid, epoch);
            return;
        }
        let held = Held {
            publish: p,
            wall_ns,
            epoch,
        };
        if let Offered::Show(now_shown) = s
            .gate
            .offer(held, HeldLimit::station(s.params.max_held_messages))
        {
            self.show(i, now_shown, now);
            return;
        }
        if let Some(warning) = s.gate.warning() {
            let text = warning.text(&s.name);
            self.log(LogLevel::Warn, text);
        }
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
            topic: p.topic.clone(),
            payload: route_excerpt(&p.payload),
            outcome,
            station: station.map(|i| self.stations[i].id),
            time_ns: wall_ns,
        });
    }

    /// The stations `p` is the will message of: a message on a station's will topic (with its
    /// will payload, when one is set) says the device is gone. `None` when it is no will message.
    fn will_stations(&self, p: &Publish) -> Option<Vec<StationIndex>> {
        let stations = self.wills.get(&p.topic)?;
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

    /// Sets a station's input tags from a message: with a JSON payload the JA= tags first, then
    /// IN_TOPIC, IN_DATA, IN_ID, so that a script triggered by IN_ID sees the whole message.
    /// Every value carries the payload's time stamp when there is one.
    pub(super) fn fill_inputs(&mut self, i: StationIndex, p: &Publish, wall_ns: i64) {
        let st = &self.stations[i];
        let mut flags = FLAG_VALID;
        if p.dup && p.qos == QoS::AtLeastOnce {
            flags |= FLAG_DUPLICATE;
        }
        if p.retain {
            flags |= FLAG_RETAINED;
        }
        let mut time_ns = wall_ns;
        // The payload is read in one pass for the addressed values only (json_extract.rs).
        let mut values = std::mem::take(&mut self.extracted);
        let read = if st.payload.json && (st.json_tags || st.payload.time_field.is_some()) {
            let read = st.extract.extract(&p.payload, &mut values);
            match &read {
                Ok(()) => {
                    let time_value = st
                        .payload
                        .time_field
                        .as_ref()
                        .and_then(|_| values.last())
                        .and_then(Option::as_ref)
                        .map(|f| &f.value);
                    if let Some(ns) = payload_time(st, &p.topic, time_value, &mut self.events) {
                        time_ns = ns;
                        flags |= FLAG_TIME_FROM_PAYLOAD;
                    }
                }
                Err(e) => {
                    self.stats.payload_errors += 1;
                    let text = format!(
                        "station '{}': the payload of '{}' is not JSON ({}); its JA= tags are \
                         invalid",
                        st.name,
                        payload::escape(&p.topic),
                        payload::escape(e),
                    );
                    log_to(&mut self.events, LogLevel::Warn, text);
                }
            }
            Some(read.is_ok())
        } else {
            None
        };

        if let Some(parsed) = read {
            let mut slot = 0;
            for k in 0..self.stations[i].tags.len() {
                let t = self.stations[i].tags[k];
                let TagAddress::Json(path) = &self.tags[t].address else {
                    continue;
                };
                let found = values.get(slot).and_then(Option::as_ref);
                slot += 1;
                let value = if !parsed {
                    None
                } else {
                    match found {
                        None => {
                            self.warn_invalid(
                                t,
                                &format!(
                                    "JA={path} is not in the payload of '{}'",
                                    payload::escape(&p.topic)
                                ),
                            );
                            None
                        }
                        Some(f) => {
                            let text = f.text(&p.payload);
                            match json_value::from_json_text(&f.value, text, self.tags[t].ty) {
                                Ok(v) => Some(v),
                                Err(reason) => {
                                    let shown = payload::shorten(text);
                                    self.warn_invalid(t, &format!("JA={path} = {shown}: {reason}"));
                                    None
                                }
                            }
                        }
                    }
                };
                self.set_value(t, value, time_ns, flags);
            }
        }
        self.extracted = values;

        if self.stations[i].in_tags {
            self.fill_in_tags(i, p, time_ns, flags);
        }

        if self.stations[i].device_lost {
            self.stations[i].device_lost = false;
            self.refresh_station(i, "data received", wall_ns);
        }
    }

    /// IN_TOPIC, IN_DATA and IN_ID of a station, in that order.
    fn fill_in_tags(&mut self, i: StationIndex, p: &Publish, time_ns: i64, flags: u32) {
        let text = match std::str::from_utf8(&p.payload) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(e) => {
                let text = format!(
                    "payload is not valid UTF-8 ({e}); invalid bytes are replaced topic={}",
                    payload::escape(&p.topic)
                );
                self.log(LogLevel::Warn, text);
                String::from_utf8_lossy(&p.payload)
            }
        };
        let id = p.pkid.to_string();
        for (address, text) in [
            (TagAddress::InTopic, p.topic.as_str()),
            (TagAddress::InData, &text),
            (TagAddress::InId, id.as_str()),
        ] {
            for k in 0..self.stations[i].tags.len() {
                let t = self.stations[i].tags[k];
                if self.tags[t].address != address {
                    continue;
                }
                let value = match Value::parse(text, self.tags[t].ty) {
                    Ok(v) => Some(v),
                    Err(reason) => {
                        self.warn_invalid(t, &format!("{address}: {reason}"));
                        None
                    }
                };
                self.set_value(t, value, time_ns, flags);
            }
        }
    }

    fn warn_invalid(&mut self, t: TagIndex, why: &str) {
        let tag = &self.tags[t];
        let text = format!(
            "tag '{}.{}': {why}; the tag is invalid",
            self.stations[tag.station].name, tag.name
        );
        self.log(LogLevel::Warn, text);
    }

    fn set_value(&mut self, t: TagIndex, value: Option<Value>, time_ns: i64, flags: u32) {
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

/// The payload's time stamp, from the value found at the station's time field; a missing field
/// (unless Ignore Missing Time) or an unreadable one is warned about, and the caller keeps the
/// receive time.
fn payload_time(
    st: &Station,
    topic: &str,
    time_value: Option<&serde_json::Value>,
    events: &mut VecDeque<Event>,
) -> Option<i64> {
    let topic = payload::escape(topic);
    let text = match payload::stamp_from(&st.payload, time_value) {
        Stamp::Payload(ns) => return Some(ns),
        Stamp::None => return None,
        Stamp::Missing if st.payload.ignore_missing_time => return None,
        Stamp::Missing => format!(
            "station '{}': no time field '{}' in the payload of '{topic}'; the receive time is used",
            st.name,
            st.payload.time_field.as_ref().map_or(String::new(), |f| f.to_string()),
        ),
        Stamp::Unreadable(why) => format!(
            "station '{}': {why} (topic '{topic}'); the receive time is used",
            st.name,
        ),
    };
    log_to(events, LogLevel::Warn, text);
    None
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
