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
}

impl Redundancy {
    pub(super) fn new(now: Instant, window: Duration) -> Redundancy {
        Redundancy {
            b: Link::new(now),
            duplicates: Duplicates::new(window),
            warned_overflow: 0,
        }
    }

    pub(super) fn set_window(&mut self, window: Duration) {
        self.duplicates.set_window(window);
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

    /// The state and counters of connection `id`; `None` when the line has no such connection.
    /// On a line with one connection, A's received count is the line's.
    pub fn link_stats(&self, id: LinkId) -> Option<LinkStats> {
        let link = self.link_ref(id)?;
        let c = link.counters;
        let received = match self.redundancy {
            Some(_) => c.received,
            None => self.stats.received,
        };
        Some(LinkStats {
            state: c.state,
            host: link.host.clone(),
            received,
            duplicates: c.duplicates,
            reconnects: c.reconnects,
            connection_attempts: c.connection_attempts,
        })
    }
}
