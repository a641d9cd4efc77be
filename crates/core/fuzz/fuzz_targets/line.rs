//! The whole line, driven as the plugin's shell drives it: a fixed set of stations (exact, regex
//! and `.*` addresses, a JSON station, an ACK_ID station, outputs) on a fuzz-chosen line
//! configuration, with one connection or, when the first byte says so, two (a redundant line:
//! `redundant_host`, issue 21), then an interleaving decoded from the input of transport opens
//! and closes, broker packets (each addressed to connection A or B; the same publication through
//! both, as a dual-homed gateway sends it), host writes, ACK_ID confirmations, station commands,
//! parameter changes, time steps and transmissions. After every step it checks what the line
//! promises (docs/fuzzing.md): every accepted write ends in exactly one write-done, whichever
//! connection is closed; no PUBACK/PUBREC leaves on either connection for a message of the gated
//! station (or its copy through the other connection) before the host confirmed it; the gated
//! station shows each of its messages once, a copy through the other connection within
//! `redundant_window` not at all, in the order of the reference model below; ACK_ID is accepted
//! exactly when it names the shown message; events and packets per step stay within a bound
//! proportional to the input; a handled timeout leaves no deadline in the past. At the end
//! well-behaved brokers take every connection back, every shown message is confirmed and
//! acknowledged on the connection(s) it came through, and once the transports close no write is
//! left without its write-done.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mqtt_line_core::mqtt::{
    conn_ack, sub_ack, write_packet, ConnectReturnCode, Packet, PingReq, PingResp, Protocol,
    PubAck, PubComp, PubRec, PubRel, Publish, QoS, SubscribeReasonCode, UnsubAck,
};
use mqtt_line_core::Event;
use mqtt_line_core::Secret;
use mqtt_line_core::{
    Line, LineConfig, LinkId, StationCommand, StationId, TagId, Value, ValueType,
};

/// `MAX_HOLD_WINDOWS` of line/rejoin.rs: the longest hold after a rejoin, in windows.
const MAX_HOLD_WINDOWS: u32 = 30;

/// (id, name, address, station parameters).
const STATIONS: &[(u64, &str, &str, &[(&str, &str)])] = &[
    (
        1,
        "exact",
        "plant/a",
        &[("swt", "dev/a/will"), ("swp", "gone")],
    ),
    (2, "regex", "plant/r.*", &[("STALE", "0.5")]),
    (
        3,
        "json",
        "json/1",
        &[("payload_type", "JSON"), ("time_field_name", "ts")],
    ),
    (GATE_STATION, "gate", GATE_TOPIC, &[]),
    (5, "all", ".*", &[]),
];

/// (station, id, address, type, default).
const TAGS: &[(u64, u64, &str, ValueType, Option<&str>)] = &[
    (1, 10, "IN_TOPIC", ValueType::TxtI, None),
    (1, 11, "IN_DATA", ValueType::TxtI, None),
    (1, 12, "IN_ID", ValueType::Ci, None),
    (1, 13, "OUT_TOPIC", ValueType::TxtO, Some("cmd/a")),
    (1, 14, "OUT_VALUE", ValueType::TxtO, None),
    (2, 20, "IN_DATA", ValueType::Ai, None),
    (2, 21, "OUT_TOPIC", ValueType::TxtO, None),
    (2, 22, "OUT_VALUE", ValueType::Ao, None),
    (3, 30, "JA=temp", ValueType::Ai, None),
    (3, 31, "JA=status.ok", ValueType::Di, None),
    (3, 32, "JA=list[1]", ValueType::TxtI, None),
    (3, 34, r#"JA=items[id="a"].v"#, ValueType::Ai, None),
    (3, 33, "IN_DATA", ValueType::TxtI, None),
    (GATE_STATION, 40, "IN_TOPIC", ValueType::TxtI, None),
    (GATE_STATION, 41, "IN_DATA", ValueType::TxtI, None),
    (GATE_STATION, GATE_IN_ID, "IN_ID", ValueType::Ci, None),
    (GATE_STATION, GATE_ACK_ID, "ACK_ID", ValueType::Co, None),
    (
        GATE_STATION,
        44,
        "OUT_TOPIC",
        ValueType::TxtO,
        Some("gate/out"),
    ),
    (GATE_STATION, 45, "OUT_VALUE", ValueType::Co, None),
    (5, 50, "IN_TOPIC", ValueType::TxtI, None),
    (5, 51, "IN_DATA", ValueType::Qi, None),
];

const GATE_STATION: u64 = 4;
const GATE_TOPIC: &str = "gate/1";
const GATE_IN_ID: u64 = 42;
const GATE_ACK_ID: u64 = 43;
/// Messages for the gated station get fresh packet ids from here up, never shared with other
/// messages: a message under the same id whose flow is still open is the same message to MQTT,
/// and may rightly be acknowledged without a new confirmation.
const GATE_PKID_BASE: u16 = 30_000;
/// Tag ids the host may write besides ACK_ID (inputs too, which must fail), and an unknown one.
const WRITABLE: &[u64] = &[13, 14, 21, 22, 44, 45, 11, 30, 99];
const UNKNOWN_TAG: u64 = 99;
const MAX_STEPS: usize = 400;
/// Publications remembered for a copy through the other connection (or a repeat).
const RECENT: usize = 8;

const TOPICS: &[&str] = &[
    "plant/a",
    "plant/r1",
    "plant/rx/y",
    "json/1",
    GATE_TOPIC,
    "dev/a/will",
    "other/x",
];
const PAYLOADS: &[&[u8]] = &[
    b"42",
    br#"{"items":[{"v":1},{"id":"a","v":2.5}],"ts":"2024-05-01T12:00:00Z"}"#,
    b"1.5,1714564800000,1",
    // {"temp":1,"items":[{"id":"a","v":2}]}, gzip-compressed.
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\x2a\x49\xcd\x2d\x50\xb2\x32\xd4\x51\xca\x04\xb2\x8a\x95\xac\xa2\xab\x95\x32\x53\x94\xac\x94\x12\x95\x74\x94\xca\x94\xac\x8c\x6a\x63\x6b\x01\x33\x3b\x1e\xa8\x25\x00\x00\x00",
    b"12.5",
    b"gone",
    br#"{"temp":21.5,"status":{"ok":true},"list":["a"],"ts":"2024-05-01T12:00:00Z"}"#,
    br#"{"temp":"hot","status":[1],"ts":12}"#,
    b"{}",
    b"not json",
    b"\xff\xfe",
    b"",
];
/// Line parameters and values for the configuration and for changes at run time, some invalid.
const PARAMS: &[(&str, &[&str])] = &[
    ("clean_session", &["YES", "NO", "maybe"]),
    ("publish_qos", &["QoS_0", "QoS_1", "QoS_2", "QoS_3"]),
    ("subscribe_qos", &["QoS_0", "QoS_1", "QoS_2"]),
    ("keep_alive", &["0", "5", "60", "-1"]),
    ("ping_interval", &["0", "3", "3601"]),
    ("reply_timeout", &["0", "2", "10"]),
    ("topic_filter", &["#", "plant/#", "a/#/b"]),
    ("publish_retain", &["YES", "NO"]),
    ("payload_type", &["JSON", "Text only", "CSV"]),
    ("max_decompressed_size", &["0", "16", "65536"]),
    ("time_field_name", &["ts", "[", ""]),
    ("client_id", &["fuzz", ""]),
    ("protocol_version", &["3.1.1", "5", "6"]),
    ("message_expiry_interval", &["0", "30"]),
];
/// A redundant line's own parameters, at the start and as changes at run time (an empty
/// `redundant_host` takes connection B away; `0` is refused).
const REDUNDANT_PARAMS: &[(&str, &[&str])] = &[
    ("redundant_window", &["0.5", "2", "30", "0"]),
    ("redundant_host", &["b", "b1;b2", ""]),
];
/// Payloads a device repeats: the same message twice is two messages (duplicates.rs).
const REPEATS: &[&[u8]] = &[b"r1", b"r2"];

/// What the harness knows of one connection and of its broker's session.
struct Conn {
    open: bool,
    /// The session's clean-session flag, taken from the configuration when it last connected.
    clean: bool,
    /// The protocol it last connected with: another one is another session.
    protocol: Option<Protocol>,
    /// QoS 1/2 messages of the gated station (and copies of them kept with their original) in
    /// the current broker session that the host has not confirmed: no PUBACK or PUBREC may leave
    /// for them on this connection. By packet id, with their QoS and payload (for redelivery).
    blocked: BTreeMap<u16, (QoS, Bytes)>,
    /// Blocked ids the broker sent PUBREL for (a protocol violation that ends the flow early):
    /// not redelivered, since the session rightly takes them as new messages afterwards.
    released: BTreeSet<u16>,
    last_subscribe: u16,
    last_unsubscribe: u16,
    /// Packet ids of the line's own QoS 1/2 PUBLISHes on this connection, for the broker's
    /// answers.
    sent: Vec<u16>,
    /// This connection was ready once (the core's `Link::ever_ready`): its next ready connection
    /// is a rejoin when the other one is ready.
    ever_ready: bool,
    /// At the end: the unconfirmed messages the broker delivered again, whose PUBACK or PUBREC
    /// must leave on this connection once the host has confirmed them.
    must_ack: BTreeSet<u16>,
    /// Messages of the gated station (and kept copies) the host confirmed in the current broker
    /// session whose PUBACK or PUBREC has not been seen leaving, with whether the transport was
    /// open then (an acknowledgement queued and lost with the connection leaves a QoS 1 message
    /// new to the session again). The broker delivers them again at the end.
    confirmed: BTreeMap<u16, (QoS, Bytes, bool)>,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            open: false,
            clean: false,
            protocol: None,
            blocked: BTreeMap::new(),
            released: BTreeSet::new(),
            last_subscribe: 1,
            last_unsubscribe: 1,
            sent: Vec::new(),
            ever_ready: false,
            must_ack: BTreeSet::new(),
            confirmed: BTreeMap::new(),
        }
    }
}

/// A message the gated station took (an original, not a copy).
struct GateMsg {
    pkid: u16,
    link: LinkId,
    /// On a redundant line: its payload (the topic is the gated station's) and its number among
    /// the rule's originals, for a copy through the other connection to match it while the rule
    /// remembers it, once (`matched`).
    payload: Option<Bytes>,
    seq: u64,
    matched: bool,
    /// The copy through the other connection, kept with it: (connection, packet id) when QoS
    /// 1/2, acknowledged when this one is confirmed.
    twin: Option<(LinkId, u16)>,
}

/// What the duplicate rule made of a message: an original with its number, or a copy of the
/// original with that number.
enum Taken {
    Original(u64),
    Copy(u64),
}

/// An original the duplicate rule remembers (duplicates.rs): a message of the gated station's
/// topic through `link` at `at`, matched by at most one copy through the other connection
/// within `redundant_window` (as it is now) from then.
struct Original {
    topic: Bytes,
    payload: Bytes,
    link: LinkId,
    at: Instant,
    matched: bool,
    seq: u64,
}

/// The reference model of the gated station on a line with one or two connections: the
/// duplicate rule, the line's hold of a rejoined connection's messages, the held queue in the
/// order the station shows it, the shown message.
#[derive(Default)]
struct GateModel {
    msgs: Vec<GateMsg>,
    held: VecDeque<usize>,
    shown: Option<usize>,
    originals: Vec<Original>,
    /// Originals numbered so far, and forgotten (they leave in arrival order).
    taken: u64,
    forgotten: u64,
    /// The connection that rejoined, until when its messages are held ahead (`None`: at once,
    /// the other connection was lost), and when it rejoined.
    rejoined: Option<(LinkId, Option<Instant>, Instant)>,
    /// The rejoined connection's originals (every topic) held ahead at the line, before any
    /// station (line/rejoin.rs, `RejoinHold::ahead`), oldest first: their number, and the
    /// message when it is the gated station's. They reach the station only when released.
    ahead: VecDeque<(u64, Option<GateMsg>)>,
    /// Connection B was taken away with messages held ahead: they are released before the
    /// next packet or line timer (`Line::settle_retired_b`).
    retired: bool,
    /// An original's window ended unmatched (for the seeds' choice).
    expired_copy: bool,
}

impl GateModel {
    /// A message with `payload` through `link` at `now`: a copy of an original of the other
    /// connection (the oldest unmatched one within its window), or an original itself.
    fn take(
        &mut self,
        link: LinkId,
        topic: &Bytes,
        payload: &Bytes,
        now: Instant,
        window: Duration,
    ) -> Taken {
        self.forget(now, window);
        if let Some(o) = self
            .originals
            .iter_mut()
            .find(|o| !o.matched && o.link != link && o.payload == *payload && o.topic == *topic)
        {
            o.matched = true;
            return Taken::Copy(o.seq);
        }
        let seq = self.taken;
        self.taken += 1;
        self.originals.push(Original {
            topic: topic.clone(),
            payload: payload.clone(),
            link,
            at: now,
            matched: false,
            seq,
        });
        Taken::Original(seq)
    }

    /// The rule forgets the originals whose window has ended whenever a message comes (any
    /// topic): a longer window later does not bring them back.
    fn forget(&mut self, now: Instant, window: Duration) {
        if self
            .originals
            .iter()
            .any(|o| now >= o.at + window && !o.matched && o.topic == GATE_TOPIC.as_bytes())
        {
            self.expired_copy = true;
        }
        self.originals.retain(|o| now < o.at + window);
        self.forgotten = self.originals.first().map_or(self.taken, |o| o.seq);
    }

    /// The rule starts over (connection B came or went): it remembers nothing.
    fn forget_all(&mut self) {
        self.originals.clear();
        self.forgotten = self.taken;
    }

    /// The station takes a message, behind the others.
    fn offer(&mut self, m: GateMsg) {
        self.held.push_back(self.msgs.len());
        self.msgs.push(m);
    }

    /// The messages held ahead that are released: with `through` (a copy of the original with
    /// that number came through the other connection) those up to it, when it is held ahead;
    /// without, all of them.
    fn release(&mut self, through: Option<u64>) -> Vec<(u64, Option<GateMsg>)> {
        let n = match through {
            None => self.ahead.len(),
            Some(seq) => match self.ahead.iter().position(|(s, _)| *s == seq) {
                Some(j) => j + 1,
                None => 0,
            },
        };
        self.ahead.drain(..n).collect()
    }

    /// A copy with `payload` came through `link`: it goes with the oldest shown or held message
    /// of that payload from the other connection that no copy matched yet and that the rule
    /// still remembers (ack_gate.rs, `attach_twin`), kept with it when QoS 1/2 (`twin`). False
    /// when there is none (the message was confirmed, or dropped): the copy is acknowledged at
    /// once.
    fn attach(&mut self, link: LinkId, payload: &Bytes, twin: Option<(LinkId, u16)>) -> bool {
        let msgs = &self.msgs;
        let forgotten = self.forgotten;
        let fits = |m: usize| {
            let m = &msgs[m];
            m.link != link
                && m.payload.as_ref() == Some(payload)
                && !m.matched
                && m.seq >= forgotten
        };
        let m = match self.shown.filter(|&m| fits(m)) {
            Some(m) => m,
            None => {
                let Some(j) = self.held.iter().position(|&h| fits(h)) else {
                    return false;
                };
                self.held[j]
            }
        };
        self.msgs[m].matched = true;
        self.msgs[m].twin = twin;
        twin.is_some()
    }

    /// `Line::backlog_seen`: an original through `from`, the connection that did not rejoin,
    /// is its backlog from the outage: the hold goes on a window after it, at most
    /// `MAX_HOLD_WINDOWS` after the rejoin, unless it is over already.
    fn backlog_seen(&mut self, from: LinkId, now: Instant, window: Duration) {
        if let Some((link, Some(until), since)) = self.rejoined.as_mut() {
            if *link != from && *until > now {
                *until = (*until)
                    .max(now + window)
                    .min(*since + window * MAX_HOLD_WINDOWS);
            }
        }
    }

    /// `Line::end_rejoin`: whether the rejoin is over (its time is up), so that the messages
    /// held ahead stop waiting.
    fn end_rejoin(&mut self, now: Instant) -> bool {
        let over = self
            .rejoined
            .is_some_and(|(_, until, _)| until.is_none_or(|u| now >= u));
        if over {
            self.rejoined = None;
        }
        over
    }

    fn is_ahead(&self, link: LinkId) -> bool {
        self.rejoined.is_some_and(|(l, _, _)| l == link)
    }

    /// The station showed IN_ID `value`: the next held message, never one held ahead.
    fn shown_now(&mut self, value: &Value) {
        assert!(
            self.shown.is_none(),
            "IN_ID {value:?} shown while {:?} waits for ACK_ID",
            self.shown.map(|m| self.msgs[m].pkid)
        );
        let next = self.held.pop_front();
        let expected = next.map(|m| Value::Int(self.msgs[m].pkid.into()));
        let pkid = |m: &GateMsg| Value::Int(m.pkid.into());
        // (QoS 0 messages share IN_ID 0: only a value other than the expected one tells.)
        assert!(
            expected.as_ref() == Some(value)
                || !self
                    .ahead
                    .iter()
                    .filter_map(|(_, m)| m.as_ref().map(pkid))
                    .any(|v| v == *value),
            "IN_ID {value:?} shown while it waits behind the other connection's messages"
        );
        assert_eq!(
            Some(value.clone()),
            expected,
            "the gated station shows its messages once each, in order (held: {:?})",
            self.held
                .iter()
                .map(|&m| self.msgs[m].pkid)
                .collect::<Vec<_>>()
        );
        self.shown = next;
    }
}

/// A publication fed in, for a copy through the other connection or a repeat.
#[derive(Clone)]
struct Recent {
    topic: String,
    payload: Bytes,
    qos: QoS,
}

struct Harness {
    line: Line,
    now: Instant,
    /// The first byte chose a redundant line: steps choose a connection, and the redundant
    /// parameters may change.
    redundant: bool,
    /// Connection B came or went at run time: its counters start over.
    b_changed: bool,
    conns: [Conn; 2],
    commands: HashMap<u64, StationCommand>,
    /// Request ids of accepted writes without their write-done yet.
    pending: BTreeSet<u64>,
    /// ACK_ID writes: request id -> the id written.
    ack_writes: HashMap<u64, i64>,
    next_request: u64,
    gate: GateModel,
    next_gate_pkid: u16,
    next_unique: u32,
    recent: VecDeque<Recent>,
    /// Packets fed in and writes accepted so far: what bounds the packets queued.
    fed: usize,
    /// The end: a well-behaved broker delivers the unconfirmed messages again on a session
    /// that is present.
    finishing: bool,
    /// What the input reached, printed with `FUZZ_TRACE` (to pick seeds).
    reached: BTreeSet<&'static str>,
    /// Messages held ahead that were released since the events were last taken: each reaches
    /// its station in this step (its events count on top of the step's own).
    released: usize,
}

/// `FUZZ_TRACE=1` prints each step, to read a reproduction.
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

fn other(id: LinkId) -> LinkId {
    id.other()
}

impl Harness {
    fn new(u: &mut Unstructured) -> Result<Harness> {
        let redundant = u.ratio(1, 2)?;
        let mut params = vec![("host", "127.0.0.1")];
        if redundant {
            params.push(("redundant_host", "b"));
            if u.ratio(1, 2)? {
                params.push(("redundant_window", u.choose(REDUNDANT_PARAMS[0].1)?));
            }
        }
        for &(name, values) in PARAMS {
            if u.ratio(1, 3)? {
                params.push((name, u.choose(values)?));
            }
        }
        let minimal: &[(&str, &str)] = match redundant {
            true => &[("host", "127.0.0.1"), ("redundant_host", "b")],
            false => &[("host", "127.0.0.1")],
        };
        let (config, _) = match LineConfig::from_params("line 'fuzz'", params.iter().copied()) {
            Ok(c) => c,
            // A refused configuration is the config target's business.
            Err(_) => LineConfig::from_params("line 'fuzz'", minimal.iter().copied())
                .expect("the minimal configuration is valid"),
        };
        let now = Instant::now();
        let mut line = Line::new("fuzz", config, now);
        line.set_trace_routing(u.arbitrary()?);
        for &(id, name, address, station_params) in STATIONS {
            line.add_station(StationId(id), name, address, station_params.iter().copied())
                .expect("the fixed stations are valid");
        }
        for &(station, id, address, ty, default) in TAGS {
            let default = default.map(|d| Value::Text(d.into()));
            line.add_tag(
                StationId(station),
                TagId(id),
                &format!("t{id}"),
                address,
                ty,
                default,
            )
            .expect("the fixed tags are valid");
        }
        let mut commands = HashMap::new();
        for &(id, ..) in STATIONS {
            let cmd = *u.choose(&[StationCommand::On, StationCommand::On, StationCommand::Off])?;
            line.station_command(StationId(id), cmd, now, 0)
                .expect("a known station");
            commands.insert(id, cmd);
        }
        line.start(0).expect("the fixed configuration starts");
        assert_eq!(line.has_link(LinkId::B), redundant);
        let mut h = Harness {
            line,
            now,
            redundant,
            b_changed: false,
            conns: [Conn::new(), Conn::new()],
            commands,
            pending: BTreeSet::new(),
            ack_writes: HashMap::new(),
            next_request: 1,
            gate: GateModel::default(),
            next_gate_pkid: GATE_PKID_BASE,
            next_unique: 0,
            recent: VecDeque::new(),
            fed: 0,
            finishing: false,
            reached: BTreeSet::new(),
            released: 0,
        };
        h.events();
        Ok(h)
    }

    fn wall_ns(&self) -> i64 {
        1_700_000_000_000_000_000
    }

    fn conn(&mut self, id: LinkId) -> &mut Conn {
        &mut self.conns[id.index()]
    }

    fn links(&self) -> Vec<LinkId> {
        self.line.links().to_vec()
    }

    /// Connection `id`'s broker session starts over: its earlier packet ids mean nothing any
    /// more.
    fn new_broker_session(&mut self, id: LinkId) {
        let c = self.conn(id);
        c.blocked.clear();
        c.released.clear();
        c.confirmed.clear();
    }

    fn open(&mut self, id: LinkId) {
        if !self.line.has_link(id) || self.conns[id.index()].open {
            return;
        }
        let clean = self.line.config().clean_session;
        let protocol = self.line.config().v5.protocol;
        let c = self.conn(id);
        let other_protocol = c.protocol.is_some_and(|p| p != protocol);
        c.clean = clean;
        c.protocol = Some(protocol);
        if clean || other_protocol {
            self.new_broker_session(id);
        }
        let host = match id {
            LinkId::A => "127.0.0.1:1883",
            LinkId::B => "b:1883",
        };
        trace!("{id:?} open (clean {clean})");
        self.line
            .transport_open_on(id, host, &Secret::default(), self.now);
        self.conn(id).open = true;
    }

    /// As the driver does when the connection ends, or an attempt to open one fails.
    fn close(&mut self, id: LinkId, reason: &str) {
        if !self.line.has_link(id) {
            return;
        }
        trace!("{id:?} closed: {reason}");
        self.line.transport_closed_on(id, reason, self.wall_ns());
        if self.line.has_link(LinkId::B) {
            // `Line::rejoin_over`: what is held ahead stops waiting at the next timer.
            if let Some((_, until, _)) = self.gate.rejoined.as_mut() {
                *until = None;
            }
        }
        let c = self.conn(id);
        c.open = false;
        if c.clean {
            self.new_broker_session(id);
        }
    }

    /// Connection B came or went with new parameters: the model follows.
    fn links_changed(&mut self, had_b: bool) {
        let has_b = self.line.has_link(LinkId::B);
        if had_b == has_b {
            return;
        }
        self.b_changed = true;
        self.reached.insert("B came or went");
        // The duplicate filter and the rejoin are the redundant line's: they start over. What
        // waited for B waits no longer.
        // What was held ahead is shown before the next packet or line timer.
        self.gate.forget_all();
        self.gate.rejoined = None;
        if !has_b {
            self.gate.retired = true;
            self.conns[LinkId::B.index()] = Conn::new();
        }
    }

    /// A QoS 0 PUBLISH to a 3.1.1 session, on the wire; `None` for any other packet, which is
    /// handed over as a packet.
    fn wire(&self, id: LinkId, packet: &Packet) -> Option<BytesMut> {
        let Packet::Publish(p) = packet else {
            return None;
        };
        if p.qos != QoS::AtMostOnce || self.conns[id.index()].protocol != Some(Protocol::V311) {
            return None;
        }
        let mut bytes = BytesMut::new();
        write_packet(packet, &mut bytes, 1 << 20, Protocol::V311).ok()?;
        Some(bytes)
    }

    /// A packet from connection `id`'s broker; an error ends the connection, as in the driver.
    fn feed(&mut self, id: LinkId, packet: Packet) -> bool {
        self.fed += 1;
        trace!("{id:?} <- {packet:?}");
        self.settle_retired();
        let was_ready = self.line.is_link_ready(id);
        let result = match self.wire(id, &packet) {
            // As the driver hands bytes over: a redundant 3.1.1 line judges a QoS 0 copy where
            // it lies in the buffer, without making it a message.
            Some(mut bytes) => self
                .line
                .handle_input_on(id, &mut bytes, self.now, self.wall_ns()),
            None => self
                .line
                .handle_packet_on(id, packet, self.now, self.wall_ns()),
        };
        if result.is_err() {
            trace!("  refused: {result:?}");
            self.close(id, "protocol error");
        } else if !was_ready && self.line.is_link_ready(id) {
            // `Line::link_ready`: a connection ready again while the other one is has rejoined.
            if self.line.is_link_ready(other(id)) && self.conns[id.index()].ever_ready {
                self.reached.insert("rejoin");
                // `Line::link_rejoined`: what an earlier rejoin held ahead waits no longer.
                self.gate.rejoined = None;
                self.release(None);
                let window = self.line.config().redundant.window;
                self.gate.rejoined = Some((id, Some(self.now + window), self.now));
            }
            self.conn(id).ever_ready = true;
        }
        result.is_ok()
    }

    fn write(&mut self, tag: u64, value: Value) {
        let request = self.next_request;
        self.next_request += 1;
        trace!("write {tag} = {value:?} (request {request})");
        let result = self
            .line
            .write(TagId(tag), request, value.clone(), self.now, self.wall_ns());
        if tag == UNKNOWN_TAG {
            assert!(result.is_err(), "a write to an unknown tag was accepted");
            return;
        }
        assert!(
            result.is_ok(),
            "a write to tag {tag} was refused: {result:?}"
        );
        self.fed += 1;
        self.pending.insert(request);
        if tag == GATE_ACK_ID {
            if let Value::Int(v) = value {
                self.ack_writes.insert(request, v);
            }
        }
    }

    /// Takes the line's events and checks them.
    fn events(&mut self) {
        let per_message = TAGS.len() + STATIONS.len();
        let bound = (3 + std::mem::take(&mut self.released)) * per_message + self.pending.len() + 8;
        let mut count = 0;
        while let Some(event) = self.line.poll_event() {
            count += 1;
            assert!(count <= bound, "more than {bound} events from one step");
            if matches!(
                event,
                Event::WriteDone { .. }
                    | Event::TagValue {
                        tag: TagId(GATE_IN_ID),
                        ..
                    }
            ) {
                trace!("  event {event:?}");
            }
            match event {
                Event::WriteDone { request, error, .. } => {
                    assert!(
                        self.pending.remove(&request),
                        "a second (or unasked) write-done for request {request}"
                    );
                    if let Some(written) = self.ack_writes.remove(&request) {
                        let shown = self.gate.shown.map(|m| self.gate.msgs[m].pkid);
                        let names_shown = shown.map(i64::from) == Some(written);
                        assert_eq!(
                            error.is_none(),
                            names_shown,
                            "ACK_ID {written} with IN_ID {shown:?} shown: {error:?}",
                        );
                        if let Some(m) = self.gate.shown.filter(|_| names_shown) {
                            self.gate.shown = None;
                            let (link, pkid, twin) = {
                                let m = &self.gate.msgs[m];
                                (m.link, m.pkid, m.twin)
                            };
                            let mut kept = vec![(link, pkid)];
                            kept.extend(twin);
                            for (link, pkid) in kept {
                                let c = self.conn(link);
                                let released = c.released.remove(&pkid);
                                if let Some((qos, payload)) = c.blocked.remove(&pkid) {
                                    // Not after a PUBREL: the session's flow for it is over.
                                    if !released {
                                        let open = c.open;
                                        c.confirmed.insert(pkid, (qos, payload, open));
                                    }
                                }
                            }
                        }
                    }
                }
                Event::TagValue {
                    tag: TagId(GATE_IN_ID),
                    value: Some(value),
                    ..
                } => self.gate.shown_now(&value),
                _ => {}
            }
        }
    }

    /// Takes what connection `id` transmits (all of it, or one packet), checking each packet,
    /// and returns them.
    fn transmit(&mut self, id: LinkId, all: bool) -> Vec<Packet> {
        let bound = self.fed + 8;
        let mut out = Vec::new();
        while let Some(packet) = self.line.poll_transmit_at_on(id, self.now, self.wall_ns()) {
            trace!("{id:?} -> {packet:?}");
            let c = &mut self.conns[id.index()];
            match &packet {
                Packet::PubAck(PubAck { pkid, .. }) | Packet::PubRec(PubRec { pkid, .. }) => {
                    assert!(
                        !c.blocked.contains_key(pkid),
                        "{packet:?} left on {id:?} before the host confirmed message {pkid} \
                         through ACK_ID"
                    );
                    c.must_ack.remove(pkid);
                    c.confirmed.remove(pkid);
                }
                Packet::Publish(p) if p.qos != QoS::AtMostOnce => {
                    if !c.sent.contains(&p.pkid) {
                        c.sent.push(p.pkid);
                    }
                }
                Packet::Subscribe(s) => c.last_subscribe = s.pkid,
                Packet::Unsubscribe(s) => c.last_unsubscribe = s.pkid,
                _ => {}
            }
            out.push(packet);
            assert!(
                out.len() <= bound,
                "more than {bound} packets queued after {} packets and writes",
                self.fed
            );
            if !all {
                break;
            }
        }
        if all {
            self.line.flushed_on(id, self.wall_ns());
        }
        out
    }

    fn pkid(&self, u: &mut Unstructured, from: &[u16]) -> Result<u16> {
        if !from.is_empty() && u.ratio(3, 4)? {
            return Ok(*u.choose(from)?);
        }
        u.int_in_range(1..=24)
    }

    fn fresh_gate_pkid(&mut self) -> u16 {
        let pkid = self.next_gate_pkid;
        self.next_gate_pkid = self.next_gate_pkid.checked_add(1).unwrap_or(GATE_PKID_BASE);
        pkid
    }

    /// A new message (not a redelivery) of the gated station's topic through `id` was taken
    /// by the session: the duplicate rule, the line's hold of a rejoined connection's
    /// messages, then the station's gate.
    fn gate_arrival(&mut self, id: LinkId, payload: Bytes, qos: QoS, pkid: u16) {
        let blocks = qos != QoS::AtMostOnce;
        let redundant = self.line.has_link(LinkId::B);
        let window = self.line.config().redundant.window;
        let taken = match redundant {
            true => {
                let topic = Bytes::from_static(GATE_TOPIC.as_bytes());
                self.gate.take(id, &topic, &payload, self.now, window)
            }
            false => Taken::Original(0),
        };
        let seq = match taken {
            Taken::Copy(matched) => {
                // What was held ahead up to its original is shown first.
                self.release(Some(matched));
                let twin = blocks.then_some((id, pkid));
                if self.gate.attach(id, &payload, twin) {
                    self.reached.insert("copy kept with a held message");
                    self.conn(id).blocked.insert(pkid, (qos, payload));
                }
                return;
            }
            Taken::Original(seq) => seq,
        };
        if redundant && self.gate.originals.len() > 1 {
            self.reached.insert("original while others remembered");
        }
        // Unacknowledged while held ahead, or held by the station.
        if blocks {
            self.conn(id).blocked.insert(pkid, (qos, payload.clone()));
        }
        let m = GateMsg {
            pkid,
            link: id,
            payload: redundant.then_some(payload),
            seq,
            matched: false,
            twin: None,
        };
        if redundant && self.gate.is_ahead(id) {
            self.reached.insert("held ahead");
            self.gate.ahead.push_back((seq, Some(m)));
            return;
        }
        if redundant {
            self.gate.backlog_seen(id, self.now, window);
        }
        self.route(m);
    }

    /// The gated station takes message `m` when it is on; otherwise it is dropped, and
    /// acknowledged at once.
    fn route(&mut self, m: GateMsg) {
        if self.commands[&GATE_STATION] == StationCommand::On {
            self.gate.offer(m);
        } else {
            self.conn(m.link).blocked.remove(&m.pkid);
        }
    }

    /// Messages held ahead are released (`Line::release_ahead`): through the original numbered
    /// `through` when it is held, or all of them; each goes to its station in its turn.
    fn release(&mut self, through: Option<u64>) {
        let released = self.gate.release(through);
        self.released += released.len();
        for (_, m) in released {
            if let Some(m) = m {
                self.route(m);
            }
        }
    }

    /// `Line::settle_retired_b`: what was held ahead when B was taken away is shown.
    fn settle_retired(&mut self) {
        if std::mem::take(&mut self.gate.retired) {
            self.release(None);
        }
    }

    /// Feeds a PUBLISH through `id`; a new message of the gated station goes to the model.
    fn deliver(&mut self, id: LinkId, p: Publish, redelivery: bool) {
        let gated = p.topic == GATE_TOPIC.as_bytes();
        let (topic, payload, qos, pkid) = (p.topic.clone(), p.payload.clone(), p.qos, p.pkid);
        if !redelivery {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(Recent {
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: p.payload.clone(),
                qos,
            });
        }
        let before = self.taken(id);
        let accepted = self.feed(id, Packet::Publish(p));
        let taken = self.taken(id) != before;
        if taken && self.line.has_link(LinkId::B) {
            let window = self.line.config().redundant.window;
            self.gate.forget(self.now, window);
            // Messages of other topics are held ahead too, and release the gated station's
            // before them; an original through the connection that did not rejoin counts as
            // its backlog (`Line::backlog_seen`).
            if !gated {
                match self.gate.take(id, &topic, &payload, self.now, window) {
                    Taken::Copy(matched) => self.release(Some(matched)),
                    Taken::Original(seq) if self.gate.is_ahead(id) => {
                        self.gate.ahead.push_back((seq, None));
                    }
                    Taken::Original(_) => self.gate.backlog_seen(id, self.now, window),
                }
            }
        }
        if accepted && gated {
            assert_eq!(
                taken, !redelivery,
                "message {pkid} through {id:?}: taken as new {taken}, redelivered {redelivery}"
            );
            if taken {
                self.gate_arrival(id, payload, qos, pkid);
            }
        }
    }

    /// The messages connection `id`'s session handed to the line (copies included).
    fn taken(&self, id: LinkId) -> u64 {
        self.line.link_stats(id).map_or(0, |s| s.received)
    }

    fn publish(&mut self, id: LinkId, u: &mut Unstructured) -> Result<()> {
        let topic = if u.ratio(1, 8)? {
            // Never the gated station's topic: it goes to a regex or the catch-all.
            let len = u.int_in_range(0..=24)?;
            let raw = u.bytes(len)?;
            format!("x/{}", String::from_utf8_lossy(raw))
        } else {
            u.choose(TOPICS)?.to_string()
        };
        let gated = topic == GATE_TOPIC;
        let payload = if gated && self.redundant && u.ratio(1, 2)? {
            // Mostly distinct messages, as a device's are; sometimes a repeated payload.
            if u.ratio(1, 4)? {
                Bytes::from_static(u.choose(REPEATS)?)
            } else {
                self.next_unique += 1;
                Bytes::from(format!("g{}", self.next_unique))
            }
        } else if u.ratio(1, 6)? {
            let len = u.int_in_range(0..=128)?;
            Bytes::copy_from_slice(u.bytes(len)?)
        } else {
            Bytes::from_static(u.choose(PAYLOADS)?)
        };
        let mut qos = *u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])?;
        let mut dup = u.arbitrary::<bool>()?;
        let c = &self.conns[id.index()];
        let redeliverable: Vec<u16> = c
            .blocked
            .keys()
            .copied()
            .filter(|p| !c.released.contains(p))
            .collect();
        let mut redelivery = false;
        let mut payload = payload;
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else if !gated {
            u.int_in_range(1..=24)?
        } else if !redeliverable.is_empty() && u.ratio(1, 3)? {
            // The broker sends an unconfirmed message again: the line must not show it twice.
            let pkid = *u.choose(&redeliverable)?;
            (qos, payload) = self.conns[id.index()].blocked[&pkid].clone();
            dup = true;
            redelivery = true;
            pkid
        } else {
            self.fresh_gate_pkid()
        };
        let mut p = Publish::new(topic, qos, payload, None);
        p.pkid = pkid;
        p.dup = dup;
        p.retain = u.arbitrary()?;
        self.deliver(id, p, redelivery);
        Ok(())
    }

    /// A recent publication again, through `id`: on a redundant line mostly the copy a
    /// dual-homed gateway sent to the other broker; on one connection a repeat.
    fn copy(&mut self, id: LinkId, u: &mut Unstructured) -> Result<()> {
        if self.recent.is_empty() {
            return Ok(());
        }
        let r = u.choose(self.recent.make_contiguous())?.clone();
        let qos = match u.ratio(1, 8)? {
            // The other broker granted another QoS.
            true => *u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])?,
            false => r.qos,
        };
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else if r.topic == GATE_TOPIC {
            self.fresh_gate_pkid()
        } else {
            u.int_in_range(1..=24)?
        };
        let mut p = Publish::new(r.topic, qos, r.payload, None);
        p.pkid = pkid;
        self.deliver(id, p, false);
        Ok(())
    }

    fn value(u: &mut Unstructured) -> Result<Value> {
        Ok(match u.int_in_range(0..=4)? {
            0 => Value::Int(u.arbitrary()?),
            1 => Value::Float(u.arbitrary()?),
            2 => Value::Bool(u.arbitrary()?),
            3 => Value::Text(
                u.choose(&["21.5", "cmd/b", "a/#", "", "x+y", "7"])?
                    .to_string(),
            ),
            _ => {
                let len = u.int_in_range(0..=32)?;
                Value::Text(String::from_utf8_lossy(u.bytes(len)?).into_owned())
            }
        })
    }

    /// Time passes: each connection's loop handles its timeout, as the shell's do.
    fn time_step(&mut self, step: Duration) {
        self.now += step;
        trace!("time + {step:?}");
        for id in self.links() {
            // `Line::serves_line_timers`: A's loop fires the line's timers, B's while A is not
            // ready.
            let serves = id == LinkId::A || !self.line.is_link_ready(LinkId::A);
            let result = self.line.handle_timeout_on(id, self.now, self.wall_ns());
            // The line's timers run once the connection's own check (a stalled read or write)
            // passed; the session's timeout comes after them.
            let checked = result.as_ref().err().is_none_or(|e| {
                let e = format!("{e:?}");
                !e.starts_with("HalfRead") && !e.starts_with("WriteStalled")
            });
            if serves && checked && self.line.has_link(id) {
                if self.gate.end_rejoin(self.now) {
                    self.release(None);
                }
                self.settle_retired();
            }
            if result.is_err() {
                self.close(id, "timeout");
            } else if let Some(next) = self.line.poll_timeout_on(id) {
                // A deadline in the past would make the driver spin.
                assert!(
                    next > self.now,
                    "a handled timeout left a deadline in the past on {id:?}"
                );
            }
        }
    }

    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        let id = match self.redundant && u.arbitrary::<bool>()? {
            true if self.line.has_link(LinkId::B) => LinkId::B,
            _ => LinkId::A,
        };
        let open = self.conns[id.index()].open;
        match u.int_in_range(0..=19)? {
            0 if !open => self.open(id),
            1 => self.close(id, "closed by the fuzzer"),
            2 if open => {
                let code = *u.choose(&[
                    ConnectReturnCode::Success,
                    ConnectReturnCode::Success,
                    ConnectReturnCode::Success,
                    ConnectReturnCode::NotAuthorized,
                    ConnectReturnCode::ServiceUnavailable,
                ])?;
                let session_present = u.arbitrary()?;
                let accepted = self.feed(id, Packet::ConnAck(conn_ack(code, session_present)));
                if accepted && !session_present {
                    self.new_broker_session(id);
                }
            }
            3 if open => {
                let last = self.conns[id.index()].last_subscribe;
                let pkid = self.pkid(u, &[last])?;
                let codes = match u.int_in_range(0..=5)? {
                    0 => vec![SubscribeReasonCode::Failure],
                    1 => vec![],
                    2 => vec![SubscribeReasonCode::Success(QoS::AtMostOnce)],
                    _ => vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                };
                self.feed(id, Packet::SubAck(sub_ack(pkid, codes)));
            }
            4 if open => {
                let last = self.conns[id.index()].last_unsubscribe;
                let pkid = self.pkid(u, &[last])?;
                self.feed(
                    id,
                    Packet::UnsubAck(UnsubAck {
                        pkid,
                        reasons: Vec::new(),
                        properties: None,
                    }),
                );
            }
            5 | 6 if open => self.publish(id, u)?,
            7 if open => {
                let sent = self.conns[id.index()].sent.clone();
                let pkid = self.pkid(u, &sent)?;
                let packet = match u.int_in_range(0..=2)? {
                    0 => Packet::PubAck(PubAck::new(pkid, None)),
                    1 => Packet::PubRec(PubRec::new(pkid, None)),
                    _ => Packet::PubComp(PubComp::new(pkid, None)),
                };
                self.feed(id, packet);
            }
            8 if open => {
                let blocked: Vec<u16> = self.conns[id.index()].blocked.keys().copied().collect();
                let pkid = self.pkid(u, &blocked)?;
                if self.feed(id, Packet::PubRel(PubRel::new(pkid, None)))
                    && self.conns[id.index()].blocked.contains_key(&pkid)
                {
                    self.conn(id).released.insert(pkid);
                }
            }
            9 if open => {
                let packet = u
                    .choose(&[
                        Packet::PingResp(PingResp),
                        Packet::PingResp(PingResp),
                        Packet::PingReq(PingReq),
                    ])?
                    .clone();
                self.feed(id, packet);
            }
            10 | 11 => {
                let tag = *u.choose(WRITABLE)?;
                let value = Self::value(u)?;
                self.write(tag, value);
            }
            12 => {
                let shown = self
                    .gate
                    .shown
                    .map_or(0, |m| i64::from(self.gate.msgs[m].pkid));
                let written = match u.int_in_range(0..=3)? {
                    0 | 1 => shown,
                    2 => shown + 1,
                    _ => u.arbitrary()?,
                };
                self.write(GATE_ACK_ID, Value::Int(written));
            }
            13 => {
                let id = *u.choose(&[1, 2, 3, GATE_STATION, GATE_STATION, 5, 9])?;
                let cmd = *u.choose(&[
                    StationCommand::On,
                    StationCommand::Off,
                    StationCommand::Simulate,
                ])?;
                trace!("station {id} {cmd:?}");
                let result =
                    self.line
                        .station_command(StationId(id), cmd, self.now, self.wall_ns());
                assert_eq!(
                    result.is_ok(),
                    self.commands.contains_key(&id),
                    "{result:?}"
                );
                if result.is_ok() {
                    self.commands.insert(id, cmd);
                }
            }
            14 => {
                let mut changes = Vec::new();
                for _ in 0..u.int_in_range(1..=3)? {
                    let &(name, values) = match self.redundant && u.ratio(1, 3)? {
                        true => u.choose(REDUNDANT_PARAMS)?,
                        false => u.choose(PARAMS)?,
                    };
                    changes.push((name, *u.choose(values)?));
                }
                let had_b = self.line.has_link(LinkId::B);
                trace!("reconfigure {changes:?}");
                // The shell reconnects after a change that was taken (and closes a connection
                // the line no longer has).
                if self.line.reconfigure(changes).is_ok() {
                    for id in [LinkId::A, LinkId::B] {
                        if self.conns[id.index()].open {
                            match self.line.has_link(id) {
                                true => self.close(id, "parameters changed"),
                                false => self.conn(id).open = false,
                            }
                        }
                    }
                    self.links_changed(had_b);
                }
            }
            15 => {
                let step = match u.int_in_range(0..=4)? {
                    0 => Duration::from_millis(100),
                    1 => Duration::from_secs(1),
                    2 => Duration::from_secs(6),
                    3 => Duration::from_secs(61),
                    _ => Duration::from_millis(u.int_in_range(0..=300_000)?),
                };
                self.time_step(step);
            }
            16 if open => {
                self.transmit(id, true);
            }
            17 if open => {
                self.transmit(id, false);
            }
            18 if open => {
                // Mostly the copy of a recent publication through the other connection.
                let to = match self.line.has_link(other(id)) && u.ratio(3, 4)? {
                    true => other(id),
                    false => id,
                };
                if self.conns[to.index()].open {
                    self.copy(to, u)?;
                }
            }
            19 if open => {
                // A dual-homed gateway publishes to both brokers: the copy follows at once.
                self.publish(id, u)?;
                let to = other(id);
                if self.line.has_link(to) && self.conns[to.index()].open {
                    if let Some(r) = self.recent.back().cloned() {
                        let pkid = match (r.qos, r.topic == GATE_TOPIC) {
                            (QoS::AtMostOnce, _) => 0,
                            (_, true) => self.fresh_gate_pkid(),
                            (_, false) => u.int_in_range(1..=24)?,
                        };
                        let mut p = Publish::new(r.topic, r.qos, r.payload, None);
                        p.pkid = pkid;
                        self.deliver(to, p, false);
                    }
                }
            }
            _ => {}
        }
        self.events();
        Ok(())
    }

    /// A well-behaved broker on each connection answers everything the line sends until it
    /// sends nothing more. At the end, a broker whose session is present delivers the
    /// unconfirmed messages again, as MQTT has it.
    fn serve(&mut self) {
        for _ in 0..64 {
            let mut quiet = true;
            for id in self.links() {
                if !self.conns[id.index()].open {
                    continue;
                }
                let out = self.transmit(id, true);
                quiet &= out.is_empty();
                for packet in out {
                    let answer = match packet {
                        Packet::Connect(..) => {
                            let present = !self.conns[id.index()].clean;
                            let ack =
                                Packet::ConnAck(conn_ack(ConnectReturnCode::Success, present));
                            assert!(self.feed(id, ack), "the line refused a CONNACK");
                            self.events();
                            if self.finishing && present {
                                self.redeliver(id);
                            }
                            continue;
                        }
                        Packet::Subscribe(s) => Packet::SubAck(sub_ack(
                            s.pkid,
                            vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                        )),
                        Packet::Unsubscribe(s) => Packet::UnsubAck(UnsubAck {
                            pkid: s.pkid,
                            reasons: Vec::new(),
                            properties: None,
                        }),
                        Packet::Publish(p) if p.qos == QoS::AtLeastOnce => {
                            Packet::PubAck(PubAck::new(p.pkid, None))
                        }
                        Packet::Publish(p) if p.qos == QoS::ExactlyOnce => {
                            Packet::PubRec(PubRec::new(p.pkid, None))
                        }
                        Packet::PubRel(r) => Packet::PubComp(PubComp::new(r.pkid, None)),
                        Packet::PingReq(PingReq) => Packet::PingResp(PingResp),
                        _ => continue,
                    };
                    assert!(
                        self.feed(id, answer.clone()),
                        "the line refused {answer:?} from a well-behaved broker"
                    );
                    self.events();
                }
            }
            if quiet {
                return;
            }
        }
        panic!("the line kept sending to a well-behaved broker");
    }

    /// The messages of `id`'s broker session it has no acknowledgement for, delivered again:
    /// the unconfirmed ones are not new to the line, and their PUBACK or PUBREC must leave once
    /// the host has confirmed them; the confirmed ones are acknowledged at once, unless their
    /// acknowledgement was queued and lost with a connection (QoS 1 only), when the session
    /// rightly takes them as new.
    fn redeliver(&mut self, id: LinkId) {
        let c = &self.conns[id.index()];
        let mut again: Vec<(u16, QoS, Bytes, bool)> = c
            .blocked
            .iter()
            .filter(|(p, _)| !c.released.contains(p))
            .map(|(&p, (q, b))| (p, *q, b.clone(), false))
            .collect();
        again.extend(
            c.confirmed
                .iter()
                .map(|(&p, (q, b, open))| (p, *q, b.clone(), *open && *q == QoS::AtLeastOnce)),
        );
        for (pkid, qos, payload, may_be_new) in again {
            let mut p = Publish::new(GATE_TOPIC, qos, payload.clone(), None);
            p.pkid = pkid;
            p.dup = true;
            let before = self.taken(id);
            assert!(
                self.feed(id, Packet::Publish(p)),
                "the line refused a redelivery"
            );
            let c = self.conn(id);
            c.must_ack.insert(pkid);
            c.confirmed.remove(&pkid);
            if self.taken(id) != before {
                let window = self.line.config().redundant.window;
                self.gate.forget(self.now, window);
                assert!(
                    may_be_new,
                    "message {pkid} delivered again through {id:?} was taken as new"
                );
                self.gate_arrival(id, payload, qos, pkid);
            }
            self.events();
        }
    }

    /// The end: fresh connections to well-behaved brokers, every shown message confirmed and
    /// acknowledged where it came from, then the transports close and no write may be left
    /// without its write-done.
    fn finish(&mut self) {
        for id in self.links() {
            self.close(id, "end of input");
        }
        self.events();
        self.finishing = true;
        for id in self.links() {
            self.open(id);
        }
        self.serve();
        for id in self.links() {
            assert!(
                self.line.is_link_ready(id),
                "{id:?} not ready with a well-behaved broker"
            );
        }
        if !self.gate.ahead.is_empty() {
            // A connection's new messages were taken while it rejoined: they wait out the
            // longest hold.
            let window = self.line.config().redundant.window;
            self.time_step(window * (MAX_HOLD_WINDOWS + 1));
            self.events();
            self.serve();
        }
        for _ in 0..=self.gate.held.len() + 1 {
            let Some(shown) = self.gate.shown else { break };
            let pkid = self.gate.msgs[shown].pkid;
            self.write(GATE_ACK_ID, Value::Int(pkid.into()));
            self.events();
            self.serve();
        }
        // Under load PUBACKs wait up to 1 ms to leave together (ack_batch.rs): let it pass.
        self.time_step(Duration::from_millis(2));
        self.serve();
        assert!(
            self.gate.shown.is_none() && self.gate.held.is_empty() && self.gate.ahead.is_empty(),
            "messages of the gated station never shown: {:?} (shown: {:?}, held ahead: {:?})",
            self.gate
                .held
                .iter()
                .map(|&m| self.gate.msgs[m].pkid)
                .collect::<Vec<_>>(),
            self.gate.shown.map(|m| self.gate.msgs[m].pkid),
            self.gate
                .ahead
                .iter()
                .filter_map(|(_, m)| m.as_ref().map(|m| m.pkid))
                .collect::<Vec<_>>()
        );
        for id in self.links() {
            let c = &self.conns[id.index()];
            assert!(
                c.must_ack.is_empty(),
                "confirmed messages never acknowledged on {id:?}: {:?}",
                c.must_ack
            );
        }
        for id in self.links() {
            self.close(id, "end");
        }
        self.events();
        assert!(
            self.pending.is_empty(),
            "writes without a write-done: {:?}",
            self.pending
        );
        // Every message is counted once: as a will message, unrouted, or by its station.
        let stats = self.line.stats();
        let routed: u64 = STATIONS
            .iter()
            .map(|&(id, ..)| {
                self.line
                    .station_stats(StationId(id))
                    .expect("a known station")
                    .received
            })
            .sum();
        assert_eq!(
            stats.received,
            routed + stats.unrouted + stats.will_messages,
            "{stats:?}"
        );
        // A redundant line counts each connection's messages; the copies are not the line's.
        if self.redundant && !self.b_changed {
            let (a, b) = (
                self.line.link_stats(LinkId::A).expect("A"),
                self.line.link_stats(LinkId::B).expect("B"),
            );
            assert_eq!(
                a.received + b.received - a.duplicates - b.duplicates,
                stats.received,
                "{a:?} {b:?} {stats:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(mut h) = Harness::new(&mut u) else {
        return;
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() || h.step(&mut u).is_err() {
            break;
        }
    }
    h.finish();
    if tracing() {
        if h.gate.expired_copy {
            h.reached.insert("window ended");
        }
        if h.gate.msgs.iter().any(|m| m.twin.is_some()) {
            h.reached.insert("twin kept");
        }
        eprintln!(
            "reached: redundant={} {:?} shown={}",
            h.redundant,
            h.reached,
            h.gate.msgs.len()
        );
    }
});
