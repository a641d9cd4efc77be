//! One connection of the line to a broker: its MQTT session, host rotation and back-off, the
//! transport's deadlines and what it remembers between attempts. A line has connection A (to
//! `host`); a redundant line (issue 21) has connection B (to `redundant_host`) beside it, each
//! failing over within its own host list. What is the line's (stations, routing, writes, events)
//! stays in `Line`; everything a connection needs for itself is here, so the single line keeps
//! its one connection where it always was and pays nothing for the second.

use crate::connection::{IoDeadlines, Reconnect};
pub use crate::ids::LinkId;
use crate::read_pace::ReadPace;
use crate::session::Session;
use std::time::Instant;

use super::stats::LineState;

/// Where a broker sent the connection (MQTT 5 server reference), and whether the attempt there
/// was made.
pub(super) struct Redirect {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) tried: bool,
}

/// One connection's state.
pub(super) struct Link {
    pub(super) session: Session,
    /// Host rotation and back-off within this connection's own host list.
    pub(super) reconnect: Reconnect,
    /// Half-read packets and writes the broker does not take.
    pub(super) io: IoDeadlines,
    /// When the next read may be (read_pace.rs).
    pub(super) pace: ReadPace,
    /// The `host:port` of the open transport.
    pub(super) host: Option<String>,
    /// The broker accepted the current connection at some point (it may be closing now); false
    /// again once its end was reported (`connection_ended`), so a failed attempt after it does
    /// not count as ready.
    pub(super) was_ready: bool,
    /// The connection that closed, when the broker had accepted it: its host and why it ended,
    /// for the log line `connection_ended` writes.
    pub(super) closed: Option<(String, String)>,
    /// Some connection was ready before: the next ready one is a reconnect.
    pub(super) ever_ready: bool,
    /// A server reference from the broker (MQTT 5 0x9C/0x9D): the next attempt goes there.
    pub(super) redirect: Option<Redirect>,
    /// Sparkplug host: the time stamp (ms) of this connection's STATE will; its `online`
    /// message repeats it. Each broker of a redundant line gets its own (Sparkplug 3.0: a host
    /// on several servers keeps a STATE per server).
    pub(super) state_ms: u64,
    pub(super) counters: LinkCounters,
}

impl Link {
    pub(super) fn new(now: Instant) -> Link {
        Link {
            session: Session::new(now),
            reconnect: Reconnect::default(),
            io: IoDeadlines::default(),
            pace: ReadPace::default(),
            host: None,
            was_ready: false,
            closed: None,
            ever_ready: false,
            redirect: None,
            state_ms: 0,
            counters: LinkCounters::default(),
        }
    }
}

/// A connection's own counters (a redundant line shows them per connection).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LinkCounters {
    pub(super) state: Option<LineState>,
    pub(super) received: u64,
    pub(super) duplicates: u64,
    pub(super) reconnects: u64,
    pub(super) connection_attempts: u64,
}

/// The state and counters of one connection of the line (`Line::link_stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// `None` until its first connection became ready or an attempt ended.
    pub state: Option<LineState>,
    /// The `host:port` it is connected to; `None` while it is not.
    pub host: Option<String>,
    /// PUBLISH messages it took from its broker, copies included.
    pub received: u64,
    /// Those that were copies of a message the other connection delivered first, not shown.
    pub duplicates: u64,
    /// Connections made again after a ready connection was lost or closed.
    pub reconnects: u64,
    /// Connections attempted.
    pub connection_attempts: u64,
}
