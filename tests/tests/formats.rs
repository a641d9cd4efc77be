//! Issue 12 end to end: the shipped examples `examples/wcc-lite.toml` and `examples/kepware.toml`
//! run by sim-host against a private mosquitto, with the payloads those devices send and every
//! broken case of the issue: a short CSV line, a non-numeric value, a time stamp that does not
//! parse, an array item without its key, a gzip bomb and a truncated gzip stream.

use std::io::Write;

use mqtt_line_e2e::{ev, publish, workspace_dir, Mosquitto, SimHost};
use serde_json::{json, Value};

/// An example configuration pointed at `broker` (it says 127.0.0.1:1883), with `extra` line
/// parameters added.
fn example(name: &str, broker: &Mosquitto, extra: &str) -> String {
    let path = workspace_dir().join("examples").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(text.contains("port = 1883\n"), "{name} names the port");
    text.replace("port = 1883\n", &format!("port = {}\n", broker.port()))
        .replace(
            "[line.parameters]\n",
            &format!("[line.parameters]\n{extra}\n"),
        )
}

fn start(name: &str, extra: &str, stations: &[&str]) -> (Mosquitto, SimHost) {
    let broker = Mosquitto::start();
    let mut host = SimHost::start(&example(name, &broker, extra));
    host.attach_broker(&broker);
    host.wait_connected();
    for st in stations {
        host.expect_station(st, "ok");
    }
    (broker, host)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// The value, validity, time and payload-time flag of a value event.
fn seen(e: &Value) -> (Value, bool, String, bool) {
    (
        e["value"].clone(),
        e["valid"] == json!(true),
        ev::field(e, "time").to_string(),
        e.get("time_from_payload") == Some(&json!(true)),
    )
}

/// Waits until sim-host's stderr has a WARN line with every one of `needles`.
fn expect_warning(host: &mut SimHost, needles: &[&str]) {
    host.wait_stderr(&format!("a warning with {needles:?}"), |text| {
        text.lines()
            .any(|l| l.starts_with("WARN") && needles.iter().all(|n| l.contains(n)))
    });
}

/// A payload, the value and validity it must give, its time (None: the receive time), and the
/// needles of the warning it must cause (none when empty).
type Row<'a> = (&'a [u8], Value, bool, Option<&'a str>, &'a [&'a str]);

#[test]
fn wcc_lite_example_reads_value_time_and_quality() {
    let (broker, mut host) = start("wcc-lite.toml", "", &["voltage", "breaker"]);
    let voltage = "tag/rtu1/voltage/in";
    let t = "2023-11-14T22:13:20.123Z";
    let rows: &[Row] = &[
        (b"230.5,1700000000123,1", json!(230.5), true, Some(t), &[]),
        (b"231,1700000000123,0", Value::Null, false, Some(t), &[]),
        (b"nan,1700000000123,1", Value::Null, false, Some(t), &[]),
        // A non-numeric value.
        (
            b"abc,1700000000123,1",
            Value::Null,
            false,
            Some(t),
            &["'voltage.value'", "CSV=1 = 'abc'"],
        ),
        // A short line: no quality field.
        (
            b"232.5,1700000000123",
            Value::Null,
            false,
            Some(t),
            &[
                "'voltage.value'",
                "no quality field at position 3",
                "(it has 2 fields)",
            ],
        ),
        // A time stamp that does not parse: the value, at the receive time.
        (
            b"233.5,yesterday,1",
            json!(233.5),
            true,
            None,
            &[
                "station 'voltage'",
                "\"yesterday\" does not fit time mask 'UNIXMS'",
            ],
        ),
        // gzip: inflated first.
        (
            &gzip(b"234.5,1700000000123,1\n"),
            json!(234.5),
            true,
            Some(t),
            &[],
        ),
    ];
    for (payload, value, valid, time, warning) in rows {
        publish(broker.port(), voltage, payload, 1, false);
        let e = host.expect_value("voltage", "value");
        let (got, got_valid, got_time, from_payload) = seen(&e);
        let what = String::from_utf8_lossy(payload);
        let report = host.report();
        assert_eq!((&got, got_valid), (value, *valid), "{what}: {e}\n{report}");
        match time {
            Some(t) => assert!(got_time == *t && from_payload, "{what}: {e}\n{report}"),
            None => assert!(!from_payload && got_time != t, "{what}: {e}\n{report}"),
        }
        if !warning.is_empty() {
            expect_warning(&mut host, warning);
        }
    }
    publish(
        broker.port(),
        "tag/rtu1/breaker/in",
        b"1,1700000000123,1",
        1,
        false,
    );
    let e = host.expect_value("breaker", "value");
    assert_eq!(seen(&e), (json!(true), true, t.to_string(), true), "{e}");
    publish(
        broker.port(),
        "tag/rtu1/breaker/in",
        b"0,1700000000123,1",
        1,
        false,
    );
    let e = host.expect_value("breaker", "value");
    assert_eq!(seen(&e).0, json!(false), "{e}");
    host.quit_ok();
}

fn kepware(items: &str) -> Vec<u8> {
    format!(r#"{{"timestamp":1700000000000,"values":[{items}]}}"#).into_bytes()
}

/// The next values of tag1, tag2, tag3 of station `kep`.
fn kep_values(host: &mut SimHost) -> Vec<(Value, bool, String, bool)> {
    ["tag1", "tag2", "tag3"]
        .iter()
        .map(|t| seen(&host.expect_value("kep", t)))
        .collect()
}

#[test]
fn kepware_example_selects_items_with_their_time_and_quality() {
    let (broker, mut host) = start("kepware.toml", "max_decompressed_size = 65536", &["kep"]);
    let at = |ms: u32| format!("2023-11-14T22:13:20.{ms:03}Z");
    let message = kepware(
        r#"{"id":"Channel1.Device1.Tag3","v":42,"q":true,"t":1700000000300},
           {"id":"Channel1.Device1.Other","v":0,"q":true,"t":1700000000900},
           {"id":"Channel1.Device1.Tag2","v":true,"q":false,"t":1700000000200},
           {"v":25.5,"t":1700000000100,"q":true,"id":"Channel1.Device1.Tag1"}"#,
    );
    publish(broker.port(), "iotgateway", &message, 1, false);
    assert_eq!(
        kep_values(&mut host),
        [
            (json!(25.5), true, at(100), true),
            (Value::Null, false, at(200), true),
            (json!(42), true, at(300), true),
        ]
    );

    // An array item without its key: its tag is invalid, at the message's time; the others read.
    let broken = kepware(
        r#"{"v":26.5,"q":true,"t":1700000000100},
           {"id":"Channel1.Device1.Tag2","v":false,"q":true,"t":1700000000200},
           {"id":"Channel1.Device1.Tag3","v":43,"q":true,"t":1700000000300}"#,
    );
    publish(broker.port(), "iotgateway", &broken, 1, false);
    assert_eq!(
        kep_values(&mut host),
        [
            (Value::Null, false, at(0), true),
            (json!(false), true, at(200), true),
            (json!(43), true, at(300), true),
        ]
    );
    expect_warning(
        &mut host,
        &[
            "tag 'kep.tag1'",
            r#"JA=values[id="Channel1.Device1.Tag1"].v is not in the payload of 'iotgateway'"#,
        ],
    );

    // The same message gzip-compressed.
    publish(broker.port(), "iotgateway", &gzip(&message), 1, false);
    assert_eq!(kep_values(&mut host)[0], (json!(25.5), true, at(100), true));

    // A gzip bomb (4 MiB of spaces in ~4 KB) and a truncated stream: refused, tags invalid.
    let bomb = gzip(&vec![b' '; 4 * 1024 * 1024]);
    assert!(bomb.len() < 8 * 1024, "{}", bomb.len());
    let packed = gzip(&message);
    for (payload, why) in [
        (&bomb[..], "more than 65536 bytes (max_decompressed_size)"),
        (&packed[..packed.len() / 2], "the gzip stream"),
    ] {
        publish(broker.port(), "iotgateway", payload, 1, false);
        for (_, valid, _, _) in kep_values(&mut host) {
            assert!(!valid, "{why}");
        }
        expect_warning(
            &mut host,
            &[
                "station 'kep': the payload of 'iotgateway' cannot be inflated",
                why,
                "its JA= tags and IN_DATA are invalid",
            ],
        );
    }

    // And the line still reads the next good message.
    publish(broker.port(), "iotgateway", &message, 1, false);
    assert_eq!(kep_values(&mut host)[2], (json!(42), true, at(300), true));
    host.quit_ok();
}
