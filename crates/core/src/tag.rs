//! I/O tag addresses and which value types each one accepts.

use crate::error::ConfigError;
use std::sync::Arc;

use crate::json_path::JsonPath;
use crate::payload_params::MAX_CSV_FIELD;
use crate::value::ValueType;

/// What an I/O tag is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagAddress {
    /// Topic of the received message.
    InTopic,
    /// Payload of the received message.
    InData,
    /// Packet identifier of the received message (0 for QoS 0).
    InId,
    /// The host confirms a message by writing its IN_ID here.
    AckId,
    /// Topic used for OUT_VALUE writes.
    OutTopic,
    /// Writing it publishes the value to OUT_TOPIC.
    OutValue,
    /// MQTT 5: the value of the received message's user property of this name
    /// (`IN_PROPERTY=name`); invalid when the message has none.
    InProperty(String),
    /// MQTT 5: the received message's Content Type.
    InContentType,
    /// MQTT 5: the received message's Response Topic.
    InResponseTopic,
    /// MQTT 5: the received message's Correlation Data, in hexadecimal.
    InCorrelationData,
    /// MQTT 5: its value goes out as the user property of this name with every write of the
    /// station (`OUT_PROPERTY=name`).
    OutProperty(String),
    /// A value inside a JSON payload (`JA=path`).
    /// Shared: a line keeps one copy of each distinct address (see `Line::add_tag`).
    Json(Arc<JsonPath>),
    /// A field of a CSV payload by position (`CSV=1` is the first; stored from 0).
    Csv(usize),
    /// A Sparkplug B metric by its exact name (`SPB=<name>`, slashes included): an input tag
    /// takes its values, an output tag writes it with a command (docs/sparkplug.md).
    Sparkplug(Arc<str>),
}

impl TagAddress {
    /// Parses an address; `object` names the tag in the error.
    #[cfg(test)]
    pub fn parse(object: &str, address: &str) -> Result<TagAddress, ConfigError> {
        TagAddress::parse_for(&|| object.to_string(), address)
    }

    /// [`TagAddress::parse`] with the tag's name made only for an error: configuring thousands
    /// of tags formats nothing on the way.
    pub(crate) fn parse_for(
        object: &dyn Fn() -> String,
        address: &str,
    ) -> Result<TagAddress, ConfigError> {
        let a = address.trim();
        let upper = a.to_ascii_uppercase();
        let parsed = match upper.as_str() {
            "IN_TOPIC" => TagAddress::InTopic,
            "IN_DATA" => TagAddress::InData,
            "IN_ID" => TagAddress::InId,
            "ACK_ID" => TagAddress::AckId,
            "OUT_TOPIC" => TagAddress::OutTopic,
            "OUT_VALUE" => TagAddress::OutValue,
            "IN_CONTENT_TYPE" => TagAddress::InContentType,
            "IN_RESPONSE_TOPIC" => TagAddress::InResponseTopic,
            "IN_CORRELATION_DATA" => TagAddress::InCorrelationData,
            _ if upper.starts_with("SPB=") => {
                // The name is used exactly: only the text before "SPB=" is trimmed.
                let name = &address.trim_start()[4..];
                if name.is_empty() {
                    return Err(ConfigError::InvalidAddress {
                        object: object(),
                        address: address.to_string(),
                        reason: "SPB= needs a metric name after '='".into(),
                    });
                }
                TagAddress::Sparkplug(Arc::from(name))
            }
            _ if upper.starts_with("IN_PROPERTY=") || upper.starts_with("OUT_PROPERTY=") => {
                let (_, name) = a.split_once('=').unwrap_or_default();
                if name.is_empty() {
                    return Err(ConfigError::InvalidAddress {
                        object: object(),
                        address: address.to_string(),
                        reason: "needs a user property name after '='".into(),
                    });
                }
                if upper.starts_with("IN_") {
                    TagAddress::InProperty(name.to_string())
                } else {
                    TagAddress::OutProperty(name.to_string())
                }
            }
            _ if upper.starts_with("JA=") => {
                let path = a[3..].trim();
                if path.is_empty() {
                    return Err(ConfigError::InvalidAddress {
                        object: object(),
                        address: address.to_string(),
                        reason: "JA= needs a JSON address after '='".into(),
                    });
                }
                let path = JsonPath::parse(path).map_err(|e| ConfigError::InvalidAddress {
                    object: object(),
                    address: address.to_string(),
                    reason: format!("JSON address '{path}' {e}"),
                })?;
                TagAddress::Json(Arc::new(path))
            }
            _ if upper.starts_with("CSV=") => match a[4..].trim().parse::<usize>() {
                Ok(n) if (1..=MAX_CSV_FIELD).contains(&n) => TagAddress::Csv(n - 1),
                _ => {
                    return Err(ConfigError::InvalidAddress {
                        object: object(),
                        address: address.to_string(),
                        reason: format!(
                            "CSV= needs a field position, a whole number from 1 to \
                             {MAX_CSV_FIELD}"
                        ),
                    })
                }
            },
            _ => {
                return Err(ConfigError::InvalidAddress {
                    object: object(),
                    address: address.to_string(),
                    reason: "expected IN_TOPIC, IN_DATA, IN_ID, ACK_ID, OUT_TOPIC, OUT_VALUE, \
                             JA=json_address, CSV=position, SPB=metric_name, or with MQTT 5 \
                             IN_PROPERTY=name, IN_CONTENT_TYPE, IN_RESPONSE_TOPIC, \
                             IN_CORRELATION_DATA, OUT_PROPERTY=name"
                        .into(),
                })
            }
        };
        Ok(parsed)
    }

    /// Checks that `ty` makes sense for this address.
    pub fn check_type(&self, ty: ValueType) -> Result<(), String> {
        match self {
            TagAddress::InTopic | TagAddress::InData | TagAddress::InId if ty.is_output() => Err(
                "a message field is read by an input tag (TxtI, Ci, Ai, Di, Qi, TiR, TiA)".into(),
            ),
            TagAddress::AckId if ty != ValueType::Co => {
                Err("ACK_ID is written by the host as an integer output tag (Co)".into())
            }
            TagAddress::OutTopic if ty != ValueType::TxtO => {
                Err("OUT_TOPIC is a text output tag (TxtO)".into())
            }
            TagAddress::OutProperty(_) if ty != ValueType::TxtO => {
                Err("OUT_PROPERTY is a text output tag (TxtO)".into())
            }
            TagAddress::InProperty(_)
            | TagAddress::InContentType
            | TagAddress::InResponseTopic
            | TagAddress::InCorrelationData
                if ty != ValueType::TxtI =>
            {
                Err("a message property is read by a text input tag (TxtI)".into())
            }
            TagAddress::OutValue if !ty.is_output() => {
                Err("OUT_VALUE is written by the host, so it must be an output type".into())
            }
            _ => Ok(()),
        }
    }

    /// Whether the line fills this tag from received messages.
    pub fn is_input(&self) -> bool {
        self.is_message_field() || matches!(self, TagAddress::Json(_))
    }

    /// Whether the tag is set from the received message itself (not its JSON payload): the
    /// IN_* addresses.
    pub fn is_message_field(&self) -> bool {
        matches!(
            self,
            TagAddress::InTopic
                | TagAddress::InData
                | TagAddress::InId
                | TagAddress::Json(_)
                | TagAddress::Csv(_)
                | TagAddress::Sparkplug(_)
                | TagAddress::InProperty(_)
                | TagAddress::InContentType
                | TagAddress::InResponseTopic
                | TagAddress::InCorrelationData
        )
    }
}

impl std::fmt::Display for TagAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagAddress::InTopic => f.write_str("IN_TOPIC"),
            TagAddress::InData => f.write_str("IN_DATA"),
            TagAddress::InId => f.write_str("IN_ID"),
            TagAddress::AckId => f.write_str("ACK_ID"),
            TagAddress::OutTopic => f.write_str("OUT_TOPIC"),
            TagAddress::OutValue => f.write_str("OUT_VALUE"),
            TagAddress::InProperty(n) => write!(f, "IN_PROPERTY={n}"),
            TagAddress::InContentType => f.write_str("IN_CONTENT_TYPE"),
            TagAddress::InResponseTopic => f.write_str("IN_RESPONSE_TOPIC"),
            TagAddress::InCorrelationData => f.write_str("IN_CORRELATION_DATA"),
            TagAddress::OutProperty(n) => write!(f, "OUT_PROPERTY={n}"),
            TagAddress::Json(p) => write!(f, "JA={p}"),
            TagAddress::Csv(n) => write!(f, "CSV={}", n + 1),
            TagAddress::Sparkplug(name) => write!(f, "SPB={name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ValueType::*;

    #[test]
    fn addresses_and_types() {
        let cases: &[(&str, ValueType, bool)] = &[
            ("IN_TOPIC", TxtI, true),
            ("in_topic", TxtI, true),
            ("IN_DATA", TxtI, true),
            ("IN_DATA", Ai, true),
            ("IN_DATA", TxtO, false),
            ("IN_ID", Ci, true),
            ("ACK_ID", Co, true),
            ("ACK_ID", Ci, false),
            ("OUT_TOPIC", TxtO, true),
            ("OUT_TOPIC", TxtI, false),
            ("OUT_VALUE", TxtO, true),
            ("OUT_VALUE", Ao, true),
            ("OUT_VALUE", Ai, false),
            ("JA=a.b", Ai, true),
            ("JA=a.b", Co, true),
            ("CSV=1", Ai, true),
            ("csv= 3", Di, true),
            ("CSV=2", Co, true),
            ("SPB=Inputs/Temperature", Ai, true),
            ("spb=Outputs/Setpoint", Ao, true),
            ("SPB=Text", TxtI, true),
            ("IN_PROPERTY=site", TxtI, true),
            ("in_property=Site", TxtI, true),
            ("IN_PROPERTY=site", Ai, false),
            ("IN_CONTENT_TYPE", TxtI, true),
            ("IN_RESPONSE_TOPIC", TxtI, true),
            ("IN_CORRELATION_DATA", TxtI, true),
            ("IN_CORRELATION_DATA", TxtO, false),
            ("OUT_PROPERTY=site", TxtO, true),
            ("OUT_PROPERTY=site", TxtI, false),
        ];
        for (addr, ty, ok) in cases {
            let a = TagAddress::parse("tag 't'", addr).unwrap();
            assert_eq!(a.check_type(*ty).is_ok(), *ok, "{addr} {ty}");
        }
    }

    #[test]
    fn unknown_address_is_named() {
        let err = TagAddress::parse("tag 'st.x'", "IN_TOPICS")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tag 'st.x'") && err.contains("IN_TOPICS"),
            "{err}"
        );
        assert!(TagAddress::parse("t", "JA=").is_err());
        assert!(TagAddress::parse("t", "SPB=").is_err());
        assert_eq!(
            TagAddress::parse("t", " SPB=Node Control/Rebirth ").unwrap(),
            TagAddress::Sparkplug(Arc::from("Node Control/Rebirth ")),
            "metric names are exact: inner and trailing spaces are kept"
        );
        assert!(TagAddress::parse("t", "IN_PROPERTY=").is_err());
        assert_eq!(
            TagAddress::parse("t", "in_property=Site").unwrap(),
            TagAddress::InProperty("Site".into()),
            "the name keeps its case"
        );
        let err = TagAddress::parse("tag 'st.x'", "JA=rx..time")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'rx..time' at position 4"), "{err}");
        for bad in ["CSV=", "CSV=0", "CSV=x", "CSV=65536", "CSV=-1"] {
            let err = TagAddress::parse("tag 'st.x'", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad) && err.contains("field position"), "{err}");
        }
        assert_eq!(
            TagAddress::parse("t", "CSV=3").unwrap().to_string(),
            "CSV=3"
        );
    }
}
