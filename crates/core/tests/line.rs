//! The line core driven as the shell drives it, with packets in and events out, no network.

mod common;

use common::*;
use mqtt_line_core::mqtt::{Packet, PubAck, Publish, QoS};
use mqtt_line_core::{
    Event, LineEvent, LinkId, LogLevel, FLAG_DUPLICATE, FLAG_RETAINED, FLAG_VALID,
};
use mqtt_line_core::{StationCommand, StationId, StationState, TagId, Value, ValueType};

#[test]
fn stations_report_comm_error_until_connected_then_ok() {
    let mut h = Harness::new(&[]);
    h.station(1, "a");
    h.station(2, "b");
    h.line
        .station_command(StationId(2), StationCommand::Off, h.now, 0)
        .unwrap();
    h.line.start(0).unwrap();
    assert_eq!(
        states(&h.events()),
        [(1, StationState::CommError), (2, StationState::Off)]
    );
    h.connect();
    let ev = h.events();
    assert!(ev.contains(&Event::Line(LineEvent::Connected {
        host: "127.0.0.1:1883".into(),
        time_ns: 0,
        link: LinkId::A,
    })));
    assert_eq!(states(&ev), [(1, StationState::Ok)]);
}

#[test]
fn inputs_are_filled_in_order_topic_data_id() {
    let mut h = Harness::new(&[]);
    h.station(1, "status/battery");
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let ev = h.receive("status/battery", b"42", QoS::AtLeastOnce, 7);
    assert_eq!(
        values(&ev),
        [
            (10, Some(Value::Text("status/battery".into())), FLAG_VALID),
            (11, Some(Value::Text("42".into())), FLAG_VALID),
            (12, Some(Value::Int(7)), FLAG_VALID),
        ]
    );
    // QoS 1 is acknowledged at once when the station has no ACK_ID tag.
    assert_eq!(h.transmit(), [Packet::PubAck(PubAck::new(7, None))]);
    let ev = h.receive("status/battery", b"x", QoS::AtMostOnce, 0);
    assert_eq!(values(&ev)[2], (12, Some(Value::Int(0)), FLAG_VALID));
}

#[test]
fn flags_mark_duplicates_and_retained_messages() {
    let mut h = Harness::new(&[]);
    h.station(1, "t");
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let mut p = Publish::new("t", QoS::AtLeastOnce, "v", None);
    p.pkid = 3;
    p.dup = true;
    p.retain = true;
    let ev = h.receive_publish(p);
    assert_eq!(
        values(&ev)[0].2,
        FLAG_VALID | FLAG_DUPLICATE | FLAG_RETAINED
    );
}

#[test]
fn invalid_utf8_payload_reaches_in_data_with_replacement() {
    let mut h = Harness::new(&[]);
    h.station(1, "t");
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let ev = h.receive("t", b"ok\xff\xfe!", QoS::AtMostOnce, 0);
    assert_eq!(
        values(&ev)[1].1,
        Some(Value::Text("ok\u{fffd}\u{fffd}!".into()))
    );
}

#[test]
fn payload_that_does_not_fit_the_tag_type_makes_it_invalid() {
    let mut h = Harness::new(&[]);
    h.line.add_station(StationId(1), "st", "t", []).unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(1),
            "level",
            "IN_DATA",
            ValueType::Ai,
            None,
        )
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    assert_eq!(
        values(&h.receive("t", b"12.5", QoS::AtMostOnce, 0)),
        [(1, Some(Value::Float(12.5)), FLAG_VALID)]
    );
    assert_eq!(
        values(&h.receive("t", b"n/a", QoS::AtMostOnce, 0)),
        [(1, None, 0)]
    );
}

#[test]
fn routing_through_the_line_and_off_stations() {
    let mut h = Harness::new(&[]);
    h.station(1, "status/battery");
    h.station(2, "status/batt.*");
    h.station(3, ".*");
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let station_of = |ev: &[Event]| {
        ev.iter().find_map(|e| match e {
            Event::TagValue { station, .. } => Some(station.0),
            _ => None,
        })
    };
    assert_eq!(
        station_of(&h.receive("status/battery", b"1", QoS::AtMostOnce, 0)),
        Some(1)
    );
    assert_eq!(
        station_of(&h.receive("status/battery2", b"1", QoS::AtMostOnce, 0)),
        Some(2)
    );
    assert_eq!(
        station_of(&h.receive("other", b"1", QoS::AtMostOnce, 0)),
        Some(3)
    );
    h.line
        .station_command(StationId(2), StationCommand::Off, h.now, 0)
        .unwrap();
    h.events();
    // A message for a station that is off is dropped, not passed on to `.*`.
    assert_eq!(
        station_of(&h.receive("status/battery2", b"1", QoS::AtMostOnce, 0)),
        None
    );
}

#[test]
fn lost_connection_invalidates_inputs_and_sets_comm_error() {
    let mut h = Harness::new(&[]);
    h.station(1, "t");
    h.station(2, "u");
    h.line.start(0).unwrap();
    h.connect();
    h.receive("t", b"v", QoS::AtMostOnce, 0);
    h.line.transport_closed("broker gone", 7);
    let ev = h.events();
    assert!(ev.contains(&Event::Line(LineEvent::Disconnected {
        reason: "broker gone".into(),
        time_ns: 7,
        link: LinkId::A,
    })));
    assert_eq!(
        states(&ev),
        [(1, StationState::CommError), (2, StationState::CommError)]
    );
    // Only station 1's tags had values, so only they are invalidated.
    let invalid: Vec<u64> = values(&ev).iter().map(|v| v.0).collect();
    assert_eq!(invalid, [10, 11, 12]);
    assert!(values(&ev).iter().all(|v| v.1.is_none() && v.2 == 0));
}

#[test]
fn the_line_wants_no_connection_when_every_station_is_off_or_simulated() {
    let mut h = Harness::new(&[]);
    h.station(1, "t");
    h.station(2, "u");
    h.line.start(0).unwrap();
    assert!(h.line.wants_connection());
    h.line
        .station_command(StationId(1), StationCommand::Off, h.now, 0)
        .unwrap();
    h.line
        .station_command(StationId(2), StationCommand::Simulate, h.now, 0)
        .unwrap();
    assert!(!h.line.wants_connection());
    h.line
        .station_command(StationId(2), StationCommand::On, h.now, 0)
        .unwrap();
    assert!(h.line.wants_connection());
}

fn writer(params: &[(&str, &str)]) -> Harness {
    let mut h = Harness::new(params);
    h.station(1, "t");
    h.line
        .add_tag(
            StationId(1),
            TagId(100),
            "topic",
            "OUT_TOPIC",
            ValueType::TxtO,
            None,
        )
        .unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(101),
            "value",
            "OUT_VALUE",
            ValueType::TxtO,
            None,
        )
        .unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(102),
            "ja",
            "JA=a.b",
            ValueType::Co,
            None,
        )
        .unwrap();
    h.line.start(0).unwrap();
    h
}

#[test]
fn writes_fail_with_a_reason_for_every_wrong_target() {
    let mut h = writer(&[]);
    h.connect();
    h.events();
    let text = |s: &str| Value::Text(s.into());
    h.line.write(TagId(10), 1, text("x"), h.now, 0).unwrap();
    h.line
        .write(TagId(101), 2, text("no topic yet"), h.now, 0)
        .unwrap();
    h.line
        .write(TagId(102), 3, Value::Int(1), h.now, 0)
        .unwrap();
    h.line.write(TagId(100), 4, text("a/#"), h.now, 0).unwrap();
    assert!(
        h.line.write(TagId(999), 5, text("x"), h.now, 0).is_err(),
        "unknown tag id"
    );
    let results = write_results(&h.events());
    let errors: Vec<&str> = results
        .iter()
        .map(|(_, e)| e.as_deref().expect("each fails"))
        .collect();
    assert!(
        errors[0].contains("tag 's1.IN_TOPIC' is an input tag"),
        "{errors:?}"
    );
    assert!(errors[1].contains("has no OUT_TOPIC value"), "{errors:?}");
    assert!(errors[2].contains("JA= tags"), "{errors:?}");
    assert!(errors[3].contains("'a/#' is not a topic"), "{errors:?}");
    assert_eq!(
        results.iter().map(|r| r.0).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

#[test]
fn out_value_publishes_to_out_topic_and_completes_by_qos() {
    let mut h = writer(&[("publish_qos", "1"), ("publish_retain", "YES")]);
    h.connect();
    h.events();
    h.line
        .write(TagId(100), 1, Value::Text("cmd/x".into()), h.now, 0)
        .unwrap();
    h.line
        .write(TagId(101), 2, Value::Text("on".into()), h.now, 0)
        .unwrap();
    assert_eq!(write_results(&h.events()), [(1, None)]);
    let out = h.transmit();
    let Some(Packet::Publish(p)) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!((&p.topic[..], &p.payload[..]), (&b"cmd/x"[..], &b"on"[..]));
    assert!(p.retain && p.qos == QoS::AtLeastOnce);
    let pkid = p.pkid;
    h.line
        .handle_packet(Packet::PubAck(PubAck::new(pkid, None)), h.now, 0)
        .unwrap();
    assert_eq!(write_results(&h.events()), [(2, None)]);
}

#[test]
fn qos0_write_completes_when_flushed_and_fails_when_not_connected() {
    let mut h = writer(&[]);
    h.line
        .write(TagId(100), 1, Value::Text("cmd/x".into()), h.now, 0)
        .unwrap();
    h.line
        .write(TagId(101), 2, Value::Text("v".into()), h.now, 0)
        .unwrap();
    let results = write_results(&h.events());
    assert_eq!(results[0], (1, None));
    assert!(
        results[1].1.as_deref().unwrap().contains("not connected"),
        "{results:?}"
    );
    h.connect();
    h.events();
    h.line
        .write(TagId(101), 3, Value::Text("v".into()), h.now, 0)
        .unwrap();
    assert!(write_results(&h.events()).is_empty());
    h.transmit();
    h.line.flushed(0);
    assert_eq!(write_results(&h.events()), [(3, None)]);
}

#[test]
fn configuration_errors_name_the_object_and_value() {
    let mut h = Harness::new(&[]);
    h.line.add_station(StationId(1), "one", "a/b", []).unwrap();
    let err = h
        .line
        .add_station(StationId(2), "two", "a/b", [])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("station 'two'") && err.contains("station 'one'"),
        "{err}"
    );
    let err = h
        .line
        .add_tag(
            StationId(1),
            TagId(1),
            "t",
            "OUT_TOPIC",
            ValueType::TxtI,
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("tag 'one.t'") && err.contains("TxtI"), "{err}");
    let err = h
        .line
        .add_tag(
            StationId(1),
            TagId(2),
            "n",
            "OUT_VALUE",
            ValueType::Co,
            Some(Value::Text("abc".into())),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tag 'one.n'") && err.contains("'abc'"),
        "{err}"
    );
    let err = h
        .line
        .add_station(StationId(3), "three", "x", [("SWZ", "1")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("'SWZ'"), "{err}");
    h.line.start(0).unwrap();
    assert!(h.line.add_station(StationId(4), "late", "y", []).is_err());
}

fn shown_ids(events: &[Event]) -> Vec<Value> {
    values(events)
        .into_iter()
        .filter(|v| v.0 == 12)
        .filter_map(|v| v.1)
        .collect()
}

#[test]
fn ack_id_shows_one_message_at_a_time_in_arrival_order() {
    let mut h = gated(&[]);
    let ev = h.receive("t", b"a", QoS::AtLeastOnce, 1);
    assert_eq!(shown_ids(&ev), [Value::Int(1)]);
    assert!(
        h.transmit().is_empty(),
        "no PUBACK before the host confirms"
    );
    assert!(shown_ids(&h.receive("t", b"b", QoS::ExactlyOnce, 2)).is_empty());
    assert!(shown_ids(&h.receive("t", b"c", QoS::AtMostOnce, 0)).is_empty());

    // A wrong id changes nothing and says what was expected.
    h.line.write(TagId(50), 1, Value::Int(2), h.now, 0).unwrap();
    let ev = h.events();
    let err = write_results(&ev)[0].1.clone().unwrap();
    assert!(
        err.contains("ACK_ID 2") && err.contains("expected IN_ID 1"),
        "{err}"
    );
    assert!(shown_ids(&ev).is_empty());

    h.line.write(TagId(50), 2, Value::Int(1), h.now, 0).unwrap();
    let ev = h.events();
    assert_eq!(write_results(&ev), [(2, None)]);
    assert_eq!(shown_ids(&ev), [Value::Int(2)]);
    assert_eq!(h.transmit(), [Packet::PubAck(PubAck::new(1, None))]);

    h.line.write(TagId(50), 3, Value::Int(2), h.now, 0).unwrap();
    assert_eq!(shown_ids(&h.events()), [Value::Int(0)]);
    let out = h.transmit();
    assert!(
        matches!(out[..], [Packet::PubRec(ref r)] if r.pkid == 2),
        "{out:?}"
    );
    h.line.write(TagId(50), 4, Value::Int(0), h.now, 0).unwrap();
    let ev = h.events();
    assert_eq!(write_results(&ev), [(4, None)]);
    h.line.write(TagId(50), 5, Value::Int(0), h.now, 0).unwrap();
    let err = write_results(&h.events())[0].1.clone().unwrap();
    assert!(err.contains("no message waiting"), "{err}");
}

#[test]
fn acks_reach_the_broker_in_arrival_order_across_stations() {
    let mut h = gated(&[]);
    h.receive("t", b"a", QoS::AtLeastOnce, 1);
    h.receive("free", b"b", QoS::AtLeastOnce, 2);
    // Station 2 needs no confirmation, but its PUBACK must wait for the earlier message's.
    assert!(h.transmit().is_empty());
    h.line.write(TagId(50), 1, Value::Int(1), h.now, 0).unwrap();
    assert_eq!(
        h.transmit(),
        [
            Packet::PubAck(PubAck::new(1, None)),
            Packet::PubAck(PubAck::new(2, None))
        ]
    );
}

#[test]
fn held_messages_survive_a_reconnect_without_twins() {
    let mut h = gated(&[]);
    h.receive("t", b"a", QoS::AtLeastOnce, 1);
    h.receive("t", b"b", QoS::AtLeastOnce, 2);
    h.line.transport_closed("lost", 0);
    h.connect_with_session(true);
    h.events();
    // The broker redelivers both; the shown one stays shown, the held one becomes new again.
    let mut dup = Publish::new("t", QoS::AtLeastOnce, "a", None);
    (dup.pkid, dup.dup) = (1, true);
    assert!(shown_ids(&h.receive_publish(dup)).is_empty());
    let mut dup = Publish::new("t", QoS::AtLeastOnce, "b", None);
    (dup.pkid, dup.dup) = (2, true);
    assert!(
        shown_ids(&h.receive_publish(dup)).is_empty(),
        "held, not shown yet"
    );
    h.line.write(TagId(50), 1, Value::Int(1), h.now, 0).unwrap();
    assert_eq!(shown_ids(&h.events()), [Value::Int(2)]);
    assert_eq!(h.transmit(), [Packet::PubAck(PubAck::new(1, None))]);
}

#[test]
fn held_messages_are_kept_when_the_broker_lost_the_session() {
    let mut h = gated(&[]);
    h.receive("t", b"a", QoS::AtLeastOnce, 1);
    h.receive("t", b"b", QoS::AtLeastOnce, 2);
    h.line.transport_closed("lost", 0);
    h.connect_with_session(false);
    h.events();
    // A new message reuses id 1; confirming the old message 1 must not acknowledge it.
    h.receive("t", b"new", QoS::AtLeastOnce, 1);
    h.line.write(TagId(50), 1, Value::Int(1), h.now, 0).unwrap();
    assert_eq!(
        shown_ids(&h.events()),
        [Value::Int(2)],
        "the held message is not lost"
    );
    assert!(h.transmit().is_empty(), "no PUBACK for the new message yet");
    h.line.write(TagId(50), 2, Value::Int(2), h.now, 0).unwrap();
    assert_eq!(shown_ids(&h.events()), [Value::Int(1)]);
    h.line.write(TagId(50), 3, Value::Int(1), h.now, 0).unwrap();
    assert_eq!(h.transmit(), [Packet::PubAck(PubAck::new(1, None))]);
}

#[test]
fn station_will_puts_the_station_in_hard_error_until_data_comes() {
    let mut h = Harness::new(&[]);
    h.line
        .add_station(
            StationId(1),
            "dev",
            "devices/1/up",
            [("SWT", "devices/1/status"), ("SWP", "offline")],
        )
        .unwrap();
    h.line
        .add_tag(
            StationId(1),
            TagId(10),
            "data",
            "IN_DATA",
            ValueType::TxtI,
            None,
        )
        .unwrap();
    h.line.add_station(StationId(2), "all", ".*", []).unwrap();
    h.line
        .add_tag(
            StationId(2),
            TagId(20),
            "topic",
            "IN_TOPIC",
            ValueType::TxtI,
            None,
        )
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    h.receive("devices/1/up", b"1", QoS::AtMostOnce, 0);

    // The will topic with another payload is ordinary data (it goes to `.*`).
    let ev = h.receive("devices/1/status", b"online", QoS::AtMostOnce, 0);
    assert!(states(&ev).is_empty());
    assert_eq!(values(&ev)[0].0, 20);

    // The will itself: hard error, inputs invalid, and not routed as data.
    let ev = h.receive("devices/1/status", b"offline", QoS::AtLeastOnce, 3);
    assert_eq!(states(&ev), [(1, StationState::HardError)]);
    assert_eq!(values(&ev), [(10, None, 0)]);
    assert_eq!(h.transmit(), [Packet::PubAck(PubAck::new(3, None))]);

    // A lost connection and its return do not clear a device's hard error.
    h.line.transport_closed("x", 0);
    h.connect();
    let station1: Vec<_> = states(&h.events())
        .into_iter()
        .filter(|s| s.0 == 1)
        .collect();
    assert_eq!(
        station1,
        [(1, StationState::CommError), (1, StationState::HardError)]
    );

    // The next data message brings the station back.
    let ev = h.receive("devices/1/up", b"2", QoS::AtMostOnce, 0);
    assert_eq!(states(&ev), [(1, StationState::Ok)]);
    assert_eq!(
        values(&ev),
        [(10, Some(Value::Text("2".into())), FLAG_VALID)]
    );
}

#[test]
fn station_will_without_payload_matches_any_payload() {
    let mut h = Harness::new(&[]);
    h.line
        .add_station(StationId(1), "dev", "d/up", [("SWT", "d/lwt")])
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let ev = h.receive("d/lwt", b"whatever", QoS::AtMostOnce, 0);
    assert_eq!(states(&ev), [(1, StationState::HardError)]);
}

#[test]
fn json_tags_come_before_in_fields_and_share_the_payload_time() {
    let mut h = Harness::new(&[
        ("payload_type", "JSON"),
        ("time_field_name", "t"),
        ("time_mask", "UNIX"),
    ]);
    h.line.add_station(StationId(1), "s", "x", []).unwrap();
    h.line
        .add_tag(StationId(1), TagId(1), "id", "IN_ID", ValueType::Ci, None)
        .unwrap();
    h.line
        .add_tag(StationId(1), TagId(2), "v", "JA=v", ValueType::Ai, None)
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let ev = h.receive("x", br#"{"t": 1795428000, "v": 2.5}"#, QoS::AtLeastOnce, 9);
    let got = values(&ev);
    assert_eq!(got.iter().map(|v| v.0).collect::<Vec<_>>(), [2, 1]);
    assert!(ev.iter().all(
        |e| matches!(e, Event::TagValue { time_ns, .. } if *time_ns == 1_795_428_000_000_000_000)
    ));
    // Not JSON: the JA tag is invalid, IN_ID is still set.
    let got = values(&h.receive("x", b"{oops", QoS::AtLeastOnce, 10));
    assert_eq!(got, [(2, None, 0), (1, Some(Value::Int(10)), FLAG_VALID)]);
}

#[test]
fn a_message_left_unconfirmed_sets_one_warning_deadline() {
    use std::time::Duration;
    let mut h = gated(&[("ping_interval", "0"), ("reply_timeout", "0")]);
    assert_eq!(h.line.poll_timeout(), None);
    h.receive("t", b"a", QoS::AtLeastOnce, 1);
    let due = h.now + Duration::from_secs(5);
    assert_eq!(h.line.poll_timeout(), Some(due));
    h.line.handle_timeout(due, 0).unwrap();
    // Warned once: no deadline is left that would fire again.
    assert_eq!(h.line.poll_timeout(), None);
}

#[test]
fn a_message_left_unconfirmed_is_warned_about_once() {
    let mut h = gated(&[]);
    h.receive("t", b"a", QoS::AtLeastOnce, 1);
    h.receive("t", b"b", QoS::AtLeastOnce, 2);
    let due = h.line.poll_timeout().expect("the warning has a deadline");
    assert_eq!(due - h.now, std::time::Duration::from_secs(5));
    h.now = due;
    h.line.handle_timeout(h.now, 0).unwrap();
    assert_eq!(
        logs(&h.events()),
        [(
            LogLevel::Warn,
            "station 's1' has waited 5s for the host to confirm IN_ID 1 through ACK_ID (1 more \
             messages held, 2 unconfirmed on the line); unconfirmed QoS 1/2 messages fill the \
             broker's in-flight window, which stops delivery to the whole line"
                .to_string()
        )]
    );
    h.now += std::time::Duration::from_secs(5);
    h.line.handle_timeout(h.now, 0).unwrap();
    assert_eq!(logs(&h.events()), []);
}

#[test]
fn a_missing_time_field_is_warned_about_and_the_receive_time_kept() {
    let mut h = Harness::new(&[
        ("payload_type", "JSON"),
        ("time_field_name", "ts"),
        ("time_mask", "UNIX"),
    ]);
    h.line.add_station(StationId(1), "loud", "x", []).unwrap();
    h.line
        .add_tag(StationId(1), TagId(1), "v", "JA=v", ValueType::Ai, None)
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let ev = h.receive("x", br#"{"v": 2.5}"#, QoS::AtMostOnce, 0);
    assert_eq!(
        logs(&ev),
        [(
            LogLevel::Warn,
            "station 'loud': no time field 'ts' in the payload of 'x'; the receive time is used"
                .to_string()
        )]
    );
    // The receive time is the wall time the shell passed in with the packet (42).
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::TagValue { time_ns: 42, .. })));
}

#[test]
fn events_carry_the_time_passed_in() {
    let mut h = Harness::new(&[]);
    h.station(1, "t");
    h.line.start(5).unwrap();
    h.connect();
    h.receive("t", b"v", QoS::AtMostOnce, 0);
    h.line.transport_closed("gone", 9);
    let ev = h.events();
    assert!(ev.contains(&Event::StationState {
        station: StationId(1),
        state: StationState::CommError,
        reason: "gone".into(),
        time_ns: 9,
    }));
    // The invalidated input tags carry the time of the disconnection.
    let invalid: Vec<i64> = ev
        .iter()
        .filter_map(|e| match e {
            Event::TagValue {
                value: None,
                time_ns,
                ..
            } => Some(*time_ns),
            _ => None,
        })
        .collect();
    assert_eq!(invalid, [9, 9, 9]);
}

/// The connection policy on virtual time, as the shell drives it: the attempt to host `a` gets no
/// CONNACK within the reply timeout, `b` refuses, a back-off follows the round, then `a` accepts;
/// once that connection is lost the next host is tried at once.
#[test]
fn failover_back_off_and_reply_timeout_on_virtual_time() {
    use mqtt_line_core::{Attempt, Ended};
    use std::time::Duration;

    let mut h = Harness::with_params(&[("host", "a, b"), ("reply_timeout", "2")]);
    h.station(1, "s");
    h.line.start(0).unwrap();
    let reply = Duration::from_secs(2);
    let attempt = |h: &mut Harness| match h.line.next_attempt(h.now) {
        Some(Attempt::Connect {
            host,
            port,
            timeout,
        }) => {
            assert_eq!((port, timeout), (1883, reply));
            Ok(host.to_string())
        }
        Some(Attempt::Wait(until)) => Err(until),
        None => panic!("the line stopped"),
    };

    // `a` accepts the TCP connection but never answers the CONNECT.
    assert_eq!(attempt(&mut h), Ok("a".into()));
    h.line.transport_open("a:1883", &Default::default(), h.now);
    h.transmit();
    let due = h.line.poll_timeout().expect("the CONNACK deadline");
    assert_eq!(due, h.now + reply);
    h.now = due;
    let reason = h.line.handle_timeout(h.now, 0).unwrap_err().to_string();
    assert!(reason.contains("CONNACK"), "{reason}");
    h.line.transport_closed(&reason, 0);
    h.line.connection_ended(h.now, Ended::Lost);

    // `b` refuses: the round is over, so the line backs off before `a` again.
    assert_eq!(attempt(&mut h), Ok("b".into()));
    h.line.transport_closed("connection refused", 0);
    h.line.connection_ended(h.now, Ended::Lost);
    let until = attempt(&mut h).expect_err("a back-off");
    assert_eq!(until, h.now + Duration::from_millis(250));
    h.now = until;

    // `a` accepts this time; its loss leads to `b` at once, with no back-off.
    assert_eq!(attempt(&mut h), Ok("a".into()));
    h.connect();
    assert!(h.line.was_ready());
    h.line
        .transport_closed("the broker closed the connection", 0);
    h.line.connection_ended(h.now, Ended::Lost);
    assert_eq!(attempt(&mut h), Ok("b".into()));
}

/// Whether the line closes its open connection, and how: the host's stop wins over its new
/// parameters, and no station being on is a deliberate restart, not a loss.
#[test]
fn the_line_decides_when_it_closes_its_connection() {
    use mqtt_line_core::{Closing, Deliberate};

    let mut h = Harness::new(&[]);
    h.station(1, "s");
    h.line.start(0).unwrap();
    for (stop, new_parameters, expected) in [
        (false, false, None),
        (false, true, Some(Closing::NEW_PARAMETERS)),
        (true, false, Some(Closing::STOP)),
        (true, true, Some(Closing::STOP)),
    ] {
        assert_eq!(
            h.line.closing(stop, new_parameters),
            expected,
            "stop {stop}, new parameters {new_parameters}"
        );
    }
    h.line
        .station_command(StationId(1), StationCommand::Off, h.now, 0)
        .unwrap();
    let closing = h.line.closing(false, false).expect("no station is on");
    assert_eq!(closing.how, Deliberate::Restart);
    assert_eq!(closing.reason, "every station is off or simulated");
    assert_eq!(h.line.closing(true, false), Some(Closing::STOP));
}

/// A connection the broker had accepted is logged when it ends: a warning when it was lost,
/// information when the line closed it itself. A failed attempt is not (its `Disconnected`
/// event says it), and it does not count as ready: the failed attempt after a lost ready
/// connection ends the round and starts the back-off.
#[test]
fn a_ready_connection_that_ends_is_logged_by_how_it_ended() {
    use mqtt_line_core::{Attempt, Deliberate, Ended};

    let logs = |h: &mut Harness| -> Vec<(LogLevel, String)> {
        h.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Log { level, text } => Some((level, text)),
                _ => None,
            })
            .collect()
    };
    let attempt = |h: &mut Harness| match h.line.next_attempt(h.now) {
        Some(Attempt::Connect { host, .. }) => host.to_string(),
        _ => panic!("expected a connection attempt"),
    };
    let mut h = Harness::with_params(&[("host", "a, b")]);
    h.station(1, "s");
    h.line.start(0).unwrap();

    assert_eq!(attempt(&mut h), "a");
    h.connect();
    logs(&mut h);
    h.line
        .transport_closed("the broker closed the connection", 0);
    h.line.connection_ended(h.now, Ended::Lost);
    let lost = logs(&mut h);
    assert!(
        lost.iter().any(|(level, text)| *level == LogLevel::Warn
            && text.contains("ended: the broker closed the connection")),
        "{lost:?}"
    );
    assert!(!h.line.was_ready(), "the end was reported");

    // The ready connection's loss moves on to `b` at once; `b` refuses, which ends the round
    // (it is no ready connection), so the line backs off before `a` again.
    assert_eq!(attempt(&mut h), "b");
    h.line.transport_closed("connection refused", 0);
    h.line.connection_ended(h.now, Ended::Lost);
    assert!(
        !logs(&mut h).iter().any(|(_, text)| text.contains("ended:")),
        "a failed attempt is not logged as a connection that ended"
    );
    let Some(Attempt::Wait(until)) = h.line.next_attempt(h.now) else {
        panic!("a back-off after a round of failures")
    };
    h.now = until;
    assert_eq!(attempt(&mut h), "a");

    h.connect();
    logs(&mut h);
    let closing = h.line.closing(false, true).expect("new parameters");
    h.line.transport_closed(closing.reason, 0);
    h.line
        .connection_ended(h.now, Ended::Deliberate(Deliberate::Restart));
    let closed = logs(&mut h);
    assert!(
        closed.iter().any(|(level, text)| *level == LogLevel::Info
            && text.contains("ended: line parameters changed")),
        "{closed:?}"
    );
}

/// Bytes the broker does not take within the reply timeout close the connection; a new
/// connection starts without the old one's deadline.
#[test]
fn a_write_the_broker_does_not_take_closes_after_the_reply_timeout() {
    use std::time::Duration;

    let mut h = Harness::with_params(&[
        ("host", "a"),
        ("reply_timeout", "2"),
        ("ping_interval", "0"),
    ]);
    h.station(1, "s");
    h.line.start(0).unwrap();
    h.connect();
    assert_eq!(
        h.line.poll_timeout(),
        None,
        "an idle connection has no deadline"
    );
    h.line.bytes_pending(h.now);
    let due = h.line.poll_timeout().expect("the write deadline");
    assert_eq!(due, h.now + Duration::from_secs(2));
    h.line
        .handle_timeout(due - Duration::from_millis(1), 0)
        .unwrap();
    let reason = h.line.handle_timeout(due, 0).unwrap_err().to_string();
    assert!(reason.contains("took no data"), "{reason}");

    // Taken in time: nothing is due.
    h.line.transport_closed(&reason, 0);
    h.connect();
    assert_eq!(
        h.line.poll_timeout(),
        None,
        "the old write deadline is gone"
    );
    h.line.bytes_pending(h.now);
    h.line.flushed(0);
    assert_eq!(h.line.poll_timeout(), None);
}

/// Reads under load wait a moment (read_pace.rs), judged by the messages each read brought: the
/// line's count, which the shell's reads feed through `handle_input`.
#[test]
fn a_read_of_several_messages_soon_after_the_last_waits_and_one_message_never_does() {
    use mqtt_line_core::mqtt::{write_packet, Protocol};
    use std::time::Duration;
    let mut h = Harness::new(&[]);
    h.station(1, "t");
    h.line.start(0).unwrap();
    h.connect();
    let t0 = h.now;
    let us = Duration::from_micros;
    // (read at, messages in the read, a new connection before it, when the next read may be)
    let reads: [(Duration, u16, bool, Option<Duration>); 6] = [
        // The connection's first read: nothing to compare with.
        (us(0), 2, false, None),
        // Two more 50 us later: messages are waiting, the next read waits 1 ms.
        (us(50), 2, false, Some(us(1050))),
        // One message after the pause: a broker with a window of one, or a slow source.
        (us(1100), 1, false, None),
        (us(1200), 3, false, Some(us(2200))),
        // Quiet for 5 ms: read at once.
        (us(7200), 2, false, None),
        // 50 us later, but on a new connection: its first read.
        (us(7250), 2, true, None),
    ];
    let mut pkid = 0;
    for (i, (at, messages, fresh, want)) in reads.into_iter().enumerate() {
        if fresh {
            h.line.transport_closed("gone", 0);
            h.connect();
        }
        h.now = t0 + at;
        let mut buf = bytes::BytesMut::new();
        for _ in 0..messages {
            pkid += 1;
            let mut p = Publish::new("t", QoS::AtLeastOnce, b"21.5".to_vec(), None);
            p.pkid = pkid;
            write_packet(&Packet::Publish(p), &mut buf, 1 << 20, Protocol::V311).unwrap();
        }
        let bytes = buf.len();
        h.line.handle_input(&mut buf, h.now, 0).unwrap();
        let got = h.line.read_again_at_on(LinkId::A, h.now, bytes);
        assert_eq!(got, want.map(|w| t0 + w), "read {i} at {at:?}");
    }
}
