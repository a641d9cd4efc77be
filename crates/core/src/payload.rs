//! Reading a message payload for a station: its payload settings (JSON, CSV, the time field,
//! the items' time and quality), JSON parsing, the payload's time stamp and what makes a payload
//! unreadable.

use serde_json::Value as Json;

use crate::config::LineConfig;
use crate::csv::CsvError;
use crate::error::ConfigError;
use crate::gzip::GzipError;
use crate::json_extract::View;
use crate::json_path::JsonPath;
use crate::payload_params::{
    field_position, valid_qualities, PayloadType, DEFAULT_CSV_SEPARATOR, DEFAULT_TIME_MASK,
    DEFAULT_VALID_QUALITY,
};
use crate::station::StationParams;
/// Values in warnings are shown by the one helper every message uses.
pub use crate::text::{escape, shorten};
use crate::time_mask::{TimeMask, TimeZone};

/// How one station reads payloads: the line's settings with the station's overrides.
#[derive(Debug, Clone)]
pub struct PayloadSettings {
    pub payload_type: PayloadType,
    /// JSON: the message's time field.
    pub time_field: Option<JsonPath>,
    pub time_mask: TimeMask,
    pub time_mask_text: String,
    pub zone: TimeZone,
    pub ignore_missing_time: bool,
    /// JSON: the time field inside the array element a tag selects.
    pub item_time_field: Option<JsonPath>,
    /// JSON: the quality field inside the array element a tag selects.
    pub item_quality_field: Option<JsonPath>,
    pub csv: CsvSettings,
    /// The quality values that mean valid (compared in any case).
    valid_quality: Vec<String>,
    /// Whether `false` and `true` are among them: a JSON boolean quality (Kepware's `"q":true`)
    /// is judged without comparing its text for every item.
    valid_bool: [bool; 2],
}

/// Where a CSV station's fields are (positions from 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvSettings {
    pub separator: char,
    pub time: Option<usize>,
    pub quality: Option<usize>,
}

impl PayloadSettings {
    /// The station's settings over the line's. Each value was checked when it was read; what is
    /// checked here is what depends on the payload type: a CSV station's time and quality fields
    /// must be positions. `object` names the station.
    pub fn resolve(
        object: &str,
        line: &LineConfig,
        station: &StationParams,
    ) -> Result<PayloadSettings, ConfigError> {
        let (own, line_own) = (&station.payload, &line.payload);
        let payload_type = own.payload_type.unwrap_or(line.payload_type());
        let pick = |own: &Option<String>, line: &Option<String>, default: &str| {
            own.as_deref()
                .or(line.as_deref())
                .unwrap_or(default)
                .to_string()
        };
        let field = pick(&own.time_field_name, &line_own.time_field_name, "");
        let mask = pick(&own.time_mask, &line_own.time_mask, DEFAULT_TIME_MASK);
        let item_time = pick(&own.item_time_field, &line_own.item_time_field, "");
        let quality = pick(&own.quality_field, &line_own.quality_field, "");
        let separator = pick(
            &own.csv_separator,
            &line_own.csv_separator,
            DEFAULT_CSV_SEPARATOR,
        );
        let valid = pick(
            &own.valid_quality,
            &line_own.valid_quality,
            DEFAULT_VALID_QUALITY,
        );
        let invalid = |param: &str, value: &str, reason: String| ConfigError::InvalidValue {
            object: object.to_string(),
            param: param.to_string(),
            value: value.to_string(),
            reason,
        };
        let address = |param: &str, text: &str| -> Result<Option<JsonPath>, ConfigError> {
            if text.is_empty() {
                return Ok(None);
            }
            JsonPath::parse(text)
                .map(Some)
                .map_err(|e| invalid(param, text, format!("not a JSON address: {e}")))
        };
        let csv_type = payload_type == PayloadType::Csv;
        let position = |param: &str, text: &str| -> Result<Option<usize>, ConfigError> {
            if !csv_type {
                return Ok(None);
            }
            field_position(text).map_err(|r| invalid(param, text, r))
        };
        let csv = CsvSettings {
            separator: crate::csv::separator(&separator)
                .map_err(|r| invalid("csv_separator", &separator, r))?,
            time: position("time_field_name", &field)?,
            quality: position("quality_field", &quality)?,
        };
        let mut settings = PayloadSettings {
            payload_type,
            time_field: if csv_type {
                None
            } else {
                address("time_field_name", &field)?
            },
            time_mask: TimeMask::parse(&mask).map_err(|r| invalid("time_mask", &mask, r))?,
            time_mask_text: mask,
            zone: station.time_zone,
            ignore_missing_time: own
                .ignore_missing_time
                .or(line_own.ignore_missing_time)
                .unwrap_or(false),
            item_time_field: address("item_time_field", &item_time)?,
            item_quality_field: if csv_type {
                None
            } else {
                address("quality_field", &quality)?
            },
            csv,
            valid_quality: valid_qualities(&valid)
                .map_err(|r| invalid("valid_quality", &valid, r))?,
            valid_bool: [false; 2],
        };
        settings.valid_bool = [false, true].map(|b| settings.is_valid_quality(&b.to_string()));
        Ok(settings)
    }

    /// Whether a quality value's text (a JSON string's content, any other JSON value's text, a
    /// CSV field) means valid.
    pub fn is_valid_quality(&self, text: &str) -> bool {
        // A quality is usually written without spaces around it: no trim then.
        let bare = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_graphic());
        let t = if bare(text.as_bytes().first()) && bare(text.as_bytes().last()) {
            text
        } else {
            text.trim()
        };
        // Written as configured, the usual case, before the letter-by-letter comparison.
        self.valid_quality
            .iter()
            .any(|v| v.as_str() == t || v.eq_ignore_ascii_case(t))
    }

    /// [`PayloadSettings::is_valid_quality`] of a quality found in a JSON payload (`raw`: its
    /// JSON text, asked for only when it is neither a string nor a boolean).
    pub fn is_valid_quality_found<'t>(
        &self,
        value: View<'t>,
        raw: impl FnOnce() -> &'t str,
    ) -> bool {
        match value {
            View::Bool(b) => self.valid_bool[usize::from(b)],
            other => self.is_valid_quality(quality_text(other, raw)),
        }
    }
}

/// The text a quality found in a JSON payload is compared as: a string's content, or the JSON
/// text of any other value (`raw`, asked for only when the value is neither a string nor a
/// boolean: a boolean has one way to be written).
pub fn quality_text<'t>(value: View<'t>, raw: impl FnOnce() -> &'t str) -> &'t str {
    match value {
        View::Str(s) => s,
        View::Bool(true) => "true",
        View::Bool(false) => "false",
        _ => raw(),
    }
}

/// Why a payload could not be read at all: its tags of the payload type are invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    /// The JSON syntax error with its line and column.
    #[error("is not JSON ({0})")]
    NotJson(String),
    #[error("is not one CSV record: {0}")]
    NotCsv(#[from] CsvError),
    #[error("cannot be inflated: {0}")]
    Gzip(#[from] GzipError),
}

/// The payload's time stamp, or why the receive time is used instead.
#[derive(Debug, PartialEq)]
pub enum Stamp {
    /// Nanoseconds since the epoch, read from the payload.
    Payload(i64),
    /// The field is not in the payload.
    Missing,
    /// The field is there but does not fit the mask: the message names field, value and reason.
    Unreadable(String),
}

/// Parses a JSON payload. The error gives the line and column of the mistake.
pub fn parse_json(payload: &[u8]) -> Result<Json, String> {
    serde_json::from_slice(payload).map_err(|e| json_error(&e))
}

/// A JSON syntax error as shown in warnings: the cause, then its line and column.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{} at line {} column {}",
        describe_json_error(e),
        e.line(),
        e.column()
    )
}

fn describe_json_error(e: &serde_json::Error) -> String {
    // serde_json appends " at line L column C" itself; keep only the cause.
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Reads a time stamp with the station's mask from the value found at `field` (`what` names the
/// kind of field in the message: "time field", "item time field", "time field at position").
pub fn stamp_at(
    settings: &PayloadSettings,
    what: &str,
    field: &dyn std::fmt::Display,
    value: Option<View<'_>>,
) -> Stamp {
    let Some(value) = value else {
        return Stamp::Missing;
    };
    let read = match value {
        View::Str(s) => settings.time_mask.read_text(s, settings.zone),
        View::Int(i) => settings.time_mask.read_whole(i),
        other => settings.time_mask.read(&other.to_json(), settings.zone),
    };
    match read {
        Ok(ns) => Stamp::Payload(ns),
        Err(reason) => Stamp::Unreadable(format!(
            "{what} '{field}' = {} does not fit time mask '{}': {reason}",
            shorten(&value.to_json().to_string()),
            settings.time_mask_text
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_mask::utc_ns;
    use serde_json::json;

    /// Reads the time stamp of a parsed payload (`None`: no time field is configured).
    fn stamp(settings: &PayloadSettings, doc: &Json) -> Option<Stamp> {
        let field = settings.time_field.as_ref()?;
        Some(stamp_at(
            settings,
            "time field",
            field,
            field.find(doc).map(View::from),
        ))
    }

    fn settings(params: &[(&str, &str)], station: &[(&str, &str)]) -> PayloadSettings {
        let mut all = vec![("host", "h")];
        all.extend_from_slice(params);
        let (line, _) = LineConfig::from_params("l", all).unwrap();
        let st = StationParams::from_params("s", station.iter().copied()).unwrap();
        PayloadSettings::resolve("station 's'", &line, &st).unwrap()
    }

    #[test]
    fn station_overrides_the_line() {
        let s = settings(
            &[("payload_type", "Text only"), ("time_mask", "UNIX")],
            &[
                ("payload_type", "JSON"),
                ("time_field_name", "ts"),
                ("time_mask", "UNIXMS"),
            ],
        );
        assert_eq!(s.payload_type, PayloadType::Json);
        assert_eq!(s.time_mask, TimeMask::UnixMs);
        assert_eq!(s.time_field.unwrap().to_string(), "ts");
        let s = settings(&[("payload_type", "JSON"), ("time_field_name", "t")], &[]);
        assert!(s.payload_type == PayloadType::Json && s.time_field.is_some());
    }

    #[test]
    fn stamps() {
        let s = settings(
            &[
                ("payload_type", "JSON"),
                ("time_field_name", "rx.time"),
                ("time_mask", "ISO8601"),
            ],
            &[("time_zone", "UTC")],
        );
        assert_eq!(
            stamp(&s, &json!({"rx": {"time": "2026-11-23T10:00:00Z"}})),
            Some(Stamp::Payload(utc_ns(2026, 11, 23, 10, 0, 0, 0)))
        );
        assert_eq!(stamp(&s, &json!({"rx": {}})), Some(Stamp::Missing));
        match stamp(&s, &json!({"rx": {"time": "2020-02-12T15:15..."}})) {
            Some(Stamp::Unreadable(m)) => {
                assert!(m.contains("rx.time") && m.contains("15:15..."), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let none = settings(&[("payload_type", "JSON")], &[]);
        assert_eq!(stamp(&none, &json!({})), None);
    }

    #[test]
    fn csv_fields_are_positions_and_item_fields_addresses() {
        let s = settings(
            &[("payload_type", "CSV"), ("time_mask", "UNIXMS")],
            &[
                ("time_field_name", "2"),
                ("quality_field", "3"),
                ("csv_separator", ";"),
            ],
        );
        assert_eq!(
            s.csv,
            CsvSettings {
                separator: ';',
                time: Some(1),
                quality: Some(2)
            }
        );
        assert!(s.time_field.is_none() && s.item_quality_field.is_none());
        assert!(
            s.is_valid_quality("1") && s.is_valid_quality(" TRUE ") && !s.is_valid_quality("0")
        );
        let s = settings(
            &[("payload_type", "JSON"), ("item_time_field", "t")],
            &[("quality_field", "q"), ("valid_quality", "192, good")],
        );
        assert_eq!(s.item_time_field.as_ref().unwrap().to_string(), "t");
        assert_eq!(s.item_quality_field.as_ref().unwrap().to_string(), "q");
        assert!(s.is_valid_quality("Good") && !s.is_valid_quality("1"));
        let (line, _) =
            LineConfig::from_params("l", [("host", "h"), ("payload_type", "CSV")]).unwrap();
        for (param, value) in [
            ("time_field_name", "ts"),
            ("quality_field", "0"),
            ("time_field_name", "65536"),
        ] {
            let st = StationParams::from_params("s", [(param, value)]).unwrap();
            let e = PayloadSettings::resolve("station 's'", &line, &st)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("station 's'") && e.contains(param) && e.contains(value),
                "{e}"
            );
            assert!(e.contains("field position"), "{e}");
        }
    }

    #[test]
    fn json_qualities_compare_as_their_text() {
        let s = settings(
            &[("payload_type", "JSON")],
            &[("quality_field", "q"), ("valid_quality", "true, 192, Good")],
        );
        // (the quality's JSON text, valid)
        let rows = [
            ("true", true),
            ("false", false),
            ("\"TRUE\"", true),
            ("\" good \"", true),
            ("\"bad\"", false),
            ("192", true),
            ("192.0", false),
            ("1", false),
        ];
        for (text, valid) in rows {
            let value: Json = serde_json::from_str(text).unwrap();
            let q = quality_text(View::from(&value), || text);
            assert_eq!(s.is_valid_quality(q), valid, "{text}");
            assert_eq!(
                s.is_valid_quality_found(View::from(&value), || text),
                valid,
                "{text}"
            );
        }
        // A boolean is judged without its text, as its text would be, whatever is valid.
        for valid_quality in ["FALSE, 0", " True ", "good"] {
            let s = settings(
                &[("payload_type", "JSON")],
                &[("quality_field", "q"), ("valid_quality", valid_quality)],
            );
            for b in [false, true] {
                assert_eq!(
                    s.is_valid_quality_found(View::Bool(b), || unreachable!()),
                    s.is_valid_quality(&b.to_string()),
                    "{b} with valid_quality '{valid_quality}'"
                );
            }
        }
    }

    #[test]
    fn parse_errors_say_where() {
        let e = parse_json(b"{\n  \"a\": 1\n  \"b\": 2\n}").unwrap_err();
        assert!(e.contains("line 3 column 3"), "{e}");
        assert!(!e.contains("at line 3 column 3 at line"), "{e}");
    }
}
