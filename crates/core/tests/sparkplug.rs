//! The line as a Sparkplug B host application, driven as the shell drives it: births, data by
//! alias, deaths, seq gaps and rebirth requests on virtual time, commands, STATE.

mod common;

use std::time::Duration;

use common::*;
use mqtt_line_core::mqtt::{Packet, Publish, QoS};
use mqtt_line_core::parts::sparkplug_payload::{
    decode, encode, DataSet, DataSetValue, Metric, MetricValue, Payload, Row,
};
use mqtt_line_core::{Ended, LinkId, LogLevel, FLAG_TIME_FROM_PAYLOAD, FLAG_VALID};
use mqtt_line_core::{StationCommand, StationId, StationState, TagId, Value, ValueType};

const NODE: u64 = 1;
const DEVICE: u64 = 2;

fn metric(name: Option<&str>, alias: Option<u64>, datatype: u32, value: MetricValue) -> Metric {
    Metric {
        name: name.map(String::from),
        alias,
        datatype: Some(datatype),
        value: Some(value),
        ..Default::default()
    }
}

fn by_alias(alias: u64, value: MetricValue) -> Metric {
    Metric {
        alias: Some(alias),
        value: Some(value),
        ..Default::default()
    }
}

fn payload(seq: Option<u64>, timestamp: Option<u64>, metrics: Vec<Metric>) -> Vec<u8> {
    encode(&Payload {
        timestamp,
        seq,
        metrics,
        ..Default::default()
    })
}

fn nbirth(bd_seq: u64) -> Vec<u8> {
    payload(
        Some(0),
        Some(1_000),
        vec![
            metric(Some("bdSeq"), None, 4, MetricValue::Long(bd_seq)),
            metric(
                Some("Node Control/Rebirth"),
                Some(0),
                11,
                MetricValue::Boolean(false),
            ),
            metric(
                Some("Inputs/Temperature"),
                Some(1),
                10,
                MetricValue::Double(20.5),
            ),
            metric(Some("Outputs/Setpoint"), Some(2), 3, MetricValue::Int(7)),
            metric(Some("Outputs/Level"), Some(3), 5, MetricValue::Int(0)),
        ],
    )
}

fn dbirth(seq: u64) -> Vec<u8> {
    payload(
        Some(seq),
        Some(2_000),
        vec![metric(Some("Speed"), Some(10), 9, MetricValue::Float(1.5))],
    )
}

/// A connected Sparkplug line: station 1 is node `plant/press1` with SPB= tags 11 (Temperature,
/// Ai), 12 (Setpoint, Ao), 13 (Level, Co); station 2 is its device `plc` with tag 21 (Speed, Ai).
fn host(extra: &[(&str, &str)]) -> Harness {
    let mut params = vec![("payload_type", "Sparkplug B")];
    params.extend_from_slice(extra);
    let mut h = Harness::new(&params);
    h.line
        .add_station(StationId(NODE), "press1", "plant/press1", [])
        .unwrap();
    h.line
        .add_station(StationId(DEVICE), "plc", "plant/press1/plc", [])
        .unwrap();
    for (station, tag, address, ty) in [
        (NODE, 11, "SPB=Inputs/Temperature", ValueType::Ai),
        (NODE, 12, "SPB=Outputs/Setpoint", ValueType::Ao),
        (NODE, 13, "SPB=Outputs/Level", ValueType::Co),
        (DEVICE, 21, "SPB=Speed", ValueType::Ai),
    ] {
        h.line
            .add_tag(StationId(station), TagId(tag), address, address, ty, None)
            .unwrap();
    }
    h.line.start(0).unwrap();
    h.connect();
    h.transmit();
    h.events();
    h
}

/// The rebirth requests among the packets sent: the node topic of each.
fn rebirth_requests(packets: &[Packet]) -> Vec<String> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) if String::from_utf8_lossy(&p.topic).contains("/NCMD/") => {
                let cmd = decode(&p.payload).unwrap();
                let m = &cmd.metrics[0];
                assert_eq!(m.name.as_deref(), Some("Node Control/Rebirth"));
                assert_eq!(m.value, Some(MetricValue::Boolean(true)));
                assert_eq!(m.datatype, Some(11));
                Some(String::from_utf8_lossy(&p.topic).into_owned())
            }
            _ => None,
        })
        .collect()
}

/// Receives `payload` on `topic` at QoS 0; the events it made.
fn qos0(h: &mut Harness, topic: &str, payload: &[u8]) -> Vec<mqtt_line_core::Event> {
    h.receive(topic, payload, QoS::AtMostOnce, 0)
}

/// The node's NBIRTH (bdSeq 0) and the device's DBIRTH, their packets and events taken.
fn born(h: &mut Harness) {
    qos0(h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
    qos0(h, "spBv1.0/plant/DBIRTH/press1/plc", &dbirth(1));
    h.transmit();
    h.events();
}

/// The one PUBLISH the line sent.
fn sent_publish(h: &mut Harness) -> Publish {
    let sent = h.transmit();
    match sent.as_slice() {
        [Packet::Publish(p)] => p.clone(),
        _ => panic!("expected one PUBLISH: {sent:?}"),
    }
}

#[test]
fn births_set_every_metric_and_data_comes_by_alias() {
    let mut h = host(&[]);
    let ev = qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
    // Input tags only: the birth's time stamp is the values' time.
    assert_eq!(
        values(&ev),
        [(
            11,
            Some(Value::Float(20.5)),
            FLAG_VALID | FLAG_TIME_FROM_PAYLOAD
        )]
    );
    let ev = qos0(&mut h, "spBv1.0/plant/DBIRTH/press1/plc", &dbirth(1));
    assert_eq!(values(&ev)[0].1, Some(Value::Float(1.5)));

    // NDATA by alias: the metric's own time stamp wins over the payload's.
    let mut m = by_alias(1, MetricValue::Double(21.0));
    m.timestamp = Some(5_000);
    let data = payload(Some(2), Some(4_000), vec![m]);
    let ev = h.receive("spBv1.0/plant/NDATA/press1", &data, QoS::AtLeastOnce, 9);
    assert!(
        matches!(
            ev.as_slice(),
            [mqtt_line_core::Event::TagValue {
                time_ns: 5_000_000_000,
                ..
            }]
        ),
        "{ev:?}"
    );
    assert_eq!(values(&ev)[0].1, Some(Value::Float(21.0)));
    assert_eq!(h.transmit().len(), 1, "the QoS 1 message is acknowledged");

    // Without time stamps the receive time is used; is_null makes the tag invalid.
    let ev = h.receive(
        "spBv1.0/plant/DDATA/press1/plc",
        &payload(Some(3), None, vec![by_alias(10, MetricValue::Float(2.5))]),
        QoS::AtMostOnce,
        0,
    );
    assert_eq!(values(&ev), [(21, Some(Value::Float(2.5)), FLAG_VALID)]);
    let mut null = by_alias(1, MetricValue::Double(0.0));
    null.is_null = Some(true);
    let ev = h.receive(
        "spBv1.0/plant/NDATA/press1",
        &payload(Some(4), None, vec![null]),
        QoS::AtMostOnce,
        0,
    );
    assert_eq!(values(&ev), [(11, None, 0)]);
    assert!(logs(&ev).is_empty(), "a null is no warning: {ev:?}");
    assert!(rebirth_requests(&h.transmit()).is_empty());
}

#[test]
fn a_value_that_does_not_fit_invalidates_with_a_warning() {
    let mut h = host(&[]);
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
    let data = payload(
        Some(1),
        None,
        vec![by_alias(1, MetricValue::Double(f64::NAN))],
    );
    let ev = qos0(&mut h, "spBv1.0/plant/NDATA/press1", &data);
    assert_eq!(values(&ev), [(11, None, 0)]);
    let (level, text) = &logs(&ev)[0];
    assert_eq!(*level, LogLevel::Warn);
    assert!(
        text.contains("press1.SPB=Inputs/Temperature") && text.contains("NaN"),
        "{text}"
    );
}

#[test]
fn a_data_message_is_read_whole_before_any_tag_is_set() {
    let mut h = host(&[("sparkplug_reorder_timeout", "0")]);
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
    // Two good metrics, then the second one's value key turned into a wire type protobuf does
    // not have: prost refuses the payload, so the first metric must not reach its tag either.
    let mut data = payload(
        Some(1),
        None,
        vec![
            by_alias(1, MetricValue::Double(7.0)),
            by_alias(1, MetricValue::Double(8.0)),
        ],
    );
    let last_value = data.iter().rposition(|&b| b == 0x69).unwrap();
    data[last_value] = 0x6f;
    let ev = qos0(&mut h, "spBv1.0/plant/NDATA/press1", &data);
    assert!(values(&ev).is_empty(), "{ev:?}");
    assert!(
        logs(&ev)
            .iter()
            .any(|(l, t)| *l == LogLevel::Warn && t.contains("requesting a rebirth")),
        "{ev:?}"
    );
    assert_eq!(
        rebirth_requests(&h.transmit()),
        ["spBv1.0/plant/NCMD/press1"]
    );
}

#[test]
fn datasets_reach_text_tags_as_json() {
    let mut h = Harness::new(&[("payload_type", "Sparkplug B")]);
    h.line.add_station(StationId(1), "n", "g/n", []).unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(1),
            "t",
            "SPB=Table",
            ValueType::TxtI,
            None,
        )
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let table = DataSet {
        num_of_columns: Some(1),
        columns: vec!["n".into()],
        types: vec![3],
        rows: vec![Row {
            elements: vec![DataSetValue {
                value: Some(mqtt_line_core::parts::sparkplug_payload::CellValue::Int(4)),
            }],
        }],
    };
    let birth = payload(
        Some(0),
        None,
        vec![
            metric(Some("bdSeq"), None, 4, MetricValue::Long(0)),
            metric(
                Some("Table"),
                Some(1),
                16,
                MetricValue::DataSet(Box::new(table)),
            ),
        ],
    );
    let ev = qos0(&mut h, "spBv1.0/g/NBIRTH/n", &birth);
    assert_eq!(
        values(&ev)[0].1,
        Some(Value::Text(
            r#"{"columns":["n"],"types":["Int32"],"rows":[[4]]}"#.into()
        ))
    );
}

#[test]
fn deaths_with_the_current_bd_seq_end_node_and_devices() {
    let mut h = host(&[]);
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(7));
    qos0(&mut h, "spBv1.0/plant/DBIRTH/press1/plc", &dbirth(1));

    // Another session's death is ignored, and said so.
    let old = payload(
        None,
        None,
        vec![metric(Some("bdSeq"), None, 4, MetricValue::Long(6))],
    );
    let ev = qos0(&mut h, "spBv1.0/plant/NDEATH/press1", &old);
    assert!(states(&ev).is_empty());
    assert!(logs(&ev)[0].1.contains("bdSeq 6 is ignored"), "{ev:?}");

    let death = payload(
        None,
        None,
        vec![metric(Some("bdSeq"), None, 4, MetricValue::Long(7))],
    );
    let ev = qos0(&mut h, "spBv1.0/plant/NDEATH/press1", &death);
    assert_eq!(
        states(&ev),
        [
            (NODE, StationState::HardError),
            (DEVICE, StationState::HardError)
        ]
    );
    assert_eq!(values(&ev), [(11, None, 0), (21, None, 0)]);
    assert_eq!(times(&ev), [42; 4], "an NDEATH: the time of receipt");

    // The next birth brings the node back; the device waits for its own.
    let ev = qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(8));
    assert_eq!(states(&ev), [(NODE, StationState::Ok)]);
    let ev = qos0(&mut h, "spBv1.0/plant/DBIRTH/press1/plc", &dbirth(1));
    assert_eq!(states(&ev), [(DEVICE, StationState::Ok)]);

    // DDEATH ends one device, at the time its payload says (the NDEATH above took the time of
    // receipt, 42).
    let ev = h.receive(
        "spBv1.0/plant/DDEATH/press1/plc",
        &payload(Some(2), Some(5_000), vec![]),
        QoS::AtMostOnce,
        0,
    );
    assert_eq!(states(&ev), [(DEVICE, StationState::HardError)]);
    assert_eq!(values(&ev), [(21, None, 0)]);
    assert_eq!(times(&ev), [5_000_000_000, 5_000_000_000]);
}

/// The time stamps of the station states and tag values among `events`.
fn times(events: &[mqtt_line_core::Event]) -> Vec<i64> {
    use mqtt_line_core::Event;
    events
        .iter()
        .filter_map(|e| match e {
            Event::StationState { time_ns, .. } | Event::TagValue { time_ns, .. } => Some(*time_ns),
            _ => None,
        })
        .collect()
}

/// Each row: what goes wrong after the birth, then the check that a rebirth was requested.
#[test]
fn lost_sequence_requests_a_rebirth_at_most_once_per_debounce() {
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "a gap",
            "spBv1.0/plant/NDATA/press1",
            payload(Some(5), None, vec![by_alias(1, MetricValue::Double(1.0))]),
        ),
        (
            "an unknown alias",
            "spBv1.0/plant/NDATA/press1",
            payload(Some(1), None, vec![by_alias(99, MetricValue::Double(1.0))]),
        ),
        (
            "data of an unborn device",
            "spBv1.0/plant/DDATA/press1/other",
            payload(Some(1), None, vec![by_alias(10, MetricValue::Float(1.0))]),
        ),
        (
            "no seq",
            "spBv1.0/plant/NDATA/press1",
            payload(None, None, vec![]),
        ),
        (
            "not protobuf",
            "spBv1.0/plant/NDATA/press1",
            vec![0xff, 0xff],
        ),
    ];
    for (what, topic, bad) in cases {
        // Without a Reorder Timeout a gap asks at once (with one: a_gap_is_held_for_the_reorder_timeout).
        let mut h = host(&[
            ("sparkplug_rebirth_debounce", "10"),
            ("sparkplug_reorder_timeout", "0"),
        ]);
        qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
        let ev = qos0(&mut h, topic, &bad);
        assert!(
            logs(&ev)
                .iter()
                .any(|(l, t)| *l == LogLevel::Warn && t.contains("requesting a rebirth")),
            "{what}: {ev:?}"
        );
        assert_eq!(
            rebirth_requests(&h.transmit()),
            ["spBv1.0/plant/NCMD/press1"],
            "{what}"
        );

        // Out of step: later data is dropped (the tags keep their values) and not asked again
        // within the debounce time.
        let next = payload(Some(2), None, vec![by_alias(1, MetricValue::Double(99.0))]);
        h.now += Duration::from_secs(9);
        let ev = qos0(&mut h, "spBv1.0/plant/NDATA/press1", &next);
        assert!(values(&ev).is_empty(), "{what}: {ev:?}");
        assert!(rebirth_requests(&h.transmit()).is_empty(), "{what}");
        h.now += Duration::from_secs(1);
        qos0(&mut h, "spBv1.0/plant/NDATA/press1", &next);
        assert_eq!(
            rebirth_requests(&h.transmit()).len(),
            1,
            "{what}: after the debounce"
        );

        // The rebirth puts the node back in step.
        qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(1));
        let next = payload(Some(1), None, vec![by_alias(1, MetricValue::Double(3.0))]);
        let ev = qos0(&mut h, "spBv1.0/plant/NDATA/press1", &next);
        assert_eq!(
            values(&ev),
            [(11, Some(Value::Float(3.0)), FLAG_VALID)],
            "{what}"
        );
    }
}

#[test]
fn data_before_any_birth_requests_a_rebirth() {
    let mut h = host(&[]);
    let data = payload(Some(3), None, vec![by_alias(1, MetricValue::Double(1.0))]);
    let ev = qos0(&mut h, "spBv1.0/plant/NDATA/press1", &data);
    assert!(values(&ev).is_empty());
    assert!(logs(&ev)[0].1.contains("no NBIRTH"), "{ev:?}");
    assert_eq!(
        rebirth_requests(&h.transmit()),
        ["spBv1.0/plant/NCMD/press1"]
    );
}

#[test]
fn writes_send_commands_with_the_births_data_type() {
    // publish_qos and publish_retain do not apply: commands go at QoS 0, not retained
    // (tck-id-payloads-ncmd-qos, -ncmd-retain, -dcmd-qos, -dcmd-retain).
    let mut h = host(&[("publish_qos", "1"), ("publish_retain", "YES")]);
    born(&mut h);

    h.line
        .write(TagId(12), 1, Value::Float(42.0), h.now, 0)
        .unwrap();
    let p = sent_publish(&mut h);
    assert_eq!(p.topic, "spBv1.0/plant/NCMD/press1");
    assert_eq!(p.qos, QoS::AtMostOnce);
    assert!(!p.retain);
    let cmd = decode(&p.payload).unwrap();
    assert_eq!(cmd.seq, None, "a command carries no seq");
    assert!(cmd.timestamp.is_some());
    assert_eq!(cmd.metrics[0].name.as_deref(), Some("Outputs/Setpoint"));
    assert_eq!(cmd.metrics[0].datatype, Some(3));
    assert_eq!(cmd.metrics[0].value, Some(MetricValue::Int(42)));
    assert!(
        write_results(&h.events()).is_empty(),
        "done once on the socket"
    );
    h.line.flushed(0);
    assert_eq!(write_results(&h.events()), [(1, None)]);

    // UInt8 range: 300 does not fit.
    h.line
        .write(TagId(13), 2, Value::Int(300), h.now, 0)
        .unwrap();
    let done = write_results(&h.events());
    let err = done[0].1.as_deref().unwrap();
    assert!(
        err.contains("press1.SPB=Outputs/Level") && err.contains("300") && err.contains("UInt8"),
        "{err}"
    );
    assert!(h.transmit().is_empty());
}

#[test]
fn device_writes_send_dcmd_and_need_a_birth() {
    let mut params = vec![("payload_type", "Sparkplug B")];
    params.push(("host", "127.0.0.1"));
    let mut h = Harness::with_params(&params);
    h.line
        .add_station(StationId(1), "plc", "plant/press1/plc", [])
        .unwrap();
    h.line
        .add_station(StationId(2), "all", "plant/.*", [])
        .unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(1),
            "speed",
            "SPB=Speed",
            ValueType::Ao,
            None,
        )
        .unwrap();
    h.line
        .add_tag(
            StationId(2),
            TagId(2),
            "x",
            "SPB=Speed",
            ValueType::Ao,
            None,
        )
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.transmit();
    h.events();

    h.line
        .write(TagId(1), 1, Value::Float(2.0), h.now, 0)
        .unwrap();
    let err = write_results(&h.events())[0].1.clone().unwrap();
    assert!(err.contains("no NBIRTH"), "{err}");

    born(&mut h);
    h.line
        .write(TagId(1), 2, Value::Float(2.25), h.now, 0)
        .unwrap();
    let p = sent_publish(&mut h);
    assert_eq!(p.topic, "spBv1.0/plant/DCMD/press1/plc");
    let cmd = decode(&p.payload).unwrap();
    assert_eq!(cmd.metrics[0].value, Some(MetricValue::Float(2.25)));
    h.line.flushed(0);
    assert_eq!(
        write_results(&h.events()),
        [(2, None)],
        "QoS 0: done once flushed"
    );

    // A station whose address is an expression names no one node to command.
    h.line
        .write(TagId(2), 3, Value::Float(1.0), h.now, 0)
        .unwrap();
    let err = write_results(&h.events())[0].1.clone().unwrap();
    assert!(err.contains("not one edge node"), "{err}");
}

#[test]
fn stations_are_routed_by_identity_with_our_rules() {
    let mut h = Harness::new(&[("payload_type", "Sparkplug B")]);
    h.line
        .add_station(StationId(1), "exact", "plant/press1", [])
        .unwrap();
    h.line
        .add_station(StationId(2), "presses", "plant/press.*", [])
        .unwrap();
    for s in [1, 2] {
        h.line
            .add_tag(
                StationId(s),
                TagId(s),
                "t",
                "SPB=Inputs/Temperature",
                ValueType::Ai,
                None,
            )
            .unwrap();
    }
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let ev = qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
    assert_eq!(values(&ev)[0].0, 1, "exact before expressions");
    let ev = qos0(&mut h, "spBv1.0/plant/NBIRTH/press2", &nbirth(0));
    assert_eq!(values(&ev)[0].0, 2);
    let ev = qos0(&mut h, "spBv1.0/other/NBIRTH/press2", &nbirth(0));
    assert!(values(&ev).is_empty());
}

#[test]
fn a_primary_host_says_it_is_online_after_subscribing() {
    let mut h = Harness::new(&[
        ("payload_type", "Sparkplug B"),
        ("sparkplug_host_id", "scada"),
    ]);
    h.line.add_station(StationId(1), "n", "g/n", []).unwrap();
    h.line.start(1_700_000_000_000_000_000).unwrap();
    let sent = h.connect_packets(false);
    let [Packet::Connect(_, will, _), Packet::Subscribe(sub)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    let will = will.as_ref().unwrap();
    assert_eq!(&will.topic[..], b"spBv1.0/STATE/scada");
    assert_eq!(
        &will.message[..],
        br#"{"online":false,"timestamp":1700000000000}"#
    );
    assert!(will.retain);
    assert_eq!(sub.filters[0].path, "spBv1.0/#");
    let state = sent_publish(&mut h);
    assert_eq!(&state.topic[..], b"spBv1.0/STATE/scada");
    assert_eq!(
        &state.payload[..],
        br#"{"online":true,"timestamp":1700000000000}"#
    );
    assert!(state.retain);
    assert_eq!(state.qos, QoS::AtLeastOnce);

    // Its own retained "offline" (an earlier connection's will) is answered with online.
    let mut stale = Publish::new(
        "spBv1.0/STATE/scada",
        QoS::AtMostOnce,
        &br#"{"online":false,"timestamp":1}"#[..],
        None,
    );
    stale.retain = true;
    h.receive_publish(stale);
    let sent = h.transmit();
    assert!(
        matches!(sent.as_slice(), [Packet::Publish(p)] if &p.topic[..] == b"spBv1.0/STATE/scada"
            && &p.payload[..] == br#"{"online":true,"timestamp":1700000000000}"#
            && p.retain && p.qos == QoS::AtLeastOnce),
        "the same time stamp as the will: {sent:?}"
    );
}

#[test]
fn tags_that_do_not_fit_the_payload_type_are_warned_about_at_start() {
    let mut h = Harness::new(&[("payload_type", "Sparkplug B")]);
    h.line
        .add_station(StationId(1), "all", "plant/.*", [])
        .unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(1),
            "data",
            "IN_DATA",
            ValueType::TxtI,
            None,
        )
        .unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(2),
            "sp",
            "SPB=Speed",
            ValueType::Ao,
            None,
        )
        .unwrap();
    let w = h.line.check().unwrap();
    assert!(
        w[0].contains("'data' (IN_DATA) is not used on a Sparkplug B line"),
        "{w:?}"
    );
    assert!(w[1].contains("names no one edge node"), "{w:?}");

    let mut h = Harness::new(&[("payload_type", "JSON")]);
    h.line.add_station(StationId(1), "s", "t", []).unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(1),
            "sp",
            "SPB=Speed",
            ValueType::Ai,
            None,
        )
        .unwrap();
    let w = h.line.check().unwrap();
    assert!(w[0].contains("payload_type is not 'Sparkplug B'"), "{w:?}");
}

#[test]
fn a_death_while_the_station_is_off_shows_when_it_is_switched_on() {
    let mut h = host(&[]);
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(3));
    h.line
        .station_command(StationId(NODE), StationCommand::Off, h.now, 0)
        .unwrap();
    let death = payload(
        None,
        None,
        vec![metric(Some("bdSeq"), None, 4, MetricValue::Long(3))],
    );
    let ev = qos0(&mut h, "spBv1.0/plant/NDEATH/press1", &death);
    assert!(
        values(&ev).is_empty(),
        "an off station shows no values: {ev:?}"
    );
    h.line
        .station_command(StationId(NODE), StationCommand::On, h.now, 0)
        .unwrap();
    assert_eq!(states(&h.events()), [(NODE, StationState::HardError)]);
    let ev = qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(4));
    assert_eq!(states(&ev), [(NODE, StationState::Ok)]);
}

#[test]
fn messages_are_counted_for_the_station_of_their_identity() {
    let mut h = host(&[]);
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(3));
    qos0(&mut h, "spBv1.0/plant/NBIRTH/other", &nbirth(1));
    qos0(&mut h, "spBv1.0/STATE/someone", b"{\"online\":true}");
    qos0(
        &mut h,
        "spBv1.0/plant/NDATA/press1",
        b"\xff\xff not protobuf",
    );
    let line = h.line.stats();
    assert_eq!(line.received, 4);
    assert_eq!(line.unrouted, 2, "the other node and the STATE message");
    assert_eq!(line.payload_errors, 1);
    let station = h.line.station_stats(StationId(NODE)).unwrap();
    assert_eq!(station.received, 2);
}

/// 2023-11-14T22:13:20Z in Unix ns: a wall time far from the 0 the other helpers use.
const T0: i64 = 1_700_000_000_000_000_000;
const SECOND: i64 = 1_000_000_000;

/// The packets due, each stamped at wall time `wall_ns` as the shell's transmit does.
fn transmit_at(h: &mut Harness, wall_ns: i64) -> Vec<Packet> {
    transmit_on_at(h, LinkId::A, wall_ns)
}

/// [`transmit_at`] on connection `id`.
fn transmit_on_at(h: &mut Harness, id: LinkId, wall_ns: i64) -> Vec<Packet> {
    std::iter::from_fn(|| h.line.poll_transmit_at_on(id, h.now, wall_ns)).collect()
}

/// A primary host `scada` with node station 1 (`plant/press1`, tags as [`host`]), started at
/// `T0` and not yet connected.
fn primary_host() -> Harness {
    primary_host_with(&[])
}

/// [`primary_host`] with `extra` parameters.
fn primary_host_with(extra: &[(&str, &str)]) -> Harness {
    // publish_qos and publish_retain do not apply to commands.
    let mut params = vec![
        ("payload_type", "Sparkplug B"),
        ("sparkplug_host_id", "scada"),
        ("publish_qos", "2"),
        ("publish_retain", "YES"),
    ];
    params.extend_from_slice(extra);
    let mut h = Harness::new(&params);
    h.line
        .add_station(StationId(NODE), "press1", "plant/press1", [])
        .unwrap();
    h.line
        .add_station(StationId(DEVICE), "plc", "plant/press1/plc", [])
        .unwrap();
    for (station, tag, address, ty) in [
        (NODE, 12, "SPB=Outputs/Setpoint", ValueType::Ao),
        (DEVICE, 22, "SPB=Speed", ValueType::Ao),
    ] {
        h.line
            .add_tag(StationId(station), TagId(tag), address, address, ty, None)
            .unwrap();
    }
    h.line.start(T0).unwrap();
    h
}

/// Connects at wall time `wall_ns` (CONNECT stamped then), the broker accepting; the will's and
/// the STATE birth's payloads.
fn connect_at(h: &mut Harness, wall_ns: i64) -> (String, String) {
    connect_on_at(h, LinkId::A, wall_ns)
}

/// [`connect_at`] on connection `id` of a redundant line.
fn connect_on_at(h: &mut Harness, id: LinkId, wall_ns: i64) -> (String, String) {
    h.line
        .transport_open_on(id, "127.0.0.1:1883", &Default::default(), h.now);
    let sent = transmit_on_at(h, id, wall_ns);
    let [Packet::Connect(connect, Some(will), _)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert!(connect.clean_start, "Sparkplug: a clean session");
    let will = String::from_utf8(will.message.to_vec()).unwrap();
    h.line
        .handle_packet_on(
            id,
            Packet::ConnAck(mqtt_line_core::mqtt::conn_ack(
                mqtt_line_core::mqtt::ConnectReturnCode::Success,
                false,
            )),
            h.now,
            wall_ns + SECOND,
        )
        .unwrap();
    let sent = transmit_on_at(h, id, wall_ns + 2 * SECOND);
    let [Packet::Subscribe(sub)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    h.line
        .handle_packet_on(
            id,
            Packet::SubAck(mqtt_line_core::mqtt::sub_ack(
                sub.pkid,
                vec![mqtt_line_core::mqtt::SubscribeReasonCode::Success(
                    QoS::AtLeastOnce,
                )],
            )),
            h.now,
            wall_ns + 3 * SECOND,
        )
        .unwrap();
    let sent = transmit_on_at(h, id, wall_ns + 4 * SECOND);
    let [Packet::Publish(state)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(&state.topic[..], b"spBv1.0/STATE/scada");
    h.events();
    (will, String::from_utf8(state.payload.to_vec()).unwrap())
}

fn ms(wall_ns: i64) -> u64 {
    (wall_ns / 1_000_000) as u64
}

/// Issue 19: every Sparkplug time stamp is the time its packet is encoded, on virtual time: the
/// STATE will and birth after a reconnect, NCMD, DCMD and rebirth requests after the line was
/// idle.
#[test]
fn time_stamps_are_the_moment_of_sending() {
    let mut h = primary_host();
    let t1 = T0 + 60 * SECOND;
    let (will, online) = connect_at(&mut h, t1);
    let want = |online: bool, at: i64| format!(r#"{{"online":{online},"timestamp":{}}}"#, ms(at));
    assert_eq!(will, want(false, t1), "the will: when CONNECT is sent");
    assert_eq!(online, want(true, t1), "the birth repeats the will's");

    // Births at t2; the host writes 20 s later: the NCMD says t3, not t2.
    let t2 = t1 + 10 * SECOND;
    h.line
        .handle_packet(
            Packet::Publish(Publish::new(
                "spBv1.0/plant/NBIRTH/press1",
                QoS::AtMostOnce,
                nbirth(0),
                None,
            )),
            h.now,
            t2,
        )
        .unwrap();
    h.line
        .handle_packet(
            Packet::Publish(Publish::new(
                "spBv1.0/plant/DBIRTH/press1/plc",
                QoS::AtMostOnce,
                dbirth(1),
                None,
            )),
            h.now,
            t2,
        )
        .unwrap();
    let t3 = t2 + 20 * SECOND;
    h.line
        .write(TagId(12), 1, Value::Float(1.0), h.now, t3 - SECOND)
        .unwrap();
    h.line
        .write(TagId(22), 2, Value::Float(2.0), h.now, t3 - SECOND)
        .unwrap();
    let sent = transmit_at(&mut h, t3);
    assert_eq!(sent.len(), 2, "{sent:?}");
    for p in &sent {
        let Packet::Publish(p) = p else {
            panic!("{p:?}")
        };
        assert_eq!((p.qos, p.retain), (QoS::AtMostOnce, false), "{p:?}");
        let cmd = decode(&p.payload).unwrap();
        assert_eq!(cmd.seq, None, "{p:?}");
        assert_eq!(cmd.timestamp, Some(ms(t3)), "{p:?}");
        assert_eq!(cmd.metrics[0].timestamp, Some(ms(t3)), "{p:?}");
    }

    // A rebirth request decided at t4 and sent at t5 says t5.
    let t4 = t3 + SECOND;
    h.line
        .handle_packet(
            Packet::Publish(Publish::new(
                "spBv1.0/plant/NDATA/press1",
                QoS::AtMostOnce,
                payload(Some(5), None, vec![]),
                None,
            )),
            h.now,
            t4,
        )
        .unwrap();
    h.now += Duration::from_secs(3);
    h.line.handle_timeout(h.now, t4 + 3 * SECOND).unwrap();
    let t5 = t4 + 5 * SECOND;
    let sent = transmit_at(&mut h, t5);
    let [Packet::Publish(p)] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(rebirth_requests(&sent), ["spBv1.0/plant/NCMD/press1"]);
    assert_eq!(decode(&p.payload).unwrap().timestamp, Some(ms(t5)));

    // The broker goes away at t6; the next CONNECT (t7) carries t7, and so does the birth.
    let t6 = t5 + SECOND;
    h.line
        .transport_closed("the broker closed the connection", t6);
    let t7 = t6 + 30 * SECOND;
    let (will, online) = connect_at(&mut h, t7);
    assert_eq!(will, want(false, t7));
    assert_eq!(online, want(true, t7));
}

/// Issue 19: on an intended disconnect a primary host publishes its offline STATE (QoS 1,
/// retained, the time of the disconnect) before DISCONNECT, since the broker then drops the will.
#[test]
fn an_intended_disconnect_says_offline_first() {
    for why in [
        mqtt_line_core::Deliberate::Stop,
        mqtt_line_core::Deliberate::Restart,
    ] {
        let mut h = primary_host();
        connect_at(&mut h, T0);
        let mut buf = bytes::BytesMut::new();
        let t1 = T0 + 42 * SECOND;
        let bye = h.line.close_deliberately(why, &mut buf, h.now, t1);
        assert!(
            bye.await_eof.is_some(),
            "{why:?}: the PUBACK is read before the socket closes, or a reset could cost the \
             DISCONNECT"
        );
        let offline = format!(r#"{{"online":false,"timestamp":{}}}"#, ms(t1));
        let topic = b"spBv1.0/STATE/scada";
        // PUBLISH, QoS 1, retained: 0x30 | 0x02 | 0x01.
        assert_eq!(buf[0], 0x33, "{why:?}: {buf:?}");
        let at = |needle: &[u8]| buf.windows(needle.len()).position(|w| w == needle);
        assert!(at(topic).is_some(), "{why:?}: {buf:?}");
        assert!(at(offline.as_bytes()).is_some(), "{why:?}: {buf:?}");
        assert_eq!(&buf[buf.len() - 2..], [0xe0, 0x00], "then DISCONNECT");
    }

    // Without a host id, or before the broker accepted the connection: only DISCONNECT.
    let mut h = host(&[]);
    let mut buf = bytes::BytesMut::new();
    let bye = h
        .line
        .close_deliberately(mqtt_line_core::Deliberate::Stop, &mut buf, h.now, T0);
    assert_eq!(&buf[..], [0xe0, 0x00]);
    assert_eq!(bye.await_eof, None, "a stop does not wait for the broker");
    let mut h = primary_host();
    h.line
        .transport_open("127.0.0.1:1883", &Default::default(), h.now);
    transmit_at(&mut h, T0);
    let mut buf = bytes::BytesMut::new();
    h.line
        .close_deliberately(mqtt_line_core::Deliberate::Stop, &mut buf, h.now, T0);
    assert_eq!(&buf[..], [0xe0, 0x00]);
}

/// Issue 19: after NDEATH a write to the node's tags is refused, saying the node died; after
/// DDEATH the device's, saying the device died.
#[test]
fn writes_to_a_dead_node_or_device_are_refused() {
    let mut h = primary_host();
    connect_at(&mut h, T0);
    born(&mut h);
    qos0(
        &mut h,
        "spBv1.0/plant/DDEATH/press1/plc",
        &payload(Some(2), None, vec![]),
    );
    h.events();
    h.line
        .write(TagId(22), 1, Value::Float(1.0), h.now, 0)
        .unwrap();
    let err = write_results(&h.events())[0].1.clone().unwrap();
    assert!(err.contains("device 'plc' died (DDEATH"), "{err}");
    assert!(h.transmit().is_empty());

    let death = payload(
        None,
        None,
        vec![metric(Some("bdSeq"), None, 4, MetricValue::Long(0))],
    );
    qos0(&mut h, "spBv1.0/plant/NDEATH/press1", &death);
    h.events();
    for (tag, request) in [(12, 2), (22, 3)] {
        h.line
            .write(TagId(tag), request, Value::Float(1.0), h.now, 0)
            .unwrap();
        let err = write_results(&h.events())[0].1.clone().unwrap();
        assert!(err.contains("the node died (NDEATH)"), "{tag}: {err}");
    }
    assert!(h.transmit().is_empty(), "no command to a dead node");

    // Reborn: writes go again.
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(1));
    h.line
        .write(TagId(12), 4, Value::Float(1.0), h.now, 0)
        .unwrap();
    assert_eq!(sent_publish(&mut h).topic, "spBv1.0/plant/NCMD/press1");
}

/// Issue 19: an NBIRTH without seq, with a seq other than 0 or without bdSeq is not trusted:
/// a warning, a rebirth request, and none of its values.
#[test]
fn births_without_seq_0_or_bd_seq_ask_for_a_rebirth() {
    let bd = || metric(Some("bdSeq"), None, 4, MetricValue::Long(0));
    let temp = || {
        metric(
            Some("Inputs/Temperature"),
            Some(1),
            10,
            MetricValue::Double(1.5),
        )
    };
    let rows = [
        (
            "no seq",
            payload(None, None, vec![bd(), temp()]),
            "has no seq",
        ),
        (
            "seq 3",
            payload(Some(3), None, vec![bd(), temp()]),
            "has seq 3",
        ),
        (
            "no bdSeq",
            payload(Some(0), None, vec![temp()]),
            "no bdSeq metric",
        ),
    ];
    for (what, birth, reason) in rows {
        let mut h = host(&[]);
        let ev = qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &birth);
        assert!(values(&ev).is_empty(), "{what}: {ev:?}");
        assert!(
            logs(&ev).iter().any(|(l, t)| *l == LogLevel::Warn
                && t.contains(reason)
                && t.contains("requesting a rebirth")),
            "{what}: {ev:?}"
        );
        assert_eq!(
            rebirth_requests(&h.transmit()),
            ["spBv1.0/plant/NCMD/press1"],
            "{what}"
        );
        // Its data is not trusted either, until a proper birth.
        let data = payload(Some(1), None, vec![by_alias(1, MetricValue::Double(2.0))]);
        assert!(values(&qos0(&mut h, "spBv1.0/plant/NDATA/press1", &data)).is_empty());
        qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
        let ev = qos0(&mut h, "spBv1.0/plant/NDATA/press1", &data);
        assert_eq!(values(&ev), [(11, Some(Value::Float(2.0)), FLAG_VALID)]);
    }
}

/// One step of a reorder row: a node NDATA (seq, Temperature), or time passing (ms).
#[derive(Clone, Copy, Debug)]
enum Step {
    Data(u64, f64),
    Wait(u64),
}

/// A row of [`a_gap_is_held_for_the_reorder_timeout`].
type ReorderRow = (&'static str, &'static str, Vec<Step>, Vec<f64>, usize);

/// Issue 19: `sparkplug_reorder_timeout`. Each row: the timeout, the steps, the Temperature
/// values shown in order, and how many rebirth requests were sent. On virtual time.
#[test]
fn a_gap_is_held_for_the_reorder_timeout() {
    use Step::{Data, Wait};
    let rows: Vec<ReorderRow> = vec![
        (
            "in order",
            "500",
            vec![Data(1, 1.0), Data(2, 2.0), Data(3, 3.0)],
            vec![1.0, 2.0, 3.0],
            0,
        ),
        (
            "two swapped",
            "500",
            vec![Data(1, 1.0), Data(3, 3.0), Data(2, 2.0)],
            vec![1.0, 2.0, 3.0],
            0,
        ),
        (
            "three reversed",
            "500",
            vec![Data(3, 3.0), Data(2, 2.0), Wait(499), Data(1, 1.0)],
            vec![1.0, 2.0, 3.0],
            0,
        ),
        (
            "the gap stays open",
            "500",
            vec![Data(1, 1.0), Data(3, 3.0), Wait(499)],
            vec![1.0],
            0,
        ),
        (
            "the timeout runs out",
            "500",
            vec![Data(1, 1.0), Data(3, 3.0), Wait(500), Data(2, 2.0)],
            vec![1.0],
            1,
        ),
        (
            "a second gap starts a new timer",
            "500",
            vec![
                Data(2, 2.0),
                Data(4, 4.0),
                Wait(300),
                Data(1, 1.0),
                Wait(400),
                Data(3, 3.0),
            ],
            vec![1.0, 2.0, 3.0, 4.0],
            0,
        ),
        (
            "the second gap's timer runs out",
            "500",
            vec![
                Data(2, 2.0),
                Data(4, 4.0),
                Wait(300),
                Data(1, 1.0),
                Wait(500),
            ],
            vec![1.0, 2.0],
            1,
        ),
        (
            "a repeat is a gap at once",
            "500",
            vec![Data(1, 1.0), Data(1, 1.5)],
            vec![1.0],
            1,
        ),
        (
            "a repeat of a held seq is a gap at once",
            "500",
            vec![Data(2, 2.0), Data(2, 2.5)],
            vec![],
            1,
        ),
        (
            "no timeout: a gap asks at once",
            "0",
            vec![Data(1, 1.0), Data(3, 3.0), Data(2, 2.0)],
            vec![1.0],
            1,
        ),
    ];
    for (what, timeout, steps, shown, rebirths) in rows {
        let mut h = host(&[("sparkplug_reorder_timeout", timeout)]);
        qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
        h.transmit();
        let mut got = Vec::new();
        let mut requests = 0;
        for step in &steps {
            let ev = match *step {
                Data(seq, v) => {
                    let data = payload(Some(seq), None, vec![by_alias(1, MetricValue::Double(v))]);
                    qos0(&mut h, "spBv1.0/plant/NDATA/press1", &data)
                }
                Wait(ms) => {
                    h.now += Duration::from_millis(ms);
                    if h.line.poll_timeout().is_some_and(|t| t <= h.now) {
                        h.line.handle_timeout(h.now, 0).unwrap();
                    }
                    h.events()
                }
            };
            for (tag, value, _) in values(&ev) {
                if let (11, Some(Value::Float(v))) = (tag, value) {
                    got.push(v);
                }
            }
            requests += rebirth_requests(&h.transmit()).len();
        }
        assert_eq!(got, shown, "{what}: {steps:?}");
        assert_eq!(requests, rebirths, "{what}: {steps:?}");
    }
}

/// Issue 19: a held message waits at most the timeout, whatever else happens: `poll_timeout`
/// says when, and a birth drops what was held.
#[test]
fn the_reorder_deadline_is_the_lines_timeout() {
    let mut h = host(&[("sparkplug_reorder_timeout", "250")]);
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(0));
    let held_at = h.now;
    let data = payload(Some(2), None, vec![by_alias(1, MetricValue::Double(2.0))]);
    qos0(&mut h, "spBv1.0/plant/NDATA/press1", &data);
    assert_eq!(
        h.line.poll_timeout(),
        Some(held_at + Duration::from_millis(250))
    );
    qos0(&mut h, "spBv1.0/plant/NBIRTH/press1", &nbirth(1));
    h.now += Duration::from_millis(250);
    h.line.handle_timeout(h.now, 0).unwrap();
    assert!(
        rebirth_requests(&h.transmit()).is_empty(),
        "the birth ended the gap"
    );
}

/// Issue 19: payloads compressed as Tahu does it (uuid SPBV1.0_COMPRESSED, the `algorithm`
/// metric) are read, within max_decompressed_size.
#[test]
fn compressed_payloads_are_read_within_the_bound() {
    use std::io::Write;
    let envelope = |algorithm: &str, inner: &[u8]| {
        let body = match algorithm {
            "GZIP" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                e.write_all(inner).unwrap();
                e.finish().unwrap()
            }
            _ => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Default::default());
                e.write_all(inner).unwrap();
                e.finish().unwrap()
            }
        };
        encode(&Payload {
            uuid: Some("SPBV1.0_COMPRESSED".into()),
            body: Some(body),
            metrics: vec![metric(
                Some("algorithm"),
                None,
                12,
                MetricValue::String(algorithm.into()),
            )],
            ..Default::default()
        })
    };
    for algorithm in ["GZIP", "DEFLATE"] {
        let mut h = host(&[]);
        let ev = qos0(
            &mut h,
            "spBv1.0/plant/NBIRTH/press1",
            &envelope(algorithm, &nbirth(0)),
        );
        assert!(
            values(&ev).contains(&(
                11,
                Some(Value::Float(20.5)),
                FLAG_VALID | FLAG_TIME_FROM_PAYLOAD
            )),
            "{algorithm}: {ev:?}"
        );
        let data = payload(Some(1), None, vec![by_alias(1, MetricValue::Double(3.0))]);
        let ev = qos0(
            &mut h,
            "spBv1.0/plant/NDATA/press1",
            &envelope(algorithm, &data),
        );
        assert_eq!(
            values(&ev),
            [(11, Some(Value::Float(3.0)), FLAG_VALID)],
            "{algorithm}"
        );

        let mut h = host(&[("max_decompressed_size", "16")]);
        let ev = qos0(
            &mut h,
            "spBv1.0/plant/NBIRTH/press1",
            &envelope(algorithm, &nbirth(0)),
        );
        assert!(values(&ev).is_empty());
        assert!(
            logs(&ev)
                .iter()
                .any(|(_, t)| t.contains("more than 16 bytes (max_decompressed_size)")),
            "{algorithm}: {ev:?}"
        );
    }
}

/// Issue 21: a redundant Sparkplug host line keeps a STATE per broker (Sparkplug 3.0, several
/// servers): each connection's CONNECT carries its own will, stamped when that CONNECT was
/// encoded, and its `online` birth repeats that connection's time stamp, not the other's; a
/// reconnect of one restamps only its own.
#[test]
fn a_redundant_host_says_online_on_each_broker_with_its_own_time_stamp() {
    let mut h = primary_host_with(&[("redundant_host", "127.0.0.2")]);
    let (will_a, birth_a) = connect_on_at(&mut h, LinkId::A, T0);
    let (will_b, birth_b) = connect_on_at(&mut h, LinkId::B, T0 + 10 * SECOND);
    let (a, b) = (ms(T0), ms(T0 + 10 * SECOND));
    let state = |online: bool, t: u64| format!("{{\"online\":{online},\"timestamp\":{t}}}");
    assert_eq!((will_a, birth_a), (state(false, a), state(true, a)));
    assert_eq!((will_b, birth_b), (state(false, b), state(true, b)));
    // B is lost and comes back: its new STATE is its own; A's stays.
    h.line
        .transport_closed_on(LinkId::B, "gone", T0 + 20 * SECOND);
    h.line.connection_ended_on(LinkId::B, h.now, Ended::Lost);
    let (will_b, birth_b) = connect_on_at(&mut h, LinkId::B, T0 + 30 * SECOND);
    let b = ms(T0 + 30 * SECOND);
    assert_eq!((will_b, birth_b), (state(false, b), state(true, b)));
    assert!(transmit_on_at(&mut h, LinkId::A, T0 + 40 * SECOND).is_empty());
}
