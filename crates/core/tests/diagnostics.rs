//! Issue 11 in the core: STALE on virtual time, the counters and the routing trace.

mod common;

use std::time::Duration;

use common::*;
use mqtt_line_core::mqtt::QoS;
use mqtt_line_core::{
    Event, LineState, RouteOutcome, StationCommand, StationId, StationState, StationStats, TagId,
    Value, ValueType, FLAG_VALID, ROUTE_PAYLOAD_MAX,
};

/// A started line without pings or reply timeouts (their deadlines would mix with STALE's), with
/// station `id` on topic `s{id}` holding IN_DATA (tag `id * 10`) and the given STALE ("" = none).
fn line_with(stations: &[(u64, &str)]) -> Harness {
    let mut h = Harness::new(&[("ping_interval", "0"), ("reply_timeout", "0")]);
    for &(id, stale) in stations {
        let params: Vec<(&str, &str)> = if stale.is_empty() {
            vec![]
        } else {
            vec![("STALE", stale)]
        };
        h.line
            .add_station(StationId(id), &format!("s{id}"), &format!("s{id}"), params)
            .unwrap();
        h.line
            .add_tag(
                StationId(id),
                TagId(id * 10),
                "data",
                "IN_DATA",
                ValueType::TxtI,
                None,
            )
            .unwrap();
    }
    h.line.start(0).unwrap();
    h
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Virtual time moves to this many seconds after the start; due timers fire.
    At(f64),
    /// Station `id` receives a message.
    Msg(u64),
    /// The connection is lost.
    Lost,
    /// The connection is ready again.
    Connect,
    Switch(u64, StationCommand),
    /// Reading was paused (the host's queue was full) for this many seconds.
    Paused(f64),
}

use StationCommand::{Off, On};
use StationState::{CommError, Ok as Good};
use Step::*;

type Case = (
    &'static str,
    &'static [(u64, &'static str)],
    &'static [(Step, &'static [(u64, StationState)])],
);

const STALE_CASES: &[Case] = &[
    (
        "a silent station goes stale at its STALE, not before, and a message brings it back",
        &[(1, "5")],
        &[
            (At(4.999), &[]),
            (At(5.0), &[(1, CommError)]),
            (At(60.0), &[]),
            (Msg(1), &[(1, Good)]),
            (At(64.9), &[]),
            (At(65.0), &[(1, CommError)]),
        ],
    ),
    (
        "each message restarts the station's clock",
        &[(1, "5")],
        &[
            (At(3.0), &[]),
            (Msg(1), &[]),
            (At(7.9), &[]),
            (At(8.0), &[(1, CommError)]),
        ],
    ),
    (
        "fractions of a second",
        &[(1, "0.25")],
        &[(At(0.2), &[]), (At(0.25), &[(1, CommError)])],
    ),
    (
        "only the silent station goes stale; a station without STALE never does",
        &[(1, "5"), (2, "5"), (3, "")],
        &[
            (At(4.0), &[]),
            (Msg(2), &[]),
            (At(5.0), &[(1, CommError)]),
            (At(9.0), &[(2, CommError)]),
            (At(1000.0), &[]),
        ],
    ),
    (
        "no STALE while disconnected; the clock restarts when the line is ready again",
        &[(1, "5")],
        &[
            (At(4.0), &[]),
            (Lost, &[(1, CommError)]),
            (At(20.0), &[]),
            (Connect, &[(1, Good)]),
            (At(24.9), &[]),
            (At(25.0), &[(1, CommError)]),
        ],
    ),
    (
        "a station that is off is never stale; switched on, its clock starts",
        &[(1, "5")],
        &[
            (Switch(1, Off), &[(1, StationState::Off)]),
            (At(10.0), &[]),
            (Switch(1, On), &[(1, Good)]),
            (At(14.9), &[]),
            (At(15.0), &[(1, CommError)]),
        ],
    ),
    (
        "a stale station switched off and on again starts over as ok",
        &[(1, "5")],
        &[
            (At(5.0), &[(1, CommError)]),
            (Switch(1, Off), &[(1, StationState::Off)]),
            (Switch(1, On), &[(1, Good)]),
            (At(9.9), &[]),
            (At(10.0), &[(1, CommError)]),
        ],
    ),
    (
        "time the line did not read (the host's queue was full) does not count",
        &[(1, "5")],
        &[
            (At(4.0), &[]),
            (Paused(3.0), &[]),
            (At(7.9), &[]),
            (At(8.0), &[(1, CommError)]),
        ],
    ),
];

#[test]
fn stale_rules_on_virtual_time() {
    for &(name, stations, steps) in STALE_CASES {
        let mut h = line_with(stations);
        h.connect();
        h.events();
        let t0 = h.now;
        for (k, &(step, expected)) in steps.iter().enumerate() {
            let mut events = Vec::new();
            match step {
                At(secs) => {
                    h.now = t0 + Duration::from_secs_f64(secs);
                    h.line.handle_timeout(h.now, 0).unwrap();
                }
                Msg(id) => events = h.receive(&format!("s{id}"), b"x", QoS::AtMostOnce, 0),
                Lost => h.line.transport_closed("broker gone", 0),
                Connect => h.connect(),
                Switch(id, cmd) => h
                    .line
                    .station_command(StationId(id), cmd, h.now, 0)
                    .unwrap(),
                Paused(secs) => h.line.postpone(Duration::from_secs_f64(secs)),
            }
            events.extend(h.events());
            assert_eq!(states(&events), expected, "{name}: step {k} ({step:?})");
        }
    }
}

#[test]
fn a_stale_station_says_why_invalidates_its_inputs_and_comes_back_with_the_new_value() {
    let mut h = line_with(&[(1, "2.5")]);
    h.connect();
    h.events();
    let t0 = h.now;
    assert_eq!(
        h.line.poll_timeout(),
        Some(t0 + Duration::from_millis(2500))
    );
    h.receive("s1", b"first", QoS::AtMostOnce, 0);
    h.now = t0 + Duration::from_secs(1);
    h.line.handle_timeout(h.now, 0).unwrap();
    // The early entry was moved to the station's real deadline.
    assert_eq!(
        h.line.poll_timeout(),
        Some(t0 + Duration::from_millis(2500))
    );
    h.now = t0 + Duration::from_millis(2500);
    h.line.handle_timeout(h.now, 77).unwrap();
    let ev = h.events();
    assert_eq!(
        ev,
        [
            Event::StationState {
                station: StationId(1),
                state: CommError,
                reason: "no message for 2.5 s (STALE)".into(),
                time_ns: 77,
            },
            Event::TagValue {
                station: StationId(1),
                tag: TagId(10),
                value: None,
                time_ns: 77,
                flags: 0,
            },
        ]
    );
    // Nothing is due while the station waits for a message.
    assert_eq!(h.line.poll_timeout(), None);
    let ev = h.receive("s1", b"second", QoS::AtMostOnce, 0);
    assert!(
        matches!(&ev[0], Event::StationState { state: Good, reason, .. } if reason == "data received"),
        "{ev:?}"
    );
    assert_eq!(
        values(&ev),
        [(10, Some(Value::Text("second".into())), FLAG_VALID)]
    );
}

#[test]
fn ten_thousand_stations_share_one_deadline() {
    let stations: Vec<(u64, &str)> = (1..=10_000).map(|id| (id, "5")).collect();
    let mut h = line_with(&stations);
    h.connect();
    h.events();
    let t0 = h.now;
    // Every even station hears something at 3 s; only the odd ones go stale at 5 s.
    h.now = t0 + Duration::from_secs(3);
    for id in (2..=10_000).step_by(2) {
        h.receive(&format!("s{id}"), b"x", QoS::AtMostOnce, 0);
    }
    h.events();
    assert_eq!(h.line.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    h.now = t0 + Duration::from_secs(5);
    h.line.handle_timeout(h.now, 0).unwrap();
    let stale = states(&h.events());
    assert_eq!(stale.len(), 5_000);
    assert!(stale.iter().all(|&(id, s)| id % 2 == 1 && s == CommError));
    assert_eq!(h.line.poll_timeout(), Some(t0 + Duration::from_secs(8)));
}

/// Stations for the counters: 1 `a` (on), 2 `b` (switched off), 3 `c` (simulated), 4 `j` with a
/// JA= tag, and station 1's will topic `a/lwt`.
fn counted() -> Harness {
    let mut h = Harness::new(&[]);
    h.line
        .add_station(StationId(1), "a", "a", [("SWT", "a/lwt")])
        .unwrap();
    for (id, address) in [(2, "b"), (3, "c")] {
        h.line
            .add_station(StationId(id), address, address, [])
            .unwrap();
    }
    h.line
        .add_station(StationId(4), "j", "j", [("payload_type", "JSON")])
        .unwrap();
    h.line
        .add_tag(StationId(4), TagId(40), "v", "JA=v", ValueType::Ai, None)
        .unwrap();
    h.line.station_command(StationId(2), Off, h.now, 0).unwrap();
    h.line
        .station_command(StationId(3), StationCommand::Simulate, h.now, 0)
        .unwrap();
    h
}

#[test]
fn counters_count_each_message_once_by_what_became_of_it() {
    let mut h = counted();
    let before = h.line.stats();
    assert_eq!(
        (before.state, before.received, before.connection_attempts),
        (None, 0, 0)
    );
    assert_eq!(
        h.line.station_stats(StationId(1)).unwrap(),
        StationStats::default()
    );
    h.line.start(0).unwrap();
    assert!(h.line.next_attempt(h.now).is_some());
    h.connect();
    // (topic, payload, what the line and the station counters show after it)
    for (topic, payload) in [
        ("a", &b"1"[..]),
        ("a", b"22"),
        ("zzz", b"333"),
        ("b", b"4444"),
        ("c", b"5"),
        ("a/lwt", b"gone"),
        ("j", br#"{"v": 1}"#),
        ("j", b"not json"),
    ] {
        h.now += Duration::from_millis(10);
        h.line
            .handle_packet(
                mqtt_line_core::mqtt::Packet::Publish(mqtt_line_core::mqtt::Publish::new(
                    topic,
                    QoS::AtMostOnce,
                    payload.to_vec(),
                    None,
                )),
                h.now,
                1000 + h.line.stats().received as i64,
            )
            .unwrap();
    }
    let s = h.line.stats();
    assert_eq!(s.state, Some(LineState::Connected));
    assert_eq!(s.received, 8);
    assert_eq!(s.bytes_received, 1 + 2 + 3 + 4 + 1 + 4 + 8 + 8);
    assert_eq!((s.unrouted, s.dropped_off, s.dropped_simulated), (1, 1, 1));
    assert_eq!((s.payload_errors, s.will_messages, s.held), (1, 1, 0));
    assert_eq!((s.connection_attempts, s.reconnects), (1, 0));
    assert_eq!(s.last_message_ns, Some(1007));
    let station = |h: &Harness, id| h.line.station_stats(StationId(id)).unwrap();
    let a = station(&h, 1);
    assert_eq!(
        (a.state, a.received, a.dropped, a.last_message_ns),
        (Some(StationState::HardError), 2, 0, Some(1001))
    );
    let b = station(&h, 2);
    assert_eq!(
        (b.state, b.received, b.dropped),
        (Some(StationState::Off), 1, 1)
    );
    let c = station(&h, 3);
    assert_eq!((c.received, c.dropped), (1, 1));
    assert_eq!(station(&h, 4).received, 2);
    assert!(h.line.station_stats(StationId(99)).is_err());

    // A reconnect is counted when a connection is ready again after one was.
    h.line.transport_closed("gone", 0);
    assert_eq!(h.line.stats().state, Some(LineState::Disconnected));
    h.connect();
    let s = h.line.stats();
    assert_eq!((s.state, s.reconnects), (Some(LineState::Connected), 1));
}

#[test]
fn writes_are_counted_by_outcome() {
    let mut h = Harness::writer(&[], Some("out/t"));
    // OUT_TOPIC: done at once for a topic, failed for one with a wildcard.
    h.line
        .write(TagId(1), 1, Value::Text("out/u".into()), h.now, 0)
        .unwrap();
    h.line
        .write(TagId(1), 2, Value::Text("bad/#".into()), h.now, 0)
        .unwrap();
    let s = h.line.stats();
    assert_eq!((s.writes_ok, s.writes_failed), (1, 1));
}

#[test]
fn ack_id_gates_count_what_they_hold() {
    let mut h = Harness::new(&[]);
    h.station(1, "t");
    h.ack_id(1);
    h.line.start(0).unwrap();
    h.connect();
    for pkid in 1..=3 {
        h.receive("t", b"m", QoS::AtLeastOnce, pkid);
    }
    // One shown, two held behind it.
    assert_eq!(h.line.stats().held, 2);
    let st = h.line.station_stats(StationId(1)).unwrap();
    assert_eq!((st.received, st.held), (3, 2));
}

#[test]
fn the_routing_trace_says_where_each_message_went_only_when_on() {
    let mut h = counted();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    let routes = |ev: &[Event]| -> Vec<(String, String, RouteOutcome, Option<u64>)> {
        ev.iter()
            .filter_map(|e| match e {
                Event::Route {
                    topic,
                    payload,
                    outcome,
                    station,
                    ..
                } => Some((
                    topic.clone(),
                    payload.clone(),
                    *outcome,
                    station.map(|s| s.0),
                )),
                _ => None,
            })
            .collect()
    };
    assert_eq!(routes(&h.receive("a", b"1", QoS::AtMostOnce, 0)), []);
    h.line.set_trace_routing(true);
    let cases: [(&str, &[u8], RouteOutcome, Option<u64>); 5] = [
        ("a", b"1", RouteOutcome::Taken, Some(1)),
        ("zzz", b"2", RouteOutcome::Unrouted, None),
        ("b", b"3", RouteOutcome::StationOff, Some(2)),
        ("c", b"4", RouteOutcome::Simulated, Some(3)),
        ("a/lwt", b"\xffgone", RouteOutcome::Will, Some(1)),
    ];
    for (topic, payload, outcome, station) in cases {
        let ev = h.receive(topic, payload, QoS::AtMostOnce, 0);
        let text = String::from_utf8_lossy(payload).into_owned();
        assert_eq!(
            routes(&ev),
            [(topic.to_string(), text, outcome, station)],
            "{topic}"
        );
        // The trace comes before what the message did.
        assert!(matches!(ev[0], Event::Route { .. }), "{ev:?}");
    }
    // Long payloads are cut on a character boundary.
    let long = "é".repeat(ROUTE_PAYLOAD_MAX);
    let ev = h.receive("a", long.as_bytes(), QoS::AtMostOnce, 0);
    let (_, payload, ..) = &routes(&ev)[0];
    assert_eq!(payload.len(), ROUTE_PAYLOAD_MAX);
    assert!(long.starts_with(payload.as_str()));
}

#[test]
fn stale_starts_when_ready_not_when_started() {
    let mut h = line_with(&[(1, "1")]);
    assert_eq!(h.line.poll_timeout(), None);
    h.now += Duration::from_secs(30);
    let t_ready = h.now;
    h.connect();
    assert_eq!(
        h.line.poll_timeout(),
        Some(t_ready + Duration::from_secs(1))
    );
}
