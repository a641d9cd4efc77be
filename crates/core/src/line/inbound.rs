//! Delivering a received message: will messages first, then routing to one station, the
//! station's command (accounting.rs) and ACK_ID gate (ack.rs); a Sparkplug B line hands the
//! message to sparkplug.rs. The station's tags are filled by inputs.rs.

use std::time::Instant;

use super::emit::topic;
use super::Line;
use crate::ack_gate::{Held, HeldLimit, Offered};
use crate::codec::Publish;
use crate::event::{LogLevel, RouteOutcome};
use crate::gzip::Encoding;
use crate::ids::StationIndex;
use crate::payload;

impl Line {
    /// Routes a received message. Stations without ACK_ID get it at once and it is confirmed to
    /// the broker; a station with ACK_ID shows it when the previous one was confirmed.
    pub(super) fn deliver(&mut self, p: Publish, now: Instant, wall_ns: i64) {
        self.stats.received += 1;
        self.stats.bytes_received += p.payload.len() as u64;
        self.stats.last_message_ns = Some(wall_ns);
        let name = topic(&p);
        if let Some(hit) = self.will_stations(&p, name) {
            self.stats.will_messages += 1;
            self.trace(&p, RouteOutcome::Will, hit.first().copied(), wall_ns);
            self.devices_lost(&hit, name, wall_ns);
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        }
        if self.edge.is_some() {
            self.deliver_edge(p, now, wall_ns);
            return;
        }
        if self.sparkplug.is_some() {
            self.deliver_sparkplug(p, now, wall_ns);
            return;
        }
        let routed = self.router.route(name).map(StationIndex);
        let Some(i) = self.account(&p, routed, now, wall_ns) else {
            self.session.confirm(p.pkid, self.session.epoch());
            return;
        };
        // An MQTT 5 Content-Type may say the payload is gzip.
        let encoding = content_type(&p).map_or(Encoding::Detect, Encoding::from_content_type);
        let s = &mut self.stations[i];
        let epoch = self.session.epoch();
        if !s.gated {
            self.fill_inputs_as(i, &p, name, encoding, wall_ns);
            self.session.confirm(p.pkid, epoch);
            return;
        }
        let held = Held {
            publish: p,
            wall_ns,
            epoch,
            encoding,
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

/// The received message's Content Type (MQTT 5): one that names gzip announces a gzip payload
/// (gzip.rs).
fn content_type(p: &Publish) -> Option<&str> {
    p.properties.as_ref()?.content_type.as_deref()
}
