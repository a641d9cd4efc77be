//! The redundant line's parameters (issue 21): a second connection, B, to `redundant_host` beside
//! connection A to `host`, and the window within which the same message through both is shown
//! once (line/duplicates.rs). Read with the other line parameters by config.rs, and checked
//! here against what config.rs tells of them ([`LineSide`]).

use std::time::Duration;

use crate::error::ConfigError;
use crate::host_list::{describe_host_list, from_param, HostEntry};
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
                    from_param(p)?
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

/// What the rest of the line's configuration means for its second connection.
pub(crate) struct LineSide {
    /// The line is a Sparkplug edge node.
    pub edge_node: bool,
    /// `auth = azure-sas`.
    pub azure_sas: bool,
    pub clean_session: bool,
    /// Connection B's port (`redundant_port`, else the line's).
    pub port: u16,
}

impl RedundantConfig {
    /// A redundant line holds two connections with the same session settings; what follows one
    /// server at a time, or is bound to one, cannot. Returns the warnings.
    pub(crate) fn validate(
        &self,
        object: &str,
        line: LineSide,
    ) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        if !self.is_on() {
            if self.port.is_some() || self.client_id.is_some() {
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
            value: describe_host_list(&self.hosts, line.port),
            reason: reason.into(),
        };
        if line.edge_node {
            return Err(refuse(
                "a Sparkplug edge node follows one server at a time (it moves with the primary \
                 host's Next Server), so payload type 'Sparkplug Edge Node' takes no second \
                 connection; list the other broker in host instead",
            ));
        }
        if line.azure_sas {
            return Err(refuse(
                "auth = azure-sas connects one device to one IoT Hub, which allows one \
                 connection per device id; list another hub in host instead",
            ));
        }
        if self.client_id.as_deref().is_some_and(str::is_empty) && !line.clean_session {
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
}
