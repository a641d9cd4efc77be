//! A received metric as the host reads it, borrowed from wherever it lies: from the wire for a
//! payload of the common form (`common_payload.rs`), from a decoded [`Metric`] otherwise.
//! Applying a data message reads each metric so, instead of building a `Metric` (its name
//! copied into a `String`) and dropping it again: that was a third of an NDATA's cost.

use super::payload::{DataSet, Metric, MetricValue, Template};

/// The fields of a metric the host reads; `None` where the metric has no such field.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct MetricRef<'a> {
    pub name: Option<&'a str>,
    pub alias: Option<u64>,
    pub timestamp: Option<u64>,
    pub datatype: Option<u32>,
    pub is_historical: Option<bool>,
    pub is_transient: Option<bool>,
    pub is_null: Option<bool>,
    pub value: Option<ValueRef<'a>>,
}

/// A metric's value, borrowed; one variant per field of the value one-of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ValueRef<'a> {
    Int(u32),
    Long(u64),
    Float(f32),
    Double(f64),
    Boolean(bool),
    String(&'a str),
    Bytes(&'a [u8]),
    DataSet(&'a DataSet),
    Template(&'a Template),
}

impl<'a> From<&'a MetricValue> for ValueRef<'a> {
    fn from(v: &'a MetricValue) -> ValueRef<'a> {
        match v {
            MetricValue::Int(i) => ValueRef::Int(*i),
            MetricValue::Long(l) => ValueRef::Long(*l),
            MetricValue::Float(f) => ValueRef::Float(*f),
            MetricValue::Double(d) => ValueRef::Double(*d),
            MetricValue::Boolean(b) => ValueRef::Boolean(*b),
            MetricValue::String(s) => ValueRef::String(s),
            MetricValue::Bytes(b) => ValueRef::Bytes(b),
            MetricValue::DataSet(d) => ValueRef::DataSet(d),
            MetricValue::Template(t) => ValueRef::Template(t),
        }
    }
}

impl<'a> From<&'a Metric> for MetricRef<'a> {
    fn from(m: &'a Metric) -> MetricRef<'a> {
        MetricRef {
            name: m.name.as_deref(),
            alias: m.alias,
            timestamp: m.timestamp,
            datatype: m.datatype,
            is_historical: m.is_historical,
            is_transient: m.is_transient,
            is_null: m.is_null,
            value: m.value.as_ref().map(ValueRef::from),
        }
    }
}

impl ValueRef<'_> {
    pub(crate) fn to_owned(self) -> MetricValue {
        match self {
            ValueRef::Int(i) => MetricValue::Int(i),
            ValueRef::Long(l) => MetricValue::Long(l),
            ValueRef::Float(f) => MetricValue::Float(f),
            ValueRef::Double(d) => MetricValue::Double(d),
            ValueRef::Boolean(b) => MetricValue::Boolean(b),
            ValueRef::String(s) => MetricValue::String(s.to_owned()),
            ValueRef::Bytes(b) => MetricValue::Bytes(b.to_vec()),
            ValueRef::DataSet(d) => MetricValue::DataSet(Box::new(d.clone())),
            ValueRef::Template(t) => MetricValue::Template(Box::new(t.clone())),
        }
    }
}

impl MetricRef<'_> {
    /// The metric as prost would have decoded it (metadata and properties aside, which a
    /// borrowed metric never carries).
    pub(crate) fn to_metric(&self) -> Metric {
        Metric {
            name: self.name.map(String::from),
            alias: self.alias,
            timestamp: self.timestamp,
            datatype: self.datatype,
            is_historical: self.is_historical,
            is_transient: self.is_transient,
            is_null: self.is_null,
            value: self.value.map(ValueRef::to_owned),
            ..Default::default()
        }
    }
}
