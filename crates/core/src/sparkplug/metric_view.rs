//! A received metric as the host reads it, borrowed from wherever it lies: from the wire for a
//! payload of the common form (`common_payload.rs`), from a decoded [`Metric`] otherwise.
//! Applying a data message reads each metric so, instead of building a `Metric` (its name
//! copied into a `String`) and dropping it again: that was a third of an NDATA's cost. (Not the
//! edge node's `edge_node::MetricRef`, which names one of the line's own metrics.)

use super::payload::{DataSet, Metric, MetricValue, Template};

/// The fields of a metric the host reads; `None` where the metric has no such field.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct MetricView<'a> {
    pub name: Option<&'a str>,
    pub alias: Option<u64>,
    pub timestamp: Option<u64>,
    pub datatype: Option<u32>,
    pub is_historical: Option<bool>,
    pub is_transient: Option<bool>,
    pub is_null: Option<bool>,
    pub value: Option<ValueView<'a>>,
}

/// A metric's value, borrowed; one variant per field of the value one-of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ValueView<'a> {
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

impl<'a> From<&'a MetricValue> for ValueView<'a> {
    fn from(v: &'a MetricValue) -> ValueView<'a> {
        match v {
            MetricValue::Int(i) => ValueView::Int(*i),
            MetricValue::Long(l) => ValueView::Long(*l),
            MetricValue::Float(f) => ValueView::Float(*f),
            MetricValue::Double(d) => ValueView::Double(*d),
            MetricValue::Boolean(b) => ValueView::Boolean(*b),
            MetricValue::String(s) => ValueView::String(s),
            MetricValue::Bytes(b) => ValueView::Bytes(b),
            MetricValue::DataSet(d) => ValueView::DataSet(d),
            MetricValue::Template(t) => ValueView::Template(t),
        }
    }
}

impl<'a> From<&'a Metric> for MetricView<'a> {
    fn from(m: &'a Metric) -> MetricView<'a> {
        MetricView {
            name: m.name.as_deref(),
            alias: m.alias,
            timestamp: m.timestamp,
            datatype: m.datatype,
            is_historical: m.is_historical,
            is_transient: m.is_transient,
            is_null: m.is_null,
            value: m.value.as_ref().map(ValueView::from),
        }
    }
}

impl ValueView<'_> {
    pub(crate) fn to_owned(self) -> MetricValue {
        match self {
            ValueView::Int(i) => MetricValue::Int(i),
            ValueView::Long(l) => MetricValue::Long(l),
            ValueView::Float(f) => MetricValue::Float(f),
            ValueView::Double(d) => MetricValue::Double(d),
            ValueView::Boolean(b) => MetricValue::Boolean(b),
            ValueView::String(s) => MetricValue::String(s.to_owned()),
            ValueView::Bytes(b) => MetricValue::Bytes(b.to_vec()),
            ValueView::DataSet(d) => MetricValue::DataSet(Box::new(d.clone())),
            ValueView::Template(t) => MetricValue::Template(Box::new(t.clone())),
        }
    }
}

impl MetricView<'_> {
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
            value: self.value.map(ValueView::to_owned),
            ..Default::default()
        }
    }
}
