//! MQTT 5 packets from a broker: `codec::read_packet` with the v5 checks (properties, reason
//! codes) over any bytes, fed to an MQTT 5 session that allows topic aliases, as the driver does.
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
    let Ok((cfg, _)) = LineConfig::from_params(
        "fuzz",
        [
            ("host", "h"),
            ("clean_session", "YES"),
            ("protocol_version", "5"),
            ("topic_alias_maximum", "4"),
            ("receive_maximum", "8"),
        ],
    ) else {
        return;
    };
    let mut session = Session::new(now);
    session.connect(&cfg.session(), &Secret::default(), now);
    while session.poll_transmit(now).is_some() {}
    let mut buf = BytesMut::from(data);
    let mut packets = 0;
    while let Ok(Some(packet)) = read_packet(&mut buf, 1 << 20, Protocol::V5) {
        packets += 1;
        if session.handle(packet, now).is_err() || packets > 64 {
            break;
        }
        while session.poll_transmit(now).is_some() {}
    }
});
