//! `auth = azure-sas`: the CONNECT carries IoT Hub's user name and a SAS token signed with the
//! device key, and the line asks for a reconnect with a fresh token after four fifths of
//! `sas_ttl`, on virtual time. The expected tokens were computed apart, with the algorithm of
//! Azure's SAS documentation (its Python example).

use std::time::{Duration, Instant};

use mqtt_line_core::mqtt::{
    conn_ack, sub_ack, ConnectReturnCode, Packet, QoS, SubscribeReasonCode,
};
use mqtt_line_core::{
    Attempt, Deliberate, Ended, Event, Line, LineConfig, LogLevel, Secret, StationId,
};

const KEY: &str = "q+DKVojmMz014RjAwpNGZbAkdOocSVWMKPOccLfUmLE=";
const HUB: &str = "myhub.azure-devices.net";
/// 2027-01-15T08:00:00Z in Unix ns.
const WALL_NS: i64 = 1_800_000_000_000_000_000;

fn sas_line(extra: &[(&str, &str)]) -> Line {
    let mut params = vec![
        ("host", HUB),
        ("client_id", "dev-1"),
        ("auth", "azure-sas"),
        ("sas_key", KEY),
        ("sas_ttl", "60"),
    ];
    params.extend_from_slice(extra);
    let (config, _) = LineConfig::from_params("line 'L'", params).unwrap();
    let mut line = Line::new("L", config, Instant::now());
    line.add_station(StationId(1), "s", "t", []).unwrap();
    line.start(0).unwrap();
    line
}

/// Opens a transport at `now`/`wall_ns`: the CONNECT's user name and password.
fn connect(line: &mut Line, now: Instant, wall_ns: i64) -> (String, String) {
    let Some(Attempt::Connect { host, port, .. }) = line.next_attempt(now) else {
        panic!("no attempt")
    };
    let addr = format!("{host}:{port}");
    line.transport_open_at(&addr, &Secret::new(KEY), now, wall_ns)
        .unwrap();
    let Some(Packet::Connect(c, _, Some(login))) = line.poll_transmit(now) else {
        panic!("no CONNECT with a login")
    };
    assert_eq!(c.client_id, "dev-1");
    line.handle_packet(
        Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false)),
        now,
        wall_ns,
    )
    .unwrap();
    let Some(Packet::Subscribe(sub)) = line.poll_transmit(now) else {
        panic!("no SUBSCRIBE")
    };
    line.handle_packet(
        Packet::SubAck(sub_ack(
            sub.pkid,
            vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        )),
        now,
        wall_ns,
    )
    .unwrap();
    assert!(line.is_ready());
    (login.username, login.password)
}

#[test]
fn the_connect_carries_the_hub_user_name_and_a_token_renewed_before_it_expires() {
    let t0 = Instant::now();
    let mut line = sas_line(&[]);
    let (user, password) = connect(&mut line, t0, WALL_NS);
    assert_eq!(
        user,
        "myhub.azure-devices.net/dev-1/?api-version=2021-04-12"
    );
    assert_eq!(
        password,
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1\
         &sig=dGSroltgGcPPdmMi%2Bq1GSO%2BLdGUnCzBxkrdfcIOnmCA%3D&se=1800000060"
    );
    let logs: Vec<String> = std::iter::from_fn(|| line.poll_event())
        .filter_map(|e| match e {
            Event::Log { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        logs.iter().all(|l| !l.contains(KEY) && !l.contains("sig=")),
        "{logs:?}"
    );

    // Renewal after four fifths of 60 s: 48 s, on the line's clock.
    let renew = t0 + Duration::from_secs(48);
    assert_eq!(line.poll_timeout(), Some(renew));
    line.handle_timeout(renew - Duration::from_millis(1), WALL_NS)
        .unwrap();
    assert!(!line.renewal_due());
    line.handle_timeout(renew, WALL_NS).unwrap();
    assert!(line.renewal_due());
    assert!(
        line.poll_timeout().is_none_or(|t| t > renew),
        "the deadline fired once"
    );
    let renewing = std::iter::from_fn(|| line.poll_event()).any(
        |e| matches!(e, Event::Log { level: LogLevel::Info, ref text } if text.contains("renewed")),
    );
    assert!(renewing);

    // The shell closes deliberately and connects again at once, with a fresh token.
    let later_ns = WALL_NS + 48_000_000_000;
    line.transport_closed("the Azure SAS token is renewed before it expires", later_ns);
    line.connection_ended(renew, Ended::Deliberate(Deliberate::Restart));
    assert!(!line.renewal_due());
    let (user, password) = connect(&mut line, renew, later_ns);
    assert_eq!(
        user,
        "myhub.azure-devices.net/dev-1/?api-version=2021-04-12"
    );
    assert_eq!(
        password,
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1\
         &sig=DGqToKNHrO%2FH5uYgCqAIF3V4MQwTgXgRI7pwikta6dM%3D&se=1800000108"
    );
    assert_eq!(line.poll_timeout(), Some(renew + Duration::from_secs(48)));
}

#[test]
fn a_key_from_a_file_or_the_environment_that_is_not_base64_fails_the_attempt() {
    let t0 = Instant::now();
    let (config, _) = LineConfig::from_params(
        "line 'L'",
        [
            ("host", HUB),
            ("client_id", "dev-1"),
            ("auth", "azure-sas"),
            ("sas_key_env", "NO_SUCH_VAR_IN_THIS_TEST"),
        ],
    )
    .unwrap();
    let mut line = Line::new("L", config, t0);
    line.add_station(StationId(1), "s", "t", []).unwrap();
    line.start(0).unwrap();
    let err = line
        .transport_open_at("hub:8883", &Secret::new("sec*ret!"), t0, WALL_NS)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not base64") && !err.contains("sec*ret!"),
        "{err}"
    );
}

#[test]
fn azure_sas_settings_are_checked() {
    let parse = |extra: &[(&str, &str)]| {
        let mut params = vec![("host", HUB)];
        params.extend_from_slice(extra);
        LineConfig::from_params("line 'L'", params).map(|_| ())
    };
    assert!(parse(&[
        ("auth", "azure-sas"),
        ("client_id", "d"),
        ("sas_key_file", "/k")
    ])
    .is_ok());
    assert!(parse(&[("Auth", "Azure SAS"), ("sas_key", KEY), ("sas_ttl", "3600")]).is_ok());
    for (params, needles) in [
        (
            &[("auth", "azure-sas")][..],
            &["auth", "sas_key, sas_key_file or sas_key_env"][..],
        ),
        (&[("sas_key", KEY)], &["auth", "must be azure-sas"]),
        (
            &[("auth", "kerberos")],
            &["auth", "kerberos", "password or azure-sas"],
        ),
        (
            &[("auth", "azure-sas"), ("sas_key", KEY), ("client_id", "")],
            &["client_id", "device id"],
        ),
        (
            &[("auth", "azure-sas"), ("sas_key", KEY), ("user_name", "u")],
            &["user_name", "builds the user name"],
        ),
        (
            &[("auth", "azure-sas"), ("sas_key", KEY), ("password", "p")],
            &["password", "SAS token"],
        ),
        (
            &[("auth", "azure-sas"), ("sas_key", "not base64!")],
            &["sas_key", "not base64"],
        ),
        (
            &[("auth", "azure-sas"), ("sas_key", KEY), ("sas_ttl", "5")],
            &["sas_ttl", "10 to"],
        ),
    ] {
        let err = parse(params).unwrap_err().to_string();
        assert!(err.contains("line 'L'"), "{err}");
        for n in needles {
            assert!(err.contains(n), "{n}: {err}");
        }
        assert!(
            !err.contains("not base64!") || !err.contains("sas_key'"),
            "{err}"
        );
    }
    let err = parse(&[("auth", "azure-sas"), ("sas_key", "not base64!")])
        .unwrap_err()
        .to_string();
    assert!(
        !err.contains("not base64!"),
        "the key is not repeated: {err}"
    );
}
