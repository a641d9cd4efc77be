//! Counting a received message for its station and the line, and tracing where it went: taken,
//! unrouted, or dropped because its station is off or simulated. A station that takes a message
//! restarts its STALE clock.

use std::time::Instant;

use super::emit::topic;
use super::Line;
use crate::codec::Publish;
use crate::event::{LogLevel, RouteOutcome};
use crate::ids::StationIndex;
use crate::payload;
use crate::station::StationCommand;

impl Line {
    /// Counts and traces a message routed to `routed` (`None`: to no station). Returns the
    /// station when it is on and takes the message (its STALE clock restarts); a station that
    /// is off or simulated drops it.
    pub(super) fn account(
        &mut self,
        p: &Publish,
        routed: Option<StationIndex>,
        now: Instant,
        wall_ns: i64,
    ) -> Option<StationIndex> {
        let Some(i) = routed else {
            self.stats.unrouted += 1;
            self.trace(p, RouteOutcome::Unrouted, None, wall_ns);
            let text = format!(
                "message matches no station topic={} unrouted={}",
                payload::escape(topic(p)),
                self.stats.unrouted
            );
            self.log(LogLevel::Debug, text);
            return None;
        };
        let s = &mut self.stations[i];
        s.counters.received += 1;
        s.counters.last_message_ns = Some(wall_ns);
        let dropped = match s.command {
            StationCommand::On => None,
            StationCommand::Off => Some(RouteOutcome::StationOff),
            StationCommand::Simulate => Some(RouteOutcome::Simulated),
        };
        if let Some(outcome) = dropped {
            s.counters.dropped += 1;
            if outcome == RouteOutcome::StationOff {
                self.stats.dropped_off += 1;
            } else {
                self.stats.dropped_simulated += 1;
            }
            let text = format!(
                "message for a station that is off or simulated is dropped station={} topic={}",
                self.stations[i].name,
                payload::escape(topic(p))
            );
            self.trace(p, outcome, Some(i), wall_ns);
            self.log(LogLevel::Debug, text);
            return None;
        }
        self.trace(p, RouteOutcome::Taken, Some(i), wall_ns);
        self.station_heard(i, now, wall_ns);
        Some(i)
    }
}
