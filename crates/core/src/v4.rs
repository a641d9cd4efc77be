//! The MQTT 3.1.1 wire under the session's MQTT 5 packet types: packets are read and written by
//! rumqttc's v4 codec, exactly as before MQTT 5 was added, and converted to and from the v5 types
//! here. A 3.1.1 packet has no properties and no reason codes beyond CONNACK's and SUBACK's, so
//! the conversion loses nothing the 3.1.1 wire can carry.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::mqttbytes::QoS as V4QoS;

use crate::packet::{
    packet_name, ConnAck, Connect, ConnectReturnCode, Disconnect, DisconnectReasonCode, Packet,
    PingReq, PingResp, PubAck, PubComp, PubRec, PubRel, Publish, QoS, SubAck, Subscribe,
    SubscribeReasonCode, UnsubAck, Unsubscribe,
};

fn qos_v5(q: V4QoS) -> QoS {
    match q {
        V4QoS::AtMostOnce => QoS::AtMostOnce,
        V4QoS::AtLeastOnce => QoS::AtLeastOnce,
        V4QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos_v4(q: QoS) -> V4QoS {
    match q {
        QoS::AtMostOnce => V4QoS::AtMostOnce,
        QoS::AtLeastOnce => V4QoS::AtLeastOnce,
        QoS::ExactlyOnce => V4QoS::ExactlyOnce,
    }
}

/// A packet read from a 3.1.1 connection in the session's types.
pub(crate) fn into_v5(p: v4::Packet) -> Packet {
    match p {
        v4::Packet::ConnAck(a) => Packet::ConnAck(ConnAck {
            session_present: a.session_present,
            code: match a.code {
                v4::ConnectReturnCode::Success => ConnectReturnCode::Success,
                v4::ConnectReturnCode::RefusedProtocolVersion => {
                    ConnectReturnCode::RefusedProtocolVersion
                }
                v4::ConnectReturnCode::BadClientId => ConnectReturnCode::BadClientId,
                v4::ConnectReturnCode::ServiceUnavailable => ConnectReturnCode::ServiceUnavailable,
                v4::ConnectReturnCode::BadUserNamePassword => {
                    ConnectReturnCode::BadUserNamePassword
                }
                v4::ConnectReturnCode::NotAuthorized => ConnectReturnCode::NotAuthorized,
            },
            properties: None,
        }),
        v4::Packet::Publish(p) => Packet::Publish(Publish {
            dup: p.dup,
            qos: qos_v5(p.qos),
            retain: p.retain,
            topic: Bytes::from(p.topic),
            pkid: p.pkid,
            payload: p.payload,
            properties: None,
        }),
        v4::Packet::PubAck(a) => Packet::PubAck(PubAck::new(a.pkid, None)),
        v4::Packet::PubRec(a) => Packet::PubRec(PubRec::new(a.pkid, None)),
        v4::Packet::PubRel(a) => Packet::PubRel(PubRel::new(a.pkid, None)),
        v4::Packet::PubComp(a) => Packet::PubComp(PubComp::new(a.pkid, None)),
        v4::Packet::SubAck(a) => Packet::SubAck(SubAck {
            pkid: a.pkid,
            return_codes: a
                .return_codes
                .into_iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(q) => SubscribeReasonCode::Success(qos_v5(q)),
                    v4::SubscribeReasonCode::Failure => SubscribeReasonCode::Failure,
                })
                .collect(),
            properties: None,
        }),
        v4::Packet::UnsubAck(a) => Packet::UnsubAck(UnsubAck {
            pkid: a.pkid,
            reasons: Vec::new(),
            properties: None,
        }),
        v4::Packet::PingResp => Packet::PingResp(PingResp),
        v4::Packet::PingReq => Packet::PingReq(PingReq),
        // Packets only a client sends; the session refuses them by name.
        v4::Packet::Disconnect => {
            Packet::Disconnect(Disconnect::new(DisconnectReasonCode::NormalDisconnection))
        }
        v4::Packet::Connect(c) => Packet::Connect(
            Connect {
                keep_alive: c.keep_alive,
                client_id: c.client_id,
                clean_start: c.clean_session,
                properties: None,
            },
            None,
            None,
        ),
        v4::Packet::Subscribe(s) => Packet::Subscribe(Subscribe {
            pkid: s.pkid,
            filters: Vec::new(),
            properties: None,
        }),
        v4::Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            pkid: u.pkid,
            filters: u.topics,
            properties: None,
        }),
    }
}

/// A packet of the session as the 3.1.1 wire carries it: properties and reason codes are left
/// out (the session only sets them on a version 5 connection).
fn from_v5(p: &Packet) -> Result<v4::Packet, String> {
    Ok(match p {
        Packet::Connect(c, will, login) => {
            let mut connect = v4::Connect::new(c.client_id.clone());
            connect.keep_alive = c.keep_alive;
            connect.clean_session = c.clean_start;
            connect.login = login
                .as_ref()
                .map(|l| v4::Login::new(l.username.clone(), l.password.clone()));
            connect.last_will = will.as_ref().map(|w| v4::LastWill {
                topic: String::from_utf8_lossy(&w.topic).into_owned(),
                message: w.message.clone(),
                qos: qos_v4(w.qos),
                retain: w.retain,
            });
            v4::Packet::Connect(connect)
        }
        Packet::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: qos_v4(p.qos),
            retain: p.retain,
            topic: std::str::from_utf8(&p.topic)
                .map_err(|_| "its topic is not UTF-8".to_string())?
                .to_string(),
            pkid: p.pkid,
            payload: p.payload.clone(),
        }),
        Packet::PubAck(a) => v4::Packet::PubAck(v4::PubAck::new(a.pkid)),
        Packet::PubRec(a) => v4::Packet::PubRec(v4::PubRec::new(a.pkid)),
        Packet::PubRel(a) => v4::Packet::PubRel(v4::PubRel::new(a.pkid)),
        Packet::PubComp(a) => v4::Packet::PubComp(v4::PubComp::new(a.pkid)),
        Packet::Subscribe(s) => v4::Packet::Subscribe(v4::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .iter()
                .map(|f| v4::SubscribeFilter::new(f.path.clone(), qos_v4(f.qos)))
                .collect(),
        }),
        Packet::Unsubscribe(u) => v4::Packet::Unsubscribe(v4::Unsubscribe {
            pkid: u.pkid,
            topics: u.filters.clone(),
        }),
        Packet::PingReq(_) => v4::Packet::PingReq,
        Packet::Disconnect(_) => v4::Packet::Disconnect,
        other => {
            return Err(format!(
                "{} is not sent on an MQTT 3.1.1 connection",
                packet_name(other)
            ))
        }
    })
}

/// [`crate::codec::write_packet`] for a 3.1.1 connection (after the string checks).
pub(crate) fn write_packet(
    packet: &Packet,
    buf: &mut BytesMut,
    max_size: usize,
) -> Result<(), String> {
    let packet = from_v5(packet)?;
    let start = buf.len();
    packet.write(buf, max_size).map(drop).map_err(|e| {
        buf.truncate(start);
        e.to_string()
    })
}
