//! Filling a station's input tags from a message it takes: the payload's JA= or CSV= tags
//! (reading.rs) first, then the MQTT 5 property tags and IN_TOPIC, IN_DATA, IN_ID, so that a
//! script triggered by IN_ID sees the whole message. Called for a message at once, or when an
//! ACK_ID gate shows it (ack.rs).

use std::borrow::Cow;

use super::Line;
use crate::codec::{Publish, PublishProperties, QoS};
use crate::event::{LogLevel, FLAG_DUPLICATE, FLAG_RETAINED, FLAG_VALID};
use crate::gzip::{self, Encoding};
use crate::ids::StationIndex;
use crate::payload::{self, PayloadError};
use crate::tag::TagAddress;
use crate::text::hex;
use crate::value::Value;

impl Line {
    /// Sets a station's input tags from a message on `topic` (the message's, checked once by
    /// the caller): with a JSON or CSV payload the JA= or CSV= tags first, then IN_TOPIC,
    /// IN_DATA, IN_ID. Every value carries the payload's time stamp when there is one (a tag of
    /// a selected array item its item's). A gzip payload is inflated first (gzip.rs); with
    /// [`Encoding::Gzip`] (the message said so) the payload must be a gzip stream.
    pub(super) fn fill_inputs_as(
        &mut self,
        i: StationIndex,
        p: &Publish,
        topic: &str,
        encoding: Encoding,
        wall_ns: i64,
    ) {
        let mut flags = FLAG_VALID;
        if p.dup && p.qos == QoS::AtLeastOnce {
            flags |= FLAG_DUPLICATE;
        }
        if p.retain {
            flags |= FLAG_RETAINED;
        }
        let body = match gzip::inflate(&p.payload, encoding, self.config.max_decompressed_size) {
            Ok(body) => Some(body),
            Err(e) => {
                self.payload_error(i, topic, PayloadError::Gzip(e));
                None
            }
        };
        let (time_ns, flags) = match &body {
            Some(body) => self.read_payload(i, topic, body, wall_ns, flags),
            None => {
                self.invalidate_payload_tags(i, wall_ns, flags);
                (wall_ns, flags)
            }
        };

        if self.stations[i].in_tags {
            self.fill_in_tags(i, p, topic, body.as_deref(), time_ns, flags);
        }

        if self.stations[i].device_lost {
            self.stations[i].device_lost = false;
            self.refresh_station(i, "data received", wall_ns);
        }
    }

    /// IN_TOPIC, IN_DATA and IN_ID of a station, in that order, after the MQTT 5 properties
    /// (IN_PROPERTY=, IN_CONTENT_TYPE, IN_RESPONSE_TOPIC, IN_CORRELATION_DATA), so that a script
    /// triggered by IN_ID sees them too. `body` is the payload as read (inflated when it was
    /// gzip); `None`: it could not be read, so IN_DATA is invalid.
    fn fill_in_tags(
        &mut self,
        i: StationIndex,
        p: &Publish,
        topic: &str,
        body: Option<&[u8]>,
        time_ns: i64,
        flags: u32,
    ) {
        if self.stations[i].property_tags {
            self.fill_property_tags(i, p.properties.as_ref(), time_ns, flags);
        }
        let text = match body.map(std::str::from_utf8) {
            None => None,
            Some(Ok(s)) => Some(Cow::Borrowed(s)),
            Some(Err(e)) => {
                let text = format!(
                    "payload is not valid UTF-8 ({e}); invalid bytes are replaced topic={}",
                    payload::escape(topic)
                );
                self.log(LogLevel::Warn, text);
                body.map(String::from_utf8_lossy)
            }
        };
        let id = p.pkid.to_string();
        for (address, text) in [
            (TagAddress::InTopic, Some(topic)),
            (TagAddress::InData, text.as_deref()),
            (TagAddress::InId, Some(id.as_str())),
        ] {
            for k in 0..self.stations[i].tags.len() {
                let t = self.stations[i].tags[k];
                if !same_input(&self.tags[t].address, &address) {
                    continue;
                }
                let value = match text.map(|text| Value::parse(text, self.tags[t].ty)) {
                    None => None,
                    Some(Ok(v)) => Some(v),
                    Some(Err(reason)) => {
                        self.warn_invalid(t, &format!("{address}: {reason}"));
                        None
                    }
                };
                self.set_value(t, value, time_ns, flags);
            }
        }
    }

    /// The station's tags bound to the message's MQTT 5 properties; a property the message does
    /// not carry makes its tag invalid. Correlation Data, binary, is shown in hexadecimal.
    /// `props` is `None` when the message has no properties at all (or came from a 3.1.1
    /// publisher): every property tag is then invalid too, so a script never answers an older
    /// message's correlation data.
    fn fill_property_tags(
        &mut self,
        i: StationIndex,
        props: Option<&PublishProperties>,
        time_ns: i64,
        flags: u32,
    ) {
        for k in 0..self.stations[i].tags.len() {
            let t = self.stations[i].tags[k];
            let text = match &self.tags[t].address {
                TagAddress::InProperty(name) => props.and_then(|props| {
                    props
                        .user_properties
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                }),
                TagAddress::InContentType => props.and_then(|p| p.content_type.clone()),
                TagAddress::InResponseTopic => props.and_then(|p| p.response_topic.clone()),
                TagAddress::InCorrelationData => {
                    props.and_then(|p| p.correlation_data.as_deref().map(hex))
                }
                _ => continue,
            };
            self.set_value(t, text.map(Value::Text), time_ns, flags);
        }
    }
}

/// Whether a tag's address is the IN_TOPIC, IN_DATA or IN_ID `input` (compared by kind only:
/// these addresses carry nothing else).
fn same_input(address: &TagAddress, input: &TagAddress) -> bool {
    std::mem::discriminant(address) == std::mem::discriminant(input)
}
