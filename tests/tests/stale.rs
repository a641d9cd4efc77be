//! STALE end to end: a station that hears nothing for its STALE goes to comm_error with its
//! inputs invalid, and the next message brings it back to ok with the new value.

use mqtt_line_e2e::{ev, publish, LineConfig, Mosquitto, SimHost, StationConfig};
use serde_json::Value;

fn stale_comm_error(e: &Value) -> bool {
    ev::is_station(e, "meter", "comm_error") && ev::field(e, "reason").contains("(STALE)")
}

#[test]
fn a_silent_station_goes_stale_and_the_next_message_brings_it_back() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "plant/#")
        .station(
            StationConfig::new("meter", "plant/meter")
                .param("STALE", "1")
                .inputs(),
        );
    let mut host = SimHost::start_on(&broker, &config);
    host.wait_connected();
    host.expect_station("meter", "ok");

    // Nothing is published: one second after the connection the station is stale.
    let stale = host.expect("comm_error for STALE", stale_comm_error);
    assert_eq!(
        ev::field(&stale, "reason"),
        "no message for 1 s (STALE)",
        "{stale}"
    );

    // The next message: ok first, then the new value.
    publish(broker.port(), "plant/meter", b"41.5", 1, false);
    host.expect("ok again", |e| {
        ev::is_station(e, "meter", "ok") && ev::field(e, "reason") == "data received"
    });
    host.expect_value_eq("meter", "data", "41.5");
    let events = host.events().to_vec();
    let back = events.iter().rposition(|e| {
        ev::is_station(e, "meter", "ok") && ev::field(e, "reason") == "data received"
    });
    let value = events
        .iter()
        .rposition(|e| ev::is_value_of(e, "meter", "data", &Value::from("41.5")));
    assert!(
        back < value,
        "ok comes before the new value\n{}",
        host.report()
    );

    // Silent again: stale again, and the value that was valid is now invalid.
    host.expect("comm_error for STALE again", stale_comm_error);
    host.expect("the data tag invalid", |e| {
        ev::is_value(e, "meter", "data") && e.get("valid") == Some(&Value::Bool(false))
    });
    host.quit_ok();
}
