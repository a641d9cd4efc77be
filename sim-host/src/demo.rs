//! `sim-host demo`: an embedded MQTT broker, a few simulated devices and a line listening to them,
//! so the plugin can be seen working on a machine without a broker.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::config::{FileConfig, LineSpec, ParamValue};
use crate::output::stderr_line;

/// The demo line; embedded so the demo runs from any directory.
const DEMO_TOML: &str = include_str!("../../examples/demo.toml");

/// The demo configuration with the broker address replaced by `port` on 127.0.0.1.
pub fn demo_spec(port: u16) -> Result<LineSpec, String> {
    let mut file = FileConfig::parse(DEMO_TOML)?;
    file.line.host = Some(ParamValue::Text(Ipv4Addr::LOCALHOST.to_string()));
    file.line.port = Some(ParamValue::Integer(port.into()));
    file.into_spec(DEMO_TOML, "demo")
}

/// A port on 127.0.0.1 that was free a moment ago (the broker binds it again right after).
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn broker_config(listen: SocketAddr) -> Config {
    broker_config_sized(listen, 20 * 1024, false)
}

/// The broker's configuration with a payload limit; `v5`: an MQTT 5 listener instead of 3.1.1
/// (replay.rs uses both).
fn broker_config_sized(listen: SocketAddr, max_payload: usize, v5: bool) -> Config {
    let server = ServerSettings {
        name: "demo-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: max_payload,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
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
    }
}

/// The QoS 1 window of the replay broker towards the line.
pub const REPLAY_INFLIGHT: u16 = 1000;
/// The replay broker's message log: segments of this size...
pub const REPLAY_SEGMENT_BYTES: usize = 2 * 1024 * 1024;
/// ... and at most this many; the oldest is dropped when a new one starts. The replay publisher
/// keeps fewer unread bytes than two segments less than this holds
/// (`replay_publisher::LINE_WINDOW_BYTES`), so no message the line has not read is dropped.
pub const REPLAY_SEGMENTS: usize = 10;

/// [`start_broker`] for replay: a payload limit of `max_payload`, MQTT 3.1.1 or 5, and a
/// bounded message log ([`REPLAY_SEGMENTS`] x [`REPLAY_SEGMENT_BYTES`]).
pub fn start_broker_for_replay(max_payload: usize, v5: bool) -> Result<u16, String> {
    let port = free_port().map_err(|e| format!("cannot find a free port: {e}"))?;
    let mut config = broker_config_sized(
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        max_payload,
        v5,
    );
    config.router.max_segment_size = REPLAY_SEGMENT_BYTES;
    config.router.max_segment_count = REPLAY_SEGMENTS;
    config.router.max_outgoing_packet_count = 1000;
    // A wider QoS 1 window towards the line: with 100 the replay waited for acknowledgements and
    // ran slower than the line receives live (docs/commissioning.md).
    for servers in [config.v4.as_mut(), config.v5.as_mut()]
        .into_iter()
        .flatten()
    {
        for server in servers.values_mut() {
            server.connections.max_inflight_count = usize::from(REPLAY_INFLIGHT);
        }
    }
    spawn_broker(config)?;
    Ok(port)
}

fn spawn_broker(config: Config) -> Result<(), String> {
    thread::Builder::new()
        .name("demo-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                stderr_line(&format!("ERROR embedded broker: {e}"));
            }
        })
        .map_err(|e| format!("cannot start the embedded broker: {e}"))?;
    Ok(())
}

/// Starts the broker on its own thread; it is ready once a client gets its CONNACK
/// (see [`start_devices`]).
pub fn start_broker() -> Result<u16, String> {
    let port = free_port().map_err(|e| format!("cannot find a free port: {e}"))?;
    let config = broker_config(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    thread::Builder::new()
        .name("demo-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                stderr_line(&format!("ERROR embedded broker: {e}"));
            }
        })
        .map_err(|e| format!("cannot start the embedded broker: {e}"))?;
    Ok(port)
}

/// One round of device messages: (topic, payload).
fn device_messages(round: u64) -> Vec<(&'static str, String)> {
    let t = round as f64;
    // Discharges by one percent a round and recharges at 20 %.
    let soc = 100 - round % 81;
    let room1 = 21.0 + 0.5 * (t / 5.0).sin();
    let room2 = 19.0 + 0.8 * (t / 7.0).cos();
    let uplink = format!(
        r#"{{"dev_eui":"0004a30b001c0530","f_cnt":{round},"rssi":{},"snr":{:.1},"data":{{"temperature":{:.2},"humidity":{}}}}}"#,
        -70 - (round % 9) as i64,
        7.5 + (t / 3.0).sin(),
        room1 - 3.0,
        55 + round % 5,
    );
    vec![
        ("status/battery", soc.to_string()),
        ("sensors/room1/temperature", format!("{room1:.2}")),
        ("sensors/room2/temperature", format!("{room2:.2}")),
        ("lorawan/devices/node-1/up", uplink),
    ]
}

/// How long the demo waits for the embedded broker to accept the devices' connection.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the simulated devices: one MQTT client publishing every second, on its own threads.
/// Returns once the broker has accepted their connection, so the line connects at first try.
pub fn start_devices(port: u16) -> Result<(), String> {
    let mut options = MqttOptions::new("sim-host-demo-devices", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 64);
    let (connected_tx, connected_rx) = mpsc::channel();

    thread::Builder::new()
        .name("demo-devices-io".into())
        .spawn(move || {
            // Iterating drives the connection and reconnects after errors (the broker may still
            // be binding its port at first).
            for notification in connection.iter() {
                match notification {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = connected_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => thread::sleep(Duration::from_millis(50)),
                }
            }
        })
        .map_err(|e| format!("cannot start the simulated devices: {e}"))?;
    connected_rx
        .recv_timeout(BROKER_START_TIMEOUT)
        .map_err(|_| {
            format!(
                "the embedded broker on 127.0.0.1:{port} did not accept a connection within {}s",
                BROKER_START_TIMEOUT.as_secs()
            )
        })?;

    thread::Builder::new()
        .name("demo-devices".into())
        .spawn(move || {
            for round in 0.. {
                // Sleeping first gives the line time to subscribe before the first round.
                thread::sleep(Duration::from_secs(1));
                for (topic, payload) in device_messages(round) {
                    if let Err(e) = client.publish(topic, QoS::AtLeastOnce, false, payload) {
                        tracing::warn!("simulated device could not publish on {topic}: {e}");
                        return;
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the simulated devices: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_configuration_is_valid_and_points_at_the_broker() {
        let spec = demo_spec(12345).expect("demo.toml is valid");
        assert!(spec
            .params
            .contains(&("host".to_string(), "127.0.0.1".to_string())));
        assert!(spec
            .params
            .contains(&("port".to_string(), "12345".to_string())));
        let addresses: Vec<&str> = spec.stations.iter().map(|s| s.address.as_str()).collect();
        assert!(addresses.contains(&"status/battery"));
        assert!(addresses.contains(&".*"));
        // The LoRaWAN node shows JSON values picked out by JA= addresses.
        assert!(spec
            .stations
            .iter()
            .flat_map(|s| &s.tags)
            .any(|t| t.address == "JA=data.temperature"));
    }

    #[test]
    fn device_payloads_are_well_formed() {
        for round in [0, 1, 80, 81, 1000] {
            let msgs = device_messages(round);
            let soc: u64 = msgs[0].1.parse().expect("battery is a whole number");
            assert!((20..=100).contains(&soc));
            let _: f64 = msgs[1].1.parse().expect("temperature is a number");
            let uplink: serde_json::Value =
                serde_json::from_str(&msgs[3].1).expect("uplink is JSON");
            assert_eq!(uplink["f_cnt"], round);
        }
    }
}
