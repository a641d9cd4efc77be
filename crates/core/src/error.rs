//! Errors of configuration and of host requests. Each names the object and the offending value.

/// A configuration the line refuses. `object` reads like `line 'L1'`, `station 'battery'` or
/// `tag 'battery.topic'`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{object}: unknown parameter '{param}'{suggestion}")]
    UnknownParameter {
        object: String,
        param: String,
        suggestion: String,
    },
    #[error("{object}: parameter '{param}' = '{value}' is invalid: {reason}")]
    InvalidValue {
        object: String,
        param: String,
        value: String,
        reason: String,
    },
    #[error("{object}: address '{address}' is invalid: {reason}")]
    InvalidAddress {
        object: String,
        address: String,
        reason: String,
    },
    #[error("{object}: address '{address}' is already used by station '{other}'")]
    DuplicateAddress {
        object: String,
        address: String,
        other: String,
    },
    #[error("{object}: value type {value_type} does not fit address '{address}': {reason}")]
    TypeMismatch {
        object: String,
        address: String,
        value_type: String,
        reason: String,
    },
    #[error("{object}: default value '{value}' is invalid: {reason}")]
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
    UnknownStation(u64),
    #[error("line '{line}': no tag with id {id}")]
    UnknownTag { line: String, id: u64 },
    #[error("{0}")]
    State(String),
}
