//! Issue 22 end to end: `sim-host record` from a private mosquitto fed with the shared LoRaWAN
//! uplinks, Kepware arrays, WCC Lite CSV, Sparkplug births and data and hostile payloads;
//! `sim-host replay` of the recording against examples/*.toml; `sim-host suggest`, `check` and
//! the replay of the suggestion, where every message must be routed and every tag get a value.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mqtt_line_e2e::{
    free_port, plugin_path, publish, sim_host_path, workspace_dir, Mosquitto, Pki, Spawned,
    CLIENT_CN, WEBSOCKET_LISTENER,
};
use serde_json::Value;

fn payload_dir() -> PathBuf {
    workspace_dir().join("../shared/payloads")
}

/// Starts `sim-host record ARGS -o OUT` and waits until it has subscribed.
fn record_to<S: AsRef<std::ffi::OsStr>>(args: &[S], out: &Path) -> Spawned {
    let mut cmd = Command::new(sim_host_path());
    cmd.arg("record")
        .args(args)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::null());
    let rec = Spawned::start("sim-host record", cmd);
    wait_stderr(
        &rec,
        "the recorder's subscription",
        "INFO record: subscribed",
    );
    rec
}

/// Starts `sim-host record` on `broker` with `filter` until `count` messages, and waits until it
/// has subscribed.
fn start_recording(broker: &Mosquitto, filter: &str, count: usize, out: &Path) -> Spawned {
    let (port, count) = (broker.port().to_string(), count.to_string());
    record_to(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--topic-filter",
            filter,
            "--count",
            &count,
        ],
        out,
    )
}

/// Waits (bounded) until the process's stderr holds `needle`.
fn wait_stderr(p: &Spawned, what: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !p.stderr().contains(needle) {
        assert!(Instant::now() < deadline, "no {what}:\n{}", p.report());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sim_host(args: &[&str]) -> Output {
    Command::new(sim_host_path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("sim-host runs")
}

fn replay_args<'a>(config: &'a str, file: &'a str, plugin: &'a str) -> Vec<&'a str> {
    vec![
        "replay",
        config,
        file,
        "--as-fast-as-possible",
        "--json",
        "--plugin",
        plugin,
    ]
}

/// The JSON lines of stdout whose `event` is `name`.
fn events(out: &Output, name: &str) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == name)
        .collect()
}

/// Replays `file` against `config`; returns the summary.
fn replay(config: &Path, file: &Path) -> Value {
    let plugin = plugin_path();
    let args = replay_args(
        config.to_str().expect("utf-8 path"),
        file.to_str().expect("utf-8 path"),
        plugin.to_str().expect("utf-8 path"),
    );
    let out = sim_host(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "replay {} failed: {stderr}",
        config.display()
    );
    let mut summaries = events(&out, "replay_summary");
    assert_eq!(summaries.len(), 1, "one summary: {stderr}");
    summaries.remove(0)
}

fn count_of(summary: &Value, station: &str) -> u64 {
    summary["per_station"][station].as_u64().unwrap_or(0)
}

/// Suggests a configuration for `file`, checks it and replays it: everything must be routed,
/// received and valued. Returns the suggestion's path and text.
fn suggest_check_replay(dir: &Path, file: &Path, messages: u64) -> (PathBuf, String) {
    let out = sim_host(&["suggest", file.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "suggest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("the suggestion is UTF-8");
    let path = dir.join("suggested.toml");
    std::fs::write(&path, &text).expect("write the suggestion");
    let plugin = plugin_path();
    let check = sim_host(&[
        "check",
        path.to_str().expect("utf-8 path"),
        "--plugin",
        plugin.to_str().expect("utf-8 path"),
    ]);
    assert!(
        check.status.success(),
        "the suggestion does not pass check: {}\n{text}",
        String::from_utf8_lossy(&check.stderr)
    );
    let summary = replay(&path, file);
    assert_eq!(summary["messages"], messages, "{summary}\n{text}");
    assert_eq!(summary["not_received"], 0, "{summary}");
    assert_eq!(
        summary["unrouted_topics"],
        serde_json::json!({}),
        "{summary}\n{text}"
    );
    let routed: u64 = summary["per_station"]
        .as_object()
        .expect("per_station")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(routed, messages, "{summary}");
    assert_eq!(
        summary["tags_without_value"],
        serde_json::json!([]),
        "{summary}\n{text}"
    );
    assert_eq!(
        summary["tags_only_invalid"],
        serde_json::json!([]),
        "{summary}\n{text}"
    );
    (path, text)
}

/// The plant: every shared uplink, Kepware arrays, WCC Lite records, a battery level and the
/// hostile payloads. Returns (topic, payload) in publishing order.
fn plant_messages() -> Vec<(String, Vec<u8>)> {
    let mut msgs = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(payload_dir())
        .expect("../shared/payloads beside the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "jsonc"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the shared payloads are there");
    for (i, f) in files.iter().enumerate() {
        let body = std::fs::read(f).expect("payload file");
        // Valid uplinks form one family; the broken ones go to a topic of their own.
        let topic = if serde_json::from_slice::<Value>(&body).is_ok() {
            format!("application/7/device/a84041000181{i:04}/event/up")
        } else {
            "lns/invalid".to_string()
        };
        msgs.push((topic, body));
    }
    for (ts, v1, v2) in [(1_700_000_000_000u64, 1.5, 7), (1_700_000_001_000, 2.25, 8)] {
        let kep = format!(
            r#"{{"timestamp":{ts},"values":[{{"id":"Channel1.Device1.Tag1","v":{v1},"q":true,"t":{ts}}},{{"id":"Channel1.Device1.Tag2","v":true,"q":true,"t":{ts}}},{{"id":"Channel1.Device1.Tag3","v":{v2},"q":true,"t":{ts}}}]}}"#
        );
        msgs.push(("iotgateway".into(), kep.into_bytes()));
    }
    msgs.push((
        "tag/rtu1/voltage/in".into(),
        b"231.5,1700000000123,1".to_vec(),
    ));
    msgs.push(("tag/rtu1/breaker/in".into(), b"1,1700000000123,1".to_vec()));
    msgs.push(("status/battery".into(), b"77".to_vec()));
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    msgs.push(("hostile/binary".into(), binary));
    msgs.push(("hostile/huge".into(), vec![b'A'; 3 * 1024 * 1024]));
    msgs.push((
        "hostile/control".into(),
        b"a\x1b[31mred\x07\r\n\x00b".to_vec(),
    ));
    msgs.push(("hostile/with space/ünïcode".into(), b"{\"x\":1}".to_vec()));
    msgs
}

#[test]
fn plant_traffic_is_recorded_replayed_against_the_examples_and_a_suggestion_routes_everything() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("plant.jsonl.gz");
    let msgs = plant_messages();
    let mut rec = start_recording(&broker, "#", msgs.len(), &file);
    // QoS 1 one after another: they reach the recorder in this order.
    for (topic, payload) in &msgs {
        publish(broker.port(), topic, payload, 1, false);
    }
    let status = rec.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "record failed:\n{}", rec.report());
    assert!(rec.stderr().contains("count reached"), "{}", rec.report());

    // The bytes come back exactly, the hostile ones included (the file is gzip: .gz).
    let raw = std::fs::read(&file).expect("recording");
    assert_eq!(&raw[..2], &[0x1f, 0x8b], "gzip-compressed");
    let text = {
        let mut d = flate2::read::GzDecoder::new(&raw[..]);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut d, &mut s).expect("gunzip");
        s
    };
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert_eq!(lines[0]["format"], "mqtt-line-recording");
    assert_eq!(lines.len(), msgs.len() + 1);
    let binary = lines
        .iter()
        .find(|l| l["topic"] == "hostile/binary")
        .expect("binary recorded");
    assert_eq!(binary["payload_base64"].as_str().map(str::len), Some(344));
    let control = lines
        .iter()
        .find(|l| l["topic"] == "hostile/control")
        .expect("control recorded");
    assert_eq!(control["payload"], "a\u{1b}[31mred\u{7}\r\n\u{0}b");
    assert_eq!(control["qos"], 1);

    // Against the shipped examples.
    let examples = workspace_dir().join("examples");
    let kep = replay(&examples.join("kepware.toml"), &file);
    assert_eq!(count_of(&kep, "kep"), 2, "{kep}");
    assert_eq!(kep["tags_without_value"], serde_json::json!([]), "{kep}");
    let wcc = replay(&examples.join("wcc-lite.toml"), &file);
    assert_eq!(count_of(&wcc, "voltage"), 1, "{wcc}");
    assert_eq!(count_of(&wcc, "breaker"), 1, "{wcc}");
    let demo = replay(&examples.join("demo.toml"), &file);
    assert_eq!(count_of(&demo, "battery"), 1, "{demo}");
    assert_eq!(demo["messages"], msgs.len() as u64, "{demo}");
    let line = replay(&examples.join("line.toml"), &file);
    assert_eq!(line["messages"], msgs.len() as u64, "{line}");
    // The Sparkplug example hears nothing of this plant: its filter is spBv1.0/#.
    // (It hears its own STATE message, which no station takes.)
    let spb = replay(&examples.join("sparkplug.toml"), &file);
    assert_eq!(spb["per_station"], serde_json::json!({}), "{spb}");
    assert_eq!(spb["not_received"], 0, "{spb}");

    let (suggested, text) = suggest_check_replay(dir.path(), &file, msgs.len() as u64);
    assert!(
        text.contains("address = \"application/[^/]+/device/[^/]+/event/up\""),
        "{text}"
    );
    assert!(
        text.contains(r#"address = "JA=values[id=\"Channel1.Device1.Tag1\"].v""#),
        "{text}"
    );
    assert!(text.contains("address = \"CSV=2\""), "{text}");
    assert!(text.contains("time_mask = \"UNIXMS\""), "{text}");

    // --diff: the WCC Lite example against the suggestion, on the same recording.
    let plugin = plugin_path();
    let wcc_path = examples.join("wcc-lite.toml");
    let mut args = replay_args(
        wcc_path.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
        plugin.to_str().expect("utf-8"),
    );
    args.extend(["--diff", suggested.to_str().expect("utf-8")]);
    let out = sim_host(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff = events(&out, "replay_diff");
    assert_eq!(diff.len(), 1, "{}", String::from_utf8_lossy(&out.stdout));
    let routes = diff[0]["routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["topic"] == "tag/rtu1/voltage/in" && r["from"] == "voltage"),
        "{}",
        diff[0]
    );
    assert!(
        diff[0]["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|c| c["tag"] == "voltage.value")),
        "{}",
        diff[0]
    );
}

// ---- Sparkplug B, encoded by hand (protobuf wire format) ----

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn field_bytes(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(number << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn field_varint(number: u64, v: u64, out: &mut Vec<u8>) {
    varint(number << 3, out);
    varint(v, out);
}

enum Metric<'a> {
    Long(&'a str, u32, u64),
    Double(&'a str, f64),
    Bool(&'a str, bool),
    Text(&'a str, &'a str),
}

fn metric(m: &Metric) -> Vec<u8> {
    let mut out = Vec::new();
    match m {
        Metric::Long(name, datatype, v) => {
            field_bytes(1, name.as_bytes(), &mut out);
            field_varint(4, u64::from(*datatype), &mut out);
            // Int8..Int32 and UInt8..UInt32 travel in int_value, the 64-bit ones in long_value.
            let field = if matches!(datatype, 1..=3 | 5..=7) {
                10
            } else {
                11
            };
            field_varint(field, *v, &mut out);
        }
        Metric::Double(name, v) => {
            field_bytes(1, name.as_bytes(), &mut out);
            field_varint(4, 10, &mut out);
            varint(13 << 3 | 1, &mut out);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Metric::Bool(name, v) => {
            field_bytes(1, name.as_bytes(), &mut out);
            field_varint(4, 11, &mut out);
            field_varint(14, u64::from(*v), &mut out);
        }
        Metric::Text(name, v) => {
            field_bytes(1, name.as_bytes(), &mut out);
            field_varint(4, 12, &mut out);
            field_bytes(15, v.as_bytes(), &mut out);
        }
    }
    out
}

fn sparkplug_payload(seq: u64, metrics: &[Metric]) -> Vec<u8> {
    let mut out = Vec::new();
    field_varint(1, 1_700_000_000_000, &mut out);
    for m in metrics {
        field_bytes(2, &metric(m), &mut out);
    }
    field_varint(3, seq, &mut out);
    out
}

#[test]
fn sparkplug_births_and_data_are_recorded_and_suggested_with_their_metric_types() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("spb.jsonl");
    let msgs: Vec<(&str, Vec<u8>)> = vec![
        (
            "spBv1.0/plant/NBIRTH/press1",
            sparkplug_payload(
                0,
                &[
                    Metric::Long("bdSeq", 4, 0),
                    Metric::Double("Inputs/Temperature", 21.5),
                    Metric::Text("Outputs/Mode", "auto"),
                    Metric::Long("Outputs/Setpoint", 3, 40),
                ],
            ),
        ),
        (
            "spBv1.0/plant/DBIRTH/press1/plc",
            sparkplug_payload(
                1,
                &[Metric::Double("Speed", 3.5), Metric::Bool("Enable", true)],
            ),
        ),
        (
            "spBv1.0/plant/NDATA/press1",
            sparkplug_payload(2, &[Metric::Double("Inputs/Temperature", 22.0)]),
        ),
        (
            "spBv1.0/plant/DDATA/press1/plc",
            sparkplug_payload(3, &[Metric::Double("Speed", 4.0)]),
        ),
    ];
    let mut rec = start_recording(&broker, "spBv1.0/#", msgs.len(), &file);
    for (topic, payload) in &msgs {
        publish(broker.port(), topic, payload, 1, false);
    }
    assert!(
        rec.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        rec.report()
    );

    let example = replay(&workspace_dir().join("examples/sparkplug.toml"), &file);
    assert_eq!(count_of(&example, "press1"), 2, "{example}");
    assert_eq!(count_of(&example, "plc"), 2, "{example}");

    let (_, text) = suggest_check_replay(dir.path(), &file, msgs.len() as u64);
    assert!(text.contains("payload_type = \"Sparkplug B\""), "{text}");
    for (address, ty) in [
        ("SPB=Inputs/Temperature", "Ai"),
        ("SPB=Outputs/Mode", "TxtI"),
        ("SPB=Outputs/Setpoint", "Ci"),
        ("SPB=Enable", "Di"),
    ] {
        assert!(
            text.contains(&format!("address = \"{address}\"\ntype = \"{ty}\"")),
            "{address} {ty}\n{text}"
        );
    }
    assert!(text.contains("address = \"plant/press1/plc\""), "{text}");
}

#[test]
fn quit_stops_a_recording_with_whole_lines_and_bad_recordings_are_named() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("quit.jsonl");
    let mut cmd = Command::new(sim_host_path());
    cmd.args(["record", "--host", "127.0.0.1", "--port"])
        .arg(broker.port().to_string())
        .arg("-o")
        .arg(&file)
        .stdin(Stdio::piped());
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sim-host record");
    let mut stdin = child.stdin.take().expect("stdin");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the recorder subscribes");
        if line.contains("subscribed") {
            break;
        }
    }
    for i in 0..3 {
        publish(broker.port(), "q/t", format!("m{i}").as_bytes(), 1, false);
    }
    // Progress lines say how many messages are in; wait for all three before quitting.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("progress on stderr");
        if line.contains("3 messages") {
            break;
        }
    }
    stdin.write_all(b"quit\n").expect("quit");
    drop(stdin);
    let status = mqtt_line_e2e::wait_with_deadline(&mut child, Duration::from_secs(20))
        .expect("wait")
        .expect("record exits after quit");
    assert!(status.success());
    let text = std::fs::read_to_string(&file).expect("recording");
    assert!(text.ends_with('\n'), "whole lines only: {text:?}");
    let payloads: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            v["payload"].as_str().expect("text payload").to_string()
        })
        .collect();
    assert_eq!(payloads, ["m0", "m1", "m2"]);

    // A file that is not a recording is named with its line.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"format\":\"mqtt-line-recording\",\"version\":1,\"started\":\"x\"}\n{\"topic\":1}\n",
    )
    .expect("write");
    for args in [
        vec!["suggest", bad.to_str().expect("utf-8")],
        vec![
            "replay",
            "examples/demo.toml",
            bad.to_str().expect("utf-8"),
            "--plugin",
        ],
    ] {
        let mut args = args;
        let plugin = plugin_path();
        let plugin = plugin.to_str().expect("utf-8").to_string();
        if args[0] == "replay" {
            args.push(&plugin);
        }
        let out = Command::new(sim_host_path())
            .args(&args)
            .current_dir(workspace_dir())
            .stdin(Stdio::null())
            .output()
            .expect("sim-host");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("bad.jsonl line 2"), "{stderr}");
    }
}

/// Publishes with mosquitto_pub as MQTT 5 with a content type and a user property.
fn publish_v5(port: u16, topic: &str, payload: &str) {
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-V",
            "mqttv5",
            "-q",
            "1",
        ])
        .args(["-t", topic, "-m", payload])
        .args(["-D", "publish", "content-type", "text/plain"])
        .args(["-D", "publish", "user-property", "site", "north"])
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success(), "mosquitto_pub -V mqttv5 -t {topic}");
}

#[test]
fn mqtt5_properties_are_recorded_and_replayed_to_an_mqtt5_line() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("v5.jsonl");
    let port = broker.port().to_string();
    let mut rec = record_to(
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--protocol-version",
            "5",
            "--count",
            "2",
        ],
        &file,
    );
    publish_v5(broker.port(), "a/one", "1");
    publish_v5(broker.port(), "b/two", "2");
    assert!(
        rec.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        rec.report()
    );
    let text = std::fs::read_to_string(&file).expect("recording");
    let first: Value = serde_json::from_str(text.lines().nth(1).expect("a message")).expect("JSON");
    assert_eq!(first["properties"]["content_type"], "text/plain", "{text}");
    assert_eq!(
        first["properties"]["user_properties"],
        serde_json::json!([["site", "north"]]),
        "{text}"
    );

    // Two topics under one `#` subscription must keep their own topics on the MQTT 5 line.
    let config = dir.path().join("v5.toml");
    std::fs::write(
        &config,
        r#"
[line]
host = "192.0.2.1"
port = 1883

[line.parameters]
protocol_version = 5

[[station]]
name = "one"
address = "a/one"

[[station.tag]]
name = "content_type"
address = "IN_CONTENT_TYPE"
type = "TxtI"

[[station]]
name = "two"
address = "b/two"

[[station.tag]]
name = "topic"
address = "IN_TOPIC"
type = "TxtI"
"#,
    )
    .expect("write the configuration");
    let summary = replay(&config, &file);
    assert_eq!(count_of(&summary, "one"), 1, "{summary}");
    assert_eq!(count_of(&summary, "two"), 1, "{summary}");
    assert_eq!(
        summary["tags_without_value"],
        serde_json::json!([]),
        "{summary}"
    );
    // The content type travelled from the recording through the embedded broker to the line.
    assert_eq!(
        summary["tags_only_invalid"],
        serde_json::json!([]),
        "{summary}"
    );
}

/// The messages of a recording (header skipped), as (topic, payload bytes).
fn recorded(file: &Path) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let text = std::fs::read_to_string(file).expect("recording");
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("every line is JSON");
            let payload = match v["payload"].as_str() {
                Some(s) => s.as_bytes().to_vec(),
                None => base64::engine::general_purpose::STANDARD
                    .decode(v["payload_base64"].as_str().expect("payload_base64"))
                    .expect("base64"),
            };
            (v["topic"].as_str().expect("topic").to_string(), payload)
        })
        .collect()
}

/// `sim-host record` with `args` until `count` messages; waits until it has subscribed.
fn start_recording_with(args: &[String], count: usize, out: &Path) -> Spawned {
    let mut args = args.to_vec();
    args.extend(["--topic-filter".into(), "rec/#".into(), "--count".into()]);
    args.push(count.to_string());
    record_to(&args, out)
}

/// Issue 22's "TLS, WebSocket ... as for a line": one mosquitto with a TLS listener that
/// requires a client certificate, a WebSocket listener and a WebSocket-over-TLS listener; a
/// recorder on each (options on the command line for TLS and ws, a line configuration for wss);
/// what the plain listener gets published is recorded byte for byte by all three.
#[test]
fn record_over_tls_with_a_client_certificate_and_over_websockets_keeps_the_bytes() {
    let pki = Pki::generate();
    let (tls_port, ws_port, wss_port) = (free_port(), free_port(), free_port());
    let tls = |more: &[&str]| {
        let mut l = pki.tls_listener_lines("server.crt", "server.key");
        l.extend(more.iter().map(|s| s.to_string()));
        l
    };
    let broker = Mosquitto::builder()
        .listener(
            tls_port,
            tls(&["require_certificate true", "use_identity_as_username true"]),
        )
        .listener(ws_port, WEBSOCKET_LISTENER)
        .listener(wss_port, tls(&WEBSOCKET_LISTENER))
        .start();
    let dir = tempfile::tempdir().expect("temp dir");
    let msgs: Vec<(String, Vec<u8>)> = vec![
        ("rec/json".into(), br#"{"t":21.5}"#.to_vec()),
        ("rec/binary".into(), (0u8..=255).collect()),
        ("rec/control".into(), b"a\x1b[31m\x00\r\nb".to_vec()),
        ("rec/big".into(), vec![b'x'; 300_000]),
    ];

    let tls_file = dir.path().join("tls.jsonl");
    let tls_args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &tls_port.to_string(),
        "--tls-ca-file",
        &pki.path_text("ca.crt"),
        "--tls-client-cert-file",
        &pki.path_text("client.crt"),
        "--tls-client-key-file",
        &pki.path_text("client.key"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut tls_rec = start_recording_with(&tls_args, msgs.len(), &tls_file);

    let ws_file = dir.path().join("ws.jsonl");
    let ws_args: Vec<String> = [
        "--host",
        "127.0.0.1",
        "--port",
        &ws_port.to_string(),
        "--transport",
        "websocket",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut ws_rec = start_recording_with(&ws_args, msgs.len(), &ws_file);

    // wss from a line configuration: the line's own parameter names.
    let config = dir.path().join("wss-line.toml");
    std::fs::write(
        &config,
        format!(
            "[line]\nhost = \"127.0.0.1\"\nport = {wss_port}\n\n[line.parameters]\n\
             transport = \"websocket\"\nws_path = \"/mqtt\"\ntls = \"YES\"\n\
             tls_ca_file = \"{}\"\n",
            pki.path_text("ca.crt")
        ),
    )
    .expect("config");
    let wss_file = dir.path().join("wss.jsonl");
    let mut wss_rec = start_recording_with(
        &[config.to_str().expect("utf-8").to_string()],
        msgs.len(),
        &wss_file,
    );

    for (topic, payload) in &msgs {
        publish(broker.port(), topic, payload, 1, false);
    }
    for (name, rec, file) in [
        ("tls", &mut tls_rec, &tls_file),
        ("ws", &mut ws_rec, &ws_file),
        ("wss", &mut wss_rec, &wss_file),
    ] {
        let status = rec.wait_exit(Duration::from_secs(30));
        assert!(status.success(), "{name} record failed:\n{}", rec.report());
        assert!(rec.stderr().contains("count reached"), "{}", rec.report());
        assert_eq!(recorded(file), msgs, "{name}: the bytes come back exactly");
    }
    // The certificate's common name was the recorder's user name at the TLS listener.
    assert!(
        broker.log().contains(CLIENT_CN),
        "the broker saw the client certificate:\n{}",
        broker.log_tail()
    );
}

/// A broker certificate from a CA the recorder was not given is refused, and the error says so
/// (the TLS reason, not only "connection closed"); a CA file that cannot be read is named before
/// anything connects.
#[test]
fn record_over_tls_names_a_wrong_ca_and_a_missing_ca_file() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let broker = Mosquitto::builder()
        .listener(tls_port, pki.tls_listener_lines("server.crt", "server.key"))
        .start();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("r.jsonl");
    let port = tls_port.to_string();
    let base = [
        "record",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--count",
        "1",
    ];
    let other_ca = pki.path_text("other-ca.crt");
    let mut args = base.to_vec();
    args.extend([
        "--tls-ca-file",
        &other_ca,
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    let r = sim_host(&args);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "{err}");
    assert!(
        err.contains("TLS handshake with 127.0.0.1:") && err.contains("UnknownIssuer"),
        "{err}"
    );

    let mut args = base.to_vec();
    args.extend([
        "--tls-ca-file",
        "/nonexistent/ca.crt",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    let r = sim_host(&args);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success(), "{err}");
    assert!(
        err.contains("tls_ca_file '/nonexistent/ca.crt' cannot be read"),
        "{err}"
    );
    drop(broker);
}
