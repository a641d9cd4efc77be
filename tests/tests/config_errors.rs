//! Configuration errors and warnings end to end, through sim-host and the plugin: NUL characters,
//! the 65,535-byte MQTT string limit, parameters given twice, and the `check` warnings.

use mqtt_line_e2e::{
    assert_refused, check_config, ev, free_port, LineConfig, Mosquitto, SimHost, StationConfig,
};

fn inputs(name: &str, address: &str) -> StationConfig {
    StationConfig::new(name, address).inputs()
}

#[test]
fn a_nul_character_in_a_text_parameter_is_refused_naming_it() {
    for param in [
        "client_id",
        "user_name",
        "password",
        "will_message",
        "topic_filter",
    ] {
        let config = LineConfig::new(free_port())
            .param(param, "nu\0id")
            .station(inputs("s", "a"))
            .to_toml();
        assert_refused(&config, &[&format!("'{param}'"), "NUL"]);
    }
    let config = LineConfig::new(free_port())
        .station(inputs("s", "a").param("SWT", "dev/\0/will"))
        .to_toml();
    assert_refused(&config, &["station 's'", "'SWT'", "NUL"]);
}

#[test]
fn a_value_longer_than_an_mqtt_string_is_refused_with_its_length_and_cut() {
    let long = "a".repeat(70_000);
    let config = LineConfig::new(free_port())
        .param("client_id", &long)
        .station(inputs("s", "a"))
        .to_toml();
    assert_refused(&config, &["'client_id'", "…' (70000 bytes)", "65535"]);
}

#[test]
fn a_parameter_given_twice_is_refused_naming_both_keys() {
    let config = LineConfig::new(free_port())
        .param("topic_filter", "a/#")
        .param("Topic Filter", "b/#")
        .station(inputs("s", "a"))
        .to_toml();
    assert_refused(
        &config,
        &["'topic_filter'", "'Topic Filter'", "given twice"],
    );
    let config = LineConfig::new(free_port())
        .station(
            inputs("s", "a")
                .param("SWT", "w")
                .param("Station Will Topic", "v"),
        )
        .to_toml();
    assert_refused(&config, &["station 's'", "'SWT'", "'Station Will Topic'"]);
}

/// `check` reports configurations that cannot work as meant and still exits 0.
#[test]
fn check_warns_about_configurations_that_cannot_work_as_meant() {
    let cases: Vec<(&str, LineConfig, &str)> = vec![
        (
            "no stations",
            LineConfig::new(free_port()),
            "no stations are configured",
        ),
        (
            "OUT_VALUE without OUT_TOPIC",
            LineConfig::new(free_port()).station(StationConfig::new("cmd", "cmd").tag(
                "v",
                "OUT_VALUE",
                "TxtO",
            )),
            "station 'cmd' has an OUT_VALUE tag but no OUT_TOPIC tag",
        ),
        (
            "a station behind '#'",
            LineConfig::new(free_port())
                .station(inputs("all", "#"))
                .station(inputs("dev", "dev/1")),
            "station 'dev' never receives a message: station 'all' has address '#'",
        ),
        (
            "a wildcard in SWT",
            LineConfig::new(free_port()).station(inputs("dev", "dev/1").param("SWT", "dev/#")),
            "Station Will Topic 'dev/#' contains an MQTT wildcard",
        ),
    ];
    for (what, config, warning) in cases {
        let done = check_config(&config.to_toml());
        assert_eq!(done.code, Some(0), "{what}\n{done}");
        assert!(done.stderr.contains("WARN"), "{what}\n{done}");
        assert!(
            done.stderr.contains(warning),
            "{what}: lacks {warning:?}\n{done}"
        );
    }
    let good = LineConfig::new(free_port()).station(inputs("dev", "dev/1"));
    let done = check_config(&good.to_toml());
    assert_eq!((done.code, done.stderr.as_str()), (Some(0), ""), "{done}");
}

/// A password read from a file at connection time is not checked by the configuration: a CONNECT
/// that cannot be encoded closes the connection with the reason, instead of going out as a
/// malformed packet the broker drops.
#[test]
fn a_password_file_longer_than_an_mqtt_string_closes_the_connection_with_the_reason() {
    let broker = Mosquitto::start();
    let dir = broker.dir().join("secret");
    std::fs::write(&dir, "p".repeat(70_000)).unwrap();
    let config = LineConfig::new(broker.port())
        .param("user_name", "u")
        .param("password_file", dir.to_str().unwrap())
        .station(inputs("s", "a"));
    let mut sh = SimHost::start_on(&broker, &config);
    let e = sh.expect_disconnected();
    let reason = ev::field(&e, "reason");
    assert!(
        reason.contains("CONNECT") && reason.contains("password") && reason.contains("65535"),
        "{reason}"
    );
    sh.quit_ok();
}
