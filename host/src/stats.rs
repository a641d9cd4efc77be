//! The line's and its stations' counters (ABI 1.2) as plain Rust values; docs/abi.md says what
//! each counts.

use mqtt_line_abi::{MqlLineStats, MqlStationStats};

/// A line's counters and state, from `line_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineStats {
    /// `MQL_LINE_CONNECTED` / `MQL_LINE_DISCONNECTED`; `None` before the first connection
    /// became ready or an attempt ended.
    pub state: Option<u32>,
    pub received: u64,
    pub bytes_received: u64,
    pub unrouted: u64,
    pub dropped_off: u64,
    pub dropped_simulated: u64,
    pub payload_errors: u64,
    pub will_messages: u64,
    /// Messages held now by ACK_ID gates (a gauge).
    pub held: u64,
    pub writes_ok: u64,
    pub writes_failed: u64,
    pub connection_attempts: u64,
    pub reconnects: u64,
    /// When the last message arrived (ns since the Unix epoch).
    pub last_message_ns: Option<i64>,
}

/// A station's counters and state, from `line_station_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StationStats {
    /// An `MQL_STATION_*` state; `None` before the station reported one.
    pub state: Option<u32>,
    pub received: u64,
    pub dropped: u64,
    pub held: u64,
    pub last_message_ns: Option<i64>,
}

/// 0 means "none" in the C structs.
fn nonzero<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

impl LineStats {
    pub fn from_abi(s: &MqlLineStats) -> LineStats {
        LineStats {
            state: nonzero(s.state),
            received: s.received,
            bytes_received: s.bytes_received,
            unrouted: s.unrouted,
            dropped_off: s.dropped_off,
            dropped_simulated: s.dropped_simulated,
            payload_errors: s.payload_errors,
            will_messages: s.will_messages,
            held: s.held,
            writes_ok: s.writes_ok,
            writes_failed: s.writes_failed,
            connection_attempts: s.connection_attempts,
            reconnects: s.reconnects,
            last_message_ns: nonzero(s.last_message_ns),
        }
    }
}

impl StationStats {
    pub fn from_abi(s: &MqlStationStats) -> StationStats {
        StationStats {
            state: nonzero(s.state),
            received: s.received,
            dropped: s.dropped,
            held: s.held,
            last_message_ns: nonzero(s.last_message_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_times_and_states_read_as_none() {
        let s = LineStats::from_abi(&MqlLineStats {
            received: 3,
            ..MqlLineStats::default()
        });
        assert_eq!((s.state, s.last_message_ns, s.received), (None, None, 3));
        let s = StationStats::from_abi(&MqlStationStats {
            state: mqtt_line_abi::MQL_STATION_OK,
            last_message_ns: 7,
            ..MqlStationStats::default()
        });
        assert_eq!(
            (s.state, s.last_message_ns),
            (Some(mqtt_line_abi::MQL_STATION_OK), Some(7))
        );
    }
}
