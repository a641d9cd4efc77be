//! The MQTT packet types the core works with: rumqttc's MQTT 5 types, used for both protocol
//! versions (5 is a superset of 3.1.1), the protocol version, and the few helpers that only name
//! or build a packet. The codec, the 3.1.1 conversion, reason codes and parameters all stand on
//! this file, so none of them needs another to know what a packet is.

/// The packet types of rumqttc's MQTT 5 codec, used by the session, the configuration and the
/// shell (through codec.rs and `mqtt`).
pub use rumqttc::v5::mqttbytes::v5::{
    ConnAck, ConnAckProperties, Connect, ConnectProperties, ConnectReturnCode, Disconnect,
    DisconnectProperties, DisconnectReasonCode, Filter, LastWill, Login, Packet, PingReq, PingResp,
    PubAck, PubAckReason, PubComp, PubCompReason, PubRec, PubRecReason, PubRel, Publish,
    PublishProperties, RetainForwardRule, SubAck, Subscribe, SubscribeReasonCode, UnsubAck,
    UnsubAckReason, Unsubscribe,
};
pub use rumqttc::v5::mqttbytes::QoS;

/// The protocol version a line speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V311,
    V5,
}

/// The packet type's name, for traces and messages.
pub fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(..) => "CONNECT",
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
        Packet::PingReq(_) => "PINGREQ",
        Packet::PingResp(_) => "PINGRESP",
        Packet::Disconnect(_) => "DISCONNECT",
        Packet::Auth(_) => "AUTH",
    }
}

/// A CONNACK without properties (what a 3.1.1 broker sends), for tests and fuzz targets.
pub fn conn_ack(code: ConnectReturnCode, session_present: bool) -> ConnAck {
    ConnAck {
        session_present,
        code,
        properties: None,
    }
}

/// A SUBACK without properties, for tests and fuzz targets.
pub fn sub_ack(pkid: u16, return_codes: Vec<SubscribeReasonCode>) -> SubAck {
    SubAck {
        pkid,
        return_codes,
        properties: None,
    }
}
