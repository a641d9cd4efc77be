//! rumqttd as a process of its own for the interoperability tests: `e2e-rumqttd PORT` serves
//! MQTT 3.1.1 on 127.0.0.1:PORT until it is killed; `e2e-rumqttd PORT v5` serves MQTT 5 instead
//! (rumqttd's v5 listener). A process (rather than a thread of the test)
//! so that a test can kill it and start it again, which rumqttd cannot do inside one process.
//!
//! The settings are those of `sim-host demo` (sim-host/src/demo.rs), with a larger payload limit.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

fn main() {
    let port: u16 = match std::env::args().nth(1).and_then(|p| p.parse().ok()) {
        Some(p) => p,
        None => {
            eprintln!("usage: e2e-rumqttd PORT");
            std::process::exit(2);
        }
    };
    let v5 = std::env::args().nth(2).is_some_and(|a| a == "v5");
    let server = ServerSettings {
        name: if v5 { "e2e-v5" } else { "e2e-v4" }.into(),
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1024 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 10 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: (!v5).then(|| HashMap::from([("1".to_string(), server.clone())])),
        v5: v5.then(|| HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    };
    println!("rumqttd on 127.0.0.1:{port}");
    if let Err(e) = Broker::new(config).start() {
        eprintln!("rumqttd: {e}");
        std::process::exit(1);
    }
}
