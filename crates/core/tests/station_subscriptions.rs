//! `subscribe_station_address`: a station's own subscription beside or instead of the line's
//! `topic_filter`, in the first SUBSCRIBE of a connection, and an UNSUBSCRIBE / SUBSCRIBE of its
//! filter when it is switched off and on; on virtual time, by the packets the line sends.

mod common;

use common::{logs, Harness};
use mqtt_line_core::mqtt::{
    conn_ack, sub_ack, ConnectReturnCode, Packet, QoS, SubscribeReasonCode, UnsubAck,
};
use mqtt_line_core::{LogLevel, StationCommand, StationId};

/// A started line with `stations` (id, address, subscribes its address), not yet connected.
fn line(params: &[(&str, &str)], stations: &[(u64, &str, bool)]) -> Harness {
    let mut h = Harness::new(params);
    for &(id, address, subscribes) in stations {
        let yes_no = if subscribes { "YES" } else { "NO" };
        h.line
            .add_station(
                StationId(id),
                &format!("s{id}"),
                address,
                [("Subscribe Station Address", yes_no)],
            )
            .unwrap();
    }
    h.line.start(0).unwrap();
    h
}

/// Opens the transport and accepts CONNECT: the packets that follow CONNACK.
fn connack(h: &mut Harness, session_present: bool) -> Vec<Packet> {
    h.line
        .transport_open("127.0.0.1:1883", &Default::default(), h.now);
    h.transmit();
    h.line
        .handle_packet(
            Packet::ConnAck(conn_ack(ConnectReturnCode::Success, session_present)),
            h.now,
            0,
        )
        .unwrap();
    h.transmit()
}

fn subscribed(packet: &Packet) -> (u16, Vec<String>) {
    let Packet::Subscribe(s) = packet else {
        panic!("not a SUBSCRIBE: {packet:?}")
    };
    (s.pkid, s.filters.iter().map(|f| f.path.clone()).collect())
}

fn unsubscribed(packet: &Packet) -> (u16, Vec<String>) {
    let Packet::Unsubscribe(u) = packet else {
        panic!("not an UNSUBSCRIBE: {packet:?}")
    };
    (u.pkid, u.filters.clone())
}

fn grant(h: &mut Harness, pkid: u16, n: usize) {
    let codes = vec![SubscribeReasonCode::Success(QoS::AtLeastOnce); n];
    h.line
        .handle_packet(Packet::SubAck(sub_ack(pkid, codes)), h.now, 0)
        .unwrap();
}

fn unsuback(h: &mut Harness, pkid: u16) {
    let ack = UnsubAck {
        pkid,
        reasons: Vec::new(),
        properties: None,
    };
    h.line
        .handle_packet(Packet::UnsubAck(ack), h.now, 0)
        .unwrap();
}

fn switch(h: &mut Harness, id: u64, cmd: StationCommand) -> Vec<Packet> {
    h.line
        .station_command(StationId(id), cmd, h.now, 0)
        .unwrap();
    h.transmit()
}

#[test]
fn the_first_subscribe_holds_the_stations_filters_beside_or_instead_of_the_lines() {
    let stations = [
        (1, "plant/a/temp", true),
        (2, "sensors/[^/]+/temp", true),
        (3, "other/x", false),
    ];
    type Params<'a> = &'a [(&'a str, &'a str)];
    // (line parameters, the filters of the first SUBSCRIBE)
    let cases: &[(Params, &[&str])] = &[
        // No topic_filter given: the stations' subscriptions instead of the default `#`.
        (&[], &["plant/a/temp", "sensors/+/temp"]),
        // Given: beside them, first.
        (
            &[("topic_filter", "cmd/#")],
            &["cmd/#", "plant/a/temp", "sensors/+/temp"],
        ),
        // The line's filter is sent once even when a station's is the same.
        (
            &[("topic_filter", "plant/a/temp")],
            &["plant/a/temp", "sensors/+/temp"],
        ),
    ];
    for &(params, want) in cases {
        let mut h = line(params, &stations);
        let sent = connack(&mut h, false);
        let [sub] = &sent[..] else { panic!("{sent:?}") };
        let (pkid, filters) = subscribed(sub);
        assert_eq!(filters, want, "{params:?}");
        grant(&mut h, pkid, filters.len());
        assert!(h.line.is_ready());
    }
    // No station subscribes its address: the line's filter as before (`#` by default).
    let mut h = line(&[], &[(1, "a", false)]);
    let sent = connack(&mut h, false);
    assert_eq!(subscribed(&sent[0]).1, ["#"]);
}

#[test]
fn switching_a_station_off_and_on_unsubscribes_and_subscribes_its_filter() {
    let mut h = line(
        &[("topic_filter", "cmd/#")],
        &[
            (1, "plant/a/temp", true),
            (2, "dev/[0-9]+/state", true),
            (3, "dev/[0-9]{1,3}/state", true),
        ],
    );
    // Station 3 is off before the connection: its filter is not subscribed.
    assert!(switch(&mut h, 3, StationCommand::Off).is_empty());
    let sent = connack(&mut h, false);
    let (pkid, filters) = subscribed(&sent[0]);
    assert_eq!(filters, ["cmd/#", "dev/+/state", "plant/a/temp"]);
    grant(&mut h, pkid, 3);
    h.events();

    let sent = switch(&mut h, 1, StationCommand::Off);
    let [unsub] = &sent[..] else {
        panic!("{sent:?}")
    };
    let (pkid, filters) = unsubscribed(unsub);
    assert_eq!(filters, ["plant/a/temp"]);
    unsuback(&mut h, pkid);
    // Simulation is not on either: nothing more to unsubscribe, nothing sent.
    assert!(switch(&mut h, 1, StationCommand::Simulate).is_empty());

    let sent = switch(&mut h, 1, StationCommand::On);
    let [sub] = &sent[..] else { panic!("{sent:?}") };
    let (pkid, filters) = subscribed(sub);
    assert_eq!(filters, ["plant/a/temp"]);
    grant(&mut h, pkid, 1);

    // Stations 2 and 3 share `dev/+/state`: it stays while one of them is on.
    let sent = switch(&mut h, 3, StationCommand::On);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(switch(&mut h, 2, StationCommand::Off).is_empty());
    let sent = switch(&mut h, 3, StationCommand::Off);
    assert_eq!(unsubscribed(&sent[0]).1, ["dev/+/state"]);

    // Switched back on before the UNSUBACK: subscribed again once it arrived.
    let (pkid, _) = unsubscribed(&sent[0]);
    assert!(switch(&mut h, 2, StationCommand::On).is_empty());
    unsuback(&mut h, pkid);
    let sent = h.transmit();
    assert_eq!(subscribed(&sent[0]).1, ["dev/+/state"]);
}

#[test]
fn a_line_with_only_station_subscriptions_and_a_reconnect_after_changes() {
    // All subscribing stations off at connect and no topic_filter: nothing to subscribe, the
    // line is ready after CONNACK.
    let mut h = line(&[], &[(1, "plant/a/temp", true), (2, "free", false)]);
    switch(&mut h, 1, StationCommand::Off);
    let sent = connack(&mut h, false);
    assert!(sent.is_empty(), "{sent:?}");
    assert!(h.line.is_ready());
    let sent = switch(&mut h, 1, StationCommand::On);
    let (pkid, filters) = subscribed(&sent[0]);
    assert_eq!(filters, ["plant/a/temp"]);
    grant(&mut h, pkid, 1);

    // The connection drops; the station is switched off meanwhile. The broker kept the session
    // (clean session off), so the next connection unsubscribes the filter first.
    h.line.transport_closed("lost", 0);
    assert!(switch(&mut h, 1, StationCommand::Off).is_empty());
    let sent = connack(&mut h, true);
    let (pkid, filters) = unsubscribed(&sent[0]);
    assert_eq!(filters, ["plant/a/temp"]);
    unsuback(&mut h, pkid);
    assert!(h.line.is_ready());
    assert!(h.transmit().is_empty());
}

#[test]
fn a_sparkplug_line_refuses_station_subscriptions() {
    let mut h = Harness::new(&[("payload_type", "Sparkplug B")]);
    let err = h
        .line
        .add_station(
            StationId(1),
            "n",
            "g/n",
            [("subscribe_station_address", "YES")],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("station 'n'") && err.contains("subscribe_station_address"),
        "{err}"
    );
    let err = mqtt_line_core::StationParams::from_params(
        "station 's'",
        [("subscribe_station_address", "sometimes")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sometimes") && err.contains("YES or NO"),
        "{err}"
    );
}

#[test]
fn a_refused_station_subscription_is_a_warning_not_a_lost_line() {
    let mut h = line(&[("topic_filter", "cmd/#")], &[(1, "plant/a/temp", true)]);
    let sent = connack(&mut h, false);
    let (pkid, filters) = subscribed(&sent[0]);
    assert_eq!(filters, ["cmd/#", "plant/a/temp"]);
    h.line
        .handle_packet(
            Packet::SubAck(sub_ack(
                pkid,
                vec![
                    SubscribeReasonCode::Success(QoS::AtLeastOnce),
                    SubscribeReasonCode::Failure,
                ],
            )),
            h.now,
            0,
        )
        .unwrap();
    assert!(h.line.is_ready());
    let warnings = logs(&h.events());
    assert!(
        warnings
            .iter()
            .any(|(l, t)| *l == LogLevel::Warn && t.contains("plant/a/temp")),
        "{warnings:?}"
    );
}
