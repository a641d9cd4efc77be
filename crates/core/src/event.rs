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
    },
    Disconnected {
        reason: String,
    },
}

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
    },
    Line(LineEvent),
    /// The end of a write: `error` is `None` on success.
    WriteDone {
        request: u64,
        station: StationId,
        tag: TagId,
        error: Option<String>,
    },
}

/// Wall-clock time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}
