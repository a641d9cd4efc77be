//! `/metrics`: the counters in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use crate::answers::Counters;
use crate::config::LineSpec;
use crate::counters::{ConnectionStats, LineStats, StationStats};
use crate::view::{LineState, LineView, CONNECTION_NAMES};

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
    connection_metrics(&mut out, view, &counters.connections);
    out
}

/// A per-connection metric of a redundant line: name, type, help, and how to read it.
type ConnectionFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ConnectionStats) -> u64,
);

/// The per-connection metrics of a redundant line (issue 21), each with a `connection` label
/// (`A`, `B`). Their names are a contract (docs/sim-host.md).
const CONNECTION_FAMILIES: [ConnectionFamily; 4] = [
    (
        "mqtt_line_connection_messages_received_total",
        "counter",
        "Messages received through the connection, copies included.",
        |c| c.received,
    ),
    (
        "mqtt_line_connection_duplicates_suppressed_total",
        "counter",
        "Copies of a message the other connection delivered first: received, not shown.",
        |c| c.duplicates,
    ),
    (
        "mqtt_line_connection_reconnects_total",
        "counter",
        "Connections made again after a ready one was lost or closed.",
        |c| c.reconnects,
    ),
    (
        "mqtt_line_connection_connect_attempts_total",
        "counter",
        "Connections to a broker attempted by the connection.",
        |c| c.connection_attempts,
    ),
];

/// A redundant line's connections: their counters and `mqtt_line_connection_up`. Nothing for a
/// line with one connection.
fn connection_metrics(out: &mut String, view: &LineView, stats: &[ConnectionStats]) {
    if stats.is_empty() && view.connections.is_empty() {
        return;
    }
    for (name, kind, help, get) in CONNECTION_FAMILIES {
        family(out, name, kind, help);
        for (label, c) in CONNECTION_NAMES.iter().zip(stats) {
            let _ = writeln!(out, "{name}{{connection=\"{label}\"}} {}", get(c));
        }
    }
    family(
        out,
        "mqtt_line_connection_up",
        "gauge",
        "1 while the connection of a redundant line is ready, else 0.",
    );
    for (label, c) in CONNECTION_NAMES.iter().zip(&view.connections) {
        let up = matches!(c.state, LineState::Connected(_));
        let _ = writeln!(
            out,
            "mqtt_line_connection_up{{connection=\"{label}\"}} {}",
            u8::from(up)
        );
    }
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

    fn spec(text: &str) -> LineSpec {
        let parsed = crate::config::FileConfig::parse(text).and_then(|f| f.into_spec(text, "L"));
        parsed.expect("a valid configuration")
    }

    /// A redundant line's connections get their own families, labelled `A` and `B`; a line with
    /// one connection gets none of them.
    #[test]
    fn connections_of_a_redundant_line_are_labelled() {
        let text = "[line]\nhost = \"a\"\n[line.parameters]\n\"Redundant Host\" = \"b\"\n";
        let redundant = spec(text);
        assert!(redundant.is_redundant());
        let mut view = LineView::new(0, 0, false);
        view.set_redundant();
        view.record_connection(1, true, "b:1883", 5);
        let counters = Counters {
            connections: vec![
                ConnectionStats {
                    received: 10,
                    duplicates: 0,
                    reconnects: 2,
                    connection_attempts: 4,
                },
                ConnectionStats {
                    received: 9,
                    duplicates: 9,
                    reconnects: 0,
                    connection_attempts: 1,
                },
            ],
            ..Counters::default()
        };
        let text = render(&redundant, &view, &counters);
        for line in [
            "mqtt_line_connection_messages_received_total{connection=\"A\"} 10",
            "mqtt_line_connection_messages_received_total{connection=\"B\"} 9",
            "mqtt_line_connection_duplicates_suppressed_total{connection=\"B\"} 9",
            "mqtt_line_connection_reconnects_total{connection=\"A\"} 2",
            "mqtt_line_connection_connect_attempts_total{connection=\"A\"} 4",
            "mqtt_line_connection_up{connection=\"A\"} 0",
            "mqtt_line_connection_up{connection=\"B\"} 1",
            "# TYPE mqtt_line_connection_duplicates_suppressed_total counter",
            "# TYPE mqtt_line_connection_up gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        let single = spec("[line]\nhost = \"a\"\n");
        assert!(!single.is_redundant());
        let text = render(&single, &LineView::new(0, 0, false), &Counters::default());
        assert!(!text.contains("connection=\""), "{text}");
        assert!(!text.contains("mqtt_line_connection_up"), "{text}");
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
