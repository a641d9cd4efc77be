//! What a redundant line (issue 21) has beside connection A: connection B and the duplicate
//! filter both feed, with the per-connection counters the host shows, and the messages of a
//! connection that rejoined, held until the other connection has caught up with them. The
//! duplicate rule itself is duplicates.rs; the acknowledgement of a gated message's copy is
//! inbound.rs and ack.rs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::emit::topic;
use super::link::{Link, LinkId, LinkStats};
use super::Line;
use crate::ack_gate::CopyKey;
use crate::codec::Publish;
use crate::duplicates::{Duplicates, Verdict, MAX_ENTRIES};
use crate::event::LogLevel;
use crate::ids::WriteToken;
use bytes::Bytes;

pub(super) struct Redundancy {
    pub(super) b: Link,
    duplicates: Duplicates,
    /// The overflow count at the last warning (1, 10, 100, ...).
    warned_overflow: u64,
    /// The connection that became ready again while the other one stayed ready, whose messages
    /// are held ahead ([`Line::link_rejoined`]).
    rejoined: Option<Rejoin>,
    /// The rejoined connection's messages held ahead, oldest first.
    ahead: VecDeque<Ahead>,
    /// Payload and topic bytes of `ahead`.
    ahead_bytes: usize,
    window: Duration,
}

/// A connection that rejoined, and how long its messages are held ahead.
#[derive(Clone, Copy)]
struct Rejoin {
    link: LinkId,
    /// When it became ready again.
    since: Instant,
    /// When its messages stop waiting, unless the other connection's backlog moves it on.
    until: Instant,
}

/// The longest hold after a rejoin, in windows: a minute at the default window.
const MAX_HOLD_WINDOWS: u32 = 30;

/// What taking connection B away left to settle ([`Line::retire_b`]).
#[derive(Default)]
pub(super) struct RetiredB {
    /// Writes that waited for B alone.
    writes: Vec<WriteToken>,
    /// Messages that were held ahead.
    ahead: VecDeque<Ahead>,
}

/// A message of a rejoined connection, held until the other connection delivers its copy (or
/// a later one's), or the rejoin's time is up.
pub(super) struct Ahead {
    publish: Publish,
    link: LinkId,
    key: CopyKey,
    /// The broker session it came in (its packet id belongs to it).
    epoch: u64,
    wall_ns: i64,
}

/// At most this many messages, and bytes of them, are held ahead; beyond that the oldest is
/// shown at once (a rejoin at a rate the window cannot hold gives up order, never memory).
const MAX_AHEAD: usize = 65_536;
const MAX_AHEAD_BYTES: usize = 16 << 20;

fn size_of(p: &Publish) -> usize {
    p.payload.len() + p.topic.len()
}

impl Redundancy {
    pub(super) fn new(now: Instant, window: Duration) -> Redundancy {
        Redundancy {
            b: Link::new(now),
            duplicates: Duplicates::new(window),
            warned_overflow: 0,
            rejoined: None,
            ahead: VecDeque::new(),
            ahead_bytes: 0,
            window,
        }
    }

    pub(super) fn set_window(&mut self, window: Duration) {
        self.duplicates.set_window(window);
        self.window = window;
    }

    fn window(&self) -> Duration {
        self.window
    }

    /// A message `p` arrived through `link` at `now`: counted for that connection, and whether
    /// it is shown. `a` is connection A's counters (the line keeps A outside).
    pub(super) fn take(
        &mut self,
        a: &mut Link,
        link: LinkId,
        p: &Publish,
        now: Instant,
    ) -> (Verdict, Option<String>) {
        let counters = match link {
            LinkId::A => &mut a.counters,
            LinkId::B => &mut self.b.counters,
        };
        counters.received += 1;
        let verdict = self
            .duplicates
            .check(link, topic(p).as_bytes(), &p.payload, now);
        if let Verdict::Duplicate { .. } = verdict {
            counters.duplicates += 1;
        }
        (verdict, self.overflow_warning())
    }

    /// The oldest message held ahead.
    fn pop_ahead(&mut self) -> Option<Ahead> {
        let m = self.ahead.pop_front()?;
        self.ahead_bytes -= size_of(&m.publish);
        Some(m)
    }

    /// The oldest message held ahead, while more are held than the limits allow.
    fn over_limit(&mut self) -> Option<Ahead> {
        if self.ahead.len() > MAX_AHEAD || self.ahead_bytes > MAX_AHEAD_BYTES {
            self.pop_ahead()
        } else {
            None
        }
    }

    /// The warning at the 1st, 10th, 100th... original forgotten before its window ended.
    fn overflow_warning(&mut self) -> Option<String> {
        let n = self.duplicates.overflowed();
        if n == self.warned_overflow || !(n == 1 || n >= self.warned_overflow * 10) {
            return None;
        }
        self.warned_overflow = n;
        Some(format!(
            "the redundant line remembers at most {MAX_ENTRIES} messages for redundant_window; \
             {n} were forgotten before their copy came, so a later copy of them through the \
             other connection is shown again (shorten redundant_window or lower the message rate)"
        ))
    }
}

impl Line {
    /// Whether a message from `link` is held ahead: `link` rejoined a redundant line a moment
    /// ago (see [`Line::link_rejoined`]).
    fn is_ahead(&self, link: LinkId) -> bool {
        self.redundancy
            .as_ref()
            .and_then(|r| r.rejoined)
            .is_some_and(|j| j.link == link)
    }

    /// The other connection delivered a message the rejoined one never carried: it is still
    /// working through its backlog from the outage, so the hold goes on for a window after it
    /// (at most [`MAX_HOLD_WINDOWS`] after the rejoin).
    fn backlog_seen(&mut self, from: LinkId, now: Instant) {
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        let window = r.window();
        // A hold already over (its time passed, or a connection was lost) is not revived.
        if let Some(j) = r
            .rejoined
            .as_mut()
            .filter(|j| j.link != from && j.until > now)
        {
            let last = j.since + window * MAX_HOLD_WINDOWS;
            j.until = j.until.max(now + window).min(last);
        }
    }

    /// Connection `id` became ready while the other one was: its broker missed what was
    /// published during its outage, and its first messages may be newer than those the other
    /// connection still has to deliver (still in the other broker's queue or its in-flight
    /// window, which may wait for the host's ACK_ID). Its new messages wait behind the other
    /// connection's, each until that one delivers its copy or a later one's, for
    /// `redundant_window` and as long as the other connection still delivers its backlog
    /// ([`Line::backlog_seen`]); so every station shows them in the order of the connection
    /// that carried the line through the outage.
    #[cold]
    pub(super) fn link_rejoined(&mut self, id: LinkId, now: Instant) {
        // Those held ahead of the other connection's rejoin wait no longer.
        self.rejoin_over();
        self.end_rejoin(now);
        if let Some(r) = self.redundancy.as_deref_mut() {
            r.rejoined = Some(Rejoin {
                link: id,
                since: now,
                until: now + r.window(),
            });
        }
    }

    /// When the messages held ahead stop waiting.
    pub(super) fn rejoin_deadline(&self) -> Option<Instant> {
        self.redundancy.as_ref()?.rejoined.map(|j| j.until)
    }

    /// A connection was lost: nothing more is to be learnt about the order of the messages held
    /// ahead; they stop waiting at the next timer (the line's first deadline, due at once).
    pub(super) fn rejoin_over(&mut self) {
        let created = self.created;
        if let Some(j) = self
            .redundancy
            .as_deref_mut()
            .and_then(|r| r.rejoined.as_mut())
        {
            j.until = created;
        }
    }

    /// Messages held ahead stop waiting once their time is up.
    pub(super) fn end_rejoin(&mut self, now: Instant) {
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        match r.rejoined {
            Some(j) if now >= j.until => r.rejoined = None,
            _ => return,
        }
        self.release_ahead(None, now);
    }

    /// Holds message `p` of the rejoined connection `link` (an original, `key`) ahead.
    #[cold]
    fn hold_ahead(
        &mut self,
        mut p: Publish,
        link: LinkId,
        key: CopyKey,
        now: Instant,
        wall_ns: i64,
    ) {
        let epoch = self.epoch(link);
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        // The payload may share the connection's read buffer: a copy of its own keeps a long
        // hold from pinning one read buffer per message.
        p.payload = Bytes::copy_from_slice(&p.payload);
        r.ahead_bytes += size_of(&p);
        r.ahead.push_back(Ahead {
            publish: p,
            link,
            key,
            epoch,
            wall_ns,
        });
        while let Some(oldest) = self
            .redundancy
            .as_deref_mut()
            .and_then(Redundancy::over_limit)
        {
            self.deliver_ahead(oldest, now);
        }
    }

    /// Delivers the messages held ahead: with `copy` (a copy through this connection of the
    /// original with this key and number) those up to that original, which the copy shows the
    /// connection has caught up with, when it is held (an earlier original of the same key
    /// that was shown already says nothing of the later ones); without, all of them.
    fn release_ahead(&mut self, copy: Option<(LinkId, u64, u64)>, now: Instant) {
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        let through = match copy {
            None => r.ahead.len(),
            Some((link, key, seq)) => {
                let matched = |m: &Ahead| m.key.key == key && m.link != link && m.key.seq == seq;
                match r.ahead.iter().position(matched) {
                    Some(j) => j + 1,
                    None => return,
                }
            }
        };
        for _ in 0..through {
            let Some(m) = self
                .redundancy
                .as_deref_mut()
                .and_then(Redundancy::pop_ahead)
            else {
                return;
            };
            self.deliver_ahead(m, now);
        }
    }

    fn deliver_ahead(&mut self, m: Ahead, now: Instant) {
        self.deliver_in(
            m.publish,
            m.link,
            Some(m.epoch),
            Some(m.key),
            now,
            m.wall_ns,
        );
    }

    /// A redundant line's message from `link`: a copy of one the other connection delivered is
    /// only acknowledged ([`Line::duplicate`]), after the messages held ahead of it; an original
    /// is delivered, or held ahead while `link` has just rejoined.
    // Out of line, so that the single line's `deliver` stays as small as before.
    #[inline(never)]
    pub(super) fn deliver_redundant(
        &mut self,
        p: Publish,
        link: LinkId,
        now: Instant,
        wall_ns: i64,
    ) {
        match self.redundant_verdict(link, &p, now) {
            Some(Verdict::Duplicate { key, seq }) => {
                self.release_ahead(Some((link, key, seq)), now);
                self.duplicate(p, link, key, now);
            }
            Some(Verdict::Original { key, seq }) => {
                let key = CopyKey {
                    key,
                    seq,
                    matched: false,
                };
                if self.is_ahead(link) {
                    self.hold_ahead(p, link, key, now, wall_ns);
                    return;
                }
                self.backlog_seen(link, now);
                self.deliver(p, link, Some(key), now, wall_ns);
            }
            None => self.deliver(p, link, None, now, wall_ns),
        }
    }

    /// Passes a message from `link` through a redundant line's duplicate filter; `None` on a
    /// line with one connection (which never hashes).
    #[inline]
    fn redundant_verdict(&mut self, link: LinkId, p: &Publish, now: Instant) -> Option<Verdict> {
        let r = self.redundancy.as_deref_mut()?;
        let (verdict, warning) = r.take(&mut self.link, link, p, now);
        if let Some(text) = warning {
            self.log(LogLevel::Warn, text);
        }
        Some(verdict)
    }

    /// Connection B is taken away (new parameters without `redundant_host`). A write that still
    /// waits for A's broker now waits for it alone; one that waited for B's alone (A's share
    /// had failed) can wait no longer. Both that failure and the messages held ahead of B's
    /// (A rejoined a moment ago) need the time, which `reconfigure` does not have: they are
    /// settled at the next packet or timer, before any new message can pass them.
    #[cold]
    pub(super) fn retire_b(&mut self) {
        let bit = super::writes::link_bit(LinkId::B);
        let mut alone = Vec::new();
        for (&token, w) in self.writes.iter_mut() {
            if w.waiting & bit != 0 {
                w.waiting &= !bit;
                if w.waiting == 0 {
                    alone.push(token);
                }
            }
        }
        let ahead = self.redundancy.take().map(|r| r.ahead).unwrap_or_default();
        let retired = self.retired_b.get_or_insert_with(RetiredB::default);
        retired.writes.extend(alone);
        retired.ahead.extend(ahead);
    }

    /// What connection B's removal left waiting ([`Line::retire_b`]) ends: writes that waited
    /// for B alone fail with A's reason, and messages held ahead are shown in their turn.
    #[cold]
    pub(super) fn settle_retired_b(&mut self, now: Instant, wall_ns: i64) {
        let Some(retired) = self.retired_b.take() else {
            return;
        };
        let reason = "B: the line no longer has connection B (redundant_host was cleared)";
        for token in retired.writes {
            let all = match self.writes.get_mut(&token).and_then(|w| w.failed.take()) {
                Some(earlier) => format!("{earlier}; {reason}"),
                None => reason.to_string(),
            };
            self.fail_write(token, &all, wall_ns);
        }
        for m in retired.ahead {
            self.deliver_ahead(m, now);
        }
    }

    /// The `seq` of the oldest original the duplicate filter still remembers (0 on a line with
    /// one connection, which numbers none).
    pub(super) fn remembered_from(&self) -> u64 {
        self.redundancy
            .as_ref()
            .map_or(0, |r| r.duplicates.remembered_from())
    }

    /// The state and counters of connection `id`; `None` when the line has no such connection.
    /// On a line with one connection, A's received count is the line's.
    pub fn link_stats(&self, id: LinkId) -> Option<LinkStats> {
        let link = self.link_ref(id)?;
        let c = link.counters;
        let (received, reconnects) = match self.redundancy {
            Some(_) => (c.received, c.reconnects),
            None => (self.stats.received, self.stats.reconnects),
        };
        Some(LinkStats {
            state: c.state,
            host: link.host.clone(),
            received,
            duplicates: c.duplicates,
            reconnects,
            connection_attempts: c.connection_attempts,
        })
    }
}
