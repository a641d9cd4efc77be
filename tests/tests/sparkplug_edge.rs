//! Issue 20: the line as a Sparkplug B edge node, end to end on a private mosquitto, against our
//! own line in the host role (`payload_type = "Sparkplug B"`) and an independent watcher
//! (`mosquitto_sub`) that decodes what the edge node publishes: values with their times, host
//! writes into the edge's input tags, rebirth, NDEATH on SIGKILL, DDEATH/DBIRTH on station
//! off/on, the primary host offline and back, store-and-forward across a broker outage; and
//! pysparkplug (PyPI) as an independent host. Without pysparkplug in `tests/sparkplug/.venv` its
//! test fails, saying how to install it (`tests/run.sh` does).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

use mqtt_line_core::parts::sparkplug_payload::{decode, encode, Metric, MetricValue, Payload};
use mqtt_line_e2e::{
    assert_example_checks_clean, ev, missing, publish, JsonLinesChild, LineConfig, Mosquitto,
    SimHost, StationConfig, TIMEOUT,
};
use serde_json::{json, Value};

/// Every message on a topic filter, decoded, as `mosquitto_sub -v` prints it; killed on drop.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<(String, Payload)>,
}

impl Watch {
    /// Subscribed (the SUBACK arrived) when this returns.
    fn start(port: u16, filter: &str) -> Watch {
        let mut child = Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args([
                "-V",
                "mqttv311",
                "-t",
                filter,
                "-q",
                "1",
                "-d",
                "-F",
                "MSG= %t %x",
            ])
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
        let mut w = Watch {
            child,
            lines,
            seen: Vec::new(),
        };
        w.next_line("the SUBACK", |l| l.starts_with("Subscribed (mid"));
        w
    }

    fn next_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "mosquitto_sub: no {what} within {TIMEOUT:?}; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits for the next message whose topic ends with `kind` (`NBIRTH/edge1`, ...), passing
    /// over others (kept in `seen`).
    fn expect(&mut self, kind: &str) -> Payload {
        loop {
            let line = self.next_line(kind, |l| l.starts_with("MSG= "));
            let mut fields = line.split(' ').skip(1);
            let topic = fields.next().unwrap_or_default().to_string();
            let hex = fields.next().unwrap_or_default();
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            let p = decode(&bytes).unwrap_or_else(|e| panic!("{topic}: {e}"));
            self.seen.push((topic.clone(), p.clone()));
            if topic.ends_with(kind) {
                return p;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host line: our own line as a Sparkplug host application.
fn host_config(port: u16) -> LineConfig {
    LineConfig::new(port)
        .param("payload_type", "Sparkplug B")
        .param("client_id", "scada-host")
        .param("sparkplug_host_id", "scada")
        .param("clean_session", "YES")
        .station(
            StationConfig::new("edge1", "plant/edge1")
                .tag("temp", "SPB=Temperature", "Ai")
                .tag("setpoint", "SPB=Setpoint", "Ao"),
        )
        .station(StationConfig::new("plc", "plant/edge1/plc").tag("speed", "SPB=Speed", "Ai"))
}

/// The edge line: node `plant/edge1` and its device `plc`.
fn edge_config(port: u16) -> LineConfig {
    LineConfig::new(port)
        .param("payload_type", "Sparkplug Edge Node")
        .param("client_id", "edge1")
        .station(
            StationConfig::new("edge1", "plant/edge1")
                .tag("temp", "SPB=Temperature", "Ao")
                .tag("setpoint", "SPB=Setpoint", "Ai"),
        )
        .station(StationConfig::new("plc", "plant/edge1/plc").tag("speed", "SPB=Speed", "Ao"))
}

/// Unix ms as sim-host prints a time with milliseconds (RFC 3339, UTC).
fn rfc3339_ms(ms: u64) -> String {
    let (secs, milli) = (ms / 1000, ms % 1000);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days since 1970-01-01 to a civil date (the proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn write_ok(sim: &mut SimHost, station: &str, tag: &str, value: &str) {
    sim.send(&format!("write {station} {tag} {value}"));
    let done = sim.expect_write(station, tag);
    assert_eq!(ev::write_ok(&done), Some(true), "{done}");
}

fn sole_metric(p: &Payload) -> &Metric {
    assert_eq!(p.metrics.len(), 1, "{p:?}");
    &p.metrics[0]
}

#[test]
fn own_host_line_values_commands_rebirth_station_off_on_and_kill() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let mut host = SimHost::start_on(&broker, &host_config(port));
    host.wait_connected();
    let mut watch = Watch::start(port, "spBv1.0/plant/+/edge1/#");
    let mut edge = SimHost::start_on(&broker, &edge_config(port));
    edge.wait_connected();
    let nbirth = watch.expect("NBIRTH/edge1");
    assert_eq!(nbirth.seq, Some(0));
    watch.expect("DBIRTH/edge1/plc");
    host.expect_station("edge1", "ok");
    host.expect_station("plc", "ok");

    // A value written on the edge line arrives in the host line's tag, with its time.
    write_ok(&mut edge, "edge1", "temp", "21.5");
    let ndata = watch.expect("NDATA/edge1");
    let m = sole_metric(&ndata);
    assert!(m.name.is_none() && m.alias.is_some(), "by alias: {m:?}");
    let got = host.expect_value_eq("edge1", "temp", 21.5);
    assert_eq!(got["time_from_payload"], true, "{got}");
    assert_eq!(got["time"], rfc3339_ms(m.timestamp.unwrap()), "{got}");
    write_ok(&mut edge, "plc", "speed", "3");
    watch.expect("DDATA/edge1/plc");
    host.expect_value_eq("plc", "speed", 3.0);

    // A write on the host line (NCMD) arrives in the edge line's input tag.
    write_ok(&mut host, "edge1", "setpoint", "42");
    edge.expect_value_eq("edge1", "setpoint", 42.0);

    // A rebirth request: NBIRTH again with seq 0 and the same bdSeq, then the DBIRTH.
    let bd_seq = |p: &Payload| {
        p.metrics
            .iter()
            .find(|m| m.name.as_deref() == Some("bdSeq"))
            .and_then(|m| m.value.clone())
    };
    let rebirth = Payload {
        timestamp: Some(1),
        metrics: vec![Metric {
            name: Some("Node Control/Rebirth".into()),
            datatype: Some(11),
            value: Some(MetricValue::Boolean(true)),
            ..Default::default()
        }],
        ..Default::default()
    };
    publish(
        port,
        "spBv1.0/plant/NCMD/edge1",
        &encode(&rebirth),
        0,
        false,
    );
    let again = watch.expect("NBIRTH/edge1");
    assert_eq!(again.seq, Some(0));
    assert_eq!(bd_seq(&again), bd_seq(&nbirth));
    let temp = again
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("Temperature"))
        .unwrap();
    assert_eq!(
        temp.value,
        Some(MetricValue::Double(21.5)),
        "the current value"
    );
    watch.expect("DBIRTH/edge1/plc");

    // A device station off: DDEATH; on: DBIRTH.
    edge.send("station plc off");
    watch.expect("DDEATH/edge1/plc");
    host.expect_station("plc", "hard_error");
    edge.send("station plc on");
    watch.expect("DBIRTH/edge1/plc");
    host.expect_station("plc", "ok");

    // SIGKILL of the edge process: the broker publishes its will, the NDEATH of this bdSeq.
    edge.signal("KILL");
    let death = watch.expect("NDEATH/edge1");
    assert_eq!(bd_seq(&death), bd_seq(&nbirth));
    host.expect_station("edge1", "hard_error");
    host.expect_station("plc", "hard_error");
    host.quit_ok();
}

#[test]
fn primary_host_offline_and_back_and_store_and_forward_across_a_broker_outage() {
    let mut broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("edge.store");
    let edge_cfg = edge_config(port)
        .param("sparkplug_primary_host_id", "scada")
        .param("store_path", store.to_str().unwrap());
    let mut watch = Watch::start(port, "spBv1.0/plant/+/edge1/#");
    let mut edge = SimHost::start_on(&broker, &edge_cfg);
    edge.wait_connected();
    // No host yet: no births; writes are stored and done at once.
    write_ok(&mut edge, "edge1", "temp", "1");
    let mut host = SimHost::start_on(&broker, &host_config(port));
    host.wait_connected();
    watch.expect("NBIRTH/edge1");
    let first = watch.expect("NDATA/edge1");
    assert_eq!(sole_metric(&first).is_historical, Some(true));
    host.expect_value_eq("edge1", "temp", 1.0);

    // The primary host dies: its will says offline; the node sends NDEATH and waits.
    host.signal("KILL");
    watch.expect("NDEATH/edge1");
    edge.expect_disconnected();
    edge.wait_connected();
    write_ok(&mut edge, "edge1", "temp", "2");
    let mut host = SimHost::start_on(&broker, &host_config(port));
    host.wait_connected();
    watch.expect("NBIRTH/edge1");
    let stored = watch.expect("NDATA/edge1");
    assert_eq!(sole_metric(&stored).value, Some(MetricValue::Double(2.0)));
    assert_eq!(sole_metric(&stored).is_historical, Some(true));
    host.expect_value_eq("edge1", "temp", 2.0);

    // A broker outage: writes are stored, then forwarded in order with their own times. The
    // host comes back after the watcher is subscribed again, so that the births wait for it.
    broker.stop();
    edge.expect_disconnected();
    host.expect_disconnected();
    host.signal("KILL");
    let values = ["10", "11", "12"];
    for v in values {
        write_ok(&mut edge, "edge1", "temp", v);
    }
    broker.restart();
    let mut watch = Watch::start(port, "spBv1.0/plant/+/edge1/#");
    edge.wait_connected();
    let mut host = SimHost::start_on(&broker, &host_config(port));
    host.wait_connected();
    watch.expect("NBIRTH/edge1");
    let mut forwarded = Vec::new();
    for _ in values {
        let p = watch.expect("NDATA/edge1");
        let m = sole_metric(&p).clone();
        assert_eq!(m.is_historical, Some(true), "{m:?}");
        forwarded.push((m.value.clone(), m.timestamp.unwrap()));
    }
    let got: Vec<_> = forwarded.iter().map(|(v, _)| v.clone()).collect();
    assert_eq!(
        got,
        [10.0, 11.0, 12.0].map(|v| Some(MetricValue::Double(v))),
        "in order, each once"
    );
    assert!(
        forwarded.windows(2).all(|w| w[0].1 <= w[1].1),
        "{forwarded:?}"
    );
    let last = host.expect("the last forwarded value with its own time", |e| {
        ev::is_value_of(e, "edge1", "temp", &json!(12.0))
            && e["time"] == Value::String(rfc3339_ms(forwarded[2].1))
    });
    assert_eq!(last["time_from_payload"], true);
    // Nothing more: a live write goes out once, not historical.
    write_ok(&mut edge, "edge1", "temp", "13");
    let live = watch.expect("NDATA/edge1");
    assert_eq!(sole_metric(&live).value, Some(MetricValue::Double(13.0)));
    assert_eq!(sole_metric(&live).is_historical, None);
    let extra: Vec<_> = watch
        .seen
        .iter()
        .filter(|(t, _)| t.ends_with("NDATA/edge1"))
        .collect();
    assert_eq!(extra.len(), 4, "no write forwarded twice: {extra:?}");
    // The counters through the C ABI (sim-host `stats`): the five writes made while the node was
    // not born were stored and forwarded, none dropped, none left in the store; the live one is
    // in neither.
    edge.send("stats");
    let stats = edge.expect("the stats answer", |e| ev::kind(e) == "stats");
    let l = &stats["line"];
    let counters = ["edge_stored", "edge_forwarded", "edge_dropped", "edge_held"]
        .map(|c| l[c].as_u64().unwrap_or_else(|| panic!("no {c}: {stats}")));
    assert_eq!(
        counters,
        [5, 5, 0, 0],
        "stored, forwarded, dropped, held: {stats}"
    );
    edge.quit_ok();
    host.quit_ok();
}

/// pysparkplug (PyPI) as an independent host: `tests/sparkplug/host.py` in the virtual
/// environment tests/run.sh makes (`tests/sparkplug/.venv`); its JSON lines on stdout, its
/// commands on stdin. Killed on drop.
struct PyHost(JsonLinesChild);

fn python() -> std::path::PathBuf {
    mqtt_line_e2e::workspace_dir().join("tests/sparkplug/.venv/bin/python")
}

/// Fails the calling test when pysparkplug is not installed in tests/sparkplug/.venv.
fn require_pysparkplug() {
    let ok = Command::new(python())
        .args(["-c", "import pysparkplug"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(ok, Ok(s) if s.success()) {
        missing(
            &format!("pysparkplug is not installed in {}", python().display()),
            "`python3 -m venv tests/sparkplug/.venv` and `tests/sparkplug/.venv/bin/pip install \
             pysparkplug==0.6.1`",
        );
    }
}

impl PyHost {
    fn start(port: u16, group: &str) -> PyHost {
        let script = mqtt_line_e2e::workspace_dir().join("tests/sparkplug/host.py");
        let mut cmd = Command::new(python());
        cmd.arg(script).args([&port.to_string(), group]);
        let mut host = JsonLinesChild::start("pysparkplug", cmd);
        host.expect("ready", |v| v["event"] == "ready");
        PyHost(host)
    }

    fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.0.expect(what, pred)
    }

    /// Sends a command and waits until host.py has published it.
    fn send(&mut self, command: Value) {
        self.0.send(command);
        self.expect("that it sent the command", |v| v["event"] == "sent");
    }
}

fn py_metric<'a>(message: &'a Value, name: &str) -> &'a Value {
    message["metrics"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no metric {name} in {message}"))
}

#[test]
fn pysparkplug_host_reads_births_and_data_and_sends_commands() {
    require_pysparkplug();
    let broker = Mosquitto::start();
    let port = broker.port();
    let mut py = PyHost::start(port, "plant");
    let mut edge = SimHost::start_on(&broker, &edge_config(port));
    edge.wait_connected();
    let is = |kind: &'static str| move |v: &Value| v["event"] == "message" && v["type"] == kind;
    let nbirth = py.expect("NBIRTH", is("NBIRTH"));
    assert_eq!(nbirth["seq"], 0, "{nbirth}");
    assert_eq!(py_metric(&nbirth, "bdSeq")["type"], "INT64");
    assert_eq!(py_metric(&nbirth, "Node Control/Rebirth")["value"], false);
    let temp = py_metric(&nbirth, "Temperature");
    assert_eq!(
        (&temp["type"], &temp["is_null"]),
        (&json!("DOUBLE"), &json!(true))
    );
    let dbirth = py.expect("DBIRTH", is("DBIRTH"));
    assert_eq!(
        (&dbirth["device"], &dbirth["seq"]),
        (&json!("plc"), &json!(1))
    );

    // Data by alias, which pysparkplug resolves to the birth's names.
    write_ok(&mut edge, "edge1", "temp", "5.5");
    let ndata = py.expect("NDATA", is("NDATA"));
    assert_eq!(ndata["seq"], 2);
    assert_eq!(ndata["metrics"][0]["alias"], temp["alias"], "{ndata}");
    assert_eq!(ndata["metrics"][0]["value"], 5.5, "{ndata}");
    write_ok(&mut edge, "plc", "speed", "7");
    let ddata = py.expect("DDATA", is("DDATA"));
    assert_eq!(
        (&ddata["seq"], &ddata["metrics"][0]["value"]),
        (&json!(3), &json!(7.0))
    );

    // Its NCMD reaches the input tag; its rebirth request gets the births again.
    py.send(json!({"cmd": "ncmd", "node": "edge1", "name": "Setpoint", "type": "Double", "value": 12.5}));
    edge.expect_value_eq("edge1", "setpoint", 12.5);
    py.send(json!({"cmd": "ncmd", "node": "edge1", "name": "Node Control/Rebirth", "type": "Boolean", "value": true}));
    let again = py.expect("NBIRTH again", is("NBIRTH"));
    assert_eq!(again["seq"], 0);
    assert_eq!(
        py_metric(&again, "bdSeq")["value"],
        py_metric(&nbirth, "bdSeq")["value"]
    );
    assert_eq!(py_metric(&again, "Temperature")["value"], 5.5);
    py.expect("DBIRTH again", is("DBIRTH"));
    edge.quit_ok();
    // A clean stop: NDEATH before DISCONNECT.
    let death = py.expect("NDEATH", is("NDEATH"));
    assert_eq!(
        py_metric(&death, "bdSeq")["value"],
        py_metric(&nbirth, "bdSeq")["value"]
    );
}

/// examples/sparkplug-edge.toml is a valid configuration, without warnings.
#[test]
fn the_edge_example_configuration_checks_clean() {
    assert_example_checks_clean(
        "sparkplug-edge.toml",
        "configuration OK: 2 stations, 7 tags",
    );
}

/// With `store_path`, writes stored by one process are forwarded by the next, and the next
/// process's bdSeq follows the one saved beside the store.
#[test]
fn stored_writes_and_bd_seq_survive_a_restart_of_the_process() {
    let broker = Mosquitto::start();
    let port = broker.port();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("edge.store");
    let edge_cfg = edge_config(port)
        .param("sparkplug_primary_host_id", "scada")
        .param("store_path", store.to_str().unwrap());
    // No primary host: nothing is born, the writes are stored (in the file).
    let mut edge = SimHost::start_on(&broker, &edge_cfg);
    edge.wait_connected();
    for v in ["1", "2"] {
        write_ok(&mut edge, "edge1", "temp", v);
    }
    write_ok(&mut edge, "plc", "speed", "3");
    edge.quit_ok();
    let saved: u64 = std::fs::read_to_string(dir.path().join("edge.store.bdseq"))
        .expect("the bdSeq file")
        .trim()
        .parse()
        .expect("a number");
    assert!(std::fs::metadata(&store).expect("the store file").len() > 0);

    // The next process forwards them once the host is online.
    let mut watch = Watch::start(port, "spBv1.0/plant/+/edge1/#");
    let mut edge = SimHost::start_on(&broker, &edge_cfg);
    edge.wait_connected();
    let mut host = SimHost::start_on(&broker, &host_config(port));
    host.wait_connected();
    let nbirth = watch.expect("NBIRTH/edge1");
    let bd_seq = nbirth
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("bdSeq"))
        .and_then(|m| m.value.clone());
    assert_eq!(bd_seq, Some(MetricValue::Long((saved + 1) % 256)));
    let mut forwarded = Vec::new();
    for kind in ["NDATA/edge1", "NDATA/edge1", "DDATA/edge1/plc"] {
        let p = watch.expect(kind);
        let m = sole_metric(&p);
        assert_eq!(m.is_historical, Some(true), "{m:?}");
        forwarded.push(m.value.clone());
    }
    assert_eq!(
        forwarded,
        [1.0, 2.0, 3.0].map(|v| Some(MetricValue::Double(v))),
        "in their original order"
    );
    host.expect_value_eq("plc", "speed", 3.0);
    edge.quit_ok();
    host.quit_ok();
    // Forwarded: the file is empty again.
    assert_eq!(std::fs::metadata(&store).unwrap().len(), 0);
}
