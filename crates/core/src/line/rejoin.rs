//! A redundant line's connection that rejoins (issue 21): its broker missed what was published
//! during its outage, so its first messages may be newer than what the other connection still
//! has to deliver. They are held here, ahead of every station, until the other connection has
//! caught up with them (docs/decisions.md, issue 21).

use std::collections::VecDeque;
use std::time::Instant;

use super::link::LinkId;
use super::Line;
use crate::ack_gate::CopyKey;
use crate::codec::Publish;
use bytes::Bytes;

/// The messages of a connection that rejoined while the other one stayed ready.
#[derive(Default)]
pub(super) struct RejoinHold {
    /// The connection that rejoined ([`Line::link_rejoined`]).
    rejoined: Option<Rejoin>,
    /// Its messages held ahead, oldest first.
    pub(super) ahead: VecDeque<Ahead>,
    /// Payload and topic bytes of `ahead`.
    ahead_bytes: usize,
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

impl RejoinHold {
    /// The oldest message held ahead.
    pub(super) fn pop_ahead(&mut self) -> Option<Ahead> {
        let m = self.ahead.pop_front()?;
        self.ahead_bytes -= size_of(&m.publish);
        Some(m)
    }

    /// The oldest message held ahead, while more are held than the limits allow.
    pub(super) fn over_limit(&mut self) -> Option<Ahead> {
        if self.ahead.len() > MAX_AHEAD || self.ahead_bytes > MAX_AHEAD_BYTES {
            self.pop_ahead()
        } else {
            None
        }
    }
}

impl Line {
    /// Whether a message from `link` is held ahead: `link` rejoined a redundant line a moment
    /// ago (see [`Line::link_rejoined`]).
    pub(super) fn is_ahead(&self, link: LinkId) -> bool {
        self.redundancy
            .as_ref()
            .and_then(|r| r.hold.rejoined)
            .is_some_and(|j| j.link == link)
    }

    /// The other connection delivered a message the rejoined one never carried: it is still
    /// working through its backlog from the outage, so the hold goes on for a window after it
    /// (at most [`MAX_HOLD_WINDOWS`] after the rejoin).
    pub(super) fn backlog_seen(&mut self, from: LinkId, now: Instant) {
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        let window = r.window();
        // A hold already over (its time passed, or a connection was lost) is not revived.
        if let Some(j) = r
            .hold
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
            r.hold.rejoined = Some(Rejoin {
                link: id,
                since: now,
                until: now + r.window(),
            });
        }
    }

    /// When the messages held ahead stop waiting.
    pub(super) fn rejoin_deadline(&self) -> Option<Instant> {
        self.redundancy.as_ref()?.hold.rejoined.map(|j| j.until)
    }

    /// A connection was lost: nothing more is to be learnt about the order of the messages held
    /// ahead; they stop waiting at the next timer (the line's first deadline, due at once).
    pub(super) fn rejoin_over(&mut self) {
        let created = self.created;
        if let Some(j) = self
            .redundancy
            .as_deref_mut()
            .and_then(|r| r.hold.rejoined.as_mut())
        {
            j.until = created;
        }
    }

    /// Messages held ahead stop waiting once their time is up.
    pub(super) fn end_rejoin(&mut self, now: Instant) {
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        match r.hold.rejoined {
            Some(j) if now >= j.until => r.hold.rejoined = None,
            _ => return,
        }
        self.release_ahead(None, now);
    }

    /// Holds message `p` of the rejoined connection `link` (an original, `key`) ahead.
    #[cold]
    pub(super) fn hold_ahead(
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
        r.hold.ahead_bytes += size_of(&p);
        r.hold.ahead.push_back(Ahead {
            publish: p,
            link,
            key,
            epoch,
            wall_ns,
        });
        while let Some(oldest) = self
            .redundancy
            .as_deref_mut()
            .and_then(|r| r.hold.over_limit())
        {
            self.deliver_ahead(oldest, now);
        }
    }

    /// Delivers the messages held ahead: with `copy` (a copy through this connection of the
    /// original with this key and number) those up to that original, which the copy shows the
    /// connection has caught up with, when it is held (an earlier original of the same key
    /// that was shown already says nothing of the later ones); without, all of them.
    pub(super) fn release_ahead(&mut self, copy: Option<(LinkId, u64, u64)>, now: Instant) {
        let Some(r) = self.redundancy.as_deref_mut() else {
            return;
        };
        let through = match copy {
            None => r.hold.ahead.len(),
            Some((link, key, seq)) => {
                let matched = |m: &Ahead| m.key.key == key && m.link != link && m.key.seq == seq;
                match r.hold.ahead.iter().position(matched) {
                    Some(j) => j + 1,
                    None => return,
                }
            }
        };
        for _ in 0..through {
            let Some(m) = self
                .redundancy
                .as_deref_mut()
                .and_then(|r| r.hold.pop_ahead())
            else {
                return;
            };
            self.deliver_ahead(m, now);
        }
    }

    pub(super) fn deliver_ahead(&mut self, m: Ahead, now: Instant) {
        self.deliver_in(
            m.publish,
            m.link,
            Some(m.epoch),
            Some(m.key),
            now,
            m.wall_ns,
        );
    }
}
