//! Interoperability: one end-to-end scenario against four brokers — mosquitto, rumqttd, NATS
//! server (MQTT listener) and RabbitMQ (MQTT plugin) — each started by the test on its own
//! loopback ports.
//!
//! The scenario: subscribe; a QoS 1 message in; a QoS 2 message in; a QoS 1 OUT_VALUE write seen
//! by another subscriber; the broker killed and restarted, after which the line reconnects and
//! receives again; sim-host killed (SIGKILL), after which the broker publishes the line's last
//! will. Broker differences are in docs/interop.md. A broker whose program is not installed fails
//! its test with how to install it: the test command (`tests/run.sh`) installs them all, so a green
//! run means every broker was tested.

use std::path::PathBuf;

use mqtt_line_e2e::{
    ev, publish, subscribe_one, try_publish, ExternalBroker, LineConfig, Mosquitto, SimHost,
    StationConfig, TIMEOUT,
};

/// How a broker takes a QoS 2 PUBLISH from a client.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Qos2 {
    /// PUBREC, PUBREL, PUBCOMP.
    Supported,
    /// It closes the connection (NATS).
    Refused,
    /// It answers with a PUBACK, as if it were QoS 1, which the publishing client takes for a
    /// protocol error, but routes the message at QoS 1 (RabbitMQ 3.10).
    AckedAsQos1,
}

/// What differs between brokers, as far as the scenario is concerned.
struct Broker<'a> {
    name: &'static str,
    port: u16,
    log: PathBuf,
    qos2_publish: Qos2,
    restart: Box<dyn FnMut() + 'a>,
}

/// The QoS the broker granted the line's subscription, from the line's Full Debug trace.
fn granted_qos(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains("recv SUBACK"))
        .and_then(|l| l.split("codes=").nth(1))
        .unwrap_or("?")
        .trim()
        .to_string()
}

/// Runs the scenario; returns what was observed, for the report.
fn scenario(mut broker: Broker<'_>) -> Vec<String> {
    let port = broker.port;
    let config = LineConfig::new(port)
        .param("client_id", &format!("interop-{}-{port}", broker.name))
        // rumqttd refuses keep alive 0 (the line's default).
        .param_raw("keep_alive", "30")
        .param("topic_filter", "interop/#")
        .param("subscribe_qos", "QoS_2")
        .param("publish_qos", "QoS_1")
        .param("will_flag", "YES")
        .param("will_topic", "interop/will")
        .param("will_message", "line lost")
        .param("will_qos", "QoS_1")
        .param("full_debug", "YES")
        .station(StationConfig::new("in", "interop/in").inputs())
        .station(
            StationConfig::new("cmd", "interop/cmd")
                .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "interop/out")
                .tag("out_value", "OUT_VALUE", "TxtO"),
        );
    let mut notes = Vec::new();
    let mut host = SimHost::start(&config.to_toml());
    host.attach_log(broker.name, &broker.log);

    // Subscribe.
    host.wait_connected();
    host.expect_station("in", "ok");
    notes.push(format!(
        "subscription at QoS 2 granted as {}",
        granted_qos(&host.stderr())
    ));

    // QoS 1 in: a packet id reaches IN_ID.
    publish(port, "interop/in", b"at QoS 1", 1, false);
    host.expect_value_eq("in", "data", "at QoS 1");
    let id = host.expect_value("in", "id");
    let report = host.report();
    assert!(
        id["value"].as_i64().is_some_and(|v| v > 0),
        "IN_ID of a QoS 1 message: {id}\n{report}"
    );

    // QoS 2 in.
    match broker.qos2_publish {
        Qos2::Supported => {
            publish(port, "interop/in", b"at QoS 2", 2, false);
            host.expect_value_eq("in", "data", "at QoS 2");
            host.expect_value("in", "id");
            notes.push("QoS 2 message delivered".into());
        }
        Qos2::AckedAsQos1 => {
            let result = try_publish(port, &[], "interop/in", b"at QoS 2", 2, TIMEOUT);
            host.expect_value_eq("in", "data", "at QoS 2");
            host.expect_value("in", "id");
            notes.push(format!(
                "QoS 2 PUBLISH acknowledged with PUBACK (publisher: {}), delivered at QoS 1",
                result
                    .err()
                    .unwrap_or_else(|| "no error".into())
                    .lines()
                    .next()
                    .unwrap_or("")
            ));
        }
        Qos2::Refused => {
            notes.push(
                "QoS 2 PUBLISH refused by the broker (it closes the connection): step skipped"
                    .into(),
            );
        }
    }

    // A QoS 1 write, seen by another subscriber.
    let sub = subscribe_one(port, "interop/out");
    host.send("write cmd out_value 42");
    let w = host.expect_write("cmd", "out_value");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{report}");
    let got = sub.wait();
    assert_eq!(got.payload, b"42", "{got:?}\n{report}");
    // Published at QoS 1; a broker may deliver it to a QoS 2 subscriber at QoS 1 (MQTT 3.1.1
    // says so) or, like rumqttd, at QoS 2. Never at QoS 0.
    assert!(
        got.qos >= 1,
        "the write was published at QoS 1: {got:?}\n{report}"
    );
    notes.push(format!(
        "QoS 1 write delivered to a QoS 2 subscriber at QoS {}",
        got.qos
    ));

    // The broker restarts: the line reconnects and receives again.
    (broker.restart)();
    host.expect_disconnected();
    host.wait_connected();
    publish(port, "interop/in", b"after the restart", 1, false);
    host.expect_value_eq("in", "data", "after the restart");

    // sim-host killed: the broker publishes the line's will.
    let will = subscribe_one(port, "interop/will");
    host.signal("KILL");
    let got = will.wait();
    let report = host.report();
    assert_eq!(got.payload, b"line lost", "{got:?}\n{report}");
    notes.push(format!("last will delivered at QoS {}", got.qos));
    notes
}

fn report(name: &str, notes: &[String]) {
    eprintln!("interop {name}: passed; {}", notes.join("; "));
}

#[test]
fn mosquitto() {
    let mut broker = Mosquitto::start();
    let (port, log) = (broker.port(), broker.log_path().to_path_buf());
    let notes = scenario(Broker {
        name: "mosquitto",
        port,
        log,
        qos2_publish: Qos2::Supported,
        restart: Box::new(|| broker.restart()),
    });
    report("mosquitto", &notes);
}

#[test]
fn rumqttd() {
    let mut broker = ExternalBroker::rumqttd(env!("CARGO_BIN_EXE_e2e-rumqttd").as_ref());
    let (port, log) = (broker.port(), broker.log_path().to_path_buf());
    let notes = scenario(Broker {
        name: "rumqttd",
        port,
        log,
        qos2_publish: Qos2::Supported,
        restart: Box::new(|| broker.restart()),
    });
    report("rumqttd", &notes);
}

#[test]
fn nats_server() {
    let mut broker = ExternalBroker::nats();
    let (port, log) = (broker.port(), broker.log_path().to_path_buf());
    let notes = scenario(Broker {
        name: "nats-server",
        port,
        log,
        qos2_publish: Qos2::Refused,
        restart: Box::new(|| broker.restart()),
    });
    report("nats-server", &notes);
}

#[test]
fn rabbitmq() {
    let mut broker = ExternalBroker::rabbitmq();
    let (port, log) = (broker.port(), broker.log_path().to_path_buf());
    let notes = scenario(Broker {
        name: "rabbitmq",
        port,
        log,
        qos2_publish: Qos2::AckedAsQos1,
        restart: Box::new(|| broker.restart()),
    });
    report("rabbitmq", &notes);
}
