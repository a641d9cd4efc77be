//! The eight payload parameters a line and a station both take (`payload_type`, the time field
//! and mask, the CSV separator, the items' time and quality fields, the valid qualities): read and
//! checked here once for both, and kept as given, so that a station's value overrides the line's
//! and the line's the default only when the station's settings are resolved (payload.rs).

use crate::error::ConfigError;
use crate::json_path::JsonPath;
use crate::params::{normalize_key, Param};
use crate::time_mask::TimeMask;

/// How message payloads are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadType {
    /// The payload is only handed to IN_DATA.
    #[default]
    Text,
    /// The payload is parsed as JSON for JA= tags (and still handed to IN_DATA).
    Json,
    /// The payload is one comma-separated record for CSV= tags (and still handed to IN_DATA).
    Csv,
    /// The line is a Sparkplug B 3.0 host application: topics `spBv1.0/...`, protobuf payloads,
    /// SPB= tags (docs/sparkplug.md). A line parameter only.
    SparkplugB,
    /// The line is a Sparkplug B 3.0 edge node: it publishes births, data and deaths of its
    /// SPB= tags and takes commands (docs/sparkplug.md). A line parameter only.
    SparkplugEdge,
}

/// Canonical names of the payload parameters (after [`normalize_key`]).
pub(crate) const PAYLOAD_PARAMETERS: &[&str] = &[
    "payload_type",
    "time_field_name",
    "time_mask",
    "ignore_missing_time",
    "csv_separator",
    "item_time_field",
    "quality_field",
    "valid_quality",
];

/// The time mask of the protocol description, when neither the station nor the line gives one.
pub const DEFAULT_TIME_MASK: &str = "yyyy-mm-dd hh:mi:ss.mss";

/// The CSV separator when neither the station nor the line gives one.
pub const DEFAULT_CSV_SEPARATOR: &str = ",";

/// The quality values that mean valid unless `valid_quality` says otherwise: WCC Lite's `1` and
/// Kepware's `true`.
pub const DEFAULT_VALID_QUALITY: &str = "1, true";

/// The highest CSV field position accepted.
pub const MAX_CSV_FIELD: usize = 65_535;

/// The payload parameters as a line or a station gave them (`None`: not given). Each value was
/// checked when it was read; what depends on the payload type is checked once the station's
/// settings are resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PayloadParams {
    pub payload_type: Option<PayloadType>,
    pub time_field_name: Option<String>,
    pub time_mask: Option<String>,
    pub ignore_missing_time: Option<bool>,
    /// CSV payloads: the character between fields.
    pub csv_separator: Option<String>,
    /// JSON payloads: the time stamp inside the array element a tag selects (`[id="T1"]`).
    pub item_time_field: Option<String>,
    /// Where a value's quality is: a CSV field position, or a JSON address inside the element a
    /// tag selects. Empty: no quality is read.
    pub quality_field: Option<String>,
    /// The quality values that mean valid, separated by commas.
    pub valid_quality: Option<String>,
}

impl PayloadParams {
    /// Reads parameter `p`, whose canonical name `key` is one of [`PAYLOAD_PARAMETERS`].
    pub(crate) fn set(&mut self, key: &str, p: &Param) -> Result<(), ConfigError> {
        let value = p.value;
        match key {
            "payload_type" => self.payload_type = Some(payload_type(p)?),
            "time_field_name" => self.time_field_name = Some(address(p)?),
            "time_mask" => {
                TimeMask::parse(value).map_err(|r| p.invalid(r))?;
                self.time_mask = Some(value.to_string());
            }
            "ignore_missing_time" => self.ignore_missing_time = Some(p.yes_no()?),
            "csv_separator" => {
                crate::csv::separator(value).map_err(|r| p.invalid(r))?;
                self.csv_separator = Some(value.to_string());
            }
            "item_time_field" => self.item_time_field = Some(address(p)?),
            "quality_field" => self.quality_field = Some(address(p)?),
            "valid_quality" => {
                valid_qualities(value).map_err(|r| p.invalid(r))?;
                self.valid_quality = Some(value.to_string());
            }
            other => return Err(crate::params::unhandled(p.object, other)),
        }
        Ok(())
    }
}

fn payload_type(p: &Param) -> Result<PayloadType, ConfigError> {
    match normalize_key(p.value).as_str() {
        "text_only" | "text" => Ok(PayloadType::Text),
        "json" => Ok(PayloadType::Json),
        "csv" => Ok(PayloadType::Csv),
        "sparkplug_b" | "sparkplug" | "spb" => Ok(PayloadType::SparkplugB),
        "sparkplug_edge_node" | "sparkplug_edge" => Ok(PayloadType::SparkplugEdge),
        _ => Err(p.invalid(
            "expected 'Text only', 'JSON', 'CSV', 'Sparkplug B' or 'Sparkplug Edge Node'",
        )),
    }
}

/// A time field name is a JSON address (empty means none); so are the item time and quality
/// fields. A CSV station's field positions (`2`) are JSON addresses too, checked as positions
/// once the payload type is known (payload.rs). The value is kept trimmed.
fn address(p: &Param) -> Result<String, ConfigError> {
    let v = p.value.trim();
    if !v.is_empty() {
        JsonPath::parse(v).map_err(|e| p.invalid(format!("not a JSON address: {e}")))?;
    }
    Ok(v.to_string())
}

/// A CSV field position as written (`2`, from 1), counted from 0; empty: none.
pub fn field_position(text: &str) -> Result<Option<usize>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_CSV_FIELD).contains(&n) => Ok(Some(n - 1)),
        _ => Err(format!(
            "with payload type CSV this is a field position, a whole number from 1 to {}",
            MAX_CSV_FIELD
        )),
    }
}

/// The list of `valid_quality`: values separated by commas, at least one.
pub fn valid_qualities(text: &str) -> Result<Vec<String>, String> {
    let list: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect();
    if list.is_empty() {
        return Err("expected at least one value, values separated by commas".into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(key: &str, value: &str) -> Result<PayloadParams, ConfigError> {
        let mut p = PayloadParams::default();
        p.set(
            key,
            &Param {
                object: "station 's'",
                name: key,
                value,
            },
        )?;
        Ok(p)
    }

    #[test]
    fn each_parameter_is_read_and_checked() {
        let p = read("payload_type", "Sparkplug B").unwrap();
        assert_eq!(p.payload_type, Some(PayloadType::SparkplugB));
        let p = read("time_field_name", " rx.time ").unwrap();
        assert_eq!(p.time_field_name.as_deref(), Some("rx.time"));
        let p = read("ignore_missing_time", "YES").unwrap();
        assert_eq!(p.ignore_missing_time, Some(true));
        for (key, value, needle) in [
            ("payload_type", "XML", "Text only"),
            ("time_field_name", "a..b", "position 3"),
            ("time_mask", "hh:mi", "needs a year"),
            ("ignore_missing_time", "maybe", "YES or NO"),
            ("csv_separator", ",;", "one character"),
            ("item_time_field", "a[0]", "count from 1"),
            ("quality_field", "a..b", "position 3"),
            ("valid_quality", " , ", "at least one"),
        ] {
            let err = read(key, value).unwrap_err().to_string();
            assert!(
                err.contains("station 's'") && err.contains(key) && err.contains(needle),
                "{key} = {value:?}: {err}"
            );
        }
    }

    #[test]
    fn field_positions_count_from_one() {
        assert_eq!(field_position(""), Ok(None));
        assert_eq!(field_position("1"), Ok(Some(0)));
        assert!(field_position("0").is_err());
        assert!(field_position("65536").is_err());
    }
}
