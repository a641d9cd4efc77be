//! The ACK_ID orchestration of a gated station: a held message is shown (its tags set), the host
//! confirms it by writing its IN_ID to ACK_ID, the broker gets the confirmation and the next held
//! message is shown; a message left unconfirmed too long is warned about once.

use std::time::Instant;

use super::Line;
use crate::ack_gate::{Held, Refusal};
use crate::event::LogLevel;
use crate::ids::{StationIndex, TagIndex};
use crate::value::Value;

impl Line {
    /// Shows a message of a gated station: its IN_* tags are set and it waits for ACK_ID.
    pub(super) fn show(&mut self, i: StationIndex, m: Held, now: Instant) {
        let topic = super::emit::topic(&m.publish);
        self.fill_inputs_as(i, &m.publish, topic, m.encoding, m.wall_ns);
        self.stations[i].gate.mark_shown(&m, now);
    }

    /// The host wrote ACK_ID (tag `t`): confirm the shown message and show the next held one.
    /// The tag is named only in an error: the normal path formats nothing.
    pub(super) fn acknowledge(
        &mut self,
        i: StationIndex,
        t: TagIndex,
        value: &Value,
    ) -> Result<(), AckError> {
        let Value::Int(written) = *value else {
            return Err(AckError::NotAnId {
                object: self.tag_object(t),
                value: value.to_text(),
            });
        };
        let refusal = match self.stations[i].gate.confirm(written) {
            Ok(shown) => {
                // A redundant line acknowledges the message on its connection and the copy the
                // other one delivered on that one (inbound.rs keeps it with the message).
                self.confirm_in(shown.link, shown.pkid, shown.epoch);
                if let Some(twin) = shown.twin {
                    self.confirm_in(twin.link, twin.pkid, twin.epoch);
                }
                return Ok(());
            }
            Err(refusal) => refusal,
        };
        let (object, station) = (self.tag_object(t), self.stations[i].name.clone());
        Err(match refusal {
            Refusal::NothingShown => AckError::NothingShown {
                object,
                written,
                station,
            },
            Refusal::Mismatch { expected } => AckError::Mismatch {
                object,
                written,
                station,
                expected,
            },
        })
    }

    /// After a confirmation has been reported, the next held message is shown.
    pub(super) fn show_next(&mut self, i: StationIndex, now: Instant) {
        if let Some(next) = self.stations[i].gate.take_next() {
            self.show(i, next, now);
        }
    }

    /// Warns once per shown message that waited [`crate::ack_gate::UNCONFIRMED_WARNING_AFTER`]
    /// for ACK_ID.
    pub(super) fn warn_unconfirmed(&mut self, now: Instant) {
        let unconfirmed = self.link.session.unconfirmed()
            + self
                .redundancy
                .as_ref()
                .map_or(0, |r| r.b.session.unconfirmed());
        for &i in &self.gated_stations {
            let s = &mut self.stations[i];
            let Some((pkid, waited)) = s.gate.due_warning(now) else {
                continue;
            };
            let text = format!(
                "station '{}' has waited {}s for the host to confirm IN_ID {pkid} through ACK_ID \
                 ({} more messages held, {unconfirmed} unconfirmed on the line); unconfirmed QoS \
                 1/2 messages fill the broker's in-flight window, which stops delivery to the \
                 whole line",
                s.name,
                waited.as_secs(),
                s.gate.held(),
            );
            super::emit::log_to(&mut self.events, LogLevel::Warn, text);
        }
    }
}

/// Why an ACK_ID write was refused. `object` names the ACK_ID tag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum AckError {
    #[error("{object}: ACK_ID takes the IN_ID value, not '{value}'")]
    NotAnId { object: String, value: String },
    #[error(
        "{object}: ACK_ID {written} written, but station '{station}' has no message waiting for \
         confirmation"
    )]
    NothingShown {
        object: String,
        written: i64,
        station: String,
    },
    #[error(
        "{object}: ACK_ID {written} does not confirm the message shown on station '{station}': \
         expected IN_ID {expected}"
    )]
    Mismatch {
        object: String,
        written: i64,
        station: String,
        expected: u16,
    },
}
