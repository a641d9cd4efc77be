//! Connectivity as integrators meet it (issue 24): TLS with a pre-shared key against mosquitto's
//! own PSK listener, and the line's `proxy` through real proxies from Debian: tinyproxy (HTTP
//! CONNECT, with Basic credentials) and dante (`danted`, SOCKS5), with plain TCP, TLS, TLS-PSK and
//! WebSocket connections inside the tunnel.
//!
//! Each proxy runs as a child of the test on a free loopback port, with its own configuration in
//! a temporary directory, and is stopped by pid. A test whose proxy program is missing fails,
//! saying how to install it: `tests/run.sh` installs tinyproxy and dante-server.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mqtt_line_e2e::{
    ev, free_port, publish, require_program, send_signal, wait_for_port, LineConfig, Mosquitto,
    Pki, SimHost, Spawned, StationConfig, TIMEOUT, WEBSOCKET_LISTENER,
};

/// A station `s` on `conn/value` with the input tags.
fn station() -> StationConfig {
    StationConfig::new("s", "conn/value").inputs()
}

/// Publishes on the broker's plain listener and waits for the line to show the value.
fn value_arrives(broker: &Mosquitto, host: &mut SimHost, text: &str) {
    publish(broker.port(), "conn/value", text.as_bytes(), 1, false);
    host.expect_value_eq("s", "data", text);
}

// ---------------------------------------------------------------------------------------------
// TLS-PSK
// ---------------------------------------------------------------------------------------------

const PSK_IDENTITY: &str = "line-1";
const PSK_KEY: &str = "00112233445566778899aabbccddeeff";

/// A broker with a TLS-PSK listener on `psk_port` knowing [`PSK_IDENTITY`] with [`PSK_KEY`].
fn psk_broker(psk_port: u16) -> Mosquitto {
    Mosquitto::builder()
        .file("psk", format!("{PSK_IDENTITY}:{PSK_KEY}\n"))
        .listener(psk_port, ["psk_hint mqtt-line-test", "psk_file {dir}/psk"])
        .start()
}

#[test]
fn tls_psk_with_the_brokers_key_receives() {
    let psk_port = free_port();
    let broker = psk_broker(psk_port);
    let key_file = broker.dir().join("line.psk");
    std::fs::write(&key_file, format!("{}\n", PSK_KEY.to_uppercase())).unwrap();
    let config = LineConfig::new(psk_port)
        .param("tls", "YES")
        .param("tls_psk_identity", PSK_IDENTITY)
        .param("tls_psk_key_file", &key_file.display().to_string())
        .param("topic_filter", "conn/#")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    broker.wait_log("the line's client came in on the PSK port", |log| {
        log.contains(&format!("on port {psk_port}.")) && log.contains(" as D2000kom ")
    });
    value_arrives(&broker, &mut host, "over tls-psk");
    host.quit_ok();
}

#[test]
fn tls_psk_with_a_wrong_key_is_refused_with_the_reason() {
    let psk_port = free_port();
    let broker = psk_broker(psk_port);
    let wrong = "ffeeddccbbaa99887766554433221100";
    let config = LineConfig::new(psk_port)
        .param("tls", "YES")
        .param("tls_psk_identity", PSK_IDENTITY)
        .param("tls_psk_key", wrong)
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    host.expect_refusal("that the broker refused the key", |r| {
        r.contains("TLS-PSK handshake")
            && r.contains("refused the pre-shared key for identity 'line-1'")
    });
    let stderr = host.stderr();
    assert!(
        !stderr.contains(wrong),
        "the key must not be logged:\n{stderr}"
    );
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Proxies
// ---------------------------------------------------------------------------------------------

/// A proxy program run by the test: its directory, and the child stopped by pid (TERM, then
/// KILL when it does not end).
struct Proxy {
    child: Spawned,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts `program` with `args(config path)` after writing `config(port)`; fails the test,
    /// naming the Debian `package`, when the program is not installed.
    fn start(
        program: &str,
        package: &str,
        config: impl Fn(u16) -> String,
        args: impl Fn(&str) -> Vec<String>,
    ) -> Proxy {
        let path = require_program(program, package);
        let dir = tempfile::Builder::new()
            .prefix("mqtt-line-proxy-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let conf = dir.path().join(format!("{program}.conf"));
        std::fs::write(&conf, config(port)).unwrap();
        let mut cmd = Command::new(path);
        cmd.args(args(&conf.display().to_string()))
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null());
        let child = Spawned::start(program, cmd);
        assert!(
            wait_for_port(port, TIMEOUT),
            "{program} does not listen on 127.0.0.1:{port}\n{}",
            child.report()
        );
        Proxy {
            child,
            port,
            _dir: dir,
        }
    }

    fn report(&self) -> String {
        self.child.report()
    }
}

impl Drop for Proxy {
    /// TERM lets danted stop its helper processes; what still runs after a bounded wait is
    /// killed by `Spawned`'s own drop.
    fn drop(&mut self) {
        let pid = self.child.pid();
        if send_signal(pid, "TERM").is_ok() {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while self.child.running() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// tinyproxy in the foreground, allowing CONNECT from loopback to `connect_port` only, asking
/// for Basic credentials when `auth` is given.
fn tinyproxy(connect_port: u16, auth: Option<(&str, &str)>) -> Proxy {
    let auth = auth.map(|(u, p)| format!("BasicAuth {u} {p}\n"));
    Proxy::start(
        "tinyproxy",
        "tinyproxy",
        |port| {
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n\
                 ConnectPort {connect_port}\nLogLevel Info\nMaxClients 10\n{}",
                auth.clone().unwrap_or_default()
            )
        },
        |conf| vec!["-d".into(), "-c".into(), conf.into()],
    )
}

/// danted in the foreground: SOCKS5 without authentication (dante's user name method checks the
/// system's accounts, which a test cannot add), from and to loopback only.
fn danted() -> Proxy {
    Proxy::start(
        "danted",
        "dante-server",
        |port| {
            format!(
                "logoutput: stderr\n\
                 internal: 127.0.0.1 port = {port}\n\
                 external: 127.0.0.1\n\
                 clientmethod: none\n\
                 socksmethod: none\n\
                 user.privileged: root\n\
                 user.unprivileged: nobody\n\
                 client pass {{\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n}}\n\
                 socks pass {{\n  from: 127.0.0.0/8 to: 127.0.0.0/8\n  command: connect\n}}\n"
            )
        },
        |conf| {
            let pid = PathBuf::from(conf).with_file_name("danted.pid");
            vec![
                "-f".into(),
                conf.into(),
                "-p".into(),
                pid.display().to_string(),
                "-N".into(),
                "1".into(),
            ]
        },
    )
}

#[test]
fn http_connect_proxy_with_credentials_carries_the_connection() {
    let broker = Mosquitto::start();
    let proxy = tinyproxy(broker.port(), Some(("op", "s3cr3t")));
    let config = LineConfig::new(broker.port())
        .param(
            "proxy",
            &format!("http://op:s3cr3t@127.0.0.1:{}", proxy.port),
        )
        .param("topic_filter", "conn/#")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    value_arrives(&broker, &mut host, "through tinyproxy");
    host.quit_ok();
    let stderr = host.stderr();
    assert!(!stderr.contains("s3cr3t"), "{stderr}\n{}", proxy.report());
}

#[test]
fn http_proxy_refusing_the_port_is_a_connection_error_with_its_answer() {
    let broker = Mosquitto::start();
    // tinyproxy allows CONNECT to another port only: 403 for the broker's.
    let proxy = tinyproxy(broker.port().wrapping_add(1).max(1), Some(("op", "s3cr3t")));
    let config = LineConfig::new(broker.port())
        .param(
            "proxy",
            &format!("http://op:s3cr3t@127.0.0.1:{}", proxy.port),
        )
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    let reason = host.expect_refusal("the proxy and its 403", |r| {
        r.contains(&format!("proxy http://op@127.0.0.1:{}", proxy.port)) && r.contains(" 403 ")
    });
    assert!(!reason.contains("s3cr3t"), "{reason}");
    host.quit_ok();
}

#[test]
fn socks5_proxy_carries_a_websocket_connection() {
    let ws_port = free_port();
    let broker = Mosquitto::builder()
        .listener(ws_port, WEBSOCKET_LISTENER)
        .start();
    let proxy = danted();
    let config = LineConfig::new(ws_port)
        .param("transport", "websocket")
        .param("proxy", &format!("socks5://127.0.0.1:{}", proxy.port))
        .param("topic_filter", "conn/#")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    let connected = host.wait_connected();
    assert_eq!(
        ev::field(&connected, "host"),
        format!("127.0.0.1:{ws_port}"),
        "{connected}\n{}",
        proxy.report()
    );
    value_arrives(&broker, &mut host, "through dante");
    host.quit_ok();
}

#[test]
fn tls_psk_through_an_http_proxy() {
    let psk_port = free_port();
    let broker = psk_broker(psk_port);
    let proxy = tinyproxy(psk_port, None);
    let config = LineConfig::new(psk_port)
        .param("tls", "YES")
        .param("tls_psk_identity", PSK_IDENTITY)
        .param("tls_psk_key", PSK_KEY)
        .param("proxy", &format!("http://127.0.0.1:{}", proxy.port))
        .param("topic_filter", "conn/#")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    value_arrives(&broker, &mut host, "tls-psk through tinyproxy");
    host.quit_ok();
}

#[test]
fn a_proxy_that_is_not_there_is_named() {
    let broker = Mosquitto::start();
    let dead = free_port();
    let config = LineConfig::new(broker.port())
        .param("proxy", &format!("socks5://op:s3cr3t@127.0.0.1:{dead}"))
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    let reason = host.expect_refusal("the proxy it cannot reach", |r| {
        r.contains(&format!(
            "cannot connect to proxy socks5://op@127.0.0.1:{dead}"
        ))
    });
    assert!(!reason.contains("s3cr3t"), "{reason}");
    host.quit_ok();
}

#[test]
fn socks5_proxy_carries_a_tls_connection_with_the_brokers_certificate_checked() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let broker = Mosquitto::builder()
        .listener(tls_port, pki.tls_listener_lines("server.crt", "server.key"))
        .start();
    let proxy = danted();
    let config = LineConfig::new(tls_port)
        .param("tls", "YES")
        .param("tls_ca_file", &pki.path_text("ca.crt"))
        .param("proxy", &format!("socks5://127.0.0.1:{}", proxy.port))
        .param("topic_filter", "conn/#")
        .station(station());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    broker.wait_log("the line's client came in on the TLS port", |log| {
        log.contains(&format!("on port {tls_port}.")) && log.contains(" as D2000kom ")
    });
    value_arrives(&broker, &mut host, "tls through dante");
    host.quit_ok();
}
