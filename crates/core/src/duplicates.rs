//! The duplicate rule of a redundant line (issue 21): a message that arrives through both
//! connections is shown once.
//!
//! The same message is recognised by its topic and payload: a dual-homed publisher sends the
//! same bytes to both brokers, and nothing else (packet ids, properties, the DUP flag) is the
//! same on both paths. Both are hashed into a 64-bit key with a key chosen at random per line
//! (foldhash's quality hasher, seeded per line: several times faster than SipHash on a 70-byte
//! payload), so that a publisher cannot predict which two messages collide.
//!
//! A message from connection X is a copy when the other connection delivered a message with the
//! same key, not yet matched, within the window (`redundant_window`); it then matches that one
//! and is not shown. Matching is one to one: each original matches at most one copy, so a device
//! that sends the same payload several times in a row is shown as often as it sent it, as long
//! as both brokers carry every copy, and as often as the fuller broker carried it when one lost a
//! copy. What the rule cannot tell apart is two identical messages within the window of which
//! each broker lost a different one: they look like one message and its copy and are shown once
//! (docs/decisions.md, issue 21).
//!
//! An original is forgotten when its window ends, and as soon as it is matched. At most
//! [`MAX_ENTRIES`] originals are kept in the window; beyond that the oldest is forgotten early.
//! A matched one forgotten early costs nothing; an unmatched one is counted and the line warns
//! (a copy arriving later would be shown again, never a message lost). So what the filter must
//! hold is the messages in transit between the two connections, not the rate times the window.

use std::collections::hash_map::Entry as KeyEntry;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::ids::LinkId;
use crate::routing::FxMap;

/// The most originals kept in the window (matched or not): 130,000 messages a second for the
/// default window of 2 s, some 60 bytes each with the unmatched ones' index, so at most about
/// 16 MB per line. Beyond it the oldest is forgotten early (counted and warned when it was not
/// matched yet).
pub(crate) const MAX_ENTRIES: usize = 1 << 18;

/// Whether a received message is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Shown: no copy of it came through the other connection (yet). `key` identifies it;
    /// `seq` numbers the originals in arrival order (see [`Duplicates::remembered_from`]).
    Original { key: u64, seq: u64 },
    /// A copy of a message the other connection delivered: not shown. `seq` is the number of
    /// the original it matched (a rejoin's hold releases up to that one, and no further).
    Duplicate { key: u64, seq: u64 },
}

/// The unmatched originals of one key, all from one connection (a message from the other one
/// would have matched them), oldest first: a chain through the window's entries from `head` to
/// `tail` (sequence numbers). Matching and the window both take the oldest first, so the
/// unmatched ones are always the newest of their key, and an entry leaving the window is
/// unmatched exactly when it is its key's `head`. A key without unmatched originals has no slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    link: LinkId,
    unmatched: u32,
    head: u64,
    tail: u64,
}

/// An original in the window.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When it arrived: its window ends `window` later, so the queue is in the order the
    /// windows end, whatever the window was when each arrived.
    at: Instant,
    key: u64,
    /// The next unmatched original of the same key ([`NONE`] while there is none), or
    /// [`MATCHED`] once this one was matched.
    next: u64,
}

const NONE: u64 = u64::MAX;
/// An entry whose copy came: leaving the window, it needs no look at its key's slot (a random
/// place in a large map, which would miss the cache for every message).
const MATCHED: u64 = u64::MAX - 1;

/// The entry with sequence number `seq` of a queue whose front one is `first`.
fn entry(queue: &mut VecDeque<Entry>, first: u64, seq: u64) -> Option<&mut Entry> {
    queue.get_mut(usize::try_from(seq.checked_sub(first)?).ok()?)
}

/// The duplicate filter of one redundant line.
#[derive(Debug)]
pub(crate) struct Duplicates {
    hasher: foldhash::quality::RandomState,
    window: Duration,
    slots: FxMap<u64, Slot>,
    /// Every original in arrival order, until its window ends; `first` is the sequence number
    /// of the front one.
    queue: VecDeque<Entry>,
    first: u64,
    /// Unmatched originals forgotten before their window ended, because [`MAX_ENTRIES`] were kept.
    overflowed: u64,
    limit: usize,
}

impl Duplicates {
    pub(crate) fn new(window: Duration) -> Duplicates {
        Duplicates::with_limit(window, MAX_ENTRIES)
    }

    pub(crate) fn with_limit(window: Duration, limit: usize) -> Duplicates {
        Duplicates {
            hasher: foldhash::quality::RandomState::default(),
            window,
            slots: FxMap::default(),
            queue: VecDeque::new(),
            first: 0,
            overflowed: 0,
            limit: limit.max(1),
        }
    }

    /// The key of a message.
    pub(crate) fn key(&self, topic: &[u8], payload: &[u8]) -> u64 {
        // `&[u8]` hashes its length first: topic and payload cannot run into each other.
        self.hasher.hash_one((topic, payload))
    }

    /// A message with `topic` and `payload` arrived through `link` at `now`.
    pub(crate) fn check(
        &mut self,
        link: LinkId,
        topic: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> Verdict {
        let key = self.key(topic, payload);
        self.check_key(link, key, now)
    }

    /// As [`Duplicates::check`], for a message whose key is known.
    pub(crate) fn check_key(&mut self, link: LinkId, key: u64, now: Instant) -> Verdict {
        self.expire(now);
        let seq = self.first + self.queue.len() as u64;
        // One lookup of the key, whatever follows (a copy, or an original first or again).
        match self.slots.entry(key) {
            KeyEntry::Occupied(mut o) if o.get().link != link => {
                // The oldest unmatched original of the other connection is matched.
                let slot = o.get_mut();
                let head = slot.head;
                slot.unmatched -= 1;
                let next = entry(&mut self.queue, self.first, head)
                    .map_or(NONE, |e| std::mem::replace(&mut e.next, MATCHED));
                if slot.unmatched == 0 {
                    o.remove();
                } else {
                    slot.head = next;
                }
                return Verdict::Duplicate { key, seq: head };
            }
            KeyEntry::Occupied(mut o) => {
                let slot = o.get_mut();
                let tail = slot.tail;
                slot.tail = seq;
                slot.unmatched += 1;
                if let Some(e) = entry(&mut self.queue, self.first, tail) {
                    e.next = seq;
                }
            }
            KeyEntry::Vacant(v) => {
                v.insert(Slot {
                    link,
                    unmatched: 1,
                    head: seq,
                    tail: seq,
                });
            }
        }
        self.queue.push_back(Entry {
            at: now,
            key,
            next: NONE,
        });
        if self.queue.len() > self.limit && self.pop_front() {
            self.overflowed += 1;
        }
        Verdict::Original { key, seq }
    }

    /// Originals whose window ended by `now` can no longer be matched.
    fn expire(&mut self, now: Instant) {
        while self
            .queue
            .front()
            .is_some_and(|e| e.at + self.window <= now)
        {
            self.pop_front();
        }
    }

    /// The oldest original leaves the window; true when it was still unmatched.
    fn pop_front(&mut self) -> bool {
        let seq = self.first;
        let Some(e) = self.queue.pop_front() else {
            return false;
        };
        self.first += 1;
        if e.next == MATCHED {
            return false;
        }
        let Some(slot) = self.slots.get_mut(&e.key).filter(|s| s.head == seq) else {
            return false;
        };
        slot.unmatched -= 1;
        if slot.unmatched == 0 {
            self.slots.remove(&e.key);
        } else {
            slot.head = e.next;
        }
        true
    }

    /// The `seq` of the oldest original still remembered: a copy can only have matched one
    /// numbered from here on (the ACK_ID gate looks for the message a copy matched with it).
    pub(crate) fn remembered_from(&self) -> u64 {
        self.first
    }

    /// Originals forgotten early so far; the line warns when this reaches 1, 10, 100, ...
    pub(crate) fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Originals in the window now, and those of them not matched yet.
    #[cfg(test)]
    pub(crate) fn len(&self) -> (usize, usize) {
        let unmatched = self.slots.values().map(|s| s.unmatched as usize).sum();
        (self.queue.len(), unmatched)
    }

    /// New parameters: the window applies to the originals already remembered too. Each keeping
    /// the window it had would leave the queue out of order after a shorter one, and an original
    /// whose window had ended would still match a copy behind an older one whose had not.
    pub(crate) fn set_window(&mut self, window: Duration) {
        self.window = window;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LinkId::{A, B};

    /// One arrival: after `at_ms`, through `link`, payload `payload` (topic `t`); whether it is
    /// shown.
    type Row = (u64, LinkId, &'static str, bool);

    fn run(window_ms: u64, limit: usize, rows: &[Row]) -> Vec<bool> {
        let t0 = Instant::now();
        let mut d = Duplicates::with_limit(Duration::from_millis(window_ms), limit);
        rows.iter()
            .map(|&(at, link, payload, _)| {
                let now = t0 + Duration::from_millis(at);
                matches!(
                    d.check(link, b"t", payload.as_bytes(), now),
                    Verdict::Original { .. }
                )
            })
            .collect()
    }

    #[test]
    fn the_rule_on_virtual_time() {
        let cases: &[(&str, u64, &[Row])] = &[
            (
                "each message through both: shown once",
                1000,
                &[
                    (0, A, "1", true),
                    (1, B, "1", false),
                    (2, B, "2", true),
                    (3, A, "2", false),
                ],
            ),
            (
                "a device repeating a payload, both brokers carry both: shown twice",
                1000,
                &[
                    (0, A, "x", true),
                    (0, A, "x", true),
                    (1, B, "x", false),
                    (1, B, "x", false),
                ],
            ),
            (
                "repeats interleaved across the connections",
                1000,
                &[
                    (0, A, "x", true),
                    (1, B, "x", false),
                    (2, B, "x", true),
                    (3, A, "x", false),
                ],
            ),
            (
                "a copy later than the window is shown again",
                1000,
                &[
                    (0, A, "1", true),
                    (1000, B, "1", true),
                    (1001, A, "1", false),
                ],
            ),
            (
                "a copy just within the window is not",
                1000,
                &[(0, A, "1", true), (999, B, "1", false)],
            ),
            (
                "one connection only: everything shown, repeats included",
                1000,
                &[(0, A, "1", true), (1, A, "1", true), (2, A, "1", true)],
            ),
            (
                "a repeat whose copy one broker lost: shown as often as the other carried it",
                1000,
                &[(0, A, "x", true), (10, A, "x", true), (11, B, "x", false)],
            ),
            (
                "matched entries leaving the window do not expire newer unmatched ones",
                1000,
                &[
                    (0, A, "x", true),
                    (1, B, "x", false),
                    (500, A, "x", true),
                    (1200, B, "x", false),
                ],
            ),
            (
                "the side of the unmatched ones flips and flips back",
                1000,
                &[
                    (0, A, "x", true),
                    (1, B, "x", false),
                    (2, B, "x", true),
                    (3, A, "x", false),
                    (4, A, "x", true),
                    (1003, B, "x", false),
                    (1005, B, "x", true),
                ],
            ),
        ];
        for (name, window, rows) in cases {
            let want: Vec<bool> = rows.iter().map(|r| r.3).collect();
            assert_eq!(run(*window, MAX_ENTRIES, rows), want, "{name}");
        }
    }

    #[test]
    fn memory_is_bounded_and_overflow_counted() {
        let t0 = Instant::now();
        let mut d = Duplicates::with_limit(Duration::from_secs(60), 3);
        for n in 0..5u8 {
            d.check(A, b"t", &[n], t0);
        }
        assert_eq!(d.len(), (3, 3));
        assert_eq!(d.overflowed(), 2);
        // The two oldest were forgotten: their copies are shown; the others' are not.
        let shown: Vec<bool> = (0..5u8)
            .rev()
            .map(|n| matches!(d.check(B, b"t", &[n], t0), Verdict::Original { .. }))
            .collect();
        assert_eq!(shown, [false, false, false, true, true]);
    }

    #[test]
    fn matched_originals_are_forgotten_at_once_and_cost_no_overflow() {
        let t0 = Instant::now();
        let mut d = Duplicates::with_limit(Duration::from_secs(60), 3);
        for n in 0..1000u16 {
            let payload = n.to_be_bytes();
            assert!(matches!(
                d.check(A, b"t", &payload, t0),
                Verdict::Original { .. }
            ));
            assert!(matches!(
                d.check(B, b"t", &payload, t0),
                Verdict::Duplicate { .. }
            ));
        }
        assert_eq!(d.len(), (3, 0));
        assert_eq!(d.overflowed(), 0);
        assert!(d.slots.is_empty());
    }

    #[test]
    fn topic_and_payload_do_not_run_into_each_other() {
        let d = Duplicates::new(Duration::from_secs(1));
        assert_ne!(d.key(b"ab", b"c"), d.key(b"a", b"bc"));
        assert_eq!(d.key(b"a", b"bc"), d.key(b"a", b"bc"));
        let other = Duplicates::new(Duration::from_secs(1));
        // Keyed per line: another line's keys differ (with overwhelming probability).
        assert_ne!(d.key(b"a", b"bc"), other.key(b"a", b"bc"));
    }
}
