//! The line's and stations' counters (ABI 1.2), read through the host library.
//!
//! TEMPORARY until the `diag-core` branch's host API is merged: the same shapes, always refused.

use mqtt_line_host::plugin::Line;

/// The line's counters as `Line::stats` returns them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineStats {
    pub received: u64,
    pub bytes_received: u64,
    pub unrouted: u64,
    pub dropped_off: u64,
    pub dropped_simulated: u64,
    pub payload_errors: u64,
    pub will_messages: u64,
    pub held: u64,
    pub writes_ok: u64,
    pub writes_failed: u64,
    pub connection_attempts: u64,
    pub reconnects: u64,
    pub last_message_ns: Option<i64>,
}

/// One station's counters as `Line::station_stats` returns them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StationStats {
    pub received: u64,
    pub dropped: u64,
    pub held: u64,
    pub last_message_ns: Option<i64>,
}

pub const MQL_EVENT_ROUTE: u32 = 6;
pub const MQL_ROUTE_TAKEN: u32 = 1;
pub const MQL_ROUTE_UNROUTED: u32 = 2;
pub const MQL_ROUTE_STATION_OFF: u32 = 3;
pub const MQL_ROUTE_SIMULATED: u32 = 4;
pub const MQL_ROUTE_WILL: u32 = 5;

pub fn line_stats(_line: &mut Line<'_>) -> Result<LineStats, String> {
    Err("the plugin predates line_stats (ABI 1.2)".into())
}

pub fn station_stats(_line: &mut Line<'_>, _station_id: u64) -> Result<StationStats, String> {
    Err("the plugin predates line_station_stats (ABI 1.2)".into())
}
