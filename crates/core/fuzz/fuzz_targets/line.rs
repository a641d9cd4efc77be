//! The whole line, driven as the plugin's shell drives it: a fixed set of stations (exact, regex
//! and `.*` addresses, a JSON station, an ACK_ID station, outputs) on a fuzz-chosen line
//! configuration, then an interleaving decoded from the input of transport opens and closes,
//! broker packets, host writes, ACK_ID confirmations, station commands, parameter changes, time
//! steps and transmissions. After every step it checks what the line promises (docs/fuzzing.md):
//! every accepted write ends in exactly one write-done; no PUBACK/PUBREC leaves for a message of
//! the gated station before the host confirmed it; the gated station shows each of its messages
//! once, in arrival order; ACK_ID is accepted exactly when it names the shown message; events and
//! packets per step stay within a bound proportional to the input; a handled timeout leaves no
//! deadline in the past. At the end a well-behaved broker takes the line back, every shown
//! message is confirmed, and once the transport closes no write is left without its write-done.
#![no_main]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mqtt_line_core::mqtt::{
    conn_ack, sub_ack, ConnectReturnCode, Packet, PingReq, PingResp, PubAck, PubComp, PubRec,
    PubRel, Publish, QoS, SubscribeReasonCode, UnsubAck,
};
use mqtt_line_core::Event;
use mqtt_line_core::Secret;
use mqtt_line_core::{Line, LineConfig, StationCommand, StationId, TagId, Value, ValueType};

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

struct Harness {
    line: Line,
    now: Instant,
    open: bool,
    /// The session's clean-session flag, taken from the configuration when it last connected.
    clean: bool,
    commands: HashMap<u64, StationCommand>,
    /// Request ids of accepted writes without their write-done yet.
    pending: BTreeSet<u64>,
    /// ACK_ID writes: request id -> the id written.
    ack_writes: HashMap<u64, i64>,
    next_request: u64,
    /// Messages routed to the gated station and not shown yet, in arrival order.
    gate_queue: VecDeque<u16>,
    /// The IN_ID shown on the gated station, waiting for ACK_ID.
    shown: Option<u16>,
    /// QoS 1/2 messages of the gated station in the current broker session that the host has not
    /// confirmed: no PUBACK or PUBREC may leave for them. By packet id, with their QoS.
    blocked: BTreeMap<u16, QoS>,
    /// Blocked ids the broker sent PUBREL for (a protocol violation that ends the flow early):
    /// not redelivered, since the session rightly takes them as new messages afterwards.
    released: BTreeSet<u16>,
    next_gate_pkid: u16,
    last_subscribe: u16,
    last_unsubscribe: u16,
    /// Packet ids of the line's own QoS 1/2 PUBLISHes, for the broker's answers.
    sent: Vec<u16>,
    /// Packets fed in and writes accepted so far: what bounds the packets queued.
    fed: usize,
}

impl Harness {
    fn new(u: &mut Unstructured) -> Result<Harness> {
        let mut params = vec![("host", "127.0.0.1")];
        for &(name, values) in PARAMS {
            if u.ratio(1, 3)? {
                params.push((name, u.choose(values)?));
            }
        }
        let (config, _) = match LineConfig::from_params("line 'fuzz'", params.iter().copied()) {
            Ok(c) => c,
            // A refused configuration is the config target's business.
            Err(_) => LineConfig::from_params("line 'fuzz'", [("host", "127.0.0.1")])
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
        let mut h = Harness {
            line,
            now,
            open: false,
            clean: false,
            commands,
            pending: BTreeSet::new(),
            ack_writes: HashMap::new(),
            next_request: 1,
            gate_queue: VecDeque::new(),
            shown: None,
            blocked: BTreeMap::new(),
            released: BTreeSet::new(),
            next_gate_pkid: GATE_PKID_BASE,
            last_subscribe: 1,
            last_unsubscribe: 1,
            sent: Vec::new(),
            fed: 0,
        };
        h.events();
        Ok(h)
    }

    fn wall_ns(&self) -> i64 {
        1_700_000_000_000_000_000
    }

    /// The broker session starts over: earlier packet ids mean nothing any more.
    fn new_broker_session(&mut self) {
        self.blocked.clear();
        self.released.clear();
    }

    fn open(&mut self) {
        self.clean = self.line.config().clean_session;
        if self.clean {
            self.new_broker_session();
        }
        self.line
            .transport_open("127.0.0.1:1883", &Secret::default(), self.now);
        self.open = true;
    }

    /// As the driver does when the connection ends, or an attempt to open one fails.
    fn close(&mut self, reason: &str) {
        self.line.transport_closed(reason, self.wall_ns());
        self.open = false;
        if self.clean {
            self.new_broker_session();
        }
    }

    /// A packet from the broker; an error ends the connection, as in the driver.
    fn feed(&mut self, packet: Packet) -> bool {
        self.fed += 1;
        let result = self.line.handle_packet(packet, self.now, self.wall_ns());
        if result.is_err() {
            self.close("protocol error");
        }
        result.is_ok()
    }

    fn write(&mut self, tag: u64, value: Value) {
        let request = self.next_request;
        self.next_request += 1;
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
        let bound = 3 * (TAGS.len() + STATIONS.len()) + self.pending.len() + 8;
        let mut count = 0;
        while let Some(event) = self.line.poll_event() {
            count += 1;
            assert!(count <= bound, "more than {bound} events from one step");
            match event {
                Event::WriteDone { request, error, .. } => {
                    assert!(
                        self.pending.remove(&request),
                        "a second (or unasked) write-done for request {request}"
                    );
                    if let Some(written) = self.ack_writes.remove(&request) {
                        let names_shown = self.shown.map(i64::from) == Some(written);
                        assert_eq!(
                            error.is_none(),
                            names_shown,
                            "ACK_ID {written} with IN_ID {:?} shown: {error:?}",
                            self.shown
                        );
                        if names_shown {
                            self.shown = None;
                            if let Ok(pkid) = u16::try_from(written) {
                                self.blocked.remove(&pkid);
                            }
                        }
                    }
                }
                Event::TagValue {
                    tag: TagId(GATE_IN_ID),
                    value: Some(value),
                    ..
                } => {
                    assert!(
                        self.shown.is_none(),
                        "IN_ID {value:?} shown while {:?} waits for ACK_ID",
                        self.shown
                    );
                    let expected = self.gate_queue.pop_front();
                    assert_eq!(
                        Some(value.clone()),
                        expected.map(|p| Value::Int(p.into())),
                        "the gated station shows its messages once each, in arrival order"
                    );
                    self.shown = expected;
                }
                _ => {}
            }
        }
    }

    /// Takes what the line transmits (all of it, or one packet), checking each packet, and
    /// returns them.
    fn transmit(&mut self, all: bool) -> Vec<Packet> {
        let bound = self.fed + 8;
        let mut out = Vec::new();
        while let Some(packet) = self.line.poll_transmit(self.now) {
            match &packet {
                Packet::PubAck(PubAck { pkid, .. }) | Packet::PubRec(PubRec { pkid, .. }) => {
                    assert!(
                        !self.blocked.contains_key(pkid),
                        "{packet:?} left before the host confirmed message {pkid} through ACK_ID"
                    );
                }
                Packet::Publish(p) if p.qos != QoS::AtMostOnce => {
                    if !self.sent.contains(&p.pkid) {
                        self.sent.push(p.pkid);
                    }
                }
                Packet::Subscribe(s) => self.last_subscribe = s.pkid,
                Packet::Unsubscribe(s) => self.last_unsubscribe = s.pkid,
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
            self.line.flushed(self.wall_ns());
        }
        out
    }

    fn pkid(&self, u: &mut Unstructured, from: &[u16]) -> Result<u16> {
        if !from.is_empty() && u.ratio(3, 4)? {
            return Ok(*u.choose(from)?);
        }
        u.int_in_range(1..=24)
    }

    fn publish(&mut self, u: &mut Unstructured) -> Result<()> {
        let topic = if u.ratio(1, 8)? {
            // Never the gated station's topic: it goes to a regex or the catch-all.
            let len = u.int_in_range(0..=24)?;
            let raw = u.bytes(len)?;
            format!("x/{}", String::from_utf8_lossy(raw))
        } else {
            u.choose(TOPICS)?.to_string()
        };
        let payload = if u.ratio(1, 6)? {
            let len = u.int_in_range(0..=128)?;
            Bytes::copy_from_slice(u.bytes(len)?)
        } else {
            Bytes::from_static(u.choose(PAYLOADS)?)
        };
        let mut qos = *u.choose(&[QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])?;
        let mut dup = u.arbitrary::<bool>()?;
        let gated = topic == GATE_TOPIC;
        let redeliverable: Vec<u16> = self
            .blocked
            .keys()
            .copied()
            .filter(|p| !self.released.contains(p))
            .collect();
        let mut redelivery = false;
        let pkid = if qos == QoS::AtMostOnce {
            0
        } else if !gated {
            u.int_in_range(1..=24)?
        } else if !redeliverable.is_empty() && u.ratio(1, 3)? {
            // The broker sends an unconfirmed message again: the line must not show it twice.
            let pkid = *u.choose(&redeliverable)?;
            qos = self.blocked[&pkid];
            dup = true;
            redelivery = true;
            pkid
        } else {
            let pkid = self.next_gate_pkid;
            self.next_gate_pkid = self.next_gate_pkid.checked_add(1).unwrap_or(GATE_PKID_BASE);
            pkid
        };
        let mut p = Publish::new(topic, qos, payload, None);
        p.pkid = pkid;
        p.dup = dup;
        p.retain = u.arbitrary()?;
        let accepted = self.feed(Packet::Publish(p));
        if accepted && gated && !redelivery && self.commands[&GATE_STATION] == StationCommand::On {
            self.gate_queue.push_back(pkid);
            if qos != QoS::AtMostOnce {
                self.blocked.insert(pkid, qos);
            }
        }
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

    fn step(&mut self, u: &mut Unstructured) -> Result<()> {
        match u.int_in_range(0..=17)? {
            0 if !self.open => self.open(),
            1 => self.close("closed by the fuzzer"),
            2 if self.open => {
                let code = *u.choose(&[
                    ConnectReturnCode::Success,
                    ConnectReturnCode::Success,
                    ConnectReturnCode::Success,
                    ConnectReturnCode::NotAuthorized,
                    ConnectReturnCode::ServiceUnavailable,
                ])?;
                let session_present = u.arbitrary()?;
                let accepted = self.feed(Packet::ConnAck(conn_ack(code, session_present)));
                if accepted && !session_present {
                    self.new_broker_session();
                }
            }
            3 if self.open => {
                let pkid = self.pkid(u, &[self.last_subscribe])?;
                let codes = match u.int_in_range(0..=5)? {
                    0 => vec![SubscribeReasonCode::Failure],
                    1 => vec![],
                    2 => vec![SubscribeReasonCode::Success(QoS::AtMostOnce)],
                    _ => vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
                };
                self.feed(Packet::SubAck(sub_ack(pkid, codes)));
            }
            4 if self.open => {
                let pkid = self.pkid(u, &[self.last_unsubscribe])?;
                self.feed(Packet::UnsubAck(UnsubAck {
                    pkid: pkid,
                    reasons: Vec::new(),
                    properties: None,
                }));
            }
            5 | 6 if self.open => self.publish(u)?,
            7 if self.open => {
                let sent = self.sent.clone();
                let pkid = self.pkid(u, &sent)?;
                let packet = match u.int_in_range(0..=2)? {
                    0 => Packet::PubAck(PubAck::new(pkid, None)),
                    1 => Packet::PubRec(PubRec::new(pkid, None)),
                    _ => Packet::PubComp(PubComp::new(pkid, None)),
                };
                self.feed(packet);
            }
            8 if self.open => {
                let blocked: Vec<u16> = self.blocked.keys().copied().collect();
                let pkid = self.pkid(u, &blocked)?;
                if self.feed(Packet::PubRel(PubRel::new(pkid, None)))
                    && self.blocked.contains_key(&pkid)
                {
                    self.released.insert(pkid);
                }
            }
            9 if self.open => {
                let packet = u
                    .choose(&[
                        Packet::PingResp(PingResp),
                        Packet::PingResp(PingResp),
                        Packet::PingReq(PingReq),
                    ])?
                    .clone();
                self.feed(packet);
            }
            10 | 11 => {
                let tag = *u.choose(WRITABLE)?;
                let value = Self::value(u)?;
                self.write(tag, value);
            }
            12 => {
                let shown = self.shown.map_or(0, i64::from);
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
                    let &(name, values) = u.choose(PARAMS)?;
                    changes.push((name, *u.choose(values)?));
                }
                // The shell reconnects after a change that was taken.
                if self.line.reconfigure(changes).is_ok() && self.open {
                    self.close("parameters changed");
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
                self.now += step;
                if self.line.handle_timeout(self.now, self.wall_ns()).is_err() {
                    self.close("timeout");
                } else if let Some(next) = self.line.poll_timeout() {
                    // A deadline in the past would make the driver spin.
                    assert!(
                        next > self.now,
                        "a handled timeout left a deadline in the past"
                    );
                }
            }
            16 if self.open => {
                self.transmit(true);
            }
            17 if self.open => {
                self.transmit(false);
            }
            _ => {}
        }
        self.events();
        Ok(())
    }

    /// A well-behaved broker answers everything the line sends until it sends nothing more.
    fn serve(&mut self) {
        for _ in 0..64 {
            let out = self.transmit(true);
            if out.is_empty() {
                return;
            }
            for packet in out {
                let answer = match packet {
                    Packet::Connect(..) => {
                        Packet::ConnAck(conn_ack(ConnectReturnCode::Success, !self.clean))
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
                    self.feed(answer.clone()),
                    "the line refused {answer:?} from a well-behaved broker"
                );
                self.events();
            }
        }
        panic!("the line kept sending to a well-behaved broker");
    }

    /// The end: a fresh connection to a well-behaved broker, every shown message confirmed, then
    /// the transport closes and no write may be left without its write-done.
    fn finish(&mut self) {
        self.close("end of input");
        self.events();
        self.open();
        self.serve();
        assert!(self.line.is_ready(), "not ready with a well-behaved broker");
        for _ in 0..=self.gate_queue.len() + 1 {
            let Some(shown) = self.shown else { break };
            self.write(GATE_ACK_ID, Value::Int(shown.into()));
            self.events();
            self.serve();
        }
        assert!(
            self.shown.is_none() && self.gate_queue.is_empty(),
            "messages of the gated station never shown: {:?} (shown: {:?})",
            self.gate_queue,
            self.shown
        );
        self.close("end");
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
});
