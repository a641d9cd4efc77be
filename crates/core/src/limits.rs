//! What an MQTT 5 server announces in CONNACK and the session honours (`ServerLimits`), and the
//! topic aliases of one connection in both directions (`Aliases`).

use std::collections::HashMap;

use bytes::Bytes;

use crate::codec::{ConnAckProperties, Publish, QoS};
use crate::error::PublishError;
use crate::routing::FxMap;

/// The server's limits; on 3.1.1 (no properties) the defaults MQTT 5 gives an absent property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerLimits {
    /// QoS 1/2 publications the server takes unacknowledged.
    pub receive_maximum: u16,
    pub maximum_qos: QoS,
    pub retain_available: bool,
    pub maximum_packet_size: Option<u32>,
    /// Topic aliases the server accepts from us (0: none).
    pub topic_alias_maximum: u16,
    pub wildcard_available: bool,
    pub shared_available: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            receive_maximum: u16::MAX,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            maximum_packet_size: None,
            topic_alias_maximum: 0,
            wildcard_available: true,
            shared_available: true,
        }
    }
}

impl ServerLimits {
    pub(crate) fn from_connack(p: &ConnAckProperties) -> ServerLimits {
        let d = ServerLimits::default();
        ServerLimits {
            receive_maximum: p
                .receive_max
                .filter(|&n| n > 0)
                .unwrap_or(d.receive_maximum),
            maximum_qos: match p.max_qos {
                Some(0) => QoS::AtMostOnce,
                Some(1) => QoS::AtLeastOnce,
                _ => d.maximum_qos,
            },
            retain_available: p.retain_available != Some(0),
            maximum_packet_size: p.max_packet_size.filter(|&n| n > 0),
            topic_alias_maximum: p.topic_alias_max.unwrap_or(0),
            wildcard_available: p.wildcard_subscription_available != Some(0),
            shared_available: p.shared_subscription_available != Some(0),
        }
    }

    /// A write the server announced it does not take: above its Maximum QoS, or retained where
    /// it has no retained messages. Refused rather than downgraded (docs/decisions.md).
    pub(crate) fn check_publish(&self, qos: QoS, retain: bool) -> Result<(), PublishError> {
        if qos as u8 > self.maximum_qos as u8 {
            return Err(PublishError::QosNotSupported {
                qos: qos as u8,
                maximum: self.maximum_qos as u8,
            });
        }
        if retain && !self.retain_available {
            return Err(PublishError::RetainNotSupported);
        }
        Ok(())
    }

    /// Why the server cannot take the line's topic filter, from what it announced.
    pub(crate) fn refuses_filter(&self, filter: &str) -> Option<String> {
        if !self.shared_available && filter.starts_with("$share/") {
            return Some("the broker announced that it has no shared subscriptions".into());
        }
        if !self.wildcard_available && filter.contains(['+', '#']) {
            return Some("the broker announced that it has no wildcard subscriptions".into());
        }
        None
    }
}

/// Topic aliases of one network connection: the server's (alias to topic, for PUBLISH packets
/// we receive) and ours (topic to alias, for the writes we send).
#[derive(Debug, Default)]
pub(crate) struct Aliases {
    /// Alias numbers from the broker, looked up for every aliased message: the routing tables'
    /// small hash.
    incoming: FxMap<u16, Bytes>,
    outgoing: HashMap<Bytes, u16>,
}

impl Aliases {
    /// Resolves a received PUBLISH's Topic Alias (MQTT 5 3.3.2.3.4): an alias with a topic sets
    /// the mapping, an alias with an empty topic uses it. `maximum` is what our CONNECT allowed.
    pub(crate) fn incoming(&mut self, p: &mut Publish, maximum: u16) -> Result<(), String> {
        let alias = p.properties.as_ref().and_then(|pr| pr.topic_alias);
        let Some(alias) = alias else {
            if p.topic.is_empty() {
                return Err("PUBLISH with an empty topic and no Topic Alias".into());
            }
            return Ok(());
        };
        if alias == 0 || alias > maximum {
            return Err(format!(
                "PUBLISH with Topic Alias {alias}, outside 1..={maximum} that the line allows \
                 (0x94 Topic Alias invalid)"
            ));
        }
        if p.topic.is_empty() {
            match self.incoming.get(&alias) {
                Some(topic) => p.topic = topic.clone(),
                None => {
                    return Err(format!(
                        "PUBLISH with Topic Alias {alias}, which no earlier PUBLISH set (0x82 \
                         Protocol Error)"
                    ))
                }
            }
        } else {
            self.incoming.insert(alias, p.topic.clone());
        }
        Ok(())
    }

    /// Makes `p` the PUBLISH to send: with the server's permission (`maximum` > 0) a topic gets
    /// an alias on its first write, and later writes send the alias with an empty topic. Once
    /// every alias is taken, further topics go out in full.
    pub(crate) fn outgoing(&mut self, p: &mut Publish, maximum: u16) {
        if maximum == 0 {
            return;
        }
        let (alias, known) = match self.outgoing.get(&p.topic) {
            Some(&a) => (a, true),
            None if self.outgoing.len() < usize::from(maximum) => {
                let a = self.outgoing.len() as u16 + 1;
                self.outgoing.insert(p.topic.clone(), a);
                (a, false)
            }
            None => return,
        };
        if known {
            p.topic = Bytes::new();
        }
        p.properties
            .get_or_insert_with(Default::default)
            .topic_alias = Some(alias);
    }

    /// The topic our alias `alias` stands for (a Sparkplug command is recognised by its topic
    /// after the alias replaced it).
    pub(crate) fn outgoing_topic(&self, alias: u16) -> Option<Bytes> {
        self.outgoing
            .iter()
            .find(|(_, &a)| a == alias)
            .map(|(t, _)| t.clone())
    }

    /// A PUBLISH that would have set an alias was not sent: the alias is free again.
    pub(crate) fn not_sent(&mut self, p: &Publish) {
        let alias = p.properties.as_ref().and_then(|pr| pr.topic_alias);
        if alias.is_some() && !p.topic.is_empty() {
            self.outgoing.remove(&p.topic);
        }
    }
}
