//! The host library (`mqtt-line-host`) against a private mosquitto: the routing trace and the
//! counters of ABI 1.2, as sim-host and a Rust kernel use them.

use std::sync::Arc;
use std::time::Instant;

use mqtt_line_abi::*;
use mqtt_line_e2e::{plugin_path, publish, Mosquitto, TIMEOUT};
use mqtt_line_host::event::{route_outcome_name, RawEvent};
use mqtt_line_host::plugin::{Line, LineOptions, Plugin};
use mqtt_line_host::wake::Waker;

/// Polls `line` (woken by the plugin) until `done` holds for the events so far; all of them.
fn wait_events(
    line: &mut Line<'_>,
    waker: &Waker,
    what: &str,
    done: impl Fn(&[RawEvent]) -> bool,
) -> Vec<RawEvent> {
    let deadline = Instant::now() + TIMEOUT;
    let mut events = Vec::new();
    loop {
        while line.poll(&mut events).expect("line_poll_events") {}
        if done(&events) {
            return events;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {what} within {TIMEOUT:?}: {events:#?}");
        waker.wait(left);
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn routing_trace_and_counters_through_the_host_library() {
    let broker = Mosquitto::start();
    let plugin = Plugin::load(&plugin_path()).expect("the plugin loads");
    assert!(plugin.abi_minor >= 2, "ABI {}", plugin.abi_minor);
    let waker = Arc::new(Waker::default());
    let port = broker.port().to_string();
    let params = pairs(&[
        ("host", "127.0.0.1"),
        ("port", &port),
        ("topic_filter", "plant/#"),
    ]);
    let options = LineOptions {
        log_level: MQL_LOG_WARN,
        waker: Some(waker.clone()),
        trace_routing: true,
    };
    let mut line = Line::create_with(&plugin, "traced", &params, options).expect("line_create");
    line.add_station(1, "a", "plant/a", &[]).expect("station a");
    line.add_tag(1, 10, "data", "IN_DATA", MQL_TYPE_TXTI, None)
        .expect("tag");
    line.add_station(2, "off", "plant/off", &[])
        .expect("station off");
    line.station_command(2, MQL_STATION_CMD_OFF).expect("off");
    let before = line.stats().expect("line_stats before start");
    assert_eq!((before.state, before.received), (None, 0));
    line.start().expect("line_start");
    wait_events(&mut line, &waker, "the connection", |ev| {
        ev.iter()
            .any(|e| e.kind == MQL_EVENT_LINE_STATE && e.code == MQL_LINE_CONNECTED)
    });

    let sent = [("plant/a", "1"), ("plant/zzz", "22"), ("plant/off", "333")];
    for (topic, payload) in sent {
        publish(broker.port(), topic, payload.as_bytes(), 1, false);
    }
    let events = wait_events(&mut line, &waker, "three route events", |ev| {
        ev.iter().filter_map(RawEvent::route).count() == sent.len()
    });
    let mut routes: Vec<(String, String, String, Option<u64>)> = events
        .iter()
        .filter_map(RawEvent::route)
        .map(|r| {
            (
                r.topic,
                r.payload,
                route_outcome_name(r.outcome),
                r.station_id,
            )
        })
        .collect();
    routes.sort();
    assert_eq!(
        routes,
        [
            ("plant/a".into(), "1".into(), "taken".into(), Some(1)),
            (
                "plant/off".into(),
                "333".into(),
                "station_off".into(),
                Some(2)
            ),
            ("plant/zzz".into(), "22".into(), "unrouted".into(), None),
        ]
    );

    let stats = line.stats().expect("line_stats");
    assert_eq!(stats.state, Some(MQL_LINE_CONNECTED));
    assert_eq!(
        (
            stats.received,
            stats.bytes_received,
            stats.unrouted,
            stats.dropped_off
        ),
        (3, 6, 1, 1)
    );
    assert!(stats.last_message_ns.is_some() && stats.connection_attempts >= 1);
    let a = line.station_stats(1).expect("station a");
    assert_eq!(
        (a.state, a.received, a.dropped),
        (Some(MQL_STATION_OK), 1, 0)
    );
    let off = line.station_stats(2).expect("station off");
    assert_eq!(
        (off.state, off.received, off.dropped),
        (Some(MQL_STATION_OFF), 1, 1)
    );
    let unknown = line.station_stats(99).expect_err("no station 99");
    assert_eq!(unknown.status, MQL_ERR_UNKNOWN_ID, "{unknown}");
}
