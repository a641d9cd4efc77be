//! The whole line protocol end to end (issue 3): ACK_ID gating, incoming QoS 2, last will,
//! keep-alive and ping interval, connection loss, reply timeouts (frozen broker, fake broker),
//! redundant hosts, parameter changes at run time, forced disconnection and Full Debug.
//! Writes (OUT_TOPIC / OUT_VALUE) are in `protocol_writes.rs`.
//!
//! Every test has its own mosquitto on its own loopback port; faults are real: brokers killed,
//! stopped and restarted, frozen with SIGSTOP, a fake broker that never answers.

use std::time::Duration;

use mqtt_line_e2e::fake_broker::{FakeBroker, PacketType, Script};
use mqtt_line_e2e::{
    ev, publish, publish_at, subscribe_one, LineConfig, Mosquitto, SimHost, StationConfig,
};
use serde_json::{json, Value};

/// A station with `topic`, `data`, `id` inputs and an ACK_ID tag `ack` (Co): the host confirms
/// each message.
fn gated(name: &str, address: &str) -> StationConfig {
    StationConfig::new(name, address).inputs().ack_id()
}

fn ungated(name: &str, address: &str) -> StationConfig {
    StationConfig::new(name, address).inputs()
}

// ---------------------------------------------------------------------------------------------
// ACK_ID
// ---------------------------------------------------------------------------------------------

#[test]
fn ack_id_shows_one_message_at_a_time_until_the_host_confirms_it() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "gate-1")
        .station(gated("st", "gate/x"))
        .station(ungated("marker", "marker"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for m in ["m1", "m2", "m3"] {
        publish(broker.port(), "gate/x", m.as_bytes(), 1, false);
    }
    // Published after them, delivered after them: once it is seen, m2 and m3 reached the line.
    publish(broker.port(), "marker", b"after", 1, false);
    let id1 = host.expect_message("st", "m1");
    host.expect_value_eq("marker", "data", "after");
    let report = host.report();
    assert_eq!(
        host.data_values("st"),
        ["m1"],
        "only the first message may be shown before ACK_ID\n{report}"
    );
    assert!((1..=65535).contains(&id1), "QoS 1 IN_ID {id1}\n{report}");

    // A wrong id is refused with both ids named and changes nothing.
    let wrong = if id1 == 65535 { 1 } else { id1 + 1 };
    host.send(&format!("write st ack {wrong}"));
    let w = host.expect_write("st", "ack");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(false), "{w}\n{report}");
    let error = ev::field(&w, "error");
    assert!(
        error.contains(&wrong.to_string()) && error.contains(&format!("expected IN_ID {id1}")),
        "the error must name the received {wrong} and the expected {id1}: {w}\n{report}"
    );
    assert_eq!(host.data_values("st"), ["m1"], "{report}");

    host.confirm("st", id1);
    let id2 = host.expect_message("st", "m2");
    // 0 does not confirm a QoS 1 message either.
    host.send("write st ack 0");
    let w = host.expect_write("st", "ack");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(false), "{w}\n{report}");
    host.confirm("st", id2);
    let id3 = host.expect_message("st", "m3");
    host.confirm("st", id3);
    let report = host.report();
    assert_eq!(host.data_values("st"), ["m1", "m2", "m3"], "{report}");

    // Nothing is shown: a confirmation now is an error.
    host.send("write st ack 0");
    let w = host.expect_write("st", "ack");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(false), "{w}\n{report}");

    // QoS 0 messages have IN_ID 0 and are confirmed with 0.
    publish(broker.port(), "gate/x", b"z1", 0, false);
    publish(broker.port(), "gate/x", b"z2", 0, false);
    publish(broker.port(), "marker", b"after z", 1, false);
    let z1 = host.expect_message("st", "z1");
    host.expect_value_eq("marker", "data", "after z");
    let report = host.report();
    assert_eq!(z1, 0, "IN_ID of a QoS 0 message\n{report}");
    assert_eq!(host.data_values("st"), ["m1", "m2", "m3", "z1"], "{report}");
    host.confirm("st", 0);
    let z2 = host.expect_message("st", "z2");
    assert_eq!(z2, 0);
    host.quit_ok();
}

/// The PUBACK of a gated message leaves only with the confirmation: a message the host never
/// confirmed is delivered again to the next run with the same persistent session, a confirmed one
/// is not.
#[test]
fn ack_id_unconfirmed_message_is_redelivered_to_the_next_run() {
    let broker = Mosquitto::builder().persistence().start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "gate-persist")
        .param("clean_session", "NO")
        .station(gated("st", "gate/x"))
        .station(ungated("marker", "marker"));
    let mut first = SimHost::start_on(&broker, &config);
    first.wait_connected();
    publish(broker.port(), "gate/x", b"p1", 1, false);
    publish(broker.port(), "gate/x", b"p2", 1, false);
    let id1 = first.expect_message("st", "p1");
    let report = first.report();
    assert!(
        !broker.log().contains("Received PUBACK from gate-persist"),
        "a PUBACK left before the host confirmed\n{report}"
    );
    first.confirm("st", id1);
    first.expect_message("st", "p2");
    broker.wait_log("the PUBACK of p1, sent on confirmation", |log| {
        log.contains(&format!("Received PUBACK from gate-persist (Mid: {id1}"))
    });
    let report = first.report();
    assert_eq!(
        broker
            .log()
            .matches("Received PUBACK from gate-persist")
            .count(),
        1,
        "p2 is not confirmed: no PUBACK for it\n{report}"
    );
    // No goodbye: the process dies with p2 unconfirmed.
    first.signal("KILL");
    first.wait_exit();

    let mut second = SimHost::start_on(&broker, &config);
    second.wait_connected();
    let again = second.expect_value_eq("st", "data", "p2");
    // Anything published now comes after the redelivery.
    publish(broker.port(), "marker", b"after", 1, false);
    second.expect_value_eq("marker", "data", "after");
    let report = second.report();
    assert_eq!(second.data_values("st"), ["p2"], "{report}");
    assert_eq!(
        again.get("duplicate"),
        Some(&json!(true)),
        "a QoS 1 redelivery is marked as a duplicate: {again}\n{report}"
    );
    second.quit_ok();
}

/// A gated station that never confirms fills the broker's in-flight window (2 here) and so
/// holds back every other station of the line. The plugin warns when a shown message waited 5 s
/// for ACK_ID (the warning by held count, at 10, cannot fire with such a small window).
#[test]
fn unconfirmed_station_holds_back_the_whole_line_until_it_confirms() {
    let broker = Mosquitto::builder()
        .config_line("max_inflight_messages 2")
        .start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "hold-1")
        .station(gated("slow", "slow/x"))
        .station(ungated("free", "free/x"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "free/x", b"before", 1, false);
    host.expect_value_eq("free", "data", "before");

    // s1 is shown, s2 held: both unconfirmed, the window of 2 is full.
    publish(broker.port(), "slow/x", b"s1", 1, false);
    publish(broker.port(), "slow/x", b"s2", 1, false);
    let id1 = host.expect_message("slow", "s1");
    broker.wait_log("before, s1 and s2 sent to hold-1", |log| {
        log.matches("Sending PUBLISH to hold-1").count() >= 3
    });

    // The broker queues this one, so the other station gets nothing. The warning, 5 s after s1
    // was shown, is the positive event to wait for: by then the broker has still sent only
    // three PUBLISH packets (its log shows each one it sends) and no `stuck` value came.
    publish(broker.port(), "free/x", b"stuck", 1, false);
    broker.wait_log("stuck received from the publisher", |log| {
        log.matches("Received PUBLISH from").count() >= 4
    });
    let stuck = |e: &Value| ev::is_value_of(e, "free", "data", &json!("stuck"));
    let stderr = host.wait_stderr("the warning about the unconfirmed message", |s| {
        s.contains(&format!(
            "station 'slow' has waited 5s for the host to confirm IN_ID {id1} through ACK_ID"
        ))
    });
    let sent = broker.log().matches("Sending PUBLISH to hold-1").count();
    if sent != 3 || host.position(stuck).is_some() {
        let report = host.report();
        panic!("a message went through a full in-flight window ({sent} sent)\n{report}");
    }
    assert!(
        stderr.contains("WARN") && stderr.contains("stops delivery to the whole line"),
        "{stderr}"
    );

    // One confirmation frees one slot of the window: the queued message comes.
    host.confirm("slow", id1);
    host.expect("free.data = stuck after the confirmation", stuck);
    let id2 = host.expect_message("slow", "s2");
    host.confirm("slow", id2);
    host.quit_ok();
    let stderr = host.stderr();
    assert_eq!(
        stderr.matches("has waited").count(),
        1,
        "one warning per unconfirmed message, none for a prompt confirmation\n{stderr}"
    );
}

/// A gated station whose host does not confirm holds at most `max_held_messages` messages:
/// further QoS 0 messages are dropped, counted and warned about; QoS 1 messages are still held;
/// and once the host confirms, the held ones are shown in order and delivery carries on.
#[test]
fn full_ack_id_queue_drops_qos0_messages_and_carries_on_after_confirmation() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "bound-1")
        .station(gated("st", "gate/x").param("max_held_messages", "3"))
        .station(ungated("marker", "marker"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    // q1 is shown, q2..q4 fill the queue of 3, q5..q8 are dropped.
    for i in 1..=8 {
        publish(
            broker.port(),
            "gate/x",
            format!("q{i}").as_bytes(),
            0,
            false,
        );
    }
    // QoS 1 is never dropped, even with the queue full.
    publish(broker.port(), "gate/x", b"k1", 1, false);
    publish(broker.port(), "marker", b"after", 1, false);
    assert_eq!(host.expect_message("st", "q1"), 0);
    host.expect_value_eq("marker", "data", "after");
    let stderr = host.wait_stderr("the warning about dropped messages", |s| {
        s.contains("new QoS 0 messages are dropped")
    });
    let drops: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("are dropped"))
        .collect();
    assert_eq!(
        drops.len(),
        1,
        "one warning for the first drop only\n{stderr}"
    );
    assert!(
        drops[0].starts_with("WARN")
            && drops[0].contains("station 'st' holds 3 messages (")
            && drops[0].contains("its limit (max_held_messages = 3,")
            && drops[0].contains("(1 since the queue was last empty, 1 in all)"),
        "{stderr}"
    );

    for (data, next) in [("q1", "q2"), ("q2", "q3"), ("q3", "q4")] {
        host.confirm("st", 0);
        let id = host.expect_message("st", next);
        assert_eq!(id, 0, "{data} confirmed, {next} shown");
    }
    host.confirm("st", 0);
    let k1 = host.expect_message("st", "k1");
    assert!(k1 > 0, "the QoS 1 message has its packet id");
    host.confirm("st", k1);
    // Nothing is held any more: a new message is shown at once.
    publish(broker.port(), "gate/x", b"q9", 0, false);
    host.expect_message("st", "q9");
    let report = host.report();
    assert_eq!(
        host.data_values("st"),
        ["q1", "q2", "q3", "q4", "k1", "q9"],
        "q5..q8 were dropped, nothing else\n{report}"
    );
    host.quit_ok();
}

/// `write STATION TAG` with nothing after the tag writes the empty text (docs/sim-host.md).
#[test]
fn write_without_a_value_writes_empty_text() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "empty-1")
        .param("topic_filter", "cmd/in")
        .station(
            StationConfig::new("cmd", "cmd/in")
                .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "out/empty")
                .tag("out_value", "OUT_VALUE", "TxtO"),
        );
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    let sub = subscribe_one(broker.port(), "out/empty");
    host.send("write cmd out_value");
    let w = host.expect_write("cmd", "out_value");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{report}");
    assert!(!host.stderr().contains("usage"), "{report}");
    let got = sub.wait();
    assert_eq!(got.payload, b"", "{got:?}\n{report}");
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Incoming QoS 2
// ---------------------------------------------------------------------------------------------

/// QoS 2 messages reach the host exactly once, before and after a broker restart; a message whose
/// PUBREC the line still owes (its station did not confirm it) is re-sent by the restarted broker
/// with DUP and is not shown a second time.
#[test]
fn qos2_messages_arrive_exactly_once_across_a_broker_restart() {
    let mut broker = Mosquitto::builder().persistence().start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "q2-client")
        .param("subscribe_qos", "QoS_2")
        .station(ungated("q", "q2/x"))
        .station(gated("g", "q2/gated"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for m in ["a1", "a2", "a3"] {
        publish(broker.port(), "q2/x", m.as_bytes(), 2, false);
    }
    host.expect_value_eq("q", "data", "a3");
    publish(broker.port(), "q2/gated", b"held", 2, false);
    let held_id = host.expect_message("g", "held");
    let report = host.report();
    assert!(
        !broker
            .log()
            .contains(&format!("Received PUBREC from q2-client (Mid: {held_id},")),
        "PUBREC before the host confirmed\n{report}"
    );

    // SIGTERM: mosquitto saves the session with the unfinished QoS 2 flow.
    host.restart_broker(&mut broker);
    broker.wait_log(
        "the re-sent PUBLISH (DUP) of the unconfirmed message",
        |log| log.contains("Sending PUBLISH to q2-client (d1, q2"),
    );
    for m in ["b1", "b2"] {
        publish(broker.port(), "q2/x", m.as_bytes(), 2, false);
    }
    // b2 comes after the redelivery: by now it was handled.
    host.expect_value_eq("q", "data", "b2");
    host.confirm("g", held_id);
    broker.wait_log("PUBREC then PUBCOMP of the confirmed message", |log| {
        log.contains(&format!("Received PUBREC from q2-client (Mid: {held_id}"))
            && log.contains(&format!("Received PUBCOMP from q2-client (Mid: {held_id}"))
    });
    publish(broker.port(), "q2/gated", b"next", 2, false);
    host.expect_message("g", "next");
    host.quit_ok();

    let report = host.report();
    assert_eq!(
        host.data_values("q"),
        ["a1", "a2", "a3", "b1", "b2"],
        "each QoS 2 message once, in order\n{report}"
    );
    assert_eq!(host.data_values("g"), ["held", "next"], "{report}");
}

// ---------------------------------------------------------------------------------------------
// Last will, Keep Alive, Ping Interval
// ---------------------------------------------------------------------------------------------

fn will_config(port: u16, client_id: &str) -> LineConfig {
    LineConfig::new(port)
        .param("client_id", client_id)
        .param("will_flag", "YES")
        .param("will_topic", "line/will")
        .param("will_message", "line is gone")
        .param("will_qos", "QoS_1")
        .station(ungated("st", "st/x"))
}

#[test]
fn last_will_is_published_when_sim_host_dies_but_not_after_quit() {
    let broker = Mosquitto::start();
    let mut host = SimHost::start_on(&broker, &will_config(broker.port(), "will-1"));
    host.wait_connected();
    let sub = subscribe_one(broker.port(), "line/will");
    host.signal("KILL");
    host.wait_exit();
    let got = sub.wait();
    assert_eq!(got.payload, b"line is gone", "{got:?}");
    assert_eq!(got.qos, 1, "Will QoS 1: {got:?}");

    let mut host = SimHost::start_on(&broker, &will_config(broker.port(), "will-2"));
    host.wait_connected();
    let sub = subscribe_one(broker.port(), "line/will");
    host.quit_ok();
    broker.wait_log("the DISCONNECT of will-2", |log| {
        log.contains("Received DISCONNECT from will-2")
    });
    // A will would have been published when the DISCONNECT was handled, before this message.
    publish(broker.port(), "line/will", b"marker", 1, false);
    let got = sub.wait();
    assert_eq!(
        got.payload, b"marker",
        "after a clean quit the will must not be published: {got:?}"
    );
}

/// An idle line with these settings: the broker log must show its PINGREQs (and the CONNECT field).
fn expect_idle_pings(keep_alive: &str, ping_interval: &str, client: &str) {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", client)
        .param_raw("keep_alive", keep_alive)
        .param_raw("ping_interval", ping_interval)
        .station(ungated("st", "st/x"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    broker.wait_log(&format!("CONNECT with keep alive {keep_alive}"), |log| {
        log.contains(&format!(" as {client} (p2, c0, k{keep_alive})"))
    });
    // Two pings: the line keeps pinging while idle, and the broker answers.
    broker.wait_log("two PINGREQs from the idle line", |log| {
        log.matches(&format!("Received PINGREQ from {client}"))
            .count()
            >= 2
    });
    let report = host.report();
    assert!(
        !host.events().iter().any(ev::is_disconnected),
        "the pinging line must stay connected\n{report}"
    );
    host.quit_ok();
}

#[test]
fn keep_alive_sends_pingreq_when_nothing_was_sent() {
    expect_idle_pings("2", "0", "ka-client");
}

#[test]
fn ping_interval_sends_pingreq_when_the_broker_is_silent() {
    expect_idle_pings("0", "1", "pi-client");
}

// ---------------------------------------------------------------------------------------------
// Losing the connection, Reply Timeout, redundant hosts
// ---------------------------------------------------------------------------------------------

#[test]
fn lost_connection_puts_every_station_in_comm_error_and_invalidates_its_inputs() {
    let mut broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .station(ungated("one", "p/1"))
        .station(ungated("two", "p/2"))
        .station(ungated("idle", "p/3"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for st in ["one", "two", "idle"] {
        host.expect_station(st, "ok");
    }
    publish(broker.port(), "p/1", b"v1", 1, false);
    publish(broker.port(), "p/2", b"v2", 1, false);
    host.expect_value_eq("one", "data", "v1");
    host.expect_value_eq("two", "data", "v2");

    broker.kill();
    host.expect_disconnected();
    for st in ["one", "two", "idle"] {
        host.expect_station(st, "comm_error");
    }
    for st in ["one", "two"] {
        for tag in ["topic", "data", "id"] {
            let e = host.expect(&format!("{st}.{tag} invalidated"), |e| {
                ev::is_value(e, st, tag) && e["valid"] == json!(false)
            });
            assert_eq!(e["value"], Value::Null, "{e}");
        }
    }
    let report = host.report();
    assert!(
        !host
            .events()
            .iter()
            .any(|e| ev::is_value(e, "idle", "data")),
        "a tag that never had a value is not invalidated again\n{report}"
    );

    broker.restart();
    host.wait_connected();
    for st in ["one", "two", "idle"] {
        host.expect_station(st, "ok");
    }
    publish(broker.port(), "p/1", b"again", 1, false);
    host.expect_value_eq("one", "data", "again");
    publish(broker.port(), "p/3", b"first", 1, false);
    host.expect_value_eq("idle", "data", "first");
    host.quit_ok();
}

#[test]
fn reply_timeout_closes_the_connection_when_a_frozen_broker_does_not_answer_pingreq() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param_raw("ping_interval", "1")
        .param_raw("reply_timeout", "1")
        .station(ungated("st", "st/x"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    broker.freeze();
    let e = host.expect_disconnected();
    broker.thaw();
    let reason = ev::field(&e, "reason");
    let report = host.report();
    assert!(
        reason.contains("PINGRESP") && reason.contains("reply timeout"),
        "the reason must name the missing PINGRESP and the reply timeout: {e}\n{report}"
    );
    host.expect_station("st", "comm_error");
    // The thawed broker takes the line back.
    host.wait_connected();
    host.quit_ok();
}

#[test]
fn reply_timeout_closes_the_connection_when_subscribe_is_never_answered() {
    // CONNACK, then silence after SUBSCRIBE: the line must give up and close.
    let silent = Script::new().connack().expect(PacketType::Subscribe);
    reply_timeout_closes_then_reconnects(silent, false, "SUBACK");
}

#[test]
fn reply_timeout_closes_the_connection_when_a_packet_stays_half_read() {
    // A PUBLISH header announcing 10 bytes, then nothing: the line must not wait forever.
    let stalled = Script::new().handshake().send_hex("30 0a 00");
    reply_timeout_closes_then_reconnects(stalled, true, "half-read");
}

/// The line is served `first` (then nothing more) with a reply timeout of 1 s: it must close that
/// connection with a reason naming `what` and the reply timeout, and reconnect.
fn reply_timeout_closes_then_reconnects(first: Script, connects_first: bool, what: &str) {
    let broker = FakeBroker::start(vec![
        first.expect_close(Duration::from_secs(10)),
        // The reconnection is served properly and the line is alive on it, and keeps it until
        // its deliberate DISCONNECT at the end of the test: the positive event that shows the
        // reply timeout did not close a healthy connection.
        Script::new()
            .handshake()
            .expect_alive()
            .read_until(PacketType::Disconnect),
    ]);
    let config = LineConfig::new(broker.port())
        .param_raw("reply_timeout", "1")
        .param_raw("ping_interval", "0")
        .station(ungated("st", "st/x"))
        // Routes the fake broker's liveness PUBLISH, so the test sees when it was taken.
        .station(ungated("alive", "fake/alive"));
    let mut host = SimHost::start(&config.to_toml());
    if connects_first {
        host.wait_connected();
    }
    let e = host.expect_disconnected();
    let reason = ev::field(&e, "reason");
    let report = host.report();
    let transcript = broker.transcript();
    assert!(
        reason.contains(what) && reason.contains("reply timeout"),
        "the reason must name {what}: {e}\n{report}\n-- fake broker --\n{transcript}"
    );
    host.wait_connected();
    host.expect_value_eq("alive", "data", "ok");
    host.quit_ok();
    broker.wait_scripts();
}

#[test]
fn redundant_hosts_fail_over_to_the_second_broker() {
    let mut first = Mosquitto::start();
    let second = Mosquitto::builder()
        .bind_address(std::net::Ipv4Addr::new(127, 0, 0, 2))
        .port(first.port())
        .start();
    let port = first.port();
    let config = LineConfig::new(port)
        .host("127.0.0.1,127.0.0.2")
        .station(ungated("st", "st/x"));
    let mut host = SimHost::start_on(&first, &config);
    host.attach_broker(&second);
    let e = host.wait_connected();
    assert_eq!(ev::field(&e, "host"), format!("127.0.0.1:{port}"), "{e}");

    first.kill();
    host.expect_disconnected();
    let e = host.wait_connected();
    let report = host.report();
    assert_eq!(
        ev::field(&e, "host"),
        format!("127.0.0.2:{port}"),
        "{e}\n{report}"
    );
    publish_at("127.0.0.2", port, "st/x", b"via the second", 1, false);
    host.expect_value_eq("st", "data", "via the second");
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Parameters changed at run time, forced disconnection, Full Debug
// ---------------------------------------------------------------------------------------------

#[test]
fn changed_topic_filter_unsubscribes_the_old_one_in_a_persistent_session() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "set-client")
        .param("clean_session", "NO")
        .param("topic_filter", "a/#")
        .station(ungated("a", "a/x"))
        .station(ungated("b", "b/x"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "a/x", b"a1", 1, false);
    host.expect_value_eq("a", "data", "a1");

    // A refused change is reported on stderr and changes nothing.
    host.send("set subscribe_qos QoS_7");
    let stderr = host.wait_stderr("the refused `set`", |s| {
        s.contains("ERROR set subscribe_qos")
    });
    assert!(stderr.contains("QoS_7"), "{stderr}");

    host.send("set topic_filter b/#");
    let e = host.expect_disconnected();
    let report = host.report();
    assert_eq!(
        ev::field(&e, "reason"),
        "line parameters changed",
        "{e}\n{report}"
    );
    host.wait_connected();
    let log = broker.wait_log("UNSUBSCRIBE a/#, then SUBSCRIBE b/#", |log| {
        log.contains("Received UNSUBSCRIBE from set-client") && log.contains("\tb/# (QoS 1)")
    });
    let unsub = log.find("Received UNSUBSCRIBE from set-client");
    let sub = log.find("\tb/# (QoS 1)");
    assert!(unsub < sub, "UNSUBSCRIBE must come first\n{report}");

    // The session no longer has a/#: a2 is not delivered, b1 (published after it) is.
    publish(broker.port(), "a/x", b"a2", 1, false);
    publish(broker.port(), "b/x", b"b1", 1, false);
    host.expect_value_eq("b", "data", "b1");
    host.quit_ok();
    let report = host.report();
    assert_eq!(host.data_values("a"), ["a1"], "{report}");
    assert_eq!(
        host.events_where(ev::is_disconnected).len(),
        1,
        "only the accepted change reconnects\n{report}"
    );
}

#[test]
fn forced_disconnection_when_every_station_is_off_or_simulated() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "forced")
        .station(ungated("s1", "s/1"))
        .station(ungated("s2", "s/2"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    host.send("station s1 off");
    host.expect_station("s1", "off");
    host.send("station s2 simulate");
    let e = host.expect_disconnected();
    let report = host.report();
    assert_eq!(
        ev::field(&e, "reason"),
        "every station is off or simulated",
        "{e}\n{report}"
    );
    broker.wait_log("the line's DISCONNECT", |log| {
        log.contains("Received DISCONNECT from forced")
    });
    host.send("station s1 on");
    host.wait_connected();
    host.expect_station("s1", "ok");
    publish(broker.port(), "s/1", b"back", 1, false);
    host.expect_value_eq("s1", "data", "back");
    host.quit_ok();
}

#[test]
fn full_debug_traces_packets_and_never_the_password() {
    const PASSWORD: &str = "Pa55-w0rd-never-logged";
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("full_debug", "YES")
        .param("user_name", "operator")
        .param("password", PASSWORD)
        .param("topic_filter", "dbg/#")
        .station(ungated("st", "dbg/x"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    publish(broker.port(), "dbg/x", b"12345", 1, false);
    let id = host.expect_message("st", "12345");
    let want = [
        "send CONNECT".to_string(),
        "user_name=operator password=set".to_string(),
        "recv CONNACK".to_string(),
        "send SUBSCRIBE".to_string(),
        "filter='dbg/#'".to_string(),
        "recv SUBACK".to_string(),
        format!("recv PUBLISH pkid={id} topic='dbg/x' payload=5 bytes qos=1"),
        format!("send PUBACK pkid={id}"),
    ];
    host.wait_stderr("the packet trace", |s| want.iter().all(|w| s.contains(w)));
    host.quit_ok();
    let stderr = host.stderr();
    assert!(
        stderr.contains("DEBUG"),
        "Full Debug logs at DEBUG\n{stderr}"
    );
    assert!(
        !stderr.contains(PASSWORD),
        "the password appears in the log\n{stderr}"
    );
}
