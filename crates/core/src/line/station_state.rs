//! A station's state: what it shows follows from its command (on, off, simulated), the
//! connection and a received will message; entering an error state invalidates its input tags.

use std::time::Instant;

use super::Line;
use crate::error::ConfigError;
use crate::event::Event;
use crate::ids::{StationId, StationIndex};
use crate::station::{StationCommand, StationState};

impl Line {
    /// Switches a station at `now` (`wall_ns` stamps the events): a station switched on starts
    /// its STALE clock.
    pub fn station_command(
        &mut self,
        station_id: StationId,
        cmd: StationCommand,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ConfigError> {
        let &i = self
            .station_ids
            .get(&station_id)
            .ok_or(ConfigError::UnknownStation(station_id))?;
        let was = std::mem::replace(&mut self.stations[i].command, cmd);
        if cmd == StationCommand::On && was != StationCommand::On {
            self.restart_stale_clock(i, now);
        }
        if self.stations[i].subscription.is_some()
            && (cmd == StationCommand::On) != (was == StationCommand::On)
        {
            // Its subscription follows it: UNSUBSCRIBE when it leaves on, SUBSCRIBE when back.
            let filters = self.station_filters();
            if let Some(r) = self.redundancy.as_mut() {
                r.b.session.set_station_filters(filters.clone(), now);
            }
            self.link.session.set_station_filters(filters, now);
        }
        let reason = match cmd {
            StationCommand::On => "switched on",
            StationCommand::Off => "switched off",
            StationCommand::Simulate => "switched to simulation",
        };
        if self.started {
            self.refresh_station(i, reason, wall_ns);
            self.edge_station_switched(i, wall_ns);
        }
        Ok(())
    }

    /// The state a station should show now, reported when it changed.
    pub(super) fn refresh_station(&mut self, i: StationIndex, reason: &str, wall_ns: i64) {
        let connected = self.is_ready();
        let s = &self.stations[i];
        let state = match s.command {
            StationCommand::Off => StationState::Off,
            StationCommand::Simulate => StationState::Simulation,
            StationCommand::On if !connected => StationState::CommError,
            StationCommand::On if s.device_lost => StationState::HardError,
            StationCommand::On if s.staleness.stale => StationState::CommError,
            StationCommand::On => StationState::Ok,
        };
        self.set_station_state(i, state, reason, wall_ns);
    }

    fn set_station_state(
        &mut self,
        i: StationIndex,
        state: StationState,
        reason: &str,
        wall_ns: i64,
    ) {
        if self.stations[i].state == Some(state) {
            return;
        }
        self.stations[i].state = Some(state);
        self.events.push_back(Event::StationState {
            station: self.stations[i].id,
            state,
            reason: reason.to_string(),
            time_ns: wall_ns,
        });
        if matches!(state, StationState::CommError | StationState::HardError) {
            self.invalidate_inputs(i, wall_ns);
        }
    }

    fn invalidate_inputs(&mut self, station: StationIndex, wall_ns: i64) {
        let station_id = self.stations[station].id;
        for &t in &self.stations[station].tags {
            let tag = &mut self.tags[t];
            if tag.valid && tag.address.is_input() {
                tag.valid = false;
                self.events.push_back(Event::TagValue {
                    station: station_id,
                    tag: tag.id,
                    value: None,
                    time_ns: wall_ns,
                    flags: 0,
                });
            }
        }
    }
}
