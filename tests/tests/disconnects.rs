//! Deliberate disconnects (issue 9): a reconnect after `set` or after every station was off waits
//! until the broker has closed the old connection, so that no broker takes the new CONNECT for a
//! session takeover and publishes the line's will; such disconnects are logged at INFO, and Full
//! Debug shows the DISCONNECT. Also: non-finite values are never published.

use mqtt_line_e2e::fake_broker::{FakeBroker, PacketType, Script};
use mqtt_line_e2e::{
    ev, publish, subscribe_one, ExternalBroker, LineConfig, Mosquitto, SimHost, StationConfig,
};

/// How long the fake broker keeps the old connection open after the DISCONNECT: well below the
/// line's bound (1 s) on waiting for the broker to close it. A fixed time on purpose: it is the
/// scenario (a broker slow to close), not a wait for something not to happen; what is checked
/// is an order the fake broker sees, the new connection only after it closed the old one.
const HOLD_MS: u64 = 300;

fn station() -> StationConfig {
    StationConfig::new("st", "st/x").inputs()
}

/// The first connection ends with a DISCONNECT after which the broker is slow to close; the
/// second one is served until the line's final DISCONNECT.
fn slow_closing_broker(first: Script) -> FakeBroker {
    FakeBroker::start(vec![
        first,
        Script::new().handshake().read_until(PacketType::Disconnect),
    ])
}

fn first_connection() -> Script {
    Script::new().handshake().read_until(PacketType::Disconnect)
}

/// Runs a line with Full Debug against `broker`, makes it disconnect with `command` (giving
/// `reason`) and connect again (after `then`, if given), and checks the log lines of the
/// deliberate disconnect.
fn reconnect(broker: &FakeBroker, command: &str, then: Option<&str>, reason: &str) {
    let config = LineConfig::new(broker.port())
        .param("full_debug", "YES")
        .param_raw("ping_interval", "0")
        .station(station());
    let mut host = SimHost::start(&config.to_toml());
    host.wait_connected();
    host.send(command);
    let e = host.expect_disconnected();
    assert_eq!(ev::field(&e, "reason"), reason, "{e}\n{}", host.report());
    if let Some(c) = then {
        host.send(c);
    }
    host.wait_connected();
    host.quit_ok();
    broker.wait_scripts();

    let stderr = host.stderr();
    let ended = format!("connection to 127.0.0.1:{} ended: {reason}", broker.port());
    let line = stderr
        .lines()
        .find(|l| l.contains(&ended))
        .unwrap_or_else(|| panic!("no {ended:?} in the log\n{stderr}"));
    assert!(
        line.starts_with("INFO "),
        "a deliberate disconnect is not a warning: {line}"
    );
    assert!(
        stderr.lines().any(|l| l.contains("send DISCONNECT")),
        "Full Debug shows the DISCONNECT it sends\n{stderr}"
    );
}

#[test]
fn reconnect_after_set_waits_until_the_broker_closed_the_old_connection() {
    let broker = slow_closing_broker(first_connection().hold_open_for_ms(HOLD_MS));
    reconnect(
        &broker,
        "set keep_alive 30",
        None,
        "line parameters changed",
    );
}

#[test]
fn reconnect_after_every_station_was_off_waits_until_the_broker_closed_the_old_connection() {
    let broker = slow_closing_broker(first_connection().hold_open_for_ms(HOLD_MS));
    reconnect(
        &broker,
        "station st off",
        Some("station st on"),
        "every station is off or simulated",
    );
}

#[test]
fn a_broker_that_never_closes_does_not_stop_the_reconnect() {
    let broker = slow_closing_broker(first_connection().hold_until_next_connection());
    reconnect(
        &broker,
        "set keep_alive 30",
        None,
        "line parameters changed",
    );
}

#[test]
fn a_lost_connection_is_still_a_warning() {
    let broker = FakeBroker::start(vec![
        // Closed by the broker once the line has shown it is up (it answers a PUBLISH).
        Script::new().handshake().expect_alive(),
        Script::new().handshake().read_until(PacketType::Disconnect),
    ]);
    let config = LineConfig::new(broker.port())
        .param_raw("ping_interval", "0")
        .station(station());
    let mut host = SimHost::start(&config.to_toml());
    host.wait_connected();
    host.expect_disconnected();
    host.wait_connected();
    host.quit_ok();
    broker.wait_scripts();
    let stderr = host.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("ended: the broker closed the connection"))
        .unwrap_or_else(|| panic!("the loss is logged\n{stderr}"));
    assert!(line.starts_with("WARN "), "{line}");
}

#[test]
fn non_finite_writes_are_refused_and_never_published() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("client_id", "finite")
        .param("publish_qos", "QoS_1")
        .station(
            StationConfig::new("st", "st/x")
                .tag_with_default("topic", "OUT_TOPIC", "TxtO", "st/cmd")
                .tag("sp", "OUT_VALUE", "Ao")
                .tag("delay", "OUT_VALUE", "ToR"),
        );
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for (tag, value) in [
        ("sp", "nan"),
        ("sp", "NaN"),
        ("sp", "inf"),
        ("sp", "-inf"),
        ("sp", "infinity"),
        ("delay", "inf"),
        ("delay", "-NaN"),
    ] {
        host.send(&format!("write st {tag} {value}"));
        let e = host.expect_write("st", tag);
        let report = host.report();
        assert_eq!(
            ev::write_ok(&e),
            Some(false),
            "{tag} = {value}: {e}\n{report}"
        );
        let error = ev::field(&e, "error");
        assert!(
            error.contains(&format!("tag 'st.{tag}'")) && error.contains(value),
            "the failure names the tag and the value: {error}"
        );
    }
    host.send("write st sp 1.5");
    let e = host.expect_write("st", "sp");
    assert_eq!(ev::write_ok(&e), Some(true), "{e}\n{}", host.report());
    host.quit_ok();
    let log = broker.log();
    assert_eq!(
        log.matches("Received PUBLISH from finite").count(),
        1,
        "only the finite value is published\n{log}"
    );
}

/// The same against a real broker that serves each connection on its own task (rumqttd): the
/// will topic sees nothing before a sentinel the test publishes after three reconnects. (On this
/// machine rumqttd did not show the race even before the fix; the fake broker above does. This
/// one keeps the behaviour checked against a real broker.)
#[test]
fn rumqttd_publishes_no_will_when_the_line_reconnects_after_set() {
    let broker = ExternalBroker::rumqttd(env!("CARGO_BIN_EXE_e2e-rumqttd").as_ref());
    let port = broker.port();
    let config = LineConfig::new(port)
        .param("client_id", "no-will")
        .param_raw("keep_alive", "30")
        .param("will_flag", "YES")
        .param("will_topic", "reconnect/will")
        .param("will_message", "line lost")
        .station(station());
    let mut host = SimHost::start(&config.to_toml());
    host.attach_log("rumqttd", broker.log_path());
    host.wait_connected();
    let will = subscribe_one(port, "reconnect/will");
    for keep_alive in [31, 32, 33] {
        host.send(&format!("set keep_alive {keep_alive}"));
        host.expect_disconnected();
        host.wait_connected();
    }
    publish(port, "reconnect/will", b"sentinel", 1, false);
    let got = will.wait();
    assert_eq!(
        String::from_utf8_lossy(&got.payload),
        "sentinel",
        "the broker published the will\n{}",
        host.report()
    );
    host.quit_ok();
}
