//! The configuration parsers on any parameter list: `LineConfig::from_params` (and a change at
//! run time with `with_changes`) and `StationParams::from_params`. Errors are fine; panics are
//! not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::LineConfig;
use mqtt_line_core::StationParams;

/// One `name=value` a line.
fn pairs(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(|l| l.split_once('=').unwrap_or((l, "")))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first blank line separates line parameters from station parameters.
    let (line, station) = text.split_once("\n\n").unwrap_or((text, ""));
    let line = pairs(line);
    if let Ok((cfg, _warnings)) = LineConfig::from_params("fuzz", line.iter().copied()) {
        let _ = cfg.with_changes("fuzz", line.iter().rev().copied());
    }
    let _ = StationParams::from_params("fuzz", pairs(station));
});
