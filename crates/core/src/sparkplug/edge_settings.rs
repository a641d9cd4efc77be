//! The line parameters of a Sparkplug B edge node (`payload_type = "Sparkplug Edge Node"`): the
//! primary host it waits for and its store-and-forward bound and file (docs/sparkplug.md,
//! "The line as an edge node").

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
