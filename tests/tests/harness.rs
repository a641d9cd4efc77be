//! The harness itself against mosquitto alone (no plugin needed): brokers, clients, ports.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use mqtt_line_e2e::{free_port, publish, subscribe_one, wait_for_port, Mosquitto};

fn round_trip(broker: &Mosquitto, topic: &str, payload: &[u8]) {
    let sub = subscribe_one(broker.port(), topic);
    publish(broker.port(), topic, payload, 2, false);
    let got = sub.wait();
    assert_eq!(got.payload, payload, "{got:?}\n{}", broker.log_tail());
    assert_eq!((got.qos, got.retain), (2, false));
}

#[test]
fn binary_payload_round_trip() {
    let broker = Mosquitto::start();
    round_trip(&broker, "harness/bin", b"\x00\xffbinary\n\xfe");
    round_trip(&broker, "harness/empty", b"");
}

#[test]
fn kill_stop_restart_keep_the_port() {
    let mut broker = Mosquitto::start();
    let port = broker.port();
    round_trip(&broker, "harness/a", b"1");
    broker.kill();
    assert!(broker.pid().is_none());
    assert!(
        !wait_for_port(port, Duration::ZERO),
        "killed broker still listens"
    );
    broker.restart();
    assert_eq!(broker.port(), port);
    round_trip(&broker, "harness/a", b"2");
    broker.stop();
    assert!(
        !wait_for_port(port, Duration::ZERO),
        "stopped broker still listens"
    );
    broker.restart();
    round_trip(&broker, "harness/a", b"3");
    broker.freeze();
    broker.thaw();
    round_trip(&broker, "harness/a", b"4");
}

#[test]
fn persistence_keeps_retained_messages_across_stop_and_restart() {
    let mut broker = Mosquitto::builder().persistence().start();
    publish(broker.port(), "harness/kept", b"kept", 1, true);
    broker.stop();
    broker.restart();
    let got = subscribe_one(broker.port(), "harness/kept").wait();
    assert_eq!(got.payload, b"kept", "{}", broker.log_tail());
    assert!(got.retain);
}

/// mosquitto_sub -E: subscribe, print the SUBACK, exit.
fn suback(port: u16, filter: &str) -> String {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-t", filter, "-q", "1", "-d", "-E"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("Subscribed (mid"))
        .unwrap_or_else(|| panic!("no SUBACK: {out:?}"))
        .to_string()
}

#[test]
fn deny_subscribe_answers_suback_0x80_for_mqtt_3_1_1() {
    let broker = Mosquitto::builder().deny_subscribe("denied/#").start();
    let log = broker.log_tail();
    assert_eq!(
        suback(broker.port(), "denied/#"),
        "Subscribed (mid: 1): 128",
        "{log}"
    );
    assert_eq!(
        suback(broker.port(), "denied/x"),
        "Subscribed (mid: 1): 128",
        "{log}"
    );
    assert_eq!(
        suback(broker.port(), "allowed/#"),
        "Subscribed (mid: 1): 1",
        "{log}"
    );
    assert_eq!(
        suback(broker.port(), "#"),
        "Subscribed (mid: 1): 1",
        "{log}"
    );
}

#[test]
fn acl_file_is_written_and_applied() {
    // An ACL file alone does not refuse subscriptions (see deny_subscribe), but it does filter
    // what is delivered: only allowed/# gets through.
    let broker = Mosquitto::builder()
        .acl("topic readwrite allowed/#\n")
        .start();
    assert_eq!(suback(broker.port(), "#"), "Subscribed (mid: 1): 1");
    let sub = subscribe_one(broker.port(), "#");
    publish(broker.port(), "blocked/x", b"no", 1, false);
    publish(broker.port(), "allowed/x", b"yes", 1, false);
    assert_eq!(sub.wait().payload, b"yes", "{}", broker.log_tail());
}

#[test]
fn free_ports_are_distinct_and_unused() {
    let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
    let unique: HashSet<u16> = ports.iter().copied().collect();
    assert_eq!(unique.len(), ports.len(), "{ports:?}");
    for p in ports {
        assert!(!wait_for_port(p, Duration::ZERO), "port {p} is in use");
    }
}
