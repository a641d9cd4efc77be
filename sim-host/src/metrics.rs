//! `/metrics`: the counters in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use crate::answers::Counters;
use crate::config::LineSpec;
use crate::counters::{LineStats, StationStats};
use crate::view::{LineState, LineView};

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value as the text format requires: backslash, double quote and line feed escaped.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A metric of the line's counters: name, type, help, and how to read it.
type LineFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&LineStats) -> u64,
);

/// A per-station metric: name, type, help, and how to read it from a station's counters.
type StationFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StationStats) -> u64,
);

/// The metrics of a list of plugin-abi (`line_counters!`, `station_counters!`).
macro_rules! families {
    ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
        [$(($metric, stringify!($kind), $help, |s| s.$field)),*]
    };
}

/// The line's counters; the counters come first, then the gauges.
fn line_families() -> Vec<LineFamily> {
    let all: &[LineFamily] = &mqtt_line_abi::line_counters!(families);
    let (mut counters, gauges): (Vec<_>, Vec<_>) =
        all.iter().partition(|(_, kind, _, _)| *kind == "counter");
    counters.extend(gauges);
    counters
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn seconds(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// Every line and station metric; stations carry a `station` label with their name.
pub fn render(spec: &LineSpec, view: &LineView, counters: &Counters) -> String {
    let l = &counters.line;
    let mut out = String::with_capacity(512 + spec.stations.len() * 400);
    for (name, kind, help, get) in line_families() {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {}", get(l));
    }
    family(
        &mut out,
        "mqtt_line_connected",
        "gauge",
        "1 while the line is connected to a broker, else 0.",
    );
    let connected = matches!(view.line.state, LineState::Connected(_));
    let _ = writeln!(out, "mqtt_line_connected {}", u8::from(connected));
    if let Some(ns) = l.last_message_ns {
        family(
            &mut out,
            "mqtt_line_last_message_timestamp_seconds",
            "gauge",
            "When the last message was received (Unix time).",
        );
        let _ = writeln!(
            out,
            "mqtt_line_last_message_timestamp_seconds {}",
            seconds(ns)
        );
    }

    let names: Vec<String> = spec
        .stations
        .iter()
        .map(|s| escape_label(&s.name))
        .collect();
    let station_families: &[StationFamily] = &mqtt_line_abi::station_counters!(families);
    for &(name, kind, help, get) in station_families {
        family(&mut out, name, kind, help);
        for (label, s) in names.iter().zip(&counters.stations) {
            let _ = writeln!(out, "{name}{{station=\"{label}\"}} {}", get(s));
        }
    }
    family(
        &mut out,
        "mqtt_line_station_state",
        "gauge",
        "1 for the station's current state (ok, hard_error, comm_error, off, simulation).",
    );
    for (label, status) in names.iter().zip(&view.stations) {
        let _ = writeln!(
            out,
            "mqtt_line_station_state{{station=\"{label}\",state=\"{}\"}} 1",
            escape_label(&status.state)
        );
    }
    family(
        &mut out,
        "mqtt_line_station_last_message_timestamp_seconds",
        "gauge",
        "When the station's last message was received (Unix time); absent before the first.",
    );
    for (label, s) in names.iter().zip(&counters.stations) {
        if let Some(ns) = s.last_message_ns {
            let _ = writeln!(
                out,
                "mqtt_line_station_last_message_timestamp_seconds{{station=\"{label}\"}} {}",
                seconds(ns)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metric names are a contract: the list in plugin-abi may grow, but these stay, in this
    /// order (counters, then the gauges; a name appended to the list joins its kind's end).
    #[test]
    fn line_metrics_keep_their_names_and_order() {
        let names: Vec<&str> = line_families().iter().map(|f| f.0).collect();
        let today = [
            "mqtt_line_messages_received_total",
            "mqtt_line_received_bytes_total",
            "mqtt_line_messages_unrouted_total",
            "mqtt_line_messages_dropped_station_off_total",
            "mqtt_line_messages_dropped_simulated_total",
            "mqtt_line_payload_errors_total",
            "mqtt_line_will_messages_total",
            "mqtt_line_writes_ok_total",
            "mqtt_line_writes_failed_total",
            "mqtt_line_connection_attempts_total",
            "mqtt_line_reconnects_total",
            "mqtt_line_edge_stored_total",
            "mqtt_line_edge_forwarded_total",
            "mqtt_line_edge_dropped_total",
            "mqtt_line_messages_held",
            "mqtt_line_edge_held",
        ];
        assert_eq!(names, today);
        let stats = LineStats {
            writes_failed: 7,
            ..LineStats::default()
        };
        let failed = line_families()
            .into_iter()
            .find(|f| f.0 == "mqtt_line_writes_failed_total")
            .unwrap();
        assert_eq!((failed.1, (failed.3)(&stats)), ("counter", 7));
    }

    #[test]
    fn label_values_are_escaped() {
        let cases = [
            ("plain", "plain"),
            ("a\"b", "a\\\"b"),
            ("back\\slash", "back\\\\slash"),
            ("two\nlines", "two\\nlines"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_label(raw), escaped, "{raw:?}");
        }
    }
}
