//! The ACK_ID gate of one station: one message shown and waiting for the host's confirmation,
//! the rest held in arrival order. Held messages survive reconnects: the session knows them and
//! does not hand the broker's redelivery over again.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::session::Publish;

/// How long a shown message may wait for ACK_ID before the line warns. The held-count warning
/// alone never fires when the broker's in-flight window is smaller than the count (mosquitto's
/// `max_inflight_messages` may be 1 or 2), yet such a window stalls the line just the same.
pub const UNCONFIRMED_WARNING_AFTER: Duration = Duration::from_secs(5);

/// A message waiting for its turn, with the broker session it belongs to.
pub struct Held {
    pub publish: Publish,
    pub wall_ns: i64,
    pub epoch: u64,
}

/// The shown message: what its confirmation must acknowledge.
#[derive(Clone, Copy, Debug)]
pub struct Shown {
    pub pkid: u16,
    pub epoch: u64,
    since: Instant,
    warned: bool,
}

/// Why an ACK_ID write confirms nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NothingShown,
    Mismatch { expected: u16 },
}

#[derive(Default)]
pub struct AckGate {
    shown: Option<Shown>,
    held: VecDeque<Held>,
    /// The held count at which the last warning was given (10, 100, 1000...).
    warned_at: usize,
}

impl AckGate {
    /// Takes a new message: handed back when it can be shown now, held otherwise.
    pub fn offer(&mut self, m: Held) -> Option<Held> {
        if self.shown.is_none() {
            return Some(m);
        }
        self.held.push_back(m);
        None
    }

    /// The number of held messages when it has just reached 10, 100, 1000...: time to warn.
    pub fn held_warning(&mut self) -> Option<usize> {
        let held = self.held.len();
        if held >= 10 && held >= self.warned_at * 10 {
            self.warned_at = held;
            return Some(held);
        }
        None
    }

    /// The IN_ID the host must write to confirm, if a message is shown.
    pub fn waiting(&self) -> Option<u16> {
        self.shown.map(|s| s.pkid)
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    pub fn mark_shown(&mut self, m: &Held, now: Instant) {
        self.shown = Some(Shown {
            pkid: m.publish.pkid,
            epoch: m.epoch,
            since: now,
            warned: false,
        });
    }

    /// The host wrote `written` to ACK_ID: the shown message is confirmed when it matches.
    pub fn confirm(&mut self, written: i64) -> Result<Shown, Refusal> {
        let shown = self.shown.ok_or(Refusal::NothingShown)?;
        if written != i64::from(shown.pkid) {
            return Err(Refusal::Mismatch {
                expected: shown.pkid,
            });
        }
        self.shown = None;
        if self.held.len() < self.warned_at {
            self.warned_at = 0;
        }
        Ok(shown)
    }

    /// The next held message, once nothing is shown.
    pub fn take_next(&mut self) -> Option<Held> {
        if self.shown.is_some() {
            return None;
        }
        self.held.pop_front()
    }

    /// When the shown message will have waited long enough for a warning.
    pub fn warning_deadline(&self) -> Option<Instant> {
        self.shown
            .filter(|s| !s.warned)
            .map(|s| s.since + UNCONFIRMED_WARNING_AFTER)
    }

    /// The shown message and how long it has waited, once per message, when the warning is due.
    pub fn due_warning(&mut self, now: Instant) -> Option<(u16, Duration)> {
        let shown = self.shown.as_mut()?;
        if shown.warned || now < shown.since + UNCONFIRMED_WARNING_AFTER {
            return None;
        }
        shown.warned = true;
        Some((shown.pkid, now.saturating_duration_since(shown.since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::QoS;

    fn msg(pkid: u16) -> Held {
        let mut publish = Publish::new("t", QoS::AtLeastOnce, "x");
        publish.pkid = pkid;
        Held {
            publish,
            wall_ns: 0,
            epoch: 0,
        }
    }

    #[test]
    fn one_shown_the_rest_held_in_order() {
        let now = Instant::now();
        let mut g = AckGate::default();
        let first = g.offer(msg(1)).expect("nothing shown: show it");
        g.mark_shown(&first, now);
        assert!(g.offer(msg(2)).is_none());
        assert!(g.offer(msg(3)).is_none());
        assert!(g.take_next().is_none(), "1 is still shown");
        assert_eq!(g.confirm(2).unwrap_err(), Refusal::Mismatch { expected: 1 });
        assert_eq!(g.confirm(1).unwrap().pkid, 1);
        assert_eq!(g.confirm(1).unwrap_err(), Refusal::NothingShown);
        assert_eq!(g.take_next().map(|m| m.publish.pkid), Some(2));
    }

    #[test]
    fn warnings_at_powers_of_ten_and_once_per_shown_message() {
        let now = Instant::now();
        let mut g = AckGate::default();
        let first = g.offer(msg(1)).unwrap();
        g.mark_shown(&first, now);
        let mut warned = Vec::new();
        for id in 2..=120 {
            g.offer(msg(id));
            if let Some(n) = g.held_warning() {
                warned.push(n);
            }
        }
        assert_eq!(warned, [10, 100]);
        assert_eq!(g.warning_deadline(), Some(now + UNCONFIRMED_WARNING_AFTER));
        assert_eq!(g.due_warning(now), None);
        let later = now + UNCONFIRMED_WARNING_AFTER;
        assert_eq!(g.due_warning(later), Some((1, UNCONFIRMED_WARNING_AFTER)));
        assert_eq!(g.due_warning(later), None);
        assert_eq!(g.warning_deadline(), None);
    }
}
