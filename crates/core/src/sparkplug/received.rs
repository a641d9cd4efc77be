//! A received payload in the form the host reads it: NDATA and DDATA of the common form are
//! read whole into views of their metrics that borrow from the payload; births, deaths and
//! anything else are decoded into a [`Payload`], as is a data message held for its turn.

use std::borrow::Cow;

use super::common_payload::{MetricRoom, Wire};
use super::compression;
use super::metric_view::MetricView;
use super::payload::{Payload, PayloadError};
use super::topic::MessageType;

/// A received payload, in one of its two forms.
pub(crate) enum Message<'b> {
    Wire(Wire<'b>),
    Decoded(Payload),
}

impl<'b> Message<'b> {
    /// The payload of a message of kind `kind` (a compressed one inflated to at most
    /// `max_decompressed` bytes), or why it cannot be read. Data read where it lies keeps its
    /// metrics in `room`'s vector (given back by [`Message::done`]).
    pub(crate) fn read(
        kind: MessageType,
        bytes: &'b [u8],
        max_decompressed: usize,
        room: &mut MetricRoom,
    ) -> Result<Message<'b>, PayloadError> {
        if matches!(kind, MessageType::NData | MessageType::DData) {
            if let Some(wire) = Wire::read(bytes, room) {
                return Ok(Message::Wire(wire));
            }
        }
        compression::decode_with(bytes, max_decompressed).map(Message::Decoded)
    }

    pub(crate) fn timestamp(&self) -> Option<u64> {
        match self {
            Message::Wire(w) => w.timestamp,
            Message::Decoded(p) => p.timestamp,
        }
    }

    pub(crate) fn seq(&self) -> Option<u64> {
        match self {
            Message::Wire(w) => w.seq,
            Message::Decoded(p) => p.seq,
        }
    }

    /// The decoded payload (built for a message read where it lies).
    pub(crate) fn payload(&self) -> Cow<'_, Payload> {
        match self {
            Message::Wire(w) => Cow::Owned(w.to_payload()),
            Message::Decoded(p) => Cow::Borrowed(p),
        }
    }

    /// The decoded payload, to keep (a message held for its turn).
    pub(crate) fn into_payload(self) -> Payload {
        match self {
            Message::Wire(w) => w.to_payload(),
            Message::Decoded(p) => p,
        }
    }

    /// The message has been applied: its metrics' vector goes back to `room`.
    pub(crate) fn done(self, room: &mut MetricRoom) {
        if let Message::Wire(wire) = self {
            room.keep(wire);
        }
    }

    /// Calls `each` with every metric, in order. One loop per form, so that the compiler keeps
    /// each without a match per metric.
    #[inline]
    pub(crate) fn for_each_metric(&self, mut each: impl FnMut(&MetricView<'_>)) {
        match self {
            Message::Wire(w) => w.metrics.iter().for_each(each),
            Message::Decoded(p) => p.metrics.iter().for_each(|m| each(&MetricView::from(m))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::payload::{decode_plain, encode, MetaData, Metric, MetricValue};

    fn metrics_of(message: &Message) -> Vec<Metric> {
        let mut got = Vec::new();
        message.for_each_metric(|m| got.push(m.to_metric()));
        got
    }

    #[test]
    fn data_is_read_where_it_lies_and_shows_what_prost_decodes() {
        let values = [
            MetricValue::Int(u32::MAX),
            MetricValue::Long(u64::MAX),
            MetricValue::Float(f32::NAN),
            MetricValue::Double(-21.5),
            MetricValue::Boolean(true),
            MetricValue::String("héllo".into()),
        ];
        let metrics = values
            .iter()
            .enumerate()
            .map(|(k, v)| Metric {
                name: (k % 2 == 0).then(|| format!("M/{k}")),
                alias: Some(k as u64),
                timestamp: (k % 3 == 0).then_some(k as u64),
                datatype: Some(10),
                is_null: Some(k == 4),
                value: Some(v.clone()),
                ..Default::default()
            })
            .collect();
        let payload = Payload {
            timestamp: Some(1_700_000_000_000),
            seq: Some(7),
            metrics,
            ..Default::default()
        };
        let bytes = encode(&payload);
        let prost = decode_plain(&bytes).unwrap();
        for kind in [MessageType::NData, MessageType::DData] {
            let message = Message::read(kind, &bytes, 0, &mut MetricRoom::default()).unwrap();
            assert!(matches!(message, Message::Wire(_)), "{kind:?}");
            assert_eq!(message.timestamp(), prost.timestamp);
            assert_eq!(message.seq(), prost.seq);
            // Compared as bytes: NaN is not equal to itself.
            let read = Payload {
                metrics: metrics_of(&message),
                ..prost.clone()
            };
            assert_eq!(encode(&read), encode(&prost), "{kind:?}");
            assert_eq!(encode(&message.payload()), encode(&prost), "{kind:?}");
            assert_eq!(encode(&message.into_payload()), encode(&prost), "{kind:?}");
        }
        // Births and deaths are decoded, and so is data of another form; both show the same.
        let birth =
            Message::read(MessageType::NBirth, &bytes, 0, &mut MetricRoom::default()).unwrap();
        assert!(matches!(birth, Message::Decoded(_)));
        let mut rare = prost.clone();
        rare.metrics[0].metadata = Some(Box::new(MetaData::default()));
        let rare_bytes = encode(&rare);
        let rare_data = Message::read(
            MessageType::NData,
            &rare_bytes,
            0,
            &mut MetricRoom::default(),
        )
        .unwrap();
        assert!(matches!(rare_data, Message::Decoded(_)));
        // Metadata aside, which a metric read for its value never needs.
        let shown = Payload {
            metrics: metrics_of(&rare_data),
            ..prost.clone()
        };
        assert_eq!(encode(&shown), encode(&prost));
    }
}
