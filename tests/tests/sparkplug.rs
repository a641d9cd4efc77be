//! Issue 14: the line as a Sparkplug B host application against an independent edge node,
//! Eclipse Tahu's JavaScript `sparkplug-client` (tests/sparkplug/edge.js, installed by
//! `npm ci` in tests/sparkplug), on a private mosquitto: births, data by alias, deaths, our
//! rebirth request answered, commands received, the primary host's STATE.
//!
//! Without `node` or the npm packages the Tahu tests fail, saying how to install them
//! (`tests/run.sh` does).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

use mqtt_line_e2e::{
    assert_example_checks_clean, ev, missing, require_program, subscribe_one, workspace_dir,
    JsonLinesChild, LineConfig, Mosquitto, SimHost, StationConfig, TIMEOUT,
};
use serde_json::{json, Value};

/// The Tahu edge node: `node edge.js PORT GROUP NODE DEVICE`, its JSON lines on stdout and its
/// commands on stdin. Killed on drop.
struct Edge(JsonLinesChild);

fn edge_dir() -> PathBuf {
    workspace_dir().join("tests/sparkplug")
}

/// Fails the calling test when the Tahu edge node cannot run here: `node` or the npm packages
/// (`npm ci` in tests/sparkplug) are missing.
fn require_edge() {
    require_program("node", "nodejs npm");
    let module = edge_dir().join("node_modules/sparkplug-client");
    if !module.is_dir() {
        missing(
            &format!("{} is missing", module.display()),
            "run `npm ci` in tests/sparkplug",
        );
    }
}

impl Edge {
    fn start(port: u16, group: &str, node: &str, device: &str) -> Edge {
        let mut cmd = Command::new("node");
        cmd.arg(edge_dir().join("edge.js"))
            .args([&port.to_string(), group, node, device]);
        Edge(JsonLinesChild::start("the edge node", cmd))
    }

    fn send(&mut self, command: Value) {
        self.0.send(command);
    }

    /// Waits (at most [`TIMEOUT`]) for an event of the edge node; earlier ones are passed over.
    fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.0.expect(what, pred)
    }

    /// The commands (NCMD, DCMD) the edge node reported so far, waiting for none.
    fn commands(&mut self) -> Vec<Value> {
        self.0
            .seen()
            .iter()
            .filter(|v| v["event"] == "ncmd" || v["event"] == "dcmd")
            .cloned()
            .collect()
    }

    /// Sends a command and waits until the edge node has published it.
    fn publish(&mut self, command: Value) {
        let cmd = command["cmd"].clone();
        self.send(command);
        self.expect("that it sent the message", |v| {
            v["event"] == "sent" && v["cmd"] == cmd
        });
    }
}

/// A command event of the edge node carrying `metric` with `value` (as text).
fn is_command(e: &Value, event: &str, metric: &str, value: &str) -> bool {
    e["event"] == event
        && e["metrics"].as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| m["name"] == metric && m["value"] == value)
        })
}

fn config(port: u16) -> LineConfig {
    LineConfig::new(port)
        .param("payload_type", "Sparkplug B")
        .param("sparkplug_host_id", "scada")
        .param("sparkplug_rebirth_debounce", "0.2")
        .param("sparkplug_reorder_timeout", "300")
        .param("publish_qos", "QoS_1")
        .station(
            StationConfig::new("press1", "plant/press1")
                .tag("temp", "SPB=Inputs/Temperature", "Ai")
                .tag("setpoint", "SPB=Outputs/Setpoint", "Co")
                .tag("mode", "SPB=Outputs/Mode", "TxtO"),
        )
        .station(
            StationConfig::new("plc", "plant/press1/plc")
                .tag("speed", "SPB=Speed", "Ai")
                .tag("enable", "SPB=Enable", "Do"),
        )
}

#[test]
fn tahu_edge_node_births_data_rebirth_commands_and_deaths() {
    require_edge();
    let broker = Mosquitto::start();
    let port = broker.port();
    let mut host = SimHost::start_on(&broker, &config(port));
    host.wait_connected();

    // The primary host's STATE: retained, online, with a time stamp.
    let state = subscribe_one(port, "spBv1.0/STATE/scada").wait();
    assert!(state.retain && state.qos == 1, "{state:?}");
    let state: Value = serde_json::from_slice(&state.payload).unwrap();
    assert_eq!(state["online"], true, "{state}");
    assert!(
        state["timestamp"].as_u64().is_some_and(|t| t > 0),
        "{state}"
    );

    // Births set every metric's tag.
    let mut edge = Edge::start(port, "plant", "press1", "plc");
    edge.expect("its births", |v| v["event"] == "birth");
    host.expect_value_eq("press1", "temp", 20.5);
    host.expect_value_eq("plc", "speed", 1.5);

    // Data by alias only.
    edge.publish(json!({"cmd": "ndata", "alias": 1, "type": "Double", "value": 21.5}));
    host.expect_value_eq("press1", "temp", 21.5);
    edge.publish(json!({"cmd": "ddata", "alias": 10, "type": "Float", "value": 2.5}));
    host.expect_value_eq("plc", "speed", 2.5);

    // A seq gap: the line asks for a rebirth, Tahu answers with births, data flows again.
    edge.send(json!({"cmd": "gap"}));
    edge.publish(json!({"cmd": "ndata", "alias": 1, "type": "Double", "value": 99.0}));
    edge.expect("the rebirth request", |v| {
        is_command(v, "ncmd", "Node Control/Rebirth", "true")
    });
    edge.expect("its births again", |v| v["event"] == "birth");
    host.expect_value_eq("press1", "temp", 20.5);
    edge.publish(json!({"cmd": "ndata", "alias": 1, "type": "Double", "value": 22.0}));
    host.expect_value_eq("press1", "temp", 22.0);
    let shown = host.events_where(|e| ev::is_value_of(e, "press1", "temp", &json!(99.0)));
    assert!(
        shown.is_empty(),
        "data after the gap is not trusted: {shown:?}"
    );

    // Commands: NCMD to the node, DCMD to the device, by name with the birth's data type.
    host.send("write press1 setpoint 42");
    let cmd = edge.expect("the NCMD of the setpoint", |v| {
        is_command(v, "ncmd", "Outputs/Setpoint", "42")
    });
    assert_eq!(cmd["metrics"][0]["type"], "Int32", "{cmd}");
    let done = host.expect_write("press1", "setpoint");
    assert_eq!(ev::write_ok(&done), Some(true), "{done}");
    host.send("write press1 mode manual");
    edge.expect("the NCMD of the mode", |v| {
        is_command(v, "ncmd", "Outputs/Mode", "manual")
    });
    host.send("write plc enable 1");
    let cmd = edge.expect("the DCMD of enable", |v| {
        is_command(v, "dcmd", "Enable", "true")
    });
    assert_eq!(cmd["device"], "plc", "{cmd}");
    // A value beyond Int32 is a write error, and nothing is sent.
    host.send("write press1 setpoint 3000000000");
    let failed = host.expect("the failed write of 3000000000", |e| {
        ev::is_write(e, "press1", "setpoint") && ev::write_ok(e) == Some(false)
    });
    assert!(
        ev::field(&failed, "error").contains("out of the range of Int32"),
        "{failed}"
    );

    // Deaths: DDEATH ends the device, NDEATH the node.
    edge.publish(json!({"cmd": "ddeath"}));
    host.expect_station("plc", "hard_error");
    edge.publish(json!({"cmd": "ndeath"}));
    host.expect_station("press1", "hard_error");
    host.expect("press1.temp invalid", |e| {
        ev::is_value(e, "press1", "temp") && e["valid"] == false
    });
    // Issue 19: a dead node and its devices are not commanded; the write says why.
    host.send("write press1 setpoint 5");
    let failed = host.expect("the refused write to the dead node", |e| {
        ev::is_write(e, "press1", "setpoint")
    });
    assert_eq!(ev::write_ok(&failed), Some(false), "{failed}");
    assert!(
        ev::field(&failed, "error").contains("the node died (NDEATH)"),
        "{failed}"
    );
    host.send("write plc enable 0");
    let failed = host.expect("the refused write to the dead device", |e| {
        ev::is_write(e, "plc", "enable") && ev::write_ok(e) == Some(false)
    });
    assert!(ev::field(&failed, "error").contains("died"), "{failed}");
    edge.send(json!({"cmd": "quit"}));
    host.quit_ok();
}

/// The worked example of docs/sparkplug.md is a valid configuration, without warnings.
#[test]
fn the_example_configuration_checks_clean() {
    assert_example_checks_clean("sparkplug.toml", "configuration OK: 3 stations, 6 tags");
}

/// Issue 19: messages of a node that arrive out of seq order within the Reorder Timeout are
/// shown in seq order without a rebirth request (tck-id-operational-behavior-host-reordering-
/// success), and payloads Tahu compresses (GZIP, DEFLATE, DEFLATE without the algorithm metric)
/// are read like any other.
#[test]
fn tahu_reordered_and_compressed_messages() {
    require_edge();
    let broker = Mosquitto::start();
    let port = broker.port();
    let mut host = SimHost::start_on(&broker, &config(port));
    host.wait_connected();
    let mut edge = Edge::start(port, "plant", "press1", "plc");
    edge.expect("its births", |v| v["event"] == "birth");
    host.expect_value_eq("press1", "temp", 20.5);

    // seq n+1 (31) arrives before seq n (30): held, then both in seq order.
    edge.publish(json!({"cmd": "swap", "alias": 1, "type": "Double", "values": [31.0, 30.0]}));
    host.expect_value_eq("press1", "temp", 31.0);
    let shown: Vec<Value> = host
        .events_where(|e| ev::is_value(e, "press1", "temp"))
        .iter()
        .map(|e| e["value"].clone())
        .collect();
    assert_eq!(shown, [json!(20.5), json!(30.0), json!(31.0)]);

    for (value, compress) in [
        (32.5, json!("GZIP")),
        (33.5, json!("DEFLATE")),
        (34.5, json!(true)),
    ] {
        edge.publish(
            json!({"cmd": "ndata", "alias": 1, "type": "Double", "value": value,
                            "compress": compress}),
        );
        host.expect_value_eq("press1", "temp", value);
    }
    edge.publish(
        json!({"cmd": "ddata", "alias": 10, "type": "Float", "value": 4.5,
                        "compress": "GZIP"}),
    );
    host.expect_value_eq("plc", "speed", 4.5);
    assert!(
        edge.commands().is_empty(),
        "no rebirth was asked for: {:?}",
        edge.commands()
    );

    // A gap that stays open: the rebirth request comes once the timeout has run out.
    edge.send(json!({"cmd": "gap"}));
    edge.publish(json!({"cmd": "ndata", "alias": 1, "type": "Double", "value": 99.0}));
    edge.expect("the rebirth request", |v| {
        is_command(v, "ncmd", "Node Control/Rebirth", "true")
    });
    edge.expect("its births again", |v| v["event"] == "birth");
    host.expect_value_eq("press1", "temp", 20.5);
    edge.send(json!({"cmd": "quit"}));
    host.quit_ok();
}

/// The STATE messages of host `scada` as `mosquitto_sub` prints them (`RETAIN PAYLOAD`), from
/// the retained one on. Killed on drop.
struct StateWatch {
    child: Child,
    lines: Receiver<String>,
}

impl StateWatch {
    fn start(port: u16) -> StateWatch {
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
            .args(["-t", "spBv1.0/STATE/scada", "-q", "1", "-F", "%r %p"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto_sub: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        StateWatch { child, lines }
    }

    /// The next STATE message: whether it was retained, and its JSON.
    fn next(&mut self, what: &str) -> (bool, Value) {
        let line = self
            .lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("no STATE message ({what}) within {TIMEOUT:?}"));
        let (retain, payload) = line.split_once(' ').unwrap_or(("", &line));
        let json = serde_json::from_str(payload)
            .unwrap_or_else(|e| panic!("{what}: STATE {line:?} is not JSON: {e}"));
        (retain == "1", json)
    }
}

impl Drop for StateWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 19: a primary host connects with a clean session, and before every intended
/// disconnect (new parameters, `quit`) publishes `online: false` with the time of the
/// disconnect, so the retained STATE never says online for a host that left
/// (tck-id-host-topic-phid-death-payload-disconnect-clean).
#[test]
fn a_primary_host_says_offline_before_it_disconnects() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let mut host = SimHost::start_on(&broker, &config(port));
    host.wait_connected();
    let log = broker.wait_log("the line's CONNECT", |l| l.contains("as D2000kom ("));
    assert!(
        log.contains("as D2000kom (p2, c1,"),
        "Clean Session set: {log}"
    );

    let mut watch = StateWatch::start(port);
    let (retained, first) = watch.next("the retained birth");
    assert!(retained && first["online"] == true, "{first}");
    let born = first["timestamp"].as_u64().unwrap();

    // New parameters: offline, then online again after the reconnect (twice, perhaps: the
    // new connection also receives the retained offline, which a primary host answers).
    host.send("set sparkplug_rebirth_debounce 1");
    let (_, offline) = watch.next("offline before the reconnect");
    assert_eq!(offline["online"], false, "{offline}");
    assert!(offline["timestamp"].as_u64().unwrap() >= born, "{offline}");
    let (_, online) = watch.next("online after the reconnect");
    assert_eq!(online["online"], true, "{online}");
    host.wait_connected();

    host.quit_ok();
    let last = loop {
        let (_, state) = watch.next("offline before quitting");
        if state["online"] == false {
            break state;
        }
    };
    assert!(
        last["timestamp"].as_u64().unwrap() >= online["timestamp"].as_u64().unwrap(),
        "{last} after {online}"
    );
    // A clean DISCONNECT followed, so the broker dropped the will: what a node connecting now
    // sees is the offline STATE of the disconnect, not the will of the connection.
    broker.wait_log("the line's DISCONNECT", |l| {
        l.matches("Client D2000kom disconnected.").count() == 2
    });
    let state = subscribe_one(port, "spBv1.0/STATE/scada").wait();
    assert!(state.retain, "{state:?}");
    let state: Value = serde_json::from_slice(&state.payload).unwrap();
    assert_eq!(state, last);
}
