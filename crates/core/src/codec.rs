//! MQTT packets on the wire, 3.1.1 and 5: reading them with the checks the codec leaves out,
//! writing them, and describing them for traces and messages.
//!
//! The session works with rumqttc's MQTT 5 packet types for both versions (5 is a superset of
//! 3.1.1: properties and reason codes added). On a 3.1.1 connection, packets are read and written
//! by the v4 codec and converted (`v4.rs`), so that the 3.1.1 wire is exactly what it was. The
//! packet types themselves are in `packet.rs`.

/// The packet types, through this module as before they had a file of their own (packet.rs).
pub use crate::packet::{
    conn_ack, packet_name, sub_ack, ConnAck, ConnAckProperties, Connect, ConnectProperties,
    ConnectReturnCode, Disconnect, DisconnectProperties, DisconnectReasonCode, Filter, LastWill,
    Login, Packet, PingReq, PingResp, Protocol, PubAck, PubAckReason, PubComp, PubRec,
    PubRecReason, PubRel, Publish, PublishProperties, QoS, RetainForwardRule, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck, UnsubAckReason, Unsubscribe,
};
use crate::params::MQTT_STRING_MAX;
use crate::v4;
use bytes::{Bytes, BytesMut};

/// Reads the next whole packet from `buf` (taking its bytes), `Ok(None)` while it is incomplete
/// (after reserving room for the rest).
///
/// The codec is lenient; on top of it this enforces what MQTT requires of a packet a server sends
/// to a client, so that a malformed one closes the connection instead of being half-understood:
/// the fixed header's reserved flag bits (MQTT-2.2.2-1, MQTT-3.6.1-1), the exact length of 3.1.1
/// acknowledgements, non-zero packet ids (MQTT-2.3.1-1), CONNACK's reserved flag bits
/// (MQTT-3.2.2-1), DUP only with QoS 1 or 2 (MQTT-3.3.1-2), and a PUBLISH topic that has no
/// wildcard or U+0000 (MQTT-3.3.2-1, MQTT-3.3.2-2, MQTT-1.5.3-2) and is not empty (on 3.1.1; on 5
/// an empty topic comes with a Topic Alias, which the session checks). MQTT 5 property sections
/// are checked by `v5_frame.rs`. A packet type only a client sends is left to
/// [`Session::handle`](crate::session::Session::handle), which refuses it.
pub fn read_packet(
    buf: &mut BytesMut,
    max_size: usize,
    protocol: Protocol,
) -> Result<Option<Packet>, String> {
    let Some(len) = frame(buf, max_size, protocol)? else {
        return Ok(None);
    };
    read_framed(buf, len, max_size, protocol).map(Some)
}

/// The length of the whole packet at the front of `buf` once it passed the frame checks of
/// [`read_packet`]; `Ok(None)` while it is incomplete (after reserving room for the rest). The
/// caller takes the packet with [`read_framed`], or a PUBLISH (first byte 0x3_) with
/// [`read_publish`], which the receive path calls itself so that a message is not moved through
/// the much larger `Packet`.
pub(crate) fn frame(
    buf: &mut BytesMut,
    max_size: usize,
    protocol: Protocol,
) -> Result<Option<usize>, String> {
    let len = match protocol {
        Protocol::V311 => {
            use rumqttc::mqttbytes::Error as CodecError;
            match rumqttc::mqttbytes::check(buf.iter(), max_size) {
                Ok(h) => h.frame_length(),
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
            }
        }
        Protocol::V5 => {
            use rumqttc::v5::mqttbytes::Error as CodecError;
            let limit = u32::try_from(max_size).unwrap_or(u32::MAX);
            match rumqttc::v5::mqttbytes::v5::check(buf.iter(), Some(limit)) {
                Ok(h) => h.frame_length(),
                Err(CodecError::InsufficientBytes(needed)) => {
                    buf.reserve(needed);
                    return Ok(None);
                }
                Err(CodecError::PayloadSizeLimitExceeded { pkt_size, .. }) => {
                    return Err(format!(
                        "a packet of {pkt_size} bytes is larger than the limit of {max_size} \
                         bytes"
                    ))
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    check_frame(&buf[..len], protocol)?;
    Ok(Some(len))
}

/// Takes the packet of `len` bytes that [`frame`] found at the front of `buf`. A PUBLISH is
/// read by [`read_publish`]; on 3.1.1 any other packet by the v4 codec and converted (v4.rs).
pub(crate) fn read_framed(
    buf: &mut BytesMut,
    len: usize,
    max_size: usize,
    protocol: Protocol,
) -> Result<Packet, String> {
    if buf[0] >> 4 == 3 {
        return read_publish(buf.split_to(len).freeze(), protocol).map(Packet::Publish);
    }
    if protocol == Protocol::V311 {
        let packet =
            rumqttc::mqttbytes::v4::Packet::read(buf, max_size).map_err(|e| e.to_string())?;
        return Ok(v4::into_v5(packet));
    }
    if len == 2 && buf[0] == 0xE0 {
        // DISCONNECT without a body (normal disconnection), which the codec refuses.
        let _ = buf.split_to(2);
        return Ok(Packet::Disconnect(Disconnect::new(
            DisconnectReasonCode::NormalDisconnection,
        )));
    }
    if buf[0] == 0xB0 {
        return Ok(Packet::UnsubAck(read_unsuback(&buf.split_to(len))));
    }
    let limit = u32::try_from(max_size).unwrap_or(u32::MAX);
    let packet = Packet::read(buf, Some(limit)).map_err(|e| e.to_string())?;
    if let Packet::Publish(p) = &packet {
        check_topic(&p.topic, true)?;
    }
    Ok(packet)
}

/// A PUBLISH that `check_frame` passed, read as rumqttc's codecs read it (same checks, same error
/// words) but straight into the session's type with its topic a slice of the frame: the v4 codec
/// copies every topic into a `String`, and the v5 codec parses the fixed header a second time.
/// This is the receive path's hot spot: one message, no allocation beyond the frame (and the
/// properties, on MQTT 5, when there are any).
pub(crate) fn read_publish(frame: Bytes, protocol: Protocol) -> Result<Publish, String> {
    let shape = PublishShape::read(&frame, protocol)?;
    shape.publish(frame)
}

/// Where the parts of a PUBLISH frame lie, once it passed [`read_publish`]'s checks: what a
/// redundant line needs to recognise a copy without taking the frame out of the read buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishShape {
    first: u8,
    pub(crate) qos: QoS,
    pub(crate) pkid: u16,
    topic: (usize, usize),
    /// Where the properties (MQTT 5) or the payload (3.1.1) begin.
    rest: usize,
    protocol: Protocol,
}

impl PublishShape {
    #[inline(always)]
    pub(crate) fn read(frame: &[u8], protocol: Protocol) -> Result<PublishShape, String> {
        use rumqttc::mqttbytes::Error as E;
        let first = frame[0];
        let qos = match (first >> 1) & 0b11 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            q => return Err(E::InvalidQoS(q).to_string()),
        };
        let mut at = fixed_header_len(frame);
        let field = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| E::MalformedPacket.to_string())
        };
        let topic_len = usize::from(field(at)?);
        at += 2;
        if topic_len > frame.len() - at {
            return Err(E::BoundaryCrossed(topic_len).to_string());
        }
        let topic = (at, at + topic_len);
        at += topic_len;
        // One look at each byte for both checks below; the full UTF-8 check only for a topic
        // that is not plain ASCII.
        let bytes = topic_bytes(&frame[topic.0..topic.1]);
        if bytes & NOT_ASCII != 0 && std::str::from_utf8(&frame[topic.0..topic.1]).is_err() {
            return Err(E::TopicNotUtf8.to_string());
        }
        let mut pkid = 0;
        if qos != QoS::AtMostOnce {
            pkid = field(at)?;
            at += 2;
            if pkid == 0 {
                return Err(E::PacketIdZero.to_string());
            }
        }
        // On MQTT 5 an empty topic stands for a Topic Alias, which the session resolves.
        if bytes & WILDCARD_OR_NUL != 0 || topic_len == 0 {
            check_topic(&frame[topic.0..topic.1], protocol == Protocol::V5)?;
        }
        Ok(PublishShape {
            first,
            qos,
            pkid,
            topic,
            rest: at,
            protocol,
        })
    }

    /// The topic, checked as UTF-8 by [`PublishShape::read`].
    pub(crate) fn topic<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[self.topic.0..self.topic.1]
    }

    /// The payload of a 3.1.1 frame (on MQTT 5 the properties come first).
    pub(crate) fn payload_v311<'f>(&self, frame: &'f [u8]) -> Option<&'f [u8]> {
        (self.protocol == Protocol::V311).then(|| &frame[self.rest..])
    }

    /// The message of `frame`, the frame this shape was read from.
    #[inline(always)]
    pub(crate) fn publish(self, frame: Bytes) -> Result<Publish, String> {
        let topic = frame.slice(self.topic.0..self.topic.1);
        // The frame becomes the payload: one reference to the read buffer fewer to count.
        let mut payload = frame;
        bytes::Buf::advance(&mut payload, self.rest);
        let properties = match self.protocol {
            Protocol::V311 => None,
            Protocol::V5 => PublishProperties::read(&mut payload).map_err(|e| e.to_string())?,
        };
        Ok(Publish {
            dup: self.first & 0b1000 != 0,
            qos: self.qos,
            retain: self.first & 0b0001 != 0,
            topic,
            pkid: self.pkid,
            payload,
            properties,
        })
    }
}

/// An MQTT 5 UNSUBACK that `check_frame` passed, read leniently: the codec refuses reason codes
/// it does not know, which here would close the connection over what can only be a warning. An
/// unknown code counts as 0x80 Unspecified error; the properties are not kept.
fn read_unsuback(frame: &[u8]) -> UnsubAck {
    let body = frame_body(frame);
    let pkid = body
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let (props_len, len_size) =
        crate::v5_frame::property_length(body.get(2..).unwrap_or(&[])).unwrap_or((0, 1));
    let codes = body.get(2 + len_size + props_len..).unwrap_or(&[]);
    UnsubAck {
        pkid,
        reasons: codes
            .iter()
            .map(|&c| match c {
                0x00 => UnsubAckReason::Success,
                0x11 => UnsubAckReason::NoSubscriptionExisted,
                0x83 => UnsubAckReason::ImplementationSpecificError,
                0x87 => UnsubAckReason::NotAuthorized,
                0x8F => UnsubAckReason::TopicFilterInvalid,
                0x91 => UnsubAckReason::PacketIdentifierInUse,
                _ => UnsubAckReason::UnspecifiedError,
            })
            .collect(),
        properties: None,
    }
}

/// The classes of the bytes of a topic ([`topic_bytes`]).
const NOT_ASCII: u8 = 1;
const WILDCARD_OR_NUL: u8 = 2;

/// Each byte's class: `+`, `#` and U+0000 may not be in a published topic (MQTT-3.3.2-2,
/// MQTT-1.5.3-2); a byte above 0x7F needs the full UTF-8 check (MQTT-1.5.3-1).
const TOPIC_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0x80;
    while c < 256 {
        table[c] = NOT_ASCII;
        c += 1;
    }
    table[b'+' as usize] = WILDCARD_OR_NUL;
    table[b'#' as usize] = WILDCARD_OR_NUL;
    table[0] = WILDCARD_OR_NUL;
    table
};

/// The classes found among the bytes of `topic`, or-ed together.
#[inline]
fn topic_bytes(topic: &[u8]) -> u8 {
    topic
        .iter()
        .fold(0, |classes, &c| classes | TOPIC_BYTE[usize::from(c)])
}

/// A received PUBLISH topic: no wildcard or U+0000; empty only where a Topic Alias may stand in.
pub(crate) fn check_topic(topic: &[u8], may_be_empty: bool) -> Result<(), String> {
    if topic.is_empty() && !may_be_empty {
        return Err("PUBLISH with an empty topic".into());
    }
    if let Some(c) = topic.iter().find(|c| matches!(c, b'+' | b'#' | b'\0')) {
        return Err(format!(
            "PUBLISH topic contains {:?}, which a published topic may not",
            char::from(*c)
        ));
    }
    Ok(())
}

/// Appends `packet` to `buf`, or says why it cannot be sent and leaves `buf` as it was.
///
/// The codec writes a string's length into two bytes without checking it, so a string longer
/// than `MQTT_STRING_MAX` bytes would go out as a malformed packet; those are refused here, as
/// are packets larger than `max_size` (and whatever else the codec refuses, after it may have
/// written part of the packet).
pub fn write_packet(
    packet: &Packet,
    buf: &mut BytesMut,
    max_size: usize,
    protocol: Protocol,
) -> Result<(), String> {
    if let Some(bytes) = plain_puback(packet, protocol) {
        buf.extend_from_slice(&bytes);
        return Ok(());
    }
    if let Some((field, len)) = long_string(packet) {
        return Err(format!(
            "its {field} is {len} bytes long, more than the {MQTT_STRING_MAX} bytes an MQTT \
             string can hold"
        ));
    }
    if protocol == Protocol::V311 {
        return v4::write_packet(packet, buf, max_size);
    }
    let start = buf.len();
    let limit = u32::try_from(max_size).unwrap_or(u32::MAX);
    packet.write(buf, Some(limit)).map(drop).map_err(|e| {
        buf.truncate(start);
        match e {
            rumqttc::v5::mqttbytes::Error::OutgoingPacketTooLarge { pkt_size, max } => {
                format!("the packet of {pkt_size} bytes is larger than the {max} bytes allowed")
            }
            e => e.to_string(),
        }
    })
}

/// The four bytes of a PUBACK without a reason (3.1.1 has none; MQTT 5 leaves out a success
/// without properties), the packet of every QoS 1 message: written directly, as the codec's
/// general path cost some 850 instructions for them.
pub(crate) fn plain_puback(packet: &Packet, protocol: Protocol) -> Option<[u8; 4]> {
    let Packet::PubAck(ack) = packet else {
        return None;
    };
    let plain = protocol == Protocol::V311
        || (ack.reason == PubAckReason::Success && ack.properties.is_none());
    let [high, low] = ack.pkid.to_be_bytes();
    plain.then_some([0x40, 0x02, high, low])
}

/// The first string field of an outgoing packet that does not fit its length field.
fn long_string(packet: &Packet) -> Option<(&'static str, usize)> {
    let pairs = |v: &Vec<(String, String)>| -> Vec<(&'static str, usize)> {
        v.iter()
            .flat_map(|(k, val)| {
                [
                    ("user property name", k.len()),
                    ("user property value", val.len()),
                ]
            })
            .collect()
    };
    let fields: Vec<(&'static str, usize)> = match packet {
        Packet::Connect(c, will, login) => {
            let mut f = vec![("client id", c.client_id.len())];
            if let Some(l) = login {
                f.extend([
                    ("user name", l.username.len()),
                    ("password", l.password.len()),
                ]);
            }
            if let Some(w) = will {
                f.extend([
                    ("will topic", w.topic.len()),
                    ("will message", w.message.len()),
                ]);
            }
            if let Some(p) = &c.properties {
                f.extend(pairs(&p.user_properties));
            }
            f
        }
        Packet::Publish(p) => {
            let mut f = vec![("topic", p.topic.len())];
            if let Some(pr) = &p.properties {
                f.extend(pairs(&pr.user_properties));
                f.push((
                    "content type",
                    pr.content_type.as_ref().map_or(0, String::len),
                ));
                f.push((
                    "response topic",
                    pr.response_topic.as_ref().map_or(0, String::len),
                ));
                f.push((
                    "correlation data",
                    pr.correlation_data.as_ref().map_or(0, |d| d.len()),
                ));
            }
            f
        }
        Packet::Subscribe(s) => s
            .filters
            .iter()
            .map(|f| ("topic filter", f.path.len()))
            .collect(),
        Packet::Unsubscribe(u) => u
            .filters
            .iter()
            .map(|t| ("topic filter", t.len()))
            .collect(),
        _ => Vec::new(),
    };
    fields.into_iter().find(|&(_, len)| len > MQTT_STRING_MAX)
}

/// What follows the fixed header of a whole frame: the body starts after the remaining-length
/// bytes, the last of which has its top bit clear.
fn frame_body(frame: &[u8]) -> &[u8] {
    frame.get(fixed_header_len(frame)..).unwrap_or(&[])
}

/// How many bytes the fixed header of a whole frame takes (its length when it has no end).
pub(crate) fn fixed_header_len(frame: &[u8]) -> usize {
    frame
        .iter()
        .skip(1)
        .position(|b| b & 0x80 == 0)
        .map_or(frame.len(), |i| i + 2)
}

/// The checks of [`read_packet`] on one whole frame (fixed header included).
pub(crate) fn check_frame(frame: &[u8], protocol: Protocol) -> Result<(), String> {
    let Some(&first) = frame.first() else {
        return Err("empty packet".into());
    };
    let (kind, flags) = (first >> 4, first & 0x0F);
    let body = frame_body(frame);
    let pkid = || body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let v5 = protocol == Protocol::V5;
    let name = match kind {
        2 => "CONNACK",
        4 => "PUBACK",
        5 => "PUBREC",
        6 => "PUBREL",
        7 => "PUBCOMP",
        9 => "SUBACK",
        11 => "UNSUBACK",
        13 => "PINGRESP",
        14 if v5 => "DISCONNECT",
        15 if v5 => "AUTH",
        _ => "",
    };
    let want_flags = if kind == 6 { 0b0010 } else { 0 };
    if kind == 3 {
        if flags & 0b1000 != 0 && flags & 0b0110 == 0 {
            return Err("PUBLISH with DUP set at QoS 0".into());
        }
        if flags & 0b0110 == 0b0110 {
            return Err("PUBLISH with QoS 3".into());
        }
        if v5 {
            return crate::v5_frame::check_body(kind, (flags >> 1) & 0b11, "PUBLISH", body);
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
        2 | 4 | 5 | 6 | 7 | 11 if !v5 => Some(2),
        4..=7 => (body.len() < 2).then_some(2),
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
        2 if body.first().is_some_and(|f| f & 0xFE != 0) => Err(format!(
            "CONNACK with reserved acknowledge flags {:#04x}",
            body[0]
        )),
        4..=7 | 9 | 11 if pkid() == Some(0) => Err(format!("{name} with packet id 0")),
        _ if v5 => crate::v5_frame::check_body(kind, 0, name, body),
        _ => Ok(()),
    }
}

/// One line about a packet for the Full Debug trace: type, packet id, topic, payload size,
/// flags, reason codes and properties. CONNECT shows whether a password is set, never the
/// password.
pub fn describe(p: &Packet) -> String {
    use crate::reason::Code;
    let name = packet_name(p);
    match p {
        Packet::Connect(c, will, login) => format!(
            "{name} client_id='{}' clean_session={} keep_alive={} user_name={} password={} \
             will={}{}",
            crate::text::escape(&c.client_id),
            c.clean_start,
            c.keep_alive,
            login
                .as_ref()
                .map_or("-".into(), |l| crate::text::escape(&l.username)),
            if login.as_ref().is_some_and(|l| !l.password.is_empty()) {
                "set"
            } else {
                "-"
            },
            will.as_ref()
                .map_or("-".into(), |w| crate::text::escape_bytes(&w.topic)),
            c.properties.as_ref().map_or(String::new(), |p| format!(
                " properties={}",
                crate::text::escape(&format!("{p:?}"))
            )),
        ),
        Packet::ConnAck(a) => format!(
            "{name} code={:#04x} session_present={}{}",
            a.code.code(),
            a.session_present,
            a.properties.as_ref().map_or(String::new(), |p| format!(
                " properties={}",
                crate::text::escape(&format!("{p:?}"))
            )),
        ),
        Packet::Publish(p) => format!(
            "{name} pkid={} topic='{}' payload={} bytes qos={} dup={} retain={}{}",
            p.pkid,
            crate::text::escape_bytes(&p.topic),
            p.payload.len(),
            p.qos as u8,
            p.dup,
            p.retain,
            p.properties.as_ref().map_or(String::new(), |p| format!(
                " properties={}",
                crate::text::escape(&format!("{p:?}"))
            )),
        ),
        Packet::PubAck(a) => format!("{name} pkid={} code={:#04x}", a.pkid, a.reason.code()),
        Packet::PubRec(a) => format!("{name} pkid={} code={:#04x}", a.pkid, a.reason.code()),
        Packet::PubRel(a) => format!("{name} pkid={}", a.pkid),
        Packet::PubComp(a) => format!("{name} pkid={} code={:#04x}", a.pkid, a.reason.code()),
        Packet::Subscribe(s) => format!(
            "{name} pkid={} filter='{}' qos={}",
            s.pkid,
            s.filters
                .first()
                .map_or("".into(), |f| crate::text::escape(&f.path)),
            s.filters.first().map_or(0, |f| f.qos as u8)
        ),
        Packet::SubAck(a) => format!(
            "{name} pkid={} codes={:?}",
            a.pkid,
            a.return_codes.iter().map(|c| c.code()).collect::<Vec<_>>()
        ),
        Packet::Unsubscribe(u) => format!("{name} pkid={} filters={:?}", u.pkid, u.filters),
        Packet::UnsubAck(a) => format!("{name} pkid={}", a.pkid),
        Packet::Disconnect(d) => format!(
            "{name} code={:#04x}{}",
            d.reason_code.code(),
            d.properties.as_ref().map_or(String::new(), |p| format!(
                " properties={}",
                crate::text::escape(&format!("{p:?}"))
            )),
        ),
        Packet::PingReq(_) | Packet::PingResp(_) | Packet::Auth(_) => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct PUBACK is byte for byte what the codec writes (both protocols, several packet
    /// ids and reasons); a PUBACK with a reason or properties still takes the codec.
    #[test]
    fn a_plain_puback_is_written_as_the_codec_writes_it() {
        for protocol in [Protocol::V311, Protocol::V5] {
            for pkid in [1u16, 2, 255, 256, 0x1234, u16::MAX] {
                for reason in [PubAckReason::Success, PubAckReason::PayloadFormatInvalid] {
                    let mut ack = PubAck::new(pkid, None);
                    ack.reason = reason;
                    let packet = Packet::PubAck(ack);
                    let mut direct = BytesMut::new();
                    write_packet(&packet, &mut direct, 1 << 20, protocol).unwrap();
                    let mut general = BytesMut::new();
                    match protocol {
                        Protocol::V311 => v4::write_packet(&packet, &mut general, 1 << 20).unwrap(),
                        Protocol::V5 => {
                            packet.write(&mut general, None).unwrap();
                        }
                    }
                    assert_eq!(direct, general, "{protocol:?} {pkid} {reason:?}");
                    let took_the_codec = plain_puback(&packet, protocol).is_none();
                    assert_eq!(
                        took_the_codec,
                        protocol == Protocol::V5 && reason != PubAckReason::Success,
                        "{protocol:?} {reason:?}"
                    );
                }
            }
        }
    }

    /// The codec writes a string's length in two bytes without checking it: every string of an
    /// outgoing packet longer than that is refused, and the buffer is left as it was.
    #[test]
    fn write_packet_refuses_strings_longer_than_their_length_field() {
        let long = "a".repeat(MQTT_STRING_MAX + 1);
        let connect = |id: &str, login: Option<Login>, will: Option<LastWill>| {
            let c = Connect {
                keep_alive: 0,
                client_id: id.into(),
                clean_start: true,
                properties: None,
            };
            Packet::Connect(c, will, login)
        };
        let with_props = |f: &dyn Fn(&mut PublishProperties)| {
            let mut p = PublishProperties::default();
            f(&mut p);
            Packet::Publish(Publish::new("t", QoS::AtMostOnce, "v", Some(p)))
        };
        let cases: Vec<(Packet, &str)> = vec![
            (connect(&long, None, None), "client id"),
            (
                connect("id", Some(Login::new(long.clone(), "p")), None),
                "user name",
            ),
            (
                connect("id", Some(Login::new("u", long.clone())), None),
                "password",
            ),
            (
                connect(
                    "id",
                    None,
                    Some(LastWill::new(
                        long.clone(),
                        "m",
                        QoS::AtMostOnce,
                        false,
                        None,
                    )),
                ),
                "will topic",
            ),
            (
                connect(
                    "id",
                    None,
                    Some(LastWill::new(
                        "t",
                        long.clone(),
                        QoS::AtMostOnce,
                        false,
                        None,
                    )),
                ),
                "will message",
            ),
            (
                Packet::Publish(Publish::new(long.clone(), QoS::AtMostOnce, "v", None)),
                "topic",
            ),
            (
                with_props(&|p| p.user_properties = vec![("k".into(), long.clone())]),
                "user property value",
            ),
            (
                with_props(&|p| p.content_type = Some(long.clone())),
                "content type",
            ),
            (
                Packet::Subscribe(Subscribe::new(
                    Filter::new(long.clone(), QoS::AtLeastOnce),
                    None,
                )),
                "topic filter",
            ),
            (
                Packet::Unsubscribe(Unsubscribe::new(long.clone(), None)),
                "topic filter",
            ),
        ];
        for protocol in [Protocol::V311, Protocol::V5] {
            for (packet, field) in &cases {
                let mut buf = BytesMut::from(&b"before"[..]);
                let err = write_packet(packet, &mut buf, usize::MAX, protocol).unwrap_err();
                assert!(
                    err.contains(field) && err.contains("65536 bytes"),
                    "{field}: {err}"
                );
                assert_eq!(&buf[..], b"before", "{field}");
            }
            // Too large for `max_size`: refused, nothing written.
            let mut buf = BytesMut::new();
            let big = Packet::Publish(Publish::new("t", QoS::AtMostOnce, vec![0u8; 100], None));
            assert!(write_packet(&big, &mut buf, 50, protocol).is_err());
            assert!(buf.is_empty());
            // At the limit it is written.
            let ok = Packet::Publish(Publish::new(&long[1..], QoS::AtMostOnce, "v", None));
            assert!(write_packet(&ok, &mut buf, usize::MAX, protocol).is_ok());
        }
    }

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn published_topics_are_checked_in_one_look_at_each_byte() {
        // (topic bytes, the error's words, or None when the topic is taken)
        let rows: &[(&[u8], Option<&str>)] = &[
            (b"plant/line1/temp", None),
            ("plant/\u{e9}t\u{e9}".as_bytes(), None),
            (b"plant/+/temp", Some("'+'")),
            (b"plant/#", Some("'#'")),
            (b"plant/\0", Some("'\\0'")),
            (b"plant/\xff", Some("not utf-8")),
            // Both wrong: the UTF-8 error comes first, as from the codec.
            (b"+/\xff", Some("not utf-8")),
            (b"", Some("empty topic")),
        ];
        for &(topic, want) in rows {
            let mut frame = vec![0x30, (2 + topic.len() + 1) as u8, 0, topic.len() as u8];
            frame.extend_from_slice(topic);
            frame.push(b'v');
            let got = read_publish(Bytes::from(frame), Protocol::V311);
            match want {
                None => assert_eq!(&got.unwrap().topic[..], topic),
                Some(words) => {
                    let e = got.unwrap_err();
                    assert!(e.to_lowercase().contains(words), "{topic:?}: {e}");
                }
            }
        }
    }

    fn read_hex(hex: &str) -> Result<Option<Packet>, String> {
        read_as(hex, Protocol::V311)
    }

    fn read_as(hex: &str, protocol: Protocol) -> Result<Option<Packet>, String> {
        let mut buf = BytesMut::from(&bytes(hex)[..]);
        read_packet(&mut buf, 1024, protocol)
    }

    #[test]
    fn read_packet_refuses_what_the_codec_lets_through() {
        // Well-formed ones pass.
        assert_eq!(
            read_hex("20020000"),
            Ok(Some(Packet::ConnAck(conn_ack(
                ConnectReturnCode::Success,
                false
            ))))
        );
        assert_eq!(
            read_hex("40020001"),
            Ok(Some(Packet::PubAck(PubAck::new(1, None))))
        );
        assert_eq!(
            read_hex("62020001"),
            Ok(Some(Packet::PubRel(PubRel::new(1, None))))
        );
        assert_eq!(read_hex("D000"), Ok(Some(Packet::PingResp(PingResp))));
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
        // PUBLISH is read without the v4 codec, with its checks and words.
        assert_eq!(read_hex("30030001FF").unwrap_err(), "Topic is not UTF-8");
        assert_eq!(read_hex("32050001740000").unwrap_err(), "Packet id Zero");
        assert_eq!(read_hex("320300017A").unwrap_err(), "Malformed packet");
        let Ok(Some(Packet::Publish(p))) = read_hex("3B0700017400097879") else {
            panic!("PUBLISH")
        };
        assert_eq!(
            (&p.topic[..], p.pkid, &p.payload[..], p.qos, p.dup, p.retain),
            (&b"t"[..], 9, &b"xy"[..], QoS::AtLeastOnce, true, true)
        );
    }

    /// Properties from outside appear escaped in the Full Debug trace.
    #[test]
    fn describe_escapes_properties() {
        let mut p = Publish::new("t\u{1b}", QoS::AtMostOnce, "v", None);
        p.properties = Some(PublishProperties {
            user_properties: vec![("k".into(), "\u{1b}[31m\u{202e}".into())],
            ..PublishProperties::default()
        });
        let text = describe(&Packet::Publish(p));
        assert!(!text.contains(['\u{1b}', '\u{202e}']), "{text}");
        assert!(text.contains("user_properties"), "{text}");
    }

    /// MQTT 5 packets: reason codes and properties read; property sections that break the rules
    /// (unknown or misplaced ids, repeats, bad values, lengths that do not add up) refused.
    #[test]
    fn read_packet_v5_checks_properties() {
        let v5 = |hex| read_as(hex, Protocol::V5);
        // CONNACK 0x86 with a reason string "no".
        let Ok(Some(Packet::ConnAck(a))) = v5("20080086051F00026E6F") else {
            panic!("CONNACK")
        };
        assert_eq!(crate::reason::Code::code(&a.code), 0x86);
        assert_eq!(
            a.properties.and_then(|p| p.reason_string).as_deref(),
            Some("no")
        );
        // PUBACK 0x87 (Not authorized) without properties; a bare DISCONNECT.
        let Ok(Some(Packet::PubAck(a))) = v5("4003000187") else {
            panic!("PUBACK")
        };
        assert_eq!(a.reason, PubAckReason::NotAuthorized);
        assert!(matches!(v5("E000"), Ok(Some(Packet::Disconnect(_)))));
        // UNSUBACK is read leniently: no reason code, or one the codec does not know.
        let Ok(Some(Packet::UnsubAck(u))) = v5("B004000100FF") else {
            panic!("UNSUBACK")
        };
        assert_eq!(
            (u.pkid, &u.reasons[..]),
            (1, &[UnsubAckReason::UnspecifiedError][..])
        );
        assert!(matches!(v5("B003000100"), Ok(Some(Packet::UnsubAck(_)))));
        // PUBLISH "t" QoS 0 with a user property a=b and a topic alias 1.
        let Ok(Some(Packet::Publish(p))) = v5("30100001740A260001610001622300017878") else {
            panic!("PUBLISH")
        };
        let props = p.properties.unwrap();
        assert_eq!(props.user_properties, [("a".into(), "b".into())]);
        assert_eq!(props.topic_alias, Some(1));
        for (bad, why) in [
            ("300600017402FF00", "unknown property id"),
            ("3006000174021F00", "may not carry"),
            ("300A0001740623000123000278", "twice"),
            ("300700017403230000", "is 0"),
            ("3006000174010178", "runs past"),
            ("30080001740301020078", "must be 0 or 1"),
            ("3006000174050078", "beyond the end"),
            ("3008000174040300027878", "runs past"),
            ("20050000022100", "runs past"),
            ("2006000003210000", "is 0"),
            ("400500018700FF", "bytes after its properties"),
            ("9003000100", "without a reason code"),
        ] {
            let err = v5(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
