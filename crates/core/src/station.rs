//! Station parameters, commands and states.

use std::time::Duration;

use crate::error::ConfigError;
use crate::params::{normalize_key, unhandled, GivenOnce, Param};
use crate::payload_params::{PayloadParams, PayloadType, PAYLOAD_PARAMETERS};
use crate::time_mask::TimeZone;

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
    /// The payload parameters the station gives over the line's (payload_params.rs).
    pub payload: PayloadParams,
    /// The zone of payload time stamps that carry none.
    pub time_zone: TimeZone,
    /// With ACK_ID: how many messages may wait behind the shown one before QoS 0 ones are
    /// dropped (see ack_gate.rs).
    pub max_held_messages: usize,
    /// STALE: while the line is connected, the station goes to comm error when no message came
    /// for this long; `None` (0) is off.
    pub stale: Option<Duration>,
    /// MQTT 5 Content Type and Response Topic of the station's writes (else the line's).
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    /// OUT_VALUE payloads gzip-compressed (else the line's `compress_writes`).
    pub compress_writes: Option<bool>,
    /// Subscribe Station Address: the line subscribes to the station's address (the filter
    /// covering it, station_filter.rs) while the station is on.
    pub subscribe_station_address: bool,
}

impl Default for StationParams {
    fn default() -> Self {
        StationParams {
            will_topic: String::new(),
            will_payload: String::new(),
            payload: PayloadParams::default(),
            time_zone: TimeZone::Local,
            max_held_messages: crate::ack_gate::DEFAULT_MAX_HELD,
            stale: None,
            content_type: None,
            response_topic: None,
            compress_writes: None,
            subscribe_station_address: false,
        }
    }
}

/// The largest `max_held_messages` accepted: a million small messages are about 200 MB.
const MAX_HELD_LIMIT: usize = 1_000_000;

/// The longest STALE accepted: a week, for devices that report daily.
const MAX_STALE_SECS: f64 = 7.0 * 86400.0;

/// Canonical station parameter names (after [`normalize_key`]).
pub const STATION_PARAMETERS: &[&str] = &[
    "swt",
    "swp",
    "payload_type",
    "time_field_name",
    "time_mask",
    "ignore_missing_time",
    "csv_separator",
    "item_time_field",
    "quality_field",
    "valid_quality",
    "time_zone",
    "max_held_messages",
    "stale",
    "content_type",
    "response_topic",
    "compress_writes",
    "subscribe_station_address",
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
                "payload_type" => {
                    p.payload.set("payload_type", &param)?;
                    if matches!(
                        p.payload.payload_type,
                        Some(PayloadType::SparkplugB | PayloadType::SparkplugEdge)
                    ) {
                        return Err(param.invalid(
                            "Sparkplug is a line's payload type (payload_type of the line), \
                             not a station's",
                        ));
                    }
                }
                other if PAYLOAD_PARAMETERS.contains(&other) => p.payload.set(other, &param)?,
                "time_zone" => {
                    p.time_zone = TimeZone::parse(value).map_err(|r| param.invalid(r))?
                }
                "max_held_messages" => {
                    p.max_held_messages = param.integer(0, MAX_HELD_LIMIT as u64)? as usize
                }
                "stale" => {
                    let d = param.seconds(MAX_STALE_SECS)?;
                    p.stale = (!d.is_zero()).then_some(d);
                }
                "content_type" => p.content_type = Some(value.to_string()),
                "response_topic" => {
                    if value.contains(['+', '#']) {
                        return Err(param.invalid("a response topic may not contain '+' or '#'"));
                    }
                    p.response_topic = Some(value.to_string())
                }
                "compress_writes" => p.compress_writes = Some(param.yes_no()?),
                "subscribe_station_address" => p.subscribe_station_address = param.yes_no()?,
                other => return Err(unhandled(object, other)),
            }
        }
        Ok(p)
    }
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
        assert_eq!(p.payload.payload_type, Some(PayloadType::Json));
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
            ("STALE", "soon", "number of seconds"),
            ("STALE", "-1", "from 0 to 604800"),
            ("STALE", "NaN", "from 0 to 604800"),
            ("STALE", "604801", "from 0 to 604800"),
        ] {
            let err = StationParams::from_params("station 's'", [(k, v)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("station 's'") && err.contains(v) && err.contains(needle),
                "{err}"
            );
        }
        for (value, stale) in [
            ("5", Some(Duration::from_secs(5))),
            (" 0.25 ", Some(Duration::from_millis(250))),
            ("0", None),
        ] {
            let p = StationParams::from_params("station 's'", [("STALE", value)]).unwrap();
            assert_eq!(p.stale, stale, "STALE = {value:?}");
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
