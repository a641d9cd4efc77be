//! What `mqtt_read` and `mqtt5_read` share: any bytes cut into packets by `codec::read_packet` and
//! handed to a session of the line configured by `params` (waiting for its CONNACK), as the
//! driver does.

use std::time::Instant;

use bytes::BytesMut;
use mqtt_line_core::mqtt::{read_packet, Protocol, Session};
use mqtt_line_core::{LineConfig, Secret};

pub fn run(data: &[u8], params: &[(&str, &str)], protocol: Protocol) {
    let now = Instant::now();
    let Ok((cfg, _)) = LineConfig::from_params("fuzz", params.iter().copied()) else {
        return;
    };
    let mut session = Session::new(now);
    session.connect(&cfg.session(), &Secret::default(), now);
    while session.poll_transmit(now).is_some() {}
    let mut buf = BytesMut::from(data);
    let mut packets = 0;
    while let Ok(Some(packet)) = read_packet(&mut buf, 1 << 20, protocol) {
        packets += 1;
        if session.handle(packet, now).is_err() || packets > 64 {
            break;
        }
        while session.poll_transmit(now).is_some() {}
    }
}
