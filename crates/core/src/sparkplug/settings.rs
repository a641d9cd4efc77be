//! The line parameters of a Sparkplug B host: the topic filter's default, the primary host id
//! and its will, and the checks between them and the other parameters.

use crate::codec::{LastWill, QoS};
use crate::config::{LineConfig, PayloadType, Warnings};
use crate::error::ConfigError;
use crate::session::SessionConfig;

use super::state_payload;
use super::topic::{state_topic, NAMESPACE};

impl LineConfig {
    /// Whether the line is a Sparkplug B host application.
    pub fn is_sparkplug(&self) -> bool {
        self.payload_type() == PayloadType::SparkplugB
    }

    /// The checks and defaults of the Sparkplug parameters (called by `validate`).
    pub(crate) fn validate_sparkplug(&mut self, object: &str) -> Result<Warnings, ConfigError> {
        let mut warnings = Vec::new();
        if !self.is_sparkplug() {
            if !self.sparkplug_host_id.is_empty() {
                warnings.push(format!(
                    "{object}: sparkplug_host_id is set but payload_type is not 'Sparkplug B', so \
                     no STATE message is published"
                ));
            }
            return Ok(warnings);
        }
        if self.topic_filter == "#" {
            self.topic_filter = format!("{NAMESPACE}/#");
        }
        let first = self.topic_filter.split('/').next().unwrap_or_default();
        if ![NAMESPACE, "+", "#"].contains(&first) {
            warnings.push(format!(
                "{object}: topic_filter '{}' does not match Sparkplug B topics ({NAMESPACE}/...), \
                 so no edge node is heard",
                crate::text::shorten(&self.topic_filter)
            ));
        }
        self.require_clean_session(object)?;
        if !self.sparkplug_host_id.is_empty() && self.will_flag {
            return Err(ConfigError::InvalidValue {
                object: object.to_string(),
                param: "will_flag".into(),
                value: "YES".into(),
                reason: "a Sparkplug primary host (sparkplug_host_id) registers its STATE message \
                         as its will; leave will_flag NO"
                    .into(),
            });
        }
        Ok(warnings)
    }

    /// Sparkplug 3.0 asks every client for a session that ends with the connection: Clean
    /// Session with MQTT 3.1.1, Clean Start and a Session Expiry Interval of 0 with MQTT 5
    /// (tck-id-message-flow-phid-sparkplug-clean-session-311 and -50). That is the default of a
    /// Sparkplug line; asking for anything else is refused, naming the rule.
    fn require_clean_session(&mut self, object: &str) -> Result<(), ConfigError> {
        let refuse = |param: &str, value: String| ConfigError::InvalidValue {
            object: object.to_string(),
            param: param.into(),
            value,
            reason: "Sparkplug B 3.0 requires a clean session for a host application (MQTT \
                     3.1.1: Clean Session YES; MQTT 5: Clean Start with Session Expiry \
                     Interval 0), so that no messages of an earlier connection are replayed"
                .into(),
        };
        if self.clean_session_given && !self.clean_session {
            return Err(refuse("clean_session", "NO".into()));
        }
        match self.v5.session_expiry_interval {
            Some(n) if n != 0 && self.v5.protocol == crate::codec::Protocol::V5 => {
                return Err(refuse("session_expiry_interval", n.to_string()));
            }
            _ => {}
        }
        self.clean_session = true;
        Ok(())
    }

    /// The session to open at `timestamp_ms`: for a primary host, with its STATE will.
    pub(crate) fn session_at(&self, timestamp_ms: u64) -> SessionConfig {
        let mut session = self.session();
        if self.is_sparkplug() && !self.sparkplug_host_id.is_empty() {
            session.last_will = Some(LastWill::new(
                state_topic(&self.sparkplug_host_id),
                state_payload(false, timestamp_ms).into_bytes(),
                QoS::AtLeastOnce,
                true,
                None,
            ));
        }
        session
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_test_line as parse;

    #[test]
    fn topic_filter_defaults_to_the_namespace() {
        let (c, w) = parse(&[("Payload Type", "Sparkplug B")]).unwrap();
        assert_eq!(c.payload_type(), PayloadType::SparkplugB);
        assert_eq!(c.topic_filter, "spBv1.0/#");
        assert!(w.is_empty(), "{w:?}");
        let (c, _) = parse(&[
            ("payload_type", "Sparkplug B"),
            ("topic_filter", "spBv1.0/plant/#"),
        ])
        .unwrap();
        assert_eq!(c.topic_filter, "spBv1.0/plant/#");
        let (_, w) =
            parse(&[("payload_type", "Sparkplug B"), ("topic_filter", "plant/#")]).unwrap();
        assert!(w[0].contains("does not match Sparkplug B topics"), "{w:?}");
    }

    #[test]
    fn primary_host_will_is_its_state() {
        let (c, _) = parse(&[
            ("payload_type", "Sparkplug B"),
            ("sparkplug_host_id", "scada"),
        ])
        .unwrap();
        let will = c.session_at(1234).last_will.unwrap();
        assert_eq!(will.topic, "spBv1.0/STATE/scada");
        assert_eq!(&will.message[..], br#"{"online":false,"timestamp":1234}"#);
        assert_eq!(will.qos, QoS::AtLeastOnce);
        assert!(will.retain);
        let (c, _) = parse(&[("payload_type", "Sparkplug B")]).unwrap();
        assert!(c.session_at(1).last_will.is_none(), "no host id: no STATE");
    }

    #[test]
    fn conflicting_parameters() {
        let err = parse(&[
            ("payload_type", "Sparkplug B"),
            ("sparkplug_host_id", "scada"),
            ("will_flag", "YES"),
            ("will_topic", "x"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("will_flag") && err.contains("STATE"), "{err}");
        let err = parse(&[("sparkplug_host_id", "a/b")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a/b") && err.contains("may not contain"),
            "{err}"
        );
        let (_, w) = parse(&[("sparkplug_host_id", "scada")]).unwrap();
        assert!(w[0].contains("no STATE message"), "{w:?}");
        let (c, _) = parse(&[("sparkplug_reorder_timeout", "250")]).unwrap();
        assert_eq!(
            c.sparkplug_reorder_timeout,
            std::time::Duration::from_millis(250)
        );
        let (c, _) = parse(&[("sparkplug_rebirth_debounce", "0.5")]).unwrap();
        assert_eq!(
            c.sparkplug_rebirth_debounce,
            std::time::Duration::from_millis(500)
        );
    }

    /// Each row: parameters, and whether the line is refused (with the parameter named) or
    /// gets a clean session.
    #[test]
    fn sparkplug_lines_have_a_clean_session() {
        type Params = &'static [(&'static str, &'static str)];
        let rows: [(Params, Option<&str>); 6] = [
            (&[], None),
            (&[("clean_session", "YES")], None),
            (&[("clean_session", "NO")], Some("clean_session")),
            (&[("protocol_version", "5")], None),
            (
                &[("protocol_version", "5"), ("session_expiry_interval", "60")],
                Some("session_expiry_interval"),
            ),
            (
                &[("protocol_version", "5"), ("session_expiry_interval", "0")],
                None,
            ),
        ];
        for (params, refused) in rows {
            let mut all = vec![("payload_type", "Sparkplug B")];
            all.extend_from_slice(params);
            match (parse(&all), refused) {
                (Ok((c, _)), None) => {
                    assert!(c.clean_session, "{params:?}");
                    let s = c.session_at(0);
                    assert!(s.clean_session, "{params:?}");
                    assert_eq!(s.v5.session_expiry_interval, 0, "{params:?}");
                }
                (Err(e), Some(param)) => {
                    let e = e.to_string();
                    assert!(
                        e.contains(param) && e.contains("Sparkplug B 3.0 requires a clean session"),
                        "{e}"
                    );
                }
                (other, _) => panic!("{params:?}: {other:?}"),
            }
        }
        // Other lines keep their default.
        let (c, _) = parse(&[]).unwrap();
        assert!(!c.clean_session);
    }
}
