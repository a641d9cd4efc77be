//! The payload shapes of issue 12 through a line: WCC Lite's CSV records, Kepware's arrays with
//! per-item time and quality selected by key, and gzip payloads, each with its broken cases.

mod common;

use std::io::Write;

use common::*;
use mqtt_line_core::mqtt::QoS;
use mqtt_line_core::{Event, LogLevel, FLAG_TIME_FROM_PAYLOAD, FLAG_VALID};
use mqtt_line_core::{StationId, TagId, Value, ValueType};

/// The receive time the harness hands to the line.
const RECEIVED: i64 = 42;
const MS: i64 = 1_000_000;

/// (tag, value, time, flags) of each value event.
fn stamped(events: &[Event]) -> Vec<(u64, Option<Value>, i64, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TagValue {
                tag,
                value,
                flags,
                time_ns,
                ..
            } => Some((tag.0, value.clone(), *time_ns, *flags)),
            _ => None,
        })
        .collect()
}

fn warnings(events: &[Event]) -> Vec<String> {
    logs(events)
        .into_iter()
        .filter(|(l, _)| *l == LogLevel::Warn)
        .map(|(_, t)| t)
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A started, connected line with one station `name` on `topic` and `tags` (address, type) as
/// tags 1, 2, … plus IN_DATA as tag 100.
fn line(line: &[(&str, &str)], station: &[(&str, &str)], tags: &[(&str, ValueType)]) -> Harness {
    let mut h = Harness::new(line);
    h.line
        .add_station(StationId(1), "st", "t", station.iter().copied())
        .unwrap();
    for (k, (address, ty)) in tags.iter().enumerate() {
        h.line
            .add_tag(StationId(1), TagId(k as u64 + 1), "v", address, *ty, None)
            .unwrap();
    }
    h.line
        .add_tag(
            StationId(1),
            TagId(100),
            "data",
            "IN_DATA",
            ValueType::TxtI,
            None,
        )
        .unwrap();
    h.line.start(0).unwrap();
    h.connect();
    h.events();
    h
}

const WCC: &[(&str, &str)] = &[
    ("payload_type", "CSV"),
    ("time_field_name", "2"),
    ("time_mask", "UNIXMS"),
    ("quality_field", "3"),
    ("valid_quality", "1"),
];

#[test]
fn wcc_lite_records_give_value_time_and_validity() {
    use ValueType::*;
    // payload, type, the value (None: invalid), the time, a warning that must appear ("" none).
    let rows: &[(&str, ValueType, Option<Value>, i64, &str)] = &[
        (
            "230.5,1700000000123,1",
            Ai,
            Some(Value::Float(230.5)),
            1_700_000_000_123 * MS,
            "",
        ),
        (
            "1,1700000000000,1\n",
            Di,
            Some(Value::Bool(true)),
            1_700_000_000_000 * MS,
            "",
        ),
        (
            "7,1700000000000,1",
            Ci,
            Some(Value::Int(7)),
            1_700_000_000_000 * MS,
            "",
        ),
        (
            "230.5,1700000000000,0",
            Ai,
            None,
            1_700_000_000_000 * MS,
            "",
        ),
        ("nan,1700000000000,1", Ai, None, 1_700_000_000_000 * MS, ""),
        (
            "abc,1700000000000,1",
            Ai,
            None,
            1_700_000_000_000 * MS,
            "CSV=1 = 'abc'",
        ),
        (
            "230.5,1700000000000",
            Ai,
            None,
            1_700_000_000_000 * MS,
            "no quality field at position 3",
        ),
        ("230.5", Ai, None, RECEIVED, "no time field at position 2"),
        (
            "230.5,yesterday,1",
            Ai,
            Some(Value::Float(230.5)),
            RECEIVED,
            "time field at position '2' = \"yesterday\"",
        ),
        ("1,2\n3,4", Ai, None, RECEIVED, "is not one CSV record"),
        // Out of range, which the warning says (not "not a number").
        (
            "1e400,1700000000000,1",
            Ai,
            None,
            1_700_000_000_000 * MS,
            "CSV=1 = '1e400': '1e400' is beyond the range of a double",
        ),
        (
            "2,1700000000000,1",
            Di,
            None,
            1_700_000_000_000 * MS,
            "CSV=1 = '2'",
        ),
    ];
    for (payload, ty, want, time, warning) in rows {
        let mut h = line(&[], WCC, &[("CSV=1", *ty)]);
        let ev = h.receive("t", payload.as_bytes(), QoS::AtMostOnce, 0);
        let got = stamped(&ev);
        let from_payload = if *time == RECEIVED {
            0
        } else {
            FLAG_TIME_FROM_PAYLOAD
        };
        let flags = if want.is_some() {
            FLAG_VALID | from_payload
        } else {
            from_payload
        };
        assert_eq!(
            got[0],
            (1, want.clone(), *time, flags),
            "{payload:?}: {ev:?}"
        );
        // IN_DATA: the whole record, with the same time.
        assert_eq!(
            got[1],
            (
                100,
                Some(Value::Text(payload.to_string())),
                *time,
                FLAG_VALID | from_payload
            ),
            "{payload:?}"
        );
        let w = warnings(&ev);
        if warning.is_empty() {
            assert!(w.is_empty(), "{payload:?}: {w:?}");
        } else {
            assert!(
                w.iter().any(|t| t.contains(warning) && t.contains("'st")),
                "{payload:?}: {w:?}"
            );
        }
    }
}

#[test]
fn csv_fields_by_position_with_another_separator_and_quotes() {
    use ValueType::*;
    let mut h = line(
        &[("payload_type", "CSV"), ("csv_separator", ";")],
        &[],
        &[("CSV=3", TxtI), ("CSV=1", Ai), ("CSV=4", Ci), ("JA=a", Ai)],
    );
    let ev = h.receive("t", br#"1.5;x;"a;""b""";12"#, QoS::AtMostOnce, 0);
    let got = values(&ev);
    assert_eq!(
        got,
        [
            (1, Some(Value::Text("a;\"b\"".into())), FLAG_VALID),
            (2, Some(Value::Float(1.5)), FLAG_VALID),
            (3, Some(Value::Int(12)), FLAG_VALID),
            (
                100,
                Some(Value::Text(r#"1.5;x;"a;""b""";12"#.into())),
                FLAG_VALID
            ),
        ],
        "JA= tags of a CSV station get nothing"
    );
    let ev = h.receive("t", b"1.5;x", QoS::AtMostOnce, 0);
    let w = warnings(&ev);
    assert!(
        w.iter()
            .any(|t| t.contains("CSV=3 is not in the payload of 't' (it has 2 fields)")),
        "{w:?}"
    );
}

fn kepware(items: &str) -> Vec<u8> {
    format!(r#"{{"timestamp":1700000000000,"values":[{items}]}}"#).into_bytes()
}

const KEP: &[(&str, &str)] = &common::payloads::KEPWARE_PARAMS;

fn kep_line() -> Harness {
    use ValueType::*;
    line(
        KEP,
        &[],
        &[
            (r#"JA=values[id="Channel1.Device1.Tag1"].v"#, Ai),
            (r#"JA=values[id="Channel1.Device1.Tag2"].v"#, Di),
            (r#"JA=values[id="Channel1.Device1.Tag3"].v"#, Ci),
        ],
    )
}

#[test]
fn kepware_items_give_their_own_time_and_quality() {
    let mut h = kep_line();
    // Out of order, with an item nobody reads.
    let body = kepware(
        r#"{"id":"Channel1.Device1.Tag3","v":7,"q":true,"t":1700000000300},
           {"id":"Other","v":1,"q":true,"t":1},
           {"v":25.5,"q":true,"t":1700000000100,"id":"Channel1.Device1.Tag1"},
           {"id":"Channel1.Device1.Tag2","v":true,"q":false,"t":1700000000200}"#,
    );
    let ev = h.receive("t", &body, QoS::AtMostOnce, 0);
    let got = stamped(&ev);
    let p = FLAG_TIME_FROM_PAYLOAD;
    assert_eq!(
        got[0],
        (
            1,
            Some(Value::Float(25.5)),
            1_700_000_000_100 * MS,
            FLAG_VALID | p
        )
    );
    assert_eq!(
        got[1],
        (2, None, 1_700_000_000_200 * MS, p),
        "q false: invalid"
    );
    assert_eq!(
        got[2],
        (
            3,
            Some(Value::Int(7)),
            1_700_000_000_300 * MS,
            FLAG_VALID | p
        )
    );
    assert_eq!(
        got[3].2,
        1_700_000_000_000 * MS,
        "IN_DATA has the message's time"
    );
    assert!(warnings(&ev).is_empty(), "{ev:?}");
}

#[test]
fn kepware_broken_items() {
    let mut h = kep_line();
    // Tag1 without its key, Tag2 without time, Tag3 without quality; Tag3 time unreadable.
    let body = kepware(
        r#"{"v":25.5,"q":true,"t":1700000000100},
           {"id":"Channel1.Device1.Tag2","v":1,"q":true},
           {"id":"Channel1.Device1.Tag3","v":7,"t":"soon"}"#,
    );
    let ev = h.receive("t", &body, QoS::AtMostOnce, 0);
    let got = stamped(&ev);
    let msg = 1_700_000_000_000 * MS;
    let p = FLAG_TIME_FROM_PAYLOAD;
    assert_eq!(
        got[0],
        (1, None, msg, p),
        "an item without its key selects nothing"
    );
    assert_eq!(
        got[1],
        (2, Some(Value::Bool(true)), msg, FLAG_VALID | p),
        "the message's time"
    );
    assert_eq!(got[2], (3, None, msg, p), "no quality: invalid");
    let w = warnings(&ev);
    for needle in [
        r#"tag 'st.v': JA=values[id="Channel1.Device1.Tag1"].v is not in the payload of 't'"#,
        r#"no item time field 't' for it"#,
        r#"no quality field 'values[id="Channel1.Device1.Tag3"].q'"#,
        r#"item time field 'values[id="Channel1.Device1.Tag3"].t' = "soon" does not fit time mask 'UNIXMS'"#,
    ] {
        assert!(w.iter().any(|t| t.contains(needle)), "{needle}: {w:#?}");
    }
    assert_eq!(
        w.iter().filter(|t| t.contains("Tag1")).count(),
        1,
        "a missing item is one warning: {w:#?}"
    );
    // Milliseconds beyond the range of a time stamp: warned about, the message's time used.
    let body = kepware(r#"{"id":"Channel1.Device1.Tag1","v":2.5,"q":true,"t":9223372036854775}"#);
    let ev = h.receive("t", &body, QoS::AtMostOnce, 0);
    assert_eq!(
        stamped(&ev)[0],
        (1, Some(Value::Float(2.5)), msg, FLAG_VALID | p)
    );
    let needle = r#"item time field 'values[id="Channel1.Device1.Tag1"].t' = 9223372036854775 does not fit time mask 'UNIXMS': out of range"#;
    let w = warnings(&ev);
    assert!(w.iter().any(|t| t.contains(needle)), "{w:#?}");
    // Not JSON: every JA= tag is invalid, IN_DATA still gets the text.
    let ev = h.receive("t", b"{\"values\":[", QoS::AtMostOnce, 0);
    let got = values(&ev);
    assert_eq!(got.iter().filter(|v| v.1.is_none()).count(), 3, "{got:?}");
    assert!(warnings(&ev)[0].contains("is not JSON"), "{ev:?}");
}

#[test]
fn gzip_payloads_are_inflated_and_bombs_refused() {
    use ValueType::*;
    let mut h = line(
        &[("payload_type", "JSON"), ("max_decompressed_size", "4096")],
        &[],
        &[("JA=a", Ai)],
    );
    let ev = h.receive("t", &gzip(br#"{"a":2.5}"#), QoS::AtMostOnce, 0);
    assert_eq!(
        values(&ev),
        [
            (1, Some(Value::Float(2.5)), FLAG_VALID),
            (100, Some(Value::Text(r#"{"a":2.5}"#.into())), FLAG_VALID),
        ],
        "IN_DATA shows the inflated text"
    );
    let bomb = gzip(&vec![b' '; 1024 * 1024]);
    assert!(bomb.len() < 2048);
    let packed = gzip(br#"{"a":1,"b":"some text to make it longer"}"#);
    for (payload, why) in [
        (
            bomb,
            "inflates to more than 4096 bytes (max_decompressed_size)",
        ),
        (packed[..packed.len() / 2].to_vec(), "gzip stream"),
    ] {
        let ev = h.receive("t", &payload, QoS::AtMostOnce, 0);
        assert_eq!(values(&ev), [(1, None, 0), (100, None, 0)], "{why}");
        let w = warnings(&ev);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("station 'st': the payload of 't' cannot be inflated")
                && w[0].contains(why)
                && w[0].ends_with("its JA= tags and IN_DATA are invalid"),
            "{w:?}"
        );
    }
    // Text only: IN_DATA gets the inflated text too; a broken stream makes it invalid.
    let mut h = line(&[], &[], &[]);
    let ev = h.receive("t", &gzip(b"23.5"), QoS::AtMostOnce, 0);
    assert_eq!(
        values(&ev),
        [(100, Some(Value::Text("23.5".into())), FLAG_VALID)]
    );
    let ev = h.receive("t", &gzip(b"23.5")[..12], QoS::AtMostOnce, 0);
    assert_eq!(values(&ev), [(100, None, 0)]);
    assert!(warnings(&ev)[0].ends_with("; IN_DATA is invalid"), "{ev:?}");
    // 0 turns inflating off: the bytes are the payload.
    let mut h = line(&[("max_decompressed_size", "0")], &[], &[]);
    let ev = h.receive("t", &gzip(b"x"), QoS::AtMostOnce, 0);
    assert!(matches!(&values(&ev)[0], (100, Some(Value::Text(t)), _) if t.starts_with('\u{1f}')));
}

#[test]
fn tags_that_the_payload_type_never_fills_are_warned_about_at_start() {
    let mut h = Harness::new(&[("payload_type", "JSON")]);
    h.line.add_station(StationId(1), "st", "t", []).unwrap();
    h.line
        .add_tag(StationId(1), TagId(1), "v", "CSV=1", ValueType::Ai, None)
        .unwrap();
    let w = h.line.check().unwrap();
    assert!(
        w.iter()
            .any(|w| w.contains("station 'st' has CSV= tags but its payload type is JSON")),
        "{w:?}"
    );
}

#[test]
fn a_line_change_that_leaves_a_station_without_positions_is_refused() {
    let mut h = Harness::new(&[("payload_type", "JSON")]);
    h.line
        .add_station(StationId(1), "dev", "t", [("time_field_name", "ts")])
        .unwrap();
    h.line.start(0).unwrap();
    let e = h
        .line
        .reconfigure([("payload_type", "CSV")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("station 'dev'") && e.contains("time_field_name") && e.contains("'ts'"),
        "{e}"
    );
    assert_eq!(
        h.line.config().payload_type(),
        mqtt_line_core::PayloadType::Json,
        "nothing changed"
    );
    // A CSV station refuses a time field that is no position when it is added.
    let mut h = Harness::new(&[("payload_type", "CSV")]);
    let e = h
        .line
        .add_station(StationId(1), "dev", "t", [("quality_field", "q")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("station 'dev'") && e.contains("field position"),
        "{e}"
    );
}
