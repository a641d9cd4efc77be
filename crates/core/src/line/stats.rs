//! The line's counters: plain integers bumped on the receive path (no allocation per message),
//! read by the host through [`Line::stats`] and [`Line::station_stats`].

use super::{Line, LinkId};
use crate::error::ConfigError;
use crate::ids::{StationId, StationIndex};
use crate::station::StationState;

/// The line's state as its last line event reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineState {
    Connected,
    Disconnected,
}

/// Counters of the whole line (see docs/abi.md, `MqlLineStats`, for what each counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineStats {
    /// `None` until the first connection became ready or an attempt ended.
    pub state: Option<LineState>,
    pub received: u64,
    pub bytes_received: u64,
    pub unrouted: u64,
    pub dropped_off: u64,
    pub dropped_simulated: u64,
    pub payload_errors: u64,
    pub will_messages: u64,
    /// Messages held now by the stations' ACK_ID gates (a gauge, summed when asked).
    pub held: u64,
    pub writes_ok: u64,
    pub writes_failed: u64,
    pub connection_attempts: u64,
    pub reconnects: u64,
    /// Wall time (Unix ns) of the last PUBLISH; `None` before the first.
    pub last_message_ns: Option<i64>,
    /// Sparkplug edge node store-and-forward: writes stored, forwarded after a birth, dropped
    /// beyond `store_max_messages` (or unreadable from `store_path`), held in the store now.
    pub edge_stored: u64,
    pub edge_forwarded: u64,
    pub edge_dropped: u64,
    pub edge_held: u64,
    /// Per connection (A, and B of a redundant line): see [`super::LinkStats`].
    pub link_a_state: Option<LineState>,
    pub link_b_state: Option<LineState>,
    pub link_a_received: u64,
    pub link_a_duplicates: u64,
    pub link_a_reconnects: u64,
    pub link_b_received: u64,
    pub link_b_duplicates: u64,
    pub link_b_reconnects: u64,
    pub link_a_connection_attempts: u64,
    pub link_b_connection_attempts: u64,
}

/// Counters of one station.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StationStats {
    /// `None` while it has reported no state (before start).
    pub state: Option<StationState>,
    /// PUBLISHes routed to it, whatever became of them.
    pub received: u64,
    /// Those dropped: it was off or simulated, or its ACK_ID gate was full.
    pub dropped: u64,
    /// Messages held now by its ACK_ID gate behind the shown one (a gauge).
    pub held: u64,
    pub last_message_ns: Option<i64>,
}

/// A station's own counters, kept in its `Station`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StationCounters {
    pub received: u64,
    /// Dropped because the station was off or simulated (the gate counts its own drops).
    pub dropped: u64,
    pub last_message_ns: Option<i64>,
}

impl Line {
    /// The line's counters now.
    pub fn stats(&self) -> LineStats {
        let held = self.stations.iter().map(|s| s.gate.held() as u64).sum();
        let (edge_stored, edge_forwarded, edge_dropped, edge_held) = self.edge_counters();
        let a = self.link_stats(LinkId::A).unwrap_or_default();
        let b = self.link_stats(LinkId::B).unwrap_or_default();
        LineStats {
            held,
            link_a_state: a.state,
            link_b_state: b.state,
            link_a_received: a.received,
            link_a_duplicates: a.duplicates,
            link_a_reconnects: a.reconnects,
            link_b_received: b.received,
            link_b_duplicates: b.duplicates,
            link_b_reconnects: b.reconnects,
            link_a_connection_attempts: a.connection_attempts,
            link_b_connection_attempts: b.connection_attempts,
            edge_stored,
            edge_forwarded,
            edge_dropped,
            edge_held,
            ..self.stats
        }
    }

    /// One station's counters now.
    pub fn station_stats(&self, station: StationId) -> Result<StationStats, ConfigError> {
        let &i = self
            .station_ids
            .get(&station)
            .ok_or(ConfigError::UnknownStation(station))?;
        Ok(self.station_stats_at(i))
    }

    fn station_stats_at(&self, i: StationIndex) -> StationStats {
        let s = &self.stations[i];
        StationStats {
            state: s.state,
            received: s.counters.received,
            dropped: s.counters.dropped + s.gate.dropped(),
            held: s.gate.held() as u64,
            last_message_ns: s.counters.last_message_ns,
        }
    }
}
