//! Delivering a received message into tag values: will messages first, then routing to one
//! station, the station's command and ACK_ID gate, the one-pass JSON extraction, the payload's
//! time stamp, and the order in which the JA= and IN_* tags are set.

use std::collections::VecDeque;
use std::time::Instant;

use super::{log_to, Line, Station};
use crate::ack_gate::{Held, HeldLimit, Offered};
use crate::codec::{Publish, PublishProperties, QoS};
use crate::event::{
    Event, LogLevel, FLAG_DUPLICATE, FLAG_RETAINED, FLAG_TIME_FROM_PAYLOAD, FLAG_VALID,
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
        if self.will_message(&p, wall_ns) {
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
        let Some(i) = self.router.route(topic(&p)).map(StationIndex) else {
            self.unrouted += 1;
            let text = format!(
                "message matches no station topic={} unrouted={}",
                payload::escape(topic(&p)),
                self.unrouted
            );
            self.log(LogLevel::Debug, text);
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        };
        let s = &mut self.stations[i];
        if s.command != StationCommand::On {
            let text = format!(
                "message for a station that is off or simulated is dropped station={} topic={}",
                s.name,
                payload::escape(topic(&p))
            );
            self.log(LogLevel::Debug, text);
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
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
            self.show(i, *now_shown, now);
            return;
        }
        if let Some(warning) = s.gate.warning() {
            let text = warning.text(&s.name);
            self.log(LogLevel::Warn, text);
        }
    }

    /// A message on a station's will topic (with its will payload, when one is set) says the
    /// device is gone: the station goes to hard error and the message is not data.
    fn will_message(&mut self, p: &Publish, wall_ns: i64) -> bool {
        let Some(stations) = self.wills.get(topic(p)) else {
            return false;
        };
        let hit: Vec<StationIndex> = stations
            .iter()
            .copied()
            .filter(|&i| {
                let swp = &self.stations[i].params.will_payload;
                swp.is_empty() || swp.as_bytes() == &p.payload[..]
            })
            .collect();
        for &i in &hit {
            let st = &mut self.stations[i];
            st.device_lost = true;
            let topic = payload::escape(topic(p));
            let text = format!("station '{}': will message on '{topic}'", st.name);
            self.log(LogLevel::Info, text);
            let reason = format!("will message received on '{topic}'");
            self.refresh_station(i, &reason, wall_ns);
        }
        !hit.is_empty()
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
                    if let Some(ns) = payload_time(st, topic(p), time_value, &mut self.events) {
                        time_ns = ns;
                        flags |= FLAG_TIME_FROM_PAYLOAD;
                    }
                }
                Err(e) => {
                    let text = format!(
                        "station '{}': the payload of '{}' is not JSON ({}); its JA= tags are \
                         invalid",
                        st.name,
                        payload::escape(topic(p)),
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
                                    payload::escape(topic(p))
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

    /// IN_TOPIC, IN_DATA and IN_ID of a station, in that order, after the MQTT 5 properties
    /// (IN_PROPERTY=, IN_CONTENT_TYPE, IN_RESPONSE_TOPIC, IN_CORRELATION_DATA), so that a script
    /// triggered by IN_ID sees them too.
    fn fill_in_tags(&mut self, i: StationIndex, p: &Publish, time_ns: i64, flags: u32) {
        if let Some(props) = &p.properties {
            self.fill_property_tags(i, props, time_ns, flags);
        }
        let text = match std::str::from_utf8(&p.payload) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(e) => {
                let text = format!(
                    "payload is not valid UTF-8 ({e}); invalid bytes are replaced topic={}",
                    payload::escape(topic(p))
                );
                self.log(LogLevel::Warn, text);
                String::from_utf8_lossy(&p.payload)
            }
        };
        let id = p.pkid.to_string();
        for (address, text) in [
            (TagAddress::InTopic, topic(p)),
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

/// The received message's Content Type (MQTT 5), where the inbound path can pick a payload
/// decoding (the hook for gzip payloads announced by Content-Type).
#[allow(dead_code)]
pub(super) fn content_type(p: &Publish) -> Option<&str> {
    p.properties.as_ref()?.content_type.as_deref()
}

/// Bytes in lowercase hexadecimal, two digits each.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A received message's topic. The codec made sure it is UTF-8 (and the session resolved its
/// topic alias), so the empty fallback is never used.
pub(super) fn topic(p: &Publish) -> &str {
    std::str::from_utf8(&p.topic).unwrap_or_default()
}
