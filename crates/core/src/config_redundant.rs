//! The redundant line's parameters (issue 21): a second connection, B, to `redundant_host` beside
//! connection A to `host`, and the window within which the same message through both is shown
//! once (line/duplicates.rs). Read with the other line parameters by config.rs, checked against
//! them here.

use std::time::Duration;

use crate::config::{host_list, LineConfig, Warnings};
use crate::error::ConfigError;
use crate::host_list::{describe_host_list, HostEntry};
use crate::params::Param;

/// The duplicate window when `redundant_window` is not given. Copies through two healthy
/// brokers arrive milliseconds apart: 2 s covers a slow broker with a wide margin, and keeps the
/// duplicate filter within its cap up to about 130,000 messages a second (duplicates.rs;
/// docs/decisions.md, issue 21).
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(2);

/// The longest `redundant_window` accepted: one hour.
const MAX_WINDOW_SECS: f64 = 3600.0;

/// Canonical names of the redundant line's parameters.
pub const REDUNDANT_PARAMETERS: &[&str] = &[
    "redundant_host",
    "redundant_port",
    "redundant_client_id",
    "redundant_window",
];

/// Connection B of a redundant line; `hosts` empty: the line has connection A only.
#[derive(Debug, Clone, PartialEq)]
pub struct RedundantConfig {
    /// `redundant_host`: B's broker addresses, tried in order (like `host`).
    pub hosts: Vec<HostEntry>,
    /// `redundant_port`; `None`: the line's port.
    pub port: Option<u16>,
    /// `redundant_client_id`; `None`: the line's `client_id` (independent brokers accept the
    /// same one; a cluster needs another, or it takes one connection over for the other).
    pub client_id: Option<String>,
    /// `redundant_window`: how long a message through one connection waits for its copy
    /// through the other.
    pub window: Duration,
}

impl Default for RedundantConfig {
    fn default() -> Self {
        RedundantConfig {
            hosts: Vec::new(),
            port: None,
            client_id: None,
            window: DEFAULT_WINDOW,
        }
    }
}

impl RedundantConfig {
    /// Reads one of [`REDUNDANT_PARAMETERS`]. An empty `redundant_host` turns the second
    /// connection off again (a change at run time back to one broker).
    pub(crate) fn apply(&mut self, key: &str, p: &Param) -> Result<(), ConfigError> {
        match key {
            "redundant_host" => {
                self.hosts = if p.value.trim().is_empty() {
                    Vec::new()
                } else {
                    host_list(p)?
                };
            }
            "redundant_port" => self.port = Some(p.integer(1, 65535)? as u16),
            "redundant_client_id" => self.client_id = Some(p.value.to_string()),
            "redundant_window" => {
                let window = p.seconds(MAX_WINDOW_SECS)?;
                if window.is_zero() {
                    return Err(p.invalid(
                        "must be more than 0 seconds: with no window every copy would be shown",
                    ));
                }
                self.window = window;
            }
            other => return Err(crate::params::unhandled(p.object, other)),
        }
        Ok(())
    }

    /// Whether the line keeps a second connection.
    pub fn is_on(&self) -> bool {
        !self.hosts.is_empty()
    }
}

impl LineConfig {
    /// A redundant line holds two connections with the same session settings; what follows one
    /// server at a time, or is bound to one, cannot.
    pub(crate) fn validate_redundant(&self, object: &str) -> Result<Warnings, ConfigError> {
        let r = &self.redundant;
        let mut warnings = Vec::new();
        if !r.is_on() {
            if r.port.is_some() || r.client_id.is_some() {
                warnings.push(format!(
                    "{object}: redundant_port or redundant_client_id is set but redundant_host \
                     is not, so the line has one connection and they are not used"
                ));
            }
            return Ok(warnings);
        }
        let refuse = |reason: &str| ConfigError::InvalidValue {
            object: object.to_string(),
            param: "redundant_host".into(),
            value: describe_host_list(&r.hosts, self.redundant_port()),
            reason: reason.into(),
        };
        if self.is_edge_node() {
            return Err(refuse(
                "a Sparkplug edge node follows one server at a time (it moves with the primary \
                 host's Next Server), so payload type 'Sparkplug Edge Node' takes no second \
                 connection; list the other broker in host instead",
            ));
        }
        if self.auth == crate::config::Auth::AzureSas {
            return Err(refuse(
                "auth = azure-sas connects one device to one IoT Hub, which allows one \
                 connection per device id; list another hub in host instead",
            ));
        }
        if r.client_id.as_deref().is_some_and(str::is_empty) && !self.clean_session {
            return Err(ConfigError::InvalidValue {
                object: object.to_string(),
                param: "redundant_client_id".into(),
                value: String::new(),
                reason: "an empty client id lets the broker assign one, which needs \
                         clean_session YES"
                    .into(),
            });
        }
        Ok(warnings)
    }

    /// The port of connection B: `redundant_port`, else the line's.
    pub fn redundant_port(&self) -> u16 {
        self.redundant.port.unwrap_or_else(|| self.port())
    }

    /// The client id of connection B: `redundant_client_id`, else the line's.
    pub fn redundant_client_id(&self) -> &str {
        self.redundant
            .client_id
            .as_deref()
            .unwrap_or(&self.client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(params: &[(&str, &str)]) -> Result<(LineConfig, Warnings), ConfigError> {
        let mut all = vec![("host", "a1;a2")];
        all.extend_from_slice(params);
        LineConfig::from_params("line L", all)
    }

    #[test]
    fn second_connection_and_its_defaults() {
        let (c, _) = parse(&[]).unwrap();
        assert!(!c.redundant.is_on());
        let (c, _) = parse(&[("redundant_host", "b1, b2"), ("port", "1884")]).unwrap();
        assert_eq!(
            c.redundant.hosts,
            [HostEntry::new("b1"), HostEntry::new("b2")]
        );
        assert_eq!(c.redundant_port(), 1884);
        assert_eq!(c.redundant_client_id(), "D2000kom");
        assert_eq!(c.redundant.window, DEFAULT_WINDOW);
        let (c, _) = parse(&[
            ("redundant_host", "b1"),
            ("redundant_port", "2883"),
            ("redundant_client_id", "scada-b"),
            ("redundant_window", "2.5"),
        ])
        .unwrap();
        assert_eq!(c.redundant_port(), 2883);
        assert_eq!(c.redundant_client_id(), "scada-b");
        assert_eq!(c.redundant.window, Duration::from_millis(2500));
    }

    #[test]
    fn bad_values_name_the_line_the_parameter_and_the_value() {
        // (parameters, the parameter the error names, why)
        type Row<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let rows: &[Row] = &[
            (
                &[("redundant_host", " ; ")],
                "redundant_host",
                "at least one host",
            ),
            (
                &[("redundant_host", "b 1")],
                "redundant_host",
                "white space",
            ),
            (
                &[("redundant_port", "0")],
                "redundant_port",
                "from 1 to 65535",
            ),
            (
                &[("redundant_window", "0")],
                "redundant_window",
                "more than 0",
            ),
            (&[("redundant_window", "x")], "redundant_window", "seconds"),
            (&[("redundant_window", "7200")], "redundant_window", "3600"),
            (
                &[("redundant_host", "b"), ("redundant_client_id", "")],
                "redundant_client_id",
                "clean_session",
            ),
            (
                &[
                    ("redundant_host", "b"),
                    ("payload_type", "Sparkplug Edge Node"),
                ],
                "redundant_host",
                "one server at a time",
            ),
        ];
        for (params, param, why) in rows {
            let e = parse(params).unwrap_err().to_string();
            assert!(e.contains("line L"), "{e}");
            assert!(e.contains(param), "{params:?}: {e}");
            assert!(e.contains(why), "{params:?}: {e}");
        }
    }

    #[test]
    fn b_settings_without_b_are_warned_about() {
        let (_, w) = parse(&[("redundant_port", "2883")]).unwrap();
        assert!(
            w.iter().any(|w| w.contains("redundant_host is not")),
            "{w:?}"
        );
        let (c, _) = parse(&[("redundant_host", "")]).unwrap();
        assert!(!c.redundant.is_on());
    }
}
