//! MQTT 5 reason codes: their numbers and names, and the reason a broker gave for a refusal
//! (`0x87 Not authorized: <reason string>`), as the line reports it.

use crate::packet::{
    ConnectReturnCode, DisconnectReasonCode, PubAckReason, PubCompReason, PubRecReason,
    SubscribeReasonCode, UnsubAckReason,
};
use crate::text::shorten;

/// A reason code with the broker's reason string, when it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: u8,
    pub string: Option<String>,
}

impl Reason {
    pub fn new(code: u8, string: Option<&String>) -> Reason {
        Reason {
            code,
            string: string.cloned(),
        }
    }

    /// Codes from 0x80 on mean failure.
    pub fn is_failure(&self) -> bool {
        self.code >= 0x80
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#04x} {}", self.code, name(self.code))?;
        match &self.string {
            Some(s) if !s.is_empty() => write!(f, " ({})", shorten(s)),
            _ => Ok(()),
        }
    }
}

/// The name of an MQTT 5 reason code, as the specification's table calls it.
pub fn name(code: u8) -> &'static str {
    match code {
        0x00 => "Success",
        0x01 => "Granted QoS 1",
        0x02 => "Granted QoS 2",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x11 => "No subscription existed",
        0x18 => "Continue authentication",
        0x19 => "Re-authenticate",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription Identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => "unknown reason code",
    }
}

/// The number of a reason code the codec turned into an enum.
pub trait Code {
    fn code(&self) -> u8;
}

impl Code for ConnectReturnCode {
    fn code(&self) -> u8 {
        use ConnectReturnCode as C;
        match self {
            C::Success => 0x00,
            // 3.1.1 refusals, as the v4 codec reads them (connack_v4 in codec.rs).
            C::RefusedProtocolVersion => 0x84,
            C::BadClientId => 0x85,
            C::ServiceUnavailable => 0x88,
            C::UnspecifiedError => 0x80,
            C::MalformedPacket => 0x81,
            C::ProtocolError => 0x82,
            C::ImplementationSpecificError => 0x83,
            C::UnsupportedProtocolVersion => 0x84,
            C::ClientIdentifierNotValid => 0x85,
            C::BadUserNamePassword => 0x86,
            C::NotAuthorized => 0x87,
            C::ServerUnavailable => 0x88,
            C::ServerBusy => 0x89,
            C::Banned => 0x8A,
            C::BadAuthenticationMethod => 0x8C,
            C::TopicNameInvalid => 0x90,
            C::PacketTooLarge => 0x95,
            C::QuotaExceeded => 0x97,
            C::PayloadFormatInvalid => 0x99,
            C::RetainNotSupported => 0x9A,
            C::QoSNotSupported => 0x9B,
            C::UseAnotherServer => 0x9C,
            C::ServerMoved => 0x9D,
            C::ConnectionRateExceeded => 0x9F,
        }
    }
}

/// PUBACK and PUBREC share their reason codes.
macro_rules! publish_ack_codes {
    ($($reason:ident),+) => {$(
        impl Code for $reason {
            fn code(&self) -> u8 {
                match self {
                    $reason::Success => 0x00,
                    $reason::NoMatchingSubscribers => 0x10,
                    $reason::UnspecifiedError => 0x80,
                    $reason::ImplementationSpecificError => 0x83,
                    $reason::NotAuthorized => 0x87,
                    $reason::TopicNameInvalid => 0x90,
                    $reason::PacketIdentifierInUse => 0x91,
                    $reason::QuotaExceeded => 0x97,
                    $reason::PayloadFormatInvalid => 0x99,
                }
            }
        }
    )+};
}

publish_ack_codes!(PubAckReason, PubRecReason);

impl Code for PubCompReason {
    fn code(&self) -> u8 {
        match self {
            PubCompReason::Success => 0x00,
            PubCompReason::PacketIdentifierNotFound => 0x92,
        }
    }
}

impl Code for SubscribeReasonCode {
    fn code(&self) -> u8 {
        use SubscribeReasonCode as R;
        match self {
            R::Success(q) => *q as u8,
            R::Failure | R::Unspecified => 0x80,
            R::ImplementationSpecific => 0x83,
            R::NotAuthorized => 0x87,
            R::TopicFilterInvalid => 0x8F,
            R::PkidInUse => 0x91,
            R::QuotaExceeded => 0x97,
            R::SharedSubscriptionsNotSupported => 0x9E,
            R::SubscriptionIdNotSupported => 0xA1,
            R::WildcardSubscriptionsNotSupported => 0xA2,
        }
    }
}

impl Code for UnsubAckReason {
    fn code(&self) -> u8 {
        use UnsubAckReason as R;
        match self {
            R::Success => 0x00,
            R::NoSubscriptionExisted => 0x11,
            R::UnspecifiedError => 0x80,
            R::ImplementationSpecificError => 0x83,
            R::NotAuthorized => 0x87,
            R::TopicFilterInvalid => 0x8F,
            R::PacketIdentifierInUse => 0x91,
        }
    }
}

impl Code for DisconnectReasonCode {
    fn code(&self) -> u8 {
        *self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_with_number_name_and_string() {
        let r = Reason::new(0x86, None);
        assert_eq!(r.to_string(), "0x86 Bad User Name or Password");
        assert!(r.is_failure());
        let r = Reason::new(0x87, Some(&"acl\ndenied".to_string()));
        assert_eq!(r.to_string(), "0x87 Not authorized (acl\\ndenied)");
        assert!(!Reason::new(0x10, None).is_failure());
        assert_eq!(ConnectReturnCode::BadUserNamePassword.code(), 0x86);
        assert_eq!(PubAckReason::QuotaExceeded.code(), 0x97);
        assert_eq!(DisconnectReasonCode::ServerMoved.code(), 0x9D);
        assert_eq!(
            SubscribeReasonCode::Success(crate::packet::QoS::ExactlyOnce).code(),
            2
        );
    }
}
