//! The line as a Sparkplug B edge node (`payload_type = "Sparkplug Edge Node"`): its stations as
//! the node and its devices, the will NDEATH and the subscriptions of each connection, births
//! (after the primary host's STATE, when it has one), writes of output tags as NDATA/DDATA or
//! into the store, commands into input tags, rebirth and next-server requests, device and node
//! deaths. The rules are in `crate::sparkplug::{edge_node, store}`; this file connects them to
//! the line's stations, tags, session and events (docs/sparkplug.md, "The line as an edge node").

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::emit::topic;
use super::writes::WriteError;
use super::Line;
use crate::codec::{DisconnectReasonCode, LastWill, Packet, Protocol, Publish, QoS};
use crate::error::{object, ConfigError};
use crate::event::{LogLevel, FLAG_TIME_FROM_PAYLOAD, FLAG_VALID};
use crate::ids::{LinkId, StationIndex, TagIndex, WriteToken};
use crate::payload::escape;
use crate::session::SessionConfig;
use crate::sparkplug::datatype::{to_metric_value, to_tag_value, DataType};
use crate::sparkplug::edge_node::{
    metric_address, value_fits, EdgeNode, MetricRef, Owner, NEXT_SERVER,
};
use crate::sparkplug::metric_view::ValueView;
use crate::sparkplug::ms;
use crate::sparkplug::node_state::REBIRTH;
use crate::sparkplug::payload::{self, Metric, MetricValue, Payload};
use crate::sparkplug::store::{read_records, record, Store, StoreFile, StoredWrite};
use crate::sparkplug::topic::{
    command_topic, edge_topic, state_topic, MessageType, SparkplugTopic, NAMESPACE,
};
use crate::station::StationCommand;
use crate::tag::TagAddress;
use crate::text::quote;
use crate::value::Value;

/// The edge node of a line whose payload type is Sparkplug Edge Node.
pub(super) struct Edge {
    node: EdgeNode,
    store: Store,
    /// Stored writes published again and not yet on the socket, in order: back into the store
    /// when the connection ends first.
    forwarding: Vec<(WriteToken, StoredWrite)>,
    /// The latest wall time the line was given (Unix ns): the time stamp of an NDEATH sent on a
    /// close, which the shell asks for without one.
    clock_ns: i64,
}

/// What the shell saves for an edge node with `store_path` (see [`Line::edge_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeFiles {
    /// The bdSeq of the connection just opened: saved so that a restarted process goes on
    /// after it.
    pub bd_seq: Option<u8>,
    pub store: Option<StoreFile>,
}

/// A station address as an edge identity: `group/node` or `group/node/device`, each a valid
/// Sparkplug id (not empty, no '/', '+' or '#').
fn edge_address(address: &str) -> Option<(&str, &str, Option<&str>)> {
    let levels: Vec<&str> = address.split('/').collect();
    if levels
        .iter()
        .any(|l| l.is_empty() || l.contains(['+', '#']))
    {
        return None;
    }
    match levels.as_slice() {
        [g, n] => Some((g, n, None)),
        [g, n, d] => Some((g, n, Some(d))),
        _ => None,
    }
}

impl Line {
    /// A station of an edge node line: `<group>/<node>` (the node, once) or
    /// `<group>/<node>/<device>` of the same group and node as the stations before it.
    pub(super) fn check_edge_station(&self, name: &str, address: &str) -> Result<(), ConfigError> {
        if !self.config.is_edge_node() {
            return Ok(());
        }
        let invalid = |reason: String| ConfigError::InvalidAddress {
            object: object("station", name),
            address: address.to_string(),
            reason,
        };
        let (group, node, device) = edge_address(address).ok_or_else(|| {
            invalid(
                "on a Sparkplug edge node line a station is the node '<group>/<node>' or one \
                 of its devices '<group>/<node>/<device>' (no empty level, '+' or '#')"
                    .into(),
            )
        })?;
        for other in &self.stations {
            let Some((g, n, d)) = edge_address(&other.address) else {
                continue;
            };
            if (g, n) != (group, node) {
                return Err(invalid(format!(
                    "it names edge node '{group}/{node}', but station {} names '{g}/{n}'; one \
                     line is one edge node",
                    quote(&other.name)
                )));
            }
            if device.is_none() && d.is_none() {
                return Err(invalid(format!(
                    "station {} is already the node station '{g}/{n}'; a line has one",
                    quote(&other.name)
                )));
            }
        }
        Ok(())
    }

    /// The edge node of the configured stations and SPB= tags (called by `start`).
    pub(super) fn build_edge(&mut self, wall_ns: i64) -> Result<(), ConfigError> {
        self.edge = self.edge_of_configuration(wall_ns)?;
        Ok(())
    }

    /// What `build_edge` makes, for `check` too: `Err` for stations and tags that do not make
    /// one edge node.
    pub(super) fn edge_of_configuration(
        &self,
        wall_ns: i64,
    ) -> Result<Option<Box<Edge>>, ConfigError> {
        if !self.config.is_edge_node() {
            return Ok(None);
        }
        let line = format!("line '{}'", self.name);
        let node_station = self
            .stations
            .iter()
            .position(|s| matches!(edge_address(&s.address), Some((_, _, None))))
            .ok_or_else(|| {
                ConfigError::State(format!(
                    "{line}: a Sparkplug edge node needs one station whose address is \
                     '<group>/<node>' (the node itself)"
                ))
            })?;
        let (group, node, _) =
            edge_address(&self.stations[node_station].address).unwrap_or(("", "", None));
        let mut n = EdgeNode::new(group, node, StationIndex(node_station));
        let mut owners = Vec::with_capacity(self.stations.len());
        for (i, s) in self.stations.iter().enumerate() {
            owners.push(match edge_address(&s.address) {
                Some((_, _, Some(d))) => Owner::Device(n.device(d, StationIndex(i))),
                _ => Owner::Node,
            });
        }
        let mut writers: HashMap<MetricRef, TagIndex> = HashMap::new();
        for (k, tag) in self.tags.iter().enumerate() {
            let TagAddress::Sparkplug(text) = &tag.address else {
                continue;
            };
            let st = &self.stations[tag.station];
            let tag_object = object("tag", &format!("{}.{}", st.name, tag.name));
            let invalid = |reason: String| ConfigError::InvalidAddress {
                object: tag_object.clone(),
                address: format!("SPB={text}"),
                reason,
            };
            let (name, dt) = metric_address(text, tag.ty).map_err(&invalid)?;
            let at = n.metric(owners[tag.station.0], name, dt).map_err(|had| {
                invalid(format!(
                    "metric {} of station {} already has data type {had} from another tag",
                    quote(name),
                    quote(&st.name)
                ))
            })?;
            if tag.ty.is_output() {
                if let Some(&other) = writers.get(&at) {
                    return Err(invalid(format!(
                        "tag {} already writes metric {}; one output tag per metric",
                        quote(&self.tags[other].name),
                        quote(name)
                    )));
                }
                writers.insert(at, TagIndex(k));
                n.outputs.insert(TagIndex(k), at);
            } else {
                n.get_mut(at).inputs.push(TagIndex(k));
            }
        }
        n.start_bd_seq(None, wall_ns);
        n.host_online = self.config.edge.primary_host_id.is_empty();
        let edge = &self.config.edge;
        Ok(Some(Box::new(Edge {
            node: n,
            store: Store::new(edge.store_max_messages, !edge.store_path.is_empty()),
            forwarding: Vec::new(),
            clock_ns: wall_ns,
        })))
    }

    /// The start warnings of an edge node line: tags that are not SPB= tags.
    pub(super) fn edge_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for st in &self.stations {
            for &t in &st.tags {
                let tag = &self.tags[t];
                if !matches!(tag.address, TagAddress::Sparkplug(_)) {
                    warnings.push(format!(
                        "{}: tag {} ({}) is not used on a Sparkplug edge node line, which \
                         publishes and fills SPB= tags only",
                        object("station", &st.name),
                        quote(&tag.name),
                        tag.address
                    ));
                }
            }
        }
        warnings
    }

    /// Whether an edge node line holds a connection: its node station is on.
    pub(super) fn edge_wants_connection(&self) -> Option<bool> {
        let e = self.edge.as_ref()?;
        Some(self.stations[e.node.station].command == StationCommand::On)
    }

    /// A connection opens: a new bdSeq, the will NDEATH carrying it, a clean session, and the
    /// node's command and primary host STATE topics to subscribe to before any birth.
    pub(super) fn edge_session(&mut self, cfg: &mut SessionConfig) {
        let primary = self.config.edge.primary_host_id.clone();
        let Some(e) = self.edge.as_mut() else {
            return;
        };
        let n = &mut e.node;
        n.connect();
        n.host_online = primary.is_empty();
        let (group, node) = (n.group.clone(), n.node.clone());
        let will = payload::encode(&n.ndeath(None));
        cfg.last_will = Some(LastWill::new(
            edge_topic(&group, MessageType::NDeath, &node, None),
            will,
            QoS::AtLeastOnce,
            false,
            None,
        ));
        cfg.clean_session = true;
        cfg.v5.session_expiry_interval = 0;
        cfg.topic_filter = command_topic(&group, &node, None);
    }

    /// What an edge node subscribes beside its NCMD topic (the session's `topic_filter`): its
    /// devices' DCMD and, with a primary host, its STATE. They ride with the stations' own
    /// filters (topology.rs), so a station switched on or off never unsubscribes them.
    pub(super) fn edge_filters(&self) -> Vec<String> {
        let Some(e) = self.edge.as_ref() else {
            return Vec::new();
        };
        let (group, node) = (&e.node.group, &e.node.node);
        let mut filters = vec![format!("{NAMESPACE}/{group}/DCMD/{node}/+")];
        let primary = &self.config.edge.primary_host_id;
        if !primary.is_empty() {
            filters.push(state_topic(primary));
        }
        filters
    }

    /// The connection is ready (subscribed): the births, unless a primary host must say it is
    /// online first.
    pub(super) fn edge_ready(&mut self, wall_ns: i64) {
        self.edge_clock(wall_ns);
        if self.edge.as_ref().is_some_and(|e| e.node.host_online) {
            self.edge_births(wall_ns);
        }
    }

    /// The transport closed: nothing is born any more, and forwarded writes that did not reach
    /// the socket go back into the store, in order.
    pub(super) fn edge_disconnected(&mut self) {
        let Some(e) = self.edge.as_mut() else {
            return;
        };
        e.node.born = false;
        e.node.leaving = false;
        for d in &mut e.node.devices {
            d.born = false;
        }
        let back: Vec<StoredWrite> = e.forwarding.drain(..).map(|(_, w)| w).collect();
        e.store.put_back(back);
    }

    /// The node may publish now: connected and subscribed, born, not leaving.
    fn edge_live(&self) -> bool {
        self.link.session.is_ready()
            && self
                .edge
                .as_ref()
                .is_some_and(|e| e.node.born && !e.node.leaving)
    }

    fn edge_token(&mut self) -> WriteToken {
        let token = WriteToken(self.next_token);
        self.next_token += 1;
        token
    }

    /// Publishes one of the node's messages at QoS 0 (Sparkplug 3.0 sends births, data and
    /// deaths at QoS 0; only the will is QoS 1).
    fn edge_publish(
        &mut self,
        token: WriteToken,
        kind: MessageType,
        device: Option<usize>,
        p: &Payload,
    ) -> Result<(), crate::session::PublishError> {
        let Some(e) = self.edge.as_ref() else {
            return Ok(());
        };
        let n = &e.node;
        let device = device.map(|d| n.devices[d].name.as_str());
        let topic = edge_topic(&n.group, kind, &n.node, device);
        let bytes = Bytes::from(payload::encode(p));
        self.link
            .session
            .publish(token, &topic, bytes, QoS::AtMostOnce, false, None)
    }

    /// A message of the node's own (no write waits for it); a failure is a warning.
    fn edge_send(&mut self, kind: MessageType, device: Option<usize>, p: &Payload) {
        let token = self.edge_token();
        if let Err(e) = self.edge_publish(token, kind, device, p) {
            self.log(
                LogLevel::Warn,
                format!("Sparkplug edge node: cannot publish {kind:?}: {e}"),
            );
        }
    }

    /// NBIRTH, a DBIRTH for each device station that is on, then the stored writes.
    fn edge_births(&mut self, wall_ns: i64) {
        if !self.link.session.is_ready() {
            return;
        }
        let now_ms = ms(wall_ns);
        let Some(e) = self.edge.as_mut() else {
            return;
        };
        if e.node.leaving {
            return;
        }
        let birth = e.node.nbirth(now_ms);
        self.edge_send(MessageType::NBirth, None, &birth);
        let devices: Vec<(usize, StationIndex)> = self
            .edge
            .as_ref()
            .map(|e| {
                e.node
                    .devices
                    .iter()
                    .enumerate()
                    .map(|(d, dev)| (d, dev.station))
                    .collect()
            })
            .unwrap_or_default();
        for (d, station) in devices {
            if self.stations[station].command == StationCommand::On {
                self.edge_dbirth(d, now_ms);
            }
        }
        self.edge_forward(wall_ns);
    }

    fn edge_dbirth(&mut self, d: usize, now_ms: u64) {
        if let Some(e) = self.edge.as_mut() {
            let birth = e.node.dbirth(d, now_ms);
            self.edge_send(MessageType::DBirth, Some(d), &birth);
        }
    }

    /// Publishes the stored writes whose node or device is born, oldest first, flagged
    /// historical with their own time stamps.
    fn edge_forward(&mut self, wall_ns: i64) {
        let now_ms = ms(wall_ns);
        loop {
            let Some(e) = self.edge.as_mut() else {
                return;
            };
            let n = &e.node;
            let ready = |w: &StoredWrite| match w.metric.0 {
                Owner::Node => true,
                Owner::Device(d) => n.devices[d].born,
            };
            let Some(w) = e.store.take_first(ready) else {
                return;
            };
            let p = e
                .node
                .data(w.metric, w.value.clone(), w.time_ms, true, now_ms);
            let (kind, device) = match w.metric.0 {
                Owner::Node => (MessageType::NData, None),
                Owner::Device(d) => (MessageType::DData, Some(d)),
            };
            let token = self.edge_token();
            match self.edge_publish(token, kind, device, &p) {
                Ok(()) => {
                    if let Some(e) = self.edge.as_mut() {
                        e.forwarding.push((token, w));
                    }
                }
                Err(err) => {
                    if let Some(e) = self.edge.as_mut() {
                        e.store.put_back(vec![w]);
                    }
                    self.log(
                        LogLevel::Warn,
                        format!("Sparkplug edge node: cannot forward stored writes now: {err}"),
                    );
                    return;
                }
            }
        }
    }

    /// A publication ended (`ok`: on the socket); true when it was a forwarded stored write.
    pub(super) fn edge_write_finished(&mut self, token: WriteToken, ok: bool) -> bool {
        let Some(e) = self.edge.as_mut() else {
            return false;
        };
        let Some(i) = e.forwarding.iter().position(|(t, _)| *t == token) else {
            return false;
        };
        let (_, w) = e.forwarding.remove(i);
        if ok {
            e.store.forwarded_one();
        } else {
            // Not a lost connection (that puts them back first): the message cannot be sent.
            e.store.dropped += 1;
            let text = format!(
                "Sparkplug edge node: a stored write of {} could not be sent and is dropped",
                quote(&e.node.get(w.metric).name)
            );
            self.log(LogLevel::Warn, text);
        }
        true
    }

    /// The node leaves on its own (`why`): NDEATH, then DISCONNECT; the broker closes the
    /// connection and the line goes on with its next host.
    fn edge_leave(&mut self, why: &str, wall_ns: i64) {
        let Some(e) = self.edge.as_mut() else {
            return;
        };
        if e.node.leaving {
            return;
        }
        let death = e.node.ndeath(Some(ms(wall_ns)));
        e.node.leaving = true;
        let identity = format!("{}/{}", e.node.group, e.node.node);
        if self.link.session.protocol() == Protocol::V5 {
            // MQTT 5: the broker publishes the will NDEATH on this reason code (Sparkplug 3.0
            // payloads-ndeath-will-message-publisher-disconnect-mqtt50).
            self.link
                .session
                .queue_disconnect(DisconnectReasonCode::DisconnectWithWillMessage);
        } else {
            self.edge_send(MessageType::NDeath, None, &death);
            self.link
                .session
                .queue_disconnect(DisconnectReasonCode::NormalDisconnection);
        }
        self.log(
            LogLevel::Info,
            format!(
                "Sparkplug edge node '{}': {why}; NDEATH sent, disconnecting to go to the next \
                 server",
                escape(&identity)
            ),
        );
    }

    /// The line closes the connection itself (stop, node station off, new parameters): on
    /// 3.1.1 NDEATH goes into `buf` before the DISCONNECT, since the broker drops the will on
    /// DISCONNECT; on MQTT 5 the DISCONNECT's reason asks the broker to publish the will (the
    /// reason code returned).
    pub(super) fn edge_goodbye(&mut self, buf: &mut BytesMut) -> Option<DisconnectReasonCode> {
        if !self.edge_live() {
            return None;
        }
        let v5 = self.link.session.protocol() == Protocol::V5;
        let e = self.edge.as_mut()?;
        let death = e.node.ndeath(Some(ms(e.clock_ns)));
        if v5 {
            return Some(DisconnectReasonCode::DisconnectWithWillMessage);
        }
        let topic = edge_topic(&e.node.group, MessageType::NDeath, &e.node.node, None);
        let p = Publish::new(topic, QoS::AtMostOnce, payload::encode(&death), None);
        if let Err(why) = self.encode(LinkId::A, &Packet::Publish(p), buf) {
            self.log(
                LogLevel::Warn,
                format!("Sparkplug edge node: cannot send NDEATH: {why}"),
            );
        }
        None
    }

    /// The latest wall time the line was given.
    pub(super) fn edge_clock(&mut self, wall_ns: i64) {
        if let Some(e) = self.edge.as_mut() {
            e.clock_ns = e.clock_ns.max(wall_ns);
        }
    }

    /// A station was switched: a device station off (or simulated) publishes DDEATH, on
    /// publishes DBIRTH and its stored writes.
    pub(super) fn edge_station_switched(&mut self, i: StationIndex, wall_ns: i64) {
        self.edge_clock(wall_ns);
        if !self.edge_live() {
            return;
        }
        let Some(e) = self.edge.as_mut() else {
            return;
        };
        let Some(d) = e.node.devices.iter().position(|d| d.station == i) else {
            return;
        };
        let on = self.stations[i].command == StationCommand::On;
        let now_ms = ms(wall_ns);
        if on && !e.node.devices[d].born {
            self.edge_dbirth(d, now_ms);
            self.edge_forward(wall_ns);
        } else if !on && e.node.devices[d].born {
            let death = e.node.ddeath(d, now_ms);
            self.edge_send(MessageType::DDeath, Some(d), &death);
        }
    }

    /// A write of an SPB= output tag: NDATA or DDATA by alias with the write's time when the
    /// node is born; else stored (done at once). Ok(false): completes once on the socket.
    pub(super) fn write_edge(
        &mut self,
        t: TagIndex,
        value: &Value,
        token: WriteToken,
        object: String,
        wall_ns: i64,
    ) -> Result<bool, WriteError> {
        if !self.station_sends(t, &object)? {
            return Ok(true);
        }
        self.edge_clock(wall_ns);
        let live = self.edge_live();
        let Some(e) = self.edge.as_mut() else {
            return Err(WriteError::Sparkplug {
                object,
                reason: "the line is not started".into(),
            });
        };
        let Some(&at) = e.node.outputs.get(&t) else {
            return Err(WriteError::Sparkplug {
                object,
                reason: "the tag writes no metric".into(),
            });
        };
        let dt = e.node.get(at).datatype;
        let mv = to_metric_value(value, dt).map_err(|reason| WriteError::Sparkplug {
            object: object.clone(),
            reason,
        })?;
        let time_ms = ms(wall_ns);
        let m = e.node.get_mut(at);
        m.value = Some(mv.clone());
        m.time_ms = time_ms;
        let born = match at.0 {
            Owner::Node => true,
            Owner::Device(d) => e.node.devices[d].born,
        };
        if live && born {
            let p = e.node.data(at, mv, time_ms, false, time_ms);
            let (kind, device) = match at.0 {
                Owner::Node => (MessageType::NData, None),
                Owner::Device(d) => (MessageType::DData, Some(d)),
            };
            self.edge_publish(token, kind, device, &p)
                .map_err(|reason| WriteError::Publish { object, reason })?;
            return Ok(false);
        }
        let device = match at.0 {
            Owner::Node => None,
            Owner::Device(d) => Some(e.node.devices[d].name.clone()),
        };
        let file_metric = Metric {
            name: Some(e.node.get(at).name.to_string()),
            timestamp: Some(time_ms),
            datatype: Some(dt.code()),
            value: Some(mv.clone()),
            ..Default::default()
        };
        let w = StoredWrite {
            metric: at,
            value: mv,
            time_ms,
        };
        let dropped = e.store.push(w, || record(device.as_deref(), file_metric));
        let first_drop = dropped && !std::mem::replace(&mut e.store.warned, true);
        let why = if self.link.session.is_ready() {
            "the primary host is offline"
        } else {
            "the line is not connected"
        };
        self.log(
            LogLevel::Debug,
            format!("{object}: the write is stored ({why}) and forwarded after the next birth"),
        );
        if first_drop {
            let max = self.config.edge.store_max_messages;
            self.log(
                LogLevel::Warn,
                format!(
                    "Sparkplug edge node: more than {max} writes are stored (store_max_messages); \
                     the oldest are dropped from now on (counted in the line's counters, warned \
                     about once)"
                ),
            );
        }
        Ok(true)
    }

    /// A message on an edge node line: the primary host's STATE, NCMD or DCMD.
    pub(super) fn deliver_edge(&mut self, p: Publish, now: std::time::Instant, wall_ns: i64) {
        let epoch = self.link.session.epoch();
        self.link.session.confirm(p.pkid, epoch);
        self.edge_clock(wall_ns);
        let Some(e) = self.edge.as_ref() else {
            return;
        };
        let station = e.node.station;
        let (group, node) = (e.node.group.clone(), e.node.node.clone());
        let parsed = SparkplugTopic::parse(topic(&p));
        match parsed {
            Ok(SparkplugTopic::State { host_id }) => {
                self.account(&p, None, now, wall_ns);
                if host_id == self.config.edge.primary_host_id {
                    let payload = p.payload.clone();
                    self.edge_state(&payload, wall_ns);
                }
            }
            Ok(SparkplugTopic::Edge {
                kind: kind @ (MessageType::NCmd | MessageType::DCmd),
                group: g,
                node: n,
                device,
            }) if g == group && n == node => {
                let owner = match device {
                    None => Some(Owner::Node),
                    Some(d) => self
                        .edge
                        .as_ref()
                        .and_then(|e| e.node.device_named(d))
                        .map(Owner::Device),
                };
                let routed = match owner {
                    Some(Owner::Device(d)) => self.edge.as_ref().map(|e| e.node.devices[d].station),
                    _ => Some(station),
                };
                if self.account(&p, routed, now, wall_ns).is_none() {
                    return;
                }
                let device = device.map(str::to_string);
                let _ = kind;
                self.edge_command(owner, device.as_deref(), &p.payload, wall_ns);
            }
            _ => {
                self.account(&p, None, now, wall_ns);
            }
        }
    }

    /// The primary host's STATE: online publishes the births, offline sends the node away.
    fn edge_state(&mut self, payload: &[u8], wall_ns: i64) {
        let state = serde_json::from_slice::<serde_json::Value>(payload).ok();
        let online = state
            .as_ref()
            .and_then(|v| v.get("online"))
            .and_then(serde_json::Value::as_bool);
        let timestamp = state
            .as_ref()
            .and_then(|v| v.get("timestamp"))
            .and_then(serde_json::Value::as_u64);
        let (Some(online), Some(timestamp)) = (online, timestamp) else {
            let text = format!(
                "Sparkplug edge node: the primary host's STATE is not {{\"online\": bool, \
                 \"timestamp\": ms}}: {}",
                escape(&String::from_utf8_lossy(payload))
            );
            self.log(LogLevel::Warn, text);
            return;
        };
        let Some(e) = self.edge.as_mut() else {
            return;
        };
        if timestamp < e.node.host_state_ms {
            let text = format!(
                "Sparkplug edge node: STATE with timestamp {timestamp} is older than {} and \
                 ignored",
                e.node.host_state_ms
            );
            self.log(LogLevel::Debug, text);
            return;
        }
        e.node.host_state_ms = timestamp;
        e.node.host_online = online;
        if online && !e.node.born {
            self.edge_births(wall_ns);
        } else if !online && e.node.born {
            self.edge_leave("the primary host is offline", wall_ns);
        }
    }

    /// NCMD (`owner` the node) or DCMD: rebirth, next server, or values for input tags.
    fn edge_command(
        &mut self,
        owner: Option<Owner>,
        device: Option<&str>,
        bytes: &[u8],
        wall_ns: i64,
    ) {
        let decoded = payload::decode(bytes);
        let Some(owner) = owner else {
            self.command_warning(device, "-", "-", "the node has no such device");
            return;
        };
        let payload = match decoded {
            Ok(p) => p,
            Err(e) => {
                self.command_warning(device, "-", "-", &format!("unreadable payload: {e}"));
                return;
            }
        };
        for m in &payload.metrics {
            let yes = m.value == Some(MetricValue::Boolean(true));
            match (owner, m.name.as_deref()) {
                (Owner::Node, Some(REBIRTH)) if yes => {
                    self.log(
                        LogLevel::Info,
                        "Sparkplug edge node: rebirth requested by NCMD".into(),
                    );
                    self.edge_births(wall_ns);
                }
                (Owner::Node, Some(NEXT_SERVER)) if yes => {
                    self.edge_leave("NCMD asks for the next server", wall_ns);
                    return;
                }
                _ => self.command_value(owner, device, m, payload.timestamp, wall_ns),
            }
        }
    }

    /// One metric of a command into its input tags, or a warning and no change.
    fn command_value(
        &mut self,
        owner: Owner,
        device: Option<&str>,
        m: &Metric,
        payload_ms: Option<u64>,
        wall_ns: i64,
    ) {
        let shown_name = match (&m.name, m.alias) {
            (Some(n), _) => n.clone(),
            (None, Some(a)) => format!("alias {a}"),
            (None, None) => "(no name or alias)".into(),
        };
        let shown_value = m.value.as_ref().map_or("null".into(), |v| format!("{v:?}"));
        let Some(e) = self.edge.as_ref() else {
            return;
        };
        let Some(at) = e.node.resolve(owner, m) else {
            self.command_warning(device, &shown_name, &shown_value, "unknown metric");
            return;
        };
        let def = e.node.get(at);
        let (dt, name) = (def.datatype, def.name.clone());
        if let Some(code) = m.datatype.filter(|&c| c != dt.code()) {
            let why = format!(
                "its data type {} is not the metric's {dt}",
                DataType::from_code(code)
            );
            self.command_warning(device, &name, &shown_value, &why);
            return;
        }
        let kind = |v: &MetricValue| match v {
            MetricValue::Int(_) => "an Int",
            MetricValue::Long(_) => "a Long",
            MetricValue::Float(_) => "a Float",
            MetricValue::Double(_) => "a Double",
            MetricValue::Boolean(_) => "a Boolean",
            MetricValue::String(_) => "a String",
            MetricValue::Bytes(_) => "a Bytes",
            MetricValue::DataSet(_) => "a DataSet",
            MetricValue::Template(_) => "a Template",
        };
        if let Some(v) = m.value.as_ref().filter(|v| !value_fits(dt, v)) {
            let why = format!("{} value is not a {dt}", kind(v));
            self.command_warning(device, &name, &shown_value, &why);
            return;
        }
        if def.inputs.is_empty() {
            let why = "the metric has no input tag to take commands";
            self.command_warning(device, &name, &shown_value, why);
            return;
        }
        let mut values = Vec::with_capacity(def.inputs.len());
        for &t in &def.inputs {
            match to_tag_value(m.value.as_ref().map(ValueView::from), dt, self.tags[t].ty) {
                Ok(v) => values.push((t, v)),
                Err(why) => {
                    self.command_warning(device, &name, &shown_value, &why);
                    return;
                }
            }
        }
        let stamp = m
            .timestamp
            .or(payload_ms)
            .and_then(|ms| i64::try_from(ms).ok()?.checked_mul(1_000_000));
        let (time_ns, flags) = match stamp {
            Some(ns) => (ns, FLAG_VALID | FLAG_TIME_FROM_PAYLOAD),
            None => (wall_ns, FLAG_VALID),
        };
        if let Some(e) = self.edge.as_mut() {
            let def = e.node.get_mut(at);
            def.value = m.value.clone();
            def.time_ms = ms(time_ns);
        }
        for (t, v) in values {
            self.set_value(t, Some(v), time_ns, flags);
        }
    }

    fn command_warning(&mut self, device: Option<&str>, metric: &str, value: &str, why: &str) {
        let Some(e) = self.edge.as_ref() else {
            return;
        };
        let (kind, device) = match device {
            Some(d) => ("DCMD", escape(d).into_owned()),
            None => ("NCMD", "-".into()),
        };
        let text = format!(
            "Sparkplug edge node '{}/{}': {kind} ignored, no tag changed: node={} device={} \
             metric={} value={}: {why}",
            escape(&e.node.group),
            escape(&e.node.node),
            escape(&e.node.node),
            device,
            escape(metric),
            escape(value),
        );
        self.log(LogLevel::Warn, text);
    }

    /// What the shell saves now for `store_path`: the bdSeq of a new connection and the
    /// store's file changes. `None`: nothing (or no `store_path`).
    pub fn edge_files(&mut self) -> Option<EdgeFiles> {
        if self.config.edge.store_path.is_empty() {
            return None;
        }
        let e = self.edge.as_mut()?;
        let bd_seq = std::mem::replace(&mut e.node.bd_seq_unsaved, false).then(|| e.node.bd_seq());
        let n = &e.node;
        let store = e.store.take_file(|w| {
            let m = n.get(w.metric);
            let device = match w.metric.0 {
                Owner::Node => None,
                Owner::Device(d) => Some(n.devices[d].name.as_str()),
            };
            record(
                device,
                Metric {
                    name: Some(m.name.to_string()),
                    timestamp: Some(w.time_ms),
                    datatype: Some(m.datatype.code()),
                    value: Some(w.value.clone()),
                    ..Default::default()
                },
            )
        });
        (bd_seq.is_some() || store.is_some()).then_some(EdgeFiles { bd_seq, store })
    }

    /// The configured `store_path` of an edge node line (the shell reads and writes it).
    pub fn edge_store_path(&self) -> Option<&str> {
        let path = &self.config.edge.store_path;
        (self.edge.is_some() && !path.is_empty()).then_some(path.as_str())
    }

    /// After `start`, what an earlier process saved: its last bdSeq (the next connection takes
    /// the one after it) and its stored writes, in order. Writes of metrics the line no longer
    /// has are dropped with a warning.
    pub fn edge_restore(&mut self, bd_seq: Option<u8>, store: &[u8], wall_ns: i64) {
        let Some(e) = self.edge.as_mut() else {
            return;
        };
        e.node.start_bd_seq(bd_seq, wall_ns);
        let (records, damaged) = read_records(store);
        let mut unknown = 0u64;
        for (device, m) in records {
            let owner = match device.as_deref() {
                None => Some(Owner::Node),
                Some(d) => e.node.device_named(d).map(Owner::Device),
            };
            let at = owner.and_then(|o| e.node.resolve(o, &m));
            match (at, m.value) {
                (Some(at), Some(value)) if m.datatype == Some(e.node.get(at).datatype.code()) => {
                    e.store.restore(StoredWrite {
                        metric: at,
                        value,
                        time_ms: m.timestamp.unwrap_or(0),
                    });
                }
                _ => unknown += 1,
            }
        }
        if unknown > 0 || damaged.is_some() {
            e.store.dropped += unknown;
            e.store.rewrite_file();
        }
        let restored = e.store.len();
        if unknown > 0 {
            self.log(
                LogLevel::Warn,
                format!(
                    "Sparkplug edge node: {unknown} stored writes in store_path are for metrics \
                     this line does not have (or of another data type) and are dropped"
                ),
            );
        }
        if let Some(left) = damaged {
            self.log(
                LogLevel::Warn,
                format!(
                    "Sparkplug edge node: the last {left} bytes of store_path are not a whole \
                     stored write (cut short) and are dropped"
                ),
            );
        }
        if restored > 0 {
            self.log(
                LogLevel::Info,
                format!("Sparkplug edge node: {restored} stored writes read from store_path"),
            );
        }
    }

    /// The store's counters: (stored, forwarded, dropped, held now).
    pub(super) fn edge_counters(&self) -> (u64, u64, u64, u64) {
        self.edge.as_ref().map_or((0, 0, 0, 0), |e| {
            let s = &e.store;
            (s.stored, s.forwarded, s.dropped, s.len() as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_addresses() {
        let rows = [
            ("plant/press1", Some(("plant", "press1", None))),
            ("plant/press1/plc", Some(("plant", "press1", Some("plc")))),
            ("plant", None),
            ("plant//x", None),
            ("plant/+", None),
            ("plant/n/d/x", None),
            ("plant/#", None),
        ];
        for (address, want) in rows {
            assert_eq!(edge_address(address), want, "{address}");
        }
    }
}
