//! Errors of configuration and of host requests. Each names the object and the offending value.
//! Also why a publication cannot be taken (`PublishError`): the session refuses one for its own
//! reasons and for the broker's limits (limits.rs), so the error lives below both.
//!
//! Values are shown through [`quote`]: escaped, and cut after their start when long, so that the
//! reason at the end of a message is always visible.

use crate::ids::{StationId, TagId};
use crate::text::quote;

/// A configuration the line refuses. `object` reads like `line 'L1'`, `station 'battery'` or
/// `tag 'battery.topic'`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{object}: unknown parameter {}{suggestion}", quote(.param))]
    UnknownParameter {
        object: String,
        param: String,
        suggestion: String,
    },
    #[error("{object}: parameter {} = {} is invalid: {reason}", quote(.param), quote(.value))]
    InvalidValue {
        object: String,
        param: String,
        value: String,
        reason: String,
    },
    /// One parameter given twice, in two spellings (`topic_filter` and `Topic Filter`) or under
    /// two of its names (`host` and `hosts`): which one was meant cannot be known.
    #[error(
        "{object}: parameter '{canonical}' is given twice, as {} and as {}; give it once",
        quote(.first),
        quote(.second)
    )]
    DuplicateParameter {
        object: String,
        canonical: String,
        first: String,
        second: String,
    },
    #[error("{object}: address {} is invalid: {reason}", quote(.address))]
    InvalidAddress {
        object: String,
        address: String,
        reason: String,
    },
    #[error("{object}: address {} is already used by station {}", quote(.address), quote(.other))]
    DuplicateAddress {
        object: String,
        address: String,
        other: String,
    },
    #[error(
        "{object}: value type {value_type} does not fit address {}: {reason}",
        quote(.address)
    )]
    TypeMismatch {
        object: String,
        address: String,
        value_type: String,
        reason: String,
    },
    #[error("{object}: default value {} is invalid: {reason}", quote(.value))]
    InvalidDefault {
        object: String,
        value: String,
        reason: String,
    },
    #[error("{object}: {what} id {id} is already used")]
    DuplicateId {
        object: String,
        what: &'static str,
        id: u64,
    },
    #[error("no station with id {0}")]
    UnknownStation(StationId),
    #[error("line '{line}': no tag with id {id}")]
    UnknownTag { line: String, id: TagId },
    #[error("{0}")]
    State(String),
}

/// How an object is named in messages: `station 'battery'`, its name quoted like any value.
pub fn object(kind: &str, name: &str) -> String {
    format!("{kind} {}", quote(name))
}

/// Why the session cannot take a publication now: its own state, or a limit the broker announced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PublishError {
    #[error("the line is not connected to a broker")]
    NotConnected,
    #[error("all 65535 packet ids are in flight")]
    PacketIdsInFlight,
    #[error("the broker takes messages up to QoS {maximum} (its Maximum QoS); this write asks for QoS {qos}")]
    QosNotSupported { qos: u8, maximum: u8 },
    #[error("the broker announced that it keeps no retained messages; this write is retained")]
    RetainNotSupported,
}
