//! MQTT 3.1.1 packets on the wire: reading them with the checks the codec leaves out, and
//! describing them for traces and messages.

use bytes::BytesMut;
/// The MQTT 3.1.1 packet types of rumqttc's codec, used by the session, the configuration and the
/// shell through this module.
pub use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Login, Packet, PubAck, PubComp, PubRec, PubRel,
    Publish, SubAck, Subscribe, SubscribeReasonCode, UnsubAck, Unsubscribe,
};
pub use rumqttc::mqttbytes::QoS;

use crate::params::MQTT_STRING_MAX;

/// Reads the next whole packet from `buf` (taking its bytes), `Ok(None)` while it is incomplete
/// (after reserving room for the rest).
///
/// The codec is lenient; on top of it this enforces what MQTT 3.1.1 requires of a packet a
/// server sends to a client, so that a malformed one closes the connection instead of being
/// half-understood: the fixed header's reserved flag bits (MQTT-2.2.2-1, MQTT-3.6.1-1), the exact
/// length of acknowledgements, non-zero packet ids (MQTT-2.3.1-1), CONNACK's reserved flag bits
/// (MQTT-3.2.2-1), DUP only with QoS 1 or 2 (MQTT-3.3.1-2), and a PUBLISH topic that is not empty
/// and has no wildcard or U+0000 (MQTT-3.3.2-1, MQTT-3.3.2-2, MQTT-1.5.3-2). A packet type only
/// a client sends is left to [`Session::handle`](crate::session::Session::handle), which refuses it.
pub fn read_packet(buf: &mut BytesMut, max_size: usize) -> Result<Option<Packet>, String> {
    use rumqttc::mqttbytes::Error as CodecError;
    let header = match rumqttc::mqttbytes::check(buf.iter(), max_size) {
        Ok(h) => h,
        Err(CodecError::InsufficientBytes(needed)) => {
            // Room for the rest of a large packet in one step (bounded by `max_size`).
            buf.reserve(needed);
            return Ok(None);
        }
        Err(CodecError::PayloadSizeLimitExceeded(n)) => {
            return Err(format!(
                "a packet of {n} bytes is larger than the limit of {max_size} bytes"
            ))
        }
        Err(e) => return Err(e.to_string()),
    };
    let len = header.frame_length();
    check_frame(&buf[..len])?;
    let packet = Packet::read(buf, max_size).map_err(|e| e.to_string())?;
    if let Packet::Publish(p) = &packet {
        if p.topic.is_empty() {
            return Err("PUBLISH with an empty topic".into());
        }
        if let Some(c) = p.topic.chars().find(|c| matches!(c, '+' | '#' | '\0')) {
            return Err(format!(
                "PUBLISH topic contains {c:?}, which a published topic may not"
            ));
        }
    }
    Ok(Some(packet))
}

/// Appends `packet` to `buf`, or says why it cannot be sent and leaves `buf` as it was.
///
/// The codec writes a string's length into two bytes without checking it, so a string longer
/// than `MQTT_STRING_MAX` bytes would go out as a malformed packet; those are refused here, as
/// are packets larger than `max_size` (and whatever else the codec refuses, after it may have
/// written part of the packet).
pub fn write_packet(packet: &Packet, buf: &mut BytesMut, max_size: usize) -> Result<(), String> {
    if let Some((field, len)) = long_string(packet) {
        return Err(format!(
            "its {field} is {len} bytes long, more than the {MQTT_STRING_MAX} bytes an MQTT \
             string can hold"
        ));
    }
    let start = buf.len();
    packet.write(buf, max_size).map(drop).map_err(|e| {
        buf.truncate(start);
        e.to_string()
    })
}

/// The first string field of an outgoing packet that does not fit its length field.
fn long_string(packet: &Packet) -> Option<(&'static str, usize)> {
    let fields: Vec<(&'static str, usize)> = match packet {
        Packet::Connect(c) => {
            let mut f = vec![("client id", c.client_id.len())];
            if let Some(l) = &c.login {
                f.extend([
                    ("user name", l.username.len()),
                    ("password", l.password.len()),
                ]);
            }
            if let Some(w) = &c.last_will {
                f.extend([
                    ("will topic", w.topic.len()),
                    ("will message", w.message.len()),
                ]);
            }
            f
        }
        Packet::Publish(p) => vec![("topic", p.topic.len())],
        Packet::Subscribe(s) => s
            .filters
            .iter()
            .map(|f| ("topic filter", f.path.len()))
            .collect(),
        Packet::Unsubscribe(u) => u.topics.iter().map(|t| ("topic filter", t.len())).collect(),
        _ => Vec::new(),
    };
    fields.into_iter().find(|&(_, len)| len > MQTT_STRING_MAX)
}

/// The checks of [`read_packet`] on one whole frame (fixed header included).
fn check_frame(frame: &[u8]) -> Result<(), String> {
    let Some(&first) = frame.first() else {
        return Err("empty packet".into());
    };
    let (kind, flags) = (first >> 4, first & 0x0F);
    // The body starts after the remaining-length bytes (the last has its top bit clear).
    let body_at = frame
        .iter()
        .skip(1)
        .position(|b| b & 0x80 == 0)
        .map_or(frame.len(), |i| i + 2);
    let body = frame.get(body_at..).unwrap_or(&[]);
    let pkid = || body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let name = match kind {
        2 => "CONNACK",
        4 => "PUBACK",
        5 => "PUBREC",
        6 => "PUBREL",
        7 => "PUBCOMP",
        9 => "SUBACK",
        11 => "UNSUBACK",
        13 => "PINGRESP",
        _ => "",
    };
    let want_flags = if kind == 6 { 0b0010 } else { 0 };
    if kind == 3 {
        if flags & 0b1000 != 0 && flags & 0b0110 == 0 {
            return Err("PUBLISH with DUP set at QoS 0".into());
        }
        return Ok(());
    }
    if name.is_empty() {
        return Ok(());
    }
    if flags != want_flags {
        return Err(format!(
            "{name} with reserved header flags {flags:#06b} (must be {want_flags:#06b})"
        ));
    }
    let want_len = match kind {
        2 | 4 | 5 | 6 | 7 | 11 => Some(2),
        13 => Some(0),
        _ => None,
    };
    if let Some(want) = want_len {
        if body.len() != want {
            return Err(format!(
                "{name} with a remaining length of {} (must be {want})",
                body.len()
            ));
        }
    }
    match kind {
        2 if body[0] & 0xFE != 0 => Err(format!(
            "CONNACK with reserved acknowledge flags {:#04x}",
            body[0]
        )),
        4..=7 | 9 | 11 if pkid() == Some(0) => Err(format!("{name} with packet id 0")),
        _ => Ok(()),
    }
}

/// One line about a packet for the Full Debug trace: type, packet id, topic, payload size and
/// flags. CONNECT shows whether a password is set, never the password.
pub fn describe(p: &Packet) -> String {
    let name = packet_name(p);
    match p {
        Packet::Connect(c) => {
            format!(
            "{name} client_id='{}' clean_session={} keep_alive={} user_name={} password={} will={}",
            c.client_id,
            c.clean_session,
            c.keep_alive,
            c.login.as_ref().map_or("-", |l| l.username.as_str()),
            if c.login.as_ref().is_some_and(|l| !l.password.is_empty()) { "set" } else { "-" },
            c.last_will.as_ref().map_or("-", |w| w.topic.as_str()),
        )
        }
        Packet::ConnAck(a) => format!(
            "{name} code={:?} session_present={}",
            a.code, a.session_present
        ),
        Packet::Publish(p) => format!(
            "{name} pkid={} topic='{}' payload={} bytes qos={} dup={} retain={}",
            p.pkid,
            crate::payload::escape(&p.topic),
            p.payload.len(),
            p.qos as u8,
            p.dup,
            p.retain
        ),
        Packet::PubAck(a) => format!("{name} pkid={}", a.pkid),
        Packet::PubRec(a) => format!("{name} pkid={}", a.pkid),
        Packet::PubRel(a) => format!("{name} pkid={}", a.pkid),
        Packet::PubComp(a) => format!("{name} pkid={}", a.pkid),
        Packet::Subscribe(s) => format!(
            "{name} pkid={} filter='{}' qos={}",
            s.pkid,
            s.filters.first().map_or("", |f| f.path.as_str()),
            s.filters.first().map_or(0, |f| f.qos as u8)
        ),
        Packet::SubAck(a) => format!("{name} pkid={} codes={:?}", a.pkid, a.return_codes),
        Packet::Unsubscribe(u) => format!("{name} pkid={} filters={:?}", u.pkid, u.topics),
        Packet::UnsubAck(a) => format!("{name} pkid={}", a.pkid),
        Packet::PingReq | Packet::PingResp | Packet::Disconnect => name.to_string(),
    }
}

/// The packet type's name, for traces and messages.
pub fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codec writes a string's length in two bytes without checking it: every string of an
    /// outgoing packet longer than that is refused, and the buffer is left as it was.
    #[test]
    fn write_packet_refuses_strings_longer_than_their_length_field() {
        let long = "a".repeat(MQTT_STRING_MAX + 1);
        let connect = |f: &dyn Fn(&mut Connect)| {
            let mut c = Connect::new("id");
            f(&mut c);
            Packet::Connect(c)
        };
        let cases: Vec<(Packet, &str)> = vec![
            (Packet::Connect(Connect::new(long.clone())), "client id"),
            (
                connect(&|c| c.login = Some(Login::new(long.clone(), "p"))),
                "user name",
            ),
            (
                connect(&|c| c.login = Some(Login::new("u", long.clone()))),
                "password",
            ),
            (
                connect(&|c| {
                    c.last_will = Some(LastWill::new(long.clone(), "m", QoS::AtMostOnce, false))
                }),
                "will topic",
            ),
            (
                connect(&|c| {
                    c.last_will = Some(LastWill::new("t", long.clone(), QoS::AtMostOnce, false))
                }),
                "will message",
            ),
            (
                Packet::Publish(Publish::new(long.clone(), QoS::AtMostOnce, "v")),
                "topic",
            ),
            (
                Packet::Subscribe(Subscribe::new(long.clone(), QoS::AtLeastOnce)),
                "topic filter",
            ),
            (
                Packet::Unsubscribe(Unsubscribe::new(long.clone())),
                "topic filter",
            ),
        ];
        for (packet, field) in cases {
            let mut buf = BytesMut::from(&b"before"[..]);
            let err = write_packet(&packet, &mut buf, usize::MAX).unwrap_err();
            assert!(
                err.contains(field) && err.contains("65536 bytes"),
                "{field}: {err}"
            );
            assert_eq!(&buf[..], b"before", "{field}");
        }
        // Too large for `max_size`: refused, nothing written.
        let mut buf = BytesMut::new();
        let big = Packet::Publish(Publish::new("t", QoS::AtMostOnce, vec![0u8; 100]));
        assert!(write_packet(&big, &mut buf, 50).is_err());
        assert!(buf.is_empty());
        // At the limit it is written.
        let ok = Packet::Publish(Publish::new(&long[1..], QoS::AtMostOnce, "v"));
        assert!(write_packet(&ok, &mut buf, usize::MAX).is_ok());
    }

    fn read_hex(hex: &str) -> Result<Option<Packet>, String> {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut buf = BytesMut::from(&bytes[..]);
        read_packet(&mut buf, 1024)
    }

    #[test]
    fn read_packet_refuses_what_the_codec_lets_through() {
        // Well-formed ones pass.
        assert_eq!(
            read_hex("20020000"),
            Ok(Some(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::Success,
                false
            ))))
        );
        assert_eq!(
            read_hex("40020001"),
            Ok(Some(Packet::PubAck(PubAck::new(1))))
        );
        assert_eq!(
            read_hex("62020001"),
            Ok(Some(Packet::PubRel(PubRel::new(1))))
        );
        assert_eq!(read_hex("D000"), Ok(Some(Packet::PingResp)));
        assert_eq!(read_hex("4002"), Ok(None), "incomplete");
        for bad in [
            "41020001",     // reserved header flags
            "60020001",     // PUBREL without its 0010 flags
            "4003000100",   // an acknowledgement of 3 bytes
            "40020000",     // packet id 0
            "B0020000",     // packet id 0
            "20020200",     // reserved CONNACK flag bit
            "D00100",       // PINGRESP with a body
            "38040001747a", // DUP at QoS 0
            "3003000123",   // topic "#"
            "3003000100",   // topic U+0000
            "300200007878", // empty topic
        ] {
            assert!(read_hex(bad).is_err(), "{bad} must be refused");
        }
        let err = read_hex("30FFFFFF7F").unwrap_err();
        assert!(err.contains("larger than the limit"), "{err}");
    }
}
