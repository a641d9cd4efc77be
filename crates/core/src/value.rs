//! Tag value types and values, and how text becomes a value of a given type.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::payload::shorten;

/// The value types of D2000 I/O tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    Ci,
    Co,
    TxtI,
    TxtO,
    Qi,
    Ai,
    Ao,
    Di,
    Do,
    TiR,
    ToR,
    TiA,
    ToA,
}

/// The shape of a value, shared by an input type and its output twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Int,
    Float,
    Bool,
    Text,
    Quad,
    AbsTime,
    RelTime,
}

impl ValueType {
    pub const ALL: [ValueType; 13] = [
        ValueType::Ci,
        ValueType::Co,
        ValueType::TxtI,
        ValueType::TxtO,
        ValueType::Qi,
        ValueType::Ai,
        ValueType::Ao,
        ValueType::Di,
        ValueType::Do,
        ValueType::TiR,
        ValueType::ToR,
        ValueType::TiA,
        ValueType::ToA,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ValueType::Ci => "Ci",
            ValueType::Co => "Co",
            ValueType::TxtI => "TxtI",
            ValueType::TxtO => "TxtO",
            ValueType::Qi => "Qi",
            ValueType::Ai => "Ai",
            ValueType::Ao => "Ao",
            ValueType::Di => "Di",
            ValueType::Do => "Do",
            ValueType::TiR => "TiR",
            ValueType::ToR => "ToR",
            ValueType::TiA => "TiA",
            ValueType::ToA => "ToA",
        }
    }

    pub fn from_name(name: &str) -> Option<ValueType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Output types are the ones the host may write.
    pub fn is_output(self) -> bool {
        matches!(
            self,
            ValueType::Co
                | ValueType::TxtO
                | ValueType::Ao
                | ValueType::Do
                | ValueType::ToR
                | ValueType::ToA
        )
    }

    pub fn kind(self) -> ValueKind {
        match self {
            ValueType::Ci | ValueType::Co => ValueKind::Int,
            ValueType::TxtI | ValueType::TxtO => ValueKind::Text,
            ValueType::Qi => ValueKind::Quad,
            ValueType::Ai | ValueType::Ao => ValueKind::Float,
            ValueType::Di | ValueType::Do => ValueKind::Bool,
            ValueType::TiR | ValueType::ToR => ValueKind::RelTime,
            ValueType::TiA | ValueType::ToA => ValueKind::AbsTime,
        }
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A tag value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
    /// D2000 quad state 0..=3 (Off, False, True, Error).
    Quad(u8),
    /// Nanoseconds since the Unix epoch, UTC.
    AbsTime(i64),
    /// Seconds.
    RelTime(f64),
}

impl Value {
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::Int(_) => ValueKind::Int,
            Value::Float(_) => ValueKind::Float,
            Value::Bool(_) => ValueKind::Bool,
            Value::Text(_) => ValueKind::Text,
            Value::Quad(_) => ValueKind::Quad,
            Value::AbsTime(_) => ValueKind::AbsTime,
            Value::RelTime(_) => ValueKind::RelTime,
        }
    }

    /// Converts a value to another type's kind, through its text form where the kinds differ.
    /// NaN and infinities are refused whatever the target: no tag type can carry them, and as
    /// text they would reach the broker as `NaN` or `inf`.
    pub fn convert(self, to: ValueType) -> Result<Value, String> {
        if let Value::Float(f) | Value::RelTime(f) = self {
            if !f.is_finite() {
                return Err(format!("{f} is not a finite number"));
            }
        }
        if self.kind() == to.kind() {
            return Ok(self);
        }
        match (&self, to.kind()) {
            (Value::Int(i), ValueKind::Float) => Ok(Value::Float(*i as f64)),
            (Value::Int(i), ValueKind::RelTime) => Ok(Value::RelTime(*i as f64)),
            (Value::Float(f), ValueKind::RelTime) => Ok(Value::RelTime(*f)),
            (Value::Bool(b), ValueKind::Int) => Ok(Value::Int(*b as i64)),
            (Value::Int(i), ValueKind::Bool) if *i == 0 || *i == 1 => Ok(Value::Bool(*i == 1)),
            (Value::Float(f), ValueKind::Int) => float_to_int(*f),
            _ => Value::parse(&self.to_text(), to),
        }
    }

    /// Reads text as a value of `to`, the way an operator would type it.
    pub fn parse(text: &str, to: ValueType) -> Result<Value, String> {
        let t = text.trim();
        match to.kind() {
            ValueKind::Text => Ok(Value::Text(text.to_string())),
            ValueKind::Int => parse_int(t).map(Value::Int),
            ValueKind::Float => parse_float(text, "a number").map(Value::Float),
            ValueKind::Bool => word(t, BOOL_WORDS)
                .map(Value::Bool)
                .ok_or_else(|| format!("'{}' is not a boolean (true/false, 1/0)", shorten(text))),
            ValueKind::Quad => word(t, QUAD_WORDS).map(Value::Quad).ok_or_else(|| {
                format!(
                    "'{}' is not a quad state (0..3 or Off, False, True, Error)",
                    shorten(text)
                )
            }),
            ValueKind::AbsTime => DateTime::parse_from_rfc3339(t)
                .ok()
                .and_then(|d| d.timestamp_nanos_opt())
                .map(Value::AbsTime)
                .ok_or_else(|| format!("'{}' is not an RFC 3339 date-time", shorten(text))),
            ValueKind::RelTime => parse_float(text, "a number of seconds").map(Value::RelTime),
        }
    }

    /// The value for a message: as [`Value::to_text`], but a large or tiny number briefly
    /// ([`brief_number`]) and long text cut ([`shorten`]).
    pub(crate) fn brief(&self) -> String {
        match self {
            Value::Float(f) | Value::RelTime(f) => brief_number(*f),
            Value::Text(s) => shorten(s),
            other => other.to_text(),
        }
    }

    /// The text form: what is published for OUT_VALUE and shown to people.
    pub fn to_text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
            Value::Text(s) => s.clone(),
            Value::Quad(q) => q.to_string(),
            Value::AbsTime(ns) => format_time_ns(*ns),
            Value::RelTime(s) => s.to_string(),
        }
    }
}

/// 2^63: i64::MAX rounds up to it as a double, so from here on no 64-bit integer holds a value.
const TWO_POW_63: f64 = (1u64 << 63) as f64;

/// A finite double as a 64-bit integer when it is a whole number within range; the error gives
/// the number briefly (`1e300`, not its 301 digits).
fn float_to_int(f: f64) -> Result<Value, String> {
    if f.fract() != 0.0 {
        Err(format!("{} is not a whole number", brief_number(f)))
    } else if f.abs() >= TWO_POW_63 {
        Err(format!(
            "{} is beyond the range of a 64-bit integer",
            brief_number(f)
        ))
    } else {
        Ok(Value::Int(f as i64))
    }
}

/// An integer from decimal text; a number with a zero fraction (`12.0`) is accepted, anything that
/// would lose precision is not.
fn parse_int(t: &str) -> Result<i64, String> {
    if let Ok(i) = t.parse::<i64>() {
        return Ok(i);
    }
    match t.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => Ok(f as i64),
        Ok(f) if !f.is_nan() && f.abs() >= TWO_POW_63 => Err(format!(
            "'{}' is beyond the range of a 64-bit integer",
            shorten(t)
        )),
        Ok(f) if f.fract() == 0.0 => Err(format!(
            "'{}' is beyond 2^53 and not written as plain digits, so it cannot be read exactly",
            shorten(t)
        )),
        Ok(_) | Err(_) => Err(format!("'{}' is not a whole number", shorten(t))),
    }
}

/// A finite double from text; the error says why not: not a number at all (`nan` included),
/// an infinity as written, or a number beyond the range of a double (`1e400`).
/// `what` names what was expected ("a number", "a number of seconds").
fn parse_float(text: &str, what: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        Ok(f) if f.is_nan() => Err(format!("'{}' is not {what}", shorten(text))),
        Ok(_) if spells_infinity(t) => Err(format!("'{}' is not a finite number", shorten(text))),
        Ok(_) => Err(format!(
            "'{}' is beyond the range of a double (about 1.8e308)",
            shorten(text)
        )),
        Err(_) => Err(format!("'{}' is not {what}", shorten(text))),
    }
}

/// `inf` or `infinity` in any case, signed or not: infinite as written, not by overflow.
fn spells_infinity(t: &str) -> bool {
    t.trim_start_matches(['+', '-'])
        .bytes()
        .next()
        .is_some_and(|b| b.eq_ignore_ascii_case(&b'i'))
}

/// A 32-bit float as the double its shortest decimal form reads as: a Float 0.1 is the double
/// 0.1, not 0.10000000149011612 (the float's exact binary value), which is what people sent and
/// expect to see. ryu formats on the stack, about three times faster than `{:e}`.
pub(crate) fn f32_as_decimal(f: f32) -> f64 {
    if !f.is_finite() {
        return f64::from(f);
    }
    ryu::Buffer::new()
        .format_finite(f)
        .parse()
        .unwrap_or(f64::from(f))
}

/// A number for a message: plain up to 16 digits, else in exponent form (`1e300`, not 301
/// digits). Values that go to the broker keep [`Value::to_text`].
pub(crate) fn brief_number(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && a.is_finite() && !(1e-5..1e16).contains(&a) {
        format!("{f:e}")
    } else {
        f.to_string()
    }
}

/// RFC 3339 UTC with milliseconds, or more digits when the time has them.
pub fn format_time_ns(ns: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns);
    let format = if ns.rem_euclid(1_000_000) == 0 {
        SecondsFormat::Millis
    } else {
        SecondsFormat::AutoSi
    };
    t.to_rfc3339_opts(format, true)
}

/// The words a boolean is typed as, in any case.
const BOOL_WORDS: &[(&str, bool)] = &[
    ("1", true),
    ("true", true),
    ("yes", true),
    ("on", true),
    ("0", false),
    ("false", false),
    ("no", false),
    ("off", false),
];

/// The words a quad state is typed as, in any case.
const QUAD_WORDS: &[(&str, u8)] = &[
    ("0", 0),
    ("off", 0),
    ("1", 1),
    ("false", 1),
    ("2", 2),
    ("true", 2),
    ("3", 3),
    ("error", 3),
];

/// The meaning of `text` among `words`, compared without regard to ASCII case (no lowercase
/// copy: a JSON string into a boolean tag is read for every message).
fn word<T: Copy>(text: &str, words: &[(&str, T)]) -> Option<T> {
    words
        .iter()
        .find(|(w, _)| text.eq_ignore_ascii_case(w))
        .map(|&(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_into_every_type() {
        use ValueType::*;
        let cases: &[(&str, ValueType, Result<Value, ()>)] = &[
            ("42", Ci, Ok(Value::Int(42))),
            (" -7 ", Co, Ok(Value::Int(-7))),
            ("12.0", Ci, Ok(Value::Int(12))),
            ("12.5", Ci, Err(())),
            (
                "9007199254740993",
                Ci,
                Ok(Value::Int(9_007_199_254_740_993)),
            ),
            ("1e300", Ci, Err(())),
            ("abc", Ci, Err(())),
            ("23.5", Ai, Ok(Value::Float(23.5))),
            ("inf", Ai, Err(())),
            ("true", Di, Ok(Value::Bool(true))),
            ("0", Do, Ok(Value::Bool(false))),
            ("2", Di, Err(())),
            ("Error", Qi, Ok(Value::Quad(3))),
            ("4", Qi, Err(())),
            (
                " keep spaces ",
                TxtO,
                Ok(Value::Text(" keep spaces ".into())),
            ),
            ("1.5", ToR, Ok(Value::RelTime(1.5))),
            (
                "2026-11-23T10:00:00.123Z",
                ToA,
                Ok(Value::AbsTime(1_795_428_000_123_000_000)),
            ),
            ("2026-11-23 10:00", ToA, Err(())),
        ];
        for (text, ty, want) in cases {
            let got = Value::parse(text, *ty).map_err(|_| ());
            assert_eq!(&got, want, "{text:?} as {ty}");
        }
    }

    #[test]
    fn time_formats_with_millis_at_least() {
        assert_eq!(
            format_time_ns(1_795_428_000_123_000_000),
            "2026-11-23T10:00:00.123Z"
        );
        assert_eq!(format_time_ns(1_000_000_000), "1970-01-01T00:00:01.000Z");
        assert_eq!(
            format_time_ns(1_000_000_001),
            "1970-01-01T00:00:01.000000001Z"
        );
    }

    #[test]
    fn conversion_between_kinds() {
        assert_eq!(
            Value::Int(3).convert(ValueType::Ao).unwrap(),
            Value::Float(3.0)
        );
        assert_eq!(
            Value::Text("17".into()).convert(ValueType::Co).unwrap(),
            Value::Int(17)
        );
        assert!(Value::Text("x".into()).convert(ValueType::Co).is_err());
    }

    #[test]
    fn non_finite_numbers_convert_to_nothing() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for v in [Value::Float(f), Value::RelTime(f)] {
                for to in ValueType::ALL {
                    assert!(v.clone().convert(to).is_err(), "{v:?} as {to}");
                }
            }
        }
        for text in [
            "nan",
            "NaN",
            "-nan",
            "inf",
            "-inf",
            "+inf",
            "infinity",
            "-Infinity",
        ] {
            for to in [ValueType::Ao, ValueType::Ai, ValueType::ToR, ValueType::TiR] {
                assert!(Value::parse(text, to).is_err(), "{text:?} as {to}");
            }
        }
    }

    /// Each row: a refused text, the type, what the message must say. Each names the real
    /// reason, briefly.
    #[test]
    fn refusals_name_their_reason() {
        use ValueType::*;
        let rows: &[(&str, ValueType, &str)] = &[
            ("abc", Ai, "'abc' is not a number"),
            ("nan", Ai, "'nan' is not a number"),
            ("-inf", Ai, "'-inf' is not a finite number"),
            ("Infinity", Ai, "'Infinity' is not a finite number"),
            ("1e400", Ai, "'1e400' is beyond the range of a double"),
            ("-1e400", Ai, "'-1e400' is beyond the range of a double"),
            ("1e400", ToR, "'1e400' is beyond the range of a double"),
            ("x", ToR, "'x' is not a number of seconds"),
            ("12.5", Ci, "'12.5' is not a whole number"),
            (
                "1e300",
                Ci,
                "'1e300' is beyond the range of a 64-bit integer",
            ),
            (
                "1e400",
                Ci,
                "'1e400' is beyond the range of a 64-bit integer",
            ),
            (
                "9223372036854775808",
                Ci,
                "'9223372036854775808' is beyond the range of a 64-bit integer",
            ),
            (
                "1e17",
                Ci,
                "'1e17' is beyond 2^53 and not written as plain digits",
            ),
            ("abc", Ci, "'abc' is not a whole number"),
        ];
        for (text, ty, want) in rows {
            let err = Value::parse(text, *ty).unwrap_err();
            assert!(err.starts_with(want), "{text:?} as {ty}: {err}");
        }
        // Converted values (writes) say so too, and give a huge number briefly.
        let rows: &[(Value, ValueType, &str)] = &[
            (
                Value::Float(1e300),
                Co,
                "1e300 is beyond the range of a 64-bit integer",
            ),
            (Value::Float(-2.5), Co, "-2.5 is not a whole number"),
            (Value::Float(1e-300), Co, "1e-300 is not a whole number"),
        ];
        for (v, ty, want) in rows {
            let err = v.clone().convert(*ty).unwrap_err();
            assert_eq!(&err, want, "{v:?} as {ty}");
        }
        assert_eq!(
            Value::Float(1e17).convert(Co),
            Ok(Value::Int(100_000_000_000_000_000))
        );
    }

    #[test]
    fn floats_widen_through_their_shortest_decimal() {
        for (f, want) in [
            (0.1f32, 0.1f64),
            (-23.7, -23.7),
            (1.5, 1.5),
            (f32::MAX, 3.4028235e38),
            (1e-45, 1e-45),
            (0.0, 0.0),
        ] {
            assert_eq!(f32_as_decimal(f), want, "{f}");
        }
        assert!(f32_as_decimal(f32::NAN).is_nan());
        assert_eq!(brief_number(1e300), "1e300");
        assert_eq!(brief_number(-1.5e-7), "-1.5e-7");
        assert_eq!(brief_number(12345.25), "12345.25");
        assert_eq!(brief_number(0.0), "0");
    }

    #[test]
    fn names_round_trip() {
        for t in ValueType::ALL {
            assert_eq!(ValueType::from_name(t.name()), Some(t));
        }
    }
}
