//! The line's foundation end to end: connecting, subscribing, receiving and routing messages,
//! reconnecting, writing, switching stations, and refusing bad configurations.
//!
//! Every test has its own mosquitto on its own loopback port and its own sim-host.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpListener};

use mqtt_line_e2e::{
    assert_refused, check_config, ev, free_port, publish, subscribe_one, LineConfig, Mosquitto,
    SimHost, StationConfig,
};
use serde_json::{json, Value};

/// sim-host for `config`, with the broker's log in its failure messages.
/// A station with the three input tags `topic`, `data`, `id`.
fn inputs(name: &str, address: &str) -> StationConfig {
    StationConfig::new(name, address).inputs()
}

// ---------------------------------------------------------------------------------------------
// Connecting and subscribing
// ---------------------------------------------------------------------------------------------

#[test]
fn connect_uses_default_client_id_and_persistent_session() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "status/#")
        .station(inputs("battery", "status/battery"));
    let mut host = SimHost::start_on(&broker, &config);
    let connected = host.wait_connected();
    assert_eq!(
        ev::field(&connected, "host"),
        format!("127.0.0.1:{}", broker.port()),
        "{connected}"
    );
    // mosquitto logs CONNECT as "as CLIENT_ID (pPROTOCOL, cCLEAN, kKEEPALIVE)": p2 is MQTT 3.1.1.
    broker.wait_log(
        "CONNECT from D2000kom, MQTT 3.1.1, clean session off",
        |log| log.contains(" as D2000kom (p2, c0, k0)"),
    );
    // Subscription at the default QoS_1.
    broker.wait_log("SUBSCRIBE status/# at QoS 1", |log| {
        log.contains("\tstatus/# (QoS 1)")
    });
    host.quit_ok();
}

#[test]
fn connect_applies_client_id_clean_session_keep_alive_and_subscribe_qos() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "e2e-line-7")
        .param("clean_session", "YES")
        .param_raw("keep_alive", "30")
        // The integer spelling of a QoS.
        .param_raw("subscribe_qos", "2")
        .param("topic_filter", "a/+/c")
        .station(inputs("abc", "a/b/c"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    broker.wait_log(
        "CONNECT from e2e-line-7, clean session on, keep alive 30",
        |log| log.contains(" as e2e-line-7 (p2, c1, k30)"),
    );
    broker.wait_log("SUBSCRIBE a/+/c at QoS 2", |log| {
        log.contains("\ta/+/c (QoS 2)")
    });
    publish(broker.port(), "a/b/c", b"x", 2, false);
    host.expect_value_eq("abc", "data", "x");
    host.quit_ok();
}

#[test]
fn station_state_is_comm_error_until_connected_then_ok() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port()).station(inputs("battery", "status/battery"));
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_station("battery", "ok");
    let events = host.events().to_vec();
    let connected = events.iter().position(ev::is_connected);
    let first = events
        .iter()
        .position(|e| ev::is_station_event(e, "battery"));
    let ok = events
        .iter()
        .position(|e| ev::is_station(e, "battery", "ok"));
    let report = host.report();
    let (Some(connected), Some(first), Some(ok)) = (connected, first, ok) else {
        panic!("missing events\n{report}");
    };
    assert!(
        ev::is_station(&events[first], "battery", "comm_error"),
        "the first station event must be comm_error\n{report}"
    );
    assert!(
        first < connected && connected < ok,
        "expected comm_error, then connected, then ok\n{report}"
    );
    let before = events[..connected]
        .iter()
        .filter(|e| ev::is_station_event(e, "battery"))
        .count();
    assert_eq!(before, 1, "the start state is reported once\n{report}");
    host.quit_ok();
}

#[test]
fn refused_subscription_is_reported_as_disconnected() {
    let broker = Mosquitto::builder().deny_subscribe("denied/#").start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "denied/#")
        .station(inputs("d", "denied/x"));
    let mut host = SimHost::start_on(&broker, &config);
    let e = host.expect(
        "a `disconnected` event whose reason names the refused subscription 'denied/#'",
        |e| {
            let reason = ev::field(e, "reason");
            ev::is_disconnected(e)
                && reason.contains("denied/#")
                && reason.to_lowercase().contains("subscri")
        },
    );
    let report = host.report();
    assert!(
        host.events_where(ev::is_disconnected)
            .first()
            .is_some_and(|first| first == &e),
        "the refusal must be the first `disconnected` event: {e}\n{report}"
    );
    assert!(
        !host.events().iter().any(ev::is_connected),
        "a line whose subscription was refused must not report `connected`\n{report}"
    );
    assert!(
        !host.events().iter().any(|e| ev::is_station(e, "d", "ok")),
        "the station must not turn ok\n{report}"
    );
    // The broker did send the SUBACK (with 0x80).
    broker.wait_log("a SUBACK", |log| log.contains("Sending SUBACK"));
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------------------------

#[test]
fn qos_0_1_2_messages_fill_topic_data_id_in_that_order() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("subscribe_qos", "QoS_2")
        .station(inputs("plant", "plant/qos"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for qos in [0u8, 1, 2] {
        let payload = format!("payload at QoS {qos}");
        publish(broker.port(), "plant/qos", payload.as_bytes(), qos, false);
        host.expect_value_eq("plant", "data", payload.as_str());
        let id_event = host.expect_value("plant", "id");
        let events = host.events().to_vec();
        let data_at = events
            .iter()
            .position(|e| ev::is_value_of(e, "plant", "data", &json!(payload)))
            .unwrap();
        let report = host.report();
        assert!(data_at >= 1 && data_at + 1 < events.len(), "{report}");
        assert!(
            ev::is_value_of(&events[data_at - 1], "plant", "topic", &json!("plant/qos")),
            "IN_TOPIC must be set right before IN_DATA\n{report}"
        );
        assert!(
            ev::is_value(&events[data_at + 1], "plant", "id"),
            "IN_ID must be set right after IN_DATA\n{report}"
        );
        assert_eq!(id_event, events[data_at + 1]);
        assert_eq!(id_event["valid"], json!(true), "{report}");
        let id = id_event["value"]
            .as_i64()
            .unwrap_or_else(|| panic!("IN_ID (Ci) must be an integer: {id_event}\n{report}"));
        if qos == 0 {
            assert_eq!(id, 0, "IN_ID of a QoS 0 message\n{report}");
        } else {
            assert!(
                (1..=65535).contains(&id),
                "IN_ID of a QoS {qos} message must be its packet id (1..65535), got {id}\n{report}"
            );
        }
    }
    host.quit_ok();
}

#[test]
fn non_utf8_payload_reaches_in_data_with_replacement_characters() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port()).station(inputs("raw", "raw/bytes"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "raw/bytes", b"ok \xff\xfe end", 1, false);
    host.expect_value_eq("raw", "data", "ok \u{FFFD}\u{FFFD} end");
    host.quit_ok();
}

#[test]
fn value_events_flag_retained_messages() {
    let broker = Mosquitto::start();
    publish(broker.port(), "status/kept", b"old", 1, true);
    let config = LineConfig::new(broker.port()).station(inputs("kept", "status/kept"));
    let mut host = SimHost::start_on(&broker, &config);
    let old = host.expect_value_eq("kept", "data", "old");
    host.wait_connected();
    let report = host.report();
    assert_eq!(old.get("retained"), Some(&json!(true)), "{old}\n{report}");
    publish(broker.port(), "status/kept", b"new", 1, false);
    let new = host.expect_value_eq("kept", "data", "new");
    let report = host.report();
    assert_ne!(new.get("retained"), Some(&json!(true)), "{new}\n{report}");
    host.quit_ok();
}

/// Each topic of the table is published once; IN_TOPIC values tell which station got it.
#[test]
fn routing_follows_the_station_address_priority() {
    let stations = [
        ("battery", "status/battery"),
        ("batt", "status/batt.*"),
        ("b", "status/b.*"),
        // Exact match wins even over an expression that sorts above it ('[' > 'B').
        ("cap", "status/Battery"),
        ("upper", "status/[A-Z].*"),
        ("sensors", "sensors/[a-z]+"),
        // Sorts below ".*" ('(' < '.'), yet ".*" must still come last.
        ("paren", "(status|sensors)/temp"),
        ("rest", ".*"),
    ];
    let table = [
        ("status/battery", "battery"),
        ("status/battery2", "batt"),
        ("status/batt", "batt"),
        ("status/battery/cell/1", "batt"),
        ("status/bus", "b"),
        ("status/b", "b"),
        ("status/Battery", "cap"),
        ("status/Bus", "upper"),
        ("sensors/abc", "sensors"),
        ("sensors/temp", "sensors"),
        ("status/temp", "paren"),
        // Expressions must match the whole topic.
        ("sensors/abc1", "rest"),
        ("sensors/ABC", "rest"),
        ("xstatus/battery", "rest"),
        ("status", "rest"),
        ("other/topic", "rest"),
    ];
    let broker = Mosquitto::start();
    let mut config = LineConfig::new(broker.port()).param("topic_filter", "#");
    for (name, address) in stations {
        config = config.station(inputs(name, address));
    }
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for (topic, _) in table {
        publish(
            broker.port(),
            topic,
            format!("for {topic}").as_bytes(),
            1,
            false,
        );
    }
    let mut got = BTreeMap::new();
    for (topic, _) in table {
        let e = host.expect(&format!("IN_TOPIC = {topic:?} at any station"), |e| {
            ev::is_any_value_of(e, "topic", &json!(topic))
        });
        got.insert(topic, ev::field(&e, "station").to_string());
    }
    host.quit_ok();
    let wrong: Vec<String> = table
        .iter()
        .filter(|(topic, want)| got.get(topic).map(String::as_str) != Some(*want))
        .map(|(topic, want)| format!("  {topic:<24} expected {want:<8} got {:?}", got.get(topic)))
        .collect();
    let report = host.report();
    assert!(
        wrong.is_empty(),
        "misrouted:\n{}\n{report}",
        wrong.join("\n")
    );
    // Each message reached one station only, with its payload.
    for (topic, station) in table {
        let topics = host.events_where(|e| ev::is_any_value_of(e, "topic", &json!(topic)));
        assert_eq!(
            topics.len(),
            1,
            "{topic} delivered {} times\n{report}",
            topics.len()
        );
        let payload = json!(format!("for {topic}"));
        let data = host.events_where(|e| ev::is_any_value_of(e, "data", &payload));
        assert_eq!(data.len(), 1, "{report}");
        assert_eq!(ev::field(&data[0], "station"), station, "{report}");
    }
}

#[test]
fn hash_station_takes_every_message_even_an_exact_match() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .station(inputs("battery", "status/battery"))
        .station(inputs("all", "#"))
        .station(inputs("rest", ".*"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "status/battery", b"1", 1, false);
    publish(broker.port(), "other/x", b"2", 1, false);
    host.expect_value_eq("all", "topic", "status/battery");
    host.expect_value_eq("all", "topic", "other/x");
    host.quit_ok();
    let report = host.report();
    let elsewhere =
        host.events_where(|e| ev::kind(e) == "value" && ev::field(e, "station") != "all");
    assert!(
        elsewhere.is_empty(),
        "values outside the # station\n{report}"
    );
}

#[test]
fn messages_matching_no_station_are_dropped() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .station(inputs("battery", "status/battery"))
        .station(inputs("letters", "status/b[a-z]+"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "nobody/listens", b"lost", 1, false);
    publish(broker.port(), "status/b1", b"lost too", 1, false);
    // Messages arrive in order: once the last one is seen, the others were handled.
    publish(broker.port(), "status/battery", b"marker", 1, false);
    host.expect_value_eq("battery", "data", "marker");
    host.quit_ok();
    let report = host.report();
    let values = host.events_where(|e| ev::kind(e) == "value");
    assert_eq!(
        values.len(),
        3,
        "only the marker's topic, data and id were expected\n{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// Connection loss, reconnection, failover
// ---------------------------------------------------------------------------------------------

#[test]
fn reconnects_after_the_broker_is_killed_and_restarted() {
    let mut broker = Mosquitto::start();
    let config = LineConfig::new(broker.port()).station(inputs("battery", "status/battery"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "status/battery", b"before", 1, false);
    host.expect_value_eq("battery", "data", "before");

    broker.kill();
    host.expect_disconnected();
    host.expect_station("battery", "comm_error");

    broker.restart();
    let again = host.wait_connected();
    assert_eq!(
        ev::field(&again, "host"),
        format!("127.0.0.1:{}", broker.port())
    );
    host.expect_station("battery", "ok");
    publish(broker.port(), "status/battery", b"after", 1, false);
    host.expect_value_eq("battery", "data", "after");
    host.quit_ok();
}

#[test]
fn inputs_are_invalidated_when_the_connection_is_lost() {
    let mut broker = Mosquitto::start();
    let config = LineConfig::new(broker.port()).station(inputs("battery", "status/battery"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "status/battery", b"42", 1, false);
    host.expect_value_eq("battery", "data", "42");
    broker.kill();
    host.expect_station("battery", "comm_error");
    let invalid = host.expect("battery.data invalidated (valid false, value null)", |e| {
        ev::is_value(e, "battery", "data") && e["valid"] == json!(false)
    });
    assert_eq!(invalid["value"], Value::Null, "{invalid}");
    host.quit_ok();
}

/// Waits for the line's `connected` event and asserts it names `broker`; returns the report.
fn expect_connected_to(host: &mut SimHost, broker: &Mosquitto) -> String {
    let connected = host.wait_connected();
    let report = host.report();
    assert_eq!(
        ev::field(&connected, "host"),
        format!("127.0.0.1:{}", broker.port()),
        "{report}"
    );
    report
}

#[test]
fn fails_over_to_the_next_host_in_the_list() {
    let broker = Mosquitto::start();
    // 127.0.0.2 is loopback too, but the broker listens on 127.0.0.1 only: refused.
    let config = LineConfig::new(broker.port())
        .host("127.0.0.2,127.0.0.1")
        .station(inputs("battery", "status/battery"));
    let mut host = SimHost::start_on(&broker, &config);
    let report = expect_connected_to(&mut host, &broker);
    let first_disconnected = host.position(ev::is_disconnected);
    let first_connected = host.position(ev::is_connected);
    assert!(
        matches!((first_disconnected, first_connected), (Some(d), Some(c)) if d < c),
        "the failed attempt on 127.0.0.2 must be reported as `disconnected` first\n{report}"
    );
    publish(broker.port(), "status/battery", b"via failover", 1, false);
    host.expect_value_eq("battery", "data", "via failover");
    host.quit_ok();
}

#[test]
fn each_host_entry_is_tried_at_its_own_port() {
    let broker = Mosquitto::start();
    // Nothing listens on the line's `port` nor on the first entry's: only the second entry's own
    // port reaches the broker.
    let (nobody, nobody_either) = (free_port(), free_port());
    let config = LineConfig::new(nobody)
        .host(&format!(
            "127.0.0.1:{nobody_either}; 127.0.0.1:{}",
            broker.port()
        ))
        .station(inputs("battery", "status/battery"));
    let mut host = SimHost::start_on(&broker, &config);
    expect_connected_to(&mut host, &broker);
    publish(broker.port(), "status/battery", b"at its port", 1, false);
    host.expect_value_eq("battery", "data", "at its port");
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

#[test]
fn writes_set_out_topic_and_publish_out_value() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "cmd/in")
        .station(
            StationConfig::new("cmd", "cmd/in")
                .tag("out_topic", "OUT_TOPIC", "TxtO")
                .tag("out_value", "OUT_VALUE", "TxtO")
                .tag("topic", "IN_TOPIC", "TxtI"),
        );
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();

    host.send("write cmd out_topic cmd/battery/set");
    let w = host.expect_write("cmd", "out_topic");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{report}");

    let sub = subscribe_one(broker.port(), "cmd/battery/set");
    host.send("write cmd out_value 42");
    let w = host.expect_write("cmd", "out_value");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{report}");
    let got = sub.wait();
    assert_eq!(got.payload, b"42", "{got:?}\n{report}");
    // Default Publish QoS_0, Publish Retain NO.
    assert_eq!((got.qos, got.retain), (0, false), "{got:?}");

    host.send("write cmd topic not-allowed");
    let w = host.expect_write("cmd", "topic");
    let report = host.report();
    assert_eq!(
        ev::write_ok(&w),
        Some(false),
        "writing an input tag: {w}\n{report}"
    );
    assert!(!ev::field(&w, "error").is_empty(), "{w}\n{report}");

    host.send("write cmd no_such_tag 1");
    let w = host.expect_write("cmd", "no_such_tag");
    let report = host.report();
    assert_eq!(
        ev::write_ok(&w),
        Some(false),
        "writing an unknown tag: {w}\n{report}"
    );
    assert!(!ev::field(&w, "error").is_empty(), "{w}\n{report}");

    host.quit_ok();
    // Exactly one write event per write command.
    let report = host.report();
    let writes: Vec<String> = host
        .events_where(|e| ev::kind(e) == "write")
        .iter()
        .map(|e| ev::field(e, "tag").to_string())
        .collect();
    assert_eq!(
        writes,
        ["out_topic", "out_value", "topic", "no_such_tag"],
        "{report}"
    );
}

#[test]
fn out_value_uses_the_default_out_topic_and_publish_qos_and_retain() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "cmd/in")
        .param("publish_qos", "QoS_1")
        .param("publish_retain", "YES")
        .station(
            StationConfig::new("cmd", "cmd/in")
                .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "cmd/default")
                .tag("out_value", "OUT_VALUE", "TxtO"),
        );
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    host.send("write cmd out_value on");
    let w = host.expect_write("cmd", "out_value");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{report}");
    // Retained: a subscriber that comes later still gets it.
    let got = subscribe_one(broker.port(), "cmd/default").wait();
    assert_eq!(got.payload, b"on", "{got:?}\n{report}");
    assert_eq!((got.qos, got.retain), (1, true), "{got:?}\n{report}");
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Station commands
// ---------------------------------------------------------------------------------------------

#[test]
fn station_off_drops_its_messages_and_on_resumes_them() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .station(inputs("battery", "status/battery"))
        .station(inputs("marker", "marker"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    host.expect_station("battery", "ok");

    host.send("station battery off");
    host.expect_station("battery", "off");
    publish(broker.port(), "status/battery", b"while off", 1, false);
    publish(broker.port(), "marker", b"m1", 1, false);
    host.expect_value_eq("marker", "data", "m1");
    let report = host.report();
    let leaked = host.events_where(|e| ev::is_any_value_of(e, "data", &json!("while off")));
    assert!(
        leaked.is_empty(),
        "a station that is off got a value\n{report}"
    );

    host.send("station battery on");
    host.expect_station("battery", "ok");
    publish(broker.port(), "status/battery", b"back on", 1, false);
    host.expect_value_eq("battery", "data", "back on");
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------

/// A port on 127.0.0.1 where nothing listens (the test keeps no socket on it).
fn dead_port() -> u16 {
    free_port()
}

#[test]
fn unknown_parameter_is_refused_with_its_name_and_a_suggestion() {
    let config = format!(
        "[line]\nhost = \"127.0.0.1\"\nport = {}\n[line.parameters]\ntopic_filtr = \"#\"\n\
         [[station]]\nname = \"battery\"\naddress = \"status/battery\"\n",
        dead_port()
    );
    assert_refused(&config, &["topic_filtr", "topic_filter"]);
}

#[test]
fn invalid_qos_is_refused_with_parameter_and_value() {
    let config = LineConfig::new(dead_port())
        .param("subscribe_qos", "QoS_3")
        .station(inputs("battery", "status/battery"))
        .to_toml();
    assert_refused(&config, &["subscribe_qos", "QoS_3"]);
    let config = LineConfig::new(dead_port())
        .param_raw("publish_qos", "7")
        .station(inputs("battery", "status/battery"))
        .to_toml();
    assert_refused(&config, &["publish_qos", "7"]);
}

#[test]
fn duplicate_station_address_is_refused() {
    let config = LineConfig::new(dead_port())
        .station(inputs("one", "plant/a"))
        .station(inputs("two", "plant/a"))
        .to_toml();
    assert_refused(&config, &["plant/a", "two"]);
}

#[test]
fn check_accepts_a_good_file_without_connecting() {
    // A listener the test owns: any connection attempt would be queued on it.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, free_port())).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = LineConfig::new(port)
        .param("topic_filter", "status/#")
        .param("subscribe_qos", "QoS_1")
        .station(inputs("battery", "status/battery"))
        .station(
            StationConfig::new("cmd", "cmd/in")
                .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "cmd/battery")
                .tag("out_value", "OUT_VALUE", "TxtO"),
        )
        .to_toml();
    let done = check_config(&config);
    assert_eq!(done.code, Some(0), "{done}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("`check` connected to the broker port (from {peer})\n{done}"),
        Err(e) => panic!("accept: {e}"),
    }
}
