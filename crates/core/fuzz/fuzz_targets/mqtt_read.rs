//! Packets from a broker: `codec::read_packet` over any bytes, fed to a session that is
//! waiting for its CONNACK and to one that is connected, as the driver does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqtt_line_core::mqtt::Protocol;

#[path = "shared/read_session.rs"]
mod read_session;

fuzz_target!(|data: &[u8]| {
    read_session::run(
        data,
        &[("host", "h"), ("clean_session", "YES")],
        Protocol::V311,
    );
});
