//! MQTT 3.1.1 packets that the harness's brokers send.
//!
//! Well-formed packets come from rumqttc's `mqttbytes::v4` codec, the one the plugin's core
//! decodes with, so the harness has no encoder of its own to get wrong. The only hand-made bytes
//! are the deliberately malformed ones, and they all go through [`frame`].

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, PingResp, PubAck, PubComp, PubRec, Publish, SubAck,
    SubscribeReasonCode, UnsubAck,
};
use rumqttc::mqttbytes::QoS;

/// One packet through the codec. The codec refuses only fields over MQTT's size limits, which a
/// test asking for a well-formed packet never means to send.
fn encode(
    write: impl FnOnce(&mut BytesMut) -> Result<usize, rumqttc::mqttbytes::Error>,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    if let Err(e) = write(&mut buf) {
        panic!("the codec cannot encode this packet: {e:?}");
    }
    buf.to_vec()
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        other => panic!("QoS {other} does not exist"),
    }
}

/// CONNACK accepting the connection, no session present.
pub fn connack() -> Vec<u8> {
    encode(|b| ConnAck::new(ConnectReturnCode::Success, false).write(b))
}

/// SUBACK of `pkid` with one return code: 0, 1 or 2 grant that QoS, 0x80 refuses.
pub fn suback(pkid: u16, code: u8) -> Vec<u8> {
    let code = match code {
        0x80 => SubscribeReasonCode::Failure,
        level => SubscribeReasonCode::Success(qos(level)),
    };
    encode(|b| SubAck::new(pkid, vec![code]).write(b))
}

pub fn unsuback(pkid: u16) -> Vec<u8> {
    encode(|b| UnsubAck::new(pkid).write(b))
}

pub fn pingresp() -> Vec<u8> {
    encode(|b| PingResp.write(b))
}

pub fn puback(pkid: u16) -> Vec<u8> {
    encode(|b| PubAck::new(pkid).write(b))
}

pub fn pubrec(pkid: u16) -> Vec<u8> {
    encode(|b| PubRec::new(pkid).write(b))
}

pub fn pubcomp(pkid: u16) -> Vec<u8> {
    encode(|b| PubComp::new(pkid).write(b))
}

/// A PUBLISH (no DUP, no retain) of `payload` to `topic` at QoS `level`; `pkid` is left out at
/// QoS 0.
pub fn publish(topic: &str, payload: &[u8], level: u8, pkid: u16) -> Vec<u8> {
    let mut p = Publish::new(topic, qos(level), payload);
    if level > 0 {
        p.pkid = pkid;
    }
    encode(|b| p.write(b))
}

/// A PUBLISH whose topic is any bytes: invalid UTF-8, U+0000 or a wildcard, which the codec
/// (rightly) has no way to make. Otherwise like [`publish`].
pub fn malformed_publish(topic: &[u8], payload: &[u8], level: u8, pkid: u16) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + topic.len() + payload.len());
    let topic_len = u16::try_from(topic.len()).unwrap_or(u16::MAX);
    body.extend_from_slice(&topic_len.to_be_bytes());
    body.extend_from_slice(topic);
    if level > 0 {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    body.extend_from_slice(payload);
    frame(0x30 | (level << 1), &body)
}

/// The raw frame for deliberately malformed packets: `first` byte, the remaining length of
/// `body` encoded as MQTT does, then `body` as given.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// The user name and password of an MQTT 3.1.1 CONNECT (empty when it has none); `None` when
/// the bytes are not one.
pub fn connect_login(packet: &[u8]) -> Option<(String, String)> {
    let mut buf = BytesMut::from(packet);
    match rumqttc::mqttbytes::v4::Packet::read(&mut buf, packet.len()) {
        Ok(rumqttc::mqttbytes::v4::Packet::Connect(c)) => Some(
            c.login
                .map(|l| (l.username, l.password))
                .unwrap_or_default(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codec's bytes are the ones the spec gives (MQTT 3.1.1, section 3).
    #[test]
    fn packets_match_the_spec() {
        let cases: &[(&str, Vec<u8>, &[u8])] = &[
            ("CONNACK", connack(), &[0x20, 0x02, 0x00, 0x00]),
            (
                "SUBACK QoS 1",
                suback(1, 1),
                &[0x90, 0x03, 0x00, 0x01, 0x01],
            ),
            (
                "SUBACK refused",
                suback(0x102, 0x80),
                &[0x90, 0x03, 0x01, 0x02, 0x80],
            ),
            ("UNSUBACK", unsuback(7), &[0xb0, 0x02, 0x00, 0x07]),
            ("PINGRESP", pingresp(), &[0xd0, 0x00]),
            ("PUBACK", puback(0x7a7a), &[0x40, 0x02, 0x7a, 0x7a]),
            ("PUBREC", pubrec(3), &[0x50, 0x02, 0x00, 0x03]),
            ("PUBCOMP", pubcomp(3), &[0x70, 0x02, 0x00, 0x03]),
            (
                "PUBLISH QoS 0",
                publish("a/b", b"hi", 0, 9),
                &[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
            ),
            (
                "PUBLISH QoS 1",
                publish("a/b", b"hi", 1, 9),
                &[
                    0x32, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x09, b'h', b'i',
                ],
            ),
        ];
        for (what, got, want) in cases {
            assert_eq!(got.as_slice(), *want, "{what}");
        }
    }

    /// Over valid topics the raw PUBLISH and the codec agree, remaining lengths of 1 to 3 bytes
    /// included.
    #[test]
    fn malformed_publish_frames_like_the_codec() {
        for len in [0, 127, 128, 16_383, 16_384, 70_000] {
            let payload = vec![b'p'; len];
            for level in 0..=2 {
                assert_eq!(
                    malformed_publish(b"t/x", &payload, level, 5),
                    publish("t/x", &payload, level, 5),
                    "payload {len}, QoS {level}"
                );
            }
        }
    }
}
