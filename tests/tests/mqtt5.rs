//! MQTT 5 end to end (issue 13) against a private mosquitto: refusals with their reason codes
//! (a bad password, a publish the ACL denies, a refused subscription), message properties into
//! IN_* tags and the properties of writes as `mosquitto_sub -V mqttv5` shows them, and No Local;
//! against the fake broker: topic aliases and a server reference (mosquitto sends neither); shared
//! subscriptions split between a 3.1.1 and an MQTT 5 line; rumqttd's v5 listener.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mqtt_line_e2e::fake_broker::{FakeBroker, PacketType, Script};
use mqtt_line_e2e::{
    ev, mosquitto_password_file, wire, ExternalBroker, LineConfig, Mosquitto, MosquittoBuilder,
    SimHost, StationConfig, TIMEOUT,
};
use serde_json::Value;

fn v5(broker: &Mosquitto) -> LineConfig {
    LineConfig::new(broker.port()).param("protocol_version", "5")
}

/// A station writing to `topic` (OUT_TOPIC default) through `out_value`.
fn writer(topic: &str) -> StationConfig {
    StationConfig::new("cmd", "cmd/in")
        .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", topic)
        .tag("out_value", "OUT_VALUE", "TxtO")
}

fn write(host: &mut SimHost, value: &str) -> Value {
    host.send(&format!("write cmd out_value {value}"));
    host.expect_write("cmd", "out_value")
}

/// `mosquitto_pub -V mqttv5` with `args` (topic, properties...), which must succeed.
fn publish_v5(port: u16, args: &[&str]) {
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv5"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start mosquitto_pub: {e}"));
    assert!(
        out.status.success(),
        "mosquitto_pub {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_password_is_reported_with_its_reason_code() {
    let broker = MosquittoBuilder::default()
        .file("passwd", mosquitto_password_file("user", "right"))
        .config_line("allow_anonymous false")
        .config_line("password_file {dir}/passwd")
        .start();
    let config = v5(&broker)
        .param("user_name", "user")
        .param("password", "wrong")
        .station(StationConfig::new("s", "s/.*").inputs());
    let mut host = SimHost::start_on(&broker, &config);
    let e = host.expect("a disconnected event", ev::is_disconnected);
    // mosquitto 2.0 answers a wrong password with 0x87 Not authorized (0x86 is what the MQTT 5
    // table offers; the core's tests show it reported the same way).
    let reason = ev::field(&e, "reason");
    assert!(
        reason.starts_with("broker refused the connection: 0x8")
            && (reason.contains("0x86 Bad User Name or Password")
                || reason.contains("0x87 Not authorized")),
        "{reason}\n{}",
        host.report()
    );
    host.quit_ok();
}

#[test]
fn a_write_the_acl_denies_fails_with_0x87_and_an_allowed_one_succeeds() {
    let broker = MosquittoBuilder::default()
        .acl("topic read #\ntopic write allowed/#\n")
        .start();
    for (topic, ok) in [("allowed/x", true), ("denied/x", false)] {
        let config = v5(&broker)
            .param("topic_filter", "cmd/in")
            .param("publish_qos", "QoS_1")
            .station(writer(topic));
        let mut host = SimHost::start_on(&broker, &config);
        host.wait_connected();
        let w = write(&mut host, "on");
        assert_eq!(ev::write_ok(&w), Some(ok), "{w}\n{}", host.report());
        if !ok {
            let error = ev::field(&w, "error");
            assert!(error.contains("0x87 Not authorized"), "{error}");
        }
        host.quit_ok();
    }
}

#[test]
fn a_refused_subscription_is_a_line_error_with_its_reason() {
    let broker = MosquittoBuilder::default()
        .deny_subscribe("secret/#")
        .start();
    let config = v5(&broker)
        .param("topic_filter", "secret/#")
        .station(StationConfig::new("s", "secret/.*").inputs());
    let mut host = SimHost::start_on(&broker, &config);
    let e = host.expect("a disconnected event", ev::is_disconnected);
    let reason = ev::field(&e, "reason");
    assert!(
        reason.contains("secret/#") && reason.contains("0x87 Not authorized"),
        "{reason}\n{}",
        host.report()
    );
    host.quit_ok();
}

/// A running MQTT 5 line on a new mosquitto with station `s` on `plant/.*`: `data` (IN_DATA)
/// and a tag for each message property that [`publish_with_every_property`] sets.
fn property_tag_line() -> (Mosquitto, SimHost) {
    let broker = Mosquitto::start();
    let station = StationConfig::new("s", "plant/.*")
        .tag("data", "IN_DATA", "TxtI")
        .tag("site", "IN_PROPERTY=site", "TxtI")
        .tag("ctype", "IN_CONTENT_TYPE", "TxtI")
        .tag("reply", "IN_RESPONSE_TOPIC", "TxtI")
        .tag("corr", "IN_CORRELATION_DATA", "TxtI");
    let config = v5(&broker)
        .param("topic_filter", "plant/#")
        .station(station);
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    (broker, host)
}

/// Publishes `message` on `plant/a` (with `more` options of mosquitto_pub) with the user
/// property `site` = `north`, content type `text/plain`, response topic `replies/a` and
/// correlation data `ab`.
fn publish_with_every_property(port: u16, message: &str, more: &[&str]) {
    let mut args = vec!["-t", "plant/a", "-m", message];
    args.extend(more);
    args.extend([
        "-D",
        "publish",
        "user-property",
        "site",
        "north",
        "-D",
        "publish",
        "content-type",
        "text/plain",
        "-D",
        "publish",
        "response-topic",
        "replies/a",
        "-D",
        "publish",
        "correlation-data",
        "ab",
    ]);
    publish_v5(port, &args);
}

#[test]
fn message_properties_fill_the_property_tags() {
    let (broker, mut host) = property_tag_line();
    publish_with_every_property(broker.port(), "42", &["-q", "1"]);
    host.expect_value_eq("s", "site", "north");
    host.expect_value_eq("s", "ctype", "text/plain");
    host.expect_value_eq("s", "reply", "replies/a");
    host.expect_value_eq("s", "corr", "6162");
    host.expect_value_eq("s", "data", "42");
    host.quit_ok();
}

/// A 3.1.1 publisher's message (no properties at all) after one with every property: the
/// property tags become invalid instead of keeping the first message's values.
#[test]
fn a_message_without_properties_invalidates_the_property_tags() {
    let (broker, mut host) = property_tag_line();
    publish_with_every_property(broker.port(), "request", &[]);
    host.expect_value_eq("s", "corr", "6162");
    host.expect_value_eq("s", "data", "request");
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-V", "mqttv311", "-t", "plant/a", "-m", "plain"])
        .output()
        .unwrap_or_else(|e| panic!("cannot start mosquitto_pub: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    host.expect_value_eq("s", "data", "plain");
    for tag in ["site", "ctype", "reply", "corr"] {
        let e = host
            .events_where(|e| ev::is_value(e, "s", tag))
            .pop()
            .unwrap_or_else(|| panic!("no value of {tag}\n{}", host.report()));
        assert_eq!(
            e["valid"],
            Value::Bool(false),
            "{tag}: {e}\n{}",
            host.report()
        );
    }
    host.quit_ok();
}

/// A `mosquitto_sub -V mqttv5` printing one message with its user properties, message expiry and
/// content type; returns the line once it arrives. The subscription is ready when the broker
/// logged it.
fn sub_v5(broker: &Mosquitto, topic: &str) -> mpsc::Receiver<String> {
    let mut child = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1"])
        .args([
            "-p",
            &broker.port().to_string(),
            "-V",
            "mqttv5",
            "-i",
            "props-sub",
        ])
        .args(["-t", topic, "-q", "1", "-C", "1", "-W", "20"])
        .args(["-F", "%p|%P|%E|%C"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start mosquitto_sub: {e}"));
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take();
    std::thread::spawn(move || {
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        }
        let _ = child.wait();
    });
    broker.wait_log("the subscriber's SUBSCRIBE", |log| {
        log.contains("Received SUBSCRIBE from props-sub")
    });
    rx
}

#[test]
fn writes_carry_user_properties_expiry_and_content_type() {
    let broker = Mosquitto::start();
    let station = writer("out/props")
        .param("content_type", "text/plain")
        .tag_with_default("site", "OUT_PROPERTY=site", "TxtO", "north");
    let config = v5(&broker)
        .param("topic_filter", "cmd/in")
        .param("publish_qos", "QoS_1")
        .param("message_expiry_interval", "600")
        .station(station);
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    let rx = sub_v5(&broker, "out/props");
    let w = write(&mut host, "on");
    assert_eq!(ev::write_ok(&w), Some(true), "{w}");
    let line = rx
        .recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("nothing arrived\n{}", host.report()));
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(fields[0], "on", "{line}");
    assert!(
        fields[1].contains("site") && fields[1].contains("north"),
        "{line}"
    );
    // The broker forwards the remaining expiry: at most what was set, and some of it left.
    let expiry: u32 = fields[2].trim().parse().unwrap_or(0);
    assert!((1..=600).contains(&expiry), "{line}");
    assert_eq!(fields[3], "text/plain", "{line}");
    host.quit_ok();
}

#[test]
fn no_local_keeps_the_lines_own_writes_away() {
    let broker = Mosquitto::start();
    let station = StationConfig::new("loop", "loop/.*")
        .tag("data", "IN_DATA", "TxtI")
        .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "loop/own")
        .tag("out_value", "OUT_VALUE", "TxtO");
    let config = v5(&broker)
        .param("topic_filter", "loop/#")
        .param("publish_qos", "QoS_1")
        .param("no_local", "YES")
        .station(station);
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    host.send("write loop out_value own-write");
    let w = host.expect_write("loop", "out_value");
    assert_eq!(ev::write_ok(&w), Some(true), "{w}");
    // A message from someone else after it arrives; the line's own write never does.
    publish_v5(
        broker.port(),
        &["-t", "loop/other", "-m", "marker", "-q", "1"],
    );
    host.expect_value_eq("loop", "data", "marker");
    let own = host.events_where(|e| ev::is_value_of(e, "loop", "data", &"own-write".into()));
    assert!(own.is_empty(), "{own:?}\n{}", host.report());
    host.quit_ok();
}

/// The fake broker (MQTT 5 bytes written out): a topic alias set and then used, then a
/// DISCONNECT 0x9C naming a second broker, where the line goes next.
#[test]
fn aliases_are_resolved_and_a_server_reference_is_followed() {
    let spare = FakeBroker::start(vec![Script::new()
        .expect(PacketType::Connect)
        .send_hex("20 03 00 00 00")
        .expect(PacketType::Subscribe)
        // The session's second packet id: the first went to the first broker's SUBSCRIBE.
        .send_hex("90 04 0002 00 01")
        .read_until(PacketType::Disconnect)]);
    let reference = format!("127.0.0.1:{}", spare.port());
    let mut disconnect = vec![0x9C];
    let mut props = vec![0x1C];
    props.extend_from_slice(&(reference.len() as u16).to_be_bytes());
    props.extend_from_slice(reference.as_bytes());
    disconnect.push(props.len() as u8);
    disconnect.extend_from_slice(&props);
    let first = FakeBroker::start(vec![Script::new()
        .expect(PacketType::Connect)
        .send_hex("20 03 00 00 00")
        .expect(PacketType::Subscribe)
        .send_hex("90 04 0001 00 01")
        // "one" to al/a setting alias 1, then "two" by alias 1 alone.
        .send_hex("30 0D 0004 616c2f61 03 230001 6f6e65")
        .send_hex("30 09 0000 03 230001 74776f")
        .send(&wire::frame(0xE0, &disconnect))
        .expect_close(Duration::from_secs(10))]);
    let config = LineConfig::new(first.port())
        .param("protocol_version", "5")
        .param("topic_filter", "al/#")
        .station(StationConfig::new("al", "al/.*").inputs());
    let mut host = SimHost::start(&config.to_toml());
    host.expect_value_eq("al", "data", "one");
    let two = host.expect_value_eq("al", "data", "two");
    assert!(two.is_object());
    host.expect_value_eq("al", "topic", "al/a");
    let e = host.expect("a disconnected event", ev::is_disconnected);
    let reason = ev::field(&e, "reason");
    assert!(reason.contains("0x9c Use another server"), "{reason}");
    let spare_at = format!("127.0.0.1:{}", spare.port());
    host.expect("connected to the spare", |e| {
        ev::is_connected(e) && ev::field(e, "host") == spare_at
    });
    host.quit_ok();
    first.wait_scripts();
    spare.wait_scripts();
}

/// rumqttd's MQTT 5 listener: connect and subscribe, a message in, a QoS 1 write out.
#[test]
fn rumqttd_v5_receives_and_writes() {
    let broker = ExternalBroker::rumqttd_v5(env!("CARGO_BIN_EXE_e2e-rumqttd").as_ref());
    let station = writer("v5/out").tag("data", "IN_DATA", "TxtI");
    let config = LineConfig::new(broker.port())
        .param("protocol_version", "5")
        .param("keep_alive", "30")
        .param("topic_filter", "cmd/in")
        .param("publish_qos", "QoS_1")
        .station(station);
    let mut host = SimHost::start(&config.to_toml());
    host.wait_connected();
    publish_v5(broker.port(), &["-t", "cmd/in", "-m", "hello", "-q", "1"]);
    host.expect_value_eq("cmd", "data", "hello");
    let w = write(&mut host, "42");
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{}", host.report());
    host.quit_ok();
}

/// Shared subscriptions: two lines (one 3.1.1, one MQTT 5) in two processes subscribe
/// `$share/scada/shared/#`; mosquitto gives each message to one of them, routed by its own
/// topic, so together they see every message exactly once.
#[test]
fn a_shared_subscription_splits_one_stream_between_two_lines() {
    let broker = Mosquitto::start();
    let mut hosts: Vec<SimHost> = ["3.1.1", "5"]
        .iter()
        .map(|version| {
            let config = LineConfig::new(broker.port())
                .param("protocol_version", version)
                .param("client_id", &format!("share-{version}"))
                .param("topic_filter", "$share/scada/shared/#")
                .station(StationConfig::new("s", "shared/.*").inputs());
            let mut host = SimHost::start_on(&broker, &config);
            host.wait_connected();
            host
        })
        .collect();
    const COUNT: usize = 20;
    for i in 0..COUNT {
        publish_v5(
            broker.port(),
            &[
                "-t",
                &format!("shared/{i}"),
                "-m",
                &format!("m{i}"),
                "-q",
                "1",
            ],
        );
    }
    let is_data = |e: &Value| ev::is_value(e, "s", "data");
    let mut seen: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let deadline = std::time::Instant::now() + TIMEOUT;
    while seen.iter().map(Vec::len).sum::<usize>() < COUNT {
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen:?} of {COUNT} messages arrived"
        );
        for (k, host) in hosts.iter_mut().enumerate() {
            if let Some(e) = host.try_expect_within(Duration::from_millis(50), is_data) {
                seen[k].push(e["value"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    let mut all: Vec<String> = seen.concat();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), COUNT, "each message once: {seen:?}");
    assert!(
        seen.iter().all(|s| !s.is_empty()),
        "both lines got part of the stream: {seen:?}"
    );
    for host in &mut hosts {
        host.quit_ok();
    }
}

// ---------------------------------------------------------------------------------------------
// Persistent sessions and Receive Maximum
// ---------------------------------------------------------------------------------------------

/// `mosquitto_pub -V mqttv5` of one message at QoS `qos` to `topic`.
fn publish_qos(broker: &Mosquitto, topic: &str, payload: &str, qos: u8) {
    let qos = qos.to_string();
    publish_v5(broker.port(), &["-t", topic, "-m", payload, "-q", &qos]);
}

/// QoS 2 exactly once in a persistent MQTT 5 session (`clean_session = NO`: no Clean Start and
/// a Session Expiry that outlives the connection). A stream is split by a broker restart
/// (SIGTERM, so mosquitto saves the session); a message whose PUBREC the line still owes (its
/// station did not confirm it) is re-sent with DUP by the restarted broker and not shown again.
/// Then the line goes away (every station off: it disconnects) while more is published, and those
/// messages arrive once it is back, because the broker kept the session.
#[test]
fn qos2_arrives_exactly_once_across_a_restart_and_an_absence_in_a_persistent_session() {
    let mut broker = Mosquitto::builder().persistence().start();
    let config = v5(&broker)
        .param("client_id", "q2-v5")
        .param("clean_session", "NO")
        .param("subscribe_qos", "QoS_2")
        .param("topic_filter", "q2/#")
        .station(StationConfig::new("q", "q2/x").inputs())
        .station(StationConfig::new("g", "q2/gated").inputs().ack_id());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    // mosquitto logs the protocol (p5) and the Clean Start flag (c0) of each CONNECT.
    broker.wait_log("an MQTT 5 CONNECT without Clean Start", |log| {
        log.contains("as q2-v5 (p5, c0")
    });
    for m in ["a1", "a2", "a3"] {
        publish_qos(&broker, "q2/x", m, 2);
    }
    host.expect_value_eq("q", "data", "a3");
    publish_qos(&broker, "q2/gated", "held", 2);
    let held = host.expect_message("g", "held");
    // mosquitto logs an MQTT 5 PUBREC without its reason code: `(Mid: 4)`.
    let pubrec = format!("Received PUBREC from q2-v5 (Mid: {held})");
    let report = host.report();
    assert!(
        !broker.log().contains(&pubrec),
        "a PUBREC left before the host confirmed\n{report}"
    );

    host.restart_broker(&mut broker);
    broker.wait_log(
        "the re-sent PUBLISH (DUP) of the unconfirmed message",
        |log| log.contains("Sending PUBLISH to q2-v5 (d1, q2"),
    );
    for m in ["b1", "b2", "b3"] {
        publish_qos(&broker, "q2/x", m, 2);
    }
    // b3 was published after the redelivery: by now the line has handled it.
    host.expect_value_eq("q", "data", "b3");
    host.confirm("g", held);
    broker.wait_log("PUBREC and PUBCOMP of the confirmed message", |log| {
        log.contains(&pubrec) && log.contains(&format!("Received PUBCOMP from q2-v5 (Mid: {held}"))
    });

    // Away: with every station off the line disconnects; the broker keeps the session.
    host.send("station q off");
    host.expect_station("q", "off");
    host.send("station g off");
    let e = host.expect_disconnected();
    assert_eq!(
        ev::field(&e, "reason"),
        "every station is off or simulated",
        "{e}\n{}",
        host.report()
    );
    broker.wait_log("the line's DISCONNECT", |log| {
        log.contains("Received DISCONNECT from q2-v5")
    });
    for m in ["c1", "c2", "c3"] {
        publish_qos(&broker, "q2/x", m, 2);
    }
    host.send("station q on");
    host.wait_connected();
    host.expect_value_eq("q", "data", "c3");
    // Published after the reconnect, delivered after whatever the session still held.
    publish_qos(&broker, "q2/x", "d1", 2);
    host.expect_value_eq("q", "data", "d1");
    host.quit_ok();

    let report = host.report();
    assert_eq!(
        broker.log().matches("as q2-v5 (p5, c0").count(),
        3,
        "three connections, each resuming the session\n{report}"
    );
    assert_eq!(
        host.data_values("q"),
        ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "c3", "d1"],
        "each QoS 2 message once, in order\n{report}"
    );
    assert_eq!(host.data_values("g"), ["held"], "{report}");
}

/// The most PUBLISH packets to `client` the broker had unacknowledged at any one time, read from
/// its log (`log_type all` logs each PUBLISH it sends and each PUBACK it receives).
fn most_unacknowledged(log: &str, client: &str) -> usize {
    let sent = format!("Sending PUBLISH to {client} ");
    let acked = format!("Received PUBACK from {client} ");
    let (mut now, mut most) = (0usize, 0usize);
    for line in log.lines() {
        if line.contains(&sent) {
            now += 1;
            most = most.max(now);
        } else if line.contains(&acked) {
            now = now.saturating_sub(1);
        }
    }
    most
}

/// Receive Maximum 2 with an ACK_ID station whose host does not confirm: the broker sends two
/// QoS 1 messages and waits; the line shows the first and holds the second, and confirmations
/// (PUBACKs) let the rest in. Every message is shown once, in order, one at a time, and the
/// connection stays up. mosquitto 2.0 later exceeds the window (its in-flight count drifts after
/// PUBACKs); the line then warns once instead of closing with 0x93 (docs/decisions.md).
#[test]
fn receive_maximum_bounds_what_waits_for_ack_id_and_nothing_is_lost() {
    const MESSAGES: [&str; 6] = ["m1", "m2", "m3", "m4", "m5", "m6"];
    let broker = Mosquitto::start();
    let config = v5(&broker)
        .param("client_id", "rm-2")
        .param("receive_maximum", "2")
        .param("topic_filter", "rm/#")
        .station(StationConfig::new("st", "rm/x").inputs().ack_id());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    // Each publication returns once the broker took it (and routed it): after the last one the
    // broker has decided what to send now and what to queue.
    for m in MESSAGES {
        publish_qos(&broker, "rm/x", m, 1);
    }
    let mut id = host.expect_message("st", "m1");
    let log = broker.wait_log("the window of two sent to rm-2", |log| {
        log.matches("Sending PUBLISH to rm-2 ").count() >= 2
    });
    let report = host.report();
    assert_eq!(
        (
            log.matches("Sending PUBLISH to rm-2 ").count(),
            log.matches("Received PUBACK from rm-2 ").count()
        ),
        (2, 0),
        "two sent, the rest queued by the broker, nothing acknowledged before ACK_ID\n{report}"
    );
    assert_eq!(
        host.data_values("st"),
        ["m1"],
        "one message shown until the host confirms it\n{report}"
    );

    for next in &MESSAGES[1..] {
        assert!(id > 0, "a QoS 1 message has its packet id as IN_ID: {id}");
        host.confirm("st", id);
        id = host.expect_message("st", next);
        let report = host.report();
        assert_eq!(
            host.data_values("st").last().map(String::as_str),
            Some(*next),
            "one message shown per confirmation\n{report}"
        );
    }
    host.confirm("st", id);
    let log = broker.wait_log("a PUBACK for every message", |log| {
        log.matches("Received PUBACK from rm-2 ").count() == MESSAGES.len()
    });
    host.quit_ok();

    let report = host.report();
    assert_eq!(
        host.data_values("st"),
        MESSAGES,
        "each message once, in order\n{report}"
    );
    assert!(
        host.events_where(|e| e.get("duplicate") == Some(&Value::Bool(true)))
            .is_empty(),
        "nothing was delivered twice\n{report}"
    );
    let stderr = host.stderr();
    assert!(
        host.events_where(ev::is_disconnected).is_empty()
            && log.matches("as rm-2 (p5").count() == 1
            && !log.contains("Client rm-2 closed its connection"),
        "the line's one connection stayed up\n{report}"
    );
    // The broker counts a PUBACK from when it reads it, the line from when it sends it: the
    // broker's log can show an overrun the line never saw, not the other way round.
    let overrun = stderr.contains("the broker sent more than the Receive Maximum of 2");
    assert!(
        !overrun || most_unacknowledged(&log, "rm-2") > 2,
        "a warning only when the broker's log shows more than 2 unacknowledged\n{report}"
    );
}
