//! What the line emits for a received message, in one place: a tag's value, the warning or note
//! that makes a tag invalid, a payload the station cannot read, the routing trace and the lines
//! for the host's log.
//!
//! This is the floor of the receive path: inbound.rs, inputs.rs, reading.rs, ack.rs and
//! sparkplug.rs call down into it, and it calls none of them. The texts are formatted here, only
//! when something is emitted: the normal path of a message formats nothing.

use std::collections::VecDeque;

use super::Line;
use crate::codec::Publish;
use crate::config::PayloadType;
use crate::event::{Event, LogLevel, RouteOutcome, FLAG_VALID, ROUTE_PAYLOAD_MAX};
use crate::ids::{StationIndex, TagIndex};
use crate::payload::{self, PayloadError};
use crate::value::Value;

impl Line {
    /// A line for the host's log, reported in order with the other events.
    pub(super) fn log(&mut self, level: LogLevel, text: String) {
        log_to(&mut self.events, level, text);
    }

    /// Tag `t` gets `value`; `None` makes it invalid (the valid flag is cleared).
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

    /// A value that cannot be used (`why`): a warning naming the tag; the caller makes it
    /// invalid.
    pub(super) fn warn_invalid(&mut self, t: TagIndex, why: &str) {
        let text = self.invalid_text(t, why);
        self.log(LogLevel::Warn, text);
    }

    /// A value the device itself marks as invalid: expected in operation, so only a debug line.
    pub(super) fn note_invalid(&mut self, t: TagIndex, why: &str) {
        let text = self.invalid_text(t, why);
        self.log(LogLevel::Debug, text);
    }

    /// A value whose quality field (`field`) is not one of valid_quality: a debug line.
    pub(super) fn note_bad_quality(&mut self, t: TagIndex, field: &str, quality: &str) {
        let why = format!(
            "quality field {field} = {} is not one of valid_quality",
            payload::shorten(quality)
        );
        self.note_invalid(t, &why);
    }

    fn invalid_text(&self, t: TagIndex, why: &str) -> String {
        let tag = &self.tags[t];
        format!(
            "tag '{}.{}': {why}; the tag is invalid",
            self.stations[tag.station].name, tag.name
        )
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

    /// The routing trace's event for `p`, built only while the trace is on.
    pub(super) fn trace(
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
}

/// [`Line::log`] for code that holds other parts of the line borrowed.
pub(super) fn log_to(events: &mut VecDeque<Event>, level: LogLevel, text: String) {
    events.push_back(Event::Log { level, text });
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

/// A received message's topic. The codec made sure it is UTF-8 (and the session resolved its
/// topic alias), so the empty fallback is never used. The receive path takes it once per
/// message and hands the `&str` on.
pub(super) fn topic(p: &Publish) -> &str {
    std::str::from_utf8(&p.topic).unwrap_or_default()
}
