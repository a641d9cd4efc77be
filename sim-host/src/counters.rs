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

/// The counters of a redundant line's connections, A then B (ABI 1.3's `link_a_*` and
/// `link_b_*` fields of `MqlLineStats`); empty for a line with one (`redundant` false), which
/// shows none.
pub fn connection_stats(line: &Line<'_>, redundant: bool) -> Result<Vec<ConnectionStats>, String> {
    if !redundant {
        return Ok(Vec::new());
    }
    let both = line.connection_stats().map_err(|e| e.message)?;
    Ok(both
        .iter()
        .map(|c| ConnectionStats {
            received: c.received,
            duplicates: c.duplicates,
            reconnects: c.reconnects,
            connection_attempts: c.connection_attempts,
        })
        .collect())
}
