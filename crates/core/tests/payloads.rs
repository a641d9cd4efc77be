//! Real uplink payloads from LoRaWAN servers and clouds (`shared/payloads/`), read through a line
//! with JA= tags and a payload time stamp: each file must give what a person reading it expects.

mod common;

use common::*;
use mqtt_line_core::mqtt::QoS;
use mqtt_line_core::parts::utc_ns;
use mqtt_line_core::{Event, FLAG_TIME_FROM_PAYLOAD, FLAG_VALID};
use mqtt_line_core::{StationId, TagId, Value, ValueType};

/// The receive time the harness hands to the line.
const RECEIVED: i64 = 42;

fn payload(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../../shared/payloads/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Case {
    file: &'static str,
    /// Station parameters: time field, mask, zone...
    station: &'static [(&'static str, &'static str)],
    /// JA address, type, the value the tag must get (None: invalid).
    tags: Vec<(&'static str, ValueType, Option<Value>)>,
    /// The time every value carries.
    time: i64,
}

fn text(s: &str) -> Option<Value> {
    Some(Value::Text(s.into()))
}

fn cases() -> Vec<Case> {
    use ValueType::*;
    let iso = |f: &'static str| -> &'static [(&'static str, &'static str)] {
        match f {
            "received_at" => &[("time_field_name", "received_at"), ("time_mask", "ISO8601")],
            "time" => &[("time_field_name", "time"), ("time_mask", "ISO8601")],
            "metadata.time" => &[
                ("time_field_name", "metadata.time"),
                ("time_mask", "ISO8601"),
            ],
            "created" => &[("time_field_name", "created"), ("time_mask", "ISO8601")],
            _ => unreachable!(),
        }
    };
    let unixms: &'static [(&str, &str)] = &[("time_field_name", "ts"), ("time_mask", "UNIXMS")];
    vec![
        Case {
            file: "tts-v3-uplink-docs-data-formats.json",
            station: iso("received_at"),
            tags: vec![
                (
                    "uplink_message.decoded_payload.luminosity",
                    Ai,
                    Some(Value::Float(0.64)),
                ),
                (
                    "uplink_message.decoded_payload.temperature",
                    Ai,
                    Some(Value::Float(1.0)),
                ),
                (
                    "uplink_message.rx_metadata[1].rssi",
                    Ci,
                    Some(Value::Int(-35)),
                ),
                (
                    "uplink_message.settings.frequency",
                    Ci,
                    Some(Value::Int(868_300_000)),
                ),
                (
                    "uplink_message.settings.data_rate.lora.spreading_factor",
                    Ci,
                    Some(Value::Int(7)),
                ),
                ("end_device_ids.device_id", TxtI, text("dev1")),
                (
                    "uplink_message.rx_metadata[1].time",
                    TiA,
                    Some(Value::AbsTime(utc_ns(2020, 2, 12, 15, 15, 45, 787_000_000))),
                ),
                (
                    "uplink_message.decoded_payload",
                    TxtI,
                    text(r#"{"temperature":1.0,"luminosity":0.64}"#),
                ),
                ("uplink_message.rx_metadata[2].rssi", Ci, None),
            ],
            time: utc_ns(2020, 2, 12, 15, 15, 46, 14_773_143),
        },
        Case {
            file: "tts-v3-uplink-docs-data-formats-current.INVALID.json",
            station: iso("received_at"),
            tags: vec![("uplink_message.decoded_payload.luminosity", Ai, None)],
            time: RECEIVED,
        },
        Case {
            file: "tts-v3-uplink-hono-truncated-timestamps.json",
            station: iso("received_at"),
            tags: vec![(
                "uplink_message.rx_metadata[1].rssi",
                Ci,
                Some(Value::Int(-25)),
            )],
            time: RECEIVED,
        },
        Case {
            file: "tts-v3-uplink-docs-mqtt-page.json",
            station: iso("received_at"),
            tags: vec![("uplink_message.f_port", Ci, Some(Value::Int(15)))],
            time: RECEIVED,
        },
        Case {
            file: "tts-v3-uplink-docs-starter-kit-real.json",
            station: iso("received_at"),
            tags: vec![
                (
                    "uplink_message.decoded_payload.batteryVoltage",
                    Ai,
                    Some(Value::Float(3.4)),
                ),
                (
                    "uplink_message.decoded_payload.sensorTemperature",
                    Ai,
                    Some(Value::Float(21.5)),
                ),
                (
                    "uplink_message.decoded_payload.thermistorProperlyConnected",
                    Di,
                    Some(Value::Bool(true)),
                ),
                ("uplink_message.f_cnt", Ci, Some(Value::Int(14))),
            ],
            time: utc_ns(2025, 4, 16, 11, 54, 13, 995_136_483),
        },
        Case {
            file: "tts-v3-uplink-thingsboard-two-gateways.json",
            station: &[
                ("time_field_name", "uplink_message.rx_metadata[2].time"),
                ("time_mask", "ISO8601"),
            ],
            tags: vec![("end_device_ids.dev_eui", TxtI, text("1000000000000001"))],
            time: utc_ns(2023, 5, 18, 8, 25, 25, 885_310_000),
        },
        Case {
            file: "ttn-v2-uplink-hono.json",
            station: iso("metadata.time"),
            tags: vec![
                ("metadata.gateways[1].rssi", Ci, Some(Value::Int(-25))),
                ("metadata.frequency", Ai, Some(Value::Float(868.1))),
                ("payload_fields", TxtI, text("{}")),
                ("counter", Ci, Some(Value::Int(9))),
                ("is_retry", Di, Some(Value::Bool(false))),
            ],
            time: utc_ns(2019, 3, 3, 4, 20, 4, 0),
        },
        Case {
            file: "ttn-v2-uplink-official-commented.jsonc",
            station: iso("metadata.time"),
            tags: vec![("counter", Ci, None)],
            time: RECEIVED,
        },
        Case {
            file: "loriot-rx-docs-basic.json",
            station: unixms,
            tags: vec![
                ("bat", Ci, Some(Value::Int(254))),
                ("data", TxtI, text("0102AABB")),
                ("ack", Di, Some(Value::Bool(false))),
                ("EUI", TxtI, text("0102030405060708")),
            ],
            time: 1_470_850_675_433_000_000,
        },
        Case {
            file: "loriot-rx-thingsboard-extended.json",
            station: unixms,
            tags: vec![
                ("rssi", Ci, Some(Value::Int(-21))),
                ("offline", Di, Some(Value::Bool(false))),
            ],
            time: 1_684_478_801_936_000_000,
        },
        Case {
            file: "loriot-gw-thingsboard-two-gateways.json",
            station: &[("time_field_name", "gws[2].time"), ("time_mask", "ISO8601")],
            tags: vec![
                ("gws[2].rssi", Ci, Some(Value::Int(-42))),
                ("gws[1].snr", Ai, Some(Value::Float(8.5))),
                ("freq", Ci, Some(Value::Int(868_300_000))),
                ("gws[3].rssi", Ci, None),
                // The same instant as UNIX milliseconds.
                ("gws[2].ts", Ci, Some(Value::Int(1_690_901_260_495))),
            ],
            time: 1_690_901_260_495_000_000,
        },
        Case {
            file: "loriot-gw-hono.json",
            station: unixms,
            tags: vec![
                (
                    "gws[1].time",
                    TiA,
                    Some(Value::AbsTime(utc_ns(2019, 11, 12, 16, 1, 19, 103_417_000))),
                ),
                ("gws[1].lat", Ai, Some(Value::Float(12.0))),
            ],
            time: 1_573_574_479_110_000_000,
        },
        Case {
            file: "chirpstack-v4-up-docs.json",
            station: iso("time"),
            tags: vec![
                ("rxInfo[1].rssi", Ci, Some(Value::Int(-36))),
                ("rxInfo[1].snr", Ai, Some(Value::Float(10.5))),
                (
                    "txInfo.modulation.lora.spreadingFactor",
                    Ci,
                    Some(Value::Int(11)),
                ),
                ("deviceInfo.tags", TxtI, text(r#"{"key":"value"}"#)),
            ],
            time: utc_ns(2022, 7, 18, 9, 34, 15, 775_023_242),
        },
        Case {
            file: "chirpstack-v4-up-hono.json",
            station: iso("time"),
            tags: vec![("rxInfo[1].location.altitude", Ai, Some(Value::Float(10.5)))],
            time: utc_ns(2019, 11, 8, 13, 59, 25, 48_445_000),
        },
        Case {
            file: "chirpstack-v3-up-hono.json",
            station: &[
                ("time_field_name", "rxInfo[1].time"),
                ("time_mask", "ISO8601"),
            ],
            tags: vec![
                (
                    "objectJSON",
                    TxtI,
                    text(r#"{"temperatureSensor":25,"humiditySensor":32}"#),
                ),
                ("rxInfo[1].timeSinceGPSEpoch", Ci, None),
                ("rxInfo[1].location.altitude", Ai, Some(Value::Float(10.5))),
                (
                    "txInfo.loRaModulationInfo.polarizationInversion",
                    Di,
                    Some(Value::Bool(false)),
                ),
            ],
            time: utc_ns(2019, 11, 8, 13, 59, 25, 48_445_000),
        },
        Case {
            file: "liveobjects-lora-uplink-hono.json",
            station: iso("created"),
            tags: vec![
                (
                    "metadata.network.lora.frequency",
                    Ai,
                    Some(Value::Float(868.5)),
                ),
                ("location.alt", Ai, None),
                ("extra", TxtI, text("{}")),
                ("metadata.network.lora.fcnt", Ci, Some(Value::Int(27517))),
            ],
            time: utc_ns(2021, 5, 30, 19, 2, 46, 789_000_000),
        },
    ]
}

#[test]
fn every_payload_file_gives_the_expected_values_and_time() {
    for case in cases() {
        let mut station_params = vec![("payload_type", "JSON"), ("time_zone", "UTC")];
        station_params.extend_from_slice(case.station);
        let mut h = Harness::new(&[]);
        h.line
            .add_station(StationId(1), "dev", "up", station_params.iter().copied())
            .unwrap_or_else(|e| panic!("{}: {e}", case.file));
        h.line
            .add_tag(
                StationId(1),
                TagId(1000),
                "data",
                "IN_DATA",
                ValueType::TxtI,
                None,
            )
            .unwrap();
        for (k, (address, ty, _)) in case.tags.iter().enumerate() {
            h.line
                .add_tag(
                    StationId(1),
                    TagId(k as u64 + 1),
                    address,
                    &format!("JA={address}"),
                    *ty,
                    None,
                )
                .unwrap_or_else(|e| panic!("{}: {e}", case.file));
        }
        h.line.start(0).unwrap();
        h.connect();
        h.events();
        let body = payload(case.file);
        let events = h.receive("up", &body, QoS::AtLeastOnce, 1);
        let got = values(&events);
        for (k, (address, _, want)) in case.tags.iter().enumerate() {
            let (_, value, flags) = got
                .iter()
                .find(|v| v.0 == k as u64 + 1)
                .unwrap_or_else(|| panic!("{}: no value for {address}", case.file));
            assert_eq!(value, want, "{}: JA={address}", case.file);
            assert_eq!(
                flags & FLAG_VALID != 0,
                want.is_some(),
                "{}: {address}",
                case.file
            );
        }
        // IN_DATA always carries the whole payload, JSON or not.
        let in_data = got.iter().find(|v| v.0 == 1000).expect("IN_DATA");
        assert_eq!(
            in_data.1,
            Some(Value::Text(String::from_utf8(body).unwrap())),
            "{}",
            case.file
        );
        for e in &events {
            if let Event::TagValue { time_ns, flags, .. } = e {
                assert_eq!(*time_ns, case.time, "{}: time", case.file);
                assert_eq!(
                    flags & FLAG_TIME_FROM_PAYLOAD != 0,
                    case.time != RECEIVED,
                    "{}: time flag",
                    case.file
                );
            }
        }
    }
}

/// A JSON number read into a text tag is its JSON text exactly, wherever it is in the payload
/// and whatever else is addressed around it; numeric tags keep the numeric rules.
#[test]
fn numbers_into_text_tags_keep_their_json_text() {
    use ValueType::*;
    // Each row: JA address, type, the value the tag must get (None: invalid).
    let rows: Vec<(&str, ValueType, Option<Value>)> = vec![
        ("big", TxtI, text("12345678901234567890123")),
        ("exp", TxtI, text("1E3")),
        ("frac", TxtO, text("12.50")),
        ("neg", TxtI, text("-0.0")),
        ("deep.list[2]", TxtI, text("7.10e-3")),
        ("deep", TxtI, text(r#"{"list":[1,0.0071]}"#)),
        ("exp", Ci, Some(Value::Int(1000))),
        ("frac", Ai, Some(Value::Float(12.5))),
        ("frac", Ci, None),
        ("big", Ci, None),
    ];
    let body = br#"{"big": 12345678901234567890123, "exp":1E3, "frac" :  12.50 ,
        "neg":-0.0, "deep": {"list": [1, 7.10e-3]}}"#;
    let mut h = json_station(&rows);
    check_rows(&mut h, body, &rows, "");
}

/// A line with one JSON station on topic `up` and a tag `JA=<address>` of each row's type, ids
/// from 1 in row order; connected.
fn json_station(rows: &[(&str, ValueType, Option<Value>)]) -> Harness {
    let mut h = Harness::new(&[]);
    h.line
        .add_station(StationId(1), "dev", "up", [("payload_type", "JSON")])
        .unwrap();
    for (k, (address, ty, _)) in rows.iter().enumerate() {
        h.line
            .add_tag(
                StationId(1),
                TagId(k as u64 + 1),
                &format!("t{k}"),
                &format!("JA={address}"),
                *ty,
                None,
            )
            .unwrap();
    }
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    h
}

/// Receives `body` on `up` and checks that each row's tag got the row's value.
fn check_rows(h: &mut Harness, body: &[u8], rows: &[(&str, ValueType, Option<Value>)], what: &str) {
    let got = values(&h.receive("up", body, QoS::AtMostOnce, 0));
    for (k, (address, ty, want)) in rows.iter().enumerate() {
        let value = got
            .iter()
            .find(|v| v.0 == k as u64 + 1)
            .map(|v| v.1.clone())
            .unwrap_or_else(|| panic!("no value for JA={address}"));
        assert_eq!(&value, want, "JA={address} into {ty}{what}");
    }
}

/// A JSON string into a text tag is its content; an address read by several tags gives each
/// of them the value (a text tag takes the string out of what was extracted: the other tags
/// must still see theirs).
#[test]
fn strings_reach_every_tag_that_reads_them() {
    use ValueType::*;
    // Each row: JA address, type, the value the tag must get (None: invalid).
    let rows: Vec<(&str, ValueType, Option<Value>)> = vec![
        ("s", TxtI, text("12")),
        ("s", TxtO, text("12")),
        ("s", Ci, Some(Value::Int(12))),
        ("s", TxtI, text("12")),
        ("esc", TxtI, text("a\"b\n")),
        ("list[1]", TxtI, text("x")),
        ("word", Ci, None),
        ("word", TxtI, text("north")),
    ];
    let body = br#"{"s":"12","esc":"a\"b\n","list":["x"],"word":"north"}"#;
    let mut h = json_station(&rows);
    for round in 0..2 {
        check_rows(&mut h, body, &rows, &format!(", message {round}"));
    }
}
