//! What a redundant line (issue 21) has beside connection A: connection B and the duplicate
//! filter both feed, with the per-connection counters the host shows. The rule itself is
//! duplicates.rs; the acknowledgement of a gated message's copy is inbound.rs and ack.rs.

use std::time::{Duration, Instant};

use super::emit::topic;
use super::link::{Link, LinkId, LinkStats};
use super::Line;
use crate::codec::Publish;
use crate::duplicates::{Duplicates, Verdict, MAX_ENTRIES};
use crate::event::LogLevel;

pub(super) struct Redundancy {
    pub(super) b: Link,
    duplicates: Duplicates,
    /// The overflow count at the last warning (1, 10, 100, ...).
    warned_overflow: u64,
    /// The connection that became ready again while the other one stayed ready, and until when
    /// its messages to gated stations are held ahead (ack_gate.rs, `Held::ahead`).
    rejoined: Option<(LinkId, Instant)>,
    window: Duration,
}

impl Redundancy {
    pub(super) fn new(now: Instant, window: Duration) -> Redundancy {
        Redundancy {
            b: Link::new(now),
            duplicates: Duplicates::new(window),
            warned_overflow: 0,
            rejoined: None,
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

    /// The warning at the 1st, 10th, 100th... original forgotten before its window ended.
    fn overflow_warning(&mut self) -> Option<String> {
        let n = self.duplicates.overflowed();
        if n == self.warned_overflow || !(n == 1 || n >= self.warned_overflow * 10) {
            return None;
        }
        self.warned_overflow = n;
        Some(format!(
            "the redundant line remembers at most {MAX_ENTRIES} messages for redundant_window; \
             {n} were forgotten before their window ended, so a later copy of them through the \
             other connection is shown again (shorten redundant_window or lower the message rate)"
        ))
    }
}

impl Line {
    /// Whether a message from `link` to a gated station is held ahead: `link` rejoined a
    /// redundant line a moment ago (see [`Line::link_rejoined`]).
    pub(super) fn is_ahead(&self, link: LinkId) -> bool {
        self.redundancy
            .as_ref()
            .and_then(|r| r.rejoined)
            .is_some_and(|(id, _)| id == link)
    }

    /// Connection `id` became ready while the other one was: its broker missed what was
    /// published during its outage, and its first messages may be newer than those the other
    /// connection still has to deliver (its in-flight window waits for the host's ACK_ID). For
    /// `redundant_window` its messages to gated stations wait behind the other connection's,
    /// each until that one delivers its copy or a later one's; so a gated station shows them in
    /// the order of the connection that carried the line through the outage.
    #[cold]
    pub(super) fn link_rejoined(&mut self, id: LinkId, now: Instant) {
        // Those held ahead of the other connection's rejoin wait no longer.
        self.rejoin_over();
        self.end_rejoin(now);
        if let Some(r) = self.redundancy.as_deref_mut() {
            r.rejoined = Some((id, now + r.window()));
        }
    }

    /// When the messages held ahead stop waiting.
    pub(super) fn rejoin_deadline(&self) -> Option<Instant> {
        self.redundancy.as_ref()?.rejoined.map(|(_, until)| until)
    }

    /// A connection was lost: nothing more is to be learnt about the order of the messages held
    /// ahead; they stop waiting at the next timer (the line's first deadline, due at once).
    pub(super) fn rejoin_over(&mut self) {
        let created = self.created;
        if let Some((_, until)) = self
            .redundancy
            .as_deref_mut()
            .and_then(|r| r.rejoined.as_mut())
        {
            *until = created;
        }
    }

    /// Messages held ahead stop waiting once their time is up.
    pub(super) fn end_rejoin(&mut self, now: Instant) {
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        match r.rejoined {
            Some((_, until)) if now >= until => r.rejoined = None,
            _ => return,
        }
        for k in 0..self.gated_stations.len() {
            let i = self.gated_stations[k];
            self.stations[i].gate.release_ahead();
            self.show_next(i, now);
        }
    }

    /// Passes a message from `link` through a redundant line's duplicate filter; `None` on a
    /// line with one connection (which never hashes).
    #[inline]
    pub(super) fn redundant_verdict(
        &mut self,
        link: LinkId,
        p: &Publish,
        now: Instant,
    ) -> Option<Verdict> {
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
        self.retired_b.get_or_insert_with(Vec::new).extend(alone);
        self.redundancy = None;
    }

    /// What connection B's removal left waiting ([`Line::retire_b`]) ends: writes that waited
    /// for B alone fail with A's reason, and messages held ahead are shown in their turn.
    #[cold]
    pub(super) fn settle_retired_b(&mut self, now: Instant, wall_ns: i64) {
        let Some(tokens) = self.retired_b.take() else {
            return;
        };
        let reason = "B: the line no longer has connection B (redundant_host was cleared)";
        for token in tokens {
            let all = match self.writes.get_mut(&token).and_then(|w| w.failed.take()) {
                Some(earlier) => format!("{earlier}; {reason}"),
                None => reason.to_string(),
            };
            self.fail_write(token, &all, wall_ns);
        }
        for k in 0..self.gated_stations.len() {
            let i = self.gated_stations[k];
            self.stations[i].gate.release_ahead();
            self.show_next(i, now);
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
