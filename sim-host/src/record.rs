//! `sim-host record`: subscribes to a broker as a line would and writes every message into a
//! recording (recording.rs). The client is rumqttc's, which sim-host already uses for the demo's
//! devices (docs/decisions.md says why not the plugin itself).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{QoS, RecvTimeoutError};

use crate::config::LineSpec;
use crate::output::stderr_line;
use crate::record_transport::{parse_transport, Relay, Security};
use crate::recording::{self, Header, Message, Properties, RecordingWriter, Source};
use crate::runner::AppError;

/// Where and how to subscribe, and when to stop.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub host: String,
    pub port: u16,
    pub topic_filter: String,
    pub protocol_version: u8,
    pub qos: u8,
    pub user_name: Option<String>,
    pub password: Option<String>,
    pub client_id: String,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
    pub output: PathBuf,
    /// TLS and WebSocket, as the line's parameters of the same names (record_transport.rs).
    pub security: Security,
}

impl RecordOptions {
    /// What `sim-host record` uses when neither a configuration nor an option says otherwise:
    /// port 1883, every topic, MQTT 3.1.1 at QoS 1, a client id of its own, no end, no TLS.
    pub fn defaults(output: PathBuf) -> RecordOptions {
        RecordOptions {
            host: String::new(),
            port: 1883,
            topic_filter: "#".into(),
            protocol_version: 4,
            qos: 1,
            user_name: None,
            password: None,
            client_id: format!("sim-host-record-{}", std::process::id()),
            duration: None,
            count: None,
            output,
            security: Security {
                ws_path: "/mqtt".into(),
                ..Security::default()
            },
        }
    }
}

/// How often progress goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How long one wait for the broker lasts before stop conditions are looked at again.
const TURN: Duration = Duration::from_millis(100);
/// The largest packet the recorder accepts: the line's own maximum decompressed size.
const MAX_PACKET: usize = 268_435_456;

/// The broker settings of a line configuration: the first host, the port (1883 by default),
/// topic filter, protocol version, subscribe QoS, user name and password (also from
/// `password_env` / `password_file`), TLS (`tls`, `tls_ca_file`, `tls_client_cert_file`,
/// `tls_client_key_file`) and WebSocket (`transport`, `ws_path`). The port defaults to 8883 with
/// TLS, as for the line.
pub fn options_from_line(spec: &LineSpec, output: PathBuf) -> Result<RecordOptions, AppError> {
    let mut o = RecordOptions::defaults(output);
    let mut port_given = false;
    // The first entry of the host list may name its own port, which wins over `port`.
    let mut entry_port = None;
    for (name, value) in &spec.params {
        let value = value.trim();
        let bad = |what: &str| {
            AppError::Config(format!(
                "line parameter '{name}' = '{}': {what}",
                value.escape_debug()
            ))
        };
        match name.to_ascii_lowercase().as_str() {
            "host" | "hosts" | "address" => {
                let list =
                    mqtt_line_core::parse_host_list(value).map_err(|e| bad(&e.to_string()))?;
                if let Some(first) = list.into_iter().next() {
                    o.host = first.host;
                    entry_port = first.port;
                }
            }
            "port" => {
                o.port = value.parse().map_err(|_| bad("not a port"))?;
                port_given = true;
            }
            "topic_filter" => o.topic_filter = value.to_string(),
            "protocol_version" => {
                o.protocol_version = match value {
                    "4" | "3.1.1" => 4,
                    "5" | "5.0" => 5,
                    _ => return Err(bad("record knows 4 (3.1.1) and 5")),
                }
            }
            "subscribe_qos" => o.qos = parse_qos(value).ok_or_else(|| bad("not a QoS"))?,
            "user_name" | "username" | "user" => o.user_name = Some(value.to_string()),
            "password" => o.password = Some(value.to_string()),
            "password_env" => {
                o.password = Some(
                    std::env::var(value)
                        .map_err(|_| bad("the environment variable is not set (or not UTF-8)"))?,
                )
            }
            "password_file" => {
                let text = std::fs::read_to_string(value)
                    .map_err(|e| bad(&format!("cannot read the file: {e}")))?;
                o.password = Some(text.trim_end_matches(['\r', '\n']).to_string());
            }
            "client_id" => o.client_id = format!("{value}-record"),
            "tls" => o.security.tls = is_yes(value),
            "transport" => {
                o.security.websocket =
                    parse_transport(value).ok_or_else(|| bad("tcp or websocket"))?
            }
            "ws_path" => o.security.ws_path = value.to_string(),
            "tls_ca_file" => o.security.ca_file = non_empty(value),
            "tls_client_cert_file" => o.security.client_cert_file = non_empty(value),
            "tls_client_key_file" => o.security.client_key_file = non_empty(value),
            "tls_psk_identity" | "tls_psk_key" | "tls_psk_key_env" | "tls_psk_key_file"
                if !value.is_empty() =>
            {
                return Err(bad(
                    "record does not do TLS-PSK; record from a certificate or plain listener",
                ))
            }
            _ => {}
        }
    }
    if o.host.is_empty() {
        return Err(AppError::Config(
            "the line configuration has no host to record from".into(),
        ));
    }
    if let Some(port) = entry_port {
        o.port = port;
    } else if o.security.tls && !port_given {
        o.port = 8883;
    }
    Ok(o)
}

fn non_empty(v: &str) -> Option<PathBuf> {
    (!v.is_empty()).then(|| PathBuf::from(v))
}

fn is_yes(v: &str) -> bool {
    matches!(v.to_ascii_uppercase().as_str(), "YES" | "TRUE" | "1" | "Y")
}

/// `QoS_1`, `1`, `qos1` in any case.
pub fn parse_qos(v: &str) -> Option<u8> {
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    match digits.as_str() {
        "0" => Some(0),
        "1" => Some(1),
        "2" => Some(2),
        _ => None,
    }
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Counts for the progress lines and the final summary.
#[derive(Default)]
struct Progress {
    messages: u64,
    bytes: u64,
    topics: std::collections::HashSet<String>,
}

impl Progress {
    fn line(&self, prefix: &str) -> String {
        format!(
            "{prefix}: {} messages, {} payload bytes, {} topics",
            self.messages,
            self.bytes,
            self.topics.len()
        )
    }
}

/// A `quit` line on stdin asks for the same clean stop as Ctrl-C.
fn watch_stdin(stop: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("record-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) if l.trim().eq_ignore_ascii_case("quit") => {
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
}

/// One of rumqttc's two clients.
enum Client {
    V4(rumqttc::Client, Box<rumqttc::Connection>),
    V5(rumqttc::v5::Client, Box<rumqttc::v5::Connection>),
}

/// What one wait on the connection gave.
enum Step {
    Message(Message),
    /// CONNACK: the moment to subscribe.
    ConnAck,
    Connected,
    Other,
    Idle,
    Failed(String),
}

impl Client {
    /// Straight to the broker, or (TLS, WebSocket) to the relay's socket.
    fn connect(o: &RecordOptions, relay: Option<&Relay>) -> Client {
        let (host, port) = match relay {
            Some(r) => (r.socket().to_string_lossy().into_owned(), 0),
            None => (o.host.clone(), o.port),
        };
        if o.protocol_version == 5 {
            let mut m = rumqttc::v5::MqttOptions::new(&o.client_id, &host, port);
            if relay.is_some() {
                m.set_transport(rumqttc::Transport::Unix);
            }
            m.set_keep_alive(Duration::from_secs(30));
            m.set_clean_start(true);
            m.set_max_packet_size(Some(MAX_PACKET as u32));
            if o.user_name.is_some() || o.password.is_some() {
                m.set_credentials(
                    o.user_name.clone().unwrap_or_default(),
                    o.password.clone().unwrap_or_default(),
                );
            }
            let (c, conn) = rumqttc::v5::Client::new(m, 1024);
            Client::V5(c, Box::new(conn))
        } else {
            let mut m = rumqttc::MqttOptions::new(&o.client_id, &host, port);
            if relay.is_some() {
                m.set_transport(rumqttc::Transport::Unix);
            }
            m.set_keep_alive(Duration::from_secs(30));
            m.set_clean_session(true);
            m.set_max_packet_size(MAX_PACKET, MAX_PACKET);
            if o.user_name.is_some() || o.password.is_some() {
                m.set_credentials(
                    o.user_name.clone().unwrap_or_default(),
                    o.password.clone().unwrap_or_default(),
                );
            }
            let (c, conn) = rumqttc::Client::new(m, 1024);
            Client::V4(c, Box::new(conn))
        }
    }

    fn subscribe(&self, filter: &str, qos: u8) -> Result<(), String> {
        let r = match self {
            Client::V4(c, _) => c.subscribe(filter, qos_of(qos)).map_err(|e| e.to_string()),
            Client::V5(c, _) => c.subscribe(filter, v5_qos(qos)).map_err(|e| e.to_string()),
        };
        r.map_err(|e| format!("cannot subscribe to '{}': {e}", filter.escape_debug()))
    }

    fn disconnect(&self) {
        // A broker already gone makes this fail; the file is complete either way.
        let _ = match self {
            Client::V4(c, _) => c.disconnect().map_err(|e| e.to_string()),
            Client::V5(c, _) => c.disconnect().map_err(|e| e.to_string()),
        };
    }

    fn step(&mut self) -> Step {
        match self {
            Client::V4(_, conn) => match conn.recv_timeout(TURN) {
                Err(RecvTimeoutError::Timeout) => Step::Idle,
                Err(RecvTimeoutError::Disconnected) => Step::Failed("the client ended".into()),
                Ok(Err(e)) => Step::Failed(e.to_string()),
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) => {
                    Step::Message(Message {
                        time_ns: now_ns(),
                        topic: String::from_utf8_lossy(p.topic.as_bytes()).into_owned(),
                        qos: p.qos as u8,
                        retain: p.retain,
                        payload: p.payload.to_vec(),
                        properties: Properties::default(),
                    })
                }
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => Step::Connected,
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_)))) => Step::ConnAck,
                Ok(Ok(_)) => Step::Other,
            },
            Client::V5(_, conn) => match conn.recv_timeout(TURN) {
                Err(rumqttc::v5::RecvTimeoutError::Timeout) => Step::Idle,
                Err(rumqttc::v5::RecvTimeoutError::Disconnected) => {
                    Step::Failed("the client ended".into())
                }
                Ok(Err(e)) => Step::Failed(e.to_string()),
                Ok(Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::Publish(p)))) => {
                    Step::Message(Message {
                        time_ns: now_ns(),
                        topic: String::from_utf8_lossy(&p.topic).into_owned(),
                        qos: p.qos as u8,
                        retain: p.retain,
                        payload: p.payload.to_vec(),
                        properties: p.properties.map(v5_properties).unwrap_or_default(),
                    })
                }
                Ok(Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::SubAck(_)))) => {
                    Step::Connected
                }
                Ok(Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::Incoming::ConnAck(_)))) => {
                    Step::ConnAck
                }
                Ok(Ok(_)) => Step::Other,
            },
        }
    }
}

fn v5_qos(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS as Q;
    match q {
        0 => Q::AtMostOnce,
        1 => Q::AtLeastOnce,
        _ => Q::ExactlyOnce,
    }
}

fn v5_properties(p: rumqttc::v5::mqttbytes::v5::PublishProperties) -> Properties {
    use base64::Engine;
    Properties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation_data_base64: p
            .correlation_data
            .map(|d| base64::engine::general_purpose::STANDARD.encode(&d)),
        user_properties: p.user_properties,
        subscription_identifiers: p.subscription_identifiers,
    }
}

/// The first connection must succeed within this; later losses end the recording (it is
/// complete up to there).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Records until `--duration`, `--count`, Ctrl-C / SIGTERM or `quit` on stdin.
pub fn record(o: &RecordOptions, stop: &Arc<AtomicBool>) -> Result<(), AppError> {
    let header = Header {
        format: recording::FORMAT.into(),
        version: recording::VERSION,
        started: recording::rfc3339(now_ns()),
        source: Source {
            host: o.host.clone(),
            port: o.port,
            topic_filter: o.topic_filter.clone(),
            protocol_version: o.protocol_version,
        },
    };
    let mut writer =
        RecordingWriter::create(&o.output, &header).map_err(|e| AppError::Fatal(e.to_string()))?;
    let relay = if o.security.is_plain() {
        None
    } else {
        Some(Relay::start(&o.host, o.port, &o.security)?)
    };
    watch_stdin(stop.clone());
    let mut client = Client::connect(o, relay.as_ref());
    stderr_line(&format!(
        "INFO record: {}:{} '{}' (MQTT {}) into {}; type 'quit' or press Ctrl-C to stop",
        o.host,
        o.port,
        o.topic_filter,
        if o.protocol_version == 5 {
            "5"
        } else {
            "3.1.1"
        },
        o.output.display()
    ));
    let progress_to_terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut subscribed = false;
    let mut p = Progress::default();
    let outcome = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok("stopped");
        }
        if o.duration.is_some_and(|d| started.elapsed() >= d) {
            break Ok("duration reached");
        }
        if o.count.is_some_and(|n| p.messages >= n) {
            break Ok("count reached");
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            let line = p.line("record");
            if progress_to_terminal {
                eprint!("\r{line}   ");
            } else {
                stderr_line(&line);
            }
        }
        match client.step() {
            Step::Message(m) => {
                if let Err(e) = writer.write(&m) {
                    break Err(AppError::Fatal(e.to_string()));
                }
                p.messages += 1;
                p.bytes += m.payload.len() as u64;
                if !p.topics.contains(&m.topic) {
                    p.topics.insert(m.topic);
                }
            }
            // Subscribing at each CONNACK until a SUBACK came: rumqttc drops a request queued
            // before CONNACK when the attempt that took it fails, and the recorder would wait
            // for ever on a connection without a subscription.
            Step::ConnAck if !subscribed => {
                if let Err(e) = client.subscribe(&o.topic_filter, o.qos) {
                    break Err(AppError::Fatal(e));
                }
            }
            Step::Connected => {
                if !subscribed {
                    stderr_line("INFO record: subscribed; recording");
                }
                subscribed = true;
            }
            Step::ConnAck | Step::Other | Step::Idle => {}
            Step::Failed(e) if !subscribed && started.elapsed() < CONNECT_TIMEOUT => {
                tracing::debug!("record: connecting: {e}");
                std::thread::sleep(TURN);
            }
            Step::Failed(e) => {
                // Behind the relay rumqttc sees only its socket closed; the relay knows why.
                let e = relay.as_ref().and_then(Relay::last_error).unwrap_or(e);
                break Err(AppError::Fatal(format!(
                    "the connection to {}:{} failed: {e}",
                    o.host, o.port
                )));
            }
        }
    };
    client.disconnect();
    // Whatever ended the recording, what was written is made whole on disk.
    let finished = writer.finish().map_err(|e| AppError::Fatal(e.to_string()));
    if progress_to_terminal {
        eprintln!();
    }
    let why = outcome?;
    finished?;
    stderr_line(&format!(
        "{} ({why}) in {}",
        p.line("INFO record: done"),
        o.output.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_spellings() {
        for (text, q) in [
            ("QoS_0", Some(0)),
            ("1", Some(1)),
            ("qos2", Some(2)),
            ("x", None),
        ] {
            assert_eq!(parse_qos(text), q, "{text}");
        }
    }

    /// The first entry of the line's host list, at its own port or the line's.
    #[test]
    fn records_from_the_first_host_at_its_port() {
        let rows: &[(&str, &str, &str, u16)] = &[
            ("a, b", "port = 2000", "a", 2000),
            ("a:1884; b:1885", "port = 2000", "a", 1884),
            ("[::1]:1886", "", "::1", 1886),
            ("b:8884", "[line.parameters]\ntls = \"YES\"", "b", 8884),
            ("b", "[line.parameters]\ntls = \"YES\"", "b", 8883),
        ];
        for (hosts, more, host, port) in rows {
            let text = format!("[line]\nhost = \"{hosts}\"\n{more}\n");
            let spec = crate::config::FileConfig::parse(&text)
                .and_then(|f| f.into_spec(&text, "L"))
                .unwrap_or_else(|e| panic!("{hosts}: {e}"));
            let o = options_from_line(&spec, PathBuf::from("out.jsonl"))
                .unwrap_or_else(|e| panic!("{hosts}: {e}"));
            assert_eq!((o.host.as_str(), o.port), (*host, *port), "{hosts} {more}");
        }
    }
}
