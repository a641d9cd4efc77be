//! What the line reports to the host.

use crate::ids::{StationId, TagId};
use crate::station::StationState;
use crate::value::Value;

/// Bits of [`Event::TagValue`] flags; the same numbers as the C ABI's `MQL_FLAG_*`.
pub const FLAG_VALID: u32 = 1;
pub const FLAG_TIME_FROM_PAYLOAD: u32 = 2;
pub const FLAG_DUPLICATE: u32 = 4;
pub const FLAG_RETAINED: u32 = 8;

#[derive(Debug, Clone, PartialEq)]
pub enum LineEvent {
    /// Connected and subscribed to `host` (host:port).
    Connected {
        host: String,
        time_ns: i64,
    },
    Disconnected {
        reason: String,
        time_ns: i64,
    },
}

/// How much a [`Event::Log`] matters; the shell maps it to the host's log levels and filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Every event with a `time_ns` carries the wall time (Unix ns) it happened at, as the shell
/// passed it in: the host sees when it happened, not when it polled.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A tag's new value; `None` means the tag is invalid.
    TagValue {
        station: StationId,
        tag: TagId,
        value: Option<Value>,
        time_ns: i64,
        flags: u32,
    },
    StationState {
        station: StationId,
        state: StationState,
        reason: String,
        time_ns: i64,
    },
    Line(LineEvent),
    /// The end of a write: `error` is `None` on success.
    WriteDone {
        request: u64,
        station: StationId,
        tag: TagId,
        error: Option<String>,
        time_ns: i64,
    },
    /// A warning or note for the host's log. The core has no logger: the shell logs these with
    /// the line's name, under the host's log level. Outside text in `text` is already escaped.
    Log {
        level: LogLevel,
        text: String,
    },
}
