//! Packets from a broker: `codec::read_packet` over any bytes, fed to a session that is
//! waiting for its CONNACK and to one that is connected, as the driver does.
#![no_main]

use std::time::Instant;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mqtt_line_core::mqtt::Session;
use mqtt_line_core::mqtt::{read_packet, Protocol};
use mqtt_line_core::LineConfig;
use mqtt_line_core::Secret;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let Ok((cfg, _)) = LineConfig::from_params("fuzz", [("host", "h"), ("clean_session", "YES")])
    else {
        return;
    };
    let mut session = Session::new(now);
    session.connect(&cfg.session(), &Secret::default(), now);
    while session.poll_transmit(now).is_some() {}
    let mut buf = BytesMut::from(data);
    let mut packets = 0;
    while let Ok(Some(packet)) = read_packet(&mut buf, 1 << 20, Protocol::V311) {
        packets += 1;
        if session.handle(packet, now).is_err() || packets > 64 {
            break;
        }
        while session.poll_transmit(now).is_some() {}
    }
});
