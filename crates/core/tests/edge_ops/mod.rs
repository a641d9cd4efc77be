//! An edge node line driven by a sequence of operations (each from one byte), with the checks of
//! its seq and birth bookkeeping on every packet it sends. Shared by the property test in
//! tests/sparkplug_edge.rs and the fuzz target `edge_sequence` (fuzz/fuzz_targets/).
#![allow(dead_code)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mqtt_line_core::mqtt::{
    conn_ack, sub_ack, ConnectReturnCode, Packet, QoS, SubscribeReasonCode,
};
use mqtt_line_core::parts::sparkplug_payload::{decode, encode, Metric, MetricValue, Payload};
use mqtt_line_core::{Event, Line, LineConfig, StationCommand, StationId, TagId, Value, ValueType};

const NODE: u64 = 1;
const DEVICES: [u64; 2] = [2, 3];

/// What the line has said on the current connection, as a host would track it.
#[derive(Default)]
struct Seen {
    bd_seq: Option<MetricValue>,
    will_bd_seq: Option<MetricValue>,
    born: bool,
    last_seq: Option<u64>,
    devices: HashSet<String>,
    leaving: bool,
}

/// An edge line with a node and two devices (one output tag each, and one input tag on the
/// node), optionally waiting for primary host `scada`.
pub struct EdgeRun {
    line: Line,
    now: Instant,
    wall: i64,
    connected: bool,
    seen: Seen,
    writes: u64,
    done: u64,
    state_ms: u64,
    /// Messages checked, by kind: NBIRTH, data, DDEATH.
    pub births: u64,
    pub data: u64,
    pub device_deaths: u64,
}

impl EdgeRun {
    pub fn new(primary: bool, store_max: &str) -> EdgeRun {
        let mut params = vec![
            ("host", "127.0.0.1"),
            ("payload_type", "Sparkplug Edge Node"),
            ("store_max_messages", store_max),
        ];
        if primary {
            params.push(("sparkplug_primary_host_id", "scada"));
        }
        let (config, _) = LineConfig::from_params("line 'E'", params).expect("valid parameters");
        let now = Instant::now();
        let mut line = Line::new("E", config, now);
        let stations = [
            (NODE, "plant/n"),
            (DEVICES[0], "plant/n/a"),
            (DEVICES[1], "plant/n/b"),
        ];
        for (id, address) in stations {
            line.add_station(StationId(id), address, address, [])
                .expect("valid station");
            line.add_tag(
                StationId(id),
                TagId(id * 10),
                "v",
                "SPB=V",
                ValueType::Ao,
                None,
            )
            .expect("valid tag");
        }
        line.add_tag(
            StationId(NODE),
            TagId(99),
            "c",
            "SPB=C",
            ValueType::Ai,
            None,
        )
        .expect("valid tag");
        line.start(1_700_000_000_000_000_000).expect("starts");
        EdgeRun {
            line,
            now,
            wall: 1_700_000_000_000_000_000,
            connected: false,
            seen: Seen::default(),
            writes: 0,
            done: 0,
            state_ms: 0,
            births: 0,
            data: 0,
            device_deaths: 0,
        }
    }

    /// One operation per byte.
    pub fn run(&mut self, ops: &[u8]) {
        for &op in ops {
            self.step(op);
        }
        // Every write ends in exactly one WriteDone, once the line is flushed or disconnected.
        self.line.flushed(self.wall);
        self.disconnect();
        self.drain();
        assert_eq!(self.done, self.writes, "each write completes exactly once");
    }

    fn step(&mut self, op: u8) {
        self.now += Duration::from_millis(10);
        self.wall += 10_000_000;
        match op % 12 {
            0..=2 => {
                let station = [NODE, DEVICES[0], DEVICES[1]][usize::from(op / 12 % 3)];
                self.writes += 1;
                let value = Value::Float(f64::from(op));
                self.line
                    .write(TagId(station * 10), self.writes, value, self.now, self.wall)
                    .expect("known tag");
            }
            3 => self.line.flushed(self.wall),
            4 => self.connect(),
            5 => self.disconnect(),
            6 | 7 => {
                let station = DEVICES[usize::from(op % 2)];
                let cmd = if op / 12 % 2 == 0 {
                    StationCommand::Off
                } else {
                    StationCommand::On
                };
                self.line
                    .station_command(StationId(station), cmd, self.now, self.wall)
                    .expect("known station");
            }
            8 => self.command("Node Control/Rebirth", MetricValue::Boolean(true)),
            9 if op / 12 % 4 == 0 => {
                self.command("Node Control/Next Server", MetricValue::Boolean(true))
            }
            9 => self.command("C", MetricValue::Double(1.0)),
            10 => self.state(op / 12 % 2 == 0),
            _ => {
                let _ = self.line.handle_timeout(self.now, self.wall);
            }
        }
        self.check_sent();
        self.drain();
    }

    fn connect(&mut self) {
        if self.connected || !self.line.wants_connection() {
            return;
        }
        self.connected = true;
        self.seen = Seen::default();
        self.line
            .transport_open("127.0.0.1:1883", &Default::default(), self.now);
        let mut sent = Vec::new();
        while let Some(p) = self.line.poll_transmit(self.now) {
            sent.push(p);
        }
        let Some(Packet::Connect(_, Some(will), _)) = sent.first() else {
            panic!("CONNECT with a will first: {sent:?}")
        };
        let will = decode(&will.message).expect("the will is a Sparkplug payload");
        self.seen.will_bd_seq = will.metrics.first().and_then(|m| m.value.clone());
        self.line
            .handle_packet(
                Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
                self.now,
                self.wall,
            )
            .expect("CONNACK");
        let mut sub = None;
        while let Some(p) = self.line.poll_transmit(self.now) {
            if let Packet::Subscribe(s) = &p {
                sub = Some((s.pkid, s.filters.len()));
            }
            assert!(
                !matches!(p, Packet::Publish(_)),
                "nothing before SUBACK: {p:?}"
            );
        }
        let (pkid, n) = sub.expect("SUBSCRIBE after CONNACK");
        let codes = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce); n];
        self.line
            .handle_packet(Packet::SubAck(sub_ack(pkid, codes)), self.now, self.wall)
            .expect("SUBACK");
    }

    fn disconnect(&mut self) {
        if !self.connected {
            return;
        }
        self.connected = false;
        self.line.transport_closed("lost", self.wall);
        self.line
            .connection_ended(self.now, mqtt_line_core::Ended::Lost);
    }

    fn receive(&mut self, topic: &str, payload: Vec<u8>) {
        if !self.connected || !self.line.is_ready() {
            return;
        }
        let p = mqtt_line_core::mqtt::Publish::new(topic, QoS::AtMostOnce, payload, None);
        self.line
            .handle_packet(Packet::Publish(p), self.now, self.wall)
            .expect("a PUBLISH is taken");
    }

    fn command(&mut self, name: &str, value: MetricValue) {
        let payload = encode(&Payload {
            timestamp: Some(1),
            metrics: vec![Metric {
                name: Some(name.into()),
                datatype: Some(if name == "C" { 10 } else { 11 }),
                value: Some(value),
                ..Default::default()
            }],
            ..Default::default()
        });
        self.receive("spBv1.0/plant/NCMD/n", payload);
    }

    fn state(&mut self, online: bool) {
        self.state_ms += 1;
        let body = format!("{{\"online\":{online},\"timestamp\":{}}}", self.state_ms);
        self.receive("spBv1.0/STATE/scada", body.into_bytes());
    }

    /// Checks every packet the line sends now, as a host would see them.
    fn check_sent(&mut self) {
        while let Some(packet) = self.line.poll_transmit(self.now) {
            let p = match packet {
                Packet::Publish(p) => p,
                Packet::Disconnect(_) => {
                    self.seen.leaving = true;
                    continue;
                }
                _ => continue,
            };
            assert!(!self.seen.leaving, "nothing after DISCONNECT");
            let topic = String::from_utf8_lossy(&p.topic).into_owned();
            let levels: Vec<&str> = topic.split('/').collect();
            let kind = levels[2];
            let payload = decode(&p.payload).expect("a Sparkplug payload");
            assert_eq!(p.qos, QoS::AtMostOnce, "{topic}");
            assert!(!p.retain, "{topic}");
            let s = &mut self.seen;
            if kind == "NDEATH" {
                assert!(payload.seq.is_none(), "NDEATH has no seq");
                assert_eq!(payload.metrics[0].value, s.will_bd_seq, "NDEATH bdSeq");
                s.born = false;
                continue;
            }
            let seq = payload.seq.expect("every other message has a seq");
            assert!(seq <= 255);
            if kind == "NBIRTH" {
                assert_eq!(seq, 0, "NBIRTH seq 0");
                let bd = payload
                    .metrics
                    .iter()
                    .find(|m| m.name.as_deref() == Some("bdSeq"));
                assert_eq!(
                    bd.and_then(|m| m.value.clone()),
                    s.will_bd_seq,
                    "bdSeq of the will"
                );
                s.born = true;
                s.devices.clear();
                self.births += 1;
            } else {
                assert!(s.born, "{kind} before NBIRTH");
                assert_eq!(Some(seq), s.last_seq.map(|l| (l + 1) % 256), "{kind} seq");
                let device = levels.get(4).map(|d| d.to_string());
                match (kind, device) {
                    ("DBIRTH", Some(d)) => {
                        assert!(s.devices.insert(d), "DBIRTH twice");
                    }
                    ("DDEATH", Some(d)) => {
                        assert!(s.devices.remove(&d), "DDEATH without DBIRTH");
                        self.device_deaths += 1;
                    }
                    ("DDATA", Some(d)) => {
                        assert!(s.devices.contains(&d), "DDATA before DBIRTH");
                        self.data += 1;
                    }
                    ("NDATA", None) => self.data += 1,
                    other => panic!("unexpected {other:?}"),
                }
            }
            s.last_seq = Some(seq);
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.line.poll_event() {
            if let Event::WriteDone { .. } = e {
                self.done += 1;
            }
        }
    }
}
