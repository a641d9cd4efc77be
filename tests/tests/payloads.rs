//! JSON payloads end to end: the real uplink files of `shared/payloads/` published to mosquitto,
//! read by `JA=` tags with payload time stamps, as sim-host reports them; per-station payload
//! settings; Ignore Missing Time; configuration errors with their positions; and the station will
//! (SWT/SWP) transitions.
//!
//! Every test has its own mosquitto on its own loopback port and its own sim-host.

use std::path::PathBuf;
use std::time::Instant;

use mqtt_line_e2e::{
    ev, free_port, plugin_path, publish, run_to_exit, workspace_dir, LineConfig, Mosquitto,
    SimHost, StationConfig, TIMEOUT,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The directory of the shared payload files (next to the workspace).
fn payload_dir() -> PathBuf {
    workspace_dir().join("../shared/payloads")
}

fn payload(file: &str) -> Vec<u8> {
    let path = payload_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Waits (at most [`TIMEOUT`]) until sim-host's stderr satisfies `pred`.
fn wait_stderr(host: &mut SimHost, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = host.stderr();
        if pred(&text) {
            return text;
        }
        if Instant::now() >= deadline {
            let report = host.report();
            panic!("timed out after {TIMEOUT:?} waiting for {what} on sim-host's stderr\n{report}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The stderr lines that mention `needle`.
fn lines_with(text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// The plugin's warnings (printed as `WARN text`) that mention `needle`.
fn warnings_of(text: &str, needle: &str) -> Vec<String> {
    lines_with(text, needle)
        .into_iter()
        .filter(|l| l.starts_with("WARN"))
        .collect()
}

/// The value events of `station` seen so far.
fn values_of(host: &mut SimHost, station: &str) -> Vec<Value> {
    host.events_where(|e| ev::kind(e) == "value" && ev::field(e, "station") == station)
}

/// The last value event of `station`.`tag` seen so far.
fn last_value(host: &mut SimHost, station: &str, tag: &str) -> Value {
    match host.events_where(|e| ev::is_value(e, station, tag)).pop() {
        Some(e) => e,
        None => {
            let report = host.report();
            panic!("no value event of {station}.{tag}\n{report}");
        }
    }
}

/// Whether an event's value is `want` for a tag of type `ty`: numbers of float types compare as
/// numbers, integer types must carry an integer, everything else compares exactly.
fn same_value(ty: &str, got: &Value, want: &Value) -> bool {
    match ty {
        "Ai" | "Ao" | "TiR" | "ToR" => got.as_f64().is_some() && got.as_f64() == want.as_f64(),
        "Ci" | "Co" | "Qi" => got.is_i64() && got == want,
        _ => got == want,
    }
}

/// One `JA=` tag of a case: address, type, the value it must get (None: invalid).
struct Tag {
    address: &'static str,
    ty: &'static str,
    want: Option<Value>,
}

fn tag(address: &'static str, ty: &'static str, want: Value) -> Tag {
    Tag {
        address,
        ty,
        want: Some(want),
    }
}

fn invalid(address: &'static str, ty: &'static str) -> Tag {
    Tag {
        address,
        ty,
        want: None,
    }
}

/// One payload file published to its own station.
struct Case {
    file: &'static str,
    time_field: &'static str,
    time_mask: &'static str,
    tags: Vec<Tag>,
    /// The `time` every value of the message carries; None: the receive time (the payload's time
    /// is missing or unreadable).
    time: Option<&'static str>,
}

impl Case {
    fn station_name(&self, k: usize) -> String {
        format!("dev{k}")
    }
    fn topic(&self, k: usize) -> String {
        format!("up/dev{k}")
    }
}

/// Runs `cases` on one line (payload type JSON) with one station per file (its time field and
/// mask, time zone UTC), publishes each file at QoS 1 and checks every tag, IN_DATA and the time
/// stamps. Returns sim-host (still running) for further checks.
fn run_cases(cases: &[Case]) -> (Mosquitto, SimHost) {
    let broker = Mosquitto::start();
    let mut config = LineConfig::new(broker.port())
        .param("topic_filter", "up/#")
        .param("payload_type", "JSON");
    for (k, case) in cases.iter().enumerate() {
        let mut st = StationConfig::new(&case.station_name(k), &case.topic(k))
            .param("time_field_name", case.time_field)
            .param("time_mask", case.time_mask)
            .param("time_zone", "UTC");
        for (j, t) in case.tags.iter().enumerate() {
            st = st.tag(&format!("t{j}"), &format!("JA={}", t.address), t.ty);
        }
        config = config.station(st.inputs());
    }
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for (k, case) in cases.iter().enumerate() {
        let body = payload(case.file);
        let station = case.station_name(k);
        host.expect_station(&station, "ok");
        publish(broker.port(), &case.topic(k), &body, 1, false);
        // IN_ID comes last of a message.
        host.expect_value(&station, "id");
        check_case(&mut host, case, &station, &body);
    }
    (broker, host)
}

fn check_case(host: &mut SimHost, case: &Case, station: &str, body: &[u8]) {
    let events = values_of(host, station);
    let report = host.report();
    let file = case.file;
    let mut times = Vec::new();
    for (j, t) in case.tags.iter().enumerate() {
        let name = format!("t{j}");
        let got: Vec<&Value> = events
            .iter()
            .filter(|e| ev::field(e, "tag") == name)
            .collect();
        assert_eq!(
            got.len(),
            1,
            "{file}: JA={} must get exactly one value\n{report}",
            t.address
        );
        let e = got[0];
        match &t.want {
            Some(want) => {
                assert_eq!(
                    e["valid"],
                    json!(true),
                    "{file}: JA={} must be valid: {e}\n{report}",
                    t.address
                );
                assert!(
                    same_value(t.ty, &e["value"], want),
                    "{file}: JA={} ({}) = {}, expected {want}\n{report}",
                    t.address,
                    t.ty,
                    e["value"]
                );
            }
            None => {
                assert_eq!(
                    (&e["valid"], &e["value"]),
                    (&json!(false), &Value::Null),
                    "{file}: JA={} must be invalid: {e}\n{report}",
                    t.address
                );
            }
        }
        times.push(e.clone());
    }
    // IN_* are set after the JA= tags, IN_DATA with the whole payload, JSON or not.
    let text = String::from_utf8(body.to_vec()).expect("the payload files are UTF-8");
    let data = events
        .iter()
        .find(|e| ev::field(e, "tag") == "data")
        .unwrap_or_else(|| panic!("{file}: no IN_DATA value\n{report}"));
    assert_eq!(data["value"], json!(text), "{file}: IN_DATA\n{report}");
    let topic_at = events
        .iter()
        .position(|e| ev::field(e, "tag") == "topic")
        .unwrap_or_else(|| panic!("{file}: no IN_TOPIC value\n{report}"));
    let last_ja = events
        .iter()
        .rposition(|e| ev::field(e, "tag").starts_with('t') && ev::field(e, "tag") != "topic");
    if let Some(last_ja) = last_ja {
        assert!(
            last_ja < topic_at,
            "{file}: JA= tags must be set before IN_TOPIC\n{report}"
        );
    }
    for name in ["topic", "data", "id"] {
        if let Some(e) = events.iter().find(|e| ev::field(e, "tag") == name) {
            times.push(e.clone());
        }
    }
    // Every value of the message carries the same time stamp.
    let first_time = ev::field(&times[0], "time").to_string();
    for e in &times {
        assert_eq!(
            ev::field(e, "time"),
            first_time,
            "{file}: all values of one message carry one time: {e}\n{report}"
        );
        match case.time {
            Some(want) => {
                assert_eq!(ev::field(e, "time"), want, "{file}: time of {e}\n{report}");
                assert_eq!(
                    e.get("time_from_payload"),
                    Some(&json!(true)),
                    "{file}: {e}\n{report}"
                );
            }
            None => assert!(
                e.get("time_from_payload").is_none(),
                "{file}: the receive time must not be flagged as the payload's: {e}\n{report}"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The payload files
// ---------------------------------------------------------------------------------------------

/// Every file of the directory is published by one of the tests below (README.txt describes them).
const COVERED: [&str; 17] = [
    "chirpstack-v3-up-hono.json",
    "chirpstack-v4-up-docs.json",
    "chirpstack-v4-up-hono.json",
    "liveobjects-lora-uplink-hono.json",
    "loriot-gw-hono.json",
    "loriot-gw-thingsboard-two-gateways.json",
    "loriot-rx-docs-basic.json",
    "loriot-rx-thingsboard-extended.json",
    "ttn-v2-uplink-hono.json",
    "ttn-v2-uplink-official-commented.jsonc",
    "tts-v3-uplink-docs-data-formats-current.INVALID.json",
    "tts-v3-uplink-docs-data-formats.json",
    "tts-v3-uplink-docs-mqtt-page.json",
    "tts-v3-uplink-docs-starter-kit-real.json",
    "tts-v3-uplink-hono-truncated-timestamps.json",
    "tts-v3-uplink-thingsboard-two-gateways.json",
    "README.txt",
];

#[test]
fn every_payload_file_is_covered() {
    let dir = payload_dir();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let name = entry.expect("a directory entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            COVERED.contains(&name.as_ref()),
            "{name} in {} has no end-to-end case in this file",
            dir.display()
        );
    }
}

#[test]
fn the_things_stack_v3_uplinks() {
    let cases = vec![
        Case {
            file: "tts-v3-uplink-docs-data-formats.json",
            time_field: "received_at",
            time_mask: "ISO8601",
            tags: vec![
                tag(
                    "uplink_message.decoded_payload.luminosity",
                    "Ai",
                    json!(0.64),
                ),
                tag(
                    "uplink_message.decoded_payload.temperature",
                    "Ai",
                    json!(1.0),
                ),
                // A float with a fraction does not fit an integer tag.
                invalid("uplink_message.decoded_payload.luminosity", "Ci"),
                tag("uplink_message.rx_metadata[1].rssi", "Ci", json!(-35)),
                invalid("uplink_message.rx_metadata[2].rssi", "Ci"),
                // A numeric string into an integer and a float tag.
                tag(
                    "uplink_message.settings.frequency",
                    "Ci",
                    json!(868_300_000),
                ),
                tag(
                    "uplink_message.settings.frequency",
                    "Ai",
                    json!(868_300_000.0),
                ),
                tag(
                    "uplink_message.settings.data_rate.lora.spreading_factor",
                    "Ci",
                    json!(7),
                ),
                tag("end_device_ids.device_id", "TxtI", json!("dev1")),
                tag(
                    "uplink_message.rx_metadata[1].time",
                    "TiA",
                    json!("2020-02-12T15:15:45.787Z"),
                ),
                // An object into a text tag: its JSON text, keys in the payload's order.
                tag(
                    "uplink_message.decoded_payload",
                    "TxtI",
                    json!(r#"{"temperature":1.0,"luminosity":0.64}"#),
                ),
                tag(
                    "correlation_ids[2]",
                    "TxtI",
                    json!("gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE"),
                ),
            ],
            // Nanoseconds are kept.
            time: Some("2020-02-12T15:15:46.014773143Z"),
        },
        Case {
            file: "tts-v3-uplink-docs-starter-kit-real.json",
            time_field: "received_at",
            time_mask: "ISO8601",
            tags: vec![
                tag(
                    "uplink_message.decoded_payload.batteryVoltage",
                    "Ai",
                    json!(3.4),
                ),
                tag(
                    "uplink_message.decoded_payload.thermistorProperlyConnected",
                    "Di",
                    json!(true),
                ),
                tag("uplink_message.f_cnt", "Ci", json!(14)),
            ],
            time: Some("2025-04-16T11:54:13.995136483Z"),
        },
        Case {
            file: "tts-v3-uplink-thingsboard-two-gateways.json",
            time_field: "uplink_message.rx_metadata[2].time",
            time_mask: "ISO8601",
            tags: vec![tag(
                "end_device_ids.dev_eui",
                "TxtI",
                json!("1000000000000001"),
            )],
            time: Some("2023-05-18T08:25:25.885310Z"),
        },
        Case {
            // No top-level received_at: the receive time, with a warning.
            file: "tts-v3-uplink-docs-mqtt-page.json",
            time_field: "received_at",
            time_mask: "ISO8601",
            tags: vec![tag("uplink_message.f_port", "Ci", json!(15))],
            time: None,
        },
    ];
    let (_broker, mut host) = run_cases(&cases);
    wait_stderr(
        &mut host,
        "the warning about the missing time field of dev3",
        |s| {
            s.lines()
                .any(|l| l.contains("WARN") && l.contains("'dev3'") && l.contains("received_at"))
        },
    );
    host.quit_ok();
}

#[test]
fn the_things_stack_v3_truncated_time_stamp_falls_back_with_a_warning() {
    let cases = vec![Case {
        file: "tts-v3-uplink-hono-truncated-timestamps.json",
        time_field: "received_at",
        time_mask: "ISO8601",
        tags: vec![
            tag("uplink_message.rx_metadata[1].rssi", "Ci", json!(-25)),
            tag("uplink_message.f_cnt", "Ci", json!(9)),
            tag("simulated", "Di", json!(true)),
        ],
        time: None,
    }];
    let (_broker, mut host) = run_cases(&cases);
    let stderr = wait_stderr(&mut host, "the unreadable time field warning", |s| {
        s.contains("does not fit time mask")
    });
    let lines = lines_with(&stderr, "does not fit time mask");
    assert!(
        lines.iter().any(|l| l.starts_with("WARN")
            && l.contains("'dev0'")
            && l.contains("received_at")
            && l.contains("2020-02-12T15:15...")),
        "the warning names station, field and value: {lines:?}"
    );
    host.quit_ok();
}

#[test]
fn invalid_json_files_invalidate_ja_tags_but_set_in_data() {
    let cases = vec![
        Case {
            file: "tts-v3-uplink-docs-data-formats-current.INVALID.json",
            time_field: "received_at",
            time_mask: "ISO8601",
            tags: vec![
                invalid("uplink_message.decoded_payload.luminosity", "Ai"),
                invalid("end_device_ids.device_id", "TxtI"),
            ],
            time: None,
        },
        Case {
            // // comments: not JSON as published.
            file: "ttn-v2-uplink-official-commented.jsonc",
            time_field: "metadata.time",
            time_mask: "ISO8601",
            tags: vec![invalid("counter", "Ci")],
            time: None,
        },
    ];
    let (_broker, mut host) = run_cases(&cases);
    let stderr = wait_stderr(&mut host, "two 'not JSON' warnings", |s| {
        lines_with(s, "is not JSON").len() >= 2
    });
    for (station, topic) in [("'dev0'", "up/dev0"), ("'dev1'", "up/dev1")] {
        let lines = lines_with(&stderr, station);
        assert!(
            lines.iter().any(|l| l.starts_with("WARN")
                && l.contains("is not JSON")
                && l.contains(topic)
                && l.contains(" line ")
                && l.contains(" column ")),
            "the warning names the station, the topic and the parse error's position: {lines:?}"
        );
    }
    // The // comment of the .jsonc file is on its second line.
    assert!(
        lines_with(&stderr, "'dev1'")
            .iter()
            .any(|l| l.contains("line 2 column")),
        "{stderr}"
    );
    host.quit_ok();
}

#[test]
fn ttn_v2_uplink() {
    let cases = vec![Case {
        file: "ttn-v2-uplink-hono.json",
        time_field: "metadata.time",
        time_mask: "ISO8601",
        tags: vec![
            tag("metadata.gateways[1].rssi", "Ci", json!(-25)),
            invalid("metadata.gateways[2].rssi", "Ci"),
            tag("metadata.frequency", "Ai", json!(868.1)),
            tag("payload_fields", "TxtI", json!("{}")),
            tag("counter", "Ci", json!(9)),
            tag("is_retry", "Di", json!(false)),
            tag("hardware_serial", "TxtI", json!("01020304050607AB")),
            tag(
                "metadata.gateways[1].time",
                "TiA",
                json!("2019-03-03T04:19:32.000Z"),
            ),
        ],
        time: Some("2019-03-03T04:20:04.000Z"),
    }];
    let (_broker, mut host) = run_cases(&cases);
    host.quit_ok();
}

#[test]
fn loriot_rx_and_gw_messages() {
    let cases = vec![
        Case {
            file: "loriot-rx-docs-basic.json",
            time_field: "ts",
            time_mask: "UNIXMS",
            tags: vec![
                tag("bat", "Ci", json!(254)),
                tag("data", "TxtI", json!("0102AABB")),
                tag("ack", "Di", json!(false)),
                tag("EUI", "TxtI", json!("0102030405060708")),
                tag("cmd", "TxtI", json!("rx")),
                // A number into an absolute time tag is read as Unix seconds.
                tag("fcnt", "TiA", json!("1970-01-01T00:00:01.000Z")),
            ],
            time: Some("2016-08-10T17:37:55.433Z"),
        },
        Case {
            file: "loriot-rx-thingsboard-extended.json",
            time_field: "ts",
            time_mask: "UNIXMS",
            tags: vec![
                tag("rssi", "Ci", json!(-21)),
                tag("offline", "Di", json!(false)),
            ],
            time: Some("2023-05-19T06:46:41.936Z"),
        },
        Case {
            file: "loriot-gw-thingsboard-two-gateways.json",
            time_field: "gws[2].time",
            time_mask: "ISO8601",
            tags: vec![
                tag("gws[2].rssi", "Ci", json!(-42)),
                tag("gws[1].snr", "Ai", json!(8.5)),
                tag("freq", "Ci", json!(868_300_000)),
                invalid("gws[3].rssi", "Ci"),
                // The same instant as Unix milliseconds.
                tag("gws[2].ts", "Ci", json!(1_690_901_260_495i64)),
                // An array into a text tag: its JSON text, keys in the payload's order.
                tag(
                    "gws",
                    "TxtI",
                    json!(concat!(
                        r#"[{"rssi":-38,"snr":8.5,"ts":1690901260493,"#,
                        r#""time":"2023-08-01T14:47:40.493Z","gweui":"1020304080706050","ant":0},"#,
                        r#"{"rssi":-42,"snr":8.8,"ts":1690901260495,"#,
                        r#""time":"2023-08-01T14:47:40.495Z","gweui":"1020304081716151","ant":0}]"#
                    )),
                ),
            ],
            time: Some("2023-08-01T14:47:40.495Z"),
        },
        Case {
            file: "loriot-gw-hono.json",
            time_field: "ts",
            time_mask: "UNIXMS",
            tags: vec![
                tag("gws[1].time", "TiA", json!("2019-11-12T16:01:19.103417Z")),
                tag("gws[1].lat", "Ai", json!(12.0)),
            ],
            time: Some("2019-11-12T16:01:19.110Z"),
        },
    ];
    let (_broker, mut host) = run_cases(&cases);
    host.quit_ok();
}

#[test]
fn chirpstack_v4_and_v3_uplinks() {
    let cases = vec![
        Case {
            file: "chirpstack-v4-up-docs.json",
            time_field: "time",
            time_mask: "ISO8601",
            tags: vec![
                tag("rxInfo[1].rssi", "Ci", json!(-36)),
                tag("rxInfo[1].snr", "Ai", json!(10.5)),
                tag("txInfo.modulation.lora.spreadingFactor", "Ci", json!(11)),
                tag("deviceInfo.tags", "TxtI", json!(r#"{"key":"value"}"#)),
                tag("deviceInfo.deviceName", "TxtI", json!("Test device")),
                // 4217106255 fits a 64-bit integer.
                tag("rxInfo[1].uplinkId", "Ci", json!(4_217_106_255i64)),
            ],
            // "+00:00" with nanoseconds.
            time: Some("2022-07-18T09:34:15.775023242Z"),
        },
        Case {
            file: "chirpstack-v4-up-hono.json",
            time_field: "time",
            time_mask: "ISO8601",
            tags: vec![tag("rxInfo[1].location.altitude", "Ai", json!(10.5))],
            time: Some("2019-11-08T13:59:25.048445Z"),
        },
        Case {
            file: "chirpstack-v3-up-hono.json",
            time_field: "rxInfo[1].time",
            time_mask: "ISO8601",
            tags: vec![
                // JSON inside a string stays text.
                tag(
                    "objectJSON",
                    "TxtI",
                    json!(r#"{"temperatureSensor":25,"humiditySensor":32}"#),
                ),
                invalid("rxInfo[1].timeSinceGPSEpoch", "Ci"),
                tag("rxInfo[1].location.altitude", "Ai", json!(10.5)),
                tag(
                    "txInfo.loRaModulationInfo.polarizationInversion",
                    "Di",
                    json!(false),
                ),
                tag("fCnt", "Ci", json!(10)),
                tag("adr", "Qi", json!(2)),
            ],
            time: Some("2019-11-08T13:59:25.048445Z"),
        },
    ];
    let (_broker, mut host) = run_cases(&cases);
    // The JSON null is reported as such.
    let stderr = wait_stderr(&mut host, "the warning about the null", |s| {
        s.contains("timeSinceGPSEpoch")
    });
    assert!(
        lines_with(&stderr, "timeSinceGPSEpoch")
            .iter()
            .any(|l| l.starts_with("WARN") && l.contains("dev2.t1") && l.contains("null")),
        "{stderr}"
    );
    host.quit_ok();
}

#[test]
fn live_objects_uplink() {
    let cases = vec![Case {
        file: "liveobjects-lora-uplink-hono.json",
        time_field: "created",
        time_mask: "ISO8601",
        tags: vec![
            tag("metadata.network.lora.frequency", "Ai", json!(868.5)),
            tag("metadata.network.lora.fcnt", "Ci", json!(27517)),
            tag("metadata.network.lora.esp", "Ai", json!(-111.76)),
            tag("value.temperature", "Ai", json!(21.81)),
            tag("timestamp", "TiA", json!("2021-05-30T19:02:46.161Z")),
            invalid("location.alt", "Ai"),
            tag("extra", "TxtI", json!("{}")),
            tag("tags", "TxtI", json!("[]")),
            invalid("tags[1]", "TxtI"),
        ],
        time: Some("2021-05-30T19:02:46.789Z"),
    }];
    let (_broker, mut host) = run_cases(&cases);
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Payload settings per station
// ---------------------------------------------------------------------------------------------

/// One line, four stations: the line's JSON settings (a mask with literal T and Z), a station with
/// its own field and UNIXMS, one with its own mask in a fixed zone, and one back to Text only.
#[test]
fn stations_override_payload_type_time_field_and_mask() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("payload_type", "JSON")
        .param("time_field_name", "time")
        .param("time_mask", "yyyy-mm-ddThh:mi:ss.mssZ")
        .station(
            StationConfig::new("plain", "s/plain")
                .param("time_zone", "UTC")
                .tag("v", "JA=v", "Ci")
                // The quoting form: keys with a dot and with a space.
                .tag("gw", "JA=\"gw.id\"", "TxtI")
                .tag("sig", "JA=meta.\"signal strength\"[2]", "Ai")
                .inputs(),
        )
        .station(
            StationConfig::new("loriot", "s/loriot")
                .param("time_field_name", "ts")
                .param("time_mask", "UNIXMS")
                .tag("v", "JA=v", "Ci")
                .inputs(),
        )
        .station(
            StationConfig::new("local", "s/local")
                .param("time_mask", "dd.mm.yyyy hh:mi:ss")
                .param("time_zone", "+01:00")
                .tag("v", "JA=v", "Ci")
                .inputs(),
        )
        .station(
            StationConfig::new("text", "s/text")
                .param("payload_type", "Text only")
                .tag("v", "JA=v", "Ci")
                .inputs(),
        );
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    let messages: [(&str, &str, &str); 3] = [
        (
            "plain",
            r#"{"time":"2026-11-23T10:00:00.250Z","v":1,"gw.id":"gw-7","meta":{"signal strength":[-3,-7.5]}}"#,
            "2026-11-23T10:00:00.250Z",
        ),
        (
            "loriot",
            r#"{"ts":1795428000123,"time":"2001-01-01T00:00:00.000Z","v":2}"#,
            "2026-11-23T10:00:00.123Z",
        ),
        (
            "local",
            r#"{"time":"23.11.2026 11:00:05","v":3}"#,
            "2026-11-23T10:00:05.000Z",
        ),
    ];
    for (k, (station, body, time)) in messages.iter().enumerate() {
        host.expect_station(station, "ok");
        publish(
            broker.port(),
            &format!("s/{station}"),
            body.as_bytes(),
            1,
            false,
        );
        let id = host.expect_value(station, "id");
        let v = last_value(&mut host, station, "v");
        let report = host.report();
        assert_eq!(v["value"], json!(k + 1), "{station}: {v}\n{report}");
        for e in [&v, &id] {
            assert_eq!(ev::field(e, "time"), *time, "{station}: {e}\n{report}");
            assert_eq!(e["time_from_payload"], json!(true), "{e}\n{report}");
        }
    }
    let gw = last_value(&mut host, "plain", "gw");
    let sig = last_value(&mut host, "plain", "sig");
    let report = host.report();
    assert_eq!(gw["value"], json!("gw-7"), "{report}");
    assert_eq!(sig["value"].as_f64(), Some(-7.5), "{report}");

    // Text only: the payload goes to IN_DATA, JA= tags are left alone, the time is the receive
    // time.
    let body = r#"{"time":"2026-11-23T10:00:00.250Z","v":4}"#;
    host.expect_station("text", "ok");
    publish(broker.port(), "s/text", body.as_bytes(), 1, false);
    let data = host.expect_value_eq("text", "data", body);
    host.expect_value("text", "id");
    let report = host.report();
    assert!(data.get("time_from_payload").is_none(), "{data}\n{report}");
    assert!(
        host.events_where(|e| ev::is_value(e, "text", "v"))
            .is_empty(),
        "a Text only station does not fill JA= tags\n{report}"
    );
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Ignore Missing Time
// ---------------------------------------------------------------------------------------------

#[test]
fn ignore_missing_time_silences_only_the_missing_field_warning() {
    let broker = Mosquitto::start();
    let station = |name: &str, ignore: &str| {
        StationConfig::new(name, &format!("t/{name}"))
            .param("payload_type", "JSON")
            .param("time_field_name", "ts")
            .param("time_mask", "UNIX")
            .param("ignore_missing_time", ignore)
            .tag("v", "JA=v", "Ai")
            .inputs()
    };
    let config = LineConfig::new(broker.port())
        .station(station("quiet", "YES"))
        .station(station("loud", "NO"));
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    host.expect_station("quiet", "ok");
    host.expect_station("loud", "ok");

    // Missing on the quiet station: the receive time, no warning.
    publish(broker.port(), "t/quiet", br#"{"v":1.5}"#, 1, false);
    let v = host.expect_value_eq("quiet", "v", 1.5);
    assert!(v.get("time_from_payload").is_none(), "{v}");
    // Missing on the loud station: a warning. sim-host prints its events in order, so once this
    // warning is on stderr, one for the quiet station would be there too.
    publish(broker.port(), "t/loud", br#"{"v":2.5}"#, 1, false);
    host.expect_value_eq("loud", "v", 2.5);
    let stderr = wait_stderr(&mut host, "the missing time warning of 'loud'", |s| {
        s.lines()
            .any(|l| l.contains("'loud'") && l.contains("no time field 'ts'"))
    });
    assert!(
        warnings_of(&stderr, "'quiet'").is_empty(),
        "Ignore Missing Time = YES must silence the missing field\n{stderr}"
    );

    // Unreadable on the quiet station: still a warning.
    publish(
        broker.port(),
        "t/quiet",
        br#"{"v":3.5,"ts":"soon"}"#,
        1,
        false,
    );
    let v = host.expect_value_eq("quiet", "v", 3.5);
    assert!(v.get("time_from_payload").is_none(), "{v}");
    let stderr = wait_stderr(&mut host, "the unreadable time warning of 'quiet'", |s| {
        !warnings_of(s, "'quiet'").is_empty()
    });
    let lines = warnings_of(&stderr, "'quiet'");
    assert!(
        lines.len() == 1
            && lines[0].starts_with("WARN")
            && lines[0].contains("\"soon\"")
            && lines[0].contains("does not fit time mask 'UNIX'"),
        "{lines:?}"
    );

    // Present and readable: the payload's time.
    publish(
        broker.port(),
        "t/quiet",
        br#"{"v":4.5,"ts":1795428000.5}"#,
        1,
        false,
    );
    let v = host.expect_value_eq("quiet", "v", 4.5);
    assert_eq!(ev::field(&v, "time"), "2026-11-23T10:00:00.500Z", "{v}");
    assert_eq!(v["time_from_payload"], json!(true), "{v}");
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------

/// `run` on `config` must exit 2 before connecting, with each of `needles` on stderr.
fn assert_refused(config: &LineConfig, needles: &[&str]) {
    let plugin = plugin_path();
    let plugin = plugin.to_str().expect("UTF-8 path");
    let toml = config.to_toml();
    let done = run_to_exit(
        &toml,
        &["run", "{config}", "--plugin", plugin, "--json"],
        TIMEOUT,
    );
    assert_eq!(done.code, Some(2), "expected exit code 2\n{done}");
    for needle in needles {
        assert!(
            done.stderr.contains(needle),
            "stderr should mention {needle:?}\n{done}"
        );
    }
    assert!(
        !done.stdout.contains("\"connected\""),
        "a refused configuration must not connect\n{done}"
    );
    assert!(!done.stderr.contains("panicked"), "{done}");
}

fn dev(tag_address: &str) -> StationConfig {
    StationConfig::new("dev", "up/dev")
        .param("payload_type", "JSON")
        .tag("ok", "JA=a.b", "Ai")
        .tag("bad", tag_address, "Ai")
}

#[test]
fn malformed_ja_addresses_are_refused_with_tag_and_position() {
    let port = free_port();
    let rows: &[(&str, &[&str])] = &[
        (
            "JA=rx..time",
            &["tag 'dev.bad'", "JA=rx..time", "position 4"],
        ),
        (
            "JA=rx.gwrxf[0].time",
            &["tag 'dev.bad'", "position 10", "from 1"],
        ),
        ("JA=a[1", &["tag 'dev.bad'", "position 4", "']'"]),
        (
            "JA=meta.\"open",
            &["tag 'dev.bad'", "position 6", "not closed"],
        ),
        (
            "JA=signal strength",
            &["tag 'dev.bad'", "position 7", "double quotes"],
        ),
        ("JA=", &["tag 'dev.bad'", "JA="]),
    ];
    for (address, needles) in rows {
        let config = LineConfig::new(port).station(dev(address));
        assert_refused(&config, needles);
    }
}

#[test]
fn malformed_time_settings_are_refused_with_parameter_and_position() {
    let port = free_port();
    // A station's mask, with a mistyped field.
    let config = LineConfig::new(port).station(
        StationConfig::new("dev", "up/dev")
            .param("time_mask", "yyyy-mm-dd hh:mi:ss.ms")
            .inputs(),
    );
    assert_refused(
        &config,
        &[
            "station 'dev'",
            "time_mask",
            "yyyy-mm-dd hh:mi:ss.ms",
            "position 21",
        ],
    );
    // The line's mask.
    let config = LineConfig::new(port)
        .param("time_mask", "yyyy-mm-dd Q")
        .station(StationConfig::new("dev", "up/dev").inputs());
    assert_refused(&config, &["time_mask", "'Q' at position 12"]);
    // A time field name uses the JA= syntax.
    let config = LineConfig::new(port).station(
        StationConfig::new("dev", "up/dev")
            .param("time_field_name", "rx..time")
            .inputs(),
    );
    assert_refused(&config, &["station 'dev'", "time_field_name", "position 4"]);
    // A zone that is neither local, UTC nor an offset.
    let config = LineConfig::new(port).station(
        StationConfig::new("dev", "up/dev")
            .param("time_zone", "Mars")
            .inputs(),
    );
    assert_refused(&config, &["station 'dev'", "time_zone", "Mars"]);
}

// ---------------------------------------------------------------------------------------------
// Station Will Topic / Payload
// ---------------------------------------------------------------------------------------------

/// The input tags of `station` that turned invalid (null) after event index `from`.
fn invalidated_after(host: &mut SimHost, station: &str, from: usize) -> Vec<String> {
    host.events()[from..]
        .iter()
        .filter(|e| {
            ev::kind(e) == "value"
                && ev::field(e, "station") == station
                && e["valid"] == json!(false)
        })
        .map(|e| ev::field(e, "tag").to_string())
        .collect()
}

#[test]
fn will_message_puts_the_station_into_hard_error_until_data_arrives() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("payload_type", "JSON")
        // The device's data and will topics both match its address.
        .station(
            StationConfig::new("dev", "dev/.*")
                .param("SWT", "dev/status")
                .param("SWP", "offline")
                .tag("temp", "JA=temp", "Ai")
                .inputs(),
        )
        // Its will topic is routed to `rest`, yet the will is matched first.
        .station(
            StationConfig::new("dev2", "dev2/up")
                .param("SWT", "wills/dev2")
                .inputs(),
        )
        .station(StationConfig::new("rest", ".*").inputs());
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    for st in ["dev", "dev2", "rest"] {
        host.expect_station(st, "ok");
    }

    publish(broker.port(), "dev/up", br#"{"temp":21.5}"#, 1, false);
    host.expect_value_eq("dev", "temp", 21.5);
    host.expect_value("dev", "id");

    // The will: hard error, every input tag that had a value turns invalid, nothing is routed.
    let mark = host.events().len();
    publish(broker.port(), "dev/status", b"offline", 1, false);
    let hard = host.expect_station("dev", "hard_error");
    assert!(
        ev::field(&hard, "reason").contains("dev/status"),
        "the reason names the will topic: {hard}"
    );
    for tag in ["temp", "topic", "data", "id"] {
        host.expect(&format!("dev.{tag} invalid"), |e| {
            ev::is_value(e, "dev", tag) && e["valid"] == json!(false) && e["value"].is_null()
        });
    }
    let hard_at = host
        .position(|e| ev::is_station(e, "dev", "hard_error"))
        .unwrap();
    let mut invalid = invalidated_after(&mut host, "dev", mark);
    invalid.sort();
    let report = host.report();
    assert_eq!(invalid, ["data", "id", "temp", "topic"], "{report}");
    assert!(
        host.events()[mark..hard_at]
            .iter()
            .all(|e| ev::kind(e) != "value"),
        "the will message must not be delivered as data\n{report}"
    );

    // The next data message: ok again, with values.
    publish(broker.port(), "dev/up", br#"{"temp":22.5}"#, 1, false);
    host.expect_value_eq("dev", "temp", 22.5);
    host.expect_station("dev", "ok");

    // The will topic with another payload is data (SWP does not match): routed to `dev`.
    publish(broker.port(), "dev/status", b"offline", 1, false);
    host.expect_station("dev", "hard_error");
    publish(broker.port(), "dev/status", br#"{"temp":23.5}"#, 1, false);
    host.expect_value_eq("dev", "topic", "dev/status");
    host.expect_value_eq("dev", "temp", 23.5);
    host.expect_station("dev", "ok");

    // dev2's will goes to dev2 (hard error), not to `rest` as data. Without SWP any payload
    // counts.
    publish(broker.port(), "wills/dev2", b"whatever", 1, false);
    host.expect_station("dev2", "hard_error");
    publish(broker.port(), "other/topic", b"marker", 1, false);
    host.expect_value_eq("rest", "data", "marker");
    let report = host.report();
    assert!(
        !host
            .events()
            .iter()
            .any(|e| ev::is_value(e, "rest", "topic") && e["value"] == json!("wills/dev2")),
        "a will message is not routed as data\n{report}"
    );
    host.quit_ok();
}

#[test]
fn hard_error_survives_a_reconnect_and_a_station_that_is_off_still_sees_its_will() {
    let mut broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .station(
            StationConfig::new("dev", "dev/up")
                .param("SWT", "dev/will")
                .inputs(),
        )
        .station(
            StationConfig::new("sleeper", "sleeper/up")
                .param("SWT", "sleeper/will")
                .state("off")
                .inputs(),
        );
    let mut host = SimHost::start_on(&broker, &config);
    // Taken here, so that the comm_error awaited below is the one of the lost connection.
    host.expect_station("dev", "comm_error");
    host.wait_connected();
    host.expect_station("dev", "ok");
    host.expect_station("sleeper", "off");

    publish(broker.port(), "dev/will", b"", 1, false);
    host.expect_station("dev", "hard_error");
    // The will of a station that is off is noted: it shows when the station is switched on.
    publish(broker.port(), "sleeper/will", b"gone", 1, false);
    host.send("station sleeper on");
    host.expect_station("sleeper", "hard_error");

    // Lost connection: comm_error; back: hard error again, not ok.
    broker.stop();
    host.expect_station("dev", "comm_error");
    broker.restart();
    host.wait_connected();
    host.expect_station("dev", "hard_error");
    host.expect_station("sleeper", "hard_error");
    let report = host.report();
    let events = host.events().to_vec();
    let reconnected_at = events.iter().rposition(ev::is_connected).unwrap_or(0);
    assert!(
        !events[reconnected_at..]
            .iter()
            .any(|e| ev::is_station(e, "dev", "ok")),
        "the station must stay in hard error across the reconnect\n{report}"
    );

    publish(broker.port(), "dev/up", b"back", 1, false);
    host.expect_value_eq("dev", "data", "back");
    host.expect_station("dev", "ok");
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Text from outside on the operator's terminal
// ---------------------------------------------------------------------------------------------

/// A topic full of terminal controls (ESC [31m, BEL, CR LF with a forged log line, DEL, a C1
/// CSI). mosquitto refuses control characters in topics, so a scripted broker delivers it.
/// Valid UTF-8 (U+009B is C2 9B), so the codec encodes it.
const HOSTILE_TOPIC: &str = "dev/\x1b[31m\x07red\r\nWARN forged-topic\x7f\u{9b}";
/// A payload that would retitle and clear the terminal and forge a log line.
const HOSTILE_PAYLOAD: &[u8] = b"\x1b]0;title\x07\x1b[2J\r\nWARN forged-payload";

/// Control characters other than the line break that ends each line.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && c.is_control())
        .collect()
}

/// Runs a line on a scripted broker that delivers the hostile topic and payload, with readable
/// output and debug logs; `stations` get the message (or none does). Waits until stdout and
/// stderr satisfy `ready`, quits, and returns (stdout lines, stderr).
fn hostile_run(
    stations: &[mqtt_line_e2e::StationConfig],
    ready: impl Fn(&[String], &str) -> bool,
) -> (Vec<String>, String) {
    use mqtt_line_e2e::fake_broker::{FakeBroker, Script};
    let broker = FakeBroker::start(vec![Script::new()
        .handshake()
        .send(&mqtt_line_e2e::wire::publish(
            HOSTILE_TOPIC,
            HOSTILE_PAYLOAD,
            0,
            0,
        ))
        .expect_close(TIMEOUT)]);
    let mut config = LineConfig::new(broker.port()).param_raw("ping_interval", "0");
    for st in stations {
        config = config.station(st.clone());
    }
    let mut host = SimHost::start_readable(&config.to_toml(), &["--log-level", "debug"]);
    // Outside text from stdin too: an unknown command and a write to an unknown tag.
    host.send("bogus \u{1b}[31mcommand\u{7}");
    host.send("write dev \u{1b}[31mtag\u{7} x");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines = host.wait_stdout("anything", |_| true);
        let stderr = host.stderr();
        if ready(&lines, &stderr) {
            host.quit_ok();
            broker.wait_scripts();
            let lines = host.wait_stdout("everything", |_| true);
            return (lines, host.stderr());
        }
        if Instant::now() >= deadline {
            let report = host.report();
            panic!("timed out waiting for the hostile message to be reported\n{report}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// No raw control character, no forged line, and the escaped text is there.
fn assert_escaped(lines: &[String], stderr: &str, escaped: &[&str]) {
    let stdout = lines.join("\n");
    let all = format!("-- stdout --\n{stdout}\n-- stderr --\n{stderr}");
    assert!(
        raw_controls(&stdout).is_empty(),
        "stdout: {:?}\n{all}",
        raw_controls(&stdout)
    );
    assert!(
        raw_controls(stderr).is_empty(),
        "stderr: {:?}\n{all}",
        raw_controls(stderr)
    );
    for line in lines.iter().map(String::as_str).chain(stderr.lines()) {
        assert!(
            !line.starts_with("WARN forged"),
            "a forged line: {line:?}\n{all}"
        );
        assert!(
            !line.contains('\u{9b}') && !line.contains('\u{7f}'),
            "{line:?}"
        );
    }
    for text in escaped {
        assert!(all.contains(text), "{text} is missing\n{all}");
    }
}

#[test]
fn hostile_topic_and_payload_are_escaped_on_stdout_and_stderr() {
    const TOPIC_SHOWN: &str = r"dev/\u{1b}[31m\u{7}red\r\nWARN forged-topic\u{7f}\u{9b}";
    let catch_all = StationConfig::new("dev", "#")
        .inputs()
        .tag("num", "IN_DATA", "Ci");
    let (lines, stderr) = hostile_run(&[catch_all], |lines, stderr| {
        lines.iter().any(|l| l.contains("value dev.num"))
            && stderr.contains("unknown command")
            && lines.iter().any(|l| l.contains("write dev."))
    });
    assert_escaped(
        &lines,
        &stderr,
        &[
            // The readable values: JSON strings, with DEL and C1 escaped as well.
            r#"value dev.topic = "dev/\u001b[31m\u0007red\r\nWARN forged-topic\u{7f}\u{9b}""#,
            r#"value dev.data = "\u001b]0;title\u0007\u001b[2J\r\nWARN forged-payload""#,
            // The warning about IN_DATA into Ci quotes the payload, escaped.
            r"'\u{1b}]0;title\u{7}\u{1b}[2J\r\nWARN forged-payload' is not a whole number",
            // The packet trace of Full Debug is not on; the stdin texts are.
            r"unknown command 'bogus \u{1b}[31mcommand\u{7}'",
            r"write dev.\u{1b}[31mtag\u{7} failed",
        ],
    );
    // The unrouted case: nothing takes the topic, and the debug line names it escaped.
    let elsewhere = StationConfig::new("other", "other/x").inputs();
    let (lines, stderr) = hostile_run(&[elsewhere], |_, stderr| {
        stderr.contains("message matches no station")
    });
    assert_escaped(&lines, &stderr, &[&format!("topic={TOPIC_SHOWN}")]);
}
