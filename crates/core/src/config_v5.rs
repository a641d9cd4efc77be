//! The MQTT 5 line parameters: the protocol version, the CONNECT properties, the subscription
//! options and the properties of writes (docs/parameters.md, "MQTT 5").

use crate::codec::{Protocol, RetainForwardRule};
use crate::error::ConfigError;
use crate::params::Param;
use crate::session::V5Options;

/// Canonical names of the MQTT 5 line parameters.
pub const V5_PARAMETERS: &[&str] = &[
    "protocol_version",
    "session_expiry_interval",
    "receive_maximum",
    "maximum_packet_size",
    "topic_alias_maximum",
    "user_properties",
    "request_problem_information",
    "message_expiry_interval",
    "no_local",
    "retain_as_published",
    "retain_handling",
    "content_type",
    "response_topic",
];

/// Topic aliases the line lets the broker use when `topic_alias_maximum` is not given.
pub const DEFAULT_TOPIC_ALIAS_MAXIMUM: u16 = 16;

/// The MQTT 5 part of a line's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct V5Config {
    pub protocol: Protocol,
    /// As given; `None`: 0 with clean session, else "never expires" (0xFFFFFFFF).
    pub session_expiry_interval: Option<u32>,
    pub options: V5Options,
    /// Seconds a write may wait in the broker; 0: no expiry.
    pub message_expiry_interval: u32,
    /// Content Type and Response Topic of every write (a station may set its own).
    pub content_type: String,
    pub response_topic: String,
}

impl Default for V5Config {
    fn default() -> Self {
        V5Config {
            protocol: Protocol::V311,
            session_expiry_interval: None,
            options: V5Options {
                topic_alias_maximum: DEFAULT_TOPIC_ALIAS_MAXIMUM,
                ..V5Options::default()
            },
            message_expiry_interval: 0,
            content_type: String::new(),
            response_topic: String::new(),
        }
    }
}

impl V5Config {
    /// Takes parameter `key` (one of [`V5_PARAMETERS`]).
    pub(crate) fn apply(&mut self, key: &str, p: &Param) -> Result<(), ConfigError> {
        let o = &mut self.options;
        match key {
            "protocol_version" => {
                self.protocol = match p.value.trim() {
                    "3.1.1" | "4" | "311" => Protocol::V311,
                    "5" | "5.0" => Protocol::V5,
                    _ => return Err(p.invalid("expected 3.1.1 or 5")),
                }
            }
            "session_expiry_interval" => {
                self.session_expiry_interval = Some(p.integer(0, u32::MAX.into())? as u32)
            }
            "receive_maximum" => o.receive_maximum = Some(p.integer(1, 65535)? as u16),
            "maximum_packet_size" => {
                o.maximum_packet_size = Some(p.integer(64, u32::MAX.into())? as u32)
            }
            "topic_alias_maximum" => o.topic_alias_maximum = p.integer(0, 65535)? as u16,
            "user_properties" => o.user_properties = user_properties(p)?,
            "request_problem_information" => o.request_problem_information = p.yes_no()?,
            "message_expiry_interval" => {
                self.message_expiry_interval = p.integer(0, u32::MAX.into())? as u32
            }
            "no_local" => o.no_local = p.yes_no()?,
            "retain_as_published" => o.retain_as_published = p.yes_no()?,
            "retain_handling" => {
                o.retain_handling = match p.integer(0, 2)? {
                    0 => RetainForwardRule::OnEverySubscribe,
                    1 => RetainForwardRule::OnNewSubscribe,
                    _ => RetainForwardRule::Never,
                }
            }
            "content_type" => self.content_type = p.value.to_string(),
            "response_topic" => {
                if p.value.contains(['+', '#']) {
                    return Err(p.invalid("a response topic may not contain '+' or '#'"));
                }
                self.response_topic = p.value.to_string()
            }
            _ => return Err(crate::params::unhandled(p.object, key)),
        }
        Ok(())
    }

    /// The options CONNECT and SUBSCRIBE use, with the session expiry that `clean_session`
    /// implies when none was given.
    pub fn options(&self, clean_session: bool) -> V5Options {
        V5Options {
            session_expiry_interval: self.session_expiry_interval.unwrap_or(if clean_session {
                0
            } else {
                u32::MAX
            }),
            ..self.options.clone()
        }
    }

    /// A warning when MQTT 5 settings are given on a 3.1.1 line, where they do nothing.
    pub(crate) fn warning(&self, object: &str) -> Option<String> {
        let unused = V5Config {
            protocol: Protocol::V311,
            ..V5Config::default()
        };
        (self.protocol == Protocol::V311 && *self != unused).then(|| {
            format!(
                "{object}: MQTT 5 parameters are set but protocol_version is 3.1.1, so they are \
                 not used"
            )
        })
    }
}

/// `name=value` pairs separated by `;` (white space around them trimmed), in order.
fn user_properties(p: &Param) -> Result<Vec<(String, String)>, ConfigError> {
    p.value
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(p.invalid(format!(
                "'{}' is not name=value (user properties are name=value pairs separated by ';')",
                crate::text::escape(pair)
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::codec::{Protocol, RetainForwardRule};
    use crate::config::LineConfig;

    fn parse(params: &[(&str, &str)]) -> Result<LineConfig, String> {
        crate::config::parse_test_line(params)
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn mqtt5_parameters_and_their_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.v5.protocol, Protocol::V311, "3.1.1 stays the default");
        let s = c.session();
        assert_eq!(s.protocol, Protocol::V311);
        let c = parse(&[("Protocol Version", "5")]).unwrap();
        let s = c.session();
        assert_eq!(s.protocol, Protocol::V5);
        assert_eq!(
            s.v5.session_expiry_interval,
            u32::MAX,
            "clean_session NO: the session outlives the connection"
        );
        assert_eq!(s.v5.topic_alias_maximum, 16);
        assert!(s.v5.request_problem_information);
        let c = parse(&[("protocol_version", "5"), ("clean_session", "YES")]).unwrap();
        assert_eq!(c.session().v5.session_expiry_interval, 0);
        let c = parse(&[
            ("protocol_version", "5"),
            ("session_expiry_interval", "3600"),
            ("receive_maximum", "10"),
            ("maximum_packet_size", "100000"),
            ("topic_alias_maximum", "0"),
            ("user_properties", "site=north; line = L1"),
            ("request_problem_information", "NO"),
            ("message_expiry_interval", "30"),
            ("no_local", "YES"),
            ("retain_as_published", "YES"),
            ("retain_handling", "2"),
            ("content_type", "application/json"),
            ("response_topic", "replies/l1"),
        ])
        .unwrap();
        let s = c.session();
        assert_eq!(s.v5.session_expiry_interval, 3600);
        assert_eq!(s.v5.receive_maximum, Some(10));
        assert_eq!(s.v5.maximum_packet_size, Some(100000));
        assert_eq!(s.v5.topic_alias_maximum, 0);
        assert_eq!(
            s.v5.user_properties,
            [
                ("site".into(), "north".into()),
                ("line".into(), "L1".into())
            ]
        );
        assert!(!s.v5.request_problem_information);
        assert!(s.v5.no_local && s.v5.retain_as_published);
        assert_eq!(s.v5.retain_handling, RetainForwardRule::Never);
        assert_eq!(c.v5.message_expiry_interval, 30);
        assert_eq!(c.v5.content_type, "application/json");
        assert_eq!(c.v5.response_topic, "replies/l1");
    }

    #[test]
    fn bad_mqtt5_values_name_parameter_and_value() {
        for (param, value, needle) in [
            ("protocol_version", "6", "3.1.1 or 5"),
            ("receive_maximum", "0", "1 to 65535"),
            ("maximum_packet_size", "10", "64 to"),
            ("topic_alias_maximum", "70000", "0 to 65535"),
            ("user_properties", "novalue", "name=value"),
            ("retain_handling", "3", "0 to 2"),
            ("message_expiry_interval", "-1", "whole number"),
            ("response_topic", "a/#", "may not contain"),
        ] {
            let err = parse(&[(param, value)]).map(drop).unwrap_err();
            assert!(err.contains("line 'L1'") && err.contains(param), "{err}");
            assert!(err.contains(value) && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn mqtt5_parameters_on_a_311_line_are_warned_about() {
        let (_, w) =
            LineConfig::from_params("line 'L1'", [("host", "h"), ("no_local", "YES")]).unwrap();
        assert!(
            w.iter().any(|w| w.contains("protocol_version is 3.1.1")),
            "{w:?}"
        );
    }
}
