//! One communication line: its stations and tags, the routing table and the MQTT session, driven
//! by the shell with packets, time and host requests, and answering with packets and events.
//!
//! The line's rules live in one file per job, each an `impl Line` block:
//! - [`topology`]: configuration (add_station, add_tag, reconfigure) and what `start` builds from
//!   it: the routing table, the will topics, the JSON extraction trees, the start warnings.
//! - [`station_state`]: a station's state from its command, the connection and its will message;
//!   invalidating input tags when communication fails.
//! - [`inbound`]: delivering a received message: will messages, routing, the ACK_ID gate or
//!   the Sparkplug host.
//! - [`accounting`]: counting a routed message and tracing where it went.
//! - [`ack`]: the ACK_ID orchestration: showing a held message, its confirmation by the host,
//!   showing the next one, and the warning about messages left unconfirmed.
//! - [`inputs`]: filling a station's input tags from a message (payload tags, then IN_*).
//! - [`reading`]: reading a JSON or CSV payload into JA= or CSV= tags, with its time stamps.
//! - [`emit`]: the floor of the receive path: tag values, invalid-value warnings, payload
//!   errors, the routing trace and log lines. The files above call down into it, never the
//!   other way: inbound -> accounting/ack/sparkplug -> inputs -> reading -> emit.
//! - [`writes`]: host writes (OUT_TOPIC, OUT_VALUE, ACK_ID), their completion or failure.
//! - [`edge`]: the line as a Sparkplug B edge node: births, data, deaths, commands and
//!   store-and-forward (its rules are in `crate::sparkplug::{edge_node, store}`).
//! - [`sparkplug`]: a Sparkplug B host application's births, data, deaths, rebirth requests,
//!   commands and STATE (its rules are in `crate::sparkplug`).
//!
//! This file holds the types and the shell's entry points (packets, time, transport).

mod accounting;
mod ack;
mod edge;
mod emit;
mod inbound;
mod inputs;
mod link;
mod reading;
mod redundancy;
mod rejoin;
mod sas;
mod sparkplug;
mod stale;
mod station_state;
mod stats;
mod topology;
mod writes;

pub use edge::EdgeFiles;
use link::{Link, Redirect};
pub use link::{LinkId, LinkStats};
use redundancy::Redundancy;
use stats::StationCounters;
pub use stats::{LineState, LineStats, StationStats};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::ack_gate::AckGate;
use bytes::BytesMut;

use crate::codec::{
    describe, frame, read_framed, read_publish, write_packet, DisconnectReasonCode, Packet, Publish,
};
use crate::config::LineConfig;
use crate::connection::{Attempt, Closing, Deliberate, Ended, Goodbye, IoDeadlines};
use crate::event::{Event, LineEvent, LogLevel};
use crate::ids::{indexes, StationId, StationIndex, TagId, TagIndex, WriteToken};
use crate::json_extract::{ElementHints, Found};
use crate::json_path::JsonPath;
use crate::json_plan::JsonPlan;
use crate::params::Secret;
use crate::payload::PayloadSettings;
use crate::read_pace::ReadPace;
use crate::routing::{FxMap, Router};
use crate::session::{ProtocolError, SessionEvent, Take, Transmit};
use crate::stale::StaleClock;
use crate::station::{StationCommand, StationParams, StationState};
use crate::tag::TagAddress;
use crate::value::ValueType;

struct Station {
    id: StationId,
    name: String,
    address: String,
    /// The address is a valid regular expression with regex syntax (routing.rs).
    pattern: bool,
    params: StationParams,
    payload: PayloadSettings,
    /// The station has JA= tags, so JSON payloads are parsed for it.
    json_tags: bool,
    /// What is read from a JSON payload in one pass: its JA= addresses in tag order, the time
    /// field, the selected items' time and quality. Stations with the same addresses share one.
    extract: Arc<JsonPlan>,
    /// Which value selected each element of its JSON payloads' selecting arrays last time.
    element_hints: ElementHints,
    /// The station has CSV= tags, so CSV payloads are split for it.
    csv_tags: bool,
    /// The station has IN_TOPIC, IN_DATA or IN_ID tags (or MQTT 5 property tags).
    in_tags: bool,
    /// The station has MQTT 5 property tags (IN_PROPERTY=, IN_CONTENT_TYPE, IN_RESPONSE_TOPIC,
    /// IN_CORRELATION_DATA): only then are its tags looked through for them per message.
    property_tags: bool,
    /// Its will message arrived: hard error until data comes again.
    device_lost: bool,
    command: StationCommand,
    state: Option<StationState>,
    tags: Vec<TagIndex>,
    out_topic: Option<String>,
    /// `subscribe_station_address`: the filter the line subscribes to while the station is on.
    subscription: Option<String>,
    /// MQTT 5: the values of its OUT_PROPERTY tags, sent with every write, in the order first set.
    user_properties: Vec<(String, String)>,
    /// The station has an ACK_ID tag: the host confirms each message before the next is shown.
    gated: bool,
    gate: AckGate,
    counters: StationCounters,
    /// Its STALE clock.
    staleness: stale::StaleState,
}

impl Station {
    /// An OUT_PROPERTY tag got `value`.
    fn set_user_property(&mut self, name: &str, value: String) {
        match self.user_properties.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.user_properties.push((name.to_string(), value)),
        }
    }
}

struct Tag {
    id: TagId,
    station: StationIndex,
    name: String,
    address: TagAddress,
    ty: ValueType,
    /// The tag's last value was valid: it must be invalidated when communication fails.
    valid: bool,
}

indexes!(StationIndex, Station);
indexes!(TagIndex, Tag);

/// A write waiting for the broker, by session token.
struct PendingWrite {
    request: u64,
    station: StationId,
    tag: TagId,
    /// A redundant line's write, published on both connections: the connections (bit 1 A, bit
    /// 2 B) it still waits for; 0 on a single line, whose write ends with its one outcome.
    waiting: u8,
    /// Why it failed on the connections that are done with it (line/writes.rs).
    failed: Option<String>,
}

/// Largest packet the line encodes; a larger one is unsendable (a write fails, or the connection
/// closes when the session needs the packet).
const MAX_OUTGOING_PACKET: usize = 256 * 1024 * 1024;

/// Largest packet accepted from the broker; a larger one closes the connection with an error
/// instead of growing the shell's buffer without bound.
const MAX_INCOMING_PACKET: usize = 64 * 1024 * 1024;

/// A packet the session needs could not be encoded: the connection closes with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot send {packet} to the broker: {reason}")]
pub struct Unsendable {
    pub packet: &'static str,
    pub reason: String,
}

/// The line core. All methods are cheap and never block.
pub struct Line {
    name: String,
    config: LineConfig,
    stations: Vec<Station>,
    /// The stations with an ACK_ID tag: only they have unconfirmed-message deadlines, so the
    /// timers look at these, not at every station (10,000 stations, a handful gated).
    gated_stations: Vec<StationIndex>,
    tags: Vec<Tag>,
    /// Ids the host chose and our own write tokens: the routing tables' small hash serves (no
    /// key comes from the broker), where SipHash cost ~450 instructions per ACK_ID write.
    station_ids: FxMap<StationId, StationIndex>,
    tag_ids: FxMap<TagId, TagIndex>,
    addresses: HashMap<String, StationIndex>,
    router: Router,
    /// Station Will Topics, checked before routing: a device's will often has another topic.
    wills: HashMap<String, Vec<StationIndex>>,
    /// Connection A, the line's one connection unless it is redundant.
    link: Link,
    /// A redundant line's connection B and its duplicate filter (issue 21); `None` on a line
    /// with one connection, which so never hashes a message nor looks at a second session.
    redundancy: Option<Box<Redundancy>>,
    events: VecDeque<Event>,
    started: bool,
    writes: FxMap<WriteToken, PendingWrite>,
    next_token: u64,
    /// The line's counters (their `held` is summed from the gates when asked).
    stats: LineStats,
    /// One [`Event::Route`] per received message (built only when on).
    trace_routing: bool,
    /// The STALE deadlines of the stations.
    stale_clock: StaleClock,
    /// Values read from the last JSON payload, kept to reuse the allocation.
    extracted: Vec<Option<Found>>,
    /// One copy of each distinct JA= address, shared by the tags that use it.
    json_paths: HashMap<String, Arc<JsonPath>>,
    /// Some connection was ready before: the next ready one is a reconnect of the line.
    ever_ready: bool,
    /// The Sparkplug B host's state, when the payload type is Sparkplug B.
    sparkplug: Option<Box<crate::sparkplug::Host>>,
    /// The Sparkplug edge node, when the payload type is Sparkplug Edge Node (line/edge.rs).
    edge: Option<Box<edge::Edge>>,
    /// `auth = azure-sas`: when the connection's token is renewed.
    sas: sas::SasRenewal,
    /// `compress_writes`: the deflate state, made at the first compressed write.
    gzip_writer: Option<Box<crate::gzip::GzipWriter>>,
    /// When the line was made: a connection B added by new parameters starts its session
    /// clock here (its CONNECT sets the real times).
    created: Instant,
    /// Connection B was taken away by new parameters, whose call has no clock: the writes that
    /// waited for B alone, to fail, and the messages held ahead of B's, to show, at the next
    /// packet or timer (line/redundancy.rs, `settle_retired_b`).
    retired_b: Option<redundancy::RetiredB>,
}

/// The connections of a single line and of a redundant one.
const ONE_LINK: &[LinkId] = &[LinkId::A];
const TWO_LINKS: &[LinkId] = &[LinkId::A, LinkId::B];

impl Line {
    pub fn new(name: &str, config: LineConfig, now: Instant) -> Line {
        let mut line = Line {
            name: name.to_string(),
            config,
            stations: Vec::new(),
            tags: Vec::new(),
            gated_stations: Vec::new(),
            station_ids: FxMap::default(),
            tag_ids: FxMap::default(),
            addresses: HashMap::new(),
            wills: HashMap::new(),
            router: Router::default(),
            link: Link::new(now),
            redundancy: None,
            events: VecDeque::new(),
            started: false,
            writes: FxMap::default(),
            next_token: 1,
            stats: LineStats::default(),
            trace_routing: false,
            stale_clock: StaleClock::default(),
            extracted: Vec::new(),
            json_paths: HashMap::new(),
            ever_ready: false,
            sparkplug: None,
            edge: None,
            sas: sas::SasRenewal::default(),
            gzip_writer: None,
            created: now,
            retired_b: None,
        };
        line.sync_redundancy();
        line
    }

    /// Gives the line connection B when `redundant_host` is set, and takes it away when no
    /// longer (the shell then closes B: [`Line::has_link`]).
    fn sync_redundancy(&mut self) {
        match (&mut self.redundancy, self.config.redundant.is_on()) {
            (None, true) => {
                let window = self.config.redundant.window;
                self.redundancy = Some(Box::new(Redundancy::new(self.created, window)));
            }
            (Some(_), false) => self.retire_b(),
            (Some(r), true) => r.set_window(self.config.redundant.window),
            (None, false) => {}
        }
    }

    pub fn config(&self) -> &LineConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Switches the routing trace: one [`Event::Route`] per received message while on.
    pub fn set_trace_routing(&mut self, on: bool) {
        self.trace_routing = on;
    }

    /// Whether the line should hold a connection: some station is on.
    pub fn wants_connection(&self) -> bool {
        if let Some(wants) = self.edge_wants_connection() {
            return wants;
        }
        self.stations
            .iter()
            .any(|s| s.command == StationCommand::On)
    }

    /// The line's connections: A, and B on a redundant line. The shell runs one connection loop
    /// for each.
    pub fn links(&self) -> &'static [LinkId] {
        match self.redundancy {
            Some(_) => TWO_LINKS,
            None => ONE_LINK,
        }
    }

    /// Whether the line has connection `id` (B only while `redundant_host` is set).
    pub fn has_link(&self, id: LinkId) -> bool {
        self.link_ref(id).is_some()
    }

    fn link_ref(&self, id: LinkId) -> Option<&Link> {
        match id {
            LinkId::A => Some(&self.link),
            LinkId::B => self.redundancy.as_deref().map(|r| &r.b),
        }
    }

    fn link_mut(&mut self, id: LinkId) -> Option<&mut Link> {
        match id {
            LinkId::A => Some(&mut self.link),
            LinkId::B => self.redundancy.as_deref_mut().map(|r| &mut r.b),
        }
    }

    /// Every connection the line has, for what applies to all (subscriptions, writes).
    fn links_mut(&mut self) -> impl Iterator<Item = &mut Link> {
        std::iter::once(&mut self.link).chain(self.redundancy.as_deref_mut().map(|r| &mut r.b))
    }

    /// Whether some connection of the line is ready: the line is connected.
    pub fn is_ready(&self) -> bool {
        self.link.session.is_ready()
            || self
                .redundancy
                .as_ref()
                .is_some_and(|r| r.b.session.is_ready())
    }

    /// Whether connection `id` is ready.
    pub fn is_link_ready(&self, id: LinkId) -> bool {
        self.link_ref(id).is_some_and(|l| l.session.is_ready())
    }

    /// Where to connect at `now`, or until when to back off; `None` once the line was stopped.
    /// A server reference from the broker is tried first, once. Connection A of the line.
    pub fn next_attempt(&mut self, now: Instant) -> Option<Attempt<'_>> {
        self.next_attempt_on(LinkId::A, now)
    }

    /// [`Line::next_attempt`] for connection `id`, within its own host list; `None` also when
    /// the line has no such connection.
    pub fn next_attempt_on(&mut self, id: LinkId, now: Instant) -> Option<Attempt<'_>> {
        let reply_timeout = self.config.reply_timeout;
        let (link, hosts, port) = match id {
            LinkId::A => (&mut self.link, &self.config.hosts, self.config.port()),
            LinkId::B => {
                let r = self.redundancy.as_deref_mut()?;
                let port = self.config.redundant_port();
                (&mut r.b, &self.config.redundant.hosts, port)
            }
        };
        let attempt = link.reconnect.next_attempt(now, hosts, port, reply_timeout);
        if let Some(Attempt::Connect { .. }) = attempt {
            self.stats.connection_attempts += 1;
            link.counters.connection_attempts += 1;
        }
        match (attempt, &mut link.redirect) {
            (Some(Attempt::Connect { timeout, .. }), Some(r)) => {
                r.tried = true;
                Some(Attempt::Connect {
                    host: &r.host,
                    port: r.port,
                    timeout,
                })
            }
            (attempt, _) => attempt,
        }
    }

    /// Whether the open connection closes now, and how, given what the host asked since the
    /// shell last looked: its stop, its new parameters, no station being on, or a token to
    /// renew (connection.rs).
    pub fn closing(&self, stop: bool, new_parameters: bool) -> Option<Closing> {
        Closing::decide(
            stop,
            new_parameters,
            self.wants_connection(),
            self.renewal_due(),
        )
    }

    /// The connection or attempt begun after [`Line::next_attempt`] ended at `now`, and why. Call
    /// after [`Line::transport_closed`]. A connection the broker had accepted is logged: a
    /// warning when it was lost, information when the line closed it itself.
    pub fn connection_ended(&mut self, now: Instant, ended: Ended) {
        self.connection_ended_on(LinkId::A, now, ended);
    }

    /// [`Line::connection_ended`] for connection `id`.
    pub fn connection_ended_on(&mut self, id: LinkId, now: Instant, ended: Ended) {
        let redundant = self.redundancy.is_some();
        let hosts = match id {
            LinkId::A => self.config.hosts.len(),
            LinkId::B => self.config.redundant.hosts.len(),
        };
        let Some(link) = self.link_mut(id) else {
            return;
        };
        let was_ready = std::mem::take(&mut link.was_ready);
        let closed = link.closed.take();
        let redirected = link.redirect.as_ref().is_some_and(|r| r.tried);
        if redirected || matches!(ended, Ended::Deliberate(_)) {
            link.redirect = None;
        }
        if !(redirected && ended == Ended::Lost) {
            // An attempt at a server reference was an extra one: the rotation (which counted
            // the connection that sent the line there) goes on where it was.
            link.reconnect
                .connection_ended(now, ended, was_ready, hosts);
        }
        if let Some((host, reason)) = closed {
            let level = match ended {
                Ended::Lost => LogLevel::Warn,
                Ended::Deliberate(_) => LogLevel::Info,
            };
            let text = match redundant {
                true => format!("connection {} to {host} ended: {reason}", id.name()),
                false => format!("connection to {host} ended: {reason}"),
            };
            self.log(level, text);
        }
    }

    /// New parameters: the next attempt of each connection goes to its first host at once, with
    /// no back-off.
    pub fn restart_connection(&mut self) {
        for link in self.links_mut() {
            link.redirect = None;
            link.reconnect.restart();
        }
    }

    /// [`Line::restart_connection`] for connection `id` only (each connection loop of the shell
    /// takes the request for its own).
    pub fn restart_connection_on(&mut self, id: LinkId) {
        if let Some(link) = self.link_mut(id) {
            link.redirect = None;
            link.reconnect.restart();
        }
    }

    /// A transport to `host` is open: the session starts with CONNECT.
    pub fn transport_open(&mut self, host: &str, password: &Secret, now: Instant) {
        self.open_session(LinkId::A, host, password, None, now);
    }

    /// [`Line::transport_open`] for connection `id`.
    pub fn transport_open_on(&mut self, id: LinkId, host: &str, password: &Secret, now: Instant) {
        self.open_session(id, host, password, None, now);
    }

    /// Queues CONNECT on a transport to `host`, with `user_name` instead of the configured one
    /// when given (an Azure SAS connection, line/sas.rs).
    fn open_session(
        &mut self,
        id: LinkId,
        host: &str,
        password: &Secret,
        user_name: Option<String>,
        now: Instant,
    ) {
        let will_ms = self.sparkplug_will_ms();
        let mut session = self.config.session_at(will_ms);
        self.subscriptions_into(&mut session);
        self.edge_session(&mut session);
        if let Some(user_name) = user_name {
            session.user_name = user_name;
        }
        if id == LinkId::B {
            session.client_id = self.config.redundant_client_id().to_string();
        }
        let Some(link) = self.link_mut(id) else {
            return;
        };
        link.host = Some(host.to_string());
        link.io = IoDeadlines::default();
        link.pace = ReadPace::default();
        link.was_ready = false;
        link.closed = None;
        link.state_ms = will_ms;
        link.session.connect(&session, password, now);
    }

    /// The transport closed, or an attempt to open one failed.
    pub fn transport_closed(&mut self, reason: &str, wall_ns: i64) {
        self.transport_closed_on(LinkId::A, reason, wall_ns);
    }

    /// [`Line::transport_closed`] for connection `id`. On a redundant line the line stays
    /// connected while the other connection is ready: only its own state and writes change.
    pub fn transport_closed_on(&mut self, id: LinkId, reason: &str, wall_ns: i64) {
        let redundant = self.redundancy.is_some();
        let Some(link) = self.link_mut(id) else {
            return;
        };
        let was_ready = link.session.is_ready();
        if link.was_ready {
            let host = link.host.clone().unwrap_or_default();
            link.closed = Some((host, reason.to_string()));
        }
        let failed = link.session.disconnected();
        link.host = None;
        link.counters.state = Some(LineState::Disconnected);
        if id == LinkId::A {
            self.edge_clock(wall_ns);
            self.edge_disconnected();
            self.sas_closed();
        }
        let lost =
            "the connection to the broker was lost before the broker acknowledged the message";
        for token in failed {
            self.fail_write_on(id, token, lost, wall_ns);
        }
        if let Some(sp) = self.sparkplug.as_mut() {
            sp.clock_ns = wall_ns;
        }
        if redundant {
            self.rejoin_over();
            self.events.push_back(Event::Link(LineEvent::Disconnected {
                reason: reason.to_string(),
                time_ns: wall_ns,
                link: id,
            }));
            if self.is_ready() {
                // The other connection carries the line on.
                return;
            }
        }
        self.stop_stale_clocks();
        self.stats.state = Some(LineState::Disconnected);
        self.events.push_back(Event::Line(LineEvent::Disconnected {
            reason: reason.to_string(),
            time_ns: wall_ns,
            link: id,
        }));
        if was_ready {
            for i in self.station_indexes() {
                self.refresh_station(i, reason, wall_ns);
            }
        }
    }

    #[inline]
    pub fn handle_packet(
        &mut self,
        packet: Packet,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        self.handle_packet_on(LinkId::A, packet, now, wall_ns)
    }

    /// [`Line::handle_packet`] for a packet from connection `id`.
    // Inlined into `handle_input_on`, where the packet is read: called out of line, the packet
    // (some 200 bytes) is copied once more on its way into the session.
    #[inline(always)]
    pub fn handle_packet_on(
        &mut self,
        id: LinkId,
        packet: Packet,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        let Some(session) = self.session_on(id, now, wall_ns) else {
            return Ok(());
        };
        let event = match session.handle(packet, now) {
            Ok(event) => event,
            Err(e) => {
                if let ProtocolError::Redirected { server, .. } = &e {
                    self.redirected(id, server);
                }
                return Err(e);
            }
        };
        self.session_event(id, event, now, wall_ns);
        Ok(())
    }

    /// [`Line::handle_packet_on`] of a PUBLISH that the receive path read by itself.
    #[inline]
    fn handle_publish_on(
        &mut self,
        id: LinkId,
        mut p: Publish,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        let Some(session) = self.session_on(id, now, wall_ns) else {
            return Ok(());
        };
        match session.handle_publish(&mut p, now)? {
            Take::Message => self.message(p, id, now, wall_ns),
            Take::Nothing => {}
            Take::Warning(text) => self.log(LogLevel::Warn, text),
        }
        self.session_warning(id);
        Ok(())
    }

    /// A new message from connection `id`. A single line never looks at the duplicate filter
    /// (its receive path stays as it was before the redundant line); a redundant one passes
    /// each message through it.
    #[inline(always)]
    fn message(&mut self, p: Publish, id: LinkId, now: Instant, wall_ns: i64) {
        match self.redundancy {
            None => self.deliver(p, id, None, now, wall_ns),
            Some(_) => self.deliver_redundant(p, id, now, wall_ns),
        }
    }

    /// A warning connection `id`'s session keeps for the log (one per connection, say).
    #[inline(always)]
    fn session_warning(&mut self, id: LinkId) {
        if let Some(text) = self
            .link_mut(id)
            .and_then(|link| link.session.take_warning())
        {
            self.log(LogLevel::Warn, text);
        }
    }

    /// The session of connection `id`, which a packet from its broker goes to; first, what
    /// taking connection B away left to settle, which needed the time the packet brings.
    #[inline(always)]
    fn session_on(
        &mut self,
        id: LinkId,
        now: Instant,
        wall_ns: i64,
    ) -> Option<&mut crate::session::Session> {
        if self.retired_b.is_some() {
            self.settle_retired_b(now, wall_ns);
        }
        self.link_mut(id).map(|link| &mut link.session)
    }

    /// What connection `id`'s session made of a packet.
    #[inline(always)]
    fn session_event(
        &mut self,
        id: LinkId,
        event: Option<SessionEvent>,
        now: Instant,
        wall_ns: i64,
    ) {
        match event {
            None => {}
            Some(SessionEvent::Ready { .. }) => self.link_ready(id, now, wall_ns),
            Some(SessionEvent::Message(p)) => self.message(p, id, now, wall_ns),
            Some(SessionEvent::Published(token)) => self.complete_write(token, wall_ns),
            Some(SessionEvent::Refused(token, reason)) => {
                let why = format!("the broker refused the message: {reason}");
                self.fail_write_on(id, token, &why, wall_ns);
            }
            Some(SessionEvent::Note(text)) => self.log(LogLevel::Debug, text),
            Some(SessionEvent::Warning(text)) => self.log(LogLevel::Warn, text),
        }
        self.session_warning(id);
    }

    /// Connection `id`'s broker sent it to `server` (MQTT 5 server reference): its next attempt
    /// goes there.
    #[cold]
    fn redirected(&mut self, id: LinkId, server: &str) {
        let default_port = match id {
            LinkId::A => self.config.port(),
            LinkId::B => self.config.redundant_port(),
        };
        let (host, port) = server_reference(server, default_port);
        if let Some(link) = self.link_mut(id) {
            link.redirect = Some(Redirect {
                host,
                port,
                tried: false,
            });
        }
    }

    /// Connection `id` was accepted and subscribed. The line becomes connected with its first
    /// ready connection; a redundant line's second one only reports itself (and a Sparkplug
    /// host says online on its broker too).
    #[cold]
    fn link_ready(&mut self, id: LinkId, now: Instant, wall_ns: i64) {
        let line_was_ready = match id {
            LinkId::A => self.is_link_ready(LinkId::B),
            LinkId::B => self.is_link_ready(LinkId::A),
        };
        let redundant = self.redundancy.is_some();
        let Some(link) = self.link_mut(id) else {
            return;
        };
        link.was_ready = true;
        let rejoined = link.ever_ready;
        if link.ever_ready {
            link.counters.reconnects += 1;
        }
        link.ever_ready = true;
        link.counters.state = Some(LineState::Connected);
        let host = link.host.clone().unwrap_or_default();
        if redundant {
            self.events.push_back(Event::Link(LineEvent::Connected {
                host: host.clone(),
                time_ns: wall_ns,
                link: id,
            }));
        }
        if line_was_ready {
            if rejoined {
                self.link_rejoined(id, now);
            }
            self.sparkplug_link_ready(id);
            return;
        }
        if self.ever_ready {
            self.stats.reconnects += 1;
        }
        self.ever_ready = true;
        self.stats.state = Some(LineState::Connected);
        self.start_stale_clocks(now);
        self.events.push_back(Event::Line(LineEvent::Connected {
            host,
            time_ns: wall_ns,
            link: id,
        }));
        for i in self.station_indexes() {
            self.refresh_station(i, "connected to the broker", wall_ns);
        }
        self.sparkplug_connected(id);
        self.edge_ready(wall_ns);
    }

    /// The next packet due at `now`, as the session made it. The shell uses
    /// [`Line::poll_transmit_at`] (through [`Line::poll_transmit_into`]), which also stamps it.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        self.link.session.poll_transmit(now)
    }

    /// The next packet due at `now`, stamped with `wall_ns`, the time it is encoded at: the
    /// time stamps Sparkplug puts in the STATE will and in commands are the moment they are
    /// sent, not that of an earlier call into the line.
    #[inline]
    pub fn poll_transmit_at(&mut self, now: Instant, wall_ns: i64) -> Option<Packet> {
        self.poll_transmit_at_on(LinkId::A, now, wall_ns)
    }

    /// [`Line::poll_transmit_at`] for connection `id`.
    pub fn poll_transmit_at_on(
        &mut self,
        id: LinkId,
        now: Instant,
        wall_ns: i64,
    ) -> Option<Packet> {
        let mut packet = self.link_mut(id)?.session.poll_transmit(now)?;
        self.stamp_sparkplug(id, &mut packet, wall_ns);
        Some(packet)
    }

    /// Encodes every packet due at `now` into `buf`, the shell's send buffer, logging each at
    /// Full Debug. A packet that cannot be encoded is never sent nor counted as sent (see
    /// [`Line::unsendable`]); `Err` is the reason to close the connection.
    #[inline]
    pub fn poll_transmit_into(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        wall_ns: i64,
    ) -> Result<(), Unsendable> {
        self.poll_transmit_into_on(LinkId::A, now, buf, wall_ns)
    }

    /// [`Line::poll_transmit_into`] for connection `id`.
    pub fn poll_transmit_into_on(
        &mut self,
        id: LinkId,
        now: Instant,
        buf: &mut BytesMut,
        wall_ns: i64,
    ) -> Result<(), Unsendable> {
        loop {
            // With Full Debug every packet is logged, so every one takes the general path.
            let full_debug = self.config.full_debug;
            let Some(link) = self.link_mut(id) else {
                return Ok(());
            };
            let next = if full_debug {
                link.session.poll_transmit(now).map(Transmit::Packet)
            } else {
                link.session.poll_transmit_bytes(now)
            };
            let mut packet = match next {
                None => return Ok(()),
                Some(Transmit::PubAck(bytes)) => {
                    buf.extend_from_slice(&bytes);
                    continue;
                }
                Some(Transmit::Packet(packet)) => packet,
            };
            self.stamp_sparkplug(id, &mut packet, wall_ns);
            self.encode(id, &packet, buf)
                .or_else(|e| self.unsendable_on(id, packet, &e, wall_ns))?;
        }
    }

    /// The line closes the connection itself (`why`) at `now` (`wall_ns`): encodes what must go
    /// before (a Sparkplug primary host's offline STATE) and the DISCONNECT into `buf`, and says
    /// how the shell closes the transport.
    pub fn close_deliberately(
        &mut self,
        why: Deliberate,
        buf: &mut BytesMut,
        now: Instant,
        wall_ns: i64,
    ) -> Goodbye {
        self.close_deliberately_on(LinkId::A, why, buf, now, wall_ns)
    }

    /// [`Line::close_deliberately`] for connection `id`.
    pub fn close_deliberately_on(
        &mut self,
        id: LinkId,
        why: Deliberate,
        buf: &mut BytesMut,
        now: Instant,
        wall_ns: i64,
    ) -> Goodbye {
        let said_offline = self.sparkplug_goodbye(id, wall_ns);
        // Held acknowledgements go before the DISCONNECT: the broker would deliver those
        // messages again.
        if let Some(link) = self.link_mut(id) {
            link.session.flush_acks();
        }
        // Closing anyway: a packet that cannot be encoded is only not sent.
        let _ = self.poll_transmit_into_on(id, now, buf, wall_ns);
        // A DISCONNECT is two bytes: it always fits.
        let reason = match id {
            LinkId::A => self.edge_goodbye(buf),
            LinkId::B => None,
        }
        .unwrap_or(DisconnectReasonCode::NormalDisconnection);
        let bye = crate::session::disconnect(reason);
        let _ = self.encode(id, &Packet::Disconnect(bye), buf);
        match said_offline {
            true => Goodbye::for_close(why).awaiting_reply(),
            false => Goodbye::for_close(why),
        }
    }

    /// The Full Debug line of a packet sent or received (`verb`) on connection `id`; a redundant
    /// line names the connection.
    #[cold]
    fn log_packet(&mut self, verb: &str, id: LinkId, packet: &Packet) {
        let text = match self.redundancy {
            Some(_) => format!("{verb} {} ({})", describe(packet), id.name()),
            None => format!("{verb} {}", describe(packet)),
        };
        self.log(LogLevel::Debug, text);
    }

    /// Appends `packet` to `buf`, with a Full Debug log line.
    fn encode(&mut self, id: LinkId, packet: &Packet, buf: &mut BytesMut) -> Result<(), String> {
        if self.config.full_debug {
            self.log_packet("send", id, packet);
        }
        let Some(link) = self.link_ref(id) else {
            return Err("the line has no such connection".into());
        };
        // The broker's Maximum Packet Size bounds writes; the session's own small packets
        // (acknowledgements, SUBSCRIBE, pings) always go, or a broker announcing a tiny limit
        // would make the line unable to acknowledge anything.
        let max = match packet {
            Packet::Publish(_) => link.session.max_outgoing_packet(MAX_OUTGOING_PACKET),
            _ => MAX_OUTGOING_PACKET,
        };
        write_packet(packet, buf, max, link.session.protocol())
    }

    /// The packet just taken from `poll_transmit` could not be encoded (`error` says why), so it
    /// was not sent. A publication's write fails with that reason and the connection goes on;
    /// any other packet is needed for the session, so `Err` gives the reason to close the
    /// connection with.
    pub fn unsendable(
        &mut self,
        packet: Packet,
        error: &str,
        wall_ns: i64,
    ) -> Result<(), Unsendable> {
        self.unsendable_on(LinkId::A, packet, error, wall_ns)
    }

    /// [`Line::unsendable`] for connection `id`.
    pub fn unsendable_on(
        &mut self,
        id: LinkId,
        packet: Packet,
        error: &str,
        wall_ns: i64,
    ) -> Result<(), Unsendable> {
        let what = crate::codec::packet_name(&packet);
        match packet {
            Packet::Publish(p) => {
                let token = self.link_mut(id).and_then(|l| l.session.unsendable(&p));
                if let Some(token) = token {
                    let why = format!("the message cannot be sent: {error}");
                    self.fail_write_on(id, token, &why, wall_ns);
                }
                Ok(())
            }
            _ => Err(Unsendable {
                packet: what,
                reason: error.to_string(),
            }),
        }
    }

    /// Whether the broker accepted the current connection, even if a later packet ended it: the
    /// back-off starts over after such a connection.
    pub fn was_ready(&self) -> bool {
        self.link.was_ready
    }

    /// Handles every whole packet the shell read into `buf` (taking their bytes; the rest of a
    /// packet stays for the next read), logging each at Full Debug. `Err` is the reason to close
    /// the connection.
    #[inline]
    pub fn handle_input(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        self.handle_input_on(LinkId::A, buf, now, wall_ns)
    }

    /// [`Line::handle_input`] for bytes read from connection `id`.
    pub fn handle_input_on(
        &mut self,
        id: LinkId,
        buf: &mut BytesMut,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        let Some(link) = self.link_ref(id) else {
            return Ok(());
        };
        let protocol = link.session.protocol();
        let max = match self.config.v5.options.maximum_packet_size {
            Some(m) if protocol == crate::codec::Protocol::V5 => {
                MAX_INCOMING_PACKET.min(m as usize)
            }
            _ => MAX_INCOMING_PACKET,
        };
        while let Some(len) = frame(buf, max, protocol).map_err(ProtocolError::Malformed)? {
            if buf[0] >> 4 == 3 && !self.config.full_debug {
                if buf[0] & 0b0110 == 0
                    && protocol == crate::codec::Protocol::V311
                    && self.redundancy.is_some()
                {
                    self.take_qos0_v311(id, buf, len, now, wall_ns)?;
                    continue;
                }
                // A message: read and handed on by itself, never moved as a whole `Packet`.
                let p = read_publish(buf.split_to(len).freeze(), protocol)
                    .map_err(ProtocolError::Malformed)?;
                self.handle_publish_on(id, p, now, wall_ns)?;
                continue;
            }
            let packet = read_framed(buf, len, max, protocol).map_err(ProtocolError::Malformed)?;
            if self.config.full_debug {
                self.log_packet("recv", id, &packet);
            }
            self.handle_packet_on(id, packet, now, wall_ns)?;
        }
        if let Some(link) = self.link_mut(id) {
            link.io.partial_read(now, !buf.is_empty());
        }
        Ok(())
    }

    /// After a read of `bytes` from connection `id`, handled at `now`: when the shell reads that
    /// connection again, `None` at once (read_pace.rs: reads under load wait a moment).
    pub fn read_again_at_on(&mut self, id: LinkId, now: Instant, bytes: usize) -> Option<Instant> {
        // The messages the connection brought: its own count on a redundant line (copies
        // included), else the line's.
        let line_received = self.stats.received;
        let redundant = self.redundancy.is_some();
        let link = self.link_mut(id)?;
        let received = if redundant {
            link.counters.received
        } else {
            line_received
        };
        link.pace.after_read(now, bytes, received)
    }

    /// Bytes were handed to the socket at `now`; the broker must take them within the reply
    /// timeout, until [`Line::flushed`].
    #[inline]
    pub fn bytes_pending(&mut self, now: Instant) {
        self.bytes_pending_on(LinkId::A, now);
    }

    /// [`Line::bytes_pending`] for connection `id`.
    pub fn bytes_pending_on(&mut self, id: LinkId, now: Instant) {
        if let Some(link) = self.link_mut(id) {
            link.io.bytes_pending(now);
        }
    }

    /// Everything taken from `poll_transmit` is on the socket.
    #[inline]
    pub fn flushed(&mut self, wall_ns: i64) {
        self.flushed_on(LinkId::A, wall_ns);
    }

    /// [`Line::flushed`] for connection `id`.
    pub fn flushed_on(&mut self, id: LinkId, wall_ns: i64) {
        let Some(link) = self.link_mut(id) else {
            return;
        };
        link.io.flushed();
        for token in link.session.flushed() {
            self.complete_write(token, wall_ns);
        }
    }

    /// The earliest deadline of the line and of connection A: the shell calls
    /// [`Line::handle_timeout`] then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.poll_timeout_on(LinkId::A)
    }

    /// The earliest deadline of the line and of connection `id`. The line's own timers (ACK_ID
    /// warnings, STALE, Sparkplug, SAS) are fired by one connection loop, not both: see
    /// [`Line::serves_line_timers`].
    pub fn poll_timeout_on(&self, id: LinkId) -> Option<Instant> {
        let link = self.link_ref(id)?;
        let own = [
            link.session.poll_timeout(),
            link.io.poll_timeout(self.config.reply_timeout),
        ]
        .into_iter()
        .flatten()
        .min();
        if !self.serves_line_timers(id) {
            return own;
        }
        let unconfirmed = self
            .gated_stations
            .iter()
            .filter_map(|&i| self.stations[i].gate.warning_deadline())
            .min();
        [
            own,
            unconfirmed,
            self.stale_clock.next(),
            self.sparkplug_timeout(),
            self.sas_timeout(),
            self.rejoin_deadline(),
            self.retired_b.as_ref().map(|_| self.created),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether connection `id`'s loop fires the line's own timers: A's, unless A is not ready
    /// (on a redundant line B then carries the line). While A is connecting both may fire them,
    /// which is harmless: each timer fires what is due at the time given, once.
    fn serves_line_timers(&self, id: LinkId) -> bool {
        id == LinkId::A || !self.link.session.is_ready()
    }

    /// Reading was paused for `d` (the host's queue was full): see [`Session::postpone`].
    pub fn postpone(&mut self, d: std::time::Duration) {
        self.postpone_on(LinkId::A, d);
    }

    /// [`Line::postpone`] for connection `id`; the line's STALE clocks move with the connection
    /// that serves the line's timers.
    pub fn postpone_on(&mut self, id: LinkId, d: std::time::Duration) {
        if self.serves_line_timers(id) {
            self.postpone_stale_clocks(d);
        }
        if let Some(link) = self.link_mut(id) {
            link.io.postpone(d);
            link.session.postpone(d);
        }
    }

    /// Fires what is due at `now` (`wall_ns` stamps the events); `Err` is the reason to close
    /// the connection (the transport's deadlines first, then the session's reply timeouts).
    pub fn handle_timeout(&mut self, now: Instant, wall_ns: i64) -> Result<(), ProtocolError> {
        self.handle_timeout_on(LinkId::A, now, wall_ns)
    }

    /// [`Line::handle_timeout`] for connection `id`; the line's own timers fire with the
    /// connection that serves them.
    pub fn handle_timeout_on(
        &mut self,
        id: LinkId,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        let reply_timeout = self.config.reply_timeout;
        let Some(link) = self.link_mut(id) else {
            return Ok(());
        };
        link.io.check(now, reply_timeout)?;
        if self.serves_line_timers(id) {
            self.warn_unconfirmed(now);
            self.check_stale(now, wall_ns);
            self.sparkplug_timers(now, wall_ns);
            self.sas_timers(now);
            self.end_rejoin(now);
            self.settle_retired_b(now, wall_ns);
        }
        match self.link_mut(id) {
            Some(link) => link.session.handle_timeout(now),
            None => Ok(()),
        }
    }

    /// Every station's index, in the order they were added.
    fn station_indexes(&self) -> impl Iterator<Item = StationIndex> {
        (0..self.stations.len()).map(StationIndex)
    }

    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

/// A server reference (MQTT 5 4.11): the first of its space-separated entries, as `host` or
/// `host:port` (`[v6]:port` for IPv6); the line's port when none is given.
fn server_reference(reference: &str, default_port: u16) -> (String, u16) {
    let first = reference.split_whitespace().next().unwrap_or_default();
    if let Some(rest) = first.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            let port = tail.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host.to_string(), port.unwrap_or(default_port));
        }
    }
    match first.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(p) => (host.to_string(), p),
            Err(_) => (first.to_string(), default_port),
        },
        _ => (first.to_string(), default_port),
    }
}
