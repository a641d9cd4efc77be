//! The line's one timer for STALE: the earliest moment any station could have gone silent for
//! too long.
//!
//! A min-heap holds at most one entry per station, keyed by a deadline that is never later than
//! the station's real one (its last message plus its STALE). Messages do not touch the heap: they
//! only move the station's last-message time forward. When an entry comes due, the line compares
//! it with the real deadline and either re-arms it there or declares the station stale. So a
//! message costs one store, a station costs at most one heap operation per STALE period, and
//! the next deadline is a peek: 10,000 stations stay cheap, with no sweep and no rounding of
//! the moment a station goes stale.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Deadlines by station (an index into the line's stations).
#[derive(Debug, Default)]
pub(crate) struct StaleClock {
    due: BinaryHeap<Reverse<(Instant, usize)>>,
}

impl StaleClock {
    /// Forgets every deadline (the connection ended).
    pub fn clear(&mut self) {
        self.due.clear();
    }

    /// Starts over with these (deadline, station) entries, one per station.
    pub fn reset(&mut self, entries: impl IntoIterator<Item = (Instant, usize)>) {
        let mut heap = std::mem::take(&mut self.due).into_vec();
        heap.clear();
        heap.extend(entries.into_iter().map(Reverse));
        self.due = BinaryHeap::from(heap);
    }

    /// Adds a station's deadline; the caller keeps at most one entry per station.
    pub fn arm(&mut self, station: usize, at: Instant) {
        self.due.push(Reverse((at, station)));
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes the entry of a station whose deadline has come at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        match self.due.peek() {
            Some(Reverse((at, _))) if *at <= now => self.due.pop().map(|Reverse((_, i))| i),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.due.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_come_due_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = StaleClock::default();
        c.reset([(t0 + 3 * s, 0), (t0 + s, 1)]);
        c.arm(2, t0 + 2 * s);
        assert_eq!(c.next(), Some(t0 + s));
        assert_eq!(c.pop_due(t0), None);
        assert_eq!(c.pop_due(t0 + 2 * s), Some(1));
        assert_eq!(c.pop_due(t0 + 2 * s), Some(2));
        assert_eq!(c.pop_due(t0 + 2 * s), None);
        assert_eq!((c.next(), c.len()), (Some(t0 + 3 * s), 1));
        c.reset([(t0, 5)]);
        assert_eq!((c.next(), c.len()), (Some(t0), 1));
        c.clear();
        assert_eq!((c.next(), c.pop_due(t0 + 9 * s)), (None, None));
    }
}
