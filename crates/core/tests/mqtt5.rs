//! MQTT 5 through the line: refused writes end `ok:false` with the broker's reason, writes carry
//! their properties (OUT_PROPERTY, message expiry, content type, response topic), received
//! properties fill IN_PROPERTY= and the other property tags, and a server reference is the next
//! host tried.

mod common;

use bytes::Bytes;
use common::{values, write_results, Harness};
use mqtt_line_core::mqtt::{
    Disconnect, DisconnectProperties, DisconnectReasonCode, Packet, PubAck, PubAckReason, Publish,
    PublishProperties, QoS,
};
use mqtt_line_core::{Attempt, Ended, StationId, TagId, Value, ValueType};

fn v5_writer(params: &[(&str, &str)], station: &[(&str, &str)]) -> Harness {
    let mut all = vec![("protocol_version", "5")];
    all.extend_from_slice(params);
    let mut h = Harness::new(&all);
    h.line
        .add_station(StationId(1), "cmd", "cmd", station.iter().copied())
        .unwrap();
    for (id, name, address) in [
        (1, "topic", "OUT_TOPIC"),
        (2, "value", "OUT_VALUE"),
        (3, "site", "OUT_PROPERTY=site"),
    ] {
        let default = (id == 1).then(|| Value::Text("cmd/x".into()));
        h.line
            .add_tag(
                StationId(1),
                TagId(id),
                name,
                address,
                ValueType::TxtO,
                default,
            )
            .unwrap();
    }
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    h
}

#[test]
fn a_write_the_broker_refuses_fails_with_its_reason() {
    let mut h = v5_writer(
        &[
            ("publish_qos", "1"),
            ("message_expiry_interval", "30"),
            ("content_type", "text/plain"),
        ],
        &[("response_topic", "replies/cmd")],
    );
    let w = |h: &mut Harness, tag, req, v: &str| {
        h.line
            .write(TagId(tag), req, Value::Text(v.into()), h.now, 0)
            .unwrap()
    };
    w(&mut h, 3, 1, "north");
    w(&mut h, 2, 2, "on");
    assert_eq!(write_results(&h.events()), [(1, None)]);
    let out = h.transmit();
    let Some(Packet::Publish(p)) = out.first() else {
        panic!("{out:?}")
    };
    let props = p.properties.clone().unwrap();
    assert_eq!(props.user_properties, [("site".into(), "north".into())]);
    assert_eq!(props.message_expiry_interval, Some(30));
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.response_topic.as_deref(), Some("replies/cmd"));
    let mut ack = PubAck::new(p.pkid, None);
    ack.reason = PubAckReason::NotAuthorized;
    h.line.handle_packet(Packet::PubAck(ack), h.now, 0).unwrap();
    let results = write_results(&h.events());
    let [(2, Some(error))] = &results[..] else {
        panic!("{results:?}")
    };
    assert!(error.contains("0x87 Not authorized"), "{error}");
}

#[test]
fn message_properties_fill_their_tags() {
    let mut h = Harness::new(&[("protocol_version", "5")]);
    h.line.add_station(StationId(1), "s", "t", []).unwrap();
    for (id, address) in [
        (1, "IN_PROPERTY=site"),
        (2, "IN_CONTENT_TYPE"),
        (3, "IN_RESPONSE_TOPIC"),
        (4, "IN_CORRELATION_DATA"),
        (5, "IN_PROPERTY=absent"),
    ] {
        h.line
            .add_tag(
                StationId(1),
                TagId(id),
                address,
                address,
                ValueType::TxtI,
                None,
            )
            .unwrap();
    }
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let mut p = Publish::new("t", QoS::AtMostOnce, "v", None);
    p.properties = Some(PublishProperties {
        user_properties: vec![("site".into(), "north".into())],
        content_type: Some("application/json".into()),
        response_topic: Some("r/1".into()),
        correlation_data: Some(Bytes::from_static(&[0x01, 0xab])),
        ..PublishProperties::default()
    });
    let got = values(&h.receive_publish(p));
    let text = |s: &str| Some(Value::Text(s.into()));
    let shown: Vec<(u64, Option<Value>)> = got.into_iter().map(|(t, v, _)| (t, v)).collect();
    assert_eq!(
        shown,
        [
            (1, text("north")),
            (2, text("application/json")),
            (3, text("r/1")),
            (4, text("01ab")),
            (5, None),
        ]
    );
}

/// A message without any properties (from a 3.1.1 publisher, or an MQTT 5 one that sets none)
/// makes every property tag invalid: none keeps the previous message's value, so a script never
/// answers an old request's correlation data.
#[test]
fn a_message_without_properties_invalidates_the_property_tags() {
    let mut h = Harness::new(&[("protocol_version", "5")]);
    h.line.add_station(StationId(1), "s", "t", []).unwrap();
    let addresses = [
        "IN_PROPERTY=site",
        "IN_CONTENT_TYPE",
        "IN_RESPONSE_TOPIC",
        "IN_CORRELATION_DATA",
    ];
    for (id, address) in (1..).zip(addresses) {
        h.line
            .add_tag(
                StationId(1),
                TagId(id),
                address,
                address,
                ValueType::TxtI,
                None,
            )
            .unwrap();
    }
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let mut p = Publish::new("t", QoS::AtMostOnce, "request", None);
    p.properties = Some(PublishProperties {
        user_properties: vec![("site".into(), "north".into())],
        content_type: Some("text/plain".into()),
        response_topic: Some("r/1".into()),
        correlation_data: Some(Bytes::from_static(&[0x01])),
        ..PublishProperties::default()
    });
    let got = values(&h.receive_publish(p));
    assert!(got.iter().all(|(_, v, _)| v.is_some()), "{got:?}");

    let got = values(&h.receive_publish(Publish::new("t", QoS::AtMostOnce, "plain", None)));
    let shown: Vec<(u64, Option<Value>)> = got.into_iter().map(|(t, v, _)| (t, v)).collect();
    assert_eq!(shown, [(1, None), (2, None), (3, None), (4, None)]);
}

#[test]
fn a_server_reference_is_the_next_host_tried() {
    let mut h = Harness::with_params(&[("protocol_version", "5"), ("host", "a, b")]);
    h.line.add_station(StationId(1), "s", "t", []).unwrap();
    h.line.start(0).unwrap();
    let Some(Attempt::Connect { host, .. }) = h.line.next_attempt(h.now) else {
        panic!()
    };
    assert_eq!(host, "a");
    h.connect();
    let mut d = Disconnect::new(DisconnectReasonCode::UseAnotherServer);
    d.properties = Some(DisconnectProperties {
        session_expiry_interval: None,
        reason_string: None,
        user_properties: Vec::new(),
        server_reference: Some("spare.example:1999 other".into()),
    });
    let err = h
        .line
        .handle_packet(Packet::Disconnect(d), h.now, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("0x9c Use another server"), "{err}");
    h.line.transport_closed(&err, 0);
    h.line.connection_ended(h.now, Ended::Lost);
    let Some(Attempt::Connect { host, port, .. }) = h.line.next_attempt(h.now) else {
        panic!()
    };
    assert_eq!((host, port), ("spare.example", 1999));
    // Tried once: then the host list goes on.
    h.line.connection_ended(h.now, Ended::Lost);
    let Some(Attempt::Connect { host, port, .. }) = h.line.next_attempt(h.now) else {
        panic!()
    };
    assert_eq!((host, port), ("b", 1883));
}

#[test]
fn a_content_type_that_says_gzip_decides_how_the_payload_is_read() {
    let mut h = Harness::new(&[("protocol_version", "5"), ("payload_type", "JSON")]);
    h.line.add_station(StationId(1), "s", "t", []).unwrap();
    h.line
        .add_tag(StationId(1), TagId(1), "v", "JA=v", ValueType::Ai, None)
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let with_type = |payload: Vec<u8>, content_type: &str| {
        let mut p = Publish::new("t", QoS::AtMostOnce, payload, None);
        p.properties = Some(PublishProperties {
            content_type: Some(content_type.into()),
            ..PublishProperties::default()
        });
        p
    };
    let mut zipped = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut zipped, br#"{"v": 2.5}"#).unwrap();
    let zipped = zipped.finish().unwrap();

    let got = values(&h.receive_publish(with_type(zipped, "application/json+gzip")));
    assert_eq!(got[0].1, Some(Value::Float(2.5)));
    // Announced as gzip but plain JSON: the announcement is believed, so it is unreadable.
    let got = values(&h.receive_publish(with_type(br#"{"v": 3}"#.to_vec(), "application/gzip")));
    assert_eq!(got[0].1, None);
    assert_eq!(h.line.stats().payload_errors, 1);
    // Any other type leaves it to the payload's first bytes.
    let got = values(&h.receive_publish(with_type(br#"{"v": 4}"#.to_vec(), "application/json")));
    assert_eq!(got[0].1, Some(Value::Float(4.0)));
}

/// `compress_writes`: OUT_VALUE goes out as gzip with Content-Type `application/gzip` (MQTT 5),
/// a station may say otherwise, a 3.1.1 line sends the gzip without a type (and warns), and our
/// own reading line takes the payload back either way.
#[test]
fn compressed_writes_carry_gzip_and_read_back() {
    let inflate = |payload: &[u8]| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(payload), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let sent = |h: &mut Harness, value: &str| {
        h.line
            .write(TagId(2), 1, Value::Text(value.into()), h.now, 0)
            .unwrap();
        let out = h.transmit();
        let Some(Packet::Publish(p)) = out.into_iter().next() else {
            panic!("no PUBLISH")
        };
        p
    };
    let value = r#"{"v": 21.5}"#;
    type Params<'a> = &'a [(&'a str, &'a str)];
    // (line parameters, station parameters, compressed, Content-Type sent)
    let cases: &[(Params, Params, bool, Option<&str>)] = &[
        (
            &[("compress_writes", "YES")],
            &[],
            true,
            Some("application/gzip"),
        ),
        (
            &[
                ("compress_writes", "YES"),
                ("content_type", "application/json"),
            ],
            &[],
            true,
            Some("application/gzip"),
        ),
        (
            &[("compress_writes", "YES")],
            &[("compress_writes", "NO")],
            false,
            None,
        ),
        (
            &[],
            &[("Compress Writes", "YES")],
            true,
            Some("application/gzip"),
        ),
        (&[], &[], false, None),
    ];
    for &(line, station, compressed, content_type) in cases {
        let mut h = v5_writer(line, station);
        let p = sent(&mut h, value);
        let props = p.properties.clone().unwrap_or_default();
        assert_eq!(
            props.content_type.as_deref(),
            content_type,
            "{line:?} {station:?}"
        );
        if compressed {
            assert_eq!(&p.payload[..2], [0x1f, 0x8b], "{line:?} {station:?}");
            assert_eq!(inflate(&p.payload), value);
        } else {
            assert_eq!(&p.payload[..], value.as_bytes());
        }
        // Our own line reads it back: the write, as received, fills a JA= tag.
        let mut reader = Harness::new(&[("protocol_version", "5"), ("payload_type", "JSON")]);
        reader
            .line
            .add_station(StationId(1), "s", "cmd/x", [])
            .unwrap();
        reader
            .line
            .add_tag(StationId(1), TagId(1), "v", "JA=v", ValueType::Ai, None)
            .unwrap();
        reader.line.start(0).unwrap();
        reader.connect();
        reader.events();
        let got = values(&reader.receive_publish(p));
        assert_eq!(got[0].1, Some(Value::Float(21.5)), "{line:?} {station:?}");
    }

    // MQTT 3.1.1: gzip without a Content-Type, which a reader recognises by 1f 8b.
    let (_, warnings) = mqtt_line_core::LineConfig::from_params(
        "line 'L'",
        [("host", "h"), ("compress_writes", "YES")],
    )
    .unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("compress_writes") && w.contains("1f 8b")),
        "{warnings:?}"
    );
    let mut h = Harness::writer(&[("compress_writes", "YES")], Some("cmd/x"));
    let p = sent(&mut h, value);
    assert_eq!(p.properties, None);
    assert_eq!(inflate(&p.payload), value);
    let mut reader = Harness::new(&[("payload_type", "JSON")]);
    reader
        .line
        .add_station(StationId(1), "s", "cmd/x", [])
        .unwrap();
    reader
        .line
        .add_tag(StationId(1), TagId(1), "v", "JA=v", ValueType::Ai, None)
        .unwrap();
    reader.line.start(0).unwrap();
    reader.connect();
    reader.events();
    assert_eq!(
        values(&reader.receive_publish(p))[0].1,
        Some(Value::Float(21.5))
    );

    let err = mqtt_line_core::LineConfig::from_params(
        "line 'L'",
        [("host", "h"), ("compress_writes", "maybe")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("compress_writes") && err.contains("maybe"),
        "{err}"
    );
}
