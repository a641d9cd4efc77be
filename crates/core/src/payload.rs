//! Reading a message payload for a station: JSON parsing and the payload's time stamp.

use serde_json::Value as Json;

use crate::config::{LineConfig, PayloadType};
use crate::json_path::JsonPath;
use crate::station::StationParams;
/// Values in warnings are shown by the one helper every message uses.
pub use crate::text::{escape, shorten};
use crate::time_mask::{TimeMask, TimeZone};

/// How one station reads payloads: the line's settings with the station's overrides.
#[derive(Debug, Clone)]
pub struct PayloadSettings {
    pub json: bool,
    pub time_field: Option<JsonPath>,
    pub time_mask: TimeMask,
    pub time_mask_text: String,
    pub zone: TimeZone,
    pub ignore_missing_time: bool,
}

impl PayloadSettings {
    /// Both the line's and the station's values were checked when they were read, so a failure
    /// here means the default mask is broken: it falls back to ISO 8601 rather than panicking.
    pub fn resolve(line: &LineConfig, station: &StationParams) -> PayloadSettings {
        let payload_type = station.payload_type.unwrap_or(line.payload_type);
        let field = station
            .time_field_name
            .as_deref()
            .unwrap_or(&line.time_field_name);
        let mask = station.time_mask.as_deref().unwrap_or(&line.time_mask);
        PayloadSettings {
            json: payload_type == PayloadType::Json,
            time_field: (!field.is_empty())
                .then(|| JsonPath::parse(field).ok())
                .flatten(),
            time_mask: TimeMask::parse(mask).unwrap_or(TimeMask::Iso8601),
            time_mask_text: mask.to_string(),
            zone: station.time_zone,
            ignore_missing_time: station
                .ignore_missing_time
                .unwrap_or(line.ignore_missing_time),
        }
    }
}

/// The payload's time stamp, or why the receive time is used instead.
#[derive(Debug, PartialEq)]
pub enum Stamp {
    /// Nanoseconds since the epoch, read from the payload.
    Payload(i64),
    /// The time field is not configured (or the payload is not JSON).
    None,
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

/// Reads the time stamp from the value of the time field, already looked up (`None`: missing).
pub fn stamp_from(settings: &PayloadSettings, value: Option<&Json>) -> Stamp {
    let Some(field) = &settings.time_field else {
        return Stamp::None;
    };
    let Some(value) = value else {
        return Stamp::Missing;
    };
    match settings.time_mask.read(value, settings.zone) {
        Ok(ns) => Stamp::Payload(ns),
        Err(reason) => Stamp::Unreadable(format!(
            "time field '{field}' = {} does not fit time mask '{}': {reason}",
            shorten(&value.to_string()),
            settings.time_mask_text
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_mask::utc_ns;
    use serde_json::json;

    /// Reads the time stamp of a parsed payload.
    fn stamp(settings: &PayloadSettings, doc: &Json) -> Stamp {
        let value = settings.time_field.as_ref().and_then(|f| f.find(doc));
        stamp_from(settings, value)
    }

    fn settings(params: &[(&str, &str)], station: &[(&str, &str)]) -> PayloadSettings {
        let mut all = vec![("host", "h")];
        all.extend_from_slice(params);
        let (line, _) = LineConfig::from_params("l", all).unwrap();
        let st = StationParams::from_params("s", station.iter().copied()).unwrap();
        PayloadSettings::resolve(&line, &st)
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
        assert!(s.json);
        assert_eq!(s.time_mask, TimeMask::UnixMs);
        assert_eq!(s.time_field.unwrap().to_string(), "ts");
        let s = settings(&[("payload_type", "JSON"), ("time_field_name", "t")], &[]);
        assert!(s.json && s.time_field.is_some());
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
            Stamp::Payload(utc_ns(2026, 11, 23, 10, 0, 0, 0))
        );
        assert_eq!(stamp(&s, &json!({"rx": {}})), Stamp::Missing);
        match stamp(&s, &json!({"rx": {"time": "2020-02-12T15:15..."}})) {
            Stamp::Unreadable(m) => assert!(m.contains("rx.time") && m.contains("15:15..."), "{m}"),
            other => panic!("{other:?}"),
        }
        let none = settings(&[("payload_type", "JSON")], &[]);
        assert_eq!(stamp(&none, &json!({})), Stamp::None);
    }

    #[test]
    fn parse_errors_say_where() {
        let e = parse_json(b"{\n  \"a\": 1\n  \"b\": 2\n}").unwrap_err();
        assert!(e.contains("line 3 column 3"), "{e}");
        assert!(!e.contains("at line 3 column 3 at line"), "{e}");
    }
}
