//! The Sparkplug B payload as protobuf messages, declared by hand from the field numbers of the
//! Sparkplug 3.0 specification (no protoc, no build script). Fields the line does not use are
//! still declared, so that a payload decodes whole; extension fields are skipped as unknown.

use prost::Message;

/// Largest payload the line decodes; a larger one is refused before prost reads it.
pub(crate) const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// A Sparkplug B payload: the message of every NBIRTH, NDATA, NDEATH, NCMD, DBIRTH, DDATA,
/// DDEATH and DCMD.
#[derive(Clone, PartialEq, Message)]
pub struct Payload {
    /// Milliseconds since the Unix epoch, UTC.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// 0..255, per edge node; absent in NDEATH and in commands.
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
    #[prost(string, optional, tag = "4")]
    pub uuid: Option<String>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub body: Option<Vec<u8>>,
}

/// One metric: its name (births, commands) or alias (data), its data type and its value.
#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    #[prost(bool, optional, tag = "5")]
    pub is_historical: Option<bool>,
    #[prost(bool, optional, tag = "6")]
    pub is_transient: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    // The rare parts are boxed: a metric is built and moved for every one received, and
    // inline they made it several hundred bytes.
    #[prost(message, optional, boxed, tag = "8")]
    pub metadata: Option<Box<MetaData>>,
    #[prost(message, optional, boxed, tag = "9")]
    pub properties: Option<Box<PropertySet>>,
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16, 17, 18")]
    pub value: Option<MetricValue>,
}

/// The value of a metric; which field carries which data type is in `datatype.rs`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetricValue {
    #[prost(uint32, tag = "10")]
    Int(u32),
    #[prost(uint64, tag = "11")]
    Long(u64),
    #[prost(float, tag = "12")]
    Float(f32),
    #[prost(double, tag = "13")]
    Double(f64),
    #[prost(bool, tag = "14")]
    Boolean(bool),
    #[prost(string, tag = "15")]
    String(String),
    #[prost(bytes = "vec", tag = "16")]
    Bytes(Vec<u8>),
    #[prost(message, boxed, tag = "17")]
    DataSet(Box<DataSet>),
    #[prost(message, boxed, tag = "18")]
    Template(Box<Template>),
}

/// Describes a metric's content (multi-part files, content type); carried, not interpreted.
#[derive(Clone, PartialEq, Message)]
pub struct MetaData {
    #[prost(bool, optional, tag = "1")]
    pub is_multi_part: Option<bool>,
    #[prost(string, optional, tag = "2")]
    pub content_type: Option<String>,
    #[prost(uint64, optional, tag = "3")]
    pub size: Option<u64>,
    #[prost(uint64, optional, tag = "4")]
    pub seq: Option<u64>,
    #[prost(string, optional, tag = "5")]
    pub file_name: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub file_type: Option<String>,
    #[prost(string, optional, tag = "7")]
    pub md5: Option<String>,
    #[prost(string, optional, tag = "8")]
    pub description: Option<String>,
}

/// Properties of a metric (engineering units, quality...): keys and values side by side.
#[derive(Clone, PartialEq, Message)]
pub struct PropertySet {
    #[prost(string, repeated, tag = "1")]
    pub keys: Vec<String>,
    #[prost(message, repeated, tag = "2")]
    pub values: Vec<PropertyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PropertyValue {
    #[prost(uint32, optional, tag = "1")]
    pub datatype: Option<u32>,
    #[prost(bool, optional, tag = "2")]
    pub is_null: Option<bool>,
    #[prost(oneof = "PropertyValueKind", tags = "3, 4, 5, 6, 7, 8, 9, 10")]
    pub value: Option<PropertyValueKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PropertyValueKind {
    #[prost(uint32, tag = "3")]
    Int(u32),
    #[prost(uint64, tag = "4")]
    Long(u64),
    #[prost(float, tag = "5")]
    Float(f32),
    #[prost(double, tag = "6")]
    Double(f64),
    #[prost(bool, tag = "7")]
    Boolean(bool),
    #[prost(string, tag = "8")]
    String(String),
    #[prost(message, tag = "9")]
    PropertySet(PropertySet),
    #[prost(message, tag = "10")]
    PropertySets(PropertySetList),
}

#[derive(Clone, PartialEq, Message)]
pub struct PropertySetList {
    #[prost(message, repeated, tag = "1")]
    pub propertyset: Vec<PropertySet>,
}

/// A table: column names and types, then rows of values.
#[derive(Clone, PartialEq, Message)]
pub struct DataSet {
    #[prost(uint64, optional, tag = "1")]
    pub num_of_columns: Option<u64>,
    #[prost(string, repeated, tag = "2")]
    pub columns: Vec<String>,
    #[prost(uint32, repeated, packed = "false", tag = "3")]
    pub types: Vec<u32>,
    #[prost(message, repeated, tag = "4")]
    pub rows: Vec<Row>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Row {
    #[prost(message, repeated, tag = "1")]
    pub elements: Vec<DataSetValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct DataSetValue {
    #[prost(oneof = "CellValue", tags = "1, 2, 3, 4, 5, 6")]
    pub value: Option<CellValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum CellValue {
    #[prost(uint32, tag = "1")]
    Int(u32),
    #[prost(uint64, tag = "2")]
    Long(u64),
    #[prost(float, tag = "3")]
    Float(f32),
    #[prost(double, tag = "4")]
    Double(f64),
    #[prost(bool, tag = "5")]
    Boolean(bool),
    #[prost(string, tag = "6")]
    String(String),
}

/// A user-defined type (a definition in a birth) or an instance of one: member metrics and
/// parameters.
#[derive(Clone, PartialEq, Message)]
pub struct Template {
    #[prost(string, optional, tag = "1")]
    pub version: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    #[prost(message, repeated, tag = "3")]
    pub parameters: Vec<Parameter>,
    #[prost(string, optional, tag = "4")]
    pub template_ref: Option<String>,
    #[prost(bool, optional, tag = "5")]
    pub is_definition: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Parameter {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(uint32, optional, tag = "2")]
    pub datatype: Option<u32>,
    #[prost(oneof = "ParameterValue", tags = "3, 4, 5, 6, 7, 8")]
    pub value: Option<ParameterValue>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ParameterValue {
    #[prost(uint32, tag = "3")]
    Int(u32),
    #[prost(uint64, tag = "4")]
    Long(u64),
    #[prost(float, tag = "5")]
    Float(f32),
    #[prost(double, tag = "6")]
    Double(f64),
    #[prost(bool, tag = "7")]
    Boolean(bool),
    #[prost(string, tag = "8")]
    String(String),
}

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    #[error("the payload is {len} bytes, more than the {MAX_PAYLOAD} bytes a Sparkplug payload may have here")]
    TooLarge { len: usize },
    #[error("the payload is not a Sparkplug B protobuf message: {reason}")]
    NotProtobuf { reason: String },
    #[error(
        "the payload is compressed ({COMPRESSED}), and the line's max_decompressed_size is 0, so \
         compressed payloads are not inflated"
    )]
    Compressed,
    #[error("the compressed payload names algorithm '{algorithm}'; GZIP and DEFLATE are read")]
    UnknownAlgorithm { algorithm: String },
    #[error("the compressed payload ({algorithm}) cannot be inflated: {reason}")]
    Inflate {
        algorithm: &'static str,
        reason: String,
    },
    #[error(
        "the compressed payload inflates to more than {limit} bytes (max_decompressed_size); it \
         is refused"
    )]
    InflatedTooLarge { limit: usize },
    #[error("the compressed payload holds another compressed payload, which is not read")]
    CompressedTwice,
}

/// The `uuid` of a compressed payload, whose `body` holds the real one.
pub(crate) const COMPRESSED: &str = "SPBV1.0_COMPRESSED";

/// Decodes a payload received from the broker; a compressed one is refused (compression.rs
/// reads those, within the line's bound).
pub fn decode(bytes: &[u8]) -> Result<Payload, PayloadError> {
    let payload = decode_plain(bytes)?;
    if payload.uuid.as_deref() == Some(COMPRESSED) {
        return Err(PayloadError::Compressed);
    }
    Ok(payload)
}

/// Decodes one protobuf payload as it is, compressed or not.
pub(crate) fn decode_plain(bytes: &[u8]) -> Result<Payload, PayloadError> {
    if bytes.len() > MAX_PAYLOAD {
        return Err(PayloadError::TooLarge { len: bytes.len() });
    }
    // Room for the metrics up front: growing the vector one doubling at a time moved every
    // metric decoded so far, several times a message. A metric takes at least 8 bytes on the
    // wire in practice (alias or name, type, value); the cap keeps a hostile length harmless.
    let mut payload = Payload::default();
    payload.metrics.reserve((bytes.len() / 8).min(4096));
    payload
        .merge(bytes)
        .map_err(|e| PayloadError::NotProtobuf {
            reason: e.to_string(),
        })?;
    Ok(payload)
}

/// Encodes a payload to send (commands).
pub fn encode(payload: &Payload) -> Vec<u8> {
    payload.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, datatype: u32, value: MetricValue) -> Metric {
        Metric {
            name: Some(name.into()),
            datatype: Some(datatype),
            value: Some(value),
            ..Default::default()
        }
    }

    #[test]
    fn field_numbers_are_the_specifications() {
        // timestamp 1 = 1000, metrics 2 = { name 1 = "a", datatype 4 = 3, int_value 10 = 5 },
        // seq 3 = 7: the bytes as any protobuf encoder writes them.
        let bytes = [
            0x08, 0xe8, 0x07, // timestamp
            0x12, 0x07, 0x0a, 0x01, b'a', 0x20, 0x03, 0x50, 0x05, // metric
            0x18, 0x07, // seq
        ];
        let p = decode(&bytes).unwrap();
        assert_eq!(p.timestamp, Some(1000));
        assert_eq!(p.seq, Some(7));
        assert_eq!(p.metrics, vec![metric("a", 3, MetricValue::Int(5))]);
        assert_eq!(encode(&p), bytes);
    }

    #[test]
    fn nested_values_round_trip() {
        let p = Payload {
            timestamp: Some(1),
            seq: Some(0),
            metrics: vec![
                metric(
                    "table",
                    16,
                    MetricValue::DataSet(Box::new(DataSet {
                        num_of_columns: Some(2),
                        columns: vec!["a".into(), "b".into()],
                        types: vec![3, 12],
                        rows: vec![Row {
                            elements: vec![
                                DataSetValue {
                                    value: Some(CellValue::Int(1)),
                                },
                                DataSetValue {
                                    value: Some(CellValue::String("x".into())),
                                },
                            ],
                        }],
                    })),
                ),
                metric(
                    "motor",
                    19,
                    MetricValue::Template(Box::new(Template {
                        template_ref: Some("Motor".into()),
                        metrics: vec![metric("rpm", 10, MetricValue::Double(1.5))],
                        parameters: vec![Parameter {
                            name: Some("max".into()),
                            datatype: Some(3),
                            value: Some(ParameterValue::Int(9)),
                        }],
                        ..Default::default()
                    })),
                ),
            ],
            ..Default::default()
        };
        assert_eq!(decode(&encode(&p)).unwrap(), p);
    }

    #[test]
    fn compressed_payloads_are_refused() {
        let p = Payload {
            uuid: Some(COMPRESSED.into()),
            body: Some(vec![1, 2, 3]),
            ..Default::default()
        };
        assert_eq!(decode(&encode(&p)), Err(PayloadError::Compressed));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&[0xff_u8, 0xff, 0xff][..], &[0x12, 0x05, 0x0a], &[0x0a]] {
            let e = decode(bytes).unwrap_err().to_string();
            assert!(e.contains("not a Sparkplug B protobuf"), "{e}");
        }
    }
}
