//! `/metrics`: the counters in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use crate::answers::Counters;
use crate::config::LineSpec;
use crate::counters::StationStats;
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

/// A per-station metric: name, type, help, and how to read it from a station's counters.
type StationFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StationStats) -> u64,
);

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
    let line_counters: [(&str, &str, u64); 12] = [
        (
            "mqtt_line_messages_received_total",
            "PUBLISH messages the line took from the broker, routed or not.",
            l.received,
        ),
        (
            "mqtt_line_received_bytes_total",
            "Payload bytes of the messages received.",
            l.bytes_received,
        ),
        (
            "mqtt_line_messages_unrouted_total",
            "Messages no station's address matched.",
            l.unrouted,
        ),
        (
            "mqtt_line_messages_dropped_station_off_total",
            "Messages dropped because their station is switched off.",
            l.dropped_off,
        ),
        (
            "mqtt_line_messages_dropped_simulated_total",
            "Messages dropped because their station is in simulation.",
            l.dropped_simulated,
        ),
        (
            "mqtt_line_payload_errors_total",
            "Payloads that could not be read as their payload type.",
            l.payload_errors,
        ),
        (
            "mqtt_line_will_messages_total",
            "Will messages of stations received.",
            l.will_messages,
        ),
        (
            "mqtt_line_writes_ok_total",
            "Tag writes the plugin completed.",
            l.writes_ok,
        ),
        (
            "mqtt_line_writes_failed_total",
            "Tag writes that failed after the plugin accepted them.",
            l.writes_failed,
        ),
        (
            "mqtt_line_connection_attempts_total",
            "Connections to a broker attempted.",
            l.connection_attempts,
        ),
        (
            "mqtt_line_reconnects_total",
            "Connections made again after a ready connection was lost or closed.",
            l.reconnects,
        ),
        (
            "mqtt_line_messages_held",
            "Messages held now by ACK_ID gates.",
            l.held,
        ),
    ];
    for (name, help, n) in line_counters {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {n}");
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
    let station_families: [StationFamily; 3] = [
        (
            "mqtt_line_station_messages_received_total",
            "counter",
            "Messages routed to the station, whatever became of them.",
            |s| s.received,
        ),
        (
            "mqtt_line_station_messages_dropped_total",
            "counter",
            "Messages of the station dropped (off, simulation, full ACK_ID gate).",
            |s| s.dropped,
        ),
        (
            "mqtt_line_station_messages_held",
            "gauge",
            "Messages held now by the station's ACK_ID gate.",
            |s| s.held,
        ),
    ];
    for (name, kind, help, get) in station_families {
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
