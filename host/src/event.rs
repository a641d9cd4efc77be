//! Owned copies of the plugin's events: strings in an `MqlEvent` die at the next poll.

use mqtt_line_abi::*;

/// A tag value as the plugin reported it, chosen by `MqlValue::kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// D2000 quad state 0..3.
    Quad(i64),
    /// Nanoseconds since the epoch.
    AbsTime(i64),
    /// Seconds.
    RelTime(f64),
}

/// One event with its strings copied out.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub kind: MqlEventKind,
    pub code: u32,
    pub flags: u32,
    pub station_id: u64,
    pub tag_id: u64,
    pub request_id: u64,
    pub time_ns: i64,
    pub value: Value,
    pub text: String,
    /// The connection a line or connection state event is about (`MQL_LINK_A`, `MQL_LINK_B`,
    /// ABI 1.3); 0 in other events and from older plugins.
    pub link: u32,
}

impl RawEvent {
    /// Copies `ev`.
    ///
    /// # Safety
    /// The strings of `ev` must be valid (as they are until the next `line_poll_events`).
    pub unsafe fn copy_from(ev: &MqlEvent) -> RawEvent {
        let value = match ev.value.kind {
            MQL_VALUE_INT => Value::Int(ev.value.int_value),
            MQL_VALUE_FLOAT => Value::Float(ev.value.float_value),
            MQL_VALUE_BOOL => Value::Bool(ev.value.int_value != 0),
            // SAFETY: the caller guarantees the event's strings are alive.
            MQL_VALUE_TEXT => Value::Text(unsafe { copy_str(&ev.value.text) }),
            MQL_VALUE_QUAD => Value::Quad(ev.value.int_value),
            MQL_VALUE_ABS_TIME => Value::AbsTime(ev.value.int_value),
            MQL_VALUE_REL_TIME => Value::RelTime(ev.value.float_value),
            _ => Value::None,
        };
        RawEvent {
            kind: ev.kind,
            code: ev.code,
            flags: ev.flags,
            station_id: ev.station_id,
            tag_id: ev.tag_id,
            request_id: ev.request_id,
            time_ns: ev.time_ns,
            value,
            // SAFETY: as above.
            text: unsafe { copy_str(&ev.text) },
            link: ev.link,
        }
    }
}

/// An `MQL_EVENT_ROUTE` (ABI 1.2, with the routing trace on): where one received message went.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The topic as received (outside text: escape it before printing).
    pub topic: String,
    /// The payload's start as lossy UTF-8 (at most `MQL_ROUTE_PAYLOAD_MAX` bytes).
    pub payload: String,
    /// An `MQL_ROUTE_*` outcome; [`route_outcome_name`] names it.
    pub outcome: u32,
    /// The station that took it; `None` when unrouted.
    pub station_id: Option<u64>,
    pub time_ns: i64,
}

impl RawEvent {
    /// The routing trace's view of this event; `None` for other kinds.
    pub fn route(&self) -> Option<Route> {
        if self.kind != MQL_EVENT_ROUTE {
            return None;
        }
        let payload = match &self.value {
            Value::Text(t) => t.clone(),
            _ => String::new(),
        };
        Some(Route {
            topic: self.text.clone(),
            payload,
            outcome: self.code,
            station_id: (self.code != MQL_ROUTE_UNROUTED).then_some(self.station_id),
            time_ns: self.time_ns,
        })
    }
}

/// The contract's name of an `MQL_ROUTE_*` outcome.
pub fn route_outcome_name(code: u32) -> String {
    match code {
        MQL_ROUTE_TAKEN => "taken".into(),
        MQL_ROUTE_UNROUTED => "unrouted".into(),
        MQL_ROUTE_STATION_OFF => "station_off".into(),
        MQL_ROUTE_SIMULATED => "simulated".into(),
        MQL_ROUTE_WILL => "will".into(),
        other => format!("unknown_{other}"),
    }
}

/// Copies borrowed plugin text; invalid UTF-8 is replaced rather than trusted.
///
/// # Safety
/// `s` must point to `len` readable bytes.
pub unsafe fn copy_str(s: &MqlStr) -> String {
    // Most events (tag values) carry no text: nothing to check or copy.
    if s.len == 0 {
        return String::new();
    }
    // SAFETY: forwarded to the caller.
    match unsafe { s.as_bytes() } {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => String::new(),
    }
}

/// The name printed for an `MQL_LOG_*` level.
pub fn log_level_name(level: u32) -> &'static str {
    match level {
        MQL_LOG_ERROR => "ERROR",
        MQL_LOG_WARN => "WARN",
        MQL_LOG_INFO => "INFO",
        MQL_LOG_DEBUG => "DEBUG",
        MQL_LOG_TRACE => "TRACE",
        _ => "LOG",
    }
}

/// The contract's name of an `MQL_STATION_*` state.
pub fn station_state_name(code: u32) -> String {
    match code {
        MQL_STATION_OK => "ok".into(),
        MQL_STATION_HARD_ERROR => "hard_error".into(),
        MQL_STATION_COMM_ERROR => "comm_error".into(),
        MQL_STATION_OFF => "off".into(),
        MQL_STATION_SIMULATION => "simulation".into(),
        other => format!("unknown_{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_copied_by_kind() {
        let text = "21.5";
        let base = MqlEvent::empty();
        let cases = [
            (MqlValue::text(text), Value::Text("21.5".into())),
            (
                MqlValue {
                    kind: MQL_VALUE_INT,
                    int_value: -3,
                    ..MqlValue::none()
                },
                Value::Int(-3),
            ),
            (
                MqlValue {
                    kind: MQL_VALUE_BOOL,
                    int_value: 1,
                    ..MqlValue::none()
                },
                Value::Bool(true),
            ),
            (
                MqlValue {
                    kind: MQL_VALUE_REL_TIME,
                    float_value: 1.5,
                    ..MqlValue::none()
                },
                Value::RelTime(1.5),
            ),
            (
                MqlValue {
                    kind: 99,
                    ..MqlValue::none()
                },
                Value::None,
            ),
        ];
        for (value, expected) in cases {
            let ev = MqlEvent { value, ..base };
            // SAFETY: `text` outlives the call.
            assert_eq!(unsafe { RawEvent::copy_from(&ev) }.value, expected);
        }
    }

    #[test]
    fn route_events_have_a_view() {
        let payload = "42";
        let topic = "plant/a";
        let ev = MqlEvent {
            kind: MQL_EVENT_ROUTE,
            code: MQL_ROUTE_TAKEN,
            station_id: 9,
            text: MqlStr::from_str(topic),
            value: MqlValue::text(payload),
            ..MqlEvent::empty()
        };
        // SAFETY: the strings outlive the call.
        let raw = unsafe { RawEvent::copy_from(&ev) };
        let route = raw.route().expect("a route event");
        assert_eq!(
            (
                route.topic.as_str(),
                route.payload.as_str(),
                route.station_id
            ),
            ("plant/a", "42", Some(9))
        );
        assert_eq!(route_outcome_name(route.outcome), "taken");
        let unrouted = RawEvent {
            code: MQL_ROUTE_UNROUTED,
            ..raw.clone()
        };
        assert_eq!(unrouted.route().and_then(|r| r.station_id), None);
        let other = RawEvent {
            kind: MQL_EVENT_LOG,
            ..raw
        };
        assert!(other.route().is_none());
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let bytes = b"a\xffb";
        let s = MqlStr {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        };
        // SAFETY: `bytes` outlives the call.
        assert_eq!(unsafe { copy_str(&s) }, "a\u{fffd}b");
    }
}
