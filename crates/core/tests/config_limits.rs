//! Configuration limits: NUL characters, the 65,535-byte MQTT string length, parameters given
//! twice, and how refused values are shown in messages.

mod common;

use common::{write_results, Harness};
use mqtt_line_core::PasswordSource;
use mqtt_line_core::Secret;
use mqtt_line_core::StationParams;
use mqtt_line_core::{Event, LogLevel};
use mqtt_line_core::{Line, LineConfig, StationId, TagId, Value, ValueType};

fn line(params: &[(&str, &str)]) -> Result<LineConfig, String> {
    let mut all = vec![("host", "127.0.0.1")];
    all.extend_from_slice(params);
    LineConfig::from_params("line 'L'", all)
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
}

fn station(params: &[(&str, &str)]) -> Result<StationParams, String> {
    StationParams::from_params("station 's'", params.iter().copied()).map_err(|e| e.to_string())
}

/// Line and station parameters whose values go on the wire (or are compared with what comes
/// from it), with a valid value to build a bad one from.
const LINE_TEXT: &[(&str, &str)] = &[
    ("client_id", "id"),
    ("user_name", "user"),
    ("password", "secret"),
    ("will_topic", "d2000/lwt"),
    ("will_message", "gone"),
    ("topic_filter", "a/b"),
    ("ws_path", "/mqtt"),
    ("password_env", "MQTT_PASS"),
    ("password_file", "/run/secrets/mqtt"),
];
const STATION_TEXT: &[(&str, &str)] = &[("SWT", "dev/will"), ("SWP", "gone")];

#[test]
fn a_nul_character_in_any_text_parameter_is_refused_naming_it() {
    for &(param, good) in LINE_TEXT.iter().chain(STATION_TEXT) {
        let bad = format!("{good}\0x");
        let err = if STATION_TEXT.iter().any(|(p, _)| *p == param) {
            station(&[(param, &bad)]).expect_err(param)
        } else {
            line(&[(param, &bad)]).expect_err(param)
        };
        assert!(err.contains(&format!("'{param}'")), "{err}");
        assert!(err.contains("NUL"), "{err}");
        assert!(!err.contains('\0'), "the NUL itself is escaped: {err:?}");
    }
}

#[test]
fn values_longer_than_an_mqtt_string_are_refused_naming_parameter_and_length() {
    for &(param, good) in LINE_TEXT.iter().chain(STATION_TEXT) {
        let long = format!("{good}{}", "a".repeat(70_000));
        let err = if STATION_TEXT.iter().any(|(p, _)| *p == param) {
            station(&[(param, &long)]).expect_err(param)
        } else {
            line(&[(param, &long)]).expect_err(param)
        };
        let len = long.len();
        assert!(err.contains(&format!("'{param}'")), "{err}");
        assert!(err.contains(&format!("{len} bytes")), "{err}");
        assert!(err.contains("65535"), "{err}");
        assert!(err.len() < 500, "the value is cut: {} bytes", err.len());
    }
    // At the limit is accepted.
    let at_limit = "a".repeat(65_535);
    assert_eq!(
        line(&[("client_id", &at_limit)]).unwrap().client_id,
        at_limit
    );
}

#[test]
fn long_values_are_cut_in_every_message_that_quotes_them() {
    let long = "a".repeat(70_000);
    let start = format!("'{}…' (70000 bytes)", "a".repeat(80));
    let mut errors = vec![
        line(&[("client_id", &long)]).unwrap_err(),
        line(&[("keep_alive", &long)]).unwrap_err(),
        line(&[(&long, "1")]).unwrap_err(),
        station(&[("time_zone", &long)]).unwrap_err(),
    ];
    let mut h = Harness::new(&[]);
    errors.push(
        h.line
            .add_station(StationId(1), "s", &long, [])
            .unwrap_err()
            .to_string(),
    );
    h.line.add_station(StationId(2), "t", "t", []).unwrap();
    errors.push(
        h.line
            .add_tag(StationId(2), TagId(1), "x", &long, ValueType::TxtI, None)
            .unwrap_err()
            .to_string(),
    );
    errors.push(
        h.line
            .add_tag(
                StationId(2),
                TagId(2),
                "o",
                "OUT_TOPIC",
                ValueType::TxtO,
                Some(Value::Text(long.clone())),
            )
            .unwrap_err()
            .to_string(),
    );
    for err in errors {
        assert!(err.contains(&start), "{}", &err[..err.len().min(300)]);
        assert!(err.len() < 500, "{} bytes: {}", err.len(), &err[..300]);
    }
}

#[test]
fn a_parameter_given_twice_is_refused_naming_both_keys() {
    let line_pairs: &[(&str, &str, &str, &str)] = &[
        ("topic_filter", "a/#", "Topic Filter", "b/#"),
        ("host", "h1", "hosts", "h2"),
        ("user_name", "u", "username", "v"),
        ("clean_session", "YES", "Clean Session Flag", "NO"),
        ("max_wait_retry", "1", "Max. Wait Retry", "2"),
        ("keep_alive", "5", "keep_alive", "5"),
    ];
    for &(first, v1, second, v2) in line_pairs {
        let err = LineConfig::from_params("line 'L'", [(first, v1), (second, v2)])
            .expect_err(second)
            .to_string();
        assert!(
            err.contains(&format!("'{first}'")) && err.contains(&format!("'{second}'")),
            "{err}"
        );
        assert!(err.contains("given twice"), "{err}");
        // The same at run time (line_set_parameters).
        let mut h = Harness::new(&[]);
        let err = h
            .line
            .reconfigure([(first, v1), (second, v2)])
            .expect_err(second)
            .to_string();
        assert!(err.contains("given twice"), "{err}");
    }
    let station_pairs: &[(&str, &str)] = &[
        ("SWT", "Station Will Topic"),
        ("swp", "Station Will Payload"),
        ("time_mask", "Time Mask"),
    ];
    for &(first, second) in station_pairs {
        let err = station(&[(first, "UNIX"), (second, "UNIX")]).expect_err(second);
        assert!(
            err.contains(&format!("'{first}'")) && err.contains(&format!("'{second}'")),
            "{err}"
        );
    }
    // A change at run time may set a parameter the configuration already has.
    let mut h = Harness::new(&[("topic_filter", "a/#")]);
    h.line.reconfigure([("Topic Filter", "b/#")]).unwrap();
    assert_eq!(h.line.config().topic_filter, "b/#");
}

#[test]
fn the_last_password_source_wins() {
    let inline = || PasswordSource::Inline(Secret::new("pw"));
    let env = || PasswordSource::Env("MQTT_PASS".into());
    let file = || PasswordSource::File("/run/pw".into());
    let cases: Vec<(Vec<(&str, &str)>, PasswordSource)> = vec![
        (
            vec![("password", "pw"), ("password_env", "MQTT_PASS")],
            env(),
        ),
        (
            vec![("password_env", "MQTT_PASS"), ("password", "pw")],
            inline(),
        ),
        (
            vec![("password_file", "/run/pw"), ("password_env", "MQTT_PASS")],
            env(),
        ),
        (
            vec![("password_env", "MQTT_PASS"), ("password_file", "/run/pw")],
            file(),
        ),
        (
            vec![
                ("password", "pw"),
                ("password_env", "X"),
                ("password_file", "/run/pw"),
            ],
            file(),
        ),
    ];
    for (params, want) in cases {
        assert_eq!(line(&params).unwrap().password, want, "{params:?}");
    }
}

#[test]
fn an_out_topic_longer_than_an_mqtt_string_fails_its_write_and_sends_nothing() {
    let mut h = Harness::writer(&[], None);
    let long = "t".repeat(70_000);
    h.line
        .write(TagId(1), 7, Value::Text(long), h.now, 0)
        .unwrap();
    h.line
        .write(TagId(2), 8, Value::Text("v".into()), h.now, 0)
        .unwrap();
    let errors = write_results(&h.events());
    assert!(errors[0].0 == 7, "{errors:?}");
    let topic_error = errors[0].1.as_deref().expect("the OUT_TOPIC write fails");
    assert!(
        topic_error.contains("70000 bytes") && topic_error.contains("65535"),
        "{topic_error}"
    );
    assert!(topic_error.len() < 500, "{} bytes", topic_error.len());
    assert!(
        errors[1]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("no OUT_TOPIC")),
        "{errors:?}"
    );
    assert!(h.transmit().is_empty());
}

#[test]
fn a_publication_that_cannot_be_encoded_fails_its_write_and_is_never_counted_as_sent() {
    for qos in ["QoS_0", "QoS_1"] {
        let mut h = Harness::writer(&[("publish_qos", qos)], Some("c"));
        h.line
            .write(TagId(2), 9, Value::Text("v".into()), h.now, 0)
            .unwrap();
        let packet = h.line.poll_transmit(h.now).expect("the PUBLISH");
        h.line.unsendable(packet, "too large", 0).unwrap();
        h.line.flushed(0);
        let errors = write_results(&h.events());
        assert_eq!(errors.len(), 1, "{qos}: {errors:?}");
        let error = errors[0].1.as_deref().expect("the write fails");
        assert!(error.contains("too large"), "{error}");
        // Not resent after a reconnect either.
        h.line.transport_closed("test", 0);
        h.connect_with_session(true);
        assert!(write_results(&h.events()).is_empty());
        assert!(h.transmit().is_empty(), "{qos}");
    }
    // Another packet closes the connection with the reason.
    let mut h = Harness::new(&[]);
    h.line.start(0).unwrap();
    h.line.transport_open("b:1883", &Secret::default(), h.now);
    let connect = h.line.poll_transmit(h.now).expect("CONNECT");
    let reason = h
        .line
        .unsendable(connect, "its password is too long", 0)
        .unwrap_err()
        .to_string();
    assert!(
        reason.contains("CONNECT") && reason.contains("password is too long"),
        "{reason}"
    );
}

/// The line encodes its packets itself: a CONNECT it cannot encode closes the connection with the
/// reason, and Full Debug logs each packet sent (never the password).
#[test]
fn the_line_encodes_its_packets_and_reports_an_unsendable_connect() {
    let mut h = Harness::new(&[("full_debug", "yes")]);
    h.line.start(0).unwrap();
    h.line
        .transport_open("b:1883", &Secret::new("secret-pw"), h.now);
    let mut buf = bytes::BytesMut::new();
    h.line.poll_transmit_into(h.now, &mut buf, 0).unwrap();
    assert_eq!(buf.first(), Some(&0x10), "a CONNECT was encoded: {buf:?}");
    let logs: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Log {
                level: LogLevel::Debug,
                text,
            } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        logs.iter().any(|t| t.starts_with("send CONNECT")),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|t| t.contains("secret-pw")), "{logs:?}");

    let mut h = Harness::new(&[]);
    h.line.start(0).unwrap();
    let long = "p".repeat(70_000);
    h.line.transport_open("b:1883", &Secret::new(long), h.now);
    let mut buf = bytes::BytesMut::new();
    let reason = h
        .line
        .poll_transmit_into(h.now, &mut buf, 0)
        .unwrap_err()
        .to_string();
    assert!(reason.contains("CONNECT"), "{reason}");
    assert!(buf.is_empty(), "nothing of the CONNECT is sent: {buf:?}");
}

/// A QoS 1 message's PUBACK leaves as the same four bytes with and without Full Debug, which
/// takes the codec's general path so as to log it.
#[test]
fn a_puback_is_the_same_four_bytes_with_and_without_full_debug() {
    for full_debug in ["no", "yes"] {
        let mut h = Harness::new(&[("full_debug", full_debug)]);
        h.station(1, "t");
        h.line.start(0).unwrap();
        h.connect();
        h.events();
        h.receive("t", b"1", mqtt_line_core::mqtt::QoS::AtLeastOnce, 0x1234);
        let mut buf = bytes::BytesMut::new();
        h.line.poll_transmit_into(h.now, &mut buf, 0).unwrap();
        assert_eq!(
            &buf[..],
            [0x40, 0x02, 0x12, 0x34],
            "full_debug = {full_debug}"
        );
        let logged = h
            .events()
            .into_iter()
            .any(|e| matches!(e, Event::Log { text, .. } if text.starts_with("send PUBACK")));
        assert_eq!(logged, full_debug == "yes", "full_debug = {full_debug}");
    }
}

/// Each rule for configurations that are accepted but cannot work as meant, reported by
/// `check` and by `start`.
#[test]
fn start_warns_about_configurations_that_cannot_work_as_meant() {
    type Build = fn(&mut Line);
    let cases: &[(&str, Build, Option<&str>)] = &[
        ("no stations", |_| {}, Some("no stations are configured")),
        (
            "OUT_VALUE without OUT_TOPIC",
            |l| {
                l.add_station(StationId(1), "cmd", "cmd", []).unwrap();
                l.add_tag(
                    StationId(1),
                    TagId(1),
                    "v",
                    "OUT_VALUE",
                    ValueType::TxtO,
                    None,
                )
                .unwrap();
            },
            Some("station 'cmd' has an OUT_VALUE tag but no OUT_TOPIC tag"),
        ),
        (
            "OUT_VALUE with OUT_TOPIC",
            |l| {
                l.add_station(StationId(1), "cmd", "cmd", []).unwrap();
                l.add_tag(
                    StationId(1),
                    TagId(1),
                    "v",
                    "OUT_VALUE",
                    ValueType::TxtO,
                    None,
                )
                .unwrap();
                l.add_tag(
                    StationId(1),
                    TagId(2),
                    "t",
                    "OUT_TOPIC",
                    ValueType::TxtO,
                    None,
                )
                .unwrap();
            },
            None,
        ),
        (
            "a station behind '#'",
            |l| {
                l.add_station(StationId(1), "all", "#", []).unwrap();
                l.add_station(StationId(2), "dev", "dev/1", []).unwrap();
                l.add_tag(
                    StationId(2),
                    TagId(1),
                    "d",
                    "IN_DATA",
                    ValueType::TxtI,
                    None,
                )
                .unwrap();
            },
            Some("station 'dev' never receives a message: station 'all' has address '#'"),
        ),
        (
            "an output station next to '#'",
            |l| {
                l.add_station(StationId(1), "all", "#", []).unwrap();
                l.add_tag(
                    StationId(1),
                    TagId(1),
                    "d",
                    "IN_DATA",
                    ValueType::TxtI,
                    None,
                )
                .unwrap();
                l.add_station(StationId(2), "cmd", "cmd", []).unwrap();
                l.add_tag(
                    StationId(2),
                    TagId(2),
                    "t",
                    "OUT_TOPIC",
                    ValueType::TxtO,
                    None,
                )
                .unwrap();
            },
            None,
        ),
        (
            "a wildcard in SWT",
            |l| {
                l.add_station(StationId(1), "dev", "dev/1", [("SWT", "dev/+/will")])
                    .unwrap();
            },
            Some("station 'dev': Station Will Topic 'dev/+/will' contains an MQTT wildcard"),
        ),
    ];
    for (what, build, want) in cases {
        let mut h = Harness::new(&[]);
        build(&mut h.line);
        let checked = h.line.check().unwrap();
        let started = h.line.start(0).unwrap();
        assert_eq!(checked, started, "{what}");
        match want {
            Some(w) => assert!(
                started.len() == 1 && started[0].contains(w),
                "{what}: {started:?}"
            ),
            None => assert!(started.is_empty(), "{what}: {started:?}"),
        }
    }
}
