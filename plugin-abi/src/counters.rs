//! The one list of the counters in [`MqlLineStats`](crate::MqlLineStats) and
//! [`MqlStationStats`](crate::MqlStationStats): for each its field, whether it is a counter or a
//! gauge, its Prometheus metric name and help text.
//!
//! Every layer that shows the counters takes them from here: the plugin fills the C structs from
//! the core's counters of the same names, the host library reads them into its own structs,
//! sim-host answers `stats` with them (JSON fields named as the C fields) and serves `/metrics`.
//! Adding a counter is thus: count it in the core (`line/stats.rs`), append its field to the C
//! struct and its row here. The lists are macros, not data, because each user builds a struct of
//! its own from them; cbindgen never sees them, so the header stays plain C.
//!
//! A list is used as `mqtt_line_abi::line_counters!(my_macro)`, which expands to
//! `my_macro! { field, kind, "metric_name", "help"; ... }` with `kind` `counter` or `gauge`, in
//! the order of the C struct. The metric names and the field names are contracts (the JSON of
//! `stats`, `/metrics`): rows are only ever appended.

/// The counters of [`MqlLineStats`](crate::MqlLineStats), in field order (see the module).
#[macro_export]
macro_rules! line_counters {
    ($then:ident) => {
        $then! {
            received, counter, "mqtt_line_messages_received_total",
                "PUBLISH messages the line took from the broker, routed or not.";
            bytes_received, counter, "mqtt_line_received_bytes_total",
                "Payload bytes of the messages received.";
            unrouted, counter, "mqtt_line_messages_unrouted_total",
                "Messages no station's address matched.";
            dropped_off, counter, "mqtt_line_messages_dropped_station_off_total",
                "Messages dropped because their station is switched off.";
            dropped_simulated, counter, "mqtt_line_messages_dropped_simulated_total",
                "Messages dropped because their station is in simulation.";
            payload_errors, counter, "mqtt_line_payload_errors_total",
                "Payloads that could not be read as their payload type.";
            will_messages, counter, "mqtt_line_will_messages_total",
                "Will messages of stations received.";
            held, gauge, "mqtt_line_messages_held",
                "Messages held now by ACK_ID gates.";
            writes_ok, counter, "mqtt_line_writes_ok_total",
                "Tag writes the plugin completed.";
            writes_failed, counter, "mqtt_line_writes_failed_total",
                "Tag writes that failed after the plugin accepted them.";
            connection_attempts, counter, "mqtt_line_connection_attempts_total",
                "Connections to a broker attempted.";
            reconnects, counter, "mqtt_line_reconnects_total",
                "Connections made again after a ready connection was lost or closed.";
            edge_stored, counter, "mqtt_line_edge_stored_total",
                "Sparkplug edge node writes stored while the node was not born.";
            edge_forwarded, counter, "mqtt_line_edge_forwarded_total",
                "Stored Sparkplug edge node writes forwarded as historical data.";
            edge_dropped, counter, "mqtt_line_edge_dropped_total",
                "Stored Sparkplug edge node writes dropped (store full or unreadable).";
            edge_held, gauge, "mqtt_line_edge_held",
                "Sparkplug edge node writes in the store now, waiting to be forwarded.";
        }
    };
}

/// The counters of [`MqlStationStats`](crate::MqlStationStats), in field order (see the module).
/// Their metrics carry a `station` label.
#[macro_export]
macro_rules! station_counters {
    ($then:ident) => {
        $then! {
            received, counter, "mqtt_line_station_messages_received_total",
                "Messages routed to the station, whatever became of them.";
            dropped, counter, "mqtt_line_station_messages_dropped_total",
                "Messages of the station dropped (off, simulation, full ACK_ID gate).";
            held, gauge, "mqtt_line_station_messages_held",
                "Messages held now by the station's ACK_ID gate.";
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::{MqlLineStats, MqlStationStats};
    use std::mem::{offset_of, size_of};

    /// Each listed field, read from the struct: fails to compile when a row names no `u64` field.
    macro_rules! read_all {
        ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
            |s: &_| -> Vec<u64> { vec![$(s.$field),*] }
        };
    }

    #[test]
    fn every_u64_field_of_the_structs_is_listed() {
        let line: fn(&MqlLineStats) -> Vec<u64> = line_counters!(read_all);
        let station: fn(&MqlStationStats) -> Vec<u64> = station_counters!(read_all);
        let listed_line = line(&MqlLineStats::default()).len();
        let listed_station = station(&MqlStationStats::default()).len();
        // size, state and reserved; then the counters, with last_message_ns among them (the
        // edge counters follow it), and ABI 1.3's connections: two u32 states (8 bytes) and
        // eight u64 counters, which are not listed (a redundant line's counters are one family
        // per counter with a `connection` label, docs/sim-host.md). A field appended that is
        // not a listed counter makes this fail: list it, or count it here.
        let head = offset_of!(MqlLineStats, received);
        assert_eq!(
            size_of::<MqlLineStats>(),
            head + 8 * (listed_line + 1) + 8 + 8 * 8
        );
        let head = offset_of!(MqlStationStats, received);
        assert_eq!(
            size_of::<MqlStationStats>(),
            head + 8 * (listed_station + 1)
        );
    }

    #[test]
    fn metric_names_are_unique_and_kinds_match_their_names() {
        macro_rules! rows {
            ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
                vec![$((stringify!($field), stringify!($kind), $metric, $help)),*]
            };
        }
        let mut all: Vec<_> = line_counters!(rows);
        all.extend(station_counters!(rows));
        let mut names: Vec<_> = all.iter().map(|r| r.2).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a metric name is listed twice");
        for (field, kind, metric, help) in all {
            assert!(metric.starts_with("mqtt_line_"), "{field}: {metric}");
            assert_eq!(
                metric.ends_with("_total"),
                kind == "counter",
                "{field}: {metric}"
            );
            assert!(!help.is_empty() && help.ends_with('.'), "{field}: {help}");
        }
    }
}
