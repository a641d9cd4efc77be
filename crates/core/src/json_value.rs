//! How a JSON value becomes a tag value of each type. The rules are in docs/parameters.md.
//! A conversion that would lose information fails instead: the tag turns invalid with a warning.

use serde_json::Value as Json;

use crate::json_extract::View;
use crate::value::{Value, ValueKind, ValueType};

/// Largest integer a float holds exactly (2^53).
const EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

pub fn from_json(v: &Json, ty: ValueType) -> Result<Value, String> {
    let kind = ty.kind();
    match v {
        Json::Object(_) | Json::Array(_) if kind == ValueKind::Text => {
            Ok(Value::Text(v.to_string()))
        }
        Json::Object(_) => Err("an object only fits a text tag".into()),
        Json::Array(_) => Err("an array only fits a text tag".into()),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                return from_integer(i, ty, kind);
            }
            if n.as_u64().is_some() {
                // Above i64::MAX: a double holds it only approximately, no signed 64-bit
                // integer at all.
                return match kind {
                    ValueKind::Text => Ok(Value::Text(n.to_string())),
                    ValueKind::Float | ValueKind::RelTime => Err(format!(
                        "{n} is beyond 2^53 and cannot be held exactly by {ty} (a double)"
                    )),
                    _ => Err(format!("{n} is beyond the range of a 64-bit integer")),
                };
            }
            from_float(n.as_f64().ok_or("not a number")?, ty, kind)
        }
        Json::String(_) | Json::Bool(_) | Json::Null => from_scalar(View::from(v), ty),
    }
}

/// As [`from_json`], given the value's JSON text as written in the payload: a number into a
/// text tag is that text exactly (`1E3`, `12.50`, digits beyond 64 bits), as the rules promise.
/// The text is asked for only then: finding it in the payload costs on every value. A scalar
/// found in a payload is read as it was found, without a JSON value made of it.
#[inline]
pub fn from_json_text<'t>(
    v: &View<'_>,
    text: impl FnOnce() -> &'t str,
    ty: ValueType,
) -> Result<Value, String> {
    // The usual pairs, a number into a tag of its kind, decided where the reader calls.
    match (*v, ty.kind()) {
        (View::Float(f), ValueKind::Float) => Ok(Value::Float(f)),
        (View::Int(i), ValueKind::Int) => Ok(Value::Int(i)),
        _ => from_any_json_text(v, text, ty),
    }
}

fn from_any_json_text<'t>(
    v: &View<'_>,
    text: impl FnOnce() -> &'t str,
    ty: ValueType,
) -> Result<Value, String> {
    match *v {
        View::Int(_) | View::Float(_) | View::Json(Json::Number(_))
            if ty.kind() == ValueKind::Text =>
        {
            Ok(Value::Text(text().to_string()))
        }
        View::Json(j) => from_json(j, ty),
        scalar => from_scalar(scalar, ty),
    }
}

/// A value that is neither an object, an array nor a number beyond 64 bits.
fn from_scalar(v: View<'_>, ty: ValueType) -> Result<Value, String> {
    let kind = ty.kind();
    match v {
        View::Null => Err("the value is null".into()),
        View::Str(s) => Value::parse(s, ty),
        View::Bool(b) => match kind {
            ValueKind::Bool => Ok(Value::Bool(b)),
            ValueKind::Int => Ok(Value::Int(i64::from(b))),
            ValueKind::Float => Ok(Value::Float(f64::from(u8::from(b)))),
            ValueKind::Quad => Ok(Value::Quad(if b { 2 } else { 1 })),
            ValueKind::Text => Ok(Value::Text(b.to_string())),
            ValueKind::AbsTime | ValueKind::RelTime => {
                Err("a boolean does not fit a time tag".into())
            }
        },
        View::Int(i) => from_integer(i, ty, kind),
        View::Float(f) => from_float(f, ty, kind),
        View::Json(j) => from_json(j, ty),
    }
}

fn from_integer(i: i64, ty: ValueType, kind: ValueKind) -> Result<Value, String> {
    match kind {
        ValueKind::Int => Ok(Value::Int(i)),
        ValueKind::Float | ValueKind::RelTime if i.unsigned_abs() > 1u64 << 53 => Err(format!(
            "{i} is beyond 2^53 and cannot be held exactly by {ty}"
        )),
        ValueKind::Float => Ok(Value::Float(i as f64)),
        ValueKind::RelTime => Ok(Value::RelTime(i as f64)),
        ValueKind::Text => Ok(Value::Text(i.to_string())),
        ValueKind::AbsTime => seconds_to_time(i as f64),
        // As the text of the number would be read (docs/parameters.md), without making it.
        ValueKind::Bool if i == 0 || i == 1 => Ok(Value::Bool(i == 1)),
        ValueKind::Quad if (0..=3).contains(&i) => Ok(Value::Quad(i as u8)),
        ValueKind::Bool | ValueKind::Quad => Value::parse(&i.to_string(), ty),
    }
}

/// A number that is not a whole number of 64 bits (`f` is finite: JSON has no other).
fn from_float(f: f64, ty: ValueType, kind: ValueKind) -> Result<Value, String> {
    // Written as a JSON document writes it (`1e21`, not Rust's `1000000000000000000000`).
    let text = || serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string());
    match kind {
        ValueKind::Float => Ok(Value::Float(f)),
        ValueKind::RelTime => Ok(Value::RelTime(f)),
        ValueKind::Text => Ok(Value::Text(text())),
        ValueKind::Int if f.fract() == 0.0 && f.abs() <= EXACT_FLOAT_INT => {
            Ok(Value::Int(f as i64))
        }
        ValueKind::Int => Err(format!("{} is not a whole number", text())),
        ValueKind::AbsTime => seconds_to_time(f),
        ValueKind::Bool | ValueKind::Quad => Value::parse(&text(), ty),
    }
}

/// A number into an absolute time tag is read as seconds since the Unix epoch.
fn seconds_to_time(s: f64) -> Result<Value, String> {
    let ns = (s * 1e9).round();
    if ns.is_finite() && ns.abs() < 9.2e18 {
        Ok(Value::AbsTime(ns as i64))
    } else {
        Err(format!("{s} seconds since 1970 is out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ValueType::*;

    /// Each row: JSON, tag type, the value (or None when the tag must turn invalid).
    #[test]
    fn conversion_table() {
        let rows: Vec<(Json, ValueType, Option<Value>)> = vec![
            (json!(42), Ci, Some(Value::Int(42))),
            (json!(-7), Co, Some(Value::Int(-7))),
            (json!(12.0), Ci, Some(Value::Int(12))),
            (json!(12.5), Ci, None),
            (json!(1e20), Ci, None),
            (json!(18446744073709551615u64), Ci, None),
            (
                json!(18446744073709551615u64),
                TxtI,
                Some(Value::Text("18446744073709551615".into())),
            ),
            (json!("868300000"), Ci, Some(Value::Int(868_300_000))),
            (json!("868300000"), Ai, Some(Value::Float(868_300_000.0))),
            (json!(" 23.5 "), Ai, Some(Value::Float(23.5))),
            (json!("n/a"), Ai, None),
            (json!(0.64), Ai, Some(Value::Float(0.64))),
            (json!(9007199254740993i64), Ai, None),
            (
                json!(9007199254740993i64),
                Ci,
                Some(Value::Int(9_007_199_254_740_993)),
            ),
            (json!(true), Di, Some(Value::Bool(true))),
            (json!(false), Ci, Some(Value::Int(0))),
            (json!(true), Ai, Some(Value::Float(1.0))),
            (json!(true), Qi, Some(Value::Quad(2))),
            (json!(false), TxtI, Some(Value::Text("false".into()))),
            (json!(true), TiA, None),
            (json!(1), Di, Some(Value::Bool(true))),
            (json!(2), Di, None),
            (json!("true"), Do, Some(Value::Bool(true))),
            (json!(3), Qi, Some(Value::Quad(3))),
            (json!(4), Qi, None),
            (json!(null), TxtI, None),
            (json!(null), Ci, None),
            (json!("text"), TxtI, Some(Value::Text("text".into()))),
            (json!(1.5), TxtI, Some(Value::Text("1.5".into()))),
            (json!({"a": 1}), TxtI, Some(Value::Text("{\"a\":1}".into()))),
            (json!([1, 2]), TxtO, Some(Value::Text("[1,2]".into()))),
            (json!({"a": 1}), Ai, None),
            (json!([1]), Ci, None),
            (json!(2.5), TiR, Some(Value::RelTime(2.5))),
            (json!("2.5"), ToR, Some(Value::RelTime(2.5))),
            (
                json!(1_795_428_000),
                TiA,
                Some(Value::AbsTime(1_795_428_000_000_000_000)),
            ),
            (
                json!("2026-11-23T10:00:00.123Z"),
                TiA,
                Some(Value::AbsTime(1_795_428_000_123_000_000)),
            ),
            (json!("yesterday"), TiA, None),
        ];
        for (json, ty, want) in rows {
            let got = from_json(&json, ty).ok();
            assert_eq!(got, want, "{json} into {ty}");
        }
    }

    /// Each row: the JSON text in a payload, the tag type, the value (None: invalid).
    #[test]
    fn numbers_keep_their_text_in_text_tags_only() {
        let rows: Vec<(&str, ValueType, Option<Value>)> = vec![
            (
                "12345678901234567890123",
                TxtI,
                Some(Value::Text("12345678901234567890123".into())),
            ),
            ("1E3", TxtO, Some(Value::Text("1E3".into()))),
            ("12.50", TxtI, Some(Value::Text("12.50".into()))),
            ("-0.0", TxtI, Some(Value::Text("-0.0".into()))),
            (
                "18446744073709551616",
                TxtI,
                Some(Value::Text("18446744073709551616".into())),
            ),
            ("1E3", Ci, Some(Value::Int(1000))),
            ("12.50", Ai, Some(Value::Float(12.5))),
            ("12.50", Ci, None),
            ("12345678901234567890123", Ci, None),
            ("9007199254740993", Ai, None),
            ("\"1E3\"", TxtI, Some(Value::Text("1E3".into()))),
            ("[1E3]", TxtI, Some(Value::Text("[1000.0]".into()))),
        ];
        for (text, ty, want) in rows {
            let v: Json = serde_json::from_str(text).unwrap();
            assert_eq!(
                from_json_text(&View::from(&v), || text, ty).ok(),
                want,
                "{text} into {ty}"
            );
        }
    }

    #[test]
    fn failures_say_why() {
        let e = from_json(&json!(9007199254740993i64), Ai).unwrap_err();
        assert!(e.contains("2^53"), "{e}");
        assert!(from_json(&json!(null), Ci).unwrap_err().contains("null"));
    }
}
