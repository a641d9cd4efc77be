//! What a redundant line (issue 21) has beside connection A: connection B and the duplicate
//! filter both feed, with the per-connection counters the host shows, and the messages of a
//! connection that rejoined, held until the other connection has caught up with them. The
//! duplicate rule itself is duplicates.rs; the acknowledgement of a gated message's copy is
//! inbound.rs and ack.rs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::inbound::Copy;
use super::link::{Link, LinkId, LinkStats};
use super::rejoin::{Ahead, RejoinHold};
use super::Line;
use crate::ack_gate::CopyKey;
use crate::codec::{Protocol, Publish, PublishShape};
use crate::duplicates::{Duplicates, Verdict, MAX_ENTRIES};
use crate::event::LogLevel;
use crate::ids::WriteToken;
use crate::session::ProtocolError;
use bytes::{Buf, BytesMut};

pub(super) struct Redundancy {
    pub(super) b: Link,
    duplicates: Duplicates,
    /// The overflow count at the last warning (1, 10, 100, ...).
    warned_overflow: u64,
    /// The messages of a connection that rejoined, held ahead (rejoin.rs).
    pub(super) hold: RejoinHold,
    window: Duration,
}

/// What taking connection B away left to settle ([`Line::retire_b`]).
#[derive(Default)]
pub(super) struct RetiredB {
    /// Writes that waited for B alone.
    writes: Vec<WriteToken>,
    /// Messages that were held ahead.
    ahead: VecDeque<Ahead>,
}

impl Redundancy {
    pub(super) fn new(now: Instant, window: Duration) -> Redundancy {
        Redundancy {
            b: Link::new(now),
            duplicates: Duplicates::new(window),
            warned_overflow: 0,
            hold: RejoinHold::default(),
            window,
        }
    }

    pub(super) fn set_window(&mut self, window: Duration) {
        self.duplicates.set_window(window);
        self.window = window;
    }

    pub(super) fn window(&self) -> Duration {
        self.window
    }

    /// A message with `topic` and `payload` (the topic's bytes as received: the session or the
    /// frame's reading checked them already, and the key needs no text) arrived through `link`
    /// at `now`: counted for that connection, and whether it is shown. `a` is connection A's
    /// counters (the line keeps A outside).
    fn take(
        &mut self,
        a: &mut Link,
        link: LinkId,
        (topic, payload): (&[u8], &[u8]),
        now: Instant,
    ) -> (Verdict, Option<String>) {
        let counters = match link {
            LinkId::A => &mut a.counters,
            LinkId::B => &mut self.b.counters,
        };
        counters.received += 1;
        let verdict = self.duplicates.check(link, topic, payload, now);
        if let Verdict::Duplicate { .. } = verdict {
            counters.duplicates += 1;
        }
        (verdict, self.overflow_warning())
    }

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
    /// A redundant line's message from `link`: a copy of one the other connection delivered is
    /// only acknowledged ([`Line::duplicate`]); an original is delivered, or held ahead while
    /// `link` has just rejoined.
    // Out of line, so that the single line's `deliver` stays as small as before.
    #[inline(never)]
    pub(super) fn deliver_redundant(
        &mut self,
        p: Publish,
        link: LinkId,
        now: Instant,
        wall_ns: i64,
    ) {
        let verdict = self.redundant_verdict(link, (&p.topic, &p.payload), now);
        self.deliver_judged(p, link, verdict, now, wall_ns);
    }

    /// A QoS 0 message of a redundant 3.1.1 line, the frame of `len` bytes at the front of
    /// `buf`: judged where it lies, so that a copy (half of what such a line receives) is only
    /// counted and dropped from the buffer, never taken out of it as a message nor handed to
    /// the session, where a QoS 0 message of 3.1.1 leaves nothing to acknowledge or check. An
    /// original goes on as any message.
    #[inline(never)]
    pub(super) fn take_qos0_v311(
        &mut self,
        id: LinkId,
        buf: &mut BytesMut,
        len: usize,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        let frame = &buf[..len];
        let shape = PublishShape::read(frame, Protocol::V311).map_err(ProtocolError::Malformed)?;
        let Some(session) = self.session_on(id, now, wall_ns) else {
            buf.advance(len);
            return Ok(());
        };
        session.arrived("PUBLISH", now)?;
        let topic = shape.topic(frame);
        let payload = shape.payload_v311(frame).unwrap_or_default();
        let verdict = self.redundant_verdict(id, (topic, payload), now);
        if let Some(Verdict::Duplicate { key, seq }) = verdict {
            let copy = Copy {
                topic,
                qos: shape.qos,
                pkid: shape.pkid,
            };
            self.duplicate(copy, id, (key, seq), now);
            buf.advance(len);
            return Ok(());
        }
        let p = shape
            .publish(buf.split_to(len).freeze())
            .map_err(ProtocolError::Malformed)?;
        self.deliver_judged(p, id, verdict, now, wall_ns);
        Ok(())
    }

    /// A message from `link` with the duplicate filter's verdict (`None` on a line with one
    /// connection, which has no filter).
    fn deliver_judged(
        &mut self,
        p: Publish,
        link: LinkId,
        verdict: Option<Verdict>,
        now: Instant,
        wall_ns: i64,
    ) {
        match verdict {
            None => self.deliver(p, link, None, now, wall_ns),
            Some(Verdict::Duplicate { key, seq }) => {
                self.duplicate(Copy::of(&p), link, (key, seq), now)
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
        }
    }

    /// Passes a message (topic and payload) from `link` through a redundant line's duplicate
    /// filter; `None` on a line with one connection (which never hashes).
    #[inline]
    fn redundant_verdict(
        &mut self,
        link: LinkId,
        message: (&[u8], &[u8]),
        now: Instant,
    ) -> Option<Verdict> {
        let r = self.redundancy.as_deref_mut()?;
        let (verdict, warning) = r.take(&mut self.link, link, message, now);
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
        let ahead = self
            .redundancy
            .take()
            .map(|r| r.hold.ahead)
            .unwrap_or_default();
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
