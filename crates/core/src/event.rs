//! What the line reports to the host.

use crate::ids::LinkId;
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
        /// The connection it is about (always A on a line with one connection).
        link: LinkId,
    },
    Disconnected {
        reason: String,
        time_ns: i64,
        /// The connection it is about (always A on a line with one connection).
        link: LinkId,
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

/// Where a received message went (the routing trace, [`Event::Route`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOutcome {
    /// The station took it (it fills its tags, or holds it behind its ACK_ID gate).
    Taken,
    /// No station's topic rule matches.
    Unrouted,
    /// Its station is off: dropped.
    StationOff,
    /// Its station is in simulation: dropped.
    Simulated,
    /// A station's will message: the device is gone.
    Will,
}

impl RouteOutcome {
    pub fn name(self) -> &'static str {
        match self {
            RouteOutcome::Taken => "taken",
            RouteOutcome::Unrouted => "unrouted",
            RouteOutcome::StationOff => "station_off",
            RouteOutcome::Simulated => "simulated",
            RouteOutcome::Will => "will",
        }
    }
}

/// The most payload bytes an [`Event::Route`] carries; the C ABI's `MQL_ROUTE_PAYLOAD_MAX`.
pub const ROUTE_PAYLOAD_MAX: usize = 256;

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
    /// One connection of a redundant line changed state (issue 21). The line's own state is
    /// [`Event::Line`], which changes only with the first ready connection and the last lost:
    /// a host that knows nothing of redundancy sees the line connected while either is.
    Link(LineEvent),
    /// The end of a write: `error` is `None` on success.
    WriteDone {
        request: u64,
        station: StationId,
        tag: TagId,
        error: Option<String>,
        time_ns: i64,
    },
    /// Where one received message went; only while the routing trace is on. `topic` and
    /// `payload` are as received (the payload as lossy UTF-8, at most [`ROUTE_PAYLOAD_MAX`]
    /// bytes), not escaped: the host escapes them for its output. `station` is the station
    /// that took it, or `None` when unrouted.
    Route {
        topic: String,
        payload: String,
        outcome: RouteOutcome,
        station: Option<StationId>,
        time_ns: i64,
    },
    /// A warning or note for the host's log. The core has no logger: the shell logs these with
    /// the line's name, under the host's log level. Outside text in `text` is already escaped.
    Log {
        level: LogLevel,
        text: String,
    },
}
