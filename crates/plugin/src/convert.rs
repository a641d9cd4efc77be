//! Conversions between the core's types and the C ABI's.

use mqtt_line_abi::*;
use mqtt_line_core::{Event, LineEvent, LineState, LineStats, LinkId, RouteOutcome, StationStats};
use mqtt_line_core::{StationState, Value, ValueType};

use crate::queue::HostEvent;

pub fn value_type_from_abi(t: MqlValueType) -> Option<ValueType> {
    ValueType::from_name(value_type_name(t)?)
}

/// A host value; `None` for `MQL_VALUE_NONE`.
///
/// # Safety
/// A text value's pointer must be valid for its length.
pub unsafe fn value_from_abi(v: &MqlValue) -> Result<Option<Value>, String> {
    Ok(Some(match v.kind {
        MQL_VALUE_NONE => return Ok(None),
        MQL_VALUE_INT => Value::Int(v.int_value),
        MQL_VALUE_FLOAT => Value::Float(v.float_value),
        MQL_VALUE_BOOL => match v.int_value {
            0 | 1 => Value::Bool(v.int_value == 1),
            other => return Err(format!("boolean value {other} is not 0 or 1")),
        },
        MQL_VALUE_QUAD => match u8::try_from(v.int_value) {
            Ok(q) if q <= 3 => Value::Quad(q),
            _ => return Err(format!("quad value {} is not 0..3", v.int_value)),
        },
        MQL_VALUE_ABS_TIME => Value::AbsTime(v.int_value),
        MQL_VALUE_REL_TIME => Value::RelTime(v.float_value),
        MQL_VALUE_TEXT => {
            let bytes = v
                .text
                .as_bytes()
                .ok_or("text value has a NULL pointer and a non-zero length")?;
            Value::Text(
                std::str::from_utf8(bytes)
                    .map_err(|e| format!("text value is not UTF-8: {e}"))?
                    .to_string(),
            )
        }
        other => return Err(format!("unknown value kind {other}")),
    }))
}

fn value_to_abi(v: &Value) -> MqlValue {
    let mut out = MqlValue::none();
    match v {
        Value::Int(i) => (out.kind, out.int_value) = (MQL_VALUE_INT, *i),
        Value::Float(f) => (out.kind, out.float_value) = (MQL_VALUE_FLOAT, *f),
        Value::Bool(b) => (out.kind, out.int_value) = (MQL_VALUE_BOOL, *b as i64),
        Value::Text(s) => (out.kind, out.text) = (MQL_VALUE_TEXT, MqlStr::from_str(s)),
        Value::Quad(q) => (out.kind, out.int_value) = (MQL_VALUE_QUAD, i64::from(*q)),
        Value::AbsTime(ns) => (out.kind, out.int_value) = (MQL_VALUE_ABS_TIME, *ns),
        Value::RelTime(s) => (out.kind, out.float_value) = (MQL_VALUE_REL_TIME, *s),
    }
    out
}

fn station_state(s: StationState) -> u32 {
    match s {
        StationState::Ok => MQL_STATION_OK,
        StationState::HardError => MQL_STATION_HARD_ERROR,
        StationState::CommError => MQL_STATION_COMM_ERROR,
        StationState::Off => MQL_STATION_OFF,
        StationState::Simulation => MQL_STATION_SIMULATION,
    }
}

fn route_outcome(o: RouteOutcome) -> u32 {
    match o {
        RouteOutcome::Taken => MQL_ROUTE_TAKEN,
        RouteOutcome::Unrouted => MQL_ROUTE_UNROUTED,
        RouteOutcome::StationOff => MQL_ROUTE_STATION_OFF,
        RouteOutcome::Simulated => MQL_ROUTE_SIMULATED,
        RouteOutcome::Will => MQL_ROUTE_WILL,
    }
}

/// The C number of a line or connection state (0: none yet).
fn line_state(s: Option<LineState>) -> u32 {
    match s {
        None => 0,
        Some(LineState::Connected) => MQL_LINE_CONNECTED,
        Some(LineState::Disconnected) => MQL_LINE_DISCONNECTED,
    }
}

/// The C view of the line's counters (`size` is left to the host's). Each counter listed in
/// `line_counters!` (plugin-abi) is the core's counter of the same name.
pub fn line_stats_to_abi(s: &LineStats) -> MqlLineStats {
    macro_rules! fill {
        ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
            MqlLineStats {
                size: 0,
                state: line_state(s.state),
                reserved: 0,
                $($field: s.$field,)*
                last_message_ns: s.last_message_ns.unwrap_or(0),
                link_a_state: line_state(s.link_a_state),
                link_b_state: line_state(s.link_b_state),
                link_a_received: s.link_a_received,
                link_a_duplicates: s.link_a_duplicates,
                link_a_reconnects: s.link_a_reconnects,
                link_b_received: s.link_b_received,
                link_b_duplicates: s.link_b_duplicates,
                link_b_reconnects: s.link_b_reconnects,
                link_a_connection_attempts: s.link_a_connection_attempts,
                link_b_connection_attempts: s.link_b_connection_attempts,
            }
        };
    }
    mqtt_line_abi::line_counters!(fill)
}

/// The C view of a station's counters (`size` is left to the host's), as for the line's.
pub fn station_stats_to_abi(s: &StationStats) -> MqlStationStats {
    macro_rules! fill {
        ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
            MqlStationStats {
                size: 0,
                state: s.state.map_or(0, station_state),
                reserved: 0,
                $($field: s.$field,)*
                last_message_ns: s.last_message_ns.unwrap_or(0),
            }
        };
    }
    mqtt_line_abi::station_counters!(fill)
}

/// A line or connection state into `out`: its code, text, time and connection.
fn line_event(out: &mut MqlEvent, l: &LineEvent) {
    let (code, text, time_ns, link) = match l {
        LineEvent::Connected {
            host,
            time_ns,
            link,
        } => (MQL_LINE_CONNECTED, host, time_ns, link),
        LineEvent::Disconnected {
            reason,
            time_ns,
            link,
        } => (MQL_LINE_DISCONNECTED, reason, time_ns, link),
    };
    out.code = code;
    out.text = MqlStr::from_str(text);
    out.time_ns = *time_ns;
    out.link = link_number(*link);
}

/// The C number of a connection.
pub fn link_number(link: LinkId) -> u32 {
    match link {
        LinkId::A => MQL_LINK_A,
        LinkId::B => MQL_LINK_B,
    }
}

/// The C view of an event; its strings borrow from `e`.
pub fn fill_event(e: &HostEvent) -> MqlEvent {
    let mut out = MqlEvent::empty();
    fill_event_into(e, &mut out);
    out
}

/// [`fill_event`] into `out`, which starts empty ([`MqlEvent::empty`]): the poll writes the
/// host's slot in place instead of building the view and copying it there.
pub fn fill_event_into(e: &HostEvent, out: &mut MqlEvent) {
    match e {
        HostEvent::Log {
            level,
            text,
            time_ns,
        } => {
            out.kind = MQL_EVENT_LOG;
            out.code = *level;
            out.text = MqlStr::from_str(text);
            out.time_ns = *time_ns;
        }
        HostEvent::Core(Event::TagValue {
            station,
            tag,
            value,
            time_ns,
            flags,
        }) => {
            out.kind = MQL_EVENT_TAG_VALUE;
            out.station_id = station.0;
            out.tag_id = tag.0;
            out.flags = *flags;
            out.time_ns = *time_ns;
            if let Some(v) = value {
                out.value = value_to_abi(v);
            }
        }
        HostEvent::Core(Event::StationState {
            station,
            state,
            reason,
            time_ns,
        }) => {
            out.kind = MQL_EVENT_STATION_STATE;
            out.station_id = station.0;
            out.code = station_state(*state);
            out.text = MqlStr::from_str(reason);
            out.time_ns = *time_ns;
        }
        HostEvent::Core(Event::Line(l)) => {
            out.kind = MQL_EVENT_LINE_STATE;
            line_event(out, l);
        }
        HostEvent::Core(Event::Link(l)) => {
            out.kind = MQL_EVENT_LINK_STATE;
            line_event(out, l);
        }
        HostEvent::Core(Event::Route {
            topic,
            payload,
            outcome,
            station,
            time_ns,
        }) => {
            out.kind = MQL_EVENT_ROUTE;
            out.code = route_outcome(*outcome);
            out.station_id = station.map_or(0, |s| s.0);
            out.text = MqlStr::from_str(topic);
            out.value = MqlValue::text(payload);
            out.time_ns = *time_ns;
        }
        // The shell logs these through the line's dispatcher before they reach the queue
        // (driver.rs); one that got here anyway still reaches the host as a log line.
        HostEvent::Core(Event::Log { level, text }) => {
            out.kind = MQL_EVENT_LOG;
            out.code = crate::logging::core_level(*level);
            out.text = MqlStr::from_str(text);
            out.time_ns = crate::now_ns();
        }
        HostEvent::Core(Event::WriteDone {
            request,
            station,
            tag,
            error,
            time_ns,
        }) => {
            out.kind = MQL_EVENT_WRITE_DONE;
            out.request_id = *request;
            out.station_id = station.0;
            out.tag_id = tag.0;
            out.time_ns = *time_ns;
            match error {
                None => out.code = MQL_WRITE_OK,
                Some(e) => {
                    out.code = MQL_WRITE_FAILED;
                    out.text = MqlStr::from_str(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_line_core as event;

    #[test]
    fn flags_and_types_match_the_abi() {
        assert_eq!(event::FLAG_VALID, MQL_FLAG_VALID);
        assert_eq!(event::FLAG_TIME_FROM_PAYLOAD, MQL_FLAG_TIME_FROM_PAYLOAD);
        assert_eq!(event::FLAG_DUPLICATE, MQL_FLAG_DUPLICATE);
        assert_eq!(event::FLAG_RETAINED, MQL_FLAG_RETAINED);
        for t in MQL_TYPE_CI..=MQL_TYPE_TOA {
            let ty = value_type_from_abi(t).expect("every ABI type maps");
            assert_eq!(Some(ty.name()), value_type_name(t));
        }
        assert!(value_type_from_abi(0).is_none());
    }

    #[test]
    fn route_events_carry_topic_payload_outcome_and_station() {
        let cases = [
            (RouteOutcome::Taken, Some(7), MQL_ROUTE_TAKEN, 7),
            (RouteOutcome::Unrouted, None, MQL_ROUTE_UNROUTED, 0),
            (RouteOutcome::StationOff, Some(8), MQL_ROUTE_STATION_OFF, 8),
            (RouteOutcome::Simulated, Some(9), MQL_ROUTE_SIMULATED, 9),
            (RouteOutcome::Will, Some(1), MQL_ROUTE_WILL, 1),
        ];
        for (outcome, station, code, station_id) in cases {
            let e = HostEvent::Core(Event::Route {
                topic: "plant/a".into(),
                payload: "42".into(),
                outcome,
                station: station.map(mqtt_line_core::StationId),
                time_ns: 5,
            });
            let ev = fill_event(&e);
            assert_eq!(
                (ev.kind, ev.code, ev.station_id, ev.time_ns),
                (MQL_EVENT_ROUTE, code, station_id, 5)
            );
            assert_eq!(unsafe { ev.text.as_bytes() }, Some(&b"plant/a"[..]));
            assert_eq!(ev.value.kind, MQL_VALUE_TEXT);
            assert_eq!(unsafe { ev.value.text.as_bytes() }, Some(&b"42"[..]));
        }
        assert_eq!(mqtt_line_core::ROUTE_PAYLOAD_MAX, MQL_ROUTE_PAYLOAD_MAX);
    }

    #[test]
    fn values_round_trip() {
        for v in [
            Value::Int(-5),
            Value::Float(2.5),
            Value::Bool(true),
            Value::Text("héllo".into()),
            Value::Quad(3),
            Value::AbsTime(1_795_428_000_123_000_000),
            Value::RelTime(0.25),
        ] {
            let abi = value_to_abi(&v);
            assert_eq!(unsafe { value_from_abi(&abi) }.unwrap(), Some(v));
        }
        let bad = MqlValue {
            kind: 99,
            ..MqlValue::none()
        };
        assert!(unsafe { value_from_abi(&bad) }.is_err());
    }
}
