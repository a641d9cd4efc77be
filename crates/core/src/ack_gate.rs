//! The ACK_ID gate of one station: one message shown and waiting for the host's confirmation,
//! the rest held in arrival order. Held messages survive reconnects: the session knows them and
//! does not hand the broker's redelivery over again.
//!
//! The held queue is bounded by the station's `max_held_messages`: once it is full, new QoS 0
//! messages are dropped (counted and warned about). QoS 1/2 messages are always held: the
//! broker's in-flight window bounds them, and dropping one would lose data the broker was told
//! is safe.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{Publish, QoS};
use crate::gzip::Encoding;
use crate::ids::LinkId;

/// How long a shown message may wait for ACK_ID before the line warns. The held-count warning
/// alone never fires when the broker's in-flight window is smaller than the count (mosquitto's
/// `max_inflight_messages` may be 1 or 2), yet such a window stalls the line just the same.
pub const UNCONFIRMED_WARNING_AFTER: Duration = Duration::from_secs(5);

/// The default of the station parameter `max_held_messages`.
pub const DEFAULT_MAX_HELD: usize = 1000;

/// The held payloads and topics of one station together may not exceed this, whatever the
/// message count: one message may be as large as the largest packet the line reads (64 MiB).
pub const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;

/// How much a station may hold before QoS 0 messages are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldLimit {
    pub messages: usize,
    pub bytes: usize,
}

impl HeldLimit {
    /// The limit of a station with `max_held_messages` = `messages`.
    pub fn station(messages: usize) -> HeldLimit {
        HeldLimit {
            messages,
            bytes: MAX_HELD_BYTES,
        }
    }
}

/// A message waiting for its turn, with the broker session it belongs to.
pub struct Held {
    pub publish: Publish,
    pub wall_ns: i64,
    pub epoch: u64,
    /// The payload's encoding as the message announced it (gzip.rs).
    pub encoding: Encoding,
    /// The connection it came through (always A on a line with one connection).
    pub link: LinkId,
    /// What a redundant line's duplicate rule knows of it (duplicates.rs); `None` on a single
    /// line.
    pub key: Option<CopyKey>,
    /// The copy the other connection of a redundant line delivered: acknowledged to its broker
    /// only when this one is confirmed, so that losing this one's broker loses nothing.
    pub twin: Option<Twin>,
}

/// A redundant line's message as its duplicate rule sees it (duplicates.rs): a copy through the
/// other connection matches it while its window lasts, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyKey {
    /// Its topic and payload, hashed.
    pub key: u64,
    /// Its number among the rule's originals (`Verdict::Original`): the rule has forgotten it
    /// once `Duplicates::remembered_from` has passed it (its window ended).
    pub seq: u64,
    /// A copy matched it, kept as its twin or not (a copy with QoS 0 is not kept, but matches
    /// all the same: it must not be kept with a later message of the same key instead).
    pub matched: bool,
}

/// The copy of a held or shown message that a redundant line's other connection delivered: its
/// acknowledgement waits for the host's confirmation of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Twin {
    pub link: LinkId,
    pub pkid: u16,
    pub epoch: u64,
}

/// The shown message: what its confirmation must acknowledge.
#[derive(Clone, Copy, Debug)]
pub struct Shown {
    pub pkid: u16,
    pub epoch: u64,
    pub link: LinkId,
    pub twin: Option<Twin>,
    key: Option<CopyKey>,
    since: Instant,
    warned: bool,
}

/// Why an ACK_ID write confirms nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NothingShown,
    Mismatch { expected: u16 },
}

/// What became of an offered message.
pub enum Offered {
    /// Nothing is shown: show it now.
    Show(Box<Held>),
    Held,
    /// The held queue is full and the message is QoS 0: it is gone.
    Dropped,
}

/// Something the line should warn about after an offer, rarely enough not to flood the log.
#[derive(Debug, PartialEq, Eq)]
pub enum GateWarning {
    /// The held queue has just reached 10, 100, 1000... messages.
    Holding { held: usize, waiting: u16 },
    /// QoS 0 messages are being dropped: warned at the 1st, 10th, 100th... drop since the queue
    /// was last empty.
    Dropping {
        held: usize,
        bytes: usize,
        limit: HeldLimit,
        waiting: u16,
        dropped: u64,
        total: u64,
    },
}

impl GateWarning {
    /// The warning text for station `station`.
    pub fn text(&self, station: &str) -> String {
        Warning {
            station,
            warning: self,
        }
        .to_string()
    }
}

struct Warning<'a> {
    station: &'a str,
    warning: &'a GateWarning,
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let station = self.station;
        match *self.warning {
            GateWarning::Holding { held, waiting } => write!(
                f,
                "station '{station}' holds {held} messages until the host confirms IN_ID \
                 {waiting} through ACK_ID; unconfirmed QoS 1/2 messages fill the broker's \
                 in-flight window, which stops delivery to the whole line"
            ),
            GateWarning::Dropping {
                held,
                bytes,
                limit,
                waiting,
                dropped,
                total,
            } => write!(
                f,
                "station '{station}' holds {held} messages ({bytes} bytes) until the host \
                 confirms IN_ID {waiting} through ACK_ID, its limit (max_held_messages = {}, \
                 {} bytes); new QoS 0 messages are dropped ({dropped} since the queue was last \
                 empty, {total} in all)",
                limit.messages, limit.bytes
            ),
        }
    }
}

#[derive(Default)]
pub struct AckGate {
    shown: Option<Shown>,
    held: VecDeque<Held>,
    /// The held count at which the last warning was given (10, 100, 1000...).
    warned_at: usize,
    /// Payload and topic bytes of the held messages.
    held_bytes: usize,
    /// QoS 0 messages dropped since the held queue was last empty, and in all.
    dropped_run: u64,
    dropped_total: u64,
    /// Set by an offer, taken by [`AckGate::warning`].
    pending: Option<GateWarning>,
}

impl AckGate {
    /// Takes a new message: handed back when it can be shown now, held while there is room
    /// within `limit` (or it is QoS 1/2), dropped otherwise. One message is always held.
    pub fn offer(&mut self, mut m: Held, limit: HeldLimit) -> Offered {
        if self.shown.is_none() {
            return Offered::Show(Box::new(m));
        }
        let waiting = self.waiting().unwrap_or(0);
        let size = size_of(&m);
        let full = self.held.len() >= limit.messages
            || (!self.held.is_empty() && self.held_bytes.saturating_add(size) > limit.bytes);
        if full && m.publish.qos == QoS::AtMostOnce {
            self.dropped_run += 1;
            self.dropped_total += 1;
            if is_power_of_ten(self.dropped_run) {
                self.pending = Some(GateWarning::Dropping {
                    held: self.held.len(),
                    bytes: self.held_bytes,
                    limit,
                    waiting,
                    dropped: self.dropped_run,
                    total: self.dropped_total,
                });
            }
            return Offered::Dropped;
        }
        // The payload may share the connection's read buffer: a held copy of its own keeps a
        // long queue from pinning one read buffer per message.
        m.publish.payload = Bytes::copy_from_slice(&m.publish.payload);
        self.held_bytes += size;
        self.held.push_back(m);
        let held = self.held.len();
        if held >= 10 && held >= self.warned_at * 10 {
            self.warned_at = held;
            self.pending = Some(GateWarning::Holding { held, waiting });
        }
        Offered::Held
    }

    /// The warning the last offer gave, if any.
    pub fn warning(&mut self) -> Option<GateWarning> {
        self.pending.take()
    }

    /// QoS 0 messages dropped because the held queue was full, since the station was added.
    pub fn dropped(&self) -> u64 {
        self.dropped_total
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
            link: m.link,
            twin: m.twin,
            key: m.key,
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
        let next = self.held.pop_front();
        if let Some(m) = &next {
            self.held_bytes -= size_of(m);
        }
        if self.held.is_empty() {
            // The host has caught up: the next overflow is warned about from its first drop.
            self.dropped_run = 0;
        }
        next
    }

    /// A redundant line's other connection delivered a copy (through `link`) of a message
    /// with `key`; the rule still remembers the originals numbered from `remembered_from` on. It
    /// matches what the duplicate rule matched (duplicates.rs): the oldest shown or held message
    /// of that key from the other connection that no copy matched yet and that the rule still
    /// remembers. One the rule forgot (its window ended) is passed over: the rule matched a later
    /// one, and the copy must wait for that one's confirmation, or losing that one's broker would
    /// lose it. With `twin` (QoS 1/2) the copy is kept with
    /// it and acknowledged when it is confirmed. False when there is none (the message was
    /// confirmed already): the copy is acknowledged at once.
    pub fn attach_twin(
        &mut self,
        key: u64,
        link: LinkId,
        twin: Option<Twin>,
        remembered_from: u64,
    ) -> bool {
        let fits = |k: &Option<CopyKey>, from: LinkId| {
            from != link
                && k.is_some_and(|k| k.key == key && !k.matched && k.seq >= remembered_from)
        };
        let matched = |k: &mut Option<CopyKey>| {
            if let Some(k) = k.as_mut() {
                k.matched = true;
            }
        };
        if let Some(s) = self.shown.as_mut().filter(|s| fits(&s.key, s.link)) {
            matched(&mut s.key);
            s.twin = twin;
            return twin.is_some();
        }
        match self.held.iter_mut().find(|m| fits(&m.key, m.link)) {
            Some(m) => {
                matched(&mut m.key);
                m.twin = twin;
                twin.is_some()
            }
            None => false,
        }
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

/// What a held message counts against [`HeldLimit::bytes`].
fn size_of(m: &Held) -> usize {
    m.publish.payload.len() + m.publish.topic.len()
}

/// 1, 10, 100...: the counts worth a warning.
fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg_qos(pkid: u16, qos: QoS) -> Held {
        let mut publish = Publish::new("t", qos, "x", None);
        publish.pkid = pkid;
        Held {
            publish,
            wall_ns: 0,
            epoch: 0,
            encoding: Encoding::Detect,
            link: LinkId::A,
            key: None,
            twin: None,
        }
    }

    fn msg(pkid: u16) -> Held {
        msg_qos(pkid, QoS::AtLeastOnce)
    }

    fn shown(o: Offered) -> Held {
        match o {
            Offered::Show(m) => *m,
            _ => panic!("nothing was shown: the message should be shown at once"),
        }
    }

    #[test]
    fn one_shown_the_rest_held_in_order() {
        let now = Instant::now();
        let mut g = AckGate::default();
        let first = shown(g.offer(msg(1), HeldLimit::station(DEFAULT_MAX_HELD)));
        g.mark_shown(&first, now);
        assert!(matches!(
            g.offer(msg(2), HeldLimit::station(DEFAULT_MAX_HELD)),
            Offered::Held
        ));
        assert!(matches!(
            g.offer(msg(3), HeldLimit::station(DEFAULT_MAX_HELD)),
            Offered::Held
        ));
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
        let first = shown(g.offer(msg(1), HeldLimit::station(DEFAULT_MAX_HELD)));
        g.mark_shown(&first, now);
        let mut warned = Vec::new();
        for id in 2..=120 {
            g.offer(msg(id), HeldLimit::station(DEFAULT_MAX_HELD));
            if let Some(GateWarning::Holding { held, waiting }) = g.warning() {
                assert_eq!(waiting, 1);
                warned.push(held);
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

    #[test]
    fn a_full_queue_drops_qos0_and_counts_it() {
        let now = Instant::now();
        let mut g = AckGate::default();
        let limit = 3;
        let first = shown(g.offer(msg_qos(0, QoS::AtMostOnce), HeldLimit::station(limit)));
        g.mark_shown(&first, now);
        for _ in 0..3 {
            assert!(matches!(
                g.offer(msg_qos(0, QoS::AtMostOnce), HeldLimit::station(limit)),
                Offered::Held
            ));
        }
        let mut warned = Vec::new();
        for _ in 0..150 {
            assert!(matches!(
                g.offer(msg_qos(0, QoS::AtMostOnce), HeldLimit::station(limit)),
                Offered::Dropped
            ));
            if let Some(w) = g.warning() {
                warned.push(w);
            }
        }
        assert_eq!(g.held(), 3, "the bound holds");
        assert_eq!(g.dropped(), 150);
        let counts: Vec<(u64, u64)> = warned
            .iter()
            .map(|w| match w {
                GateWarning::Dropping {
                    held: 3,
                    limit,
                    waiting: 0,
                    dropped,
                    total,
                    ..
                } if limit.messages == 3 => (*dropped, *total),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(counts, [(1, 1), (10, 10), (100, 100)]);
        let text = warned[0].text("gw");
        assert!(
            text.contains("station 'gw'")
                && text.contains("max_held_messages")
                && text.contains("dropped"),
            "{text}"
        );
    }

    #[test]
    fn qos1_and_qos2_are_held_beyond_the_limit() {
        let now = Instant::now();
        let mut g = AckGate::default();
        let limit = 2;
        let first = shown(g.offer(msg(1), HeldLimit::station(limit)));
        g.mark_shown(&first, now);
        for (id, qos) in [(2, QoS::AtLeastOnce), (3, QoS::ExactlyOnce)] {
            assert!(matches!(
                g.offer(msg_qos(id, qos), HeldLimit::station(limit)),
                Offered::Held
            ));
        }
        assert!(matches!(
            g.offer(msg_qos(0, QoS::AtMostOnce), HeldLimit::station(limit)),
            Offered::Dropped
        ));
        for (id, qos) in [(4, QoS::AtLeastOnce), (5, QoS::ExactlyOnce)] {
            assert!(matches!(
                g.offer(msg_qos(id, qos), HeldLimit::station(limit)),
                Offered::Held
            ));
        }
        assert_eq!(g.held(), 4);
        assert_eq!(g.dropped(), 1);
    }

    #[test]
    fn confirming_makes_room_and_catching_up_restarts_the_drop_warnings() {
        let now = Instant::now();
        let mut g = AckGate::default();
        let limit = 1;
        let q0 = || msg_qos(0, QoS::AtMostOnce);
        let first = shown(g.offer(q0(), HeldLimit::station(limit)));
        g.mark_shown(&first, now);
        assert!(matches!(
            g.offer(q0(), HeldLimit::station(limit)),
            Offered::Held
        ));
        assert!(matches!(
            g.offer(q0(), HeldLimit::station(limit)),
            Offered::Dropped
        ));
        assert!(g.warning().is_some(), "the first drop is warned about");
        g.confirm(0).unwrap();
        let next = g.take_next().expect("the held message is next");
        g.mark_shown(&next, now);
        assert!(
            matches!(g.offer(q0(), HeldLimit::station(limit)), Offered::Held),
            "confirming made room"
        );
        assert!(matches!(
            g.offer(q0(), HeldLimit::station(limit)),
            Offered::Dropped
        ));
        assert!(
            g.warning().is_some(),
            "the queue was empty in between: a new overflow"
        );
        assert_eq!(g.dropped(), 2);
    }

    #[test]
    fn held_bytes_are_bounded_too() {
        let now = Instant::now();
        let mut g = AckGate::default();
        let limit = HeldLimit {
            messages: 1000,
            bytes: 25,
        };
        // Topic "t" and a payload of 9 bytes: 10 bytes each.
        let big = |qos| {
            let mut m = msg_qos(0, qos);
            m.publish.payload = Bytes::from_static(b"123456789");
            m
        };
        let first = shown(g.offer(big(QoS::AtMostOnce), limit));
        g.mark_shown(&first, now);
        assert!(matches!(
            g.offer(big(QoS::AtMostOnce), limit),
            Offered::Held
        ));
        assert!(matches!(
            g.offer(big(QoS::AtMostOnce), limit),
            Offered::Held
        ));
        assert!(matches!(
            g.offer(big(QoS::AtMostOnce), limit),
            Offered::Dropped
        ));
        assert!(matches!(
            g.offer(big(QoS::AtLeastOnce), limit),
            Offered::Held
        ));
        match g.warning() {
            Some(GateWarning::Dropping {
                held: 2, bytes: 20, ..
            }) => {}
            other => panic!("{other:?}"),
        }
        // A message larger than the whole limit is still held when nothing else is.
        g.confirm(0).unwrap();
        for _ in 0..3 {
            let next = g.take_next().expect("held");
            g.mark_shown(&next, now);
            g.confirm(i64::from(next.publish.pkid)).unwrap();
        }
        assert_eq!(g.held(), 0);
        let next = shown(g.offer(big(QoS::AtMostOnce), limit));
        g.mark_shown(&next, now);
        let mut huge = msg_qos(0, QoS::AtMostOnce);
        huge.publish.payload = Bytes::from(vec![b'x'; 100]);
        assert!(matches!(g.offer(huge, limit), Offered::Held));
        assert!(matches!(
            g.offer(big(QoS::AtMostOnce), limit),
            Offered::Dropped
        ));
    }

    #[test]
    fn powers_of_ten() {
        let yes: Vec<u64> = (0..2000).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(yes, [1, 10, 100, 1000]);
    }
}
