//! The checks of an edge node's configuration against the rest of the line's parameters (its
//! will, topic filter and session), apart from the parameters themselves (edge_settings.rs),
//! which the line's configuration reads without looking back here.

use crate::config::{LineConfig, PayloadType, Warnings};
use crate::error::ConfigError;

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
    use crate::config::parse_test_line as parse;
    use crate::sparkplug::edge_settings::EdgeConfig;

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
