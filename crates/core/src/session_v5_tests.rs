//! The session's MQTT 5 packets and properties: CONNECT properties, what CONNACK announces,
//! reason codes of refusals, server DISCONNECT and redirects, topic aliases both ways, the payload
//! format indicator and Receive Maximum.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::codec::{conn_ack, sub_ack, ConnAckProperties, DisconnectProperties, UnsubAck};
use crate::config::LineConfig;
use rumqttc::v5::mqttbytes::v5::PubAckProperties;

fn cfg(extra: &[(&str, &str)]) -> SessionConfig {
    let mut p = vec![("host", "h")];
    if !extra.iter().any(|(k, _)| *k == "protocol_version") {
        p.push(("protocol_version", "5"));
    }
    p.extend_from_slice(extra);
    LineConfig::from_params("l", p).unwrap().0.session()
}

fn drain(s: &mut Session, now: Instant) -> Vec<Packet> {
    std::iter::from_fn(|| s.poll_transmit(now)).collect()
}

fn props() -> ConnAckProperties {
    ConnAckProperties {
        session_expiry_interval: None,
        receive_max: None,
        max_qos: None,
        retain_available: None,
        max_packet_size: None,
        assigned_client_identifier: None,
        topic_alias_max: None,
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    }
}

/// Connects with CONNACK properties `p` and answers the SUBSCRIBE: the session is ready.
fn ready_with(c: &SessionConfig, p: ConnAckProperties, now: Instant) -> Session {
    let mut s = Session::new(now);
    s.connect(c, &Secret::default(), now);
    drain(&mut s, now);
    let mut ack = conn_ack(ConnectReturnCode::Success, false);
    ack.properties = Some(p);
    s.handle(Packet::ConnAck(ack), now).unwrap();
    let out = drain(&mut s, now);
    let Some(Packet::Subscribe(sub)) = out.last() else {
        panic!("{out:?}")
    };
    let ok = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)];
    s.handle(Packet::SubAck(sub_ack(sub.pkid, ok)), now)
        .unwrap();
    assert!(s.is_ready());
    s
}

/// The next connection of `s` with `c` (its CONNECT dropped), answered by a CONNACK with the
/// session present.
fn resume(s: &mut Session, c: &SessionConfig, now: Instant) {
    s.disconnected();
    s.connect(c, &Secret::default(), now);
    drain(s, now);
    s.handle(
        Packet::ConnAck(conn_ack(ConnectReturnCode::Success, true)),
        now,
    )
    .unwrap();
}

fn write(s: &mut Session, n: u64, topic: &str, qos: QoS) -> Result<(), PublishError> {
    s.publish(
        WriteToken(n),
        topic,
        Bytes::from_static(b"v"),
        qos,
        false,
        None,
    )
}

#[test]
fn connect_carries_the_properties_and_subscribe_the_options() {
    let now = Instant::now();
    let c = cfg(&[
        ("receive_maximum", "5"),
        ("maximum_packet_size", "4096"),
        ("user_properties", "site=north"),
        ("request_problem_information", "NO"),
        ("no_local", "YES"),
        ("retain_as_published", "YES"),
        ("retain_handling", "1"),
    ]);
    let mut s = Session::new(now);
    s.connect(&c, &Secret::default(), now);
    let Some(Packet::Connect(connect, ..)) = s.poll_transmit(now) else {
        panic!()
    };
    assert!(!connect.clean_start);
    let p = connect.properties.unwrap();
    assert_eq!(p.session_expiry_interval, Some(u32::MAX));
    assert_eq!(p.receive_maximum, Some(5));
    assert_eq!(p.max_packet_size, Some(4096));
    assert_eq!(p.topic_alias_max, Some(16));
    assert_eq!(p.request_problem_info, Some(0));
    assert_eq!(p.user_properties, [("site".into(), "north".into())]);
    s.handle(
        Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
        now,
    )
    .unwrap();
    let Some(Packet::Subscribe(sub)) = s.poll_transmit(now) else {
        panic!()
    };
    let f = &sub.filters[0];
    assert!(f.nolocal && f.preserve_retain);
    assert_eq!(f.retain_forward_rule, RetainForwardRule::OnNewSubscribe);
    // On 3.1.1 none of it is sent.
    let c = cfg(&[("protocol_version", "3.1.1"), ("no_local", "YES")]);
    let mut s = Session::new(now);
    s.connect(&c, &Secret::default(), now);
    let Some(Packet::Connect(connect, ..)) = s.poll_transmit(now) else {
        panic!()
    };
    assert_eq!(connect.properties, None);
}

#[test]
fn refusals_carry_reason_code_and_reason_string() {
    let now = Instant::now();
    let c = cfg(&[]);
    let mut s = Session::new(now);
    s.connect(&c, &Secret::default(), now);
    drain(&mut s, now);
    let mut ack = conn_ack(ConnectReturnCode::BadUserNamePassword, false);
    ack.properties = Some(ConnAckProperties {
        reason_string: Some("unknown user".into()),
        ..props()
    });
    let err = s.handle(Packet::ConnAck(ack), now).unwrap_err().to_string();
    assert_eq!(
        err,
        "broker refused the connection: 0x86 Bad User Name or Password (unknown user)"
    );

    // A refused filter, with its reason.
    let mut s = Session::new(now);
    s.connect(&c, &Secret::default(), now);
    drain(&mut s, now);
    s.handle(
        Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
        now,
    )
    .unwrap();
    let Some(Packet::Subscribe(sub)) = s.poll_transmit(now) else {
        panic!()
    };
    let err = s
        .handle(
            Packet::SubAck(sub_ack(sub.pkid, vec![SubscribeReasonCode::NotAuthorized])),
            now,
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "broker refused the subscription to '#': 0x87 Not authorized"
    );
}

#[test]
fn refused_writes_end_with_their_reason() {
    let now = Instant::now();
    let mut s = ready_with(&cfg(&[]), props(), now);
    write(&mut s, 1, "a", QoS::AtLeastOnce).unwrap();
    write(&mut s, 2, "b", QoS::ExactlyOnce).unwrap();
    write(&mut s, 3, "c", QoS::AtLeastOnce).unwrap();
    let ids: Vec<u16> = drain(&mut s, now)
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.pkid,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut ack = PubAck::new(ids[0], None);
    ack.reason = PubAckReason::NotAuthorized;
    ack.properties = Some(PubAckProperties {
        reason_string: Some("acl".into()),
        user_properties: Vec::new(),
    });
    let ev = s.handle(Packet::PubAck(ack), now).unwrap();
    let Some(SessionEvent::Refused(WriteToken(1), reason)) = ev else {
        panic!("{ev:?}")
    };
    assert_eq!(reason.to_string(), "0x87 Not authorized (acl)");
    // A refused QoS 2 message ends at PUBREC: no PUBREL follows.
    let mut rec = PubRec::new(ids[1], None);
    rec.reason = PubRecReason::QuotaExceeded;
    let ev = s.handle(Packet::PubRec(rec), now).unwrap();
    assert!(matches!(ev, Some(SessionEvent::Refused(WriteToken(2), ref r)) if r.code == 0x97));
    assert!(drain(&mut s, now).is_empty());
    // 0x10 No matching subscribers is a success.
    let mut ack = PubAck::new(ids[2], None);
    ack.reason = PubAckReason::NoMatchingSubscribers;
    let ev = s.handle(Packet::PubAck(ack), now).unwrap();
    assert_eq!(ev, Some(SessionEvent::Published(WriteToken(3))));
}

#[test]
fn connack_properties_are_honoured() {
    let now = Instant::now();
    // An empty client id: the assigned one is used for the next connection.
    let c = cfg(&[("client_id", "")]);
    let mut s = ready_with(
        &c,
        ConnAckProperties {
            assigned_client_identifier: Some("auto-7".into()),
            server_keep_alive: Some(5),
            max_qos: Some(1),
            retain_available: Some(0),
            max_packet_size: Some(100),
            ..props()
        },
        now,
    );
    assert_eq!(s.max_outgoing_packet(1 << 20), 100);
    assert_eq!(
        write(&mut s, 1, "t", QoS::ExactlyOnce),
        Err(PublishError::QosNotSupported { qos: 2, maximum: 1 })
    );
    assert_eq!(
        s.publish(
            WriteToken(2),
            "t",
            Bytes::new(),
            QoS::AtMostOnce,
            true,
            None
        ),
        Err(PublishError::RetainNotSupported)
    );
    // Server Keep Alive replaces ours: a ping after 5 s of silence from us.
    assert_eq!(
        s.poll_timeout(),
        Some(now + Duration::from_secs(5)).min(s.poll_timeout())
    );
    s.handle_timeout(now + Duration::from_secs(5)).unwrap();
    assert_eq!(
        drain(&mut s, now + Duration::from_secs(5)),
        [Packet::PingReq(PingReq)]
    );
    s.disconnected();
    s.connect(&c, &Secret::default(), now);
    let Some(Packet::Connect(connect, ..)) = s.poll_transmit(now) else {
        panic!()
    };
    assert_eq!(connect.client_id, "auto-7");
}

#[test]
fn filters_the_server_announced_it_cannot_take_are_noted_and_subscribed() {
    let now = Instant::now();
    for (filter, p, needle) in [
        (
            "a/#",
            ConnAckProperties {
                wildcard_subscription_available: Some(0),
                ..props()
            },
            "no wildcard subscriptions",
        ),
        (
            "$share/g/a",
            ConnAckProperties {
                shared_subscription_available: Some(0),
                ..props()
            },
            "no shared subscriptions",
        ),
    ] {
        let mut s = Session::new(now);
        s.connect(&cfg(&[("topic_filter", filter)]), &Secret::default(), now);
        drain(&mut s, now);
        let mut ack = conn_ack(ConnectReturnCode::Success, false);
        ack.properties = Some(p);
        let ev = s.handle(Packet::ConnAck(ack), now).unwrap();
        assert!(
            matches!(&ev, Some(SessionEvent::Note(n)) if n.contains(filter) && n.contains(needle)),
            "{ev:?}"
        );
        assert!(matches!(drain(&mut s, now)[..], [Packet::Subscribe(_)]));
    }
}

#[test]
fn an_assigned_client_id_for_a_line_that_sent_its_own_is_a_violation() {
    let now = Instant::now();
    let mut s = Session::new(now);
    s.connect(&cfg(&[]), &Secret::default(), now);
    drain(&mut s, now);
    let mut ack = conn_ack(ConnectReturnCode::Success, false);
    ack.properties = Some(ConnAckProperties {
        assigned_client_identifier: Some("p".into()),
        ..props()
    });
    let err = s.handle(Packet::ConnAck(ack), now).unwrap_err().to_string();
    assert!(err.contains("although the line sent its own"), "{err}");
}

#[test]
fn server_receive_maximum_holds_writes_back() {
    let now = Instant::now();
    let mut s = ready_with(
        &cfg(&[]),
        ConnAckProperties {
            receive_max: Some(2),
            ..props()
        },
        now,
    );
    for n in 1..=4 {
        write(&mut s, n, "t", QoS::AtLeastOnce).unwrap();
    }
    let sent: Vec<u16> = drain(&mut s, now)
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.pkid,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sent.len(), 2, "two in flight at most");
    s.handle(Packet::PubAck(PubAck::new(sent[0], None)), now)
        .unwrap();
    let next = drain(&mut s, now);
    assert_eq!(next.len(), 1, "one more once one is acknowledged");
    // After a reconnect, the in-flight ones go again first, within the limit.
    s.disconnected();
    s.connect(&cfg(&[]), &Secret::default(), now);
    drain(&mut s, now);
    let mut ack = conn_ack(ConnectReturnCode::Success, true);
    ack.properties = Some(ConnAckProperties {
        receive_max: Some(2),
        ..props()
    });
    s.handle(Packet::ConnAck(ack), now).unwrap();
    let again: Vec<Packet> = drain(&mut s, now)
        .into_iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .collect();
    assert_eq!(again.len(), 2);
    assert!(again
        .iter()
        .all(|p| matches!(p, Packet::Publish(p) if p.dup)));
}

#[test]
fn server_disconnect_and_redirects() {
    let now = Instant::now();
    let mut s = ready_with(&cfg(&[]), props(), now);
    let mut d = Disconnect::new(DisconnectReasonCode::SessionTakenOver);
    d.properties = Some(DisconnectProperties {
        session_expiry_interval: None,
        reason_string: Some("another client".into()),
        user_properties: Vec::new(),
        server_reference: None,
    });
    let err = s.handle(Packet::Disconnect(d), now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "broker disconnected: 0x8e Session taken over (another client)"
    );
    let mut s = ready_with(&cfg(&[]), props(), now);
    let mut d = Disconnect::new(DisconnectReasonCode::ServerMoved);
    d.properties = Some(DisconnectProperties {
        session_expiry_interval: None,
        reason_string: None,
        user_properties: Vec::new(),
        server_reference: Some("other:1884".into()),
    });
    let err = s.handle(Packet::Disconnect(d), now).unwrap_err();
    assert!(
        matches!(&err, ProtocolError::Redirected { server, .. } if server == "other:1884"),
        "{err}"
    );
    // A refusing CONNACK may redirect too.
    let mut s = Session::new(now);
    s.connect(&cfg(&[]), &Secret::default(), now);
    drain(&mut s, now);
    let mut ack = conn_ack(ConnectReturnCode::UseAnotherServer, false);
    ack.properties = Some(ConnAckProperties {
        server_reference: Some("spare".into()),
        ..props()
    });
    let err = s.handle(Packet::ConnAck(ack), now).unwrap_err();
    assert!(
        matches!(&err, ProtocolError::Redirected { server, reason } if server == "spare" && reason.code == 0x9C),
        "{err}"
    );
}

fn aliased(topic: &str, alias: Option<u16>, pkid: u16) -> Packet {
    let mut p = Publish::new(
        topic,
        if pkid == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        },
        "x",
        None,
    );
    p.pkid = pkid;
    p.properties = Some(PublishProperties {
        topic_alias: alias,
        ..Default::default()
    });
    Packet::Publish(p)
}

#[test]
fn topic_aliases_from_the_server_are_resolved() {
    let now = Instant::now();
    let mut s = ready_with(&cfg(&[("topic_alias_maximum", "2")]), props(), now);
    let ev = s.handle(aliased("plant/a", Some(1), 0), now).unwrap();
    assert!(matches!(ev, Some(SessionEvent::Message(ref p)) if p.topic == "plant/a"));
    let ev = s.handle(aliased("", Some(1), 0), now).unwrap();
    assert!(matches!(ev, Some(SessionEvent::Message(ref p)) if p.topic == "plant/a"));
    // A new topic for the same alias replaces it.
    s.handle(aliased("plant/b", Some(1), 0), now).unwrap();
    let ev = s.handle(aliased("", Some(1), 0), now).unwrap();
    assert!(matches!(ev, Some(SessionEvent::Message(ref p)) if p.topic == "plant/b"));
    for (bad, why) in [
        (aliased("t", Some(0), 0), "Topic Alias 0"),
        (aliased("t", Some(3), 0), "Topic Alias 3"),
        (aliased("", Some(2), 0), "which no earlier PUBLISH set"),
        (aliased("", None, 0), "empty topic and no Topic Alias"),
    ] {
        let mut s = ready_with(&cfg(&[("topic_alias_maximum", "2")]), props(), now);
        let err = s.handle(bad, now).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
    }
    // Aliases live for one connection.
    let mut s = ready_with(&cfg(&[]), props(), now);
    s.handle(aliased("plant/a", Some(1), 0), now).unwrap();
    s.disconnected();
    let mut s2 = s;
    s2.connect(&cfg(&[]), &Secret::default(), now);
    drain(&mut s2, now);
    s2.handle(
        Packet::ConnAck(conn_ack(ConnectReturnCode::Success, true)),
        now,
    )
    .unwrap();
    let Some(Packet::Subscribe(sub)) = s2.poll_transmit(now) else {
        panic!()
    };
    let ok = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)];
    s2.handle(Packet::SubAck(sub_ack(sub.pkid, ok)), now)
        .unwrap();
    assert!(s2.handle(aliased("", Some(1), 0), now).is_err());
}

#[test]
fn writes_use_topic_aliases_when_the_server_allows_them() {
    let now = Instant::now();
    let mut s = ready_with(
        &cfg(&[]),
        ConnAckProperties {
            topic_alias_max: Some(1),
            ..props()
        },
        now,
    );
    for (n, topic) in [(1, "cmd/a"), (2, "cmd/a"), (3, "cmd/b")] {
        write(&mut s, n, topic, QoS::AtMostOnce).unwrap();
    }
    let sent: Vec<(Bytes, Option<u16>)> = drain(&mut s, now)
        .into_iter()
        .map(|p| match p {
            Packet::Publish(p) => (p.topic, p.properties.and_then(|p| p.topic_alias)),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sent,
        [
            (Bytes::from("cmd/a"), Some(1)),
            (Bytes::new(), Some(1)),
            (Bytes::from("cmd/b"), None),
        ]
    );
}

#[test]
fn a_payload_that_is_not_the_utf8_it_claims_is_refused_with_0x99() {
    let now = Instant::now();
    let mut s = ready_with(&cfg(&[]), props(), now);
    let mut p = Publish::new("t", QoS::AtLeastOnce, Bytes::from_static(b"\xff\xfe"), None);
    p.pkid = 3;
    p.properties = Some(PublishProperties {
        payload_format_indicator: Some(1),
        ..Default::default()
    });
    let ev = s.handle(Packet::Publish(p), now).unwrap();
    assert!(
        matches!(&ev, Some(SessionEvent::Warning(w)) if w.contains("0x99")),
        "{ev:?}"
    );
    let out = drain(&mut s, now);
    assert!(
        matches!(&out[..], [Packet::PubAck(a)] if a.pkid == 3 && a.reason == PubAckReason::PayloadFormatInvalid),
        "{out:?}"
    );
}

/// mosquitto 2.0 sends more unacknowledged messages than our Receive Maximum (and resends them
/// all after a reconnect): they are taken, each once, with one warning per connection, instead
/// of a 0x93 disconnection that would only repeat.
#[test]
fn more_unacknowledged_messages_than_our_receive_maximum_are_taken_with_a_warning() {
    let now = Instant::now();
    let c = cfg(&[("receive_maximum", "2")]);
    let mut s = ready_with(&c, props(), now);
    let take = |s: &mut Session, pkid: u16| {
        let ev = s.handle(aliased("t", None, pkid), now).unwrap();
        (ev, s.take_warning())
    };
    for pkid in [1, 2] {
        let (ev, warning) = take(&mut s, pkid);
        assert!(matches!(ev, Some(SessionEvent::Message(_))), "{ev:?}");
        assert_eq!(warning, None, "within the Receive Maximum");
    }
    let (ev, warning) = take(&mut s, 3);
    assert!(matches!(ev, Some(SessionEvent::Message(_))), "{ev:?}");
    let warning = warning.unwrap_or_default();
    assert!(
        warning.contains("Receive Maximum of 2") && warning.contains("(3 now;"),
        "{warning}"
    );
    let (ev, warning) = take(&mut s, 4);
    assert!(matches!(ev, Some(SessionEvent::Message(_))), "{ev:?}");
    assert_eq!(warning, None, "once per connection");

    // The next connection: the broker resends all four (handed over once only), then a new one.
    resume(&mut s, &c, now);
    for pkid in 1..=4 {
        let (ev, _) = take(&mut s, pkid);
        assert!(ev.is_none(), "pkid {pkid} again: {ev:?}");
    }
    let (ev, warning) = take(&mut s, 5);
    assert!(matches!(ev, Some(SessionEvent::Message(_))), "{ev:?}");
    assert!(
        warning.is_some_and(|w| w.contains("(5 now;")),
        "warned again on a new connection"
    );
    assert!(s.handle_timeout(now).is_ok(), "the connection stays");
}

#[test]
fn a_refused_unsubscribe_is_a_warning() {
    let now = Instant::now();
    let c = cfg(&[("topic_filter", "old/#")]);
    let mut s = ready_with(&c, props(), now);
    resume(&mut s, &cfg(&[("topic_filter", "new/#")]), now);
    let Some(Packet::Unsubscribe(u)) = s.poll_transmit(now) else {
        panic!()
    };
    let ack = UnsubAck {
        pkid: u.pkid,
        reasons: vec![crate::codec::UnsubAckReason::NotAuthorized],
        properties: None,
    };
    let ev = s.handle(Packet::UnsubAck(ack), now).unwrap();
    assert!(
        matches!(&ev, Some(SessionEvent::Warning(w)) if w.contains("0x87")),
        "{ev:?}"
    );
}

/// QoS 2 stays exactly once across a reconnect of a persistent MQTT 5 session: the broker's
/// redelivery of an unconfirmed message is not handed over again, and its PUBREC goes once the
/// line confirmed it.
#[test]
fn qos2_is_exactly_once_across_a_reconnect_with_a_persistent_session() {
    let now = Instant::now();
    let c = cfg(&[]);
    let mut s = ready_with(&c, props(), now);
    let mut p = Publish::new("t", QoS::ExactlyOnce, "x", None);
    p.pkid = 5;
    let ev = s.handle(Packet::Publish(p.clone()), now).unwrap();
    assert!(matches!(ev, Some(SessionEvent::Message(_))));
    let epoch = s.epoch();
    resume(&mut s, &c, now);
    drain(&mut s, now);
    p.dup = true;
    assert_eq!(s.handle(Packet::Publish(p), now).unwrap(), None);
    s.confirm(5, epoch);
    let out = drain(&mut s, now);
    assert!(
        matches!(&out[..], [Packet::PubRec(r)] if r.pkid == 5),
        "{out:?}"
    );
    s.handle(Packet::PubRel(PubRel::new(5, None)), now).unwrap();
    let out = drain(&mut s, now);
    assert!(
        matches!(&out[..], [Packet::PubComp(c)] if c.pkid == 5),
        "{out:?}"
    );
}
