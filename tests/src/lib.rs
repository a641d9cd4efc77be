//! End-to-end test harness of mqtt-line.
//!
//! The tests in `tests/tests/` drive the real binaries (`target/release/sim-host` and
//! `target/release/libmqtt_line.so`) against real mosquitto brokers. Every test starts its own broker
//! on its own loopback port with its own configuration in a temporary directory, so tests run in
//! parallel and never touch a broker the machine may run on port 1883.
//!
//! * [`Mosquitto`]: a broker process (start, kill, stop, restart, freeze, thaw; its log).
//! * [`SimHost`]: a `sim-host run --json` process, its event stream and its stdin commands.
//! * [`LineConfig`]: builds the sim-host TOML configuration.
//! * [`publish`] and [`subscribe_one`]: mosquitto_pub / mosquitto_sub as the other MQTT clients.
//! * [`Pki`]: a CA, server and client certificates made with `openssl`, for TLS tests;
//!   [`mosquitto_password_file`] for brokers that check passwords.
//! * [`Gateway`]: a dual-homed publisher sending every numbered message to each of its brokers,
//!   which keeps going while one of them is down (the redundant line's tests).
//! * [`fake_broker::FakeBroker`]: a scripted loopback MQTT peer for protocol misbehaviour.
//! * [`wire`]: the packets those brokers send, from rumqttc's codec (raw bytes only for
//!   deliberately malformed ones).
//! * [`http_get`]: a GET for sim-host's `--http` server; [`browser`]: headless chromium through
//!   the DevTools protocol, for the live page.
//! * [`rmqtt_cluster::RmqttCluster`]: a 3-node rmqtt raft cluster on loopback, for scale-out.
//! * [`run_to_exit`]: runs a sim-host command that is expected to end by itself (`check`, bad
//!   configurations, `--duration`).
//! * [`JsonLinesChild`]: a helper program speaking JSON lines (Tahu's edge node, pysparkplug).
//! * [`require_program`] and [`missing`]: a program or package the test command installs is
//!   missing, so the test fails saying how to get it (never a silent pass).
//!
//! Every wait is bounded by a deadline ([`TIMEOUT`] unless a test says otherwise) and fails with a
//! message that shows what was seen so far: sim-host events, its stderr, and the broker log.
//! Helper functions panic with such a message instead of returning errors: they are assertions.

mod broker;
pub mod browser;
mod clients;
mod config;
pub mod corpus_broker;
pub mod fake_broker;
mod gateway;
mod http_client;
mod interop_brokers;
mod json_lines;
mod net;
mod paths;
mod pki;
mod process;
mod required;
pub mod rmqtt_cluster;
mod simhost;
pub mod wire;

use std::time::Duration;

pub use broker::{dynamic_security_plugin, Mosquitto, MosquittoBuilder, WEBSOCKET_LISTENER};
pub use clients::{publish, publish_at, subscribe_one, try_publish, Received, Subscription};
pub use config::{toml_string, LineConfig, StationConfig};
pub use gateway::{Gateway, StreamReport};
pub use http_client::{http_get, try_http_get, HttpResponse};
pub use interop_brokers::{find_program, ExternalBroker};
pub use json_lines::JsonLinesChild;
pub use net::{free_port, wait_for_addr, wait_for_port};
pub use paths::{bin_dir, plugin_path, sim_host_path, workspace_dir};
pub use pki::{mosquitto_password_file, Pki, CLIENT_CN};
pub use process::{send_signal, wait_with_deadline, Spawned};
pub use required::{missing, missing_program, require_program};
pub use simhost::{
    assert_example_checks_clean, assert_refused, check_config, ev, run_to_exit, Finished, SimHost,
};

/// How long any single wait of a test may last before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);
