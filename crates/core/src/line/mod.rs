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
mod reading;
mod sas;
mod sparkplug;
mod stale;
mod station_state;
mod stats;
mod topology;
mod writes;

pub use edge::EdgeFiles;
use stats::StationCounters;
pub use stats::{LineState, LineStats, StationStats};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crate::ack_gate::AckGate;
use bytes::BytesMut;

use crate::codec::{describe, read_packet, write_packet, DisconnectReasonCode, Packet};
use crate::config::LineConfig;
use crate::connection::{Attempt, Closing, Deliberate, Ended, Goodbye, IoDeadlines, Reconnect};
use crate::event::{Event, LineEvent, LogLevel};
use crate::ids::{indexes, StationId, StationIndex, TagId, TagIndex, WriteToken};
use crate::json_extract::Found;
use crate::json_path::JsonPath;
use crate::json_plan::JsonPlan;
use crate::params::Secret;
use crate::payload::PayloadSettings;
use crate::routing::{FxMap, Router};
use crate::session::{ProtocolError, Session, SessionEvent};
use crate::stale::StaleClock;
use crate::station::{StationCommand, StationParams, StationState};
use crate::tag::TagAddress;
use crate::value::ValueType;

struct Station {
    id: StationId,
    name: String,
    address: String,
    params: StationParams,
    payload: PayloadSettings,
    /// The station has JA= tags, so JSON payloads are parsed for it.
    json_tags: bool,
    /// What is read from a JSON payload in one pass: its JA= addresses in tag order, the time
    /// field, the selected items' time and quality. Stations with the same addresses share one.
    extract: Arc<JsonPlan>,
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
    session: Session,
    events: VecDeque<Event>,
    started: bool,
    host: Option<String>,
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
    /// Host rotation and back-off.
    reconnect: Reconnect,
    /// Half-read packets and writes the broker does not take.
    io: IoDeadlines,
    /// The broker accepted the current connection at some point (it may be closing now); false
    /// again once its end was reported (`connection_ended`), so a failed attempt after it does
    /// not count as ready.
    was_ready: bool,
    /// The connection that closed, when the broker had accepted it: its host and why it ended,
    /// for the log line `connection_ended` writes.
    closed: Option<(String, String)>,
    /// Some connection was ready before: the next ready one is a reconnect.
    ever_ready: bool,
    /// The Sparkplug B host's state, when the payload type is Sparkplug B.
    sparkplug: Option<Box<crate::sparkplug::Host>>,
    /// The Sparkplug edge node, when the payload type is Sparkplug Edge Node (line/edge.rs).
    edge: Option<Box<edge::Edge>>,
    /// A server reference from the broker (MQTT 5 0x9C/0x9D): the next attempt goes there.
    redirect: Option<Redirect>,
    /// `auth = azure-sas`: when the connection's token is renewed.
    sas: sas::SasRenewal,
    /// `compress_writes`: the deflate state, made at the first compressed write.
    gzip_writer: Option<Box<crate::gzip::GzipWriter>>,
}

/// Where a broker sent the line, and whether the attempt there was made.
struct Redirect {
    host: String,
    port: u16,
    tried: bool,
}

impl Line {
    pub fn new(name: &str, config: LineConfig, now: Instant) -> Line {
        Line {
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
            session: Session::new(now),
            events: VecDeque::new(),
            started: false,
            host: None,
            writes: FxMap::default(),
            next_token: 1,
            stats: LineStats::default(),
            trace_routing: false,
            stale_clock: StaleClock::default(),
            extracted: Vec::new(),
            json_paths: HashMap::new(),
            reconnect: Reconnect::default(),
            io: IoDeadlines::default(),
            was_ready: false,
            closed: None,
            ever_ready: false,
            sparkplug: None,
            edge: None,
            redirect: None,
            sas: sas::SasRenewal::default(),
            gzip_writer: None,
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

    pub fn is_ready(&self) -> bool {
        self.session.is_ready()
    }

    /// Where to connect at `now`, or until when to back off; `None` once the line was stopped.
    /// A server reference from the broker is tried first, once.
    pub fn next_attempt(&mut self, now: Instant) -> Option<Attempt<'_>> {
        let port = self.config.port();
        let hosts = &self.config.hosts;
        let attempt = self
            .reconnect
            .next_attempt(now, hosts, port, self.config.reply_timeout);
        if let Some(Attempt::Connect { .. }) = attempt {
            self.stats.connection_attempts += 1;
        }
        match (attempt, &mut self.redirect) {
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
        let was_ready = std::mem::take(&mut self.was_ready);
        if let Some((host, reason)) = self.closed.take() {
            let level = match ended {
                Ended::Lost => LogLevel::Warn,
                Ended::Deliberate(_) => LogLevel::Info,
            };
            self.log(level, format!("connection to {host} ended: {reason}"));
        }
        let redirected = self.redirect.as_ref().is_some_and(|r| r.tried);
        if redirected || matches!(ended, Ended::Deliberate(_)) {
            self.redirect = None;
        }
        if redirected && ended == Ended::Lost {
            // The attempt at the server reference was an extra one: the rotation (which counted
            // the connection that sent the line there) goes on where it was.
            return;
        }
        let hosts = self.config.hosts.len();
        self.reconnect
            .connection_ended(now, ended, was_ready, hosts);
    }

    /// New parameters: the next attempt goes to the first host at once, with no back-off.
    pub fn restart_connection(&mut self) {
        self.redirect = None;
        self.reconnect.restart();
    }

    /// A transport to `host` is open: the session starts with CONNECT.
    pub fn transport_open(&mut self, host: &str, password: &Secret, now: Instant) {
        self.open_session(host, password, None, now);
    }

    /// Queues CONNECT on a transport to `host`, with `user_name` instead of the configured one
    /// when given (an Azure SAS connection, line/sas.rs).
    fn open_session(
        &mut self,
        host: &str,
        password: &Secret,
        user_name: Option<String>,
        now: Instant,
    ) {
        self.host = Some(host.to_string());
        self.io = IoDeadlines::default();
        self.was_ready = false;
        self.closed = None;
        let will_ms = self.sparkplug_will_ms();
        let mut session = self.config.session_at(will_ms);
        self.subscriptions_into(&mut session);
        self.edge_session(&mut session);
        if let Some(user_name) = user_name {
            session.user_name = user_name;
        }
        self.session.connect(&session, password, now);
    }

    /// The transport closed, or an attempt to open one failed.
    pub fn transport_closed(&mut self, reason: &str, wall_ns: i64) {
        let was_ready = self.session.is_ready();
        if self.was_ready {
            let host = self.host.clone().unwrap_or_default();
            self.closed = Some((host, reason.to_string()));
        }
        self.edge_clock(wall_ns);
        self.edge_disconnected();
        for token in self.session.disconnected() {
            self.fail_write(
                token,
                "the connection to the broker was lost before the broker acknowledged the message",
                wall_ns,
            );
        }
        self.host = None;
        self.sas_closed();
        self.stop_stale_clocks();
        self.stats.state = Some(LineState::Disconnected);
        if let Some(sp) = self.sparkplug.as_mut() {
            sp.clock_ns = wall_ns;
        }
        self.events.push_back(Event::Line(LineEvent::Disconnected {
            reason: reason.to_string(),
            time_ns: wall_ns,
        }));
        if was_ready {
            for i in self.station_indexes() {
                self.refresh_station(i, reason, wall_ns);
            }
        }
    }

    pub fn handle_packet(
        &mut self,
        packet: Packet,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        let event = match self.session.handle(packet, now) {
            Ok(event) => event,
            Err(e) => {
                if let ProtocolError::Redirected { server, .. } = &e {
                    let (host, port) = server_reference(server, self.config.port());
                    self.redirect = Some(Redirect {
                        host,
                        port,
                        tried: false,
                    });
                }
                return Err(e);
            }
        };
        match event {
            None => {}
            Some(SessionEvent::Ready { .. }) => {
                self.was_ready = true;
                if self.ever_ready {
                    self.stats.reconnects += 1;
                }
                self.ever_ready = true;
                self.stats.state = Some(LineState::Connected);
                self.start_stale_clocks(now);
                let host = self.host.clone().unwrap_or_default();
                self.events.push_back(Event::Line(LineEvent::Connected {
                    host,
                    time_ns: wall_ns,
                }));
                for i in self.station_indexes() {
                    self.refresh_station(i, "connected to the broker", wall_ns);
                }
                self.sparkplug_connected();
                self.edge_ready(wall_ns);
            }
            Some(SessionEvent::Message(p)) => self.deliver(p, now, wall_ns),
            Some(SessionEvent::Published(token)) => self.complete_write(token, wall_ns),
            Some(SessionEvent::Refused(token, reason)) => {
                let why = format!("the broker refused the message: {reason}");
                self.fail_write(token, &why, wall_ns);
            }
            Some(SessionEvent::Note(text)) => self.log(LogLevel::Debug, text),
            Some(SessionEvent::Warning(text)) => self.log(LogLevel::Warn, text),
        }
        if let Some(text) = self.session.take_warning() {
            self.log(LogLevel::Warn, text);
        }
        Ok(())
    }

    /// The next packet due at `now`, as the session made it. The shell uses
    /// [`Line::poll_transmit_at`] (through [`Line::poll_transmit_into`]), which also stamps it.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        self.session.poll_transmit(now)
    }

    /// The next packet due at `now`, stamped with `wall_ns`, the time it is encoded at: the
    /// time stamps Sparkplug puts in the STATE will and in commands are the moment they are
    /// sent, not that of an earlier call into the line.
    pub fn poll_transmit_at(&mut self, now: Instant, wall_ns: i64) -> Option<Packet> {
        let mut packet = self.session.poll_transmit(now)?;
        self.stamp_sparkplug(&mut packet, wall_ns);
        Some(packet)
    }

    /// Encodes every packet due at `now` into `buf`, the shell's send buffer, logging each at
    /// Full Debug. A packet that cannot be encoded is never sent nor counted as sent (see
    /// [`Line::unsendable`]); `Err` is the reason to close the connection.
    pub fn poll_transmit_into(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        wall_ns: i64,
    ) -> Result<(), Unsendable> {
        while let Some(packet) = self.poll_transmit_at(now, wall_ns) {
            self.encode(&packet, buf)
                .or_else(|e| self.unsendable(packet, &e, wall_ns))?;
        }
        Ok(())
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
        let said_offline = self.sparkplug_goodbye(wall_ns);
        // Closing anyway: a packet that cannot be encoded is only not sent.
        let _ = self.poll_transmit_into(now, buf, wall_ns);
        // A DISCONNECT is two bytes: it always fits.
        let reason = self
            .edge_goodbye(buf)
            .unwrap_or(DisconnectReasonCode::NormalDisconnection);
        let bye = crate::session::disconnect(reason);
        let _ = self.encode(&Packet::Disconnect(bye), buf);
        match said_offline {
            true => Goodbye::for_close(why).awaiting_reply(),
            false => Goodbye::for_close(why),
        }
    }

    /// Appends `packet` to `buf`, with a Full Debug log line.
    fn encode(&mut self, packet: &Packet, buf: &mut BytesMut) -> Result<(), String> {
        if self.config.full_debug {
            self.log(LogLevel::Debug, format!("send {}", describe(packet)));
        }
        // The broker's Maximum Packet Size bounds writes; the session's own small packets
        // (acknowledgements, SUBSCRIBE, pings) always go, or a broker announcing a tiny limit
        // would make the line unable to acknowledge anything.
        let max = match packet {
            Packet::Publish(_) => self.session.max_outgoing_packet(MAX_OUTGOING_PACKET),
            _ => MAX_OUTGOING_PACKET,
        };
        write_packet(packet, buf, max, self.session.protocol())
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
        let what = crate::codec::packet_name(&packet);
        match packet {
            Packet::Publish(p) => {
                if let Some(token) = self.session.unsendable(&p) {
                    let why = format!("the message cannot be sent: {error}");
                    self.fail_write(token, &why, wall_ns);
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
        self.was_ready
    }

    /// Handles every whole packet the shell read into `buf` (taking their bytes; the rest of a
    /// packet stays for the next read), logging each at Full Debug. `Err` is the reason to close
    /// the connection.
    pub fn handle_input(
        &mut self,
        buf: &mut BytesMut,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ProtocolError> {
        let protocol = self.session.protocol();
        let max = match self.config.v5.options.maximum_packet_size {
            Some(m) if protocol == crate::codec::Protocol::V5 => {
                MAX_INCOMING_PACKET.min(m as usize)
            }
            _ => MAX_INCOMING_PACKET,
        };
        while let Some(packet) =
            read_packet(buf, max, protocol).map_err(ProtocolError::Malformed)?
        {
            if self.config.full_debug {
                self.log(LogLevel::Debug, format!("recv {}", describe(&packet)));
            }
            self.handle_packet(packet, now, wall_ns)?;
        }
        self.io.partial_read(now, !buf.is_empty());
        Ok(())
    }

    /// Bytes were handed to the socket at `now`; the broker must take them within the reply
    /// timeout, until [`Line::flushed`].
    pub fn bytes_pending(&mut self, now: Instant) {
        self.io.bytes_pending(now);
    }

    /// Everything taken from `poll_transmit` is on the socket.
    pub fn flushed(&mut self, wall_ns: i64) {
        self.io.flushed();
        for token in self.session.flushed() {
            self.complete_write(token, wall_ns);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let unconfirmed = self
            .gated_stations
            .iter()
            .filter_map(|&i| self.stations[i].gate.warning_deadline())
            .min();
        [
            self.session.poll_timeout(),
            unconfirmed,
            self.io.poll_timeout(self.config.reply_timeout),
            self.stale_clock.next(),
            self.sparkplug_timeout(),
            self.sas_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Reading was paused for `d` (the host's queue was full): see [`Session::postpone`].
    pub fn postpone(&mut self, d: std::time::Duration) {
        self.io.postpone(d);
        self.postpone_stale_clocks(d);
        self.session.postpone(d)
    }

    /// Fires what is due at `now` (`wall_ns` stamps the events); `Err` is the reason to close
    /// the connection (the transport's deadlines first, then the session's reply timeouts).
    pub fn handle_timeout(&mut self, now: Instant, wall_ns: i64) -> Result<(), ProtocolError> {
        self.io.check(now, self.config.reply_timeout)?;
        self.warn_unconfirmed(now);
        self.check_stale(now, wall_ns);
        self.sparkplug_timers(now, wall_ns);
        self.sas_timers(now);
        self.session.handle_timeout(now)
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
