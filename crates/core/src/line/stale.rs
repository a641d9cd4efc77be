//! STALE: while the line is connected, a station that received nothing for its STALE time goes
//! to comm error with its inputs invalid; its next message brings it back. The clocks start when
//! the line becomes ready (again at each reconnect) and when a station is switched on; one
//! [`StaleClock`](crate::stale::StaleClock) holds the line's deadlines.

use std::time::{Duration, Instant};

use super::Line;
use crate::ids::StationIndex;
use crate::station::StationCommand;

/// A station's STALE state, kept in its `Station`.
#[derive(Debug, Default)]
pub(super) struct StaleState {
    /// When it last received a message, or when its clock started.
    heard: Option<Instant>,
    /// It has an entry in the line's clock.
    armed: bool,
    /// It went stale and waits for a message.
    pub stale: bool,
}

impl Line {
    /// The connection became ready at `now`: every watched station that is on starts its clock.
    pub(super) fn start_stale_clocks(&mut self, now: Instant) {
        let mut entries = Vec::new();
        for (i, s) in self.stations.iter_mut().enumerate() {
            s.staleness = StaleState::default();
            if let Some(d) = s.params.stale.filter(|_| s.command == StationCommand::On) {
                s.staleness.heard = Some(now);
                s.staleness.armed = true;
                entries.push((now + d, i));
            }
        }
        self.stale_clock.reset(entries);
    }

    /// The connection ended: no station is watched until it is ready again.
    pub(super) fn stop_stale_clocks(&mut self) {
        self.stale_clock.clear();
        for s in &mut self.stations {
            s.staleness = StaleState::default();
        }
    }

    /// Station `i` was switched on at `now`: its clock starts when the line is ready.
    pub(super) fn restart_stale_clock(&mut self, i: StationIndex, now: Instant) {
        self.stations[i].staleness.stale = false;
        if self.is_ready() {
            self.station_heard_at(i, now);
        }
    }

    /// Station `i` took a message at `now`; a stale station is ok again (reported before its new
    /// values).
    pub(super) fn station_heard(&mut self, i: StationIndex, now: Instant, wall_ns: i64) {
        if self.stations[i].params.stale.is_none() {
            return;
        }
        self.station_heard_at(i, now);
        if std::mem::take(&mut self.stations[i].staleness.stale) {
            self.refresh_station(i, "data received", wall_ns);
        }
    }

    fn station_heard_at(&mut self, i: StationIndex, now: Instant) {
        let s = &mut self.stations[i];
        let Some(d) = s.params.stale else { return };
        s.staleness.heard = Some(now);
        if !s.staleness.armed {
            s.staleness.armed = true;
            self.stale_clock.arm(i.0, now + d);
        }
    }

    /// Reading was paused for `d`: silence during the pause is not the stations' fault.
    pub(super) fn postpone_stale_clocks(&mut self, d: Duration) {
        for s in &mut self.stations {
            if let Some(heard) = &mut s.staleness.heard {
                *heard += d;
            }
        }
    }

    /// Declares the stations stale whose time is up at `now`; re-arms the others at their real
    /// deadline.
    pub(super) fn check_stale(&mut self, now: Instant, wall_ns: i64) {
        while let Some(k) = self.stale_clock.pop_due(now) {
            let i = StationIndex(k);
            let s = &mut self.stations[i];
            s.staleness.armed = false;
            let (Some(d), Some(heard)) = (s.params.stale, s.staleness.heard) else {
                continue;
            };
            if s.command != StationCommand::On {
                continue;
            }
            let due = heard + d;
            if due > now {
                s.staleness.armed = true;
                self.stale_clock.arm(k, due);
                continue;
            }
            s.staleness.stale = true;
            let reason = format!("no message for {} s (STALE)", d.as_secs_f64());
            self.refresh_station(i, &reason, wall_ns);
        }
    }
}
