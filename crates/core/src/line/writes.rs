//! Host writes: each ends in exactly one `WriteDone`. OUT_TOPIC sets the station's publish topic,
//! OUT_VALUE publishes (done when the broker acknowledges, or when flushed at QoS 0), ACK_ID
//! confirms the shown message; input tags cannot be written.

use bytes::Bytes;

use super::{Line, PendingWrite};
use crate::error::ConfigError;
use crate::event::Event;
use crate::ids::{TagId, TagIndex, WriteToken};
use crate::params::MQTT_STRING_MAX;
use crate::station::StationCommand;
use crate::tag::TagAddress;
use crate::text::quote;
use crate::value::Value;

impl Line {
    /// A write from the host. Unknown tag ids are refused here; everything else ends in exactly
    /// one [`Event::WriteDone`].
    pub fn write(&mut self, tag_id: TagId, request: u64, value: Value) -> Result<(), ConfigError> {
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
            },
        );
        match self.perform_write(t, token, value) {
            Ok(true) => {
                self.complete_write(token);
                self.show_next(station);
            }
            Ok(false) => {}
            Err(e) => self.fail_write(token, &e),
        }
        Ok(())
    }

    /// Ok(true): done now; Ok(false): completes when the broker acknowledges.
    pub(super) fn perform_write(
        &mut self,
        t: TagIndex,
        token: WriteToken,
        value: Value,
    ) -> Result<bool, String> {
        let tag = &self.tags[t];
        let s = &self.stations[tag.station];
        let object = format!("tag '{}.{}'", s.name, tag.name);
        let shown = value.to_text();
        if !tag.ty.is_output() {
            return Err(format!(
                "{object} is an input tag ({}) and cannot be written",
                tag.ty
            ));
        }
        let value = value.convert(tag.ty).map_err(|reason| {
            format!(
                "{object}: value '{shown}' does not fit {}: {reason}",
                tag.ty
            )
        })?;
        match &tag.address {
            TagAddress::OutTopic => {
                let topic = value.to_text();
                check_publish_topic(&topic).map_err(|reason| {
                    format!(
                        "{object}: {} is not a topic to publish to: {reason}",
                        quote(&topic)
                    )
                })?;
                self.stations[tag.station].out_topic = Some(topic);
                Ok(true)
            }
            TagAddress::OutValue => {
                match s.command {
                    StationCommand::Off => {
                        return Err(format!("{object}: station '{}' is off", s.name))
                    }
                    StationCommand::Simulate => return Ok(true),
                    StationCommand::On => {}
                }
                let topic = s.out_topic.clone().ok_or_else(|| {
                    format!(
                        "{object}: station '{}' has no OUT_TOPIC value to publish to",
                        s.name
                    )
                })?;
                let payload = Bytes::from(value.to_text());
                let (qos, retain) = (self.config.publish_qos, self.config.publish_retain);
                self.session
                    .publish(token, &topic, payload, qos, retain)
                    .map_err(|e| format!("{object}: {e}"))?;
                Ok(false)
            }
            TagAddress::AckId => {
                let station = tag.station;
                self.acknowledge(station, &object, &value).map(|()| true)
            }
            TagAddress::Json(_) => Err(format!(
                "{object}: JA= tags are filled from received payloads and cannot be written"
            )),
            TagAddress::InTopic | TagAddress::InData | TagAddress::InId => Err(format!(
                "{object} is filled from received messages and cannot be written"
            )),
        }
    }

    pub(super) fn complete_write(&mut self, token: WriteToken) {
        if let Some(w) = self.writes.remove(&token) {
            self.events.push_back(Event::WriteDone {
                request: w.request,
                station: w.station,
                tag: w.tag,
                error: None,
            });
        }
    }

    pub(super) fn fail_write(&mut self, token: WriteToken, error: &str) {
        if let Some(w) = self.writes.remove(&token) {
            self.events.push_back(Event::WriteDone {
                request: w.request,
                station: w.station,
                tag: w.tag,
                error: Some(error.to_string()),
            });
        }
    }
}

/// A topic a PUBLISH may carry: not empty, no wildcards or NUL, and short enough for its MQTT
/// length field (a longer one would be sent as a malformed packet).
pub(crate) fn check_publish_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        Err("it is empty".into())
    } else if topic.contains(['+', '#', '\0']) {
        Err("it contains '+', '#' or NUL".into())
    } else if topic.len() > MQTT_STRING_MAX {
        Err(format!(
            "it is {} bytes long, more than the {MQTT_STRING_MAX} bytes an MQTT topic can hold",
            topic.len()
        ))
    } else {
        Ok(())
    }
}
