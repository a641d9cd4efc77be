//! The line as a Sparkplug B host application: received births, data and deaths into node state,
//! station states and tag values; rebirth requests; commands written to SPB= output tags; the
//! primary host's STATE. The rules themselves are in `crate::sparkplug`; this file connects them
//! to the line's stations, tags, session and events.

use std::time::Instant;

use bytes::Bytes;

use super::emit::topic;
use super::writes::WriteError;
use super::Line;
use crate::codec::{Packet, Publish, QoS};
use crate::event::{LogLevel, FLAG_DUPLICATE, FLAG_RETAINED, FLAG_TIME_FROM_PAYLOAD, FLAG_VALID};
use crate::ids::{LinkId, StationIndex, TagIndex, WriteToken};
use crate::payload::escape;
use crate::routing::FxMap;
use crate::sparkplug::datatype::{to_metric_value, to_tag_value, DataType};
use crate::sparkplug::metric_view::MetricView;
use crate::sparkplug::node_state::{Death, MetricTable, Node, OutOfStep, REBIRTH};
use crate::sparkplug::payload::{self, Metric, MetricValue, Payload};
use crate::sparkplug::received::Message;
use crate::sparkplug::reorder::{Held, Place};
use crate::sparkplug::topic::{command_topic, state_topic, MessageType, SparkplugTopic};
use crate::sparkplug::{ms, says_offline, state_payload, Host};
use crate::station::StationCommand;
use crate::tag::TagAddress;
use crate::value::Value;

/// A received message's node and device, and how its values are flagged.
struct Origin<'a> {
    group: &'a str,
    node: &'a str,
    device: Option<&'a str>,
    flags: u32,
    /// The station this identity is routed to, whatever its command (routed once a message).
    station: Option<StationIndex>,
}

impl Origin<'_> {
    /// The identity the stations' addresses are routed against: `group/node[/device]`.
    fn identity(&self) -> String {
        identity(self.group, self.node, self.device)
    }
}

fn identity(group: &str, node: &str, device: Option<&str>) -> String {
    match device {
        Some(d) => format!("{group}/{node}/{d}"),
        None => format!("{group}/{node}"),
    }
}

impl Line {
    /// The Sparkplug state of a line whose payload type is Sparkplug B (else none), with the
    /// SPB= input tags of each station by metric name. Called by `start` and `reconfigure`.
    pub(super) fn build_sparkplug(&mut self, wall_ns: i64) {
        if !self.config.is_sparkplug() {
            self.sparkplug = None;
            return;
        }
        let mut tags: Vec<FxMap<Box<str>, Vec<TagIndex>>> =
            vec![FxMap::default(); self.stations.len()];
        for (k, tag) in self.tags.iter().enumerate() {
            if let TagAddress::Sparkplug(name) = &tag.address {
                if !tag.ty.is_output() {
                    tags[tag.station.0]
                        .entry(Box::from(&**name))
                        .or_default()
                        .push(TagIndex(k));
                }
            }
        }
        let host = self.sparkplug.get_or_insert_with(Box::default);
        host.tags = tags;
        host.rebirth_debounce = self.config.sparkplug_rebirth_debounce;
        host.clock_ns = host.clock_ns.max(wall_ns);
    }

    /// The start warnings of Sparkplug tags: SPB= tags on a line of another payload type, other
    /// tags on a Sparkplug line, SPB= output tags of a station that names no one node or device.
    pub(super) fn sparkplug_warnings(&self) -> Vec<String> {
        let sparkplug = self.config.is_sparkplug();
        let mut warnings = Vec::new();
        for st in &self.stations {
            let station = crate::error::object("station", &st.name);
            for &t in &st.tags {
                let tag = &self.tags[t];
                let spb = matches!(tag.address, TagAddress::Sparkplug(_));
                if spb && !sparkplug {
                    warnings.push(format!(
                        "{station}: tag {} is an SPB= tag, but the line's payload_type is not \
                         'Sparkplug B', so it is never filled or written",
                        crate::text::quote(&tag.name)
                    ));
                } else if !spb && sparkplug {
                    warnings.push(format!(
                        "{station}: tag {} ({}) is not used on a Sparkplug B line, which fills \
                         and writes SPB= tags only",
                        crate::text::quote(&tag.name),
                        tag.address
                    ));
                } else if spb && tag.ty.is_output() && edge_identity(&st.address).is_none() {
                    warnings.push(format!(
                        "{station}: address {} names no one edge node or device, so writes of \
                         its SPB= output tag {} fail",
                        crate::text::quote(&st.address),
                        crate::text::quote(&tag.name)
                    ));
                }
            }
        }
        warnings
    }

    /// The time stamp of the STATE will of the connection being opened (kept by its `Link`).
    pub(super) fn sparkplug_will_ms(&mut self) -> u64 {
        self.sparkplug.as_ref().map_or(0, |h| ms(h.clock_ns))
    }

    /// The line connected (through `id`): a primary host says it is online; node state starts
    /// over (births must come again, and data before them asks for a rebirth).
    pub(super) fn sparkplug_connected(&mut self, id: LinkId) {
        let Some(host) = self.sparkplug.as_mut() else {
            return;
        };
        host.nodes.clear();
        host.reordering.clear();
        self.sparkplug_link_ready(id);
    }

    /// Connection `id` is ready: a primary host says it is online on that broker, with the time
    /// stamp of that connection's will (Sparkplug 3.0: each server has its own STATE). A
    /// redundant line's second connection changes nothing else: the nodes are heard already.
    pub(super) fn sparkplug_link_ready(&mut self, id: LinkId) {
        if self.sparkplug.is_none() {
            return;
        }
        if let Some(timestamp) = self.link_ref(id).map(|l| l.state_ms) {
            self.publish_state_on(id, true, timestamp);
        }
    }

    /// An intended disconnect (`quit`, `line_destroy`, new parameters, every station off): a
    /// primary host says it is offline before its DISCONNECT, since the broker then drops the
    /// will and edge nodes would otherwise see the retained `online: true` for ever
    /// (tck-id-host-topic-phid-death-payload-disconnect-clean). Stamped with the time of the
    /// disconnect. True when it was queued (its PUBACK will come back).
    pub(super) fn sparkplug_goodbye(&mut self, id: LinkId, wall_ns: i64) -> bool {
        let primary = self.sparkplug.is_some() && !self.config.sparkplug_host_id.is_empty();
        primary && self.is_link_ready(id) && self.publish_state_on(id, false, ms(wall_ns))
    }

    /// Publishes the host's STATE on connection `id`'s broker; false when there is no host id
    /// or the session refused it.
    fn publish_state_on(&mut self, id: LinkId, online: bool, timestamp_ms: u64) -> bool {
        let host_id = &self.config.sparkplug_host_id;
        if host_id.is_empty() {
            return false;
        }
        let topic = state_topic(host_id);
        let payload = Bytes::from(state_payload(online, timestamp_ms));
        let token = self.internal_token();
        let Some(link) = self.link_mut(id) else {
            return false;
        };
        match link
            .session
            .publish(token, &topic, payload, QoS::AtLeastOnce, true, None)
        {
            Ok(()) => true,
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    format!("cannot publish STATE on '{topic}': {e}"),
                );
                false
            }
        }
    }

    /// A token for a publication of the line's own (STATE, rebirth requests): no write waits
    /// for it, so its completion reports nothing.
    fn internal_token(&mut self) -> WriteToken {
        let token = WriteToken(self.next_token);
        self.next_token += 1;
        token
    }

    /// A message on a line whose payload type is Sparkplug B: confirmed at once, since seq and
    /// rebirths, not ACK_ID, keep the host in step with the nodes.
    pub(super) fn deliver_sparkplug(
        &mut self,
        p: Publish,
        link: LinkId,
        now: Instant,
        wall_ns: i64,
    ) {
        let epoch = self.epoch(link);
        if let Some(mut host) = self.sparkplug.take() {
            host.clock_ns = wall_ns;
            self.consume(&mut host, &p, link, now, wall_ns);
            self.sparkplug = Some(host);
        }
        self.confirm_in(link, p.pkid, epoch);
    }

    fn consume(&mut self, host: &mut Host, p: &Publish, link: LinkId, now: Instant, wall_ns: i64) {
        let (kind, group, node, device) = match SparkplugTopic::parse(topic(p)) {
            Ok(SparkplugTopic::Edge {
                kind,
                group,
                node,
                device,
            }) => (kind, group, node, device),
            Ok(SparkplugTopic::State { host_id }) => {
                self.account(p, None, now, wall_ns);
                self.state_seen(link, host_id, &p.payload);
                return;
            }
            Err(e) => {
                self.account(p, None, now, wall_ns);
                let text = format!("not a Sparkplug B topic ({e}) topic={}", escape(topic(p)));
                self.log(LogLevel::Debug, text);
                return;
            }
        };
        if matches!(kind, MessageType::NCmd | MessageType::DCmd) {
            self.account(p, None, now, wall_ns);
            return; // commands are for the edge nodes
        }
        // Counted, traced and STALE-timed like any message for the station of this identity;
        // births and deaths still count for a station that is off (see `routed`).
        let station = {
            let id = &mut host.identity;
            id.clear();
            id.push_str(group);
            id.push('/');
            id.push_str(node);
            if let Some(d) = device {
                id.push('/');
                id.push_str(d);
            }
            self.routed(id)
        };
        self.account(p, station, now, wall_ns);
        let mut flags = FLAG_VALID;
        if p.dup && p.qos == QoS::AtLeastOnce {
            flags |= FLAG_DUPLICATE;
        }
        if p.retain {
            flags |= FLAG_RETAINED;
        }
        let origin = Origin {
            group,
            node,
            device,
            flags,
            station,
        };
        let Some(state) = host.nodes.get_or_add(group, node) else {
            let text = format!(
                "Sparkplug: more than {} edge nodes; the message of '{}' is dropped",
                crate::sparkplug::node_state::MAX_NODES,
                escape(&origin.identity())
            );
            self.log(LogLevel::Warn, text);
            return;
        };
        let max = self.config.max_decompressed_size;
        let message = match Message::read(kind, &p.payload, max, &mut host.metric_room) {
            Ok(message) => message,
            Err(e) => {
                self.stats.payload_errors += 1;
                let text = format!("Sparkplug: {e} topic={}", escape(topic(p)));
                self.log(LogLevel::Warn, text);
                if kind != MessageType::NDeath {
                    state.lose_step();
                    self.request_rebirth(state, &origin, &OutOfStep::Unreadable, now, wall_ns);
                }
                return;
            }
        };
        match kind {
            MessageType::NBirth => {
                if let Err(why) = state.birth(&message.payload()) {
                    self.request_rebirth(state, &origin, &why, now, wall_ns);
                    return;
                }
                self.born(&origin, wall_ns);
                self.apply(&host.tags, state, &origin, &message, wall_ns);
            }
            MessageType::NDeath => self.node_death(state, &origin, &message.payload(), wall_ns),
            _ => {
                let reorder = self.config.sparkplug_reorder_timeout;
                match state.sequence(message.seq(), !reorder.is_zero()) {
                    Err(why) => {
                        self.request_rebirth(state, &origin, &why, now, wall_ns);
                        return;
                    }
                    Ok(Place::Ahead) => {
                        let held = Held {
                            seq: message
                                .seq()
                                .and_then(|s| u8::try_from(s).ok())
                                .unwrap_or(0),
                            kind,
                            device: device.map(String::from),
                            flags,
                            payload: message.into_payload(),
                            wall_ns,
                            size: p.payload.len(),
                        };
                        let seq = held.seq;
                        if let Err(why) = state.hold(held, now, reorder) {
                            self.request_rebirth(state, &origin, &why, now, wall_ns);
                            return;
                        }
                        if !host.reordering.iter().any(|(g, n)| g == group && n == node) {
                            host.reordering.push((group.to_string(), node.to_string()));
                        }
                        let text = format!(
                            "Sparkplug: '{}': seq {seq} arrived ahead of its turn; held for up \
                             to {} ms (sparkplug_reorder_timeout) until the missing ones arrive",
                            escape(&identity(group, node, None)),
                            reorder.as_millis()
                        );
                        self.log(LogLevel::Debug, text);
                        return;
                    }
                    Ok(_) => {}
                }
                self.sequenced(&host.tags, state, kind, &origin, &message, now, wall_ns);
                message.done(&mut host.metric_room);
                // The messages that waited for this one, in seq order.
                let mut drained = false;
                while let Some(held) = state.next_held() {
                    drained = true;
                    let device = held.device.as_deref();
                    let origin = Origin {
                        group,
                        node,
                        device,
                        flags: held.flags,
                        station: self.routed(&identity(group, node, device)),
                    };
                    let (kind, wall) = (held.kind, held.wall_ns);
                    let message = Message::Decoded(held.payload);
                    self.sequenced(&host.tags, state, kind, &origin, &message, now, wall);
                }
                if drained {
                    state.gap_filled(now);
                }
            }
        }
    }

    /// A message in its seq order (NDATA, DBIRTH, DDATA, DDEATH) applied.
    #[allow(clippy::too_many_arguments)]
    fn sequenced(
        &mut self,
        tags: &[FxMap<Box<str>, Vec<TagIndex>>],
        state: &mut Node,
        kind: MessageType,
        origin: &Origin,
        message: &Message,
        now: Instant,
        wall_ns: i64,
    ) {
        match (kind, origin.device) {
            (MessageType::DBirth, Some(d)) => {
                state.device_birth(d, &message.payload());
                self.born(origin, wall_ns);
                self.apply(tags, state, origin, message, wall_ns);
            }
            (MessageType::DDeath, Some(d)) => {
                state.device_death(d);
                let reason = format!("DDEATH of '{}'", escape(&origin.identity()));
                // The edge node sends a DDEATH itself, so its time stamp is when the device
                // died (tck-id-operational-behavior-edge-node-termination-host-action-ddeath-
                // devices-offline); an NDEATH, often the broker's will, takes the time of receipt.
                let died_ns = message
                    .timestamp()
                    .and_then(|ms| i64::try_from(ms).ok()?.checked_mul(1_000_000))
                    .unwrap_or(wall_ns);
                self.dead(&origin.identity(), &reason, died_ns);
            }
            _ => {
                let unknown = self.apply(tags, state, origin, message, wall_ns);
                if let Some(why) = unknown {
                    state.lose_step();
                    self.request_rebirth(state, origin, &why, now, wall_ns);
                }
            }
        }
    }

    /// When the next Reorder Timeout runs out, if a node holds messages.
    pub(super) fn sparkplug_timeout(&self) -> Option<Instant> {
        let host = self.sparkplug.as_ref()?;
        host.reordering
            .iter()
            .filter_map(|(g, n)| host.nodes.get(g, n)?.reorder_deadline())
            .min()
    }

    /// The Reorder Timeouts due at `now`: a gap still open asks its node for a rebirth
    /// (tck-id-operational-behavior-host-reordering-rebirth).
    pub(super) fn sparkplug_timers(&mut self, now: Instant, wall_ns: i64) {
        let Some(mut host) = self.sparkplug.take() else {
            return;
        };
        let reordering = std::mem::take(&mut host.reordering);
        for (group, node) in reordering {
            let Some(state) = host.nodes.get_mut(&group, &node) else {
                continue;
            };
            if let Some(why) = state.reorder_expired(now) {
                let origin = Origin {
                    group: &group,
                    node: &node,
                    device: None,
                    flags: FLAG_VALID,
                    station: self.routed(&identity(&group, &node, None)),
                };
                self.request_rebirth(state, &origin, &why, now, wall_ns);
            }
            if state.reorder_deadline().is_some() {
                host.reordering.push((group, node));
            }
        }
        self.sparkplug = Some(host);
    }

    /// Stamps a packet at the moment it is encoded (`wall_ns`), so that no Sparkplug time stamp
    /// is that of an earlier call into the line: the STATE will of a CONNECT (and so the
    /// `online` message that repeats it, tck-id-host-topic-phid-death-payload-connect), and
    /// every NCMD and DCMD (tck-id-payloads-ncmd-timestamp, -dcmd-timestamp).
    pub(super) fn stamp_sparkplug(&mut self, id: LinkId, packet: &mut Packet, wall_ns: i64) {
        if self.sparkplug.is_none() {
            return;
        }
        let primary = !self.config.sparkplug_host_id.is_empty();
        let Some(link) = self.link_mut(id) else {
            return;
        };
        let now_ms = ms(wall_ns);
        match packet {
            Packet::Connect(_, Some(will), _) if primary => {
                link.state_ms = now_ms;
                will.message = Bytes::from(state_payload(false, now_ms));
            }
            Packet::Publish(p) if p.qos == QoS::AtMostOnce => {
                let topic = if p.topic.is_empty() {
                    let alias = p.properties.as_ref().and_then(|pr| pr.topic_alias);
                    match alias.and_then(|a| link.session.alias_topic(a)) {
                        Some(t) => t,
                        None => return,
                    }
                } else {
                    p.topic.clone()
                };
                let command = std::str::from_utf8(&topic).is_ok_and(|t| {
                    matches!(
                        SparkplugTopic::parse(t),
                        Ok(SparkplugTopic::Edge {
                            kind: MessageType::NCmd | MessageType::DCmd,
                            ..
                        })
                    )
                });
                if command {
                    if let Some(bytes) = crate::sparkplug::stamp::restamp(&p.payload, now_ms) {
                        p.payload = Bytes::from(bytes);
                    }
                }
            }
            _ => {}
        }
    }

    /// The station of a node or device, whatever its command: a birth or death counts for a
    /// station that is off too, and shows when it is switched on.
    fn routed(&self, identity: &str) -> Option<StationIndex> {
        self.router.route(identity).map(StationIndex)
    }

    /// A birth: the station is `ok` again after a death.
    fn born(&mut self, origin: &Origin, wall_ns: i64) {
        let Some(i) = origin.station else {
            return;
        };
        if self.stations[i].device_lost {
            self.stations[i].device_lost = false;
            let reason = format!("birth of '{}'", escape(&origin.identity()));
            self.refresh_station(i, &reason, wall_ns);
        }
    }

    /// A death: the station goes to hard error and its inputs turn invalid.
    fn dead(&mut self, identity: &str, reason: &str, wall_ns: i64) {
        if let Some(i) = self.routed(identity) {
            self.stations[i].device_lost = true;
            self.refresh_station(i, reason, wall_ns);
        }
    }

    fn node_death(&mut self, state: &mut Node, origin: &Origin, payload: &Payload, wall_ns: i64) {
        let node = origin.identity();
        match state.death(payload) {
            Death::Current => {
                let reason = format!("NDEATH of '{}'", escape(&node));
                self.dead(&node, &reason, wall_ns);
                let devices: Vec<String> = state.devices().map(String::from).collect();
                for d in devices {
                    self.dead(
                        &identity(origin.group, origin.node, Some(&d)),
                        &reason,
                        wall_ns,
                    );
                }
            }
            Death::Other { current, got } => {
                let shown = |v: Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
                let text = format!(
                    "Sparkplug: NDEATH of '{}' with bdSeq {} is ignored: the current birth has \
                     bdSeq {}",
                    escape(&node),
                    shown(got),
                    shown(current)
                );
                self.log(LogLevel::Info, text);
            }
            Death::NotBorn => {
                let text = format!(
                    "Sparkplug: NDEATH of '{}', which is not born",
                    escape(&node)
                );
                self.log(LogLevel::Debug, text);
            }
        }
    }

    /// Sets the tags of each metric of a birth or data message; returns why the node is out of
    /// step when a metric's alias or name was not defined by the birth.
    fn apply(
        &mut self,
        tags: &[FxMap<Box<str>, Vec<TagIndex>>],
        state: &Node,
        origin: &Origin,
        message: &Message,
        wall_ns: i64,
    ) -> Option<OutOfStep> {
        let table: &MetricTable = match state.metrics(origin.device) {
            Ok(table) => table,
            Err(why) => return Some(why),
        };
        // Values only for a station that is on.
        let station = origin
            .station
            .filter(|&i| self.stations[i].command == StationCommand::On);
        let station_tags = station.and_then(|i| tags.get(i.0));
        let timestamp = message.timestamp();
        let mut unknown = None;
        message.for_each_metric(|m| {
            let Some((k, def)) = table
                .resolve_index(m)
                .and_then(|k| Some((k, table.def(k)?)))
            else {
                unknown.get_or_insert(match (m.name, m.alias) {
                    (Some(name), _) => OutOfStep::UnknownName(escape(name).into_owned()),
                    (None, alias) => OutOfStep::UnknownAlias(alias.unwrap_or_default()),
                });
                return;
            };
            let Some(i) = station else {
                return;
            };
            let find = || {
                station_tags
                    .and_then(|t| t.get(def.name.as_str()))
                    .map(Vec::as_slice)
            };
            let wanted = match table.tags_of(k, i.0, find) {
                Some(tags) if !tags.is_empty() => tags,
                _ => return,
            };
            let stamp = m.timestamp.or(timestamp).and_then(|ms| {
                i64::try_from(ms)
                    .ok()
                    .and_then(|ms| ms.checked_mul(1_000_000))
            });
            let (time_ns, flags) = match stamp {
                Some(ns) => (ns, origin.flags | FLAG_TIME_FROM_PAYLOAD),
                None => (wall_ns, origin.flags),
            };
            for &t in wanted {
                let value = self.metric_value(t, m, def.datatype, &def.name);
                self.set_value(t, value, time_ns, flags);
            }
        });
        unknown
    }

    /// A metric's value for tag `t`: none when the metric is null or does not fit (with a
    /// warning).
    fn metric_value(
        &mut self,
        t: TagIndex,
        m: &MetricView<'_>,
        dt: DataType,
        name: &str,
    ) -> Option<Value> {
        if m.is_null == Some(true) {
            return None;
        }
        match to_tag_value(m.value, dt, self.tags[t].ty) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.warn_invalid(t, &format!("SPB={} ({dt}): {reason}", escape(name)));
                None
            }
        }
    }

    /// The node is out of step (`why`): its data is dropped until its next birth, and it is asked
    /// for one unless it was asked within the debounce time.
    fn request_rebirth(
        &mut self,
        state: &mut Node,
        origin: &Origin,
        why: &OutOfStep,
        now: Instant,
        wall_ns: i64,
    ) {
        let node = identity(origin.group, origin.node, None);
        let debounce = self.config.sparkplug_rebirth_debounce;
        if !state.may_request_rebirth(now, debounce) {
            let text = format!(
                "Sparkplug: '{}': {why}; a rebirth was requested less than {debounce:?} ago",
                escape(&node)
            );
            self.log(LogLevel::Debug, text);
            return;
        }
        let text = format!(
            "Sparkplug: '{}': {why}; requesting a rebirth",
            escape(&node)
        );
        self.log(LogLevel::Warn, text);
        let clock = ms(wall_ns);
        let payload = Payload {
            timestamp: Some(clock),
            metrics: vec![Metric {
                name: Some(REBIRTH.into()),
                timestamp: Some(clock),
                datatype: Some(DataType::Boolean.code()),
                value: Some(MetricValue::Boolean(true)),
                ..Default::default()
            }],
            ..Default::default()
        };
        let topic = command_topic(origin.group, origin.node, None);
        let token = self.internal_token();
        let bytes = Bytes::from(payload::encode(&payload));
        if let Err(e) = self.publish_everywhere(token, &topic, bytes) {
            self.log(
                LogLevel::Warn,
                format!("Sparkplug: cannot request a rebirth: {e}"),
            );
        }
    }

    /// A STATE message: our own `online: false` (the will of an earlier connection, retained)
    /// while connected is answered with `online: true` again.
    fn state_seen(&mut self, link: LinkId, host_id: &str, payload: &[u8]) {
        if host_id == self.config.sparkplug_host_id && says_offline(payload) {
            self.log(
                LogLevel::Info,
                "Sparkplug: STATE says this host is offline; publishing online again".into(),
            );
            if let Some(state_ms) = self.link_ref(link).map(|l| l.state_ms) {
                self.publish_state_on(link, true, state_ms);
            }
        }
    }

    /// A write to an SPB= output tag: NCMD to a node station, DCMD to a device station, with the
    /// metric's name and the data type of its birth. Ok(false): completes once flushed. A node
    /// or device that is not born, or died, is not commanded.
    pub(super) fn write_metric(
        &mut self,
        t: TagIndex,
        name: &str,
        value: &Value,
        token: WriteToken,
        object: String,
    ) -> Result<bool, WriteError> {
        if !self.station_sends(t, &object)? {
            return Ok(true);
        }
        let fail = |reason: String| WriteError::Sparkplug {
            object: object.clone(),
            reason,
        };
        let address = self.stations[self.tags[t].station].address.clone();
        let Some((group, node, device)) = edge_identity(&address) else {
            return Err(fail(format!(
                "station address '{}' is not one edge node ('group/node') or device \
                 ('group/node/device'), so there is no one to send the command to",
                escape(&address)
            )));
        };
        let host = self
            .sparkplug
            .as_ref()
            .ok_or_else(|| fail("the line's payload type is not Sparkplug B".into()))?;
        let def = host
            .nodes
            .get(group, node)
            .ok_or(OutOfStep::NotBorn)
            .and_then(|n| n.metrics(device))
            .map_err(|why| fail(format!("'{}': {why}", escape(&address))))?
            .by_name(name)
            .ok_or_else(|| {
                fail(format!(
                    "the birth of '{}' defines no metric '{}'",
                    escape(&address),
                    escape(name)
                ))
            })?
            .clone();
        let metric_value = to_metric_value(value, def.datatype).map_err(&fail)?;
        let clock = ms(host.clock_ns);
        let payload = Payload {
            timestamp: Some(clock),
            metrics: vec![Metric {
                name: Some(def.name),
                timestamp: Some(clock),
                datatype: Some(def.datatype.code()),
                value: Some(metric_value),
                ..Default::default()
            }],
            ..Default::default()
        };
        let topic = command_topic(group, node, device);
        let bytes = Bytes::from(payload::encode(&payload));
        // Sparkplug 3.0 sends commands at QoS 0, not retained, whatever publish_qos says
        // (tck-id-payloads-ncmd-qos, -retain, -dcmd-qos, -retain): the write is done once the
        // command is on the socket.
        // On an MQTT 5 line a command carries what other writes of the station carry.
        let properties = self.write_properties(&self.stations[self.tags[t].station]);
        self.publish_write(token, &topic, bytes, (QoS::AtMostOnce, false), properties)
            .map_err(|reason| reason.into_write_error(object))?;
        Ok(false)
    }
}

/// A station address that names one node (`group/node`) or device (`group/node/device`); an
/// address with regular-expression syntax names none.
fn edge_identity(address: &str) -> Option<(&str, &str, Option<&str>)> {
    if address.contains([
        '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '^', '$', '\\', '#',
    ]) {
        return None;
    }
    let mut levels = address.split('/');
    let group = levels.next().filter(|l| !l.is_empty())?;
    let node = levels.next().filter(|l| !l.is_empty())?;
    let device = match levels.next() {
        Some("") => return None,
        other => other,
    };
    levels.next().is_none().then_some((group, node, device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_name_one_node_or_device() {
        let rows = [
            ("plant/press1", Some(("plant", "press1", None))),
            ("plant/press1/plc", Some(("plant", "press1", Some("plc")))),
            ("plant/press.1", Some(("plant", "press.1", None))),
            ("plant", None),
            ("plant/", None),
            ("plant/press1/", None),
            ("plant/press1/plc/x", None),
            ("plant/press.*", None),
            ("#", None),
            (".*", None),
        ];
        for (address, want) in rows {
            assert_eq!(edge_identity(address), want, "{address}");
        }
    }
}
