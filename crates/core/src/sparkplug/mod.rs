//! Sparkplug B 3.0: the line as a host application (docs/sparkplug.md).
//!
//! The rules live here, one file per job; `line/sparkplug.rs` connects them to the line:
//! - [`payload`]: the protobuf messages, declared by hand, and decoding with a size limit;
//! - [`topic`]: reading `spBv1.0/...` topics and naming the command and STATE topics;
//! - [`datatype`]: the data types, metric values into tag values and written values into metrics;
//! - [`node_state`]: births, deaths, seq, bdSeq, aliases and the rebirth debounce per edge node;
//! - [`reorder`]: messages held for the Reorder Timeout while a seq gap is open;
//! - [`received`], [`metric_view`], [`common_payload`]: a received payload, its data read where it
//!   lies when it has the common form, else decoded;
//! - [`compression`]: payloads compressed with GZIP or DEFLATE (`uuid = "SPBV1.0_COMPRESSED"`);
//! - [`edge_node`], [`edge_settings`], [`edge_checks`], [`store`]: the line as an edge node: its metrics, bdSeq,
//!   seq and births; its parameters; store-and-forward (`line/edge.rs` connects them);
//! - this file: the host's own state (its STATE messages, which tags stand for which metric).

pub(crate) mod common_payload;
pub(crate) mod compression;
pub(crate) mod datatype;
pub(crate) mod edge_checks;
pub(crate) mod edge_node;
pub(crate) mod edge_settings;
pub(crate) mod metric_view;
pub(crate) mod node_state;
pub mod payload;
pub(crate) mod received;
pub(crate) mod reorder;
pub(crate) mod settings;
pub(crate) mod stamp;
pub mod store;
pub(crate) mod topic;

use std::time::Duration;

use crate::ids::TagIndex;
use crate::routing::FxMap;
use common_payload::MetricRoom;
use node_state::Nodes;

/// The host application's state in a line whose payload type is Sparkplug B.
#[derive(Debug, Default)]
pub(crate) struct Host {
    pub nodes: Nodes,
    /// Per station (by index), the input tags of each metric name (`SPB=<name>`). The names
    /// come from the configuration, so the routing tables' small hash serves (looked up for
    /// every metric received).
    pub tags: Vec<FxMap<Box<str>, Vec<TagIndex>>>,
    /// The latest wall time the line was given (Unix ns): the time stamp of the STATE will,
    /// which the shell opens the transport without.
    pub clock_ns: i64,
    pub rebirth_debounce: Duration,
    /// The nodes (group, node) that hold messages for a Reorder Timeout: the only ones whose
    /// timers `poll_timeout` looks at.
    pub reordering: Vec<(String, String)>,
    /// Scratch for the `group/node[/device]` identity each received message is routed by:
    /// formatting a new string per message cost more than the routing itself.
    pub identity: String,
    /// The vector a data message's metrics are read into, kept between messages.
    pub metric_room: MetricRoom,
}

/// The JSON of a primary host's STATE message.
pub(crate) fn state_payload(online: bool, timestamp_ms: u64) -> String {
    format!("{{\"online\":{online},\"timestamp\":{timestamp_ms}}}")
}

/// Whether a STATE payload says the host is offline (a will of an earlier connection).
pub(crate) fn says_offline(payload: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("online").and_then(serde_json::Value::as_bool))
        == Some(false)
}

/// Unix ns to ms, 0 before 1970.
pub(crate) fn ms(ns: i64) -> u64 {
    u64::try_from(ns / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_messages() {
        assert_eq!(state_payload(true, 5), r#"{"online":true,"timestamp":5}"#);
        assert!(says_offline(br#"{"online":false,"timestamp":5}"#));
        assert!(!says_offline(br#"{"online":true,"timestamp":5}"#));
        assert!(!says_offline(b"\xff"));
        assert_eq!(ms(-5), 0);
        assert_eq!(ms(1_500_000), 1);
    }
}
