//! Sparkplug data types, and how a metric's value becomes a tag value and a written tag value
//! becomes a metric's value. Scalars follow the JSON rules (json_value.rs): a conversion that
//! loses information fails, and the tag turns invalid with a warning. DataSet and Template
//! metrics become their JSON text, for text tags only.

use serde_json::{json, Map, Value as Json};

use super::metric_view::ValueView;
use super::payload::{CellValue, DataSet, Metric, MetricValue, ParameterValue, Template};
use crate::json_extract::View;
use crate::json_value::{from_json, from_json_text};
use crate::text::hex;
use crate::value::{brief_number, f32_as_decimal, format_time_ns, Value, ValueKind, ValueType};

/// The data types of the Sparkplug 3.0 specification, by their numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float,
    Double,
    Boolean,
    String,
    DateTime,
    Text,
    Uuid,
    DataSet,
    Bytes,
    File,
    Template,
    /// A number the line does not know (array types, property types, extensions).
    Other(u32),
}

impl DataType {
    pub(crate) fn from_code(code: u32) -> DataType {
        use DataType::*;
        match code {
            1 => Int8,
            2 => Int16,
            3 => Int32,
            4 => Int64,
            5 => UInt8,
            6 => UInt16,
            7 => UInt32,
            8 => UInt64,
            9 => Float,
            10 => Double,
            11 => Boolean,
            12 => String,
            13 => DateTime,
            14 => Text,
            15 => Uuid,
            16 => DataSet,
            17 => Bytes,
            18 => File,
            19 => Template,
            n => Other(n),
        }
    }

    pub(crate) fn code(self) -> u32 {
        use DataType::*;
        match self {
            Int8 => 1,
            Int16 => 2,
            Int32 => 3,
            Int64 => 4,
            UInt8 => 5,
            UInt16 => 6,
            UInt32 => 7,
            UInt64 => 8,
            Float => 9,
            Double => 10,
            Boolean => 11,
            String => 12,
            DateTime => 13,
            Text => 14,
            Uuid => 15,
            DataSet => 16,
            Bytes => 17,
            File => 18,
            Template => 19,
            Other(n) => n,
        }
    }

    /// The range of an integer type, `None` for other types.
    fn integer_range(self) -> Option<(i128, i128)> {
        use DataType::*;
        Some(match self {
            Int8 => (i8::MIN.into(), i8::MAX.into()),
            Int16 => (i16::MIN.into(), i16::MAX.into()),
            Int32 => (i32::MIN.into(), i32::MAX.into()),
            Int64 => (i64::MIN.into(), i64::MAX.into()),
            UInt8 => (0, u8::MAX.into()),
            UInt16 => (0, u16::MAX.into()),
            UInt32 => (0, u32::MAX.into()),
            UInt64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataType::Uuid => f.write_str("UUID"),
            DataType::Other(n) => write!(f, "data type {n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// An integer metric as a number: signed types travel as two's complement in the unsigned
/// fields (32 bits in `int_value`, 64 in `long_value`; an Int8 or Int16 sent as its own width,
/// as some edge nodes do, is read too).
fn integer(raw: u64, from_int_field: bool, dt: DataType) -> Result<i128, String> {
    let value: i128 = match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 if from_int_field => {
            let wide = i128::from(raw as u32 as i32);
            match dt {
                DataType::Int8 if !(-128..=127).contains(&wide) && raw <= 0xff => {
                    i128::from(raw as u8 as i8)
                }
                DataType::Int16 if !(-32768..=32767).contains(&wide) && raw <= 0xffff => {
                    i128::from(raw as u16 as i16)
                }
                _ => wide,
            }
        }
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            i128::from(raw as i64)
        }
        _ => i128::from(raw),
    };
    match dt.integer_range() {
        Some((min, max)) if value < min || value > max => {
            Err(format!("{value} is out of the range of {dt}"))
        }
        _ => Ok(value),
    }
}

fn integer_json(v: i128) -> Json {
    match i64::try_from(v) {
        Ok(i) => Json::from(i),
        Err(_) => u64::try_from(v).map_or(Json::Null, Json::from),
    }
}

/// The metric's value for a tag of type `ty`, by the data type its birth declared.
#[inline]
pub(crate) fn to_tag_value(
    value: Option<ValueView<'_>>,
    dt: DataType,
    ty: ValueType,
) -> Result<Value, String> {
    // The common case (scenario 8) in the caller, as `converted` would give it: a finite Double
    // into a float tag. Out of line, the call's set-up cost twice the conversion.
    match value {
        Some(ValueView::Double(f)) if f.is_finite() && ty.kind() == ValueKind::Float => {
            Ok(Value::Float(f))
        }
        _ => converted(value, dt, ty),
    }
}

/// [`to_tag_value`] of every value.
fn converted(value: Option<ValueView<'_>>, dt: DataType, ty: ValueType) -> Result<Value, String> {
    let Some(value) = value else {
        return Err("the metric carries no value".into());
    };
    // The value's text is made only for a text tag: no allocation for a number into Ai.
    let as_text = ty.kind() == ValueKind::Text;
    let (json, text) = match value {
        ValueView::Int(raw) if dt == DataType::DateTime => return date_time(u64::from(raw), ty),
        ValueView::Long(raw) if dt == DataType::DateTime => return date_time(raw, ty),
        ValueView::Int(raw) => (integer_json(integer(u64::from(raw), true, dt)?), None),
        ValueView::Long(raw) => (integer_json(integer(raw, false, dt)?), None),
        ValueView::Float(f) => {
            if !f.is_finite() {
                return Err(format!("{f} is not a finite number"));
            }
            (
                Json::from(f32_as_decimal(f)),
                as_text.then(|| f.to_string()),
            )
        }
        ValueView::Double(f) => {
            if !f.is_finite() {
                return Err(format!("{f} is not a finite number"));
            }
            (Json::from(f), as_text.then(|| f.to_string()))
        }
        ValueView::Boolean(b) => (Json::Bool(b), None),
        ValueView::String(s) => (Json::String(s.to_owned()), None),
        ValueView::Bytes(b) if ty.kind() == ValueKind::Text => {
            return Ok(Value::Text(hex(b)));
        }
        ValueView::Bytes(_) => return Err(format!("{dt} only fits a text tag (as hex)")),
        ValueView::DataSet(_) | ValueView::Template(_) if ty.kind() != ValueKind::Text => {
            return Err(format!("{dt} only fits a text tag (as JSON)"));
        }
        ValueView::DataSet(d) => return Ok(Value::Text(dataset_json(d).to_string())),
        ValueView::Template(t) => return Ok(Value::Text(template_json(t).to_string())),
    };
    if !as_text {
        return from_json(&json, ty);
    }
    let text = text.unwrap_or_else(|| json.to_string());
    from_json_text(&View::from(&json), || &text, ty)
}

/// A DateTime (ms since the epoch) into a time tag as that instant, into a text tag as RFC 3339,
/// into number tags as the milliseconds.
fn date_time(ms: u64, ty: ValueType) -> Result<Value, String> {
    let ns = i64::try_from(ms)
        .ok()
        .and_then(|ms| ms.checked_mul(1_000_000))
        .ok_or_else(|| format!("DateTime {ms} ms is out of range"))?;
    match ty.kind() {
        ValueKind::AbsTime => Ok(Value::AbsTime(ns)),
        ValueKind::Text => Ok(Value::Text(format_time_ns(ns))),
        _ => {
            let (json, text) = (Json::from(ms), ms.to_string());
            from_json_text(&View::from(&json), || &text, ty)
        }
    }
}

/// A DataSet as JSON: `{"columns": [...], "types": [...], "rows": [[...], ...]}`.
pub(crate) fn dataset_json(d: &DataSet) -> Json {
    let types: Vec<String> = d
        .types
        .iter()
        .map(|&t| DataType::from_code(t).to_string())
        .collect();
    let rows: Vec<Json> = d
        .rows
        .iter()
        .map(|r| {
            Json::Array(
                r.elements
                    .iter()
                    .map(|e| match &e.value {
                        None => Json::Null,
                        Some(CellValue::Int(i)) => Json::from(*i),
                        Some(CellValue::Long(i)) => Json::from(*i),
                        Some(CellValue::Float(f)) => float_json(f32_as_decimal(*f)),
                        Some(CellValue::Double(f)) => float_json(*f),
                        Some(CellValue::Boolean(b)) => Json::Bool(*b),
                        Some(CellValue::String(s)) => Json::String(s.clone()),
                    })
                    .collect(),
            )
        })
        .collect();
    json!({ "columns": d.columns, "types": types, "rows": rows })
}

/// A Template as JSON: its reference, version, parameters and member metrics by name.
pub(crate) fn template_json(t: &Template) -> Json {
    let mut parameters = Map::new();
    for p in &t.parameters {
        let v = match &p.value {
            None => Json::Null,
            Some(ParameterValue::Int(i)) => Json::from(*i),
            Some(ParameterValue::Long(i)) => Json::from(*i),
            Some(ParameterValue::Float(f)) => float_json(f32_as_decimal(*f)),
            Some(ParameterValue::Double(f)) => float_json(*f),
            Some(ParameterValue::Boolean(b)) => Json::Bool(*b),
            Some(ParameterValue::String(s)) => Json::String(s.clone()),
        };
        parameters.insert(p.name.clone().unwrap_or_default(), v);
    }
    let mut metrics = Map::new();
    for m in &t.metrics {
        metrics.insert(m.name.clone().unwrap_or_default(), metric_json(m));
    }
    let mut out = Map::new();
    if let Some(r) = &t.template_ref {
        out.insert("template_ref".into(), Json::String(r.clone()));
    }
    if let Some(v) = &t.version {
        out.insert("version".into(), Json::String(v.clone()));
    }
    if t.is_definition == Some(true) {
        out.insert("is_definition".into(), Json::Bool(true));
    }
    out.insert("parameters".into(), Json::Object(parameters));
    out.insert("metrics".into(), Json::Object(metrics));
    Json::Object(out)
}

/// A member metric of a template as JSON (null when null or without value).
fn metric_json(m: &Metric) -> Json {
    if m.is_null == Some(true) {
        return Json::Null;
    }
    let dt = DataType::from_code(m.datatype.unwrap_or(0));
    match &m.value {
        None => Json::Null,
        Some(MetricValue::Int(raw)) => integer(u64::from(*raw), true, dt)
            .map(integer_json)
            .unwrap_or(Json::Null),
        Some(MetricValue::Long(raw)) => integer(*raw, false, dt)
            .map(integer_json)
            .unwrap_or(Json::Null),
        Some(MetricValue::Float(f)) => float_json(f32_as_decimal(*f)),
        Some(MetricValue::Double(f)) => float_json(*f),
        Some(MetricValue::Boolean(b)) => Json::Bool(*b),
        Some(MetricValue::String(s)) => Json::String(s.clone()),
        Some(MetricValue::Bytes(b)) => Json::String(hex(b)),
        Some(MetricValue::DataSet(d)) => dataset_json(d),
        Some(MetricValue::Template(t)) => template_json(t),
    }
}

/// JSON has no NaN or infinity: they become null.
fn float_json(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

/// A written tag value as the value of a metric of type `dt`: converted, and range-checked
/// (a value that does not fit is an error naming the value and the type).
pub(crate) fn to_metric_value(value: &Value, dt: DataType) -> Result<MetricValue, String> {
    let as_type = |ty: ValueType| {
        value
            .clone()
            .convert(ty)
            .map_err(|reason| format!("{} does not fit {dt}: {reason}", value.brief()))
    };
    if let Some((min, max)) = dt.integer_range() {
        let Value::Int(i) = as_type(ValueType::Co)? else {
            return Err(format!("{} is not a whole number", value.brief()));
        };
        let wide = i128::from(i);
        if wide < min || wide > max {
            return Err(format!("{i} is out of the range of {dt} ({min} to {max})"));
        }
        return Ok(match dt {
            DataType::Int8 | DataType::Int16 | DataType::Int32 => MetricValue::Int(i as i32 as u32),
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => MetricValue::Int(i as u32),
            _ => MetricValue::Long(i as u64),
        });
    }
    match dt {
        DataType::Float | DataType::Double => {
            let Value::Float(f) = as_type(ValueType::Ao)? else {
                return Err(format!("{} is not a number", value.brief()));
            };
            if dt == DataType::Double {
                return Ok(MetricValue::Double(f));
            }
            if f.abs() > f64::from(f32::MAX) {
                return Err(format!(
                    "{} is beyond the range of Float (about 3.4e38)",
                    brief_number(f)
                ));
            }
            Ok(MetricValue::Float(f as f32))
        }
        DataType::Boolean => match as_type(ValueType::Do)? {
            Value::Bool(b) => Ok(MetricValue::Boolean(b)),
            _ => Err(format!("{} is not a boolean", value.brief())),
        },
        DataType::String | DataType::Text | DataType::Uuid => {
            Ok(MetricValue::String(value.to_text()))
        }
        DataType::DateTime => match as_type(ValueType::ToA)? {
            Value::AbsTime(ns) if ns >= 0 => Ok(MetricValue::Long((ns / 1_000_000) as u64)),
            _ => Err(format!(
                "{} is before 1970, which DateTime cannot hold",
                value.brief()
            )),
        },
        other => Err(format!("metrics of type {other} cannot be written")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ValueType::*;

    /// A decoded metric's value as the host reads it.
    fn of(value: &MetricValue) -> Option<ValueView<'_>> {
        Some(ValueView::from(value))
    }

    /// Each row: the metric's value, its data type, the tag type, the tag value (None: invalid).
    #[test]
    fn metric_values_into_tags() {
        use DataType as D;
        use MetricValue as M;
        let rows: Vec<(M, DataType, ValueType, Option<Value>)> = vec![
            (M::Int(5), D::Int8, Ci, Some(Value::Int(5))),
            (M::Int(0xffff_ffff), D::Int8, Ci, Some(Value::Int(-1))),
            (M::Int(0xff), D::Int8, Ci, Some(Value::Int(-1))),
            (M::Int(0xffff_ff80), D::Int16, Ci, Some(Value::Int(-128))),
            (M::Int(0x8000), D::Int16, Ci, Some(Value::Int(-32768))),
            (M::Int(0x1_0000), D::Int16, Ci, None),
            (
                M::Int(0xffff_ffff),
                D::UInt32,
                Ci,
                Some(Value::Int(4_294_967_295)),
            ),
            (M::Int(300), D::UInt8, Ci, None),
            (M::Long(u64::MAX), D::Int64, Ci, Some(Value::Int(-1))),
            (M::Long(u64::MAX), D::UInt64, Ci, None),
            (
                M::Long(u64::MAX),
                D::UInt64,
                TxtI,
                Some(Value::Text(u64::MAX.to_string())),
            ),
            (M::Long(1 << 60), D::UInt64, Ai, None),
            (M::Int(7), D::Int32, Ai, Some(Value::Float(7.0))),
            (M::Int(1), D::Int32, Di, Some(Value::Bool(true))),
            (M::Int(2), D::Int32, Di, None),
            (
                M::Float(0.1),
                D::Float,
                TxtI,
                Some(Value::Text("0.1".into())),
            ),
            (M::Float(1.5), D::Float, Ai, Some(Value::Float(1.5))),
            // Through the float's shortest decimal form, not 0.10000000149011612.
            (M::Float(0.1), D::Float, Ai, Some(Value::Float(0.1))),
            (M::Float(-23.7), D::Float, ToR, Some(Value::RelTime(-23.7))),
            (M::Float(2.5), D::Float, Ci, None),
            (M::Float(f32::NAN), D::Float, Ai, None),
            (M::Double(23.25), D::Double, Ai, Some(Value::Float(23.25))),
            (M::Double(f64::INFINITY), D::Double, TxtI, None),
            (M::Boolean(true), D::Boolean, Di, Some(Value::Bool(true))),
            (M::Boolean(true), D::Boolean, Qi, Some(Value::Quad(2))),
            (M::Boolean(false), D::Boolean, Ci, Some(Value::Int(0))),
            (M::String("42".into()), D::String, Ci, Some(Value::Int(42))),
            (
                M::String("on".into()),
                D::Text,
                TxtI,
                Some(Value::Text("on".into())),
            ),
            (M::String("x".into()), D::String, Ai, None),
            (
                M::String("6ba7b810-9dad-11d1-80b4-00c04fd430c8".into()),
                D::Uuid,
                TxtI,
                Some(Value::Text("6ba7b810-9dad-11d1-80b4-00c04fd430c8".into())),
            ),
            (
                M::Long(1_795_428_000_123),
                D::DateTime,
                TiA,
                Some(Value::AbsTime(1_795_428_000_123_000_000)),
            ),
            (
                M::Long(1_795_428_000_123),
                D::DateTime,
                TxtI,
                Some(Value::Text("2026-11-23T10:00:00.123Z".into())),
            ),
            (
                M::Long(1_795_428_000_123),
                D::DateTime,
                Ci,
                Some(Value::Int(1_795_428_000_123)),
            ),
            (M::Long(u64::MAX), D::DateTime, TiA, None),
            (
                M::Bytes(vec![0xde, 0xad]),
                D::Bytes,
                TxtI,
                Some(Value::Text("dead".into())),
            ),
            (M::Bytes(vec![1]), D::Bytes, Ci, None),
        ];
        for (value, dt, ty, want) in rows {
            let shown = format!("{value:?} {dt} into {ty}");
            assert_eq!(to_tag_value(of(&value), dt, ty).ok(), want, "{shown}");
        }
        assert!(to_tag_value(None, DataType::Int32, Ci).is_err());
    }

    #[test]
    fn datasets_and_templates_are_json_text_in_text_tags_only() {
        let d = DataSet {
            num_of_columns: Some(2),
            columns: vec!["n".into(), "s".into()],
            types: vec![3, 12],
            rows: vec![super::super::payload::Row {
                elements: vec![
                    super::super::payload::DataSetValue {
                        value: Some(CellValue::Int(4)),
                    },
                    super::super::payload::DataSetValue {
                        value: Some(CellValue::String("a".into())),
                    },
                ],
            }],
        };
        let got = to_tag_value(
            of(&MetricValue::DataSet(Box::new(d.clone()))),
            DataType::DataSet,
            TxtI,
        );
        assert_eq!(
            got,
            Ok(Value::Text(
                r#"{"columns":["n","s"],"types":["Int32","String"],"rows":[[4,"a"]]}"#.into()
            ))
        );
        assert!(to_tag_value(
            of(&MetricValue::DataSet(Box::new(d))),
            DataType::DataSet,
            Ci
        )
        .is_err());
        let t = Template {
            template_ref: Some("Motor".into()),
            metrics: vec![Metric {
                name: Some("rpm".into()),
                datatype: Some(10),
                value: Some(MetricValue::Double(1.5)),
                ..Default::default()
            }],
            ..Default::default()
        };
        let got = to_tag_value(
            of(&MetricValue::Template(Box::new(t))),
            DataType::Template,
            TxtI,
        );
        assert_eq!(
            got,
            Ok(Value::Text(
                r#"{"template_ref":"Motor","parameters":{},"metrics":{"rpm":1.5}}"#.into()
            ))
        );
    }

    /// Each row: the written value, the metric's type, what is sent (None: a write error).
    #[test]
    fn written_values_into_metrics() {
        use DataType as D;
        use MetricValue as M;
        let rows: Vec<(Value, DataType, Option<MetricValue>)> = vec![
            (Value::Int(-1), D::Int8, Some(M::Int(0xffff_ffff))),
            (Value::Int(127), D::Int8, Some(M::Int(127))),
            (Value::Int(128), D::Int8, None),
            (Value::Int(-1), D::UInt16, None),
            (Value::Int(65535), D::UInt16, Some(M::Int(65535))),
            (Value::Int(-2), D::Int64, Some(M::Long(u64::MAX - 1))),
            (Value::Float(12.0), D::Int32, Some(M::Int(12))),
            (Value::Float(12.5), D::Int32, None),
            (Value::Float(1.5), D::Float, Some(M::Float(1.5))),
            (Value::Float(1e300), D::Float, None),
            (Value::Float(1e300), D::Double, Some(M::Double(1e300))),
            (Value::Bool(true), D::Boolean, Some(M::Boolean(true))),
            (Value::Int(2), D::Boolean, None),
            (
                Value::Text("hi".into()),
                D::String,
                Some(M::String("hi".into())),
            ),
            (Value::Int(5), D::Text, Some(M::String("5".into()))),
            (
                Value::AbsTime(1_795_428_000_123_000_000),
                D::DateTime,
                Some(M::Long(1_795_428_000_123)),
            ),
            (Value::Text("x".into()), D::DataSet, None),
            (Value::Text("x".into()), D::Template, None),
            (Value::Int(1), D::Other(33), None),
        ];
        for (value, dt, want) in rows {
            assert_eq!(to_metric_value(&value, dt).ok(), want, "{value:?} as {dt}");
        }
        let e = to_metric_value(&Value::Int(300), D::UInt8).unwrap_err();
        assert!(e.contains("300") && e.contains("UInt8"), "{e}");
    }

    /// Each row: a refused metric or written value and the start of its message, which names
    /// the real reason briefly (no 301-digit numbers).
    #[test]
    fn refusals_name_their_reason() {
        use DataType as D;
        use MetricValue as M;
        let received: Vec<(M, DataType, ValueType, &str)> = vec![
            (
                M::Long(1 << 63),
                D::UInt64,
                Ai,
                "9223372036854775808 is beyond 2^53 and cannot be held exactly by Ai",
            ),
            (
                M::Long(1 << 63),
                D::UInt64,
                Ci,
                "9223372036854775808 is beyond the range of a 64-bit integer",
            ),
            (
                M::Int(300),
                D::UInt8,
                Ci,
                "300 is out of the range of UInt8",
            ),
            (
                M::Float(f32::INFINITY),
                D::Float,
                Ai,
                "inf is not a finite number",
            ),
        ];
        for (value, dt, ty, want) in received {
            let shown = format!("{value:?} {dt} into {ty}");
            let err = to_tag_value(of(&value), dt, ty).unwrap_err();
            assert!(err.starts_with(want), "{shown}: {err}");
        }
        let written: Vec<(Value, DataType, &str)> = vec![
            (
                Value::Float(1e300),
                D::Float,
                "1e300 is beyond the range of Float (about 3.4e38)",
            ),
            (
                Value::Float(-1e39),
                D::Float,
                "-1e39 is beyond the range of Float (about 3.4e38)",
            ),
            (
                Value::Float(1e300),
                D::Int64,
                "1e300 does not fit Int64: 1e300 is beyond the range of a 64-bit integer",
            ),
            (
                Value::Float(2.5),
                D::Int32,
                "2.5 does not fit Int32: 2.5 is not a whole number",
            ),
            (
                Value::Int(128),
                D::Int8,
                "128 is out of the range of Int8 (-128 to 127)",
            ),
        ];
        for (value, dt, want) in written {
            let err = to_metric_value(&value, dt).unwrap_err();
            assert_eq!(err, want, "{value:?} as {dt}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for code in 0..40 {
            assert_eq!(DataType::from_code(code).code(), code);
        }
    }
}
