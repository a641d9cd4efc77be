//! The line's and stations' counters (ABI 1.2), read through the host library, with errors as
//! the text sim-host reports.

use mqtt_line_host::plugin::Line;
pub use mqtt_line_host::stats::{LineStats, StationStats};

pub fn line_stats(line: &Line<'_>) -> Result<LineStats, String> {
    line.stats().map_err(|e| e.message)
}

pub fn station_stats(line: &Line<'_>, station_id: u64) -> Result<StationStats, String> {
    line.station_stats(station_id).map_err(|e| e.message)
}

/// The counters of one connection of a redundant line (issue 21), as `stats`, the live page and
/// `/metrics` show them per connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Messages received through this connection, copies included.
    pub received: u64,
    /// Of those, copies of a message the other connection delivered first: not shown.
    pub duplicates: u64,
    /// Connections made again after a ready one was lost or closed.
    pub reconnects: u64,
    /// Connections to a broker attempted.
    pub connection_attempts: u64,
}

/// The counters of a redundant line's connections, A then B; empty for a line with one, and
/// (for now) always: they are read through the C ABI once redundant-core's per-connection
/// stats are merged.
pub fn connection_stats(_line: &Line<'_>) -> Result<Vec<ConnectionStats>, String> {
    Ok(Vec::new())
}
