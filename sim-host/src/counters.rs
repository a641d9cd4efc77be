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
