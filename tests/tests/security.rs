//! Security end to end: native TLS (server verification, host names, client certificates),
//! MQTT over WebSockets (ws and wss), and the password (from the configuration, an environment
//! variable or a file; never printed).
//!
//! Certificates are made by `openssl` for each test in a temporary directory ([`Pki`]); every
//! broker is a mosquitto of the test's own, with extra listeners on free loopback ports. The
//! plain listener every broker has stays anonymous, for the publishing side of the tests.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use mqtt_line_e2e::{
    check_config, ev, free_port, mosquitto_password_file, plugin_path, publish, run_to_exit,
    subscribe_one, try_publish, LineConfig, Mosquitto, MosquittoBuilder, Pki, SimHost,
    StationConfig, CLIENT_CN, TIMEOUT, WEBSOCKET_LISTENER,
};

/// A station `s` on `sec/value` with the input tags and an OUT_VALUE writing to `sec/out`.
fn station() -> StationConfig {
    StationConfig::new("s", "sec/value")
        .inputs()
        .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "sec/out")
        .tag("out_value", "OUT_VALUE", "TxtO")
}

/// A broker with a TLS listener on `tls_port` (plus `more` lines for that listener).
fn tls_broker(pki: &Pki, tls_port: u16, cert: &str, key: &str, more: &[&str]) -> Mosquitto {
    let mut lines = pki.tls_listener_lines(cert, key);
    lines.extend(more.iter().map(|l| l.to_string()));
    Mosquitto::builder().listener(tls_port, lines).start()
}

/// A new [`Pki`] and a broker with a TLS listener on a free port serving `cert`/`key` (plus
/// `more` lines for that listener): the set-up of the TLS and wss tests.
fn pki_and_tls_broker(cert: &str, key: &str, more: &[&str]) -> (Pki, u16, Mosquitto) {
    let pki = Pki::generate();
    let tls_port = free_port();
    let broker = tls_broker(&pki, tls_port, cert, key, more);
    (pki, tls_port, broker)
}

/// The line over TLS to 127.0.0.1:`tls_port` trusting `pki`'s CA file `ca` (`ca.crt`, or
/// `other-ca.crt` to be refused), with the [`station`].
fn tls_line(pki: &Pki, tls_port: u16, ca: &str) -> LineConfig {
    LineConfig::new(tls_port)
        .param("tls", "YES")
        .param("tls_ca_file", &pki.path_text(ca))
        .station(station())
}

/// Publishes on the plain listener and waits for the value; then a QoS 1 write through the line
/// reaches a subscriber on the plain listener.
fn value_in_and_write_out(broker: &Mosquitto, host: &mut SimHost, text: &str) {
    publish(broker.port(), "sec/value", text.as_bytes(), 1, false);
    host.expect_value_eq("s", "data", text);
    let sub = subscribe_one(broker.port(), "sec/out");
    let out = format!("{text} back");
    host.send(&format!("write s out_value {out}"));
    let w = host.expect_write("s", "out_value");
    let report = host.report();
    assert_eq!(ev::write_ok(&w), Some(true), "{w}\n{report}");
    let got = sub.wait();
    assert_eq!(got.payload, out.as_bytes(), "{got:?}\n{report}");
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

#[test]
fn tls_with_the_test_ca_connects_receives_and_writes() {
    let (pki, tls_port, broker) = pki_and_tls_broker("server.crt", "server.key", &[]);
    let config = tls_line(&pki, tls_port, "ca.crt")
        .param("publish_qos", "QoS_1")
        .param("topic_filter", "sec/#");
    let mut host = SimHost::start_on(&broker, &config);
    let connected = host.wait_connected();
    assert_eq!(
        ev::field(&connected, "host"),
        format!("127.0.0.1:{tls_port}"),
        "{connected}"
    );
    // The line's client came in on the TLS listener.
    broker.wait_log("a client connected on the TLS port", |log| {
        log.contains(&format!("on port {tls_port}.")) && log.contains(" as D2000kom (p2, c0, k0)")
    });
    value_in_and_write_out(&broker, &mut host, "over tls");
    host.quit_ok();
}

/// The line to `localhost` over TLS, trusting `pki`'s CA.
fn tls_line_to_localhost(pki: &Pki, tls_port: u16) -> LineConfig {
    tls_line(pki, tls_port, "ca.crt").host("localhost")
}

#[test]
fn tls_checks_the_dns_name_localhost_too() {
    let (pki, tls_port, broker) = pki_and_tls_broker("server.crt", "server.key", &[]);
    let config = tls_line_to_localhost(&pki, tls_port);
    let mut host = SimHost::start_on(&broker, &config);
    let connected = host.wait_connected();
    assert_eq!(
        ev::field(&connected, "host"),
        format!("localhost:{tls_port}"),
        "{connected}"
    );
    publish(broker.port(), "sec/value", b"by name", 1, false);
    host.expect_value_eq("s", "data", "by name");
    host.quit_ok();
}

/// A broker whose TLS listener requires a client certificate from `pki`'s CA and takes its
/// common name as the user name.
fn client_cert_broker(pki: &Pki, tls_port: u16) -> Mosquitto {
    tls_broker(
        pki,
        tls_port,
        "server.crt",
        "server.key",
        &["require_certificate true", "use_identity_as_username true"],
    )
}

/// The line of `pki` with the client certificate and key files named.
fn client_cert_line(pki: &Pki, tls_port: u16, cert: &str, key: &str) -> LineConfig {
    tls_line(pki, tls_port, "ca.crt")
        .param("tls_client_cert_file", &pki.path_text(cert))
        .param("tls_client_key_file", &pki.path_text(key))
        .param("publish_qos", "QoS_1")
}

/// mosquitto_sub over TLS with `pki`'s client certificate receives the retained message of
/// `topic` (which the broker only sends once it accepted the certificate).
fn mosquitto_sub_with_client_cert(pki: &Pki, tls_port: u16, topic: &str) -> String {
    let out = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &tls_port.to_string(),
            "-V",
            "mqttv311",
        ])
        .arg("--cafile")
        .arg(pki.path("ca.crt"))
        .arg("--cert")
        .arg(pki.path("client.crt"))
        .arg("--key")
        .arg(pki.path("client.key"))
        .args(["-t", topic, "-C", "1", "-W", "20"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run mosquitto_sub: {e} (install mosquitto-clients)"));
    assert!(
        out.status.success(),
        "mosquitto_sub with the recipe's client certificate failed ({})\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The line with `pki`'s `client.crt` and `client.key` connects to `broker`, which names the
/// client by the certificate's common name, and values and writes flow.
fn client_cert_round_trip(pki: &Pki, broker: &Mosquitto, tls_port: u16, text: &str) {
    let config = client_cert_line(pki, tls_port, "client.crt", "client.key");
    let mut host = SimHost::start_on(broker, &config);
    host.wait_connected();
    broker.wait_log("the certificate's CN as the user name", |log| {
        log.contains(&format!(" as D2000kom (p2, c0, k0, u'{CLIENT_CN}')"))
    });
    value_in_and_write_out(broker, &mut host, text);
    host.quit_ok();
}

#[test]
fn tls_client_certificate_required_and_supplied() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let broker = client_cert_broker(&pki, tls_port);
    client_cert_round_trip(&pki, &broker, tls_port, "with a client certificate");
}

#[test]
fn tls_client_certificate_required_but_missing_is_reported() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let broker = client_cert_broker(&pki, tls_port);
    let config = tls_line(&pki, tls_port, "ca.crt");
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("the missing client certificate", |r| {
        r.to_lowercase().contains("certificate")
    });
    host.quit_ok();
}

/// The client certificate made exactly by mosquitto's documented openssl recipe, an X.509 v1
/// certificate, works for the line as it does for mosquitto_sub.
#[test]
fn tls_client_certificate_from_the_mosquitto_recipe_v1_connects() {
    let pki = Pki::mosquitto_recipe();
    assert_eq!(
        pki.version_line("client.crt"),
        "Version: 1 (0x0)",
        "the recipe should give a v1 certificate here (OpenSSL 3.0); this test is about v1"
    );
    let tls_port = free_port();
    let broker = client_cert_broker(&pki, tls_port);
    // mosquitto_sub accepts the same files.
    publish(broker.port(), "sec/retained", b"for mosquitto_sub", 1, true);
    assert_eq!(
        mosquitto_sub_with_client_cert(&pki, tls_port, "sec/retained"),
        "for mosquitto_sub"
    );
    client_cert_round_trip(&pki, &broker, tls_port, "with the recipe's v1 certificate");
}

/// A broker certificate made exactly by the recipe (v1, CN only) cannot be checked against the
/// host name; the reason says so and what to do, instead of webpki's bare error name.
#[test]
fn tls_v1_broker_certificate_from_the_recipe_is_refused_with_what_to_do() {
    let pki = Pki::mosquitto_recipe();
    let tls_port = free_port();
    let broker = tls_broker(
        &pki,
        tls_port,
        "recipe-server.crt",
        "recipe-server.key",
        &[],
    );
    let config = tls_line_to_localhost(&pki, tls_port);
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("the v1 broker certificate and the fix", |r| {
        r.contains("TLS handshake") && r.contains("version 1") && r.contains("subjectAltName")
    });
    host.quit_ok();
}

/// Each row: the client certificate file, the key file, and what the `disconnected` reason must
/// say. Files are those of [`Pki::mosquitto_recipe`]; the TLS set-up fails before the handshake,
/// so a bare listener stands in for the broker.
#[test]
fn tls_unusable_client_certificates_and_keys_are_named_with_the_reason() {
    let pki = Pki::mosquitto_recipe();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let rows: &[(&str, &str, &[&str])] = &[
        (
            "client.crt",
            "other.key",
            &[
                "tls_client_key_file",
                "other.key",
                "is not the private key of the certificate",
            ],
        ),
        (
            "expired.crt",
            "client.key",
            &[
                "tls_client_cert_file",
                "expired.crt",
                "the certificate expired on",
            ],
        ),
        (
            "client.crt",
            "encrypted.key",
            &["encrypted.key", "is encrypted with a passphrase"],
        ),
        (
            "client.crt",
            "encrypted-legacy.key",
            &["encrypted-legacy.key", "is encrypted with a passphrase"],
        ),
        (
            "client.key",
            "client.key",
            &[
                "tls_client_cert_file",
                "holds no certificate",
                "PRIVATE KEY",
            ],
        ),
        (
            "client.crt",
            "client.crt",
            &["tls_client_key_file", "holds no private key", "CERTIFICATE"],
        ),
        (
            "client.der",
            "client.key",
            &["client.der", "holds no certificate", "binary DER"],
        ),
        (
            "garbage.crt",
            "client.key",
            &[
                "garbage.crt",
                "is not a valid X.509 certificate",
                "has tag 0x6e",
            ],
        ),
        (
            "missing.crt",
            "client.key",
            &["tls_client_cert_file", "missing.crt", "cannot be read"],
        ),
        (
            "client.crt",
            "missing.key",
            &["tls_client_key_file", "missing.key", "cannot be read"],
        ),
    ];
    for (cert, key, wants) in rows {
        let config = client_cert_line(&pki, port, cert, key);
        let mut host = SimHost::start(&config.to_toml());
        let what = format!("certificate {cert} with key {key}");
        let reason = host.expect_refusal(&what, |r| wants.iter().all(|w| r.contains(w)));
        assert!(
            !reason.contains("do not fit together"),
            "{what}: the old misleading reason: {reason}"
        );
        host.quit_ok();
    }
}

#[test]
fn tls_wrong_ca_is_refused_as_unknown_issuer() {
    let (pki, tls_port, broker) = pki_and_tls_broker("server.crt", "server.key", &[]);
    let config = tls_line(&pki, tls_port, "other-ca.crt");
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("the unknown issuer", |r| {
        r.contains("UnknownIssuer") && r.contains("TLS")
    });
    host.quit_ok();
}

#[test]
fn tls_without_ca_file_uses_the_system_roots_which_do_not_know_the_test_ca() {
    let (_pki, tls_port, broker) = pki_and_tls_broker("server.crt", "server.key", &[]);
    let config = LineConfig::new(tls_port)
        .param("tls", "YES")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    // With system roots: the test CA is unknown. Without any (a bare container): said so.
    host.expect_refusal("the unknown issuer or the missing system roots", |r| {
        r.contains("UnknownIssuer") || r.contains("no system CA certificates")
    });
    host.quit_ok();
}

#[test]
fn tls_host_name_mismatch_is_refused() {
    // Signed by the trusted CA, but for broker.elsewhere.test only.
    let (pki, tls_port, broker) = pki_and_tls_broker("elsewhere.crt", "elsewhere.key", &[]);
    let config = tls_line(&pki, tls_port, "ca.crt");
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("the name the certificate is not valid for", |r| {
        r.contains("TLS") && r.contains("not valid for name") && r.contains("127.0.0.1")
    });
    host.quit_ok();
}

/// A plain TCP listener on port 8883 of some loopback address (127.0.0.2 and up), if one is free.
fn listener_on_8883() -> Option<TcpListener> {
    (2..=40u8).find_map(|last| TcpListener::bind((Ipv4Addr::new(127, 0, 0, last), 8883)).ok())
}

#[test]
fn tls_port_defaults_to_8883() {
    let Some(listener) = listener_on_8883() else {
        panic!("no loopback address 127.0.0.2..40 has port 8883 free");
    };
    let ip = listener.local_addr().unwrap().ip().to_string();
    listener.set_nonblocking(true).unwrap();
    // No port in the configuration file.
    let config = format!(
        "[line]\nhost = \"{ip}\"\n[line.parameters]\ntls = \"YES\"\n\
         [[station]]\nname = \"s\"\naddress = \"sec/value\"\n"
    );
    let mut host = SimHost::start(&config);
    let mut stream = accept_within(&listener, &mut host, &format!("{ip}:8883"));
    // The first bytes are a TLS ClientHello: handshake record (22), version 3.x.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(head, [22, 3], "expected a TLS handshake record");
    drop(stream);
    let e = host.expect_disconnected();
    assert!(
        ev::field(&e, "reason").contains(&format!("{ip}:8883")),
        "{e}"
    );
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// WebSockets
// ---------------------------------------------------------------------------------------------

#[test]
fn websocket_to_mosquitto_receives_and_writes() {
    let ws_port = free_port();
    let broker = Mosquitto::builder()
        .listener(ws_port, WEBSOCKET_LISTENER)
        .start();
    let config = LineConfig::new(ws_port)
        .param("transport", "websocket")
        .param("publish_qos", "QoS_1")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    let connected = host.wait_connected();
    assert_eq!(
        ev::field(&connected, "host"),
        format!("127.0.0.1:{ws_port}")
    );
    broker.wait_log("the line's CONNECT", |log| {
        log.contains(" as D2000kom (p2, c0, k0)")
    });
    value_in_and_write_out(&broker, &mut host, "over websocket");
    host.quit_ok();
}

#[test]
fn wss_to_mosquitto_receives_and_writes() {
    let (pki, wss_port, broker) =
        pki_and_tls_broker("server.crt", "server.key", &WEBSOCKET_LISTENER);
    let config = tls_line(&pki, wss_port, "ca.crt")
        .param("transport", "websocket")
        .param("publish_qos", "QoS_1");
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    value_in_and_write_out(&broker, &mut host, "over wss");
    host.quit_ok();
}

#[test]
fn wss_with_a_wrong_ca_is_refused() {
    let (pki, wss_port, broker) =
        pki_and_tls_broker("server.crt", "server.key", &WEBSOCKET_LISTENER);
    let config = tls_line(&pki, wss_port, "other-ca.crt").param("transport", "websocket");
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("the unknown issuer", |r| r.contains("UnknownIssuer"));
    host.quit_ok();
}

/// The HTTP upgrade request the line sends, read by a listener of the test (which then closes).
fn upgrade_request(ws_path: Option<&str>) -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, free_port())).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let mut config = LineConfig::new(port)
        .param("transport", "websocket")
        .station(station());
    if let Some(path) = ws_path {
        config = config.param("ws_path", path);
    }
    let mut host = SimHost::start(&config.to_toml());
    let mut stream = accept_within(&listener, &mut host, &format!("127.0.0.1:{port}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
            Err(e) => {
                let report = host.report();
                panic!("reading the upgrade request: {e}\n{report}");
            }
        }
    }
    let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    drop(stream);
    let e = host.expect_disconnected();
    assert!(
        ev::field(&e, "reason").contains("WebSocket"),
        "a failed upgrade is reported as a WebSocket handshake failure: {e}"
    );
    host.quit_ok();
    String::from_utf8_lossy(&request).into_owned()
}

#[test]
fn websocket_upgrade_asks_for_the_mqtt_subprotocol_on_ws_path() {
    let request = upgrade_request(None);
    assert!(request.starts_with("GET /mqtt HTTP/1.1\r\n"), "{request}");
    let lower = request.to_lowercase();
    assert!(
        lower.contains("\r\nsec-websocket-protocol: mqtt\r\n"),
        "{request}"
    );
    assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{request}");

    let request = upgrade_request(Some("/ws/broker"));
    assert!(
        request.starts_with("GET /ws/broker HTTP/1.1\r\n"),
        "{request}"
    );
}

// ---------------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------------

const USER: &str = "line-user";
/// Distinctive enough that finding it anywhere in an output means it leaked.
const PASSWORD: &str = "Pw-7f3c9e1a-QuartzOtter";

/// A broker that wants `USER`/`PASSWORD` (plus a publisher account `pub`/`pub-secret`).
fn password_broker() -> Mosquitto {
    let mut passwd = mosquitto_password_file(USER, PASSWORD);
    passwd.push_str(&mosquitto_password_file("pub", "pub-secret"));
    MosquittoBuilder::default()
        .file("passwd", passwd)
        .config_line("allow_anonymous false")
        .config_line("password_file {dir}/passwd")
        .start()
}

fn publish_as_pub(broker: &Mosquitto, payload: &str) {
    if let Err(e) = try_publish(
        broker.port(),
        &["-u", "pub", "-P", "pub-secret"],
        "sec/value",
        payload.as_bytes(),
        1,
        TIMEOUT,
    ) {
        panic!(
            "publishing as `pub`: {e}\n-- broker --\n{}",
            broker.log_tail()
        );
    }
}

/// Everything sim-host printed: events, other stdout lines, stderr (but not its configuration
/// file, which the report also shows).
fn printed(host: &mut SimHost) -> String {
    let report = host.report();
    match report.find("-- sim-host config ") {
        Some(at) => report[..at].to_string(),
        None => report,
    }
}

fn assert_no_password(text: &str, context: &str) {
    assert!(
        !text.contains(PASSWORD),
        "the password appears in {context}:\n{text}"
    );
}

/// Connects with the password from `param` = `value`, receives a value, quits.
fn connects_with(param: &str, value: &str, env: &[(&str, &str)]) {
    let broker = password_broker();
    let config = LineConfig::new(broker.port())
        .param("user_name", USER)
        .param(param, value)
        .station(station());
    let mut host = SimHost::start_with_env(&config.to_toml(), &[], env);
    host.attach_broker(&broker);
    host.wait_connected();
    broker.wait_log("the line logged in as its user", |log| {
        log.contains(&format!(" as D2000kom (p2, c0, k0, u'{USER}')"))
    });
    publish_as_pub(&broker, "authenticated");
    host.expect_value_eq("s", "data", "authenticated");
    host.quit_ok();
    let out = printed(&mut host);
    assert_no_password(&out, "sim-host's output");
}

#[test]
fn password_inline_env_and_file_all_log_in() {
    connects_with("password", PASSWORD, &[]);
    connects_with(
        "password_env",
        "MQTT_LINE_E2E_SECRET",
        &[("MQTT_LINE_E2E_SECRET", PASSWORD)],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    // A trailing newline (as editors write it) is not part of the password.
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    connects_with("password_file", &file.display().to_string(), &[]);
}

#[test]
fn wrong_password_is_refused_with_a_clear_reason() {
    let broker = password_broker();
    let config = LineConfig::new(broker.port())
        .param("user_name", USER)
        .param("password", "not-the-password")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    // MQTT 3.1.1 return code 4 (bad user name or password) or 5 (not authorized): mosquitto 2.0
    // answers 5 to a wrong password.
    let reason = host.expect_refusal("the refused login", |r| {
        r.contains("bad user name or password") || r.contains("not authorized")
    });
    assert!(!reason.contains("not-the-password"), "{reason}");
    host.quit_ok();
}

#[test]
fn missing_password_env_and_file_are_reported_by_name() {
    let broker = password_broker();
    let config = LineConfig::new(broker.port())
        .param("user_name", USER)
        .param("password_env", "MQTT_LINE_E2E_UNSET_VARIABLE")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("the unset variable", |r| {
        r.contains("MQTT_LINE_E2E_UNSET_VARIABLE")
    });
    host.quit_ok();

    let config = LineConfig::new(broker.port())
        .param("user_name", USER)
        .param("password_file", "/nonexistent/mqtt-line-secret")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("the unreadable file", |r| {
        r.contains("/nonexistent/mqtt-line-secret")
    });
    host.quit_ok();
}

#[test]
fn password_never_printed_at_trace_level_with_full_debug() {
    let mut broker = password_broker();
    let config = LineConfig::new(broker.port())
        .param("user_name", USER)
        .param("password", PASSWORD)
        .param("full_debug", "YES")
        .param("publish_qos", "QoS_1")
        .station(station());
    let mut host = SimHost::start_with(&config.to_toml(), &["--log-level", "trace"]);
    host.attach_broker(&broker);
    host.wait_connected();
    publish_as_pub(&broker, "traced");
    host.expect_value_eq("s", "data", "traced");
    host.send("write s out_value traced back");
    let w = host.expect_write("s", "out_value");
    assert_eq!(ev::write_ok(&w), Some(true), "{w}");
    // A reconnect sends CONNECT (with the password) again.
    broker.restart();
    host.expect_disconnected();
    host.wait_connected();
    host.quit_ok();
    let out = printed(&mut host);
    // The trace did print the traffic, so there was something to leak.
    assert!(
        host.stderr().contains("CONNECT"),
        "expected the Full Debug trace of CONNECT on stderr\n{out}"
    );
    assert_no_password(&out, "sim-host's output at trace level with Full Debug");
}

#[test]
fn password_not_in_check_output_nor_in_errors_next_to_it() {
    let plugin = plugin_path();
    let plugin = plugin.to_str().unwrap();
    let port = free_port();
    let base = |extra: &str| {
        format!(
            "[line]\nhost = \"127.0.0.1\"\nport = {port}\n[line.parameters]\n\
             user_name = \"{USER}\"\npassword = \"{PASSWORD}\"\n{extra}\
             [[station]]\nname = \"s\"\naddress = \"sec/value\"\n"
        )
    };
    // A good file.
    let done = check_config(&base(""));
    assert_eq!(done.code, Some(0), "{done}");
    assert_no_password(&format!("{}{}", done.stdout, done.stderr), "`check` output");
    // Invalid parameters next to the password, in check and run.
    let bad = [
        "keep_alive = \"abc\"\n",
        "topic_filter = \"a/#/b\"\n",
        "tls_client_cert_file = \"c.pem\"\n",
        "pasword = \"typo\"\n",
        "transport = \"quic\"\n",
    ];
    for extra in bad {
        for command in ["check", "run"] {
            let args = [command, "{config}", "--plugin", plugin, "--json"];
            let args = if command == "check" {
                &args[..4]
            } else {
                &args[..]
            };
            let done = run_to_exit(&base(extra), args, TIMEOUT);
            assert_eq!(done.code, Some(2), "{extra}: {done}");
            assert_no_password(
                &format!("{}{}", done.stdout, done.stderr),
                &format!("`{command}` output for {extra:?}"),
            );
        }
    }
}

/// A TOML syntax error on the password's line must not print the line: sim-host reports only
/// the position and the toml crate's message.
#[test]
fn password_not_in_toml_syntax_errors() {
    let texts = [
        format!("[line]\nhost = \"127.0.0.1\"\n[line.parameters]\npassword = \"{PASSWORD}\" x\n"),
        format!(
            "[line]\nhost = \"127.0.0.1\"\n[line.parameters]\npassword = \"{PASSWORD}\"\n\
             password = \"{PASSWORD}\"\n"
        ),
        format!("[line]\nhost = \"127.0.0.1\"\n[line.parameters]\npassword = [\"{PASSWORD}\"]\n"),
    ];
    for text in texts {
        let done = check_config(&text);
        assert_eq!(done.code, Some(2), "{done}");
        assert_no_password(&format!("{}{}", done.stdout, done.stderr), "a TOML error");
    }
}

/// The next connection on a non-blocking `listener` (the line's attempt), as a blocking stream;
/// fails with sim-host's report when none comes within the deadline.
fn accept_within(
    listener: &std::net::TcpListener,
    host: &mut SimHost,
    what: &str,
) -> std::net::TcpStream {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                let report = host.report();
                panic!("no connection on {what} ({e})\n{report}");
            }
        }
    }
}
