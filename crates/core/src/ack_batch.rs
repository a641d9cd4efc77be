//! PUBACKs under load leave together: while QoS 1 messages arrive densely, their
//! acknowledgements are held for a moment and written in one go.
//!
//! Why: on a busy line a broker forwards each message on its own, so the line reads one message
//! per wake-up and wrote one PUBACK per message. Each of those writes runs the whole TCP send
//! path (and, on loopback, the broker's receive path) in the line's thread: measured, more than
//! half of the line's CPU for a Sparkplug NDATA stream at QoS 1 (docs/benchmarks.md).
//!
//! The rule (docs/decisions.md, "PUBACKs under load"):
//! - only PUBACKs are held, and only while nothing else waits to be sent (any other packet takes
//!   the held acknowledgements with it, in order);
//! - only under load: the first acknowledgement after a quiet moment ([`WITHIN`] since the last
//!   ones left) goes at once, so a line with a message now and then behaves as before;
//! - at most [`WITHIN`] and at most `limit` of them: whichever comes first releases them all;
//! - the broker's window of unacknowledged messages is not known on MQTT 3.1.1 (mosquitto 20 by
//!   default, others 10 or 32, some set 1 for strict order), so `limit` starts at [`MOST`], below
//!   the common windows, and adapts: released by the clock with fewer (the broker may have
//!   stopped for want of them, or the traffic paused) it becomes that many, and it grows by one
//!   after [`GROW_AFTER`] releases by the count. At 1 nothing is held: a broker with a window
//!   of one waits [`WITHIN`] at most once in [`GROW_AFTER`] messages. On MQTT 5 with a
//!   Receive Maximum announced, the window is known: at most half of it is held.
//!
//! Values are never held: a message's tags are set when it arrives; only the broker learns of
//! its delivery up to [`WITHIN`] later. A connection that ends with acknowledgements held loses
//! them as it would lose any unsent bytes: the broker delivers those messages again (QoS 1).
//! A deliberate close sends them first.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::codec::Packet;

/// How long acknowledgements may be held.
pub(crate) const WITHIN: Duration = Duration::from_millis(1);

/// How many acknowledgements may be held at most: below the smallest window of the common
/// brokers' defaults (10), so that none of them waits for the clock.
pub(crate) const MOST: usize = 4;

/// Releases by the count before the limit grows by one.
pub(crate) const GROW_AFTER: u32 = 16;

#[derive(Debug, Clone)]
pub(crate) struct AckBatch {
    /// How many may be held at most on this connection.
    most: usize,
    /// How many may be held now (1: none).
    limit: usize,
    /// Releases by the count since the limit last changed.
    streak: u32,
    /// When those held now must leave: [`WITHIN`] after the first was held back.
    until: Option<Instant>,
    /// [`WITHIN`] after acknowledgements last left: one queued before then means load.
    loaded_until: Option<Instant>,
    /// The outbox is being emptied: nothing is held until it is empty.
    releasing: bool,
}

impl Default for AckBatch {
    fn default() -> AckBatch {
        AckBatch {
            most: MOST,
            limit: MOST,
            streak: 0,
            until: None,
            loaded_until: None,
            releasing: false,
        }
    }
}

impl AckBatch {
    /// For a connection on which the broker may send at most `window` messages unacknowledged
    /// (MQTT 5: the Receive Maximum the line announced): at most half of them are held, so the
    /// broker never waits for the clock.
    pub(crate) fn for_window(window: Option<u16>) -> AckBatch {
        let most = window.map_or(MOST, |w| (usize::from(w) / 2).clamp(1, MOST));
        AckBatch {
            most,
            limit: most,
            ..AckBatch::default()
        }
    }

    /// Whether the packets of `outbox` wait (at `now`). Asked before each packet is taken; once
    /// they go, all of them go.
    #[inline]
    pub(crate) fn holds(&mut self, outbox: &VecDeque<Packet>, now: Instant) -> bool {
        if outbox.is_empty() {
            self.releasing = false;
            return false;
        }
        !self.releasing && self.decide(outbox, now)
    }

    /// [`AckBatch::holds`] for the first packet of a non-empty outbox.
    #[inline(never)]
    fn decide(&mut self, outbox: &VecDeque<Packet>, now: Instant) -> bool {
        let is_ack = |p: &Packet| matches!(p, Packet::PubAck(_));
        // Load: acknowledgements are held already, or the last ones left a moment ago.
        let loaded = self.until.is_some() || self.loaded_until.is_some_and(|t| now < t);
        if loaded && outbox.iter().all(is_ack) {
            let held = outbox.len();
            if self.limit > 1 {
                let until = *self.until.get_or_insert_with(|| now + WITHIN);
                if held < self.limit && now < until {
                    return true;
                }
            }
            if held < self.limit {
                // By the clock: as many as the broker, or the traffic, gave.
                self.limit = held;
                self.streak = 0;
            } else {
                self.streak += 1;
                if self.streak >= GROW_AFTER {
                    self.limit = (self.limit + 1).min(self.most);
                    self.streak = 0;
                }
            }
        }
        self.until = None;
        self.releasing = true;
        if outbox.iter().any(is_ack) {
            self.loaded_until = Some(now + WITHIN);
        }
        false
    }

    /// When held acknowledgements must leave (`until` is set only while they are held).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.until
    }

    /// Everything queued leaves now (a deliberate close).
    pub(crate) fn flush(&mut self) {
        self.until = None;
        self.releasing = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::PubAck;

    fn acks(n: u16) -> VecDeque<Packet> {
        (1..=n)
            .map(|k| Packet::PubAck(PubAck::new(k, None)))
            .collect()
    }

    /// `b` just after one acknowledgement left at `now`: those that follow within WITHIN wait.
    fn loaded(mut b: AckBatch, now: Instant) -> AckBatch {
        assert_eq!(take(&mut b, &mut acks(1), now), 1, "the first goes at once");
        b
    }

    /// Takes what `outbox` releases at `now`, as the session's transmit loop does.
    fn take(b: &mut AckBatch, outbox: &mut VecDeque<Packet>, now: Instant) -> usize {
        let mut n = 0;
        while !b.holds(outbox, now) {
            if outbox.pop_front().is_none() {
                break;
            }
            n += 1;
        }
        n
    }

    #[test]
    fn the_first_ack_after_a_quiet_moment_goes_at_once() {
        let t0 = Instant::now();
        let mut b = AckBatch::default();
        assert_eq!(take(&mut b, &mut acks(1), t0), 1);
        // Quiet for longer than WITHIN: again at once.
        assert_eq!(take(&mut b, &mut acks(1), t0 + WITHIN * 2), 1);
    }

    #[test]
    fn under_load_acks_wait_for_the_count_or_the_clock() {
        let t0 = Instant::now();
        let mut b = loaded(AckBatch::default(), t0);
        // Dense: held until MOST wait ...
        let mut out = VecDeque::new();
        for k in 1..MOST as u16 {
            out.push_back(Packet::PubAck(PubAck::new(k, None)));
            assert_eq!(take(&mut b, &mut out, t0), 0, "{k} held");
            assert_eq!(b.deadline(), Some(t0 + WITHIN));
        }
        out.push_back(Packet::PubAck(PubAck::new(9, None)));
        assert_eq!(take(&mut b, &mut out, t0), MOST, "the count releases all");
        assert_eq!(b.deadline(), None);
        // ... or until WITHIN passed since the first was held.
        let mut out = acks(2);
        assert_eq!(take(&mut b, &mut out, t0 + WITHIN / 2), 0);
        assert_eq!(
            take(&mut b, &mut out, t0 + WITHIN / 2 + WITHIN),
            2,
            "the clock"
        );
    }

    #[test]
    fn another_packet_takes_the_held_acks_with_it() {
        let t0 = Instant::now();
        let mut b = loaded(AckBatch::default(), t0);
        let mut out = acks(2);
        assert_eq!(take(&mut b, &mut out, t0), 0);
        out.push_back(Packet::PingReq(crate::codec::PingReq));
        assert_eq!(take(&mut b, &mut out, t0), 3);
    }

    #[test]
    fn a_known_window_is_never_filled() {
        // Rows: the Receive Maximum announced, the most acknowledgements held.
        for (window, most) in [
            (None, MOST),
            (Some(1), 1),
            (Some(2), 1),
            (Some(5), 2),
            (Some(100), MOST),
        ] {
            let t0 = Instant::now();
            let mut b = loaded(AckBatch::for_window(window), t0);
            let mut out = VecDeque::new();
            let mut held = 0;
            for k in 1..=8u16 {
                out.push_back(Packet::PubAck(PubAck::new(k, None)));
                if take(&mut b, &mut out, t0) > 0 {
                    break;
                }
                held += 1;
            }
            assert_eq!(held + 1, most, "{window:?}: released at the count");
        }
    }

    #[test]
    fn a_flush_sends_what_is_held() {
        let t0 = Instant::now();
        let mut b = loaded(AckBatch::default(), t0);
        let mut out = acks(2);
        assert_eq!(take(&mut b, &mut out, t0), 0);
        b.flush();
        assert_eq!(take(&mut b, &mut out, t0), 2);
    }

    /// A broker whose window is `window` unacknowledged messages: it sends until the window is
    /// full, then waits for acknowledgements. Returns how often the line's acks waited for the
    /// clock while the broker waited for them, in `messages` messages.
    fn stalls(window: usize, messages: usize) -> usize {
        let mut now = Instant::now();
        let mut b = loaded(AckBatch::default(), now);
        let mut out: VecDeque<Packet> = VecDeque::new();
        let (mut sent, mut unacked, mut stalls) = (0, 0, 0);
        while sent < messages {
            if unacked < window {
                // A message arrives 10 us after the last: load.
                now += Duration::from_micros(10);
                sent += 1;
                unacked += 1;
                out.push_back(Packet::PubAck(PubAck::new(1, None)));
                unacked -= take(&mut b, &mut out, now);
            } else {
                // The broker waits: only the clock moves the line.
                let deadline = b.deadline().expect("acks are held while the broker waits");
                now = deadline;
                stalls += 1;
                unacked -= take(&mut b, &mut out, now);
            }
        }
        stalls
    }

    #[test]
    fn a_broker_window_smaller_than_the_batch_waits_rarely() {
        // Rows: the broker's window, the most clock waits in 1,000 messages.
        let rows = [
            (20, 0),
            (10, 0),
            (MOST + 1, 0),
            (MOST, 0),
            (3, 1 + 1000 / (GROW_AFTER as usize * 3)),
            (1, 1 + 1000 / GROW_AFTER as usize),
        ];
        for (window, most) in rows {
            let n = stalls(window, 1000);
            assert!(n <= most, "window {window}: {n} waits, at most {most}");
        }
    }
}
