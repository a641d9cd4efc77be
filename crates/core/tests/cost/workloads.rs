//! The workloads of the cost test: for each, a connected line as the benchmark's scenario
//! configures it and a fixed set of encoded PUBLISH packets, fed the way the driver feeds the
//! core (bytes into `handle_input`, events drained, acknowledgements encoded and flushed).
//!
//! Only the core's public API is used, so the workloads outlive refactorings of the receive
//! path. Each checks what its messages produce, so a line that silently stopped delivering
//! cannot pass for a cheap one.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mqtt_line_core::mqtt::{conn_ack, sub_ack, ConnectReturnCode, SubscribeReasonCode};
use mqtt_line_core::mqtt::{write_packet, Packet, Protocol, Publish, PublishProperties, QoS};
use mqtt_line_core::parts::sparkplug_payload::{encode, Metric, MetricValue, Payload};
use mqtt_line_core::{Event, LinkId, StationId, TagId, ValueType, FLAG_VALID};

use crate::common::payloads::{kepware_item, kepware_message, KEPWARE_PARAMS, UPLINK, UPLINK_TAGS};
use crate::common::{gated, Harness};

/// The time between two messages: longer than PUBACKs are held under load.
const QUIET: Duration = Duration::from_millis(2);

/// The wall-clock time handed to the line with every call (ns since the Unix epoch).
const WALL_NS: i64 = 1_764_000_000_000_000_000;

/// One workload of the budget file.
pub struct Workload {
    /// Its key in cost-budgets.toml.
    pub name: &'static str,
    /// What it stands for, in the report.
    pub what: &'static str,
    /// Messages of the shorter measured run (the longer has twice as many): enough that a few
    /// instructions of noise vanish in the division, few enough to stay fast under callgrind.
    /// A multiple of the packet set's length, so both runs end on the same message.
    pub messages: u64,
    build: fn() -> Feed,
}

impl Workload {
    pub fn feed(&self) -> Feed {
        (self.build)()
    }
}

/// Every workload, in the order of the budget file.
pub const WORKLOADS: [Workload; 9] = [
    Workload {
        name: "text",
        what: "scenario 1: a text payload into IN_TOPIC, IN_DATA, IN_ID (QoS 0)",
        messages: 1024,
        build: text,
    },
    Workload {
        name: "raw_json",
        what: "scenario 6: 70-byte JSON, 3 JA= tags and an ISO 8601 time (QoS 0)",
        messages: 1024,
        build: raw_json,
    },
    Workload {
        name: "lorawan_8ja",
        what: "scenario 2: ChirpStack v4 uplink (~1 KB), 8 JA= tags and its time (QoS 0)",
        messages: 256,
        build: lorawan,
    },
    Workload {
        name: "kepware_100",
        what: "scenario 2's second row: Kepware, 100 items selected by id, item time and quality",
        messages: 16,
        build: kepware,
    },
    Workload {
        name: "csv",
        what: "a CSV record of 4 fields into 4 CSV= tags (QoS 0)",
        messages: 1024,
        build: csv,
    },
    Workload {
        name: "sparkplug_ndata_20",
        what: "scenario 8: Sparkplug B NDATA, 20 Double metrics by alias (QoS 1)",
        messages: 256,
        build: sparkplug,
    },
    Workload {
        name: "mqtt5_properties",
        what: "MQTT 5: a JSON payload with user property, content type, response topic and \
               correlation data into their tags (QoS 1)",
        messages: 512,
        build: mqtt5,
    },
    Workload {
        name: "ack_id_gated",
        what: "an ACK_ID station: each message shown, confirmed by the host, acknowledged (QoS 1)",
        messages: 512,
        build: ack_id,
    },
    Workload {
        name: "redundant_twice",
        what: "issue 21, scenario 10: raw_json's messages on a redundant line, each through \
               connection A and then its copy through B (per message shown, both packets)",
        messages: 1024,
        build: redundant_twice,
    },
];

/// The workload whose messages `redundant_twice` receives once per connection: the report
/// prints their ratio (issue 21's target: at most 1.5).
pub const REDUNDANT_SINGLE: (&str, &str) = ("redundant_twice", "raw_json");

pub fn workload(name: &str) -> Option<&'static Workload> {
    WORKLOADS.iter().find(|w| w.name == name)
}

/// A line ready to receive, its packets and what each message must give.
pub struct Feed {
    h: Harness,
    protocol: Protocol,
    /// Encoded PUBLISH packets, fed in turn.
    packets: Vec<Bytes>,
    /// Valid tag values each message must yield.
    values: usize,
    /// Gated: the IN_ID tag, and the ACK_ID tag the host writes its value to after each message.
    confirm: Option<(TagId, TagId)>,
    /// The messages are QoS 1: each must be acknowledged (a PUBACK sent) before the next.
    acknowledged: bool,
    /// The connections each message arrives through, in turn: A alone, or on a redundant line
    /// A and then B (the copy, which must show nothing).
    links: &'static [LinkId],
}

impl Feed {
    fn new(h: Harness, protocol: Protocol, publishes: Vec<Publish>, values: usize) -> Feed {
        let acknowledged = publishes.iter().all(|p| p.qos != QoS::AtMostOnce);
        let packets = publishes
            .into_iter()
            .map(|p| {
                let mut buf = BytesMut::new();
                write_packet(&Packet::Publish(p), &mut buf, 1 << 20, protocol).unwrap();
                buf.freeze()
            })
            .collect();
        Feed {
            h,
            protocol,
            packets,
            values,
            confirm: None,
            acknowledged,
            links: &[LinkId::A],
        }
    }

    /// Feeds `messages` messages, one read each, as driver.rs does: the bytes into
    /// `handle_input`, every event taken, the acknowledgements encoded and flushed. Panics
    /// unless each message gave its valid values, was acknowledged at QoS 1 (and, gated, was
    /// shown and confirmed).
    pub fn run(&mut self, messages: u64) {
        let (mut input, mut output) = (BytesMut::new(), BytesMut::new());
        let start = self.h.now;
        let line = &mut self.h.line;
        let mut request = 0;
        for i in 0..messages {
            // Each message a quiet moment after the last, so that its acknowledgement leaves at
            // once (under load they leave together: ack_batch.rs) and is counted per message.
            let now = start + QUIET * u32::try_from(i).unwrap();
            let packet = &self.packets[i as usize % self.packets.len()];
            // Through each connection in turn, as the driver's loop of that connection does
            // (the `_on` forms); a redundant line's copy through B must show nothing.
            for &link in self.links {
                input.extend_from_slice(packet);
                line.handle_input_on(link, &mut input, now, WALL_NS)
                    .unwrap();
            }
            let (mut valid, mut shown) = (0, None);
            while let Some(e) = line.poll_event() {
                if let Event::TagValue {
                    tag, value, flags, ..
                } = &e
                {
                    if flags & FLAG_VALID != 0 {
                        valid += 1;
                    }
                    if self.confirm.is_some_and(|(in_id, _)| in_id == *tag) {
                        shown = value.clone();
                    }
                }
                black_box(e);
            }
            assert_eq!(valid, self.values, "valid values of message {i}");
            if let Some((_, ack)) = self.confirm {
                let id = shown.unwrap_or_else(|| panic!("message {i} was not shown"));
                request += 1;
                line.write(ack, request, id, now, WALL_NS).unwrap();
                while let Some(e) = line.poll_event() {
                    if let Event::WriteDone { error, .. } = &e {
                        assert_eq!(error, &None, "confirming message {i}");
                    }
                    black_box(e);
                }
            }
            for &link in self.links {
                line.poll_transmit_into_on(link, now, &mut output, WALL_NS)
                    .unwrap();
                assert_eq!(
                    !output.is_empty(),
                    self.acknowledged,
                    "message {i} acknowledged on {link:?}"
                );
                if !output.is_empty() {
                    line.bytes_pending_on(link, now);
                    black_box(&output);
                    output.clear();
                    line.flushed_on(link, WALL_NS);
                }
            }
        }
        assert!(
            input.is_empty(),
            "{:?}: a packet left half-read",
            self.protocol
        );
    }
}

/// A started, connected line (`params`) with station 1 on `topic` holding `tags` (address,
/// type) as tags 101, 102, …
fn line(params: &[(&str, &str)], topic: &str, tags: &[(String, ValueType)]) -> Harness {
    let mut h = Harness::new(params);
    h.line.add_station(StationId(1), "s1", topic, []).unwrap();
    for (k, (address, ty)) in tags.iter().enumerate() {
        let id = TagId(101 + k as u64);
        h.line
            .add_tag(StationId(1), id, address, address, *ty, None)
            .unwrap();
    }
    h.line.start(WALL_NS).unwrap();
    h.connect();
    h.transmit();
    h.events();
    h
}

/// Eight messages on `topic` whose payloads `payload(i)` makes; packet ids 1 to 8 above QoS 0.
fn publishes(topic: &str, qos: QoS, payload: impl Fn(usize) -> String) -> Vec<Publish> {
    (0..8)
        .map(|i| {
            let mut p = Publish::new(topic, qos, payload(i), None);
            if qos != QoS::AtMostOnce {
                p.pkid = i as u16 + 1;
            }
            p
        })
        .collect()
}

/// A JSON station whose payload's `time` is ISO 8601 (scenarios 2 and 6).
const JSON_ISO_TIME: [(&str, &str); 3] = [
    ("payload_type", "JSON"),
    ("time_field_name", "time"),
    ("time_mask", "ISO8601"),
];

/// A time stamp of message `i` in ISO 8601 with ns (30 characters, as the benchmark's).
fn iso_time(i: usize) -> String {
    format!("2026-12-06T17:00:0{i}.{:09}Z", 123_456_789 + i)
}

fn text() -> Feed {
    let mut h = Harness::new(&[]);
    h.station(1, "bench/s1/dev1");
    h.line.start(WALL_NS).unwrap();
    h.connect();
    h.events();
    let msgs = publishes("bench/s1/dev1", QoS::AtMostOnce, |i| {
        format!("{}", 1_764_000_000_123_456_789 + i as i64)
    });
    Feed::new(h, Protocol::V311, msgs, 3)
}

fn raw_json() -> Feed {
    let tags = [
        ("JA=temp".into(), ValueType::Ai),
        ("JA=hum".into(), ValueType::Ci),
        ("JA=ok".into(), ValueType::Ci),
    ];
    let h = line(&JSON_ISO_TIME, "bench/s6/sensor/1", &tags);
    let msgs = publishes("bench/s6/sensor/1", QoS::AtMostOnce, |i| {
        format!(
            r#"{{"time":"{}","temp":2{i}.5,"hum":4{i},"ok":1}}"#,
            iso_time(i)
        )
    });
    Feed::new(h, Protocol::V311, msgs, 3)
}

fn lorawan() -> Feed {
    let tags: Vec<(String, ValueType)> = UPLINK_TAGS
        .iter()
        .map(|(path, ty)| (format!("JA={path}"), *ty))
        .collect();
    let topic = "bench/s2/application/1/device/0101010101010101/event/up";
    let h = line(&JSON_ISO_TIME, topic, &tags);
    let time = "2026-11-24T00:00:00.123456789Z";
    let msgs = publishes(topic, QoS::AtMostOnce, |i| {
        UPLINK
            .replace(time, &iso_time(i))
            .replace(r#""rssi":-36"#, &format!(r#""rssi":-3{i}"#))
    });
    Feed::new(h, Protocol::V311, msgs, UPLINK_TAGS.len())
}

fn kepware() -> Feed {
    let tags: Vec<(String, ValueType)> = (1..=100)
        .map(|k| {
            let address = format!(r#"JA=values[id="{}"].v"#, kepware_item(k));
            (address, ValueType::Ai)
        })
        .collect();
    let topic = "bench/s2k/iotgateway";
    let h = line(&KEPWARE_PARAMS, topic, &tags);
    let message = kepware_message(100);
    let msgs = publishes(topic, QoS::AtMostOnce, |i| {
        message.replace("\"v\":1.5,", &format!("\"v\":{i}.25,"))
    });
    Feed::new(h, Protocol::V311, msgs, 100)
}

fn csv() -> Feed {
    let tags = [
        ("CSV=1".into(), ValueType::Ai),
        ("CSV=2".into(), ValueType::Ci),
        ("CSV=3".into(), ValueType::Di),
        ("CSV=4".into(), ValueType::TxtI),
    ];
    let h = line(&[("payload_type", "CSV")], "wcc/meter/1", &tags);
    let msgs = publishes("wcc/meter/1", QoS::AtMostOnce, |i| {
        format!("23{i}.5,{i}40,{},\"line {i}, ok\"", i % 2)
    });
    Feed::new(h, Protocol::V311, msgs, 4)
}

/// Scenario 8's edge node: metrics `M/1` .. `M/20`, Double, aliases 1 .. 20.
const METRICS: u64 = 20;

fn sparkplug() -> Feed {
    let tags: Vec<(String, ValueType)> = (1..=METRICS)
        .map(|k| (format!("SPB=M/{k}"), ValueType::Ai))
        .collect();
    let mut h = line(&[("payload_type", "Sparkplug B")], "bench/node1", &tags);
    let metric = |name: Option<String>, alias, datatype, value| Metric {
        name,
        alias: Some(alias),
        datatype,
        value: Some(value),
        ..Default::default()
    };
    let mut birth: Vec<Metric> = (1..=METRICS)
        .map(|k| {
            metric(
                Some(format!("M/{k}")),
                k,
                Some(10),
                MetricValue::Double(0.0),
            )
        })
        .collect();
    birth.push(Metric {
        name: Some("bdSeq".into()),
        datatype: Some(4),
        value: Some(MetricValue::Long(0)),
        ..Default::default()
    });
    let nbirth = encode(&Payload {
        timestamp: Some(1_700_000_000_000),
        seq: Some(0),
        metrics: birth,
        ..Default::default()
    });
    let shown = h.receive("spBv1.0/bench/NBIRTH/node1", &nbirth, QoS::AtMostOnce, 0);
    assert!(!shown.is_empty(), "the NBIRTH shows its metrics");
    // seq 1, 2, .. 255, 0: what follows the birth's 0 in turn.
    let msgs = (0..256u64)
        .map(|i| {
            let metrics = (1..=METRICS)
                .map(|k| metric(None, k, None, MetricValue::Double(k as f64 + i as f64)))
                .collect();
            let data = encode(&Payload {
                timestamp: Some(1_700_000_000_000 + i),
                seq: Some((i + 1) % 256),
                metrics,
                ..Default::default()
            });
            let mut p = Publish::new("spBv1.0/bench/NDATA/node1", QoS::AtLeastOnce, data, None);
            p.pkid = i as u16 + 1;
            p
        })
        .collect();
    Feed::new(h, Protocol::V311, msgs, METRICS as usize)
}

fn mqtt5() -> Feed {
    let tags = [
        ("JA=v".into(), ValueType::Ai),
        ("IN_PROPERTY=site".into(), ValueType::TxtI),
        ("IN_CONTENT_TYPE".into(), ValueType::TxtI),
        ("IN_RESPONSE_TOPIC".into(), ValueType::TxtI),
        ("IN_CORRELATION_DATA".into(), ValueType::TxtI),
    ];
    let params = [("protocol_version", "5"), ("payload_type", "JSON")];
    let h = line(&params, "plant/v5/1", &tags);
    let mut msgs = publishes("plant/v5/1", QoS::AtLeastOnce, |i| {
        format!(r#"{{"v":{i}.5}}"#)
    });
    for (i, p) in msgs.iter_mut().enumerate() {
        p.properties = Some(PublishProperties {
            user_properties: vec![("site".into(), format!("north-{i}"))],
            content_type: Some("application/json".into()),
            response_topic: Some("plant/v5/replies".into()),
            correlation_data: Some(Bytes::from(vec![0xab, i as u8])),
            ..PublishProperties::default()
        });
    }
    Feed::new(h, Protocol::V5, msgs, tags.len())
}

/// [`gated`]'s station 1 (IN_TOPIC 10, IN_DATA 11, IN_ID 12, ACK_ID 50) on topic `t`.
fn ack_id() -> Feed {
    let h = gated(&[]);
    let msgs = publishes("t", QoS::AtLeastOnce, |i| format!("reading {i}"));
    let mut feed = Feed::new(h, Protocol::V311, msgs, 3);
    feed.confirm = Some((TagId(12), TagId(50)));
    feed
}

/// raw_json's station and messages on a redundant line (`redundant_host`), both connections
/// ready; each message arrives through A and its copy through B.
fn redundant_twice() -> Feed {
    let tags = [
        ("JA=temp".into(), ValueType::Ai),
        ("JA=hum".into(), ValueType::Ci),
        ("JA=ok".into(), ValueType::Ci),
    ];
    let mut params = JSON_ISO_TIME.to_vec();
    params.push(("redundant_host", "127.0.0.2"));
    let mut h = line(&params, "bench/s6/sensor/1", &tags);
    connect_on(&mut h, LinkId::B);
    h.events();
    let msgs = publishes("bench/s6/sensor/1", QoS::AtMostOnce, |i| {
        format!(
            r#"{{"time":"{}","temp":2{i}.5,"hum":4{i},"ok":1}}"#,
            iso_time(i)
        )
    });
    let mut feed = Feed::new(h, Protocol::V311, msgs, 3);
    feed.links = &[LinkId::A, LinkId::B];
    feed
}

/// Opens connection `id` of the harness's line and lets its broker accept it and the
/// subscription (the harness connects A only).
fn connect_on(h: &mut Harness, id: LinkId) {
    let now = h.now;
    h.line
        .transport_open_on(id, "127.0.0.2:1883", &Default::default(), now);
    while h.line.poll_transmit_at_on(id, now, 0).is_some() {}
    let ack = conn_ack(ConnectReturnCode::Success, false);
    h.line
        .handle_packet_on(id, Packet::ConnAck(ack), now, 0)
        .unwrap();
    let mut pkid = None;
    while let Some(p) = h.line.poll_transmit_at_on(id, now, 0) {
        if let Packet::Subscribe(sub) = p {
            pkid = Some(sub.pkid);
        }
    }
    let pkid = pkid.expect("connection B subscribes");
    let granted = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)];
    h.line
        .handle_packet_on(id, Packet::SubAck(sub_ack(pkid, granted)), now, 0)
        .unwrap();
    assert!(h.line.is_link_ready(id), "connection {id:?} ready");
}
