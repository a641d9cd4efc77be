//! A redundant line (issue 21) on virtual time: two sessions, the duplicate rule through the
//! line, copies of gated messages acknowledged with their original, writes on both connections.

mod common;

use bytes::BytesMut;
use common::*;
use mqtt_line_core::mqtt::SubscribeReasonCode;
use mqtt_line_core::mqtt::{
    conn_ack, sub_ack, write_packet, ConnectReturnCode, Packet, Protocol, Publish, QoS,
};
use mqtt_line_core::{Event, LineEvent, LinkId, TagId, Value};

use LinkId::{A, B};

/// Opens connection `id` and lets its broker accept it and the subscription.
fn connect(h: &mut Harness, id: LinkId) {
    let host = match id {
        A => "a:1883",
        B => "b:1883",
    };
    h.line
        .transport_open_on(id, host, &Default::default(), h.now);
    let sent = transmit(h, id);
    assert!(
        matches!(sent.first(), Some(Packet::Connect(..))),
        "{sent:?}"
    );
    h.line
        .handle_packet_on(
            id,
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
            h.now,
            0,
        )
        .unwrap();
    let sent = transmit(h, id);
    let Some(Packet::Subscribe(sub)) = sent.last() else {
        panic!("{sent:?}")
    };
    let ack = sub_ack(
        sub.pkid,
        vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
    );
    h.line
        .handle_packet_on(id, Packet::SubAck(ack), h.now, 0)
        .unwrap();
}

fn transmit(h: &mut Harness, id: LinkId) -> Vec<Packet> {
    let now = h.now;
    std::iter::from_fn(|| h.line.poll_transmit_at_on(id, now, 0)).collect()
}

/// A message from the broker of connection `id`, as bytes on the wire: the line reads it as
/// the driver hands it over (a QoS 0 copy of a 3.1.1 line is judged where it lies in the buffer).
fn receive(h: &mut Harness, id: LinkId, payload: &str, qos: QoS, pkid: u16) -> Vec<Event> {
    let mut p = Publish::new("t", qos, payload.as_bytes().to_vec(), None);
    p.pkid = pkid;
    let mut wire = BytesMut::new();
    write_packet(&Packet::Publish(p), &mut wire, 1 << 20, Protocol::V311).unwrap();
    h.line.handle_input_on(id, &mut wire, h.now, 42).unwrap();
    assert!(wire.is_empty(), "the line read the whole packet");
    h.events()
}

/// IN_DATA values shown by station 1 (tag 11).
fn shown(events: &[Event]) -> Vec<String> {
    values(events)
        .into_iter()
        .filter(|(tag, _, _)| *tag == 11)
        .filter_map(|(_, v, _)| match v {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        })
        .collect()
}

/// PUBACK packet ids sent on connection `id`.
fn pubacks(h: &mut Harness, id: LinkId) -> Vec<u16> {
    transmit(h, id)
        .into_iter()
        .filter_map(|p| match p {
            Packet::PubAck(a) => Some(a.pkid),
            _ => None,
        })
        .collect()
}

fn redundant(gate: bool) -> Harness {
    let mut h = Harness::new(&[("redundant_host", "b"), ("redundant_window", "1")]);
    h.station(1, "t");
    if gate {
        h.ack_id(1);
    }
    h.line.start(0).unwrap();
    connect(&mut h, A);
    connect(&mut h, B);
    h.events();
    h
}

#[test]
fn the_line_is_connected_while_one_connection_is() {
    let mut h = Harness::new(&[("redundant_host", "b")]);
    h.station(1, "t");
    h.line.start(0).unwrap();
    assert_eq!(h.line.links(), [A, B]);
    connect(&mut h, A);
    connect(&mut h, B);
    let ev = h.events();
    let line: Vec<&LineEvent> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Line(l) => Some(l),
            _ => None,
        })
        .collect();
    // One line event for the first ready connection; each connection reports itself.
    assert!(
        matches!(line[..], [LineEvent::Connected { link: A, .. }]),
        "{line:?}"
    );
    let links = ev.iter().filter(|e| matches!(e, Event::Link(_))).count();
    assert_eq!(links, 2);
    h.line.transport_closed_on(A, "A gone", 1);
    let ev = h.events();
    assert!(h.line.is_ready());
    assert!(!ev.iter().any(|e| matches!(e, Event::Line(_))), "{ev:?}");
    h.line.transport_closed_on(B, "B gone", 2);
    let ev = h.events();
    assert!(!h.line.is_ready());
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Line(LineEvent::Disconnected { link: B, .. }))));
}

#[test]
fn each_message_through_both_is_shown_once_and_acknowledged_on_both() {
    // (connection, payload, packet id, shown)
    let rows: &[(LinkId, &str, u16, bool)] = &[
        (A, "1", 1, true),
        (B, "1", 7, false),
        (B, "2", 8, true),
        (A, "2", 2, false),
        (A, "3", 3, true),
        (A, "3", 4, true),
        (B, "3", 9, false),
        (B, "3", 10, false),
        (B, "4", 11, true),
    ];
    // QoS 1, and QoS 0, whose copy a 3.1.1 line judges before it becomes a message (and whose
    // packet id is none).
    for (qos, acks_a, acks_b) in [
        (QoS::AtLeastOnce, &[1, 2, 3, 4][..], &[7, 8, 9, 10, 11][..]),
        (QoS::AtMostOnce, &[], &[]),
    ] {
        let mut h = redundant(false);
        for &(id, payload, pkid, want) in rows {
            let ev = receive(&mut h, id, payload, qos, pkid);
            let got = !shown(&ev).is_empty();
            assert_eq!(got, want, "{qos:?} {id:?} {payload} {pkid}");
        }
        assert_eq!(pubacks(&mut h, A), acks_a, "{qos:?}");
        assert_eq!(pubacks(&mut h, B), acks_b, "{qos:?}");
        let a = h.line.link_stats(A).unwrap();
        let b = h.line.link_stats(B).unwrap();
        assert_eq!((a.received, a.duplicates), (4, 1), "{qos:?}");
        assert_eq!((b.received, b.duplicates), (5, 3), "{qos:?}");
        assert_eq!(h.line.stats().received, 5, "{qos:?}");
    }
}

#[test]
fn a_qos_0_copy_of_a_gated_message_shows_nothing_and_waits_for_nothing() {
    let mut h = redundant(true);
    assert_eq!(shown(&receive(&mut h, A, "1", QoS::AtMostOnce, 0)), ["1"]);
    assert!(shown(&receive(&mut h, B, "1", QoS::AtMostOnce, 0)).is_empty());
    assert!(shown(&receive(&mut h, B, "2", QoS::AtMostOnce, 0)).is_empty());
    assert!(shown(&receive(&mut h, A, "2", QoS::AtMostOnce, 0)).is_empty());
    // IN_ID of a QoS 0 message is 0.
    assert_eq!(confirm(&mut h, 0), ["2"]);
    assert!(confirm(&mut h, 0).is_empty());
    assert_eq!(h.line.link_stats(A).unwrap().duplicates, 1);
    assert_eq!(h.line.link_stats(B).unwrap().duplicates, 1);
}

#[test]
fn a_copy_of_a_gated_message_is_acknowledged_when_the_host_confirms() {
    let mut h = redundant(true);
    assert_eq!(shown(&receive(&mut h, A, "1", QoS::AtLeastOnce, 5)), ["1"]);
    assert!(shown(&receive(&mut h, B, "1", QoS::AtLeastOnce, 9)).is_empty());
    // Neither broker has its acknowledgement before the host confirmed.
    assert_eq!(pubacks(&mut h, A), Vec::<u16>::new());
    assert_eq!(pubacks(&mut h, B), Vec::<u16>::new());
    // A is lost before the confirmation: the copy through B is still acknowledged.
    h.line.transport_closed_on(A, "A gone", 1);
    h.line.write(TagId(50), 1, Value::Int(5), h.now, 2).unwrap();
    let ev = h.events();
    assert!(
        write_results(&ev).iter().all(|(_, e)| e.is_none()),
        "{ev:?}"
    );
    assert_eq!(pubacks(&mut h, B), [9]);
}

#[test]
fn writes_go_to_both_and_fail_only_when_both_fail() {
    // (A ready, B ready, outcome: None = ok once a broker accepted)
    let rows: &[(bool, bool, Option<&[&str]>)] = &[
        (true, true, None),
        (true, false, None),
        (false, true, None),
        (false, false, Some(&["A (", "B (", "not connected"])),
    ];
    for &(a_up, b_up, want) in rows {
        let mut h = Harness::writer_started(
            &[("redundant_host", "b"), ("publish_qos", "1")],
            Some("out"),
        );
        for (id, up) in [(A, a_up), (B, b_up)] {
            if up {
                connect(&mut h, id);
            }
        }
        h.events();
        h.line
            .write(TagId(2), 7, Value::Text("v".into()), h.now, 0)
            .unwrap();
        let mut results = write_results(&h.events());
        for (id, up) in [(A, a_up), (B, b_up)] {
            if !up {
                continue;
            }
            for p in transmit(&mut h, id) {
                if let Packet::Publish(p) = p {
                    let ack = mqtt_line_core::mqtt::PubAck::new(p.pkid, None);
                    h.line
                        .handle_packet_on(id, Packet::PubAck(ack), h.now, 0)
                        .unwrap();
                }
            }
            results.extend(write_results(&h.events()));
        }
        assert_eq!(
            results.len(),
            1,
            "exactly one WriteDone: {a_up} {b_up} {results:?}"
        );
        match (want, &results[0].1) {
            (None, None) => {}
            (Some(parts), Some(e)) => {
                for part in parts {
                    assert!(e.contains(part), "{e}");
                }
            }
            (w, got) => panic!("{a_up} {b_up}: want {w:?}, got {got:?}"),
        }
    }
}

/// A redundant line with clean sessions, both connections ready, and a QoS 1 write (request
/// 7) handed to both.
fn writing_on_both() -> Harness {
    let mut h = Harness::writer_started(
        &[
            ("redundant_host", "b"),
            ("publish_qos", "1"),
            ("clean_session", "YES"),
        ],
        Some("out"),
    );
    connect(&mut h, A);
    connect(&mut h, B);
    h.events();
    h.line
        .write(TagId(2), 7, Value::Text("v".into()), h.now, 0)
        .unwrap();
    h
}

#[test]
fn a_write_lost_on_both_connections_fails_with_both_reasons() {
    // With clean_session a lost connection's QoS 1 writes are not resent: they fail.
    let mut h = writing_on_both();
    transmit(&mut h, A);
    h.line.transport_closed_on(A, "A gone", 1);
    assert!(write_results(&h.events()).is_empty());
    h.line.transport_closed_on(B, "B gone", 2);
    let results = write_results(&h.events());
    assert_eq!(results.len(), 1);
    let e = results[0].1.clone().unwrap();
    assert!(e.contains("A (") && e.contains("B ("), "{e}");
}

/// Confirms the message station 1 shows (IN_ID `pkid`) and returns what it shows next.
fn confirm(h: &mut Harness, pkid: u16) -> Vec<String> {
    h.line
        .write(TagId(50), 1, Value::Int(i64::from(pkid)), h.now, 0)
        .unwrap();
    shown(&h.events())
}

#[test]
fn a_gated_station_shows_the_messages_of_a_rejoined_connection_in_order() {
    // A is lost with "2" shown and misses "3" and "4"; B lags behind (its broker's in-flight
    // window waits for ACK_ID): when A is back, it delivers "5" before B delivers "4". The
    // station shows 2, 3, 4, 5: "5" waits behind B's messages until B delivers its copy.
    let mut h = redundant(true);
    assert_eq!(shown(&receive(&mut h, A, "2", QoS::AtLeastOnce, 1)), ["2"]);
    h.line.transport_closed_on(A, "A gone", 1);
    assert!(shown(&receive(&mut h, B, "2", QoS::AtLeastOnce, 11)).is_empty());
    assert!(shown(&receive(&mut h, B, "3", QoS::AtLeastOnce, 12)).is_empty());
    connect(&mut h, A);
    h.events();
    assert!(shown(&receive(&mut h, A, "5", QoS::AtLeastOnce, 1)).is_empty());
    assert!(shown(&receive(&mut h, B, "4", QoS::AtLeastOnce, 13)).is_empty());
    assert_eq!(confirm(&mut h, 1), ["3"]);
    assert_eq!(confirm(&mut h, 12), ["4"]);
    // "5" waits for B: its copy is what says B has caught up.
    assert!(confirm(&mut h, 13).is_empty());
    assert_eq!(shown(&receive(&mut h, B, "5", QoS::AtLeastOnce, 14)), ["5"]);
    assert!(confirm(&mut h, 1).is_empty());
    assert_eq!(pubacks(&mut h, A), [1]);
    assert_eq!(pubacks(&mut h, B), [11, 12, 13, 14]);
}

#[test]
fn a_station_without_ack_id_shows_the_messages_of_a_rejoined_connection_in_order() {
    // A is lost and misses "3" and "4"; B carries them. When A is back, its broker delivers "6"
    // before B (behind a full socket) delivers "5": "6" waits until B's copy of it arrives, so
    // the station shows 3, 4, 5, 6; A's "6" is acknowledged when it is shown, B's copy at once.
    let mut h = redundant(false);
    h.line.transport_closed_on(A, "A gone", 1);
    assert_eq!(shown(&receive(&mut h, B, "3", QoS::AtLeastOnce, 11)), ["3"]);
    assert_eq!(shown(&receive(&mut h, B, "4", QoS::AtLeastOnce, 12)), ["4"]);
    connect(&mut h, A);
    h.events();
    assert!(shown(&receive(&mut h, A, "6", QoS::AtLeastOnce, 1)).is_empty());
    assert!(pubacks(&mut h, A).is_empty());
    assert_eq!(shown(&receive(&mut h, B, "5", QoS::AtLeastOnce, 13)), ["5"]);
    assert_eq!(shown(&receive(&mut h, B, "6", QoS::AtLeastOnce, 14)), ["6"]);
    // Within the window every message of A waits for B's copy, which shows it.
    assert!(shown(&receive(&mut h, A, "7", QoS::AtLeastOnce, 2)).is_empty());
    assert_eq!(shown(&receive(&mut h, B, "7", QoS::AtLeastOnce, 15)), ["7"]);
    assert_eq!(pubacks(&mut h, A), [1, 2]);
    assert_eq!(pubacks(&mut h, B), [11, 12, 13, 14, 15]);
}

#[test]
fn qos_0_messages_of_a_rejoined_connection_are_shown_in_order() {
    // As above with QoS 0, whose copies are judged before they become messages: B's copy of
    // "6" must still release A's "6", held ahead.
    let mut h = redundant(false);
    h.line.transport_closed_on(A, "A gone", 1);
    for payload in ["3", "4"] {
        assert_eq!(
            shown(&receive(&mut h, B, payload, QoS::AtMostOnce, 0)),
            [payload]
        );
    }
    connect(&mut h, A);
    h.events();
    assert!(shown(&receive(&mut h, A, "6", QoS::AtMostOnce, 0)).is_empty());
    assert_eq!(shown(&receive(&mut h, B, "5", QoS::AtMostOnce, 0)), ["5"]);
    assert_eq!(shown(&receive(&mut h, B, "6", QoS::AtMostOnce, 0)), ["6"]);
    assert!(shown(&receive(&mut h, A, "7", QoS::AtMostOnce, 0)).is_empty());
    assert_eq!(shown(&receive(&mut h, B, "7", QoS::AtMostOnce, 0)), ["7"]);
}

#[test]
fn a_copy_of_an_earlier_message_of_the_same_payload_releases_nothing_held() {
    // B delivers "x" (A lost it), then is lost and rejoins; it delivers "y" and "x" again,
    // held behind A's backlog. A's "x" is the copy of B's first "x" (the duplicate rule matches
    // the oldest), which was shown long ago: it says nothing of B's held messages, which wait
    // until A delivers "y" and the second "x". The station shows A's order: w, v, y, x.
    let mut h = redundant(false);
    assert_eq!(shown(&receive(&mut h, B, "x", QoS::AtLeastOnce, 11)), ["x"]);
    h.line.transport_closed_on(B, "B gone", 1);
    connect(&mut h, B);
    h.events();
    assert!(shown(&receive(&mut h, B, "y", QoS::AtLeastOnce, 12)).is_empty());
    assert!(shown(&receive(&mut h, B, "x", QoS::AtLeastOnce, 13)).is_empty());
    assert_eq!(shown(&receive(&mut h, A, "w", QoS::AtLeastOnce, 1)), ["w"]);
    assert!(shown(&receive(&mut h, A, "x", QoS::AtLeastOnce, 2)).is_empty());
    // B's held messages are acknowledged once shown, no earlier (B's first PUBACK was lost
    // with its connection).
    assert!(pubacks(&mut h, B).is_empty());
    assert_eq!(shown(&receive(&mut h, A, "v", QoS::AtLeastOnce, 3)), ["v"]);
    assert_eq!(shown(&receive(&mut h, A, "y", QoS::AtLeastOnce, 4)), ["y"]);
    assert_eq!(shown(&receive(&mut h, A, "x", QoS::AtLeastOnce, 5)), ["x"]);
    assert_eq!(pubacks(&mut h, B), [12, 13]);
}

#[test]
fn the_hold_lasts_while_the_other_connection_delivers_its_backlog() {
    // Window 1 s. A rejoins and delivers "9"; B, still working through the outage's backlog,
    // delivers "5" after 0.8 s and "6" after 1.6 s: "9" waits a window after the last of them.
    let mut h = redundant(false);
    h.line.transport_closed_on(A, "A gone", 1);
    connect(&mut h, A);
    h.events();
    assert!(shown(&receive(&mut h, A, "9", QoS::AtLeastOnce, 1)).is_empty());
    let step = std::time::Duration::from_millis(800);
    for backlog in ["5", "6"] {
        h.now += step;
        h.line.handle_timeout(h.now, 3).unwrap();
        assert_eq!(
            shown(&receive(&mut h, B, backlog, QoS::AtLeastOnce, 11)),
            [backlog]
        );
    }
    h.now += step;
    h.line.handle_timeout(h.now, 3).unwrap();
    assert!(
        shown(&h.events()).is_empty(),
        "still within a window of '6'"
    );
    h.now += step;
    assert!(h.line.poll_timeout().unwrap() <= h.now);
    h.line.handle_timeout(h.now, 3).unwrap();
    assert_eq!(shown(&h.events()), ["9"]);
}

#[test]
fn a_rejoined_connections_messages_wait_at_most_the_window() {
    // (what happens after A rejoined, shown once the window of 1 s is over; with and without
    // ACK_ID)
    let rows: &[(&str, bool, bool)] = &[
        ("the window ends", false, true),
        ("B is lost", true, true),
        ("the window ends, no ACK_ID", false, false),
        ("B is lost, no ACK_ID", true, false),
    ];
    for &(case, lose_b, gate) in rows {
        let mut h = redundant(gate);
        h.line.transport_closed_on(A, "A gone", 1);
        connect(&mut h, A);
        h.events();
        assert!(
            shown(&receive(&mut h, A, "7", QoS::AtLeastOnce, 1)).is_empty(),
            "{case}"
        );
        if lose_b {
            h.line.transport_closed_on(B, "B gone", 2);
        } else {
            h.now += std::time::Duration::from_secs(1);
        }
        let due = h.line.poll_timeout().unwrap();
        assert!(due <= h.now, "{case}");
        h.line.handle_timeout(h.now, 3).unwrap();
        assert_eq!(shown(&h.events()), ["7"], "{case}");
    }
}

#[test]
fn a_repeated_payload_is_shown_as_often_as_the_fuller_broker_carried_it() {
    // (case, arrivals of the same payload "x" in order, how often it is shown)
    let rows: &[(&str, &[LinkId], usize)] = &[
        ("both carry both", &[A, B, A, B], 2),
        ("A lost the first copy, B first", &[B, A, B], 2),
        ("A lost the first copy, A first", &[A, B, B], 2),
        ("B lost the second copy", &[A, B, A], 2),
        ("each lost a different one", &[A, B], 1),
        ("three through each", &[A, A, A, B, B, B], 3),
    ];
    for &(case, arrivals, want) in rows {
        let mut h = redundant(false);
        let mut count = 0;
        for (n, &id) in arrivals.iter().enumerate() {
            let pkid = u16::try_from(n + 1).unwrap();
            count += shown(&receive(&mut h, id, "x", QoS::AtLeastOnce, pkid)).len();
        }
        assert_eq!(count, want, "{case}");
    }
}

/// The redundant line's parameters (config_redundant.rs): defaults, values, and errors that name
/// the line, the parameter and the value.
mod parameters {
    use std::time::Duration;

    use mqtt_line_core::{ConfigError, HostEntry, LineConfig, Warnings};

    fn parse_params(params: &[(&str, &str)]) -> Result<(LineConfig, Warnings), ConfigError> {
        let mut all = vec![("host", "a1;a2")];
        all.extend_from_slice(params);
        LineConfig::from_params("line L", all)
    }

    #[test]
    fn second_connection_and_its_defaults() {
        let (c, _) = parse_params(&[]).unwrap();
        assert!(!c.redundant.is_on());
        let (c, _) = parse_params(&[("redundant_host", "b1, b2"), ("port", "1884")]).unwrap();
        assert_eq!(
            c.redundant.hosts,
            [HostEntry::new("b1"), HostEntry::new("b2")]
        );
        assert_eq!(c.redundant_port(), 1884);
        assert_eq!(c.redundant_client_id(), "D2000kom");
        assert_eq!(c.redundant.window, Duration::from_secs(2));
        let (c, _) = parse_params(&[
            ("redundant_host", "b1"),
            ("redundant_port", "2883"),
            ("redundant_client_id", "scada-b"),
            ("redundant_window", "2.5"),
        ])
        .unwrap();
        assert_eq!(c.redundant_port(), 2883);
        assert_eq!(c.redundant_client_id(), "scada-b");
        assert_eq!(c.redundant.window, Duration::from_millis(2500));
    }

    #[test]
    fn bad_values_name_the_line_the_parameter_and_the_value() {
        // (parameters, the parameter the error names, why)
        type Row<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let rows: &[Row] = &[
            (
                &[("redundant_host", " ; ")],
                "redundant_host",
                "at least one host",
            ),
            (
                &[("redundant_host", "b 1")],
                "redundant_host",
                "white space",
            ),
            (
                &[("redundant_port", "0")],
                "redundant_port",
                "from 1 to 65535",
            ),
            (
                &[("redundant_window", "0")],
                "redundant_window",
                "more than 0",
            ),
            (&[("redundant_window", "x")], "redundant_window", "seconds"),
            (&[("redundant_window", "7200")], "redundant_window", "3600"),
            (
                &[("redundant_host", "b"), ("redundant_client_id", "")],
                "redundant_client_id",
                "clean_session",
            ),
            (
                &[
                    ("redundant_host", "b"),
                    ("payload_type", "Sparkplug Edge Node"),
                ],
                "redundant_host",
                "one server at a time",
            ),
        ];
        for (params, param, why) in rows {
            let e = parse_params(params).unwrap_err().to_string();
            assert!(e.contains("line L"), "{e}");
            assert!(e.contains(param), "{params:?}: {e}");
            assert!(e.contains(why), "{params:?}: {e}");
        }
    }

    #[test]
    fn b_settings_without_b_are_warned_about() {
        let (_, w) = parse_params(&[("redundant_port", "2883")]).unwrap();
        assert!(
            w.iter().any(|w| w.contains("redundant_host is not")),
            "{w:?}"
        );
        let (c, _) = parse_params(&[("redundant_host", "")]).unwrap();
        assert!(!c.redundant.is_on());
    }
}

#[test]
fn taking_b_away_ends_each_write_that_waited_for_it_once() {
    // Found by the `line` fuzz target: a write published on both connections lost B's share
    // with B itself (new parameters without redundant_host), so when A's share failed too the
    // write never ended. (what happens to A's share, the write's outcome)
    let rows: &[(&str, Option<&str>)] = &[
        ("A's broker acknowledges", None),
        (
            "A is lost first, clean session",
            Some("B: the line no longer has"),
        ),
        (
            "A is lost after, clean session",
            Some("the connection to the broker was lost"),
        ),
    ];
    for &(case, want) in rows {
        let mut h = writing_on_both();
        let sent = transmit(&mut h, A);
        let mut results = write_results(&h.events());
        let lose_first = case.contains("first");
        if lose_first {
            h.line.transport_closed_on(A, "A gone", 1);
            results.extend(write_results(&h.events()));
        }
        h.line.reconfigure([("redundant_host", "")]).unwrap();
        assert!(!h.line.has_link(B), "{case}");
        // The shell reconnects A after new parameters; its loop's timer is due at once.
        let due = h.line.poll_timeout().unwrap();
        assert!(due <= h.now, "{case}");
        h.line.handle_timeout(h.now, 2).unwrap();
        results.extend(write_results(&h.events()));
        if case.contains("acknowledges") {
            for p in sent {
                if let Packet::Publish(p) = p {
                    let ack = mqtt_line_core::mqtt::PubAck::new(p.pkid, None);
                    h.line.handle_packet(Packet::PubAck(ack), h.now, 3).unwrap();
                }
            }
        } else if !lose_first {
            h.line.transport_closed("A gone", 3);
        }
        results.extend(write_results(&h.events()));
        assert_eq!(
            results.len(),
            1,
            "exactly one WriteDone: {case} {results:?}"
        );
        match (want, &results[0].1) {
            (None, None) => {}
            (Some(part), Some(e)) => assert!(e.contains(part), "{case}: {e}"),
            (w, got) => panic!("{case}: want {w:?}, got {got:?}"),
        }
    }
}

#[test]
fn taking_b_away_shows_the_messages_held_ahead_of_its_own() {
    // Found by the `line` fuzz target: A rejoined, so its message waited behind B's; B taken
    // away by new parameters took the rejoin with it, and the message was never shown.
    let mut h = redundant(true);
    h.line.transport_closed_on(A, "A gone", 1);
    connect(&mut h, A);
    h.events();
    assert!(shown(&receive(&mut h, A, "7", QoS::AtLeastOnce, 1)).is_empty());
    h.line.reconfigure([("redundant_host", "")]).unwrap();
    h.line.transport_closed("parameters changed", 2);
    h.events();
    let due = h.line.poll_timeout().unwrap();
    assert!(due <= h.now);
    h.line.handle_timeout(h.now, 3).unwrap();
    assert_eq!(shown(&h.events()), ["7"]);
    assert!(confirm(&mut h, 1).is_empty());
}

#[test]
fn a_copy_waits_for_the_message_the_rule_matched_it_with() {
    // Found by the `line` fuzz target: with a repeated payload, the copy through B was kept with
    // the first message of that payload although the duplicate rule had matched it with the
    // second, so B's broker got its PUBACK while the second waited for ACK_ID (losing A's broker
    // then would lose it). (case, whether 1 s passes before the second "r", QoS of a first copy)
    let rows: &[(&str, bool, Option<QoS>)] = &[
        ("the first one's window ended", true, None),
        (
            "a copy with QoS 0 matched the first one",
            false,
            Some(QoS::AtMostOnce),
        ),
    ];
    for &(case, wait, first_copy) in rows {
        let mut h = redundant(true);
        assert_eq!(shown(&receive(&mut h, A, "g", QoS::AtLeastOnce, 1)), ["g"]);
        assert!(shown(&receive(&mut h, A, "r", QoS::AtLeastOnce, 2)).is_empty());
        if let Some(qos) = first_copy {
            receive(&mut h, B, "r", qos, 8);
        }
        if wait {
            h.now += std::time::Duration::from_secs(1);
        }
        assert!(shown(&receive(&mut h, A, "r", QoS::AtLeastOnce, 3)).is_empty());
        assert!(shown(&receive(&mut h, B, "r", QoS::AtLeastOnce, 9)).is_empty());
        assert_eq!(confirm(&mut h, 1), ["r"], "{case}");
        assert_eq!(confirm(&mut h, 2), ["r"], "{case}");
        assert_eq!(pubacks(&mut h, B), Vec::<u16>::new(), "{case}");
        assert!(confirm(&mut h, 3).is_empty(), "{case}");
        assert_eq!(pubacks(&mut h, B), [9], "{case}");
        assert_eq!(pubacks(&mut h, A), [1, 2, 3], "{case}");
    }
}

#[test]
fn a_changed_window_applies_to_the_messages_remembered() {
    // Found by the `line` fuzz target: the remembered originals kept the window they arrived
    // with, in a queue ordered by its end; after redundant_window was shortened, a message
    // whose window had ended stayed behind an older one whose had not, and its copy was taken
    // for a duplicate. (case, the window set after "old" arrived, ms until the copy of "new",
    // whether that copy is shown)
    let rows: &[(&str, &str, u64, bool)] = &[
        ("shortened, copy after the window", "0.5", 1000, true),
        ("shortened, copy within the window", "0.5", 200, false),
        (
            "lengthened, copy within the new window",
            "60",
            40_000,
            false,
        ),
    ];
    for &(case, window, delay_ms, want) in rows {
        let mut h = Harness::new(&[("redundant_host", "b"), ("redundant_window", "30")]);
        h.station(1, "t");
        h.line.start(0).unwrap();
        connect(&mut h, A);
        connect(&mut h, B);
        h.events();
        assert_eq!(
            shown(&receive(&mut h, A, "old", QoS::AtLeastOnce, 1)),
            ["old"]
        );
        h.line.reconfigure([("redundant_window", window)]).unwrap();
        assert_eq!(
            shown(&receive(&mut h, A, "new", QoS::AtLeastOnce, 2)),
            ["new"]
        );
        h.now += std::time::Duration::from_millis(delay_ms);
        let got = !shown(&receive(&mut h, B, "new", QoS::AtLeastOnce, 9)).is_empty();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn a_copy_passes_over_a_message_the_rule_forgot_before_the_window_grew() {
    // The gate judged a held message's window with the window as it is now; the rule forgets
    // an original for good when its window ends. After redundant_window grew, a copy through B
    // that the rule matched with a later "r" was kept with the forgotten earlier one, and B's
    // broker got its PUBACK when that one was confirmed.
    let mut h = redundant(true);
    assert_eq!(shown(&receive(&mut h, A, "g", QoS::AtLeastOnce, 1)), ["g"]);
    assert!(shown(&receive(&mut h, A, "r", QoS::AtLeastOnce, 2)).is_empty());
    h.now += std::time::Duration::from_millis(1500);
    // Any message makes the rule forget what is past its window of 1 s.
    assert!(shown(&receive(&mut h, A, "x", QoS::AtLeastOnce, 3)).is_empty());
    assert!(shown(&receive(&mut h, A, "r", QoS::AtLeastOnce, 4)).is_empty());
    h.line.reconfigure([("redundant_window", "10")]).unwrap();
    assert!(shown(&receive(&mut h, B, "r", QoS::AtLeastOnce, 9)).is_empty());
    assert_eq!(confirm(&mut h, 1), ["r"]);
    assert_eq!(confirm(&mut h, 2), ["x"]);
    assert_eq!(confirm(&mut h, 3), ["r"]);
    assert_eq!(pubacks(&mut h, B), Vec::<u16>::new());
    assert!(confirm(&mut h, 4).is_empty());
    assert_eq!(pubacks(&mut h, B), [9]);
}

/// Each connection of a redundant line keeps its own pace of reading (read_pace.rs), counted in
/// its own messages: a read of copies the other connection delivered first counts as much.
#[test]
fn each_connection_counts_its_own_messages_for_the_pause_copies_included() {
    let mut h = Harness::new(&[("redundant_host", "b")]);
    h.station(1, "t");
    h.line.start(0).unwrap();
    connect(&mut h, A);
    connect(&mut h, B);
    let t0 = h.now;
    let soon = t0 + std::time::Duration::from_micros(50);
    for (id, first) in [(A, 1), (B, 11)] {
        // Two messages on each: A delivers them, B's are copies, shown once.
        h.now = t0;
        receive(&mut h, id, "1", QoS::AtLeastOnce, first);
        receive(&mut h, id, "2", QoS::AtLeastOnce, first + 1);
        assert_eq!(
            h.line.read_again_at_on(id, h.now, 60),
            None,
            "{id:?}: first read"
        );
        h.now = soon;
        receive(&mut h, id, "3", QoS::AtLeastOnce, first + 2);
        receive(&mut h, id, "4", QoS::AtLeastOnce, first + 3);
        let paused = h.line.read_again_at_on(id, h.now, 60);
        assert_eq!(
            paused,
            Some(soon + std::time::Duration::from_millis(1)),
            "{id:?}: two messages 50 us later"
        );
    }
}
