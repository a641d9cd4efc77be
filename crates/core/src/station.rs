//! Station parameters, commands and states.

use crate::error::ConfigError;
use crate::params::{normalize_key, suggestion};

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

/// Station protocol parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StationParams {
    /// Station Will Topic: a message on it means the device is gone.
    pub will_topic: String,
    /// Station Will Payload: when set, the will message must also carry exactly this payload.
    pub will_payload: String,
}

/// Canonical station parameter names (after [`normalize_key`]).
pub const STATION_PARAMETERS: &[&str] = &["swt", "swp"];

impl StationParams {
    pub fn from_params<'a>(
        object: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<StationParams, ConfigError> {
        let mut p = StationParams::default();
        for (name, value) in params {
            let key = normalize_key(name);
            match key.as_str() {
                "swt" | "station_will_topic" => p.will_topic = value.to_string(),
                "swp" | "station_will_payload" => p.will_payload = value.to_string(),
                _ => {
                    return Err(ConfigError::UnknownParameter {
                        object: object.to_string(),
                        param: name.to_string(),
                        suggestion: suggestion(&key, STATION_PARAMETERS),
                    })
                }
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
        let err = StationParams::from_params("station 's'", [("SWX", "1")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("station 's'") && err.contains("'SWX'"),
            "{err}"
        );
    }
}
