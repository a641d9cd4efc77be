//! Writes end to end (issue 3): OUT_VALUE published with each Publish QoS and completed as the
//! spec says, refused at once while disconnected, re-sent after a reconnect with a persistent
//! session (and failed with a clean one), and non-text output types published as text.

use mqtt_line_e2e::{ev, subscribe_one, LineConfig, Mosquitto, SimHost, StationConfig};
use serde_json::Value;

/// A station publishing to `topic` through `out_value` (TxtO).
fn writer(topic: &str) -> StationConfig {
    StationConfig::new("cmd", "cmd/in")
        .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", topic)
        .tag("out_value", "OUT_VALUE", "TxtO")
}

/// Writes `cmd.out_value` and returns its write event.
fn write_out_value(host: &mut SimHost, value: &str) -> Value {
    host.send(&format!("write cmd out_value {value}"));
    host.expect_write("cmd", "out_value")
}

fn assert_write_ok(host: &mut SimHost, w: &Value) {
    if ev::write_ok(w) != Some(true) {
        let report = host.report();
        panic!("the write failed: {w}\n{report}");
    }
}

#[test]
fn out_value_is_published_and_completes_at_each_publish_qos() {
    let broker = Mosquitto::start();
    for qos in [0u8, 1, 2] {
        let client = format!("writer-q{qos}");
        let topic = format!("out/q{qos}");
        let config = LineConfig::new(broker.port())
            .param("client_id", &client)
            .param("topic_filter", "cmd/in")
            .param("publish_qos", &format!("QoS_{qos}"))
            .station(writer(&topic));
        let mut host = SimHost::start_on(&broker, &config);
        host.wait_connected();
        let sub = subscribe_one(broker.port(), &topic);
        let payload = format!("value at QoS {qos}");
        let w = write_out_value(&mut host, &payload);
        assert_write_ok(&mut host, &w);
        let got = sub.wait();
        let report = host.report();
        assert_eq!(got.payload, payload.as_bytes(), "{got:?}\n{report}");
        assert_eq!(got.qos, qos, "{got:?}\n{report}");
        // The flow the write waited for: QoS 1 ends with PUBACK, QoS 2 with PUBCOMP.
        let finished = match qos {
            0 => format!("Received PUBLISH from {client} (d0, q0"),
            1 => format!("Sending PUBACK to {client}"),
            _ => format!("Sending PUBCOMP to {client}"),
        };
        broker.wait_log(&finished, |log| log.contains(&finished));
        host.quit_ok();
    }
}

#[test]
fn out_value_of_numeric_output_types_is_published_as_text() {
    let broker = Mosquitto::start();
    let station = StationConfig::new("cmd", "cmd/in")
        .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "out/num")
        .tag("real", "OUT_VALUE", "Ao")
        .tag("int", "OUT_VALUE", "Co")
        .tag("bool", "OUT_VALUE", "Do");
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "cmd/in")
        .param("publish_qos", "QoS_1")
        .station(station);
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    let cases = [
        ("real", "2.5", "2.5"),
        ("real", "-3", "-3"),
        ("int", "-42", "-42"),
        ("int", "7.0", "7"),
        ("bool", "1", "1"),
        ("bool", "0", "0"),
    ];
    for (tag, written, published) in cases {
        let sub = subscribe_one(broker.port(), "out/num");
        host.send(&format!("write cmd {tag} {written}"));
        let w = host.expect_write("cmd", tag);
        assert_write_ok(&mut host, &w);
        let got = sub.wait();
        let report = host.report();
        assert_eq!(
            String::from_utf8_lossy(&got.payload),
            published,
            "{tag} written as {written:?}\n{report}"
        );
    }
    host.quit_ok();
}

#[test]
fn write_while_disconnected_fails_at_once() {
    let mut broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "cmd/in")
        .param("publish_qos", "QoS_1")
        .station(writer("out/x"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    broker.kill();
    host.expect_disconnected();
    let w = write_out_value(&mut host, "lost");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(false), "{w}\n{report}");
    assert!(
        ev::field(&w, "error").contains("not connected"),
        "the error must say why: {w}\n{report}"
    );
    host.quit_ok();
}

/// Freezes the broker so that the PUBACK of a QoS 1 write cannot come, writes, then kills the
/// broker and starts it again on the same port. Returns the write event and sim-host.
fn write_across_a_broker_crash(clean_session: &str, client: &str) -> (Value, SimHost, Mosquitto) {
    let mut broker = Mosquitto::builder().persistence().start();
    let config = LineConfig::new(broker.port())
        .param("client_id", client)
        .param("clean_session", clean_session)
        .param("topic_filter", "cmd/in")
        .param("publish_qos", "QoS_1")
        .station(writer("out/crash"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    broker.freeze();
    host.send("write cmd out_value in flight");
    // A fixed wait that stays: while the broker is frozen nothing can happen that would mark
    // the time, as it neither answers nor logs; and the next event the line makes, the loss of
    // the connection at the restart, comes right after the (with a clean session, legitimate)
    // failure of this very write.
    let early = host.try_expect_within(std::time::Duration::from_millis(300), |e| {
        ev::is_write(e, "cmd", "out_value")
    });
    if let Some(w) = early {
        let report = host.report();
        panic!("a QoS 1 write completed without PUBACK: {w}\n{report}");
    }
    broker.restart();
    host.expect_disconnected();
    host.wait_connected();
    let w = host.expect_write("cmd", "out_value");
    (w, host, broker)
}

#[test]
fn in_flight_write_is_resent_and_completes_after_reconnect_with_a_persistent_session() {
    let (w, mut host, broker) = write_across_a_broker_crash("NO", "crash-persistent");
    assert_write_ok(&mut host, &w);
    // The restarted broker got the PUBLISH again, flagged DUP.
    broker.wait_log("the re-sent PUBLISH", |log| {
        log.contains("Received PUBLISH from crash-persistent (d1, q1")
    });
    host.quit_ok();
}

#[test]
fn in_flight_write_fails_when_the_connection_drops_with_a_clean_session() {
    let (w, mut host, broker) = write_across_a_broker_crash("YES", "crash-clean");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(false), "{w}\n{report}");
    assert!(
        ev::field(&w, "error").contains("connection to the broker was lost"),
        "{w}\n{report}"
    );
    let log = broker.log();
    assert!(
        !log.contains("Received PUBLISH from crash-clean"),
        "a clean session must not re-send the write\n{report}"
    );
    host.quit_ok();
}
