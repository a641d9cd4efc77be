//! Issue 24, end to end: per-station subscriptions (`subscribe_station_address`) against
//! mosquitto, compressed writes (`compress_writes`) from one sim-host to another through an
//! MQTT 5 mosquitto, and `auth = azure-sas` against the fake broker, which records the CONNECT's
//! user name and password.

use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use mqtt_line_e2e::fake_broker::{FakeBroker, PacketType, Script};
use mqtt_line_e2e::{ev, subscribe_one, LineConfig, Mosquitto, SimHost, StationConfig};
use sha2::Sha256;

/// A v5 line writing gzip: mosquitto carries it with its Content-Type, a 3.1.1 subscriber sees
/// the gzip bytes, and a second sim-host (MQTT 5, JSON) reads the value back.
#[test]
fn a_compressed_write_is_read_back_by_another_line() {
    let broker = Mosquitto::start();
    let reader = LineConfig::new(broker.port())
        .param("protocol_version", "5")
        .param("client_id", "zip-reader")
        .param("payload_type", "JSON")
        .param("topic_filter", "zip/#")
        .station(
            StationConfig::new("r", "zip/out")
                .tag("v", "JA=v", "Ai")
                .tag("ct", "IN_CONTENT_TYPE", "TxtI"),
        );
    let mut reading = SimHost::start_on(&broker, &reader);
    reading.wait_connected();
    let writer = LineConfig::new(broker.port())
        .param("protocol_version", "5")
        .param("client_id", "zip-writer")
        .param("compress_writes", "YES")
        .param("topic_filter", "cmd/in")
        .station(
            StationConfig::new("w", "cmd/in")
                .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "zip/out")
                .tag("out_value", "OUT_VALUE", "TxtO"),
        );
    let mut writing = SimHost::start_on(&broker, &writer);
    writing.wait_connected();
    let sub = subscribe_one(broker.port(), "zip/out");
    writing.send(r#"write w out_value {"v": 21.5, "unit": "C"}"#);
    let w = writing.expect_write("w", "out_value");
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{}", writing.report());

    let got = sub.wait();
    assert_eq!(&got.payload[..2], [0x1f, 0x8b], "{got:?}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&got.payload[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, r#"{"v": 21.5, "unit": "C"}"#);
    reading.expect_value_eq("r", "ct", "application/gzip");
    reading.expect_value_eq("r", "v", 21.5);
    writing.quit_ok();
    reading.quit_ok();
}

/// The SAS token the test expects, computed here apart from the line's code.
fn expected_token(host: &str, device: &str, key_b64: &str, expiry: u64) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let sr = enc(&format!("{host}/devices/{device}"));
    let key = base64::engine::general_purpose::STANDARD
        .decode(key_b64)
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{sr}\n{expiry}").as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!(
        "SharedAccessSignature sr={sr}&sig={}&se={expiry}",
        enc(&sig)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The key from a file; the first CONNECT carries IoT Hub's user name and a token valid for
/// `sas_ttl`; after four fifths of it the line reconnects with a fresh token; the key is never
/// in sim-host's output.
#[test]
fn azure_sas_user_name_token_and_renewal_at_the_fake_hub() {
    const KEY: &str = "q+DKVojmMz014RjAwpNGZbAkdOocSVWMKPOccLfUmLE=";
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("device.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let broker = FakeBroker::start(vec![
        Script::new().handshake().read_until(PacketType::Disconnect),
        Script::new().handshake().read_until(PacketType::Disconnect),
    ]);
    let config = LineConfig::new(broker.port())
        .param("client_id", "dev-1")
        .param("auth", "azure-sas")
        .param("sas_key_file", &key_file.to_string_lossy())
        .param("sas_ttl", "10")
        .param("topic_filter", "devices/dev-1/messages/devicebound/#")
        .station(StationConfig::new("s", "devices/.*").inputs());
    let before = unix_now();
    let mut host = SimHost::start(&config.to_toml());
    host.wait_connected();
    let after = unix_now();
    // The renewal: a second connection after 8 s of the 10 s token.
    host.expect_within(
        "the reconnect with a fresh token",
        Duration::from_secs(30),
        |e| ev::is_disconnected(e) && ev::field(e, "reason").contains("SAS token is renewed"),
    );
    host.wait_connected();
    host.quit_ok();
    broker.wait_scripts();

    let logins = broker.logins();
    assert_eq!(logins.len(), 2, "{logins:?}");
    let mut expiries = Vec::new();
    for (user, password) in &logins {
        assert_eq!(user, "127.0.0.1/dev-1/?api-version=2021-04-12");
        let se: u64 = password
            .rsplit_once("&se=")
            .and_then(|(_, se)| se.parse().ok())
            .unwrap_or_else(|| panic!("no se in {password}"));
        assert_eq!(*password, expected_token("127.0.0.1", "dev-1", KEY, se));
        expiries.push(se);
    }
    assert!(
        (before + 10..=after + 10).contains(&expiries[0]),
        "{expiries:?} {before} {after}"
    );
    assert!(
        expiries[1] >= expiries[0] + 7,
        "a fresh token: {expiries:?}"
    );
    let output = format!("{}\n{}", host.report(), host.stderr());
    assert!(
        !output.contains(KEY) && !output.contains("sig="),
        "{output}"
    );
}

/// Two stations subscribe their address (one exact, one an expression), a third does not and
/// the line has no `topic_filter`: mosquitto gets the two filters only, so the third station's
/// topic never arrives; switching a station off is an UNSUBSCRIBE in mosquitto's log, and on
/// again a SUBSCRIBE.
#[test]
fn per_station_subscriptions_follow_the_stations() {
    let broker = Mosquitto::builder().start();
    let subscribing = |name: &str, address: &str| {
        StationConfig::new(name, address)
            .param("subscribe_station_address", "YES")
            .inputs()
    };
    let config = LineConfig::new(broker.port())
        .param("client_id", "per-station")
        .station(subscribing("a", "plant/a/temp"))
        .station(subscribing("b", "sensors/[^/]+/temp"))
        .station(StationConfig::new("c", "other/x").inputs());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    let log = broker.wait_log("the stations' SUBSCRIBE", |log| {
        log.contains("Received SUBSCRIBE from per-station")
            && log.contains("\tplant/a/temp (QoS 1)")
            && log.contains("\tsensors/+/temp (QoS 1)")
    });
    assert!(
        !log.contains("\t# (QoS"),
        "no catch-all subscription:\n{log}"
    );

    // other/x first: it would arrive before the others if the line were subscribed to it.
    mqtt_line_e2e::publish(broker.port(), "other/x", b"c1", 1, false);
    mqtt_line_e2e::publish(broker.port(), "plant/a/temp", b"a1", 1, false);
    mqtt_line_e2e::publish(broker.port(), "sensors/s9/temp", b"b1", 1, false);
    host.expect_value_eq("a", "data", "a1");
    host.expect_value_eq("b", "data", "b1");

    host.send("station a off");
    host.expect_station("a", "off");
    broker.wait_log("the UNSUBSCRIBE of station a", |log| {
        log.contains("Received UNSUBSCRIBE from per-station")
    });
    host.send("station a on");
    broker.wait_log("station a's SUBSCRIBE again", |log| {
        log.matches("\tplant/a/temp (QoS 1)").count() == 2
    });
    mqtt_line_e2e::publish(broker.port(), "plant/a/temp", b"a3", 1, false);
    host.expect_value_eq("a", "data", "a3");
    host.quit_ok();
    let report = host.report();
    assert!(host.data_values("c").is_empty(), "{report}");
    assert_eq!(host.data_values("a"), ["a1", "a3"], "{report}");
}
