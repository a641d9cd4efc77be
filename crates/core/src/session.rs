//! The MQTT client session (3.1.1 or 5), without IO: packets and the current time go in,
//! packets to send, deliveries and deadlines come out.
//!
//! It covers CONNECT/CONNACK, UNSUBSCRIBE of a changed filter, SUBSCRIBE/SUBACK, the QoS flows of
//! received and sent PUBLISH packets, keep-alive and ping-interval pings, and reply timeouts.
//! Acknowledgements of received messages leave in arrival order, and only once the caller has
//! confirmed them (MQTT 3.1.1 4.6.0-2, 4.6.0-3).
//!
//! With MQTT 5 it also sends the CONNECT properties, honours what CONNACK says of the server
//! (`limits.rs`), resolves and assigns topic aliases, turns reason codes into refusals with their
//! reason, and reports a server's DISCONNECT and its server reference.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ack_batch::AckBatch;
use crate::codec::{
    packet_name, plain_puback, ConnAck, Connect, ConnectProperties, ConnectReturnCode, Disconnect,
    DisconnectReasonCode, Filter, LastWill, Login, Packet, PingReq, Protocol, PubAck, PubAckReason,
    PubComp, PubRec, PubRecReason, PubRel, Publish, PublishProperties, QoS, RetainForwardRule,
    SubAck, Subscribe, SubscribeReasonCode, Unsubscribe,
};
pub use crate::error::PublishError;
use crate::ids::WriteToken;
use crate::limits::{Aliases, ServerLimits};
use crate::params::Secret;
use crate::reason::{Code, Reason};
use crate::routing::FxMap;

/// What CONNECT and the session's timers need, taken from the line's configuration
/// (`LineConfig::session`) each time a transport opens.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub client_id: String,
    pub user_name: String,
    pub clean_session: bool,
    /// In seconds, as CONNECT carries it; 0 turns keep-alive pings off.
    pub keep_alive: u16,
    pub ping_interval: Duration,
    pub reply_timeout: Duration,
    /// The line's filter; empty: the line subscribes only its stations' filters.
    pub topic_filter: String,
    /// The filters of the stations that subscribe their address and are on
    /// (`subscribe_station_address`, station_filter.rs).
    pub station_filters: BTreeSet<String>,
    pub subscribe_qos: QoS,
    /// The line's own will message, sent in CONNECT.
    pub last_will: Option<LastWill>,
    pub protocol: Protocol,
    /// What only MQTT 5 sends (ignored on 3.1.1).
    pub v5: V5Options,
}

/// The MQTT 5 settings of a line (docs/parameters.md, "MQTT 5").
#[derive(Debug, Clone, PartialEq)]
pub struct V5Options {
    /// Seconds the broker keeps the session after the connection ends.
    pub session_expiry_interval: u32,
    /// How many QoS 1/2 messages the broker may send us unacknowledged; `None`: 65535.
    pub receive_maximum: Option<u16>,
    /// The largest packet we accept; `None`: no limit announced.
    pub maximum_packet_size: Option<u32>,
    /// How many topic aliases the broker may use towards us (0: none).
    pub topic_alias_maximum: u16,
    pub user_properties: Vec<(String, String)>,
    pub request_problem_information: bool,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainForwardRule,
}

impl Default for V5Options {
    fn default() -> Self {
        V5Options {
            session_expiry_interval: 0,
            receive_maximum: None,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            user_properties: Vec::new(),
            request_problem_information: true,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainForwardRule::OnEverySubscribe,
        }
    }
}

/// A reason to close the connection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("broker refused the connection: {0}")]
    ConnectRefused(String),
    #[error("broker refused the subscription to {}: {why}", crate::text::quote(.filter))]
    SubscribeRefused { filter: String, why: String },
    /// The broker closed the connection with a DISCONNECT (MQTT 5) and its reason.
    #[error("broker disconnected: {0}")]
    ServerDisconnected(Reason),
    /// The broker refused the connection or disconnected, naming another server to use
    /// (0x9C Use another server, 0x9D Server moved): it is tried next.
    #[error("broker redirected the line to '{server}': {reason}")]
    Redirected { reason: Reason, server: String },
    #[error("no {0} from the broker within the reply timeout of {1:?}")]
    ReplyTimeout(&'static str, Duration),
    #[error("protocol violation: {0}")]
    Violation(String),
    #[error("a packet from the broker stayed half-read for {0:?} (reply timeout)")]
    HalfRead(Duration),
    #[error("the broker took no data for {0:?} (reply timeout)")]
    WriteStalled(Duration),
    #[error("malformed packet from the broker: {0}")]
    Malformed(String),
}

/// What the session made of a received PUBLISH ([`Session::handle_publish`]): the message stays
/// with the caller, so that it is not moved into an event and out again.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// A new message: the line delivers it (QoS 1 and 2: and confirms it).
    Message,
    /// A redelivery of one the line has already: nothing to deliver.
    Nothing,
    /// The message cannot be taken (MQTT 5 payload format): a warning for the log instead.
    Warning(String),
}

/// What the session hands to the line.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Connected and subscribed: messages flow.
    Ready { session_present: bool },
    /// A new message. QoS 1 and 2 messages must be confirmed with [`Session::confirm`].
    Message(Publish),
    /// A sent message reached its end (PUBACK for QoS 1, PUBCOMP for QoS 2). Carries its token.
    Published(WriteToken),
    /// The broker refused a sent message (MQTT 5 PUBACK or PUBREC reason code 0x80 or above).
    Refused(WriteToken, Reason),
    /// A warning for the host's log (a message the line cannot take, what the broker announced).
    Warning(String),
    /// A debug note for the host's log: a stray acknowledgement that was ignored.
    Note(String),
}

/// A SUBSCRIBE or UNSUBSCRIBE in flight: its filters, and whether it is part of connecting
/// (the first SUBSCRIBE, or the UNSUBSCRIBE of old filters before it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Subscribe { filters: Vec<String>, initial: bool },
    Unsubscribe { filters: Vec<String>, initial: bool },
}

/// What the session waits for, with a deadline when Reply Timeout is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    ConnAck,
    SubAck(u16),
    UnsubAck(u16),
    PingResp,
}

impl Expect {
    fn name(self) -> &'static str {
        match self {
            Expect::ConnAck => "CONNACK",
            Expect::SubAck(_) => "SUBACK",
            Expect::UnsubAck(_) => "UNSUBACK",
            Expect::PingResp => "PINGRESP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    AwaitConnAck,
    AwaitUnsubAck,
    AwaitSubAck,
    Ready,
}

/// An acknowledgement owed to the broker, in arrival order.
#[derive(Debug)]
struct OwedAck {
    pkid: u16,
    qos: QoS,
    confirmed: bool,
    /// MQTT 5: the message was refused (0x99 Payload format invalid); 0 otherwise.
    reason: u8,
}

/// A message this client published and the broker has not finished acknowledging.
#[derive(Debug, Clone)]
struct Outgoing {
    token: WriteToken,
    publish: Publish,
    /// QoS 2: PUBREC arrived and PUBREL was sent; only PUBCOMP is missing.
    released: bool,
    /// Handed to the broker on this connection (else held back by the server's Receive Maximum).
    sent: bool,
}

/// A QoS 1 or 2 message handed to the line whose flow with the broker is not finished. Kept
/// across reconnects of a persistent session, so that the broker's redelivery of it is
/// acknowledged (once the line confirmed it) instead of being handed over a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Incoming {
    qos: QoS,
    confirmed: bool,
}

/// A packet to write, from [`Session::poll_transmit_bytes`]. It lives for one turn of the
/// line's transmit loop; boxing the packet would allocate for every packet but PUBACKs.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Transmit {
    /// A PUBACK without a reason, encoded.
    PubAck([u8; 4]),
    Packet(Packet),
}

/// One client session. It outlives connections: with clean session off, messages in flight are
/// sent again after a reconnect, and received messages still waiting for confirmation are not
/// handed to the line twice when the broker delivers them again.
#[derive(Debug)]
pub struct Session {
    phase: Phase,
    outbox: VecDeque<Packet>,
    expects: Vec<(Expect, Option<Instant>)>,
    owed: VecDeque<OwedAck>,
    /// Packet ids from the broker: the routing tables' small hash (SipHash cost more than the
    /// rest of the lookup, four times per QoS 1 message).
    incoming: FxMap<u16, Incoming>,
    epoch: u64,
    outgoing: BTreeMap<u16, Outgoing>,
    /// QoS 0 publications handed out by `poll_transmit`, complete once flushed.
    sent_qos0: Vec<WriteToken>,
    qos0_waiting: FxMap<usize, WriteToken>,
    transmit_seq: usize,
    next_pkid: u16,
    last_sent: Instant,
    last_received: Instant,
    last_ping: Instant,
    /// The filters the broker confirmed (SUBACK) and that were not unsubscribed since; they
    /// outlive a connection, as the broker's session does.
    subscribed: BTreeSet<String>,
    /// The line's filter (empty: none).
    filter: String,
    /// The stations' filters wanted now.
    station_filters: BTreeSet<String>,
    /// SUBSCRIBE and UNSUBSCRIBE packets in flight, by packet id.
    changes: FxMap<u16, Change>,
    subscribe_qos: QoS,
    keep_alive: Duration,
    ping_interval: Duration,
    reply_timeout: Duration,
    clean_session: bool,
    protocol: Protocol,
    v5: V5Options,
    /// What the server's CONNACK announced (defaults on 3.1.1).
    limits: ServerLimits,
    /// Topic aliases of this connection, both ways.
    aliases: Aliases,
    /// The client identifier the server assigned, used for later connections.
    assigned_client_id: Option<String>,
    /// The last CONNECT had an empty client identifier (the server may assign one).
    sent_empty_client_id: bool,
    /// This connection's broker has sent more unacknowledged messages than our Receive Maximum
    /// (warned about once per connection).
    receive_maximum_overrun: bool,
    /// A warning that came with a packet whose own event was something else; see
    /// [`Session::take_warning`].
    warning: Option<String>,
    /// PUBACKs under load leave together (ack_batch.rs).
    ack_batch: AckBatch,
}

/// A DISCONNECT with `reason`. Another reason than 0 carries Session Expiry Interval 0 (what a
/// clean session has anyway): rumqttc 0.25 writes the property length of a DISCONNECT without
/// properties but leaves it out of the remaining length, and writes one whose properties are
/// empty as a bare DISCONNECT; both would lose the reason.
pub(crate) fn disconnect(reason: DisconnectReasonCode) -> Disconnect {
    let mut bye = Disconnect::new(reason);
    if reason != DisconnectReasonCode::NormalDisconnection {
        bye.properties = Some(crate::codec::DisconnectProperties {
            session_expiry_interval: Some(0),
            reason_string: None,
            user_properties: Vec::new(),
            server_reference: None,
        });
    }
    bye
}

impl Session {
    pub fn new(now: Instant) -> Session {
        Session {
            phase: Phase::Closed,
            outbox: VecDeque::new(),
            expects: Vec::new(),
            owed: VecDeque::new(),
            incoming: FxMap::default(),
            epoch: 0,
            outgoing: BTreeMap::new(),
            sent_qos0: Vec::new(),
            qos0_waiting: FxMap::default(),
            transmit_seq: 0,
            next_pkid: 1,
            last_sent: now,
            last_received: now,
            last_ping: now,
            subscribed: BTreeSet::new(),
            filter: String::new(),
            station_filters: BTreeSet::new(),
            changes: FxMap::default(),
            subscribe_qos: QoS::AtLeastOnce,
            keep_alive: Duration::ZERO,
            ping_interval: Duration::ZERO,
            reply_timeout: Duration::ZERO,
            clean_session: false,
            protocol: Protocol::V311,
            v5: V5Options::default(),
            limits: ServerLimits::default(),
            aliases: Aliases::default(),
            assigned_client_id: None,
            sent_empty_client_id: false,
            receive_maximum_overrun: false,
            warning: None,
            ack_batch: AckBatch::default(),
        }
    }

    /// The protocol of the current (or last) connection.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The largest packet the broker takes (its Maximum Packet Size), at most `ours`.
    pub fn max_outgoing_packet(&self, ours: usize) -> usize {
        self.limits
            .maximum_packet_size
            .map_or(ours, |m| ours.min(m as usize))
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// A transport is open: queue CONNECT. `password` is the resolved secret (the configuration
    /// may name an environment variable or a file instead).
    pub fn connect(&mut self, cfg: &SessionConfig, password: &Secret, now: Instant) {
        self.outbox.clear();
        self.expects.clear();
        self.owed.clear();
        self.sent_qos0.clear();
        self.qos0_waiting.clear();
        self.filter = cfg.topic_filter.clone();
        self.station_filters = cfg.station_filters.clone();
        self.changes.clear();
        self.subscribe_qos = cfg.subscribe_qos;
        self.keep_alive = Duration::from_secs(cfg.keep_alive.into());
        self.ping_interval = cfg.ping_interval;
        self.reply_timeout = cfg.reply_timeout;
        self.clean_session = cfg.clean_session;
        if cfg.protocol != self.protocol {
            // Another protocol is another session: nothing of the old one carries over.
            self.assigned_client_id = None;
            self.new_epoch();
        }
        self.protocol = cfg.protocol;
        self.v5 = cfg.v5.clone();
        self.limits = ServerLimits::default();
        self.aliases = Aliases::default();
        self.receive_maximum_overrun = false;
        self.warning = None;
        if self.clean_session {
            self.new_epoch();
        }

        let client_id = match &self.assigned_client_id {
            Some(id) if cfg.client_id.is_empty() => id.clone(),
            _ => cfg.client_id.clone(),
        };
        let properties = (self.protocol == Protocol::V5).then(|| ConnectProperties {
            session_expiry_interval: Some(cfg.v5.session_expiry_interval).filter(|&s| s != 0),
            receive_maximum: cfg.v5.receive_maximum,
            max_packet_size: cfg.v5.maximum_packet_size,
            topic_alias_max: Some(cfg.v5.topic_alias_maximum).filter(|&n| n != 0),
            request_response_info: None,
            request_problem_info: (!cfg.v5.request_problem_information).then_some(0),
            user_properties: cfg.v5.user_properties.clone(),
            authentication_method: None,
            authentication_data: None,
        });
        self.sent_empty_client_id = client_id.is_empty();
        let connect = Connect {
            keep_alive: cfg.keep_alive,
            client_id,
            clean_start: cfg.clean_session,
            properties,
        };
        let login = (!cfg.user_name.is_empty() || !password.is_empty())
            .then(|| Login::new(cfg.user_name.clone(), password.expose().to_string()));
        self.phase = Phase::AwaitConnAck;
        self.ack_batch = AckBatch::for_window(
            cfg.v5
                .receive_maximum
                .filter(|_| self.protocol == Protocol::V5),
        );
        self.last_received = now;
        self.last_ping = now;
        self.expect(Expect::ConnAck, now);
        self.outbox
            .push_back(Packet::Connect(connect, cfg.last_will.clone(), login));
    }

    /// The client leaves on its own after what is queued (a Sparkplug edge node after its
    /// NDEATH, or with its will on MQTT 5): DISCONNECT with `reason` (MQTT 5; 3.1.1 has none)
    /// goes out next, and the broker closes the connection.
    pub fn queue_disconnect(&mut self, reason: DisconnectReasonCode) {
        self.outbox
            .push_back(Packet::Disconnect(disconnect(reason)));
    }

    /// Whatever is queued leaves with the next packets taken, held acknowledgements too (a
    /// deliberate close).
    pub fn flush_acks(&mut self) {
        self.ack_batch.flush();
    }

    /// The transport is gone. Returns the tokens of publications that will not be completed:
    /// unflushed QoS 0 ones, and with clean session on every one in flight.
    pub fn disconnected(&mut self) -> Vec<WriteToken> {
        self.phase = Phase::Closed;
        self.outbox.clear();
        self.expects.clear();
        self.owed.clear();
        // QoS 0 publications count as written only once flushed; unflushed ones fail.
        let mut failed: Vec<WriteToken> = self.qos0_waiting.drain().map(|(_, t)| t).collect();
        failed.append(&mut self.sent_qos0);
        if self.clean_session {
            failed.extend(self.outgoing.values().map(|o| o.token));
            self.outgoing.clear();
            self.new_epoch();
        }
        failed
    }

    /// Queues a publication. QoS 1 and 2 need a connection that is ready. `properties` go out
    /// on an MQTT 5 connection only.
    pub fn publish(
        &mut self,
        token: WriteToken,
        topic: &str,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        properties: Option<PublishProperties>,
    ) -> Result<(), PublishError> {
        if self.phase != Phase::Ready {
            return Err(PublishError::NotConnected);
        }
        self.limits.check_publish(qos, retain)?;
        let mut publish = Publish::new(topic, qos, payload, None);
        publish.retain = retain;
        if self.protocol == Protocol::V5 {
            publish.properties = properties;
        }
        if qos == QoS::AtMostOnce {
            self.qos0_waiting
                .insert(self.transmit_seq + self.outbox.len(), token);
            self.outbox.push_back(Packet::Publish(publish));
            return Ok(());
        }
        let pkid = self
            .allocate_pkid()
            .ok_or(PublishError::PacketIdsInFlight)?;
        publish.pkid = pkid;
        let sent = self.in_flight() < usize::from(self.limits.receive_maximum);
        self.outgoing.insert(
            pkid,
            Outgoing {
                token,
                publish: publish.clone(),
                released: false,
                sent,
            },
        );
        if sent {
            self.outbox.push_back(Packet::Publish(publish));
        }
        Ok(())
    }

    /// QoS 1 and 2 publications handed to the broker and not yet acknowledged.
    fn in_flight(&self) -> usize {
        self.outgoing.values().filter(|o| o.sent).count()
    }

    /// Sends publications held back by the server's Receive Maximum while there is room, in
    /// packet id order.
    fn release_held(&mut self) {
        let room = usize::from(self.limits.receive_maximum).saturating_sub(self.in_flight());
        let held: Vec<u16> = self
            .outgoing
            .iter()
            .filter(|(_, o)| !o.sent)
            .map(|(&k, _)| k)
            .take(room)
            .collect();
        for pkid in held {
            if let Some(o) = self.outgoing.get_mut(&pkid) {
                o.sent = true;
                self.outbox.push_back(Packet::Publish(o.publish.clone()));
            }
        }
    }

    fn allocate_pkid(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            let id = self.next_pkid;
            self.next_pkid = if id == u16::MAX { 1 } else { id + 1 };
            if !self.outgoing.contains_key(&id) && !self.expects_pkid(id) {
                return Some(id);
            }
        }
        None
    }

    fn expects_pkid(&self, id: u16) -> bool {
        self.expects
            .iter()
            .any(|(e, _)| matches!(e, Expect::SubAck(p) | Expect::UnsubAck(p) if *p == id))
    }

    /// The next packet to write. A publication gets its topic alias here, as it leaves, so that
    /// one that turns out unsendable frees its alias before the next one is given it.
    #[inline]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        if self.ack_batch.holds(&self.outbox, now) {
            return None;
        }
        self.take_front(now)
    }

    /// [`Session::poll_transmit`] as the line writes it: a PUBACK without a reason (every QoS 1
    /// message's) comes as its four bytes, dropped from the outbox where it lies; moving the
    /// large packet out through the line's layers cost more than writing it.
    #[inline]
    pub(crate) fn poll_transmit_bytes(&mut self, now: Instant) -> Option<Transmit> {
        if self.ack_batch.holds(&self.outbox, now) {
            return None;
        }
        if let Some(bytes) = plain_puback(self.outbox.front()?, self.protocol) {
            self.outbox.drain(..1);
            self.taken(now);
            return Some(Transmit::PubAck(bytes));
        }
        self.take_front(now).map(Transmit::Packet)
    }

    fn take_front(&mut self, now: Instant) -> Option<Packet> {
        let mut packet = self.outbox.pop_front()?;
        if let Packet::Publish(p) = &mut packet {
            self.aliases.outgoing(p, self.limits.topic_alias_maximum);
        }
        self.taken(now);
        Some(packet)
    }

    /// The first packet of the outbox was taken to be written at `now`.
    fn taken(&mut self, now: Instant) {
        if let Some(token) = self.qos0_waiting.remove(&self.transmit_seq) {
            self.sent_qos0.push(token);
        }
        self.transmit_seq += 1;
        self.last_sent = now;
    }

    /// The topic of one of our topic aliases on this connection.
    pub(crate) fn alias_topic(&self, alias: u16) -> Option<Bytes> {
        self.aliases.outgoing_topic(alias)
    }

    /// The publication just taken from `poll_transmit` could not be encoded: it is forgotten
    /// (not completed when flushed, not resent after a reconnect) and its token returned.
    pub fn unsendable(&mut self, p: &Publish) -> Option<WriteToken> {
        self.aliases.not_sent(p);
        if p.qos == QoS::AtMostOnce {
            self.sent_qos0.pop()
        } else {
            let token = self.outgoing.remove(&p.pkid).map(|o| o.token);
            self.release_held();
            token
        }
    }

    /// Everything taken from `poll_transmit` reached the socket: QoS 0 publications are done.
    pub fn flushed(&mut self) -> Vec<WriteToken> {
        std::mem::take(&mut self.sent_qos0)
    }

    /// Which broker session messages belong to: it changes whenever the broker starts a new
    /// session, after which old packet ids mean nothing.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Confirms a received message of session `epoch`: its PUBACK or PUBREC may go once all
    /// earlier ones have. A confirmation while disconnected is remembered for the broker's
    /// redelivery; one from an earlier session is ignored (its packet id may be reused).
    pub fn confirm(&mut self, pkid: u16, epoch: u64) {
        if epoch != self.epoch || pkid == 0 {
            return;
        }
        if let Some(inc) = self.incoming.get_mut(&pkid) {
            inc.confirmed = true;
        }
        for owed in self.owed.iter_mut().filter(|o| o.pkid == pkid) {
            owed.confirmed = true;
        }
        self.send_confirmed_acks();
    }

    /// Acknowledgements leave in arrival order: stop at the first unconfirmed one.
    fn send_confirmed_acks(&mut self) {
        while self.owed.front().is_some_and(|o| o.confirmed) {
            let Some(o) = self.owed.pop_front() else {
                break;
            };
            self.outbox.push_back(match o.qos {
                QoS::ExactlyOnce if o.reason < 0x80 => Packet::PubRec(PubRec::new(o.pkid, None)),
                QoS::ExactlyOnce => {
                    // A refused QoS 2 message ends with its PUBREC (MQTT 5 4.3.3).
                    self.incoming.remove(&o.pkid);
                    let mut rec = PubRec::new(o.pkid, None);
                    rec.reason = PubRecReason::PayloadFormatInvalid;
                    Packet::PubRec(rec)
                }
                _ => {
                    // A QoS 1 flow ends with PUBACK; QoS 2 waits for PUBREL.
                    self.incoming.remove(&o.pkid);
                    let mut ack = PubAck::new(o.pkid, None);
                    if o.reason >= 0x80 {
                        ack.reason = PubAckReason::PayloadFormatInvalid;
                    }
                    Packet::PubAck(ack)
                }
            });
        }
    }

    fn new_epoch(&mut self) {
        self.incoming.clear();
        self.epoch += 1;
    }

    /// How many received messages wait for confirmation.
    pub fn unconfirmed(&self) -> usize {
        self.owed.iter().filter(|o| !o.confirmed).count()
    }

    /// A warning left by the last [`Session::handle`] beside the event it returned (a message
    /// taken although the broker broke a limit); the caller logs it.
    pub fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }

    /// Handles a packet from the broker.
    pub fn handle(
        &mut self,
        packet: Packet,
        now: Instant,
    ) -> Result<Option<SessionEvent>, ProtocolError> {
        self.arrived(packet_name(&packet), now)?;
        match packet {
            Packet::ConnAck(ack) => self.on_connack(ack, now),
            Packet::SubAck(ack) => self.on_suback(ack, now),
            Packet::UnsubAck(ack) => {
                if !self
                    .expects
                    .iter()
                    .any(|(e, _)| *e == Expect::UnsubAck(ack.pkid))
                {
                    // Like a stray PUBACK: nothing of ours ends, so it is ignored.
                    return Ok(Some(SessionEvent::Note(format!(
                        "UNSUBACK for no UNSUBSCRIBE in flight pkid={}",
                        ack.pkid
                    ))));
                }
                self.fulfil(Expect::UnsubAck(ack.pkid), "UNSUBACK")?;
                // A refused UNSUBSCRIBE (MQTT 5) leaves the old filter subscribed; the new one
                // is subscribed all the same, and the refusal is worth a warning.
                let refused = ack.reasons.iter().find(|r| r.code() >= 0x80).map(|r| {
                    let reason = Reason::new(
                        r.code(),
                        ack.properties
                            .as_ref()
                            .and_then(|p| p.reason_string.as_ref()),
                    );
                    SessionEvent::Warning(format!(
                        "the broker refused to unsubscribe a topic filter it no longer needs: \
                         {reason}"
                    ))
                });
                let change = self.changes.remove(&ack.pkid);
                if let Some(Change::Unsubscribe { filters, .. }) = &change {
                    for f in filters {
                        self.subscribed.remove(f);
                    }
                }
                match change {
                    Some(Change::Unsubscribe { initial: true, .. }) => {
                        if let Some(ready) = self.subscribe(now) {
                            return Ok(Some(ready));
                        }
                    }
                    _ => self.reconcile(now),
                }
                Ok(refused)
            }
            Packet::PingResp(_) => {
                self.expects.retain(|(e, _)| *e != Expect::PingResp);
                Ok(None)
            }
            Packet::Publish(mut p) => Ok(match self.on_publish(&mut p)? {
                Take::Message => Some(SessionEvent::Message(p)),
                Take::Nothing => None,
                Take::Warning(text) => Some(SessionEvent::Warning(text)),
            }),
            Packet::PubRel(rel) => {
                self.incoming.remove(&rel.pkid);
                self.outbox
                    .push_back(Packet::PubComp(PubComp::new(rel.pkid, None)));
                Ok(None)
            }
            Packet::PubAck(ack) => {
                let reason = Reason::new(
                    ack.reason.code(),
                    ack.properties
                        .as_ref()
                        .and_then(|p| p.reason_string.as_ref()),
                );
                Ok(self.finish_outgoing(ack.pkid, QoS::AtLeastOnce, reason))
            }
            Packet::PubRec(rec) => {
                let reason = Reason::new(
                    rec.reason.code(),
                    rec.properties
                        .as_ref()
                        .and_then(|p| p.reason_string.as_ref()),
                );
                if reason.is_failure() {
                    // A refused QoS 2 message ends here: no PUBREL (MQTT 5 4.3.3).
                    return Ok(self.finish_outgoing(rec.pkid, QoS::ExactlyOnce, reason));
                }
                let note = match self.outgoing.get_mut(&rec.pkid) {
                    Some(o) if o.publish.qos == QoS::ExactlyOnce => {
                        o.released = true;
                        None
                    }
                    _ => Some(SessionEvent::Note(format!(
                        "PUBREC for no QoS 2 message in flight pkid={}",
                        rec.pkid
                    ))),
                };
                self.outbox
                    .push_back(Packet::PubRel(PubRel::new(rec.pkid, None)));
                Ok(note)
            }
            Packet::PubComp(comp) => {
                // 0x92 (Packet Identifier not found) after a PUBREC that accepted the message:
                // the broker had taken it, so the write is complete.
                let reason = Reason::new(0, None);
                Ok(self.finish_outgoing(comp.pkid, QoS::ExactlyOnce, reason))
            }
            Packet::Disconnect(d) if self.protocol == Protocol::V5 => Err(disconnect_error(&d)),
            other => Err(ProtocolError::Violation(format!(
                "a broker may not send {}",
                packet_name(&other)
            ))),
        }
    }

    fn on_connack(
        &mut self,
        ack: ConnAck,
        now: Instant,
    ) -> Result<Option<SessionEvent>, ProtocolError> {
        if self.phase != Phase::AwaitConnAck {
            return Err(ProtocolError::Violation("a second CONNACK".into()));
        }
        self.fulfil(Expect::ConnAck, "CONNACK")?;
        let props = ack.properties.as_ref();
        if ack.code.code() != 0 {
            if self.protocol == Protocol::V311 {
                return Err(ProtocolError::ConnectRefused(connack_reason(ack.code)));
            }
            let reason = Reason::new(
                ack.code.code(),
                props.and_then(|p| p.reason_string.as_ref()),
            );
            return Err(match props.and_then(|p| p.server_reference.as_ref()) {
                Some(server) if matches!(reason.code, 0x9C | 0x9D) => ProtocolError::Redirected {
                    reason,
                    server: server.clone(),
                },
                _ => ProtocolError::ConnectRefused(reason.to_string()),
            });
        }
        if ack.session_present && self.clean_session {
            // MQTT-3.2.2-1: a clean session never comes back with a session present.
            return Err(ProtocolError::Violation(
                "CONNACK says a session is present although clean session is on".into(),
            ));
        }
        if !ack.session_present && !self.incoming.is_empty() {
            // The broker has no session: it will not deliver anything again.
            self.new_epoch();
        }
        let mut notes = Vec::new();
        if let Some(p) = props {
            self.limits = ServerLimits::from_connack(p);
            if let Some(id) = &p.assigned_client_identifier {
                if !self.sent_empty_client_id {
                    // MQTT 5 3.2.2.3.7: assigned only for an empty client identifier.
                    return Err(ProtocolError::Violation(format!(
                        "CONNACK assigns the client identifier {} although the line sent its own",
                        crate::text::quote(id)
                    )));
                }
                self.assigned_client_id = Some(id.clone());
                notes.push(format!(
                    "the broker assigned the client identifier {}",
                    crate::text::quote(id)
                ));
            }
            if let Some(k) = p.server_keep_alive {
                self.keep_alive = Duration::from_secs(k.into());
                notes.push(format!("the broker sets keep alive to {k} s"));
            }
        }
        if let Some(why) = self.limits.refuses_filter(&self.filter) {
            // The broker's SUBACK has the last word; the announcement explains a refusal.
            notes.push(format!(
                "topic filter {}: {why}",
                crate::text::quote(&self.filter)
            ));
        }
        // Publications in flight go again, in packet id order, as far as the server's Receive
        // Maximum allows; the rest follow as acknowledgements make room.
        let room = usize::from(self.limits.receive_maximum);
        let mut n = 0;
        for o in self.outgoing.values_mut() {
            o.sent = o.released || n < room;
            if !o.sent {
                continue;
            }
            n += 1;
            let packet = if o.released {
                Packet::PubRel(PubRel::new(o.publish.pkid, None))
            } else {
                let mut p = o.publish.clone();
                p.dup = true;
                Packet::Publish(p)
            };
            self.outbox.push_back(packet);
        }
        // Filters subscribed before (another line filter, a station switched off meanwhile) go
        // first, then the wanted ones are subscribed.
        let wanted = self.wanted();
        let stale: Vec<String> = self
            .subscribed
            .iter()
            .filter(|f| !wanted.contains(*f))
            .cloned()
            .collect();
        if stale.is_empty() {
            if let Some(ready) = self.subscribe(now) {
                return Ok(Some(ready));
            }
        } else {
            self.phase = Phase::AwaitUnsubAck;
            self.send_unsubscribe(stale, true, now);
        }
        Ok((!notes.is_empty()).then(|| SessionEvent::Note(notes.join("; "))))
    }

    /// Every filter wanted now: the line's (when it has one) and its stations'.
    fn wanted(&self) -> BTreeSet<String> {
        let mut all = self.station_filters.clone();
        if !self.filter.is_empty() {
            all.insert(self.filter.clone());
        }
        all
    }

    /// The connection's first SUBSCRIBE, of every wanted filter; with none (a line whose
    /// subscribing stations are all off) the session is ready at once.
    fn subscribe(&mut self, now: Instant) -> Option<SessionEvent> {
        let mut filters: Vec<String> = Vec::new();
        if !self.filter.is_empty() {
            filters.push(self.filter.clone());
        }
        filters.extend(
            self.station_filters
                .iter()
                .filter(|f| **f != self.filter)
                .cloned(),
        );
        if filters.is_empty() {
            self.phase = Phase::Ready;
            return Some(SessionEvent::Ready {
                session_present: true,
            });
        }
        self.phase = Phase::AwaitSubAck;
        self.send_subscribe(filters, true, now);
        None
    }

    fn send_subscribe(&mut self, filters: Vec<String>, initial: bool, now: Instant) {
        let pkid = self.allocate_pkid().unwrap_or(1);
        self.expect(Expect::SubAck(pkid), now);
        let options = filters.iter().map(|f| {
            let mut filter = Filter::new(f.clone(), self.subscribe_qos);
            if self.protocol == Protocol::V5 {
                filter.nolocal = self.v5.no_local;
                filter.preserve_retain = self.v5.retain_as_published;
                filter.retain_forward_rule = self.v5.retain_handling.clone();
            }
            filter
        });
        let mut sub = Subscribe::new_many(options, None);
        sub.pkid = pkid;
        self.outbox.push_back(Packet::Subscribe(sub));
        self.changes
            .insert(pkid, Change::Subscribe { filters, initial });
    }

    fn send_unsubscribe(&mut self, filters: Vec<String>, initial: bool, now: Instant) {
        let pkid = self.allocate_pkid().unwrap_or(1);
        self.expect(Expect::UnsubAck(pkid), now);
        let mut unsub = Unsubscribe::new(filters[0].clone(), None);
        unsub.filters = filters.clone();
        unsub.pkid = pkid;
        self.outbox.push_back(Packet::Unsubscribe(unsub));
        self.changes
            .insert(pkid, Change::Unsubscribe { filters, initial });
    }

    /// The stations' filters wanted now (a station switched on or off): once the connection
    /// is ready, what changed is subscribed or unsubscribed at once; before, the next
    /// SUBSCRIBE takes it.
    pub fn set_station_filters(&mut self, filters: BTreeSet<String>, now: Instant) {
        self.station_filters = filters;
        self.reconcile(now);
    }

    /// When ready: SUBSCRIBE what is wanted and neither subscribed nor on its way, UNSUBSCRIBE
    /// what is subscribed, no longer wanted and not on its way out.
    fn reconcile(&mut self, now: Instant) {
        if self.phase != Phase::Ready {
            return;
        }
        let wanted = self.wanted();
        let (mut coming, mut going) = (BTreeSet::new(), BTreeSet::new());
        for change in self.changes.values() {
            match change {
                Change::Subscribe { filters, .. } => coming.extend(filters.iter().cloned()),
                Change::Unsubscribe { filters, .. } => going.extend(filters.iter().cloned()),
            }
        }
        let drop: Vec<String> = self
            .subscribed
            .iter()
            .filter(|f| !wanted.contains(*f) && !going.contains(*f))
            .cloned()
            .collect();
        let add: Vec<String> = wanted
            .iter()
            .filter(|f| {
                !self.subscribed.contains(*f) && !coming.contains(*f) && !going.contains(*f)
            })
            .cloned()
            .collect();
        if !drop.is_empty() {
            self.send_unsubscribe(drop, false, now);
        }
        if !add.is_empty() {
            self.send_subscribe(add, false, now);
        }
    }

    fn on_suback(
        &mut self,
        ack: SubAck,
        now: Instant,
    ) -> Result<Option<SessionEvent>, ProtocolError> {
        self.fulfil(Expect::SubAck(ack.pkid), "SUBACK")?;
        let Some(Change::Subscribe { filters, initial }) = self.changes.remove(&ack.pkid) else {
            return Ok(Some(SessionEvent::Note(format!(
                "SUBACK for no SUBSCRIBE in flight pkid={}",
                ack.pkid
            ))));
        };
        if ack.return_codes.is_empty() {
            return Err(ProtocolError::Violation(
                "SUBACK without a return code".into(),
            ));
        }
        let mut refused = Vec::new();
        for (i, filter) in filters.into_iter().enumerate() {
            // A SUBACK with fewer codes than filters: the last code stands for the rest.
            let code = ack.return_codes.get(i).or(ack.return_codes.last());
            match code {
                Some(SubscribeReasonCode::Success(_)) => {
                    self.subscribed.insert(filter);
                }
                Some(code) => {
                    let why = if self.protocol == Protocol::V311 {
                        "SUBACK return code 0x80".to_string()
                    } else {
                        Reason::new(
                            code.code(),
                            ack.properties
                                .as_ref()
                                .and_then(|p| p.reason_string.as_ref()),
                        )
                        .to_string()
                    };
                    if initial && filter == self.filter {
                        return Err(ProtocolError::SubscribeRefused { filter, why });
                    }
                    refused.push(format!(
                        "the broker refused the subscription to {}: {why}",
                        crate::text::quote(&filter)
                    ));
                }
                None => {}
            }
        }
        let warning = (!refused.is_empty()).then(|| refused.join("; "));
        if initial {
            self.phase = Phase::Ready;
            self.warning = warning;
            self.reconcile(now);
            return Ok(Some(SessionEvent::Ready {
                session_present: true,
            }));
        }
        self.reconcile(now);
        Ok(warning.map(SessionEvent::Warning))
    }

    /// [`Session::handle`] of a PUBLISH, which the receive path reads and hands over on its own
    /// (not moved through the much larger `Packet`).
    pub fn handle_publish(&mut self, p: &mut Publish, now: Instant) -> Result<Take, ProtocolError> {
        self.arrived("PUBLISH", now)?;
        self.on_publish(p)
    }

    /// A packet of type `name` came at `now`: the broker is alive, and nothing but CONNACK may
    /// come first (MQTT-3.2.0-1).
    #[inline]
    pub(crate) fn arrived(
        &mut self,
        name: &'static str,
        now: Instant,
    ) -> Result<(), ProtocolError> {
        self.last_received = now;
        if self.phase == Phase::AwaitConnAck && name != "CONNACK" {
            return Err(ProtocolError::Violation(format!("{name} before CONNACK")));
        }
        Ok(())
    }

    fn on_publish(&mut self, p: &mut Publish) -> Result<Take, ProtocolError> {
        if self.protocol == Protocol::V5 {
            self.aliases
                .incoming(p, self.v5.topic_alias_maximum)
                .map_err(ProtocolError::Violation)?;
        }
        let refusal = payload_format_refusal(p);
        if p.qos == QoS::AtMostOnce {
            return Ok(match refusal {
                Some(text) => Take::Warning(text),
                None => Take::Message,
            });
        }
        match self.incoming.get(&p.pkid).copied() {
            // Sent again (DUP, or redelivered after a reconnect) before its flow ended: it is
            // acknowledged in its turn once confirmed, but handed to the line only once.
            Some(inc) => {
                self.owed.push_back(OwedAck {
                    pkid: p.pkid,
                    qos: inc.qos,
                    confirmed: inc.confirmed,
                    reason: 0,
                });
                self.send_confirmed_acks();
                Ok(Take::Nothing)
            }
            None => {
                self.note_receive_maximum_overrun();
                let refused = refusal.is_some();
                self.incoming.insert(
                    p.pkid,
                    Incoming {
                        qos: p.qos,
                        confirmed: refused,
                    },
                );
                self.owed.push_back(OwedAck {
                    pkid: p.pkid,
                    qos: p.qos,
                    confirmed: refused,
                    reason: if refused { 0x99 } else { 0 },
                });
                if let Some(text) = refusal {
                    self.send_confirmed_acks();
                    return Ok(Take::Warning(text));
                }
                Ok(Take::Message)
            }
        }
    }

    /// A broker sending more unacknowledged messages than our Receive Maximum breaks MQTT 5
    /// (3.3.4), but mosquitto 2.0 does so (its count of in-flight messages drifts after
    /// acknowledgements) and resends the whole excess after every reconnect: closing with 0x93
    /// would reconnect for ever while messages wait for ACK_ID. The message is taken and the
    /// overrun warned about once per connection (docs/decisions.md, "Issue 13: persistent
    /// sessions and Receive Maximum end to end"). Memory stays bounded: at most 65535 packet
    /// identifiers can be unacknowledged, as without a Receive Maximum.
    fn note_receive_maximum_overrun(&mut self) {
        let limit = self.v5.receive_maximum.unwrap_or(u16::MAX);
        let unacknowledged = self.incoming.len();
        if self.protocol != Protocol::V5
            || unacknowledged < usize::from(limit)
            || self.receive_maximum_overrun
        {
            return;
        }
        self.receive_maximum_overrun = true;
        self.warning = Some(format!(
            "the broker sent more than the Receive Maximum of {limit} unacknowledged messages \
             ({} now; MQTT 5 calls this 0x93 Receive Maximum exceeded); the line takes them and \
             keeps the connection, so more messages than receive_maximum can wait for ACK_ID \
             (warned once per connection)",
            unacknowledged + 1
        ));
    }

    fn finish_outgoing(&mut self, pkid: u16, qos: QoS, reason: Reason) -> Option<SessionEvent> {
        match self.outgoing.get(&pkid) {
            Some(o) if o.publish.qos == qos => {
                let token = o.token;
                self.outgoing.remove(&pkid);
                self.release_held();
                Some(if reason.is_failure() {
                    SessionEvent::Refused(token, reason)
                } else {
                    SessionEvent::Published(token)
                })
            }
            _ => Some(SessionEvent::Note(format!(
                "acknowledgement for no message in flight pkid={pkid}"
            ))),
        }
    }

    fn expect(&mut self, what: Expect, now: Instant) {
        let deadline = (!self.reply_timeout.is_zero()).then(|| now + self.reply_timeout);
        self.expects.push((what, deadline));
    }

    fn fulfil(&mut self, what: Expect, name: &str) -> Result<(), ProtocolError> {
        let before = self.expects.len();
        self.expects.retain(|(e, _)| *e != what);
        if self.expects.len() == before {
            return Err(ProtocolError::Violation(format!("unexpected {name}")));
        }
        Ok(())
    }

    /// Reading was paused for `d` because the host did not drain its events: answers may be
    /// waiting unread in the socket, so the deadlines move by the same amount.
    pub fn postpone(&mut self, d: Duration) {
        for (_, deadline) in &mut self.expects {
            if let Some(t) = deadline {
                *t += d;
            }
        }
        self.last_received += d;
    }

    /// The next moment `handle_timeout` has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.expects.iter().filter_map(|(_, d)| *d).min();
        if matches!(self.phase, Phase::Closed | Phase::AwaitConnAck) {
            return next;
        }
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if !self.keep_alive.is_zero() {
            consider(self.last_sent + self.keep_alive);
        }
        if let Some(t) = self.ack_batch.deadline() {
            consider(t);
        }
        if !self.ping_interval.is_zero() {
            consider(self.last_received.max(self.last_ping) + self.ping_interval);
        }
        next
    }

    /// Sends pings that are due and reports an expired reply timeout.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ProtocolError> {
        if let Some((what, _)) = self
            .expects
            .iter()
            .find(|(_, d)| d.is_some_and(|d| d <= now))
        {
            return Err(ProtocolError::ReplyTimeout(what.name(), self.reply_timeout));
        }
        if matches!(self.phase, Phase::Closed | Phase::AwaitConnAck) {
            return Ok(());
        }
        // Held acknowledgements whose moment came leave with the next packets taken, so no
        // deadline is left in the past.
        self.ack_batch.holds(&self.outbox, now);
        let keep_alive_due = !self.keep_alive.is_zero() && now >= self.last_sent + self.keep_alive;
        let silence_due = !self.ping_interval.is_zero()
            && now >= self.last_received.max(self.last_ping) + self.ping_interval;
        if keep_alive_due || silence_due {
            self.last_ping = now;
            self.last_sent = now;
            if !self.expects.iter().any(|(e, _)| *e == Expect::PingResp) {
                self.expect(Expect::PingResp, now);
            }
            self.outbox.push_back(Packet::PingReq(PingReq));
        }
        Ok(())
    }
}

/// The error for a server's DISCONNECT: its reason, or where it sends the line.
fn disconnect_error(d: &Disconnect) -> ProtocolError {
    let props = d.properties.as_ref();
    let reason = Reason::new(
        d.reason_code.code(),
        props.and_then(|p| p.reason_string.as_ref()),
    );
    match props.and_then(|p| p.server_reference.as_ref()) {
        Some(server)
            if matches!(
                d.reason_code,
                DisconnectReasonCode::UseAnotherServer | DisconnectReasonCode::ServerMoved
            ) =>
        {
            ProtocolError::Redirected {
                reason,
                server: server.clone(),
            }
        }
        _ => ProtocolError::ServerDisconnected(reason),
    }
}

/// A message whose Payload Format Indicator says UTF-8 while its payload is not: MQTT 5 lets the
/// receiver refuse it with 0x99 (Payload format invalid), which the line does, with a warning.
fn payload_format_refusal(p: &Publish) -> Option<String> {
    if p.properties.as_ref()?.payload_format_indicator != Some(1) {
        return None;
    }
    let bad = std::str::from_utf8(&p.payload).err()?;
    Some(format!(
        "a message on '{}' says its payload is UTF-8 but it is not ({bad}); it is refused with \
         0x99 Payload format invalid",
        crate::text::escape_bytes(&p.topic)
    ))
}

/// Readable name of a 3.1.1 CONNACK refusal.
pub fn connack_reason(code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::Success => "accepted".into(),
        ConnectReturnCode::RefusedProtocolVersion => "unacceptable protocol version (1)".into(),
        ConnectReturnCode::BadClientId => "identifier rejected (2): check client_id".into(),
        ConnectReturnCode::ServiceUnavailable => "server unavailable (3)".into(),
        ConnectReturnCode::BadUserNamePassword => "bad user name or password (4)".into(),
        ConnectReturnCode::NotAuthorized => "not authorized (5)".into(),
        other => Reason::new(other.code(), None).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{conn_ack, describe, sub_ack, UnsubAck};
    use crate::config::LineConfig;

    fn cfg(extra: &[(&str, &str)]) -> SessionConfig {
        let mut p = vec![("host", "h")];
        p.extend_from_slice(extra);
        LineConfig::from_params("l", p).unwrap().0.session()
    }

    fn drain(s: &mut Session, now: Instant) -> Vec<Packet> {
        std::iter::from_fn(|| s.poll_transmit(now)).collect()
    }

    fn ready(s: &mut Session, c: &SessionConfig, now: Instant) {
        s.connect(c, &Secret::default(), now);
        let out = drain(s, now);
        assert!(matches!(out[0], Packet::Connect(..)));
        s.handle(
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
            now,
        )
        .unwrap();
        let out = drain(s, now);
        let Packet::Subscribe(sub) = &out[out.len() - 1] else {
            panic!("{out:?}")
        };
        let ev = s
            .handle(
                Packet::SubAck(sub_ack(
                    sub.pkid,
                    vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                )),
                now,
            )
            .unwrap();
        assert!(matches!(ev, Some(SessionEvent::Ready { .. })));
    }

    impl Session {
        fn confirm_now(&mut self, pkid: u16) {
            self.confirm(pkid, self.epoch())
        }
    }

    /// Connects again after `disconnected()` and answers with a CONNACK; returns what the
    /// session sent after it (resent publications, UNSUBSCRIBE or SUBSCRIBE).
    fn reconnect(
        s: &mut Session,
        c: &SessionConfig,
        session_present: bool,
        now: Instant,
    ) -> Vec<Packet> {
        s.connect(c, &Secret::default(), now);
        drain(s, now);
        s.handle(
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, session_present)),
            now,
        )
        .unwrap();
        drain(s, now)
    }

    fn publish(pkid: u16, qos: QoS) -> Packet {
        let mut p = Publish::new("t", qos, "x", None);
        p.pkid = pkid;
        Packet::Publish(p)
    }

    #[test]
    fn connect_then_subscribe_then_ready() {
        let now = Instant::now();
        let c = cfg(&[("topic_filter", "a/#"), ("subscribe_qos", "2")]);
        let mut s = Session::new(now);
        s.connect(&c, &Secret::default(), now);
        let Some(Packet::Connect(connect, ..)) = s.poll_transmit(now) else {
            panic!()
        };
        assert_eq!(connect.client_id, "D2000kom");
        assert!(!connect.clean_start);
        assert!(!s.is_ready());
        s.handle(
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
            now,
        )
        .unwrap();
        let Some(Packet::Subscribe(sub)) = s.poll_transmit(now) else {
            panic!()
        };
        assert_eq!(sub.filters[0].path, "a/#");
        assert_eq!(sub.filters[0].qos, QoS::ExactlyOnce);
        s.handle(
            Packet::SubAck(sub_ack(
                sub.pkid,
                vec![SubscribeReasonCode::Success(QoS::ExactlyOnce)],
            )),
            now,
        )
        .unwrap();
        assert!(s.is_ready());
    }

    #[test]
    fn refusals_are_errors() {
        let now = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(now);
        s.connect(&c, &Secret::default(), now);
        drain(&mut s, now);
        let err = s
            .handle(
                Packet::ConnAck(conn_ack(ConnectReturnCode::BadClientId, false)),
                now,
            )
            .unwrap_err();
        assert!(err.to_string().contains("identifier rejected"), "{err}");

        let out = reconnect(&mut s, &c, false, now);
        let [Packet::Subscribe(sub)] = &out[..] else {
            panic!("{out:?}")
        };
        let err = s
            .handle(
                Packet::SubAck(sub_ack(sub.pkid, vec![SubscribeReasonCode::Failure])),
                now,
            )
            .unwrap_err();
        assert!(
            matches!(err, ProtocolError::SubscribeRefused { ref filter, .. } if filter == "#"),
            "{err}"
        );
    }

    #[test]
    fn acks_leave_in_arrival_order() {
        let now = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(now);
        ready(&mut s, &c, now);
        for id in [5, 6, 7] {
            s.handle(publish(id, QoS::AtLeastOnce), now).unwrap();
        }
        s.confirm_now(7);
        s.confirm_now(6);
        assert!(drain(&mut s, now).is_empty(), "5 is not confirmed yet");
        s.confirm_now(5);
        let ids: Vec<u16> = drain(&mut s, now)
            .into_iter()
            .map(|p| match p {
                Packet::PubAck(a) => a.pkid,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, [5, 6, 7]);
    }

    #[test]
    fn qos2_is_delivered_once_even_when_resent() {
        let now = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(now);
        ready(&mut s, &c, now);
        assert!(s
            .handle(publish(9, QoS::ExactlyOnce), now)
            .unwrap()
            .is_some());
        s.confirm_now(9);
        assert!(matches!(drain(&mut s, now)[..], [Packet::PubRec(_)]));
        // The broker sends it again (DUP) before PUBREL: PUBREC again, no second delivery.
        assert_eq!(s.handle(publish(9, QoS::ExactlyOnce), now).unwrap(), None);
        assert!(matches!(drain(&mut s, now)[..], [Packet::PubRec(_)]));
        s.handle(Packet::PubRel(PubRel::new(9, None)), now).unwrap();
        assert!(matches!(drain(&mut s, now)[..], [Packet::PubComp(_)]));
        // After PUBREL the id is free: a new message with it is delivered.
        assert!(s
            .handle(publish(9, QoS::ExactlyOnce), now)
            .unwrap()
            .is_some());
    }

    /// Under load PUBACKs wait (ack_batch.rs): another packet takes them along, the session's
    /// deadline and timeout release them, and the clock's release teaches the limit.
    #[test]
    fn acks_under_load_leave_together_by_the_session_deadline() {
        let t0 = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(t0);
        ready(&mut s, &c, t0);
        let ack = |pkid| Packet::PubAck(PubAck::new(pkid, None));
        let arrive = |s: &mut Session, pkid, qos, at| {
            s.handle(publish(pkid, qos), at).unwrap();
            s.confirm_now(pkid);
            drain(s, at)
        };
        assert_eq!(
            arrive(&mut s, 1, QoS::AtLeastOnce, t0),
            [ack(1)],
            "after a quiet moment"
        );
        let t1 = t0 + Duration::from_micros(100);
        assert!(
            arrive(&mut s, 2, QoS::AtLeastOnce, t1).is_empty(),
            "under load it waits"
        );
        // A QoS 2 message's PUBREC takes the held PUBACK with it, in order.
        let out = arrive(&mut s, 3, QoS::ExactlyOnce, t1);
        assert!(
            matches!(out[..], [Packet::PubAck(_), Packet::PubRec(_)]),
            "{out:?}"
        );
        assert!(arrive(&mut s, 4, QoS::AtLeastOnce, t1).is_empty());
        let deadline = s.poll_timeout().expect("a deadline for the held PUBACK");
        assert_eq!(deadline, t1 + crate::ack_batch::WITHIN);
        s.handle_timeout(deadline).unwrap();
        assert_ne!(
            s.poll_timeout(),
            Some(deadline),
            "no deadline left in the past"
        );
        assert_eq!(drain(&mut s, deadline), [ack(4)]);
        // Released by the clock with one waiting: one is the limit now, nothing waits.
        let t2 = deadline + Duration::from_micros(100);
        assert_eq!(arrive(&mut s, 5, QoS::AtLeastOnce, t2), [ack(5)]);
    }

    #[test]
    fn unconfirmed_message_redelivered_after_reconnect_is_not_handed_over_twice() {
        let now = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(now);
        ready(&mut s, &c, now);
        assert!(s
            .handle(publish(4, QoS::AtLeastOnce), now)
            .unwrap()
            .is_some());
        s.disconnected();
        reconnect(&mut s, &c, true, now);
        // The broker sends it again: not a new message, and no PUBACK until confirmed.
        assert_eq!(s.handle(publish(4, QoS::AtLeastOnce), now).unwrap(), None);
        assert!(drain(&mut s, now).is_empty());
        s.confirm_now(4);
        assert_eq!(drain(&mut s, now), [Packet::PubAck(PubAck::new(4, None))]);
        // The flow is over: the id may carry a new message.
        assert!(s
            .handle(publish(4, QoS::AtLeastOnce), now)
            .unwrap()
            .is_some());
    }

    #[test]
    fn confirmation_while_disconnected_acknowledges_the_redelivery() {
        let now = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(now);
        ready(&mut s, &c, now);
        s.handle(publish(8, QoS::ExactlyOnce), now).unwrap();
        s.disconnected();
        s.confirm_now(8);
        assert!(drain(&mut s, now).is_empty());
        reconnect(&mut s, &c, true, now);
        assert_eq!(s.handle(publish(8, QoS::ExactlyOnce), now).unwrap(), None);
        assert_eq!(drain(&mut s, now), [Packet::PubRec(PubRec::new(8, None))]);
    }

    #[test]
    fn a_broker_without_our_session_forgets_what_was_in_flight() {
        let now = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(now);
        ready(&mut s, &c, now);
        s.handle(publish(5, QoS::AtLeastOnce), now).unwrap();
        s.disconnected();
        reconnect(&mut s, &c, false, now);
        assert!(s
            .handle(publish(5, QoS::AtLeastOnce), now)
            .unwrap()
            .is_some());
    }

    #[test]
    fn pings_follow_keep_alive_and_ping_interval() {
        let t0 = Instant::now();
        let c = cfg(&[
            ("keep_alive", "10"),
            ("ping_interval", "4"),
            ("reply_timeout", "2"),
        ]);
        let mut s = Session::new(t0);
        ready(&mut s, &c, t0);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(4)));
        let t4 = t0 + Duration::from_secs(4);
        s.handle_timeout(t4).unwrap();
        assert_eq!(drain(&mut s, t4), [Packet::PingReq(PingReq)]);
        // No PINGRESP within the reply timeout: the line is in error.
        let err = s.handle_timeout(t4 + Duration::from_secs(2)).unwrap_err();
        assert!(
            matches!(err, ProtocolError::ReplyTimeout("PINGRESP", _)),
            "{err}"
        );
    }

    #[test]
    fn a_pause_in_reading_postpones_reply_deadlines() {
        let t0 = Instant::now();
        let c = cfg(&[("ping_interval", "4"), ("reply_timeout", "2")]);
        let mut s = Session::new(t0);
        ready(&mut s, &c, t0);
        let t4 = t0 + Duration::from_secs(4);
        s.handle_timeout(t4).unwrap();
        s.postpone(Duration::from_secs(10));
        assert!(s.handle_timeout(t4 + Duration::from_secs(5)).is_ok());
        assert!(s.handle_timeout(t4 + Duration::from_secs(12)).is_err());
    }

    #[test]
    fn keep_alive_ping_when_nothing_was_sent() {
        let t0 = Instant::now();
        let c = cfg(&[("keep_alive", "5"), ("ping_interval", "0")]);
        let mut s = Session::new(t0);
        ready(&mut s, &c, t0);
        // Receiving does not postpone a keep-alive ping: only sending does.
        let t3 = t0 + Duration::from_secs(3);
        s.handle(publish(0, QoS::AtMostOnce), t3).unwrap();
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        s.handle_timeout(t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(drain(&mut s, t0), [Packet::PingReq(PingReq)]);
    }

    #[test]
    fn missing_connack_times_out() {
        let t0 = Instant::now();
        let c = cfg(&[("reply_timeout", "3")]);
        let mut s = Session::new(t0);
        s.connect(&c, &Secret::default(), t0);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        assert!(s.handle_timeout(t0 + Duration::from_secs(3)).is_err());
    }

    #[test]
    fn changed_filter_is_unsubscribed_first() {
        let t0 = Instant::now();
        let mut s = Session::new(t0);
        ready(&mut s, &cfg(&[("topic_filter", "old/#")]), t0);
        s.disconnected();
        s.connect(&cfg(&[("topic_filter", "new/#")]), &Secret::default(), t0);
        drain(&mut s, t0);
        s.handle(
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, true)),
            t0,
        )
        .unwrap();
        let Some(Packet::Unsubscribe(u)) = s.poll_transmit(t0) else {
            panic!()
        };
        assert_eq!(u.filters, ["old/#"]);
        s.handle(
            Packet::UnsubAck(UnsubAck {
                pkid: u.pkid,
                reasons: Vec::new(),
                properties: None,
            }),
            t0,
        )
        .unwrap();
        let Some(Packet::Subscribe(sub)) = s.poll_transmit(t0) else {
            panic!()
        };
        assert_eq!(sub.filters[0].path, "new/#");
    }

    #[test]
    fn publications_complete_by_qos() {
        let t0 = Instant::now();
        let mut s = Session::new(t0);
        let c = cfg(&[]);
        assert!(s
            .publish(
                WriteToken(1),
                "o",
                Bytes::from_static(b"v"),
                QoS::AtMostOnce,
                false,
                None,
            )
            .is_err());
        ready(&mut s, &c, t0);
        s.publish(
            WriteToken(1),
            "o",
            Bytes::from_static(b"v"),
            QoS::AtMostOnce,
            false,
            None,
        )
        .unwrap();
        s.publish(
            WriteToken(2),
            "o",
            Bytes::from_static(b"v"),
            QoS::AtLeastOnce,
            false,
            None,
        )
        .unwrap();
        s.publish(
            WriteToken(3),
            "o",
            Bytes::from_static(b"v"),
            QoS::ExactlyOnce,
            true,
            None,
        )
        .unwrap();
        let out = drain(&mut s, t0);
        assert_eq!(s.flushed(), [WriteToken(1)]);
        let pkid = |p: &Packet| match p {
            Packet::Publish(p) => p.pkid,
            _ => panic!(),
        };
        let (p2, p3) = (pkid(&out[1]), pkid(&out[2]));
        assert_eq!(
            s.handle(Packet::PubAck(PubAck::new(p2, None)), t0).unwrap(),
            Some(SessionEvent::Published(WriteToken(2)))
        );
        assert_eq!(
            s.handle(Packet::PubRec(PubRec::new(p3, None)), t0).unwrap(),
            None
        );
        assert!(matches!(drain(&mut s, t0)[..], [Packet::PubRel(_)]));
        assert_eq!(
            s.handle(Packet::PubComp(PubComp::new(p3, None)), t0)
                .unwrap(),
            Some(SessionEvent::Published(WriteToken(3)))
        );
    }

    #[test]
    fn in_flight_publications_resend_or_fail_on_reconnect() {
        let t0 = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(t0);
        ready(&mut s, &c, t0);
        s.publish(
            WriteToken(7),
            "o",
            Bytes::from_static(b"v"),
            QoS::AtLeastOnce,
            false,
            None,
        )
        .unwrap();
        drain(&mut s, t0);
        assert!(
            s.disconnected().is_empty(),
            "kept for the persistent session"
        );
        let out = reconnect(&mut s, &c, true, t0);
        assert!(matches!(&out[0], Packet::Publish(p) if p.dup), "{out:?}");

        let clean = cfg(&[("clean_session", "YES")]);
        let mut s = Session::new(t0);
        ready(&mut s, &clean, t0);
        s.publish(
            WriteToken(8),
            "o",
            Bytes::from_static(b"v"),
            QoS::AtLeastOnce,
            false,
            None,
        )
        .unwrap();
        assert_eq!(s.disconnected(), [WriteToken(8)]);
    }

    #[test]
    fn connect_trace_hides_password() {
        let c = cfg(&[("user_name", "op")]);
        let mut s = Session::new(Instant::now());
        s.connect(&c, &Secret::new("hunter2"), Instant::now());
        let p = s.poll_transmit(Instant::now()).unwrap();
        let line = describe(&p);
        assert!(
            line.contains("user_name=op") && line.contains("password=set"),
            "{line}"
        );
        assert!(!line.contains("hunter2"), "{line}");
    }

    #[test]
    fn broker_may_not_send_client_packets() {
        let t0 = Instant::now();
        let mut s = Session::new(t0);
        ready(&mut s, &cfg(&[]), t0);
        assert!(matches!(
            s.handle(Packet::PingReq(PingReq), t0),
            Err(ProtocolError::Violation(_))
        ));
    }

    #[test]
    fn first_packet_must_be_connack() {
        let now = Instant::now();
        let c = cfg(&[]);
        let mut s = Session::new(now);
        s.connect(&c, &Secret::default(), now);
        drain(&mut s, now);
        assert!(matches!(
            s.handle(Packet::PubAck(PubAck::new(1, None)), now),
            Err(ProtocolError::Violation(_))
        ));
    }

    #[test]
    fn stray_unsuback_is_ignored() {
        let now = Instant::now();
        let mut s = Session::new(now);
        ready(&mut s, &cfg(&[]), now);
        // Ignored: only a note for the debug log comes back.
        assert_eq!(
            s.handle(
                Packet::UnsubAck(UnsubAck {
                    pkid: 77,
                    reasons: Vec::new(),
                    properties: None
                }),
                now
            ),
            Ok(Some(SessionEvent::Note(
                "UNSUBACK for no UNSUBSCRIBE in flight pkid=77".into()
            )))
        );
        assert!(s.is_ready());
    }

    #[test]
    fn session_present_with_clean_session_is_a_violation() {
        let now = Instant::now();
        let c = cfg(&[("clean_session", "YES")]);
        let mut s = Session::new(now);
        s.connect(&c, &Secret::default(), now);
        drain(&mut s, now);
        assert!(matches!(
            s.handle(
                Packet::ConnAck(conn_ack(ConnectReturnCode::Success, true)),
                now
            ),
            Err(ProtocolError::Violation(_))
        ));
    }
}

#[cfg(test)]
#[path = "session_v5_tests.rs"]
mod v5_tests;
