//! The Reorder Timeout of one edge node (Sparkplug 3.0, "Host Application Message Ordering").
//!
//! Messages of one node travel on several topics, and a clustered broker may deliver them out
//! of order. A message whose seq is ahead of the next one expected is held instead of ending the
//! node's session: the gap starts a timer, the held messages are applied in seq order once the
//! missing ones arrive, and the node is out of step (a rebirth is requested) only if the gap is
//! still open when the timer runs out. A seq behind the expected one (a message already seen, or
//! one older than half the seq space) cannot be reordered and is a gap at once.

use std::time::{Duration, Instant};

use super::payload::Payload;
use super::topic::MessageType;

/// Most messages held for one node; one more is a gap at once. Half the seq space: beyond it, a
/// seq cannot be told ahead from behind.
pub(crate) const MAX_HELD: usize = 127;

/// Most payload bytes held for one node (their encoded size); more is a gap at once, so that a
/// node that never fills its gap cannot take the host's memory.
pub(crate) const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// A message that arrived ahead of its turn, applied when its seq comes.
#[derive(Debug)]
pub(crate) struct Held {
    pub seq: u8,
    pub kind: MessageType,
    pub device: Option<String>,
    /// The value flags of the message (retained, duplicate).
    pub flags: u32,
    pub payload: Payload,
    /// When it arrived (Unix ns): the time of values without a time stamp of their own.
    pub wall_ns: i64,
    /// Its encoded size, counted against [`MAX_HELD_BYTES`].
    pub size: usize,
}

/// Where a seq stands against the next one expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Next,
    /// Ahead of the next one: it may be held.
    Ahead,
    /// Behind (a repeat, or too far ahead to tell): a gap.
    Behind,
}

/// `got` against `expected` in the wrapping seq space 0..=255.
pub(crate) fn place(expected: u8, got: u64) -> Place {
    let Ok(got) = u8::try_from(got) else {
        return Place::Behind;
    };
    match got.wrapping_sub(expected) {
        0 => Place::Next,
        d if usize::from(d) <= MAX_HELD => Place::Ahead,
        _ => Place::Behind,
    }
}

/// The held messages of one node and the timer of its open gap.
#[derive(Debug, Default)]
pub(crate) struct Reorder {
    held: Vec<Held>,
    bytes: usize,
    deadline: Option<Instant>,
    timeout: Duration,
}

impl Reorder {
    /// Holds `message` and starts the timer if no gap was open. `Err(message)` when it cannot
    /// be held: its seq is held already, or the bounds are reached.
    pub(crate) fn hold(
        &mut self,
        message: Held,
        now: Instant,
        timeout: Duration,
    ) -> Result<(), Box<Held>> {
        let repeat = self.held.iter().any(|h| h.seq == message.seq);
        if repeat
            || self.held.len() >= MAX_HELD
            || self.bytes.saturating_add(message.size) > MAX_HELD_BYTES
        {
            return Err(Box::new(message));
        }
        self.bytes += message.size;
        self.held.push(message);
        self.timeout = timeout;
        self.deadline.get_or_insert(now + timeout);
        Ok(())
    }

    /// The held message with seq `seq`, taken out.
    pub(crate) fn take(&mut self, seq: u8) -> Option<Held> {
        let k = self.held.iter().position(|h| h.seq == seq)?;
        let held = self.held.swap_remove(k);
        self.bytes -= held.size;
        Some(held)
    }

    /// The gap that started the timer was filled at `now`: the timer stops, or starts again for
    /// the next gap when messages are still held.
    pub(crate) fn gap_filled(&mut self, now: Instant) {
        self.deadline = (!self.held.is_empty()).then(|| now + self.timeout);
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the timer ran out at `now` with the gap still open.
    pub(crate) fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Forgets every held message and stops the timer (a birth, a death, the node out of step).
    pub(crate) fn clear(&mut self) {
        self.held.clear();
        self.bytes = 0;
        self.deadline = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(seq: u8, size: usize) -> Held {
        Held {
            seq,
            kind: MessageType::NData,
            device: None,
            flags: 0,
            payload: Payload::default(),
            wall_ns: 0,
            size,
        }
    }

    /// Each row: expected seq, received seq, where it stands.
    #[test]
    fn places_in_the_wrapping_seq_space() {
        let rows = [
            (5, 5, Place::Next),
            (5, 6, Place::Ahead),
            (5, 132, Place::Ahead),
            (5, 133, Place::Behind),
            (5, 4, Place::Behind),
            (250, 3, Place::Ahead),
            (0, 255, Place::Behind),
            (0, 256, Place::Behind),
            (0, u64::MAX, Place::Behind),
        ];
        for (expected, got, want) in rows {
            assert_eq!(place(expected, got), want, "{expected} {got}");
        }
    }

    #[test]
    fn the_timer_runs_while_a_gap_is_open_on_virtual_time() {
        let t0 = Instant::now();
        let timeout = Duration::from_millis(500);
        let mut r = Reorder::default();
        r.hold(held(3, 10), t0, timeout).unwrap();
        r.hold(held(5, 10), t0 + Duration::from_millis(100), timeout)
            .unwrap();
        assert_eq!(r.deadline(), Some(t0 + timeout), "the first gap started it");
        assert!(r.hold(held(3, 10), t0, timeout).is_err(), "a repeat");
        assert!(!r.expired(t0 + Duration::from_millis(499)));
        assert!(r.take(3).is_some());
        let t1 = t0 + Duration::from_millis(200);
        r.gap_filled(t1);
        assert_eq!(r.deadline(), Some(t1 + timeout), "a new gap, a new timer");
        assert!(r.take(5).is_some());
        r.gap_filled(t1);
        assert_eq!(r.deadline(), None);
        assert!(r.is_empty());
    }

    #[test]
    fn held_messages_are_bounded() {
        let t0 = Instant::now();
        let t = Duration::from_secs(1);
        let mut r = Reorder::default();
        r.hold(held(1, MAX_HELD_BYTES), t0, t).unwrap();
        assert!(r.hold(held(2, 1), t0, t).is_err(), "bytes");
        r.clear();
        for seq in 1..=MAX_HELD as u8 {
            r.hold(held(seq, 1), t0, t).unwrap();
        }
        assert!(r.hold(held(200, 1), t0, t).is_err(), "count");
    }
}
