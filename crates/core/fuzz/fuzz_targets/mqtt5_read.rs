//! MQTT 5 packets from a broker: `codec::read_packet` with the v5 checks (properties, reason
//! codes) over any bytes, fed to an MQTT 5 session that allows topic aliases, as the driver does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::mqtt::Protocol;

#[path = "shared/read_session.rs"]
mod read_session;

fuzz_target!(|data: &[u8]| {
    read_session::run(
        data,
        &[
            ("host", "h"),
            ("clean_session", "YES"),
            ("protocol_version", "5"),
            ("topic_alias_maximum", "4"),
            ("receive_maximum", "8"),
        ],
        Protocol::V5,
    );
});
