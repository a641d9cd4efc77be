//! Delivering a received message: will messages first, then routing to one station, the
//! station's command (accounting.rs) and ACK_ID gate (ack.rs); a Sparkplug B line hands the
//! message to sparkplug.rs. The station's tags are filled by inputs.rs.

use std::time::Instant;

use super::emit::topic;
use super::Line;
use crate::ack_gate::{CopyKey, Held, HeldLimit, Offered, Twin};
use crate::codec::Publish;
use crate::event::{LogLevel, RouteOutcome};
use crate::gzip::Encoding;
use crate::ids::LinkId;
use crate::ids::StationIndex;
use crate::payload;

impl Line {
    /// Routes a received message from connection `link`. Stations without ACK_ID get it at once
    /// and it is confirmed to the broker; a station with ACK_ID shows it when the previous one
    /// was confirmed. On a redundant line a copy of a message the other connection delivered
    /// is not shown (duplicates.rs).
    /// `key` is what a redundant line's duplicate rule knows of the message (`None` on a single
    /// line).
    // Inlined into the packet handler, as it was before the redundant line: called out of line,
    // the message is copied once more (about 4% of a text message's cost).
    #[inline(always)]
    pub(super) fn deliver(
        &mut self,
        p: Publish,
        link: LinkId,
        key: Option<CopyKey>,
        now: Instant,
        wall_ns: i64,
    ) {
        self.deliver_in(p, link, None, key, now, wall_ns);
    }

    /// [`Line::deliver`] of a message that came in broker session `epoch` of `link` (`None`:
    /// the current one, looked up only when the message is confirmed).
    #[inline(always)]
    pub(super) fn deliver_in(
        &mut self,
        p: Publish,
        link: LinkId,
        epoch: Option<u64>,
        key: Option<CopyKey>,
        now: Instant,
        wall_ns: i64,
    ) {
        self.stats.received += 1;
        self.stats.bytes_received += p.payload.len() as u64;
        self.stats.last_message_ns = Some(wall_ns);
        let name = topic(&p);
        if let Some(hit) = self.will_stations(&p, name) {
            self.stats.will_messages += 1;
            self.trace(&p, RouteOutcome::Will, hit.first().copied(), wall_ns);
            self.devices_lost(&hit, name, wall_ns);
            let epoch = epoch.unwrap_or_else(|| self.epoch(link));
            self.confirm_in(link, p.pkid, epoch);
            return;
        }
        if self.edge.is_some() {
            self.deliver_edge(p, now, wall_ns);
            return;
        }
        if self.sparkplug.is_some() {
            self.deliver_sparkplug(p, link, now, wall_ns);
            return;
        }
        let routed = self.router.route(name).map(StationIndex);
        let Some(i) = self.account(&p, routed, now, wall_ns) else {
            let epoch = epoch.unwrap_or_else(|| self.epoch(link));
            self.confirm_in(link, p.pkid, epoch);
            return;
        };
        // An MQTT 5 Content-Type may say the payload is gzip.
        let encoding = content_type(&p).map_or(Encoding::Detect, Encoding::from_content_type);
        let epoch = epoch.unwrap_or_else(|| self.epoch(link));
        let s = &mut self.stations[i];
        if !s.gated {
            self.fill_inputs_as(i, &p, name, encoding, wall_ns);
            self.confirm_in(link, p.pkid, epoch);
            return;
        }
        let held = Held {
            publish: p,
            wall_ns,
            epoch,
            encoding,
            link,
            key,
            twin: None,
        };
        if let Offered::Show(now_shown) = s
            .gate
            .offer(held, HeldLimit::station(s.params.max_held_messages))
        {
            self.show(i, *now_shown, now);
            return;
        }
        if let Some(warning) = s.gate.warning() {
            let text = warning.text(&s.name);
            self.log(LogLevel::Warn, text);
        }
    }

    /// A copy through `link` of a message the other connection delivered (the original numbered
    /// `seq` of `key`): not shown. The messages held ahead of that original are shown first
    /// (rejoin.rs). Its acknowledgement waits with the original when a gated station still holds or shows that
    /// one (the broker of the original may yet fail); otherwise it goes at once.
    // Kept out of `deliver`, so a single line's receive path stays as small as before.
    #[inline(never)]
    pub(super) fn duplicate(
        &mut self,
        copy: Copy<'_>,
        link: LinkId,
        (key, seq): (u64, u64),
        now: Instant,
    ) {
        self.release_ahead(Some((link, key, seq)), now);
        let epoch = self.epoch(link);
        if !self.gated_stations.is_empty() {
            // The topic's bytes were checked as UTF-8 when the frame was read.
            let topic = std::str::from_utf8(copy.topic).ok();
            if let Some(i) = topic.and_then(|t| self.router.route(t)).map(StationIndex) {
                let twin = (copy.qos != crate::codec::QoS::AtMostOnce).then_some(Twin {
                    link,
                    pkid: copy.pkid,
                    epoch,
                });
                if self.stations[i].gated {
                    let from = self.remembered_from();
                    let kept = self.stations[i].gate.attach_twin(key, link, twin, from);
                    self.show_next(i, now);
                    if kept {
                        return;
                    }
                }
            }
        }
        self.confirm_in(link, copy.pkid, epoch);
    }

    /// The broker session of connection `link` (its messages' packet ids belong to it).
    pub(super) fn epoch(&self, link: LinkId) -> u64 {
        self.link_ref(link).map_or(0, |l| l.session.epoch())
    }

    /// Confirms message `pkid` of broker session `epoch` of connection `link`.
    pub(super) fn confirm_in(&mut self, link: LinkId, pkid: u16, epoch: u64) {
        if let Some(l) = self.link_mut(link) {
            l.session.confirm(pkid, epoch);
        }
    }

    /// The stations `p` is the will message of: a message on a station's will topic (with its
    /// will payload, when one is set) says the device is gone. `None` when it is no will message.
    fn will_stations(&self, p: &Publish, topic: &str) -> Option<Vec<StationIndex>> {
        if self.wills.is_empty() {
            return None;
        }
        let stations = self.wills.get(topic)?;
        let hit: Vec<StationIndex> = stations
            .iter()
            .copied()
            .filter(|&i| {
                let swp = &self.stations[i].params.will_payload;
                swp.is_empty() || swp.as_bytes() == &p.payload[..]
            })
            .collect();
        (!hit.is_empty()).then_some(hit)
    }

    /// The devices of these stations are gone: hard error until data comes again; the message is
    /// not data.
    fn devices_lost(&mut self, hit: &[StationIndex], topic: &str, wall_ns: i64) {
        let topic = payload::escape(topic);
        for &i in hit {
            let st = &mut self.stations[i];
            st.device_lost = true;
            let text = format!("station '{}': will message on '{topic}'", st.name);
            self.log(LogLevel::Info, text);
            let reason = format!("will message received on '{topic}'");
            self.refresh_station(i, &reason, wall_ns);
        }
    }
}

/// What [`Line::duplicate`] needs of a copy: not the message itself, which a QoS 0 copy of a
/// 3.1.1 line never becomes (redundancy.rs). The topic as received: only a line with ACK_ID
/// stations looks at it as text.
#[derive(Clone, Copy)]
pub(super) struct Copy<'m> {
    pub(super) topic: &'m [u8],
    pub(super) qos: crate::codec::QoS,
    pub(super) pkid: u16,
}

impl<'m> Copy<'m> {
    pub(super) fn of(p: &'m Publish) -> Copy<'m> {
        Copy {
            topic: &p.topic,
            qos: p.qos,
            pkid: p.pkid,
        }
    }
}

/// The received message's Content Type (MQTT 5): one that names gzip announces a gzip payload
/// (gzip.rs).
fn content_type(p: &Publish) -> Option<&str> {
    p.properties.as_ref()?.content_type.as_deref()
}
