//! Host writes: each ends in exactly one `WriteDone`. OUT_TOPIC sets the station's publish topic,
//! OUT_VALUE publishes (done when the broker acknowledges, or when flushed at QoS 0), ACK_ID
//! confirms the shown message; input tags cannot be written.

use std::time::Instant;

use bytes::Bytes;

use super::ack::AckError;
use super::{Line, PendingWrite};
use crate::codec::{PublishProperties, QoS};
use crate::error::ConfigError;
use crate::event::Event;
use crate::host_list::describe_host_list;
use crate::ids::{LinkId, TagId, TagIndex, WriteToken};
use crate::params::MQTT_STRING_MAX;
use crate::session::PublishError;
use crate::station::StationCommand;
use crate::tag::TagAddress;
use crate::text::quote;
use crate::value::{Value, ValueType};

impl Line {
    /// Whether the station of tag `t` sends a write: `Err` when it is off, `Ok(false)` when it
    /// is simulated (the write completes at once and nothing is sent), `Ok(true)` when it is on.
    pub(super) fn station_sends(&self, t: TagIndex, object: &str) -> Result<bool, WriteError> {
        let s = &self.stations[self.tags[t].station];
        match s.command {
            StationCommand::Off => Err(WriteError::StationOff {
                object: object.to_string(),
                station: s.name.clone(),
            }),
            StationCommand::Simulate => Ok(false),
            StationCommand::On => Ok(true),
        }
    }

    /// A write from the host. Unknown tag ids are refused here; everything else ends in exactly
    /// one [`Event::WriteDone`].
    /// `now` and `wall_ns` are the time of the call: an ACK_ID write shows the next held message.
    pub fn write(
        &mut self,
        tag_id: TagId,
        request: u64,
        value: Value,
        now: Instant,
        wall_ns: i64,
    ) -> Result<(), ConfigError> {
        let &t = self
            .tag_ids
            .get(&tag_id)
            .ok_or_else(|| ConfigError::UnknownTag {
                line: self.name.clone(),
                id: tag_id,
            })?;
        let token = WriteToken(self.next_token);
        self.next_token += 1;
        let station = self.tags[t].station;
        self.writes.insert(
            token,
            PendingWrite {
                request,
                station: self.stations[station].id,
                tag: tag_id,
                waiting: 0,
                failed: None,
            },
        );
        match self.perform_write(t, token, value, wall_ns) {
            Ok(true) => {
                self.complete_write(token, wall_ns);
                self.show_next(station, now);
            }
            Ok(false) => {}
            Err(e) => self.fail_write(token, &e.to_string(), wall_ns),
        }
        Ok(())
    }

    /// Ok(true): done now; Ok(false): completes when the broker acknowledges.
    fn perform_write(
        &mut self,
        t: TagIndex,
        token: WriteToken,
        value: Value,
        wall_ns: i64,
    ) -> Result<bool, WriteError> {
        let tag = &self.tags[t];
        let s = &self.stations[tag.station];
        // The tag's name and the written value are formatted only for an error: for every
        // write they cost more than an ACK_ID confirmation itself.
        let object = || format!("tag '{}.{}'", s.name, tag.name);
        let ty = tag.ty;
        if !ty.is_output() {
            return Err(WriteError::InputTag {
                object: object(),
                ty,
            });
        }
        // Kept for the error's text (a copy of a number costs nothing next to formatting it).
        let written = value.clone();
        let value = match value.convert(ty) {
            Ok(converted) => converted,
            Err(reason) => {
                return Err(WriteError::DoesNotFit {
                    object: object(),
                    value: written.to_text(),
                    ty,
                    reason,
                })
            }
        };
        match &tag.address {
            TagAddress::OutTopic => {
                let topic = value.to_text();
                if let Err(reason) = check_publish_topic(&topic) {
                    return Err(WriteError::NotATopic {
                        object: object(),
                        topic,
                        reason,
                    });
                }
                self.stations[tag.station].out_topic = Some(topic);
                Ok(true)
            }
            TagAddress::OutValue => {
                let station = s.name.clone();
                match s.command {
                    StationCommand::Off => {
                        return Err(WriteError::StationOff {
                            object: object(),
                            station,
                        })
                    }
                    StationCommand::Simulate => return Ok(true),
                    StationCommand::On => {}
                }
                let Some(topic) = s.out_topic.clone() else {
                    return Err(WriteError::NoTopic {
                        object: object(),
                        station,
                    });
                };
                let text = value.to_text();
                let (qos, retain) = (self.config.publish_qos, self.config.publish_retain);
                let mut properties = self.write_properties(s);
                let compress = s
                    .params
                    .compress_writes
                    .unwrap_or(self.config.compress_writes);
                let payload = if compress {
                    // The Content-Type says gzip; on 3.1.1 it is not sent (config.rs warns).
                    properties
                        .get_or_insert_with(PublishProperties::default)
                        .content_type = Some(crate::gzip::CONTENT_TYPE.to_string());
                    let packed = self
                        .gzip_writer
                        .get_or_insert_with(|| Box::new(crate::gzip::GzipWriter::new()))
                        .compress(text.as_bytes())
                        .map_err(|reason| WriteError::Compress {
                            object: object(),
                            reason,
                        })?;
                    Bytes::from(packed)
                } else {
                    Bytes::from(text)
                };
                let object = object();
                self.publish_write(token, &topic, payload, (qos, retain), properties)
                    .map_err(|refused| refused.into_write_error(object))?;
                Ok(false)
            }
            TagAddress::OutProperty(name) => {
                let name = name.clone();
                self.stations[tag.station].set_user_property(&name, value.to_text());
                Ok(true)
            }
            TagAddress::AckId => {
                let station = tag.station;
                self.acknowledge(station, t, &value)?;
                Ok(true)
            }
            TagAddress::Json(_) => Err(WriteError::JsonTag { object: object() }),
            TagAddress::Sparkplug(_) if self.edge.is_some() => {
                self.write_edge(t, &value, token, object(), wall_ns)
            }
            TagAddress::Sparkplug(name) => {
                let name = name.clone();
                self.write_metric(t, &name, &value, token, object())
            }
            // IN_TOPIC, IN_DATA, IN_ID, CSV= and the message's MQTT 5 properties.
            _ => Err(WriteError::MessageTag { object: object() }),
        }
    }

    /// How an error names tag `t`: `tag 'station.tag'`.
    pub(super) fn tag_object(&self, t: TagIndex) -> String {
        let tag = &self.tags[t];
        format!("tag '{}.{}'", self.stations[tag.station].name, tag.name)
    }

    /// MQTT 5 properties of a write of station `s`: the line's Message Expiry Interval, the
    /// station's (else the line's) Content Type and Response Topic, and the station's
    /// OUT_PROPERTY values as user properties. `None` when there is nothing to send.
    pub(super) fn write_properties(&self, s: &super::Station) -> Option<PublishProperties> {
        let v5 = &self.config.v5;
        let text = |station: &Option<String>, line: &str| {
            Some(station.as_deref().unwrap_or(line).to_string()).filter(|t| !t.is_empty())
        };
        let p = PublishProperties {
            message_expiry_interval: Some(v5.message_expiry_interval).filter(|&e| e > 0),
            content_type: text(&s.params.content_type, &v5.content_type),
            response_topic: text(&s.params.response_topic, &v5.response_topic),
            user_properties: s.user_properties.clone(),
            ..PublishProperties::default()
        };
        (p != PublishProperties::default()).then_some(p)
    }

    /// Publishes a write (token `token`) on the line's connection, or on a redundant line on
    /// every connection that takes it: the write then waits for the first broker to accept it
    /// and fails only when each has failed ([`Line::fail_write_on`]).
    pub(super) fn publish_write(
        &mut self,
        token: WriteToken,
        topic: &str,
        payload: Bytes,
        (qos, retain): (QoS, bool),
        properties: Option<PublishProperties>,
    ) -> Result<(), PublishRefused> {
        if self.redundancy.is_none() {
            return self
                .link
                .session
                .publish(token, topic, payload, qos, retain, properties)
                .map_err(PublishRefused::One);
        }
        let mut waiting = 0u8;
        let mut reasons = Vec::new();
        for id in [LinkId::A, LinkId::B] {
            let Some(link) = self.link_mut(id) else {
                continue;
            };
            let published = link.session.publish(
                token,
                topic,
                payload.clone(),
                qos,
                retain,
                properties.clone(),
            );
            match published {
                Ok(()) => waiting |= link_bit(id),
                Err(e) => reasons.push(self.link_reason(id, &e.to_string())),
            }
        }
        if waiting == 0 {
            return Err(PublishRefused::Each(reasons.join("; ")));
        }
        if let Some(w) = self.writes.get_mut(&token) {
            w.waiting = waiting;
            w.failed = (!reasons.is_empty()).then(|| reasons.join("; "));
        }
        Ok(())
    }

    /// Publishes a message of the line's own (a Sparkplug rebirth request) on every connection
    /// that takes it; `Err` only when none did, with the first reason.
    pub(super) fn publish_everywhere(
        &mut self,
        token: WriteToken,
        topic: &str,
        payload: Bytes,
    ) -> Result<(), PublishError> {
        let mut outcome = Err(PublishError::NotConnected);
        for id in self.links() {
            let Some(link) = self.link_mut(*id) else {
                continue;
            };
            let published =
                link.session
                    .publish(token, topic, payload.clone(), QoS::AtMostOnce, false, None);
            outcome = match (outcome, published) {
                (Ok(()), _) | (_, Ok(())) => Ok(()),
                (Err(first), Err(_)) if *id == LinkId::B => Err(first),
                (_, Err(e)) => Err(e),
            };
        }
        outcome
    }

    /// `reason` as a redundant line's write failure names it: `A (host:port): reason`.
    fn link_reason(&self, id: LinkId, reason: &str) -> String {
        let host = match (self.link_ref(id).and_then(|l| l.host.clone()), id) {
            (Some(host), _) => host,
            (None, LinkId::A) => describe_host_list(&self.config.hosts, self.config.port()),
            (None, LinkId::B) => {
                describe_host_list(&self.config.redundant.hosts, self.config.redundant_port())
            }
        };
        format!("{} ({host}): {reason}", id.name())
    }

    pub(super) fn complete_write(&mut self, token: WriteToken, wall_ns: i64) {
        self.finish_write(token, None, wall_ns);
    }

    pub(super) fn fail_write(&mut self, token: WriteToken, error: &str, wall_ns: i64) {
        self.finish_write(token, Some(error.to_string()), wall_ns);
    }

    /// Write `token` failed on connection `id`. A redundant line's write published on both
    /// fails only when the other one has failed too, with both reasons; until then it waits for
    /// the other broker. A write on one connection fails at once.
    pub(super) fn fail_write_on(
        &mut self,
        id: LinkId,
        token: WriteToken,
        error: &str,
        wall_ns: i64,
    ) {
        let waiting = self.writes.get(&token).map_or(0, |w| w.waiting);
        if waiting == 0 {
            self.fail_write(token, error, wall_ns);
            return;
        }
        if waiting & link_bit(id) == 0 {
            // Already failed on this connection (it is reported once).
            return;
        }
        let reason = self.link_reason(id, error);
        let Some(w) = self.writes.get_mut(&token) else {
            return;
        };
        w.waiting &= !link_bit(id);
        let all = match w.failed.take() {
            Some(earlier) => format!("{earlier}; {reason}"),
            None => reason,
        };
        if w.waiting == 0 {
            self.fail_write(token, &all, wall_ns);
        } else {
            w.failed = Some(all);
        }
    }

    fn finish_write(&mut self, token: WriteToken, error: Option<String>, wall_ns: i64) {
        if self.edge_write_finished(token, error.is_none()) {
            return;
        }
        if let Some(w) = self.writes.remove(&token) {
            match error {
                None => self.stats.writes_ok += 1,
                Some(_) => self.stats.writes_failed += 1,
            }
            self.events.push_back(Event::WriteDone {
                request: w.request,
                station: w.station,
                tag: w.tag,
                error,
                time_ns: wall_ns,
            });
        }
    }
}

/// A topic a PUBLISH may carry: not empty, no wildcards or NUL, and short enough for its MQTT
/// length field (a longer one would be sent as a malformed packet).
pub(crate) fn check_publish_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        Err(TopicError::Empty)
    } else if topic.contains(['+', '#', '\0']) {
        Err(TopicError::Wildcard)
    } else if topic.len() > MQTT_STRING_MAX {
        Err(TopicError::TooLong { len: topic.len() })
    } else {
        Ok(())
    }
}

/// Why a text cannot be a topic to publish to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum TopicError {
    #[error("it is empty")]
    Empty,
    #[error("it contains '+', '#' or NUL")]
    Wildcard,
    #[error(
        "it is {len} bytes long, more than the {MQTT_STRING_MAX} bytes an MQTT topic can hold"
    )]
    TooLong { len: usize },
}

/// The bit of connection `id` in [`PendingWrite`](super::PendingWrite)'s `waiting`.
pub(super) fn link_bit(id: LinkId) -> u8 {
    1 << id.index()
}

/// Why no connection took a write.
#[derive(Debug)]
pub(super) enum PublishRefused {
    /// The line's one connection refused it.
    One(PublishError),
    /// Each connection of a redundant line refused it; the reasons, each naming its connection.
    Each(String),
}

impl PublishRefused {
    /// The write's error, `object` naming its tag.
    pub(super) fn into_write_error(self, object: String) -> WriteError {
        match self {
            PublishRefused::One(reason) => WriteError::Publish { object, reason },
            PublishRefused::Each(reasons) => WriteError::PublishEach { object, reasons },
        }
    }
}

/// Why a host write failed; the text is what the host gets in its `WriteDone`. `object` reads
/// like `tag 'station.tag'`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("{object} is an input tag ({ty}) and cannot be written")]
    InputTag { object: String, ty: ValueType },
    #[error("{object}: value '{value}' does not fit {ty}: {reason}")]
    DoesNotFit {
        object: String,
        value: String,
        ty: ValueType,
        reason: String,
    },
    #[error("{object}: {} is not a topic to publish to: {reason}", quote(.topic))]
    NotATopic {
        object: String,
        topic: String,
        reason: TopicError,
    },
    #[error("{object}: station '{station}' is off")]
    StationOff { object: String, station: String },
    #[error("{object}: station '{station}' has no OUT_TOPIC value to publish to")]
    NoTopic { object: String, station: String },
    #[error("{object}: {reason}")]
    Publish {
        object: String,
        reason: PublishError,
    },
    #[error("{object}: no broker took the write: {reasons}")]
    PublishEach { object: String, reasons: String },
    #[error(transparent)]
    Ack(#[from] AckError),
    #[error("{object}: JA= tags are filled from received payloads and cannot be written")]
    JsonTag { object: String },
    #[error("{object} is filled from received messages and cannot be written")]
    MessageTag { object: String },
    #[error("{object}: {reason}")]
    Sparkplug { object: String, reason: String },
    #[error("{object}: the value could not be gzip-compressed (compress_writes): {reason}")]
    Compress { object: String, reason: String },
}
