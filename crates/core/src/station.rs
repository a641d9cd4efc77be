//! Station parameters, commands and states.

use crate::config::PayloadType;
use crate::error::ConfigError;
use crate::json_path::JsonPath;
use crate::params::{normalize_key, unhandled, GivenOnce, Param};
use crate::time_mask::{TimeMask, TimeZone};

/// What the host asked a station to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationCommand {
    On,
    Off,
    Simulate,
}

/// A station's state as reported to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationState {
    Ok,
    /// The device itself failed (its will message arrived).
    HardError,
    /// No connection to the broker.
    CommError,
    Off,
    Simulation,
}

impl StationState {
    pub fn name(self) -> &'static str {
        match self {
            StationState::Ok => "ok",
            StationState::HardError => "hard_error",
            StationState::CommError => "comm_error",
            StationState::Off => "off",
            StationState::Simulation => "simulation",
        }
    }
}

/// Station protocol parameters. The payload settings override the line's when set, so one line
/// can carry device families that publish differently.
#[derive(Debug, Clone, PartialEq)]
pub struct StationParams {
    /// Station Will Topic: a message on it means the device is gone.
    pub will_topic: String,
    /// Station Will Payload: when set, the will message must also carry exactly this payload.
    pub will_payload: String,
    pub payload_type: Option<PayloadType>,
    pub time_field_name: Option<String>,
    pub time_mask: Option<String>,
    pub ignore_missing_time: Option<bool>,
    /// The zone of payload time stamps that carry none.
    pub time_zone: TimeZone,
    /// With ACK_ID: how many messages may wait behind the shown one before QoS 0 ones are
    /// dropped (see ack_gate.rs).
    pub max_held_messages: usize,
    /// MQTT 5 Content Type and Response Topic of the station's writes (else the line's).
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
}

impl Default for StationParams {
    fn default() -> Self {
        StationParams {
            will_topic: String::new(),
            will_payload: String::new(),
            payload_type: None,
            time_field_name: None,
            time_mask: None,
            ignore_missing_time: None,
            time_zone: TimeZone::Local,
            max_held_messages: crate::ack_gate::DEFAULT_MAX_HELD,
            content_type: None,
            response_topic: None,
        }
    }
}

/// The largest `max_held_messages` accepted: a million small messages are about 200 MB.
const MAX_HELD_LIMIT: usize = 1_000_000;

/// Canonical station parameter names (after [`normalize_key`]).
pub const STATION_PARAMETERS: &[&str] = &[
    "swt",
    "swp",
    "payload_type",
    "time_field_name",
    "time_mask",
    "ignore_missing_time",
    "time_zone",
    "max_held_messages",
    "content_type",
    "response_topic",
];

impl StationParams {
    pub fn from_params<'a>(
        object: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<StationParams, ConfigError> {
        let mut p = StationParams::default();
        let mut given = GivenOnce::default();
        for (name, value) in params {
            let key = normalize_key(name);
            let param = Param {
                object,
                name,
                value,
            };
            let alias = match key.as_str() {
                "station_will_topic" => "swt",
                "station_will_payload" => "swp",
                k => k,
            };
            match given.accept(&param, &key, alias, STATION_PARAMETERS)? {
                "swt" => p.will_topic = value.to_string(),
                "swp" => p.will_payload = value.to_string(),
                "payload_type" => p.payload_type = Some(crate::config::payload_type(&param)?),
                "time_field_name" => {
                    check_time_field(&param)?;
                    p.time_field_name = Some(value.trim().to_string());
                }
                "time_mask" => {
                    TimeMask::parse(value).map_err(|r| param.invalid(r))?;
                    p.time_mask = Some(value.to_string());
                }
                "ignore_missing_time" => p.ignore_missing_time = Some(param.yes_no()?),
                "time_zone" => {
                    p.time_zone = TimeZone::parse(value).map_err(|r| param.invalid(r))?
                }
                "max_held_messages" => {
                    p.max_held_messages = param.integer(0, MAX_HELD_LIMIT as u64)? as usize
                }
                "content_type" => p.content_type = Some(value.to_string()),
                "response_topic" => {
                    if value.contains(['+', '#']) {
                        return Err(param.invalid("a response topic may not contain '+' or '#'"));
                    }
                    p.response_topic = Some(value.to_string())
                }
                other => return Err(unhandled(object, other)),
            }
        }
        Ok(p)
    }
}

/// A time field name is a JSON address (empty means none).
pub fn check_time_field(p: &Param) -> Result<(), ConfigError> {
    let v = p.value.trim();
    if !v.is_empty() {
        JsonPath::parse(v).map_err(|e| p.invalid(format!("not a JSON address: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn will_parameters_by_keyword_or_full_name() {
        let p = StationParams::from_params(
            "station 's'",
            [("SWT", "dev/will"), ("Station Will Payload", "gone")],
        )
        .unwrap();
        assert_eq!(p.will_topic, "dev/will");
        assert_eq!(p.will_payload, "gone");
        let p = StationParams::from_params(
            "station 's'",
            [
                ("payload_type", "JSON"),
                ("Time Field Name", "rx.time"),
                ("time_mask", "ISO8601"),
                ("time_zone", "UTC"),
            ],
        )
        .unwrap();
        assert_eq!(p.payload_type, Some(PayloadType::Json));
        assert_eq!(p.time_zone, TimeZone::Utc);
        assert_eq!(p.max_held_messages, crate::ack_gate::DEFAULT_MAX_HELD);
        let p = StationParams::from_params("station 's'", [("Max. Held Messages", "5")]).unwrap();
        assert_eq!(p.max_held_messages, 5);
        for (k, v, needle) in [
            ("time_mask", "hh:mi", "needs a year"),
            ("time_field_name", "a..b", "position 3"),
            ("time_zone", "Mars", "expected local"),
            ("max_held_messages", "-1", "whole number"),
            ("max_held_messages", "1000001", "1000000"),
        ] {
            let err = StationParams::from_params("station 's'", [(k, v)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("station 's'") && err.contains(v) && err.contains(needle),
                "{err}"
            );
        }
        let err = StationParams::from_params("station 's'", [("SWX", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("station 's'") && err.contains("'SWX'"),
            "{err}"
        );
    }
}
