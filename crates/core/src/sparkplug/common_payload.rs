//! The common Sparkplug B payload read by hand: a time stamp, a seq and metrics made of a name or
//! an alias, a time stamp, a data type, the three flags and a scalar value (what NBIRTH, NDATA
//! and DDATA of edge nodes carry). prost builds the same structs through a generic merge per
//! field and per metric, which cost as much as everything else the line does with an NDATA.
//! Data messages are not even built into a `Payload`: their metrics are read into borrowed
//! views ([`MetricView`]) that the line applies (`received.rs`).
//!
//! It answers only when it is sure: any other field (metadata, properties, data sets,
//! templates, bytes, uuid, body: a compressed payload), a wire type that does not fit its field,
//! a varint prost would refuse, text that is not UTF-8 or a length past the end, and it returns
//! `None`: prost then reads the payload, with its rules and its error texts.

use super::metric_view::{MetricView, ValueView};
use super::payload::{Payload, MAX_PAYLOAD};

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// A field's key as written: its number, then its wire type in the low three bits. A key is
/// matched whole, so a field number past protobuf's range, or a known field with another wire
/// type, is simply not one of these (and left to prost).
const fn key(field: u64, wire_type: u64) -> u64 {
    field << 3 | wire_type
}

/// The keys of a payload's fields read here.
mod payload_key {
    use super::*;
    pub const TIMESTAMP: u64 = key(1, VARINT);
    pub const METRIC: u64 = key(2, LEN);
    pub const SEQ: u64 = key(3, VARINT);
}

/// The keys of a metric's fields read here (10 to 15: the scalar values of the one-of).
mod metric_key {
    use super::*;
    pub const NAME: u64 = key(1, LEN);
    pub const ALIAS: u64 = key(2, VARINT);
    pub const TIMESTAMP: u64 = key(3, VARINT);
    pub const DATATYPE: u64 = key(4, VARINT);
    pub const IS_HISTORICAL: u64 = key(5, VARINT);
    pub const IS_TRANSIENT: u64 = key(6, VARINT);
    pub const IS_NULL: u64 = key(7, VARINT);
    pub const INT: u64 = key(10, VARINT);
    pub const LONG: u64 = key(11, VARINT);
    pub const FLOAT: u64 = key(12, FIXED32);
    pub const DOUBLE: u64 = key(13, FIXED64);
    pub const BOOLEAN: u64 = key(14, VARINT);
    pub const STRING: u64 = key(15, LEN);
}

/// A payload of the common form, read whole, its metrics borrowing their names and texts from
/// where they lie.
#[derive(Debug)]
pub(crate) struct Wire<'b> {
    pub timestamp: Option<u64>,
    pub seq: Option<u64>,
    pub metrics: Vec<MetricView<'b>>,
}

impl<'b> Wire<'b> {
    /// `bytes` when they have the common form (see the module's text) and are no longer than
    /// prost is allowed to read; else `None`. Read whole before any metric is applied, since
    /// prost refuses a payload whole. The metrics go into `room`'s vector, if it has one.
    pub(crate) fn read(bytes: &'b [u8], room: &mut MetricRoom) -> Option<Wire<'b>> {
        if bytes.len() > MAX_PAYLOAD {
            return None;
        }
        let mut metrics = room.take();
        // Room for the metrics up front, as payload::decode_plain makes it.
        metrics.reserve((bytes.len() / 8).min(4096));
        let mut wire = Wire {
            timestamp: None,
            seq: None,
            metrics,
        };
        let mut r = Reader(bytes);
        while !r.0.is_empty() {
            match r.varint()? {
                payload_key::TIMESTAMP => wire.timestamp = Some(r.varint()?),
                payload_key::METRIC => {
                    // Read in place: returned or pushed, a metric was copied out field by
                    // field, which cost as much as reading it.
                    let body = r.len_delimited()?;
                    wire.metrics.push(MetricView::default());
                    metric(body, wire.metrics.last_mut()?)?;
                }
                payload_key::SEQ => wire.seq = Some(r.varint()?),
                _ => return None,
            }
        }
        Some(wire)
    }

    /// The payload as prost would decode it.
    pub(crate) fn to_payload(&self) -> Payload {
        Payload {
            timestamp: self.timestamp,
            seq: self.seq,
            metrics: self.metrics.iter().map(MetricView::to_metric).collect(),
            ..Default::default()
        }
    }
}

/// The vector of an earlier payload's metrics, kept empty for the next one: a data message then
/// allocates nothing (its metrics are larger than the allocator's small sizes, so each vector
/// cost a few hundred instructions).
#[derive(Debug, Default)]
pub(crate) struct MetricRoom(Vec<MetricView<'static>>);

impl MetricRoom {
    fn take<'b>(&mut self) -> Vec<MetricView<'b>> {
        relabel(std::mem::take(&mut self.0))
    }

    /// Keeps the vector of `wire`'s metrics for the next payload, unless a payload of more
    /// than 4,096 metrics made it large: that one is freed, not kept for the line's life.
    pub(crate) fn keep(&mut self, wire: Wire<'_>) {
        if wire.metrics.capacity() <= 4096 {
            self.0 = relabel(wire.metrics);
        }
    }
}

/// The allocation of `metrics`, emptied, for metrics of another lifetime. Collecting a vector's
/// own iterator reuses its allocation in place (the standard library does so for `filter_map`
/// over `vec::IntoIter` of one layout); were it ever not to, only an allocation would be lost.
// `filter` cannot change the elements' lifetime, which is the point here.
#[allow(clippy::unnecessary_filter_map)]
fn relabel<'a, 'b>(mut metrics: Vec<MetricView<'a>>) -> Vec<MetricView<'b>> {
    metrics.clear();
    metrics.into_iter().filter_map(|_| None).collect()
}

/// The payload of `bytes` when it has the common form (see the module's text), as prost would
/// decode it; else `None`.
pub(crate) fn decode(bytes: &[u8]) -> Option<Payload> {
    Some(Wire::read(bytes, &mut MetricRoom::default())?.to_payload())
}

/// Reads one metric into `m`, which starts empty; a later field replaces an earlier one of the
/// same number, as in prost (and in the `value` one-of, a later value of any kind replaces the
/// earlier).
fn metric<'b>(bytes: &'b [u8], m: &mut MetricView<'b>) -> Option<()> {
    let mut r = Reader(bytes);
    while !r.0.is_empty() {
        use metric_key::*;
        match r.varint()? {
            NAME => m.name = Some(text(r.len_delimited()?)?),
            ALIAS => m.alias = Some(r.varint()?),
            TIMESTAMP => m.timestamp = Some(r.varint()?),
            // prost's uint32 keeps the low 32 bits of the varint, and a bool is "not zero".
            DATATYPE => m.datatype = Some(r.varint()? as u32),
            IS_HISTORICAL => m.is_historical = Some(r.varint()? != 0),
            IS_TRANSIENT => m.is_transient = Some(r.varint()? != 0),
            IS_NULL => m.is_null = Some(r.varint()? != 0),
            INT => m.value = Some(ValueView::Int(r.varint()? as u32)),
            LONG => m.value = Some(ValueView::Long(r.varint()?)),
            FLOAT => m.value = Some(ValueView::Float(f32::from_le_bytes(r.fixed()?))),
            DOUBLE => m.value = Some(ValueView::Double(f64::from_le_bytes(r.fixed()?))),
            BOOLEAN => m.value = Some(ValueView::Boolean(r.varint()? != 0)),
            STRING => m.value = Some(ValueView::String(text(r.len_delimited()?)?)),
            _ => return None,
        }
    }
    Some(())
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// The unread rest of a message.
struct Reader<'b>(&'b [u8]);

impl<'b> Reader<'b> {
    /// A varint of at most 10 bytes whose 10th byte is 0 or 1 (prost refuses the others).
    fn varint(&mut self) -> Option<u64> {
        // One byte, the common case: every key, alias, data type and flag of a usual metric.
        if let Some((&b, rest)) = self.0.split_first() {
            if b < 0x80 {
                self.0 = rest;
                return Some(u64::from(b));
            }
        }
        let mut value = 0u64;
        for (i, &b) in self.0.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return None;
                }
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn len_delimited(&mut self) -> Option<&'b [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (field, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(field)
    }

    fn fixed<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (field, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparkplug::payload::{encode, MetaData, Metric, MetricValue};
    use prost::Message;

    fn by_prost(bytes: &[u8]) -> Result<Payload, prost::DecodeError> {
        Payload::decode(bytes)
    }

    fn metric(name: Option<&str>, alias: Option<u64>, value: Option<MetricValue>) -> Metric {
        Metric {
            name: name.map(String::from),
            alias,
            value,
            ..Default::default()
        }
    }

    #[test]
    fn common_payloads_decode_as_prost_decodes_them() {
        let values = [
            MetricValue::Int(7),
            MetricValue::Int(u32::MAX),
            MetricValue::Long(u64::MAX),
            MetricValue::Float(-1.25),
            MetricValue::Float(f32::NAN),
            MetricValue::Double(21.5),
            MetricValue::Double(f64::INFINITY),
            MetricValue::Boolean(true),
            MetricValue::Boolean(false),
            MetricValue::String("héllo".into()),
            MetricValue::String(String::new()),
        ];
        let mut payloads = vec![Payload::default()];
        for (k, v) in values.iter().enumerate() {
            let k = k as u64;
            payloads.push(Payload {
                timestamp: Some(1_700_000_000_000 + k),
                seq: Some(k % 256),
                metrics: vec![
                    metric(Some("M/1"), Some(k), Some(v.clone())),
                    Metric {
                        timestamp: Some(k),
                        datatype: Some(10),
                        is_historical: Some(k % 2 == 0),
                        is_transient: Some(false),
                        is_null: Some(k % 3 == 0),
                        ..metric(None, Some(k + 1), Some(v.clone()))
                    },
                    metric(Some(""), None, None),
                ],
                ..Default::default()
            });
        }
        for p in payloads {
            let bytes = encode(&p);
            let fast = decode(&bytes).expect("a common payload");
            let slow = by_prost(&bytes).unwrap();
            // Compared as bytes: NaN is not equal to itself.
            assert_eq!(encode(&fast), encode(&slow), "{p:?}");
            assert_eq!(fast.metrics.len(), p.metrics.len());
        }
    }

    #[test]
    fn anything_else_is_left_to_prost() {
        let rare = [
            Payload {
                uuid: Some("SPBV1.0_COMPRESSED".into()),
                body: Some(vec![1]),
                ..Default::default()
            },
            Payload {
                metrics: vec![Metric {
                    metadata: Some(Box::new(MetaData::default())),
                    ..metric(Some("a"), None, None)
                }],
                ..Default::default()
            },
            Payload {
                metrics: vec![metric(
                    Some("b"),
                    None,
                    Some(MetricValue::Bytes(vec![1, 2])),
                )],
                ..Default::default()
            },
        ];
        for p in rare {
            assert_eq!(decode(&encode(&p)), None, "{p:?}");
        }
        let odd: [&[u8]; 9] = [
            &[0x08],                         // a varint cut short
            &[0x12, 0x05, 0x10, 0x01],       // a metric longer than the payload
            &[0x12, 0x02, 0x0a, 0x01],       // a name longer than its metric
            &[0x12, 0x03, 0x0a, 0x01, 0xff], // a name that is not UTF-8
            &[0x09, 0, 0, 0, 0, 0, 0, 0, 0], // timestamp as fixed64
            &[0x12, 0x02, 0x68, 0x00],       // double as varint
            &[0x00, 0x01],                   // field 0
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ], // 10th byte 2
            &[0x22, 0x00],                   // uuid (4)
        ];
        for bytes in odd {
            assert_eq!(decode(bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn repeated_fields_end_as_in_prost() {
        // timestamp twice; one metric with alias twice and an Int, then a Double value.
        let bytes = [
            0x08, 0x01, 0x08, 0x02, // timestamp 1, then 2
            0x12, 0x0f, 0x10, 0x03, 0x10, 0x04, 0x50, 0x05, // alias 3, 4, int 5
            0x69, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // double 1.5
            0x18, 0xff, 0x01, // seq 255
        ];
        let fast = decode(&bytes).expect("a common payload");
        assert_eq!(Ok(fast.clone()), by_prost(&bytes));
        assert_eq!(fast.timestamp, Some(2));
        assert_eq!(fast.metrics[0].alias, Some(4));
        assert_eq!(fast.metrics[0].value, Some(MetricValue::Double(1.5)));
        assert_eq!(fast.seq, Some(255));
        // The largest varint prost reads.
        let mut max = vec![0x08];
        max.extend([0xff; 9]);
        max.push(0x01);
        assert_eq!(decode(&max).map(|p| p.timestamp), Some(Some(u64::MAX)));
        assert_eq!(by_prost(&max).unwrap().timestamp, Some(u64::MAX));
    }
}
