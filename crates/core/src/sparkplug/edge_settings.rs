//! The line parameters of a Sparkplug B edge node (`payload_type = "Sparkplug Edge Node"`): the
//! primary host it waits for and its store-and-forward bound and file (docs/sparkplug.md,
//! "The line as an edge node").

use crate::config::{LineConfig, PayloadType, Warnings};
use crate::error::ConfigError;
use crate::params::Param;

/// Canonical names of the edge node's line parameters.
pub const EDGE_PARAMETERS: &[&str] = &[
    "sparkplug_primary_host_id",
    "store_max_messages",
    "store_path",
];

/// Stored writes kept while the node cannot publish, unless `store_max_messages` says otherwise:
/// a day of one write a second for a handful of tags, a few MiB in memory.
pub const DEFAULT_STORE_MAX_MESSAGES: usize = 100_000;

/// The largest `store_max_messages`: ten million writes are a few GiB, more than a kernel
/// process should hold for one line.
const STORE_MAX_LIMIT: u64 = 10_000_000;

/// The edge node part of a line's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConfig {
    /// Empty: the node publishes its births as soon as it is subscribed.
    pub primary_host_id: String,
    pub store_max_messages: usize,
    /// Empty: stored writes live in memory only.
    pub store_path: String,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            primary_host_id: String::new(),
            store_max_messages: DEFAULT_STORE_MAX_MESSAGES,
            store_path: String::new(),
        }
    }
}

impl EdgeConfig {
    /// Takes parameter `key` (one of [`EDGE_PARAMETERS`]).
    pub(crate) fn apply(&mut self, key: &str, p: &Param) -> Result<(), ConfigError> {
        match key {
            "sparkplug_primary_host_id" => {
                let id = p.value.trim();
                if id.contains(['/', '+', '#']) {
                    return Err(p.invalid("a host id may not contain '/', '+' or '#'"));
                }
                self.primary_host_id = id.to_string();
            }
            "store_max_messages" => {
                self.store_max_messages = p.integer(1, STORE_MAX_LIMIT)? as usize;
            }
            "store_path" => self.store_path = p.value.trim().to_string(),
            _ => return Err(crate::params::unhandled(p.object, key)),
        }
        Ok(())
    }
}

impl LineConfig {
    /// Whether the line is a Sparkplug B edge node.
    pub fn is_edge_node(&self) -> bool {
        self.payload_type() == PayloadType::SparkplugEdge
    }

    /// The checks of the edge node's parameters (called by `validate`).
    pub(crate) fn validate_edge(&mut self, object: &str) -> Result<Warnings, ConfigError> {
        let mut warnings = Vec::new();
        if !self.is_edge_node() {
            let e = &self.edge;
            if !e.primary_host_id.is_empty() || !e.store_path.is_empty() {
                warnings.push(format!(
                    "{object}: sparkplug_primary_host_id and store_path are edge node parameters, \
                     but payload_type is not 'Sparkplug Edge Node', so they are not used"
                ));
            }
            return Ok(warnings);
        }
        if self.will_flag {
            return Err(ConfigError::InvalidValue {
                object: object.to_string(),
                param: "will_flag".into(),
                value: "YES".into(),
                reason: "a Sparkplug edge node registers its NDEATH as its will; leave will_flag \
                         NO"
                .into(),
            });
        }
        if self.topic_filter != "#" {
            warnings.push(format!(
                "{object}: topic_filter is not used by an edge node, which subscribes to its own \
                 NCMD, DCMD and primary host STATE topics"
            ));
        }
        if !self.clean_session {
            // Sparkplug 3.0 asks an edge node for a clean session (3.1.1) or clean start with
            // no session expiry (5): its commands are not for an earlier session.
            self.clean_session = true;
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(params: &[(&str, &str)]) -> Result<(LineConfig, Warnings), ConfigError> {
        let mut all = vec![("host", "127.0.0.1")];
        all.extend_from_slice(params);
        LineConfig::from_params("line 'E'", all)
    }

    #[test]
    fn edge_parameters() {
        let (c, w) = parse(&[("payload_type", "Sparkplug Edge Node")]).unwrap();
        assert!(c.is_edge_node() && !c.is_sparkplug());
        assert!(c.clean_session, "an edge node's session is clean");
        assert_eq!(c.edge, EdgeConfig::default());
        assert!(w.is_empty(), "{w:?}");
        let (c, _) = parse(&[
            ("payload_type", "Sparkplug Edge Node"),
            ("sparkplug_primary_host_id", "scada"),
            ("store_max_messages", "10"),
            ("store_path", "/var/lib/edge.store"),
        ])
        .unwrap();
        assert_eq!(c.edge.primary_host_id, "scada");
        assert_eq!(c.edge.store_max_messages, 10);
        assert_eq!(c.edge.store_path, "/var/lib/edge.store");
        let rows = [
            ("sparkplug_primary_host_id", "a/b", "may not contain"),
            ("store_max_messages", "0", "from 1"),
            ("store_max_messages", "x", "whole number"),
        ];
        for (param, value, reason) in rows {
            let err = parse(&[("payload_type", "Sparkplug Edge Node"), (param, value)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(value) && err.contains(reason), "{err}");
        }
        let err = parse(&[
            ("payload_type", "Sparkplug Edge Node"),
            ("will_flag", "YES"),
            ("will_topic", "x"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("NDEATH"), "{err}");
        let (_, w) = parse(&[("store_path", "x")]).unwrap();
        assert!(w[0].contains("not used"), "{w:?}");
    }
}
