//! The line as a Sparkplug B edge node, driven as the shell drives it on virtual time: the will
//! and subscriptions, births, data by alias, commands, rebirth and next server, device and node
//! deaths, the primary host's STATE, store-and-forward and its file, configuration errors.

mod common;

use bytes::BytesMut;
use common::*;
use mqtt_line_core::mqtt::{conn_ack, sub_ack, ConnectReturnCode, Packet, Publish, QoS};
use mqtt_line_core::mqtt::{read_packet, Protocol, SubscribeReasonCode};
use mqtt_line_core::parts::sparkplug_payload::{decode, encode, Metric, MetricValue, Payload};
use mqtt_line_core::{Deliberate, EdgeFiles, LogLevel, StoreFile, FLAG_TIME_FROM_PAYLOAD};
use mqtt_line_core::{StationCommand, StationId, TagId, Value, ValueType, FLAG_VALID};

const NODE: u64 = 1;
const DEVICE: u64 = 2;
/// 2023-11-14T22:13:20Z: the wall clock of these tests, in ns.
const T0: i64 = 1_700_000_000_000_000_000;
const T0_MS: u64 = 1_700_000_000_000;

/// The tags of the edge line: (station, tag, address, type).
const TAGS: [(u64, u64, &str, ValueType); 7] = [
    (NODE, 11, "SPB=Temperature", ValueType::Ao),
    (NODE, 12, "SPB=Setpoint", ValueType::Ao),
    (NODE, 13, "SPB=Setpoint", ValueType::Ai),
    (NODE, 14, "SPB=Count;type=Int32", ValueType::Co),
    (DEVICE, 21, "SPB=Speed", ValueType::Ao),
    (DEVICE, 22, "SPB=Run", ValueType::Di),
    (DEVICE, 23, "SPB=Label", ValueType::TxtI),
];

/// A started edge line: station 1 is node `plant/edge1`, station 2 its device `plc`.
fn edge_line(extra: &[(&str, &str)]) -> Harness {
    let mut params = vec![("payload_type", "Sparkplug Edge Node")];
    params.extend_from_slice(extra);
    let mut h = Harness::new(&params);
    h.line
        .add_station(StationId(NODE), "edge1", "plant/edge1", [])
        .unwrap();
    h.line
        .add_station(StationId(DEVICE), "plc", "plant/edge1/plc", [])
        .unwrap();
    for (station, tag, address, ty) in TAGS {
        h.line
            .add_tag(StationId(station), TagId(tag), address, address, ty, None)
            .unwrap();
    }
    let warnings = h.line.start(T0).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    h
}

/// Connects (CONNECT, SUBACK for every filter); returns every packet sent on the way, births
/// included.
fn connect(h: &mut Harness) -> Vec<Packet> {
    h.line
        .transport_open("127.0.0.1:1883", &Default::default(), h.now);
    let mut sent = h.transmit();
    h.line
        .handle_packet(
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
            h.now,
            T0,
        )
        .unwrap();
    sent.extend(h.transmit());
    let Some(Packet::Subscribe(sub)) = sent.last() else {
        panic!("{sent:?}")
    };
    let codes = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce); sub.filters.len()];
    let pkid = sub.pkid;
    h.line
        .handle_packet(Packet::SubAck(sub_ack(pkid, codes)), h.now, T0)
        .unwrap();
    sent.extend(h.transmit());
    h.line.flushed(T0);
    sent
}

/// (topic, payload) of each PUBLISH among `packets`.
fn published(packets: &[Packet]) -> Vec<(String, Payload)> {
    packets
        .iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((
                String::from_utf8_lossy(&p.topic).into_owned(),
                decode(&p.payload).unwrap(),
            )),
            _ => None,
        })
        .collect()
}

fn kinds(packets: &[Packet]) -> Vec<String> {
    published(packets)
        .into_iter()
        .map(|(t, _)| t.split('/').nth(2).unwrap_or_default().to_string())
        .collect()
}

fn metric<'a>(p: &'a Payload, name: &str) -> &'a Metric {
    p.metrics
        .iter()
        .find(|m| m.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in {p:?}"))
}

fn write(h: &mut Harness, tag: u64, request: u64, value: Value, wall_ns: i64) {
    h.line
        .write(TagId(tag), request, value, h.now, wall_ns)
        .unwrap();
}

fn command(h: &mut Harness, topic: &str, metrics: Vec<Metric>) -> Vec<mqtt_line_core::Event> {
    let p = encode(&Payload {
        timestamp: Some(T0_MS + 5),
        metrics,
        ..Default::default()
    });
    h.receive(topic, &p, QoS::AtMostOnce, 0)
}

fn named(name: &str, datatype: u32, value: MetricValue) -> Metric {
    Metric {
        name: Some(name.into()),
        datatype: Some(datatype),
        value: Some(value),
        ..Default::default()
    }
}

#[test]
fn will_and_subscriptions_before_the_births_then_nbirth_and_dbirth() {
    let mut h = edge_line(&[]);
    let sent = connect(&mut h);
    let Packet::Connect(connect, will, _) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert!(connect.clean_start, "an edge node's session is clean");
    let will = will.as_ref().unwrap();
    assert_eq!(&will.topic[..], b"spBv1.0/plant/NDEATH/edge1");
    assert_eq!(will.qos, QoS::AtLeastOnce);
    assert!(!will.retain);
    let will_payload = decode(&will.message).unwrap();
    let bd_seq = metric(&will_payload, "bdSeq");
    assert_eq!(bd_seq.datatype, Some(4), "Int64");
    let Packet::Subscribe(sub) = &sent[1] else {
        panic!("{sent:?}")
    };
    let filters: Vec<&str> = sub.filters.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        filters,
        ["spBv1.0/plant/NCMD/edge1", "spBv1.0/plant/DCMD/edge1/+"]
    );
    assert_eq!(kinds(&sent[2..]), ["NBIRTH", "DBIRTH"]);
    let births = published(&sent);
    let (topic, nbirth) = &births[0];
    assert_eq!(topic, "spBv1.0/plant/NBIRTH/edge1");
    assert_eq!(nbirth.seq, Some(0));
    assert_eq!(nbirth.timestamp, Some(T0_MS));
    assert_eq!(
        metric(nbirth, "bdSeq").value,
        bd_seq.value,
        "the will's bdSeq"
    );
    let untimed: Vec<_> = births
        .iter()
        .flat_map(|(_, p)| &p.metrics)
        .filter(|m| m.timestamp.is_none())
        .collect();
    assert!(
        untimed.is_empty(),
        "every birth metric has a time: {untimed:?}"
    );
    for control in ["Node Control/Rebirth", "Node Control/Next Server"] {
        let m = metric(nbirth, control);
        assert_eq!(m.alias, None, "{control}: no alias");
        assert_eq!(
            (m.datatype, &m.value),
            (Some(11), &Some(MetricValue::Boolean(false)))
        );
    }
    let rows = [("Temperature", 10), ("Setpoint", 10), ("Count", 3)];
    let mut aliases = Vec::new();
    for (name, datatype) in rows {
        let m = metric(nbirth, name);
        assert_eq!(m.datatype, Some(datatype), "{name}");
        assert_eq!(m.is_null, Some(true), "{name}: never written");
        aliases.push(m.alias.unwrap());
    }
    let (topic, dbirth) = &births[1];
    assert_eq!(topic, "spBv1.0/plant/DBIRTH/edge1/plc");
    assert_eq!(dbirth.seq, Some(1));
    for (name, datatype) in [("Speed", 10), ("Run", 11), ("Label", 12)] {
        let m = metric(dbirth, name);
        assert_eq!(m.datatype, Some(datatype), "{name}");
        aliases.push(m.alias.unwrap());
    }
    aliases.sort_unstable();
    aliases.dedup();
    assert_eq!(
        aliases.len(),
        6,
        "aliases are unique across node and devices"
    );
}

#[test]
fn writes_publish_data_by_alias_with_their_time_and_seq_wraps() {
    let mut h = edge_line(&[]);
    let births = published(&connect(&mut h));
    let alias_of = |p: &Payload, name: &str| metric(p, name).alias;
    let rows: [(u64, Value, &str, &str, MetricValue); 4] = [
        (
            11,
            Value::Float(20.5),
            "NDATA/edge1",
            "Temperature",
            MetricValue::Double(20.5),
        ),
        (
            12,
            Value::Int(7),
            "NDATA/edge1",
            "Setpoint",
            MetricValue::Double(7.0),
        ),
        (
            14,
            Value::Int(-2),
            "NDATA/edge1",
            "Count",
            MetricValue::Int(-2i32 as u32),
        ),
        (
            21,
            Value::Float(3.0),
            "DDATA/edge1/plc",
            "Speed",
            MetricValue::Double(3.0),
        ),
    ];
    let mut seq = 1;
    for (i, (tag, value, topic, name, want)) in rows.into_iter().enumerate() {
        let at = T0 + (i as i64 + 1) * 1_000_000;
        write(&mut h, tag, i as u64, value, at);
        let sent = published(&h.transmit());
        h.line.flushed(at);
        assert_eq!(write_results(&h.events()), [(i as u64, None)], "{name}");
        let [(t, p)] = sent.as_slice() else {
            panic!("{sent:?}")
        };
        assert_eq!(t, &format!("spBv1.0/plant/{topic}"));
        seq += 1;
        assert_eq!(p.seq, Some(seq), "{name}");
        let m = &p.metrics[0];
        let birth = if topic.starts_with('N') {
            &births[0].1
        } else {
            &births[1].1
        };
        assert_eq!(m.alias, alias_of(birth, name), "{name} by alias");
        assert_eq!(m.name, None, "{name}: data carries no name");
        assert_eq!(m.datatype, None, "{name}: nor a data type");
        assert_eq!(
            m.timestamp,
            Some(T0_MS + i as u64 + 1),
            "{name}: the write's time"
        );
        assert_eq!(m.value, Some(want), "{name}");
        assert_eq!(m.is_historical, None);
    }
    for n in 0..300u64 {
        write(&mut h, 11, 100 + n, Value::Float(n as f64), T0);
        let sent = published(&h.transmit());
        seq = (seq + 1) % 256;
        assert_eq!(sent[0].1.seq, Some(seq), "seq runs 0..255 and wraps");
    }
    // A value that does not fit the metric's data type fails the write.
    write(&mut h, 14, 999, Value::Int(1 << 40), T0);
    let done = write_results(&h.events());
    let error = done
        .iter()
        .find(|(r, _)| *r == 999)
        .unwrap()
        .1
        .clone()
        .unwrap();
    assert!(error.contains("out of the range of Int32"), "{error}");
}

#[test]
fn commands_fill_input_tags_or_warn_and_change_nothing() {
    let mut h = edge_line(&[]);
    let births = published(&connect(&mut h));
    h.events();
    let setpoint_alias = metric(&births[0].1, "Setpoint").alias.unwrap();
    let by_alias = Metric {
        alias: Some(setpoint_alias),
        datatype: Some(10),
        value: Some(MetricValue::Double(9.5)),
        timestamp: Some(T0_MS + 9),
        ..Default::default()
    };
    let ncmd = "spBv1.0/plant/NCMD/edge1";
    let dcmd = "spBv1.0/plant/DCMD/edge1/plc";
    /// A command's topic and metrics; the input tag, value and time it gives, or the warning.
    type Row<'a> = (&'a str, Vec<Metric>, Option<(u64, Value, i64)>, &'a str);
    let rows: Vec<Row> = vec![
        (
            ncmd,
            vec![named("Setpoint", 10, MetricValue::Double(42.0))],
            Some((13, Value::Float(42.0), T0 + 5_000_000)),
            "",
        ),
        (
            ncmd,
            vec![by_alias],
            Some((13, Value::Float(9.5), T0 + 9_000_000)),
            "",
        ),
        (
            dcmd,
            vec![named("Run", 11, MetricValue::Boolean(true))],
            Some((22, Value::Bool(true), T0 + 5_000_000)),
            "",
        ),
        (
            dcmd,
            vec![named("Label", 12, MetricValue::String("A-1".into()))],
            Some((23, Value::Text("A-1".into()), T0 + 5_000_000)),
            "",
        ),
        (
            ncmd,
            vec![named("Nope", 10, MetricValue::Double(1.0))],
            None,
            "metric=Nope value=Double(1.0): unknown metric",
        ),
        (
            ncmd,
            vec![named("Setpoint", 12, MetricValue::String("x".into()))],
            None,
            "metric=Setpoint value=String(\"x\"): its data type String is not the metric's Double",
        ),
        (
            dcmd,
            vec![named("Run", 11, MetricValue::String("yes".into()))],
            None,
            "device=plc metric=Run value=String(\"yes\"): a String value is not a Boolean",
        ),
        (
            ncmd,
            vec![named("Temperature", 10, MetricValue::Double(1.0))],
            None,
            "the metric has no input tag",
        ),
        (
            "spBv1.0/plant/DCMD/edge1/other",
            vec![named("Run", 11, MetricValue::Boolean(true))],
            None,
            "device=other metric=- value=-: the node has no such device",
        ),
    ];
    for (topic, metrics, want, warning) in rows {
        let ev = command(&mut h, topic, metrics);
        match want {
            Some((tag, value, time_ns)) => {
                assert_eq!(
                    values(&ev),
                    [(tag, Some(value), FLAG_VALID | FLAG_TIME_FROM_PAYLOAD)]
                );
                let stamp = ev.iter().find_map(|e| match e {
                    mqtt_line_core::Event::TagValue { time_ns, .. } => Some(*time_ns),
                    _ => None,
                });
                assert_eq!(stamp, Some(time_ns));
            }
            None => {
                assert!(values(&ev).is_empty(), "{warning}: {ev:?}");
                let logs = logs(&ev);
                assert!(
                    logs.iter().any(|(l, t)| *l == LogLevel::Warn
                        && t.contains("node=edge1")
                        && t.contains(warning)),
                    "{warning}: {logs:?}"
                );
            }
        }
    }
    let ev = h.receive(ncmd, b"\xff\xff", QoS::AtMostOnce, 0);
    assert!(values(&ev).is_empty());
    assert!(
        logs(&ev).iter().any(|(_, t)| t.contains("unreadable")),
        "{ev:?}"
    );
}

#[test]
fn rebirth_and_next_server_commands() {
    let mut h = edge_line(&[]);
    let first = published(&connect(&mut h));
    let bd_seq = metric(&first[0].1, "bdSeq").value.clone();
    write(&mut h, 11, 1, Value::Float(1.5), T0);
    h.transmit();
    let rebirth = named("Node Control/Rebirth", 11, MetricValue::Boolean(true));
    command(&mut h, "spBv1.0/plant/NCMD/edge1", vec![rebirth]);
    let sent = h.transmit();
    assert_eq!(kinds(&sent), ["NBIRTH", "DBIRTH"]);
    let again = published(&sent);
    assert_eq!(again[0].1.seq, Some(0), "seq starts over");
    assert_eq!(again[1].1.seq, Some(1));
    assert_eq!(metric(&again[0].1, "bdSeq").value, bd_seq, "same bdSeq");
    let temp = metric(&again[0].1, "Temperature");
    assert_eq!(
        (temp.value.clone(), temp.is_null),
        (Some(MetricValue::Double(1.5)), None)
    );

    let next = named("Node Control/Next Server", 11, MetricValue::Boolean(true));
    command(&mut h, "spBv1.0/plant/NCMD/edge1", vec![next]);
    let sent = h.transmit();
    assert_eq!(kinds(&sent), ["NDEATH"]);
    assert_eq!(metric(&published(&sent)[0].1, "bdSeq").value, bd_seq);
    assert!(
        matches!(sent.last(), Some(Packet::Disconnect(_))),
        "{sent:?}"
    );
    // While it leaves, writes are stored, not published.
    write(&mut h, 11, 2, Value::Float(2.5), T0);
    assert!(h.transmit().is_empty());
    assert_eq!(write_results(&h.events()), [(2, None)]);
    // The next connection has the next bdSeq.
    h.line
        .transport_closed("the broker closed the connection", T0);
    let sent = connect(&mut h);
    let births = published(&sent);
    let Some(MetricValue::Long(old)) = bd_seq else {
        panic!()
    };
    assert_eq!(
        metric(&births[0].1, "bdSeq").value,
        Some(MetricValue::Long((old + 1) % 256))
    );
}

#[test]
fn device_station_off_and_on_node_station_off_and_line_stop() {
    let mut h = edge_line(&[]);
    connect(&mut h);
    h.line
        .station_command(StationId(DEVICE), StationCommand::Off, h.now, T0)
        .unwrap();
    let sent = published(&h.transmit());
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "spBv1.0/plant/DDEATH/edge1/plc");
    assert_eq!(sent[0].1.seq, Some(2));
    write(&mut h, 21, 1, Value::Float(1.0), T0);
    let done = write_results(&h.events());
    assert!(
        done[0].1.as_deref().unwrap_or_default().contains("is off"),
        "{done:?}"
    );
    h.line
        .station_command(StationId(DEVICE), StationCommand::On, h.now, T0)
        .unwrap();
    let sent = published(&h.transmit());
    assert_eq!(sent[0].0, "spBv1.0/plant/DBIRTH/edge1/plc");
    assert_eq!(sent[0].1.seq, Some(3));

    // The node station off: the line lets go of its connection, NDEATH before DISCONNECT.
    h.line
        .station_command(StationId(NODE), StationCommand::Off, h.now, T0)
        .unwrap();
    assert!(!h.line.wants_connection());
    let mut buf = BytesMut::new();
    h.line
        .close_deliberately(Deliberate::Restart, &mut buf, h.now, T0);
    let first = read_packet(&mut buf, 1 << 20, Protocol::V311).unwrap();
    let Some(Packet::Publish(p)) = first else {
        panic!("{first:?}")
    };
    assert_eq!(&p.topic[..], b"spBv1.0/plant/NDEATH/edge1");
    assert!(
        decode(&p.payload).unwrap().seq.is_none(),
        "NDEATH has no seq"
    );
    let second = read_packet(&mut buf, 1 << 20, Protocol::V311).unwrap();
    assert!(matches!(second, Some(Packet::Disconnect(_))), "{second:?}");

    // The line stopped: the same.
    let mut h = edge_line(&[]);
    connect(&mut h);
    let mut buf = BytesMut::new();
    h.line
        .close_deliberately(Deliberate::Stop, &mut buf, h.now, T0);
    let first = read_packet(&mut buf, 1 << 20, Protocol::V311).unwrap();
    assert!(
        matches!(&first, Some(Packet::Publish(p)) if p.topic.ends_with(b"NDEATH/edge1")),
        "{first:?}"
    );
}

#[test]
fn mqtt5_leaves_with_its_will_instead_of_publishing_ndeath() {
    let mut h = edge_line(&[("protocol_version", "5")]);
    let sent = connect(&mut h);
    let Packet::Connect(c, _, _) = &sent[0] else {
        panic!("{sent:?}")
    };
    let props = c.properties.as_ref();
    assert_eq!(
        props.and_then(|p| p.session_expiry_interval),
        None,
        "expiry 0"
    );
    assert!(c.clean_start);
    let mut buf = BytesMut::new();
    h.line
        .close_deliberately(Deliberate::Stop, &mut buf, h.now, T0);
    // DISCONNECT only (no NDEATH PUBLISH), reason 0x04 Disconnect with Will Message, well
    // formed (the remaining length covers the reason and the properties).
    assert_eq!(&buf[..], b"\xe0\x07\x04\x05\x11\0\0\0\0", "{buf:?}");
    // Next Server the same way.
    let mut h = edge_line(&[("protocol_version", "5")]);
    connect(&mut h);
    let next = named("Node Control/Next Server", 11, MetricValue::Boolean(true));
    command(&mut h, "spBv1.0/plant/NCMD/edge1", vec![next]);
    let sent = h.transmit();
    assert!(kinds(&sent).is_empty(), "{sent:?}");
    assert!(
        matches!(sent.as_slice(), [Packet::Disconnect(d)] if d.reason_code as u8 == 0x04),
        "{sent:?}"
    );
}

fn state(h: &mut Harness, online: bool, timestamp: u64) -> Vec<Packet> {
    let body = format!("{{\"online\":{online},\"timestamp\":{timestamp}}}");
    let mut p = Publish::new(
        "spBv1.0/STATE/scada",
        QoS::AtLeastOnce,
        body.into_bytes(),
        None,
    );
    p.pkid = 7;
    p.retain = true;
    h.receive_publish(p);
    let sent = h.transmit();
    h.line.flushed(T0);
    sent
}

#[test]
fn primary_host_state_gates_the_births() {
    let mut h = edge_line(&[("sparkplug_primary_host_id", "scada")]);
    let sent = connect(&mut h);
    let Packet::Subscribe(sub) = &sent[1] else {
        panic!("{sent:?}")
    };
    assert!(
        sub.filters.iter().any(|f| f.path == "spBv1.0/STATE/scada"),
        "the primary host's STATE is subscribed with the commands: {sub:?}"
    );
    assert!(kinds(&sent).is_empty(), "no NBIRTH before STATE online");
    write(&mut h, 11, 1, Value::Float(1.0), T0 + 1_000_000);
    assert_eq!(
        write_results(&h.events()),
        [(1, None)],
        "stored, done at once"
    );
    assert_eq!(h.line.stats().edge_stored, 1);

    assert_eq!(
        kinds(&state(&mut h, true, 100)),
        ["NBIRTH", "DBIRTH", "NDATA"]
    );
    // Older than the last STATE seen: ignored.
    assert_eq!(kinds(&state(&mut h, false, 99)), Vec::<String>::new());
    // Offline: NDEATH, then DISCONNECT.
    let sent = state(&mut h, false, 101);
    assert_eq!(kinds(&sent), ["NDEATH"]);
    assert!(
        sent.iter().any(|p| matches!(p, Packet::Disconnect(_))),
        "{sent:?}"
    );
    h.line
        .transport_closed("the broker closed the connection", T0);
    let sent = connect(&mut h);
    assert!(kinds(&sent).is_empty());
    assert_eq!(kinds(&state(&mut h, false, 101)), Vec::<String>::new());
    assert_eq!(kinds(&state(&mut h, true, 102)), ["NBIRTH", "DBIRTH"]);
}

#[test]
fn store_and_forward_in_order_with_original_times() {
    let mut h = edge_line(&[("store_max_messages", "3")]);
    // Not connected: each write is stored and done at once.
    let writes: [(u64, f64); 5] = [(11, 1.0), (21, 2.0), (11, 3.0), (21, 4.0), (11, 5.0)];
    for (i, (tag, v)) in writes.into_iter().enumerate() {
        write(
            &mut h,
            tag,
            i as u64,
            Value::Float(v),
            T0 + i as i64 * 1_000_000,
        );
    }
    let ev = h.events();
    assert_eq!(write_results(&ev).len(), 5);
    assert!(
        write_results(&ev).iter().all(|(_, e)| e.is_none()),
        "{ev:?}"
    );
    let drops: Vec<_> = logs(&ev)
        .into_iter()
        .filter(|(l, t)| *l == LogLevel::Warn && t.contains("dropped"))
        .collect();
    assert_eq!(drops.len(), 1, "warned once: {drops:?}");
    let stats = h.line.stats();
    assert_eq!(
        (stats.edge_stored, stats.edge_dropped, stats.edge_held),
        (5, 2, 3)
    );

    let sent = connect(&mut h);
    assert_eq!(
        kinds(&sent),
        ["NBIRTH", "DBIRTH", "NDATA", "DDATA", "NDATA"]
    );
    let p = published(&sent);
    // The births carry the latest values; the stored writes follow, oldest first.
    assert_eq!(
        metric(&p[0].1, "Temperature").value,
        Some(MetricValue::Double(5.0))
    );
    let forwarded: Vec<(Option<MetricValue>, Option<u64>, Option<bool>)> = p[2..]
        .iter()
        .map(|(_, x)| {
            (
                x.metrics[0].value.clone(),
                x.metrics[0].timestamp,
                x.metrics[0].is_historical,
            )
        })
        .collect();
    assert_eq!(
        forwarded,
        [
            (Some(MetricValue::Double(3.0)), Some(T0_MS + 2), Some(true)),
            (Some(MetricValue::Double(4.0)), Some(T0_MS + 3), Some(true)),
            (Some(MetricValue::Double(5.0)), Some(T0_MS + 4), Some(true)),
        ]
    );
    let seqs: Vec<Option<u64>> = p.iter().map(|(_, x)| x.seq).collect();
    assert_eq!(seqs, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(
        h.line.stats().edge_forwarded,
        3,
        "counted once on the socket"
    );

    // Live again: a write is published at once.
    write(&mut h, 11, 9, Value::Float(6.0), T0);
    assert_eq!(kinds(&h.transmit()), ["NDATA"]);
}

#[test]
fn forwarded_writes_lost_with_the_connection_are_forwarded_again() {
    let mut h = edge_line(&[]);
    write(&mut h, 11, 1, Value::Float(1.0), T0);
    write(&mut h, 11, 2, Value::Float(2.0), T0 + 1_000_000);
    h.line
        .transport_open("127.0.0.1:1883", &Default::default(), h.now);
    h.transmit();
    h.line
        .handle_packet(
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
            h.now,
            T0,
        )
        .unwrap();
    let Some(Packet::Subscribe(sub)) = h.transmit().pop() else {
        panic!()
    };
    h.line
        .handle_packet(
            Packet::SubAck(sub_ack(
                sub.pkid,
                vec![SubscribeReasonCode::Success(QoS::AtMostOnce); 2],
            )),
            h.now,
            T0,
        )
        .unwrap();
    // The births and the forwarded writes were queued but never reached the socket.
    h.line
        .transport_closed("reading from the broker failed", T0);
    assert_eq!(h.line.stats().edge_held, 2, "back in the store");
    let sent = connect(&mut h);
    let values: Vec<_> = published(&sent)[2..]
        .iter()
        .map(|(_, p)| p.metrics[0].value.clone())
        .collect();
    assert_eq!(
        values,
        [
            Some(MetricValue::Double(1.0)),
            Some(MetricValue::Double(2.0))
        ]
    );
    assert_eq!(h.line.stats().edge_forwarded, 2);
}

#[test]
fn bd_seq_and_the_store_survive_a_restart_through_the_files() {
    let mut h = edge_line(&[("store_path", "/nonexistent/edge.store")]);
    write(&mut h, 11, 1, Value::Float(1.0), T0);
    write(&mut h, 21, 2, Value::Float(2.0), T0 + 1_000_000);
    let Some(EdgeFiles {
        bd_seq: None,
        store: Some(StoreFile::Append(bytes)),
    }) = h.line.edge_files()
    else {
        panic!()
    };
    assert_eq!(h.line.edge_files(), None, "nothing new");
    h.line
        .transport_open("127.0.0.1:1883", &Default::default(), h.now);
    let saved = h.line.edge_files().and_then(|f| f.bd_seq);
    assert!(saved.is_some(), "each connection's bdSeq is saved");

    // A new process: its first connection takes the bdSeq after the saved one, and the stored
    // writes are forwarded in order.
    let mut h = edge_line(&[("store_path", "/nonexistent/edge.store")]);
    h.line.edge_restore(saved, &bytes, T0);
    assert_eq!(h.line.stats().edge_held, 2);
    let sent = connect(&mut h);
    let p = published(&sent);
    let want = u64::from(saved.unwrap().wrapping_add(1));
    assert_eq!(
        metric(&p[0].1, "bdSeq").value,
        Some(MetricValue::Long(want))
    );
    assert_eq!(kinds(&sent), ["NBIRTH", "DBIRTH", "NDATA", "DDATA"]);
    assert_eq!(p[3].1.metrics[0].timestamp, Some(T0_MS + 1));
    let files = h.line.edge_files().unwrap();
    assert_eq!(
        files.store,
        Some(StoreFile::Rewrite(Vec::new())),
        "forwarded: emptied"
    );
    // A file cut short while appending: the whole records are kept, the rest warned about.
    let mut h = edge_line(&[("store_path", "/nonexistent/edge.store")]);
    h.line.edge_restore(None, &bytes[..bytes.len() - 2], T0);
    assert_eq!(h.line.stats().edge_held, 1);
    assert!(logs(&h.events())
        .iter()
        .any(|(_, t)| t.contains("cut short")));
}

#[test]
fn a_started_line_does_not_change_role() {
    let mut h = edge_line(&[]);
    let err = h
        .line
        .reconfigure([("payload_type", "JSON")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot become or stop being a Sparkplug edge node"),
        "{err}"
    );
    h.line
        .reconfigure([("sparkplug_primary_host_id", "scada")])
        .unwrap();
}

#[test]
fn configuration_errors_name_both_stations() {
    let mut h = Harness::new(&[("payload_type", "Sparkplug Edge Node")]);
    h.line
        .add_station(StationId(1), "node", "plant/edge1", [])
        .unwrap();
    let rows = [
        ("plant/edge2", "station 'other': address 'plant/edge2' is invalid: it names edge node 'plant/edge2', but station 'node' names 'plant/edge1'"),
        ("site/edge1/plc", "station 'node' names 'plant/edge1'"),
        ("plant/edge1b", "station 'node' names 'plant/edge1'"),
        ("plant/edge1/plc/x", "is the node '<group>/<node>'"),
        ("plant/+", "is the node '<group>/<node>'"),
    ];
    for (address, want) in rows {
        let err = h
            .line
            .add_station(StationId(2), "other", address, [])
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{address}: {err}");
    }
    h.line
        .add_station(StationId(3), "dev", "plant/edge1/plc", [])
        .unwrap();
    let err = h
        .line
        .add_station(StationId(4), "again", "plant/edge1", [])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'again'") && err.contains("station 'node' is already the node station"),
        "{err}"
    );

    type Tags<'a> = &'a [(u64, &'a str, ValueType)];
    let tag_rows: [(Tags, &str); 3] = [
        (
            &[(1, "SPB=X;type=Int99", ValueType::Co)],
            "not a Sparkplug data type",
        ),
        (
            &[(1, "SPB=X", ValueType::Ao), (2, "SPB=X", ValueType::Ao)],
            "tag 'SPB=X' already writes metric 'X'",
        ),
        (
            &[
                (1, "SPB=X;type=Float", ValueType::Ao),
                (2, "SPB=X", ValueType::Ai),
            ],
            "already has data type Float",
        ),
    ];
    for (tags, want) in tag_rows {
        let mut h = Harness::new(&[("payload_type", "Sparkplug Edge Node")]);
        h.line
            .add_station(StationId(1), "node", "plant/edge1", [])
            .unwrap();
        for &(id, address, ty) in tags {
            h.line
                .add_tag(StationId(1), TagId(id), address, address, ty, None)
                .unwrap();
        }
        let err = h.line.start(T0).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
    let mut h = Harness::new(&[("payload_type", "Sparkplug Edge Node")]);
    h.line
        .add_station(StationId(1), "dev", "plant/edge1/plc", [])
        .unwrap();
    let err = h.line.start(T0).unwrap_err().to_string();
    assert!(
        err.contains("needs one station whose address is '<group>/<node>'"),
        "{err}"
    );
}

mod edge_ops;

/// Random operation sequences (a fixed xorshift seed per case, so a failure repeats): seq runs
/// 0..255 from each NBIRTH over every message, births come first, devices are born before their
/// data and die once, bdSeq matches the will, and every write completes exactly once.
#[test]
fn random_operations_keep_seq_and_births_in_step() {
    let mut totals = [0u64; 3];
    for case in 0..200u64 {
        let mut x = case.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let ops: Vec<u8> = (0..600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let primary = case % 2 == 1;
        let max = if case % 3 == 0 { "5" } else { "1000" };
        let mut run = edge_ops::EdgeRun::new(primary, max);
        run.run(&ops);
        totals[0] += run.births;
        totals[1] += run.data;
        totals[2] += run.device_deaths;
    }
    assert!(
        totals.iter().all(|&n| n > 100),
        "the runs exercise births, data, deaths: {totals:?}"
    );
}
