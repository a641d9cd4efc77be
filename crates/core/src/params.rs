//! Reading parameter text as an engineering tool stores it: names in any spelling, YES/NO, QoS.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::ConfigError;
use crate::packet::QoS;

/// Folds a parameter name to its canonical snake_case key, so that `Topic Filter`,
/// `topic-filter`, `TOPIC_FILTER` and `Max. Wait Retry` all find their parameter.
pub fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut pending_sep = false;
    for c in key.trim().chars() {
        if c.is_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.extend(c.to_lowercase());
        } else {
            pending_sep = true;
        }
    }
    out
}

/// The known name closest to `key`, phrased for an error message (empty when nothing is close).
pub fn suggestion(key: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(key, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default()
}

/// The most bytes an MQTT string (client id, user name, password, will topic and message, topic,
/// topic filter) can hold: its length is sent in two bytes.
pub const MQTT_STRING_MAX: usize = 65_535;

/// Which canonical parameters one set of parameters gave, under which spelling: the same
/// parameter given twice (`topic_filter` and `Topic Filter`, `host` and `hosts`) is refused
/// rather than letting the order decide.
#[derive(Default)]
pub(crate) struct GivenOnce<'a> {
    given: HashMap<&'static str, &'a str>,
}

impl<'a> GivenOnce<'a> {
    /// Accepts parameter `p`, whose name folds to `key` and means `canonical` (`key` itself or
    /// the name it is another spelling of): returns its name in `known`, or why it is refused
    /// (unknown, given twice, or a value that breaks [`Param::check_text`]).
    pub(crate) fn accept(
        &mut self,
        p: &Param<'a>,
        key: &str,
        canonical: &str,
        known: &[&'static str],
    ) -> Result<&'static str, ConfigError> {
        let Some(&canonical) = known.iter().find(|&&k| k == canonical) else {
            return Err(ConfigError::UnknownParameter {
                object: p.object.to_string(),
                param: p.name.to_string(),
                suggestion: suggestion(key, known),
            });
        };
        if let Some(first) = self.given.insert(canonical, p.name) {
            return Err(ConfigError::DuplicateParameter {
                object: p.object.to_string(),
                canonical: canonical.to_string(),
                first: first.to_string(),
                second: p.name.to_string(),
            });
        }
        p.check_text()?;
        Ok(canonical)
    }
}

/// A known parameter name that the reading code does not handle: a mistake in the core, reported
/// as an error rather than a panic.
pub(crate) fn unhandled(object: &str, name: &str) -> ConfigError {
    ConfigError::State(format!(
        "{object}: internal error: parameter '{name}' is known but not handled"
    ))
}

/// A parameter being read: which object it belongs to, its name and its text.
pub struct Param<'a> {
    pub object: &'a str,
    pub name: &'a str,
    pub value: &'a str,
}

impl Param<'_> {
    pub fn invalid(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            object: self.object.to_string(),
            param: self.name.to_string(),
            value: self.value.to_string(),
            reason: reason.into(),
        }
    }

    /// Every parameter value: no NUL (MQTT strings may not hold U+0000, and a value with one is
    /// cut short by C hosts and tools) and at most [`MQTT_STRING_MAX`] bytes, so that a value that
    /// goes on the wire always fits its length field.
    pub fn check_text(&self) -> Result<(), ConfigError> {
        if self.value.contains('\0') {
            return Err(self.invalid("it contains a NUL character (U+0000)"));
        }
        if self.value.len() > MQTT_STRING_MAX {
            return Err(self.invalid(format!(
                "it is {} bytes long; parameter values are at most {MQTT_STRING_MAX} bytes, the \
                 most an MQTT string can hold",
                self.value.len()
            )));
        }
        Ok(())
    }

    /// YES/NO, also true/false, 1/0, on/off.
    pub fn yes_no(&self) -> Result<bool, ConfigError> {
        match self.value.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "1" | "on" | "y" => Ok(true),
            "no" | "false" | "0" | "off" | "n" => Ok(false),
            _ => Err(self.invalid("expected YES or NO")),
        }
    }

    /// `QoS_0`..`QoS_2`, or 0..2.
    pub fn qos(&self) -> Result<QoS, ConfigError> {
        let v = self.value.trim();
        let digits = v
            .strip_prefix("QoS_")
            .or_else(|| v.strip_prefix("qos_"))
            .or_else(|| v.strip_prefix("QOS_"))
            .unwrap_or(v);
        match digits {
            "0" => Ok(QoS::AtMostOnce),
            "1" => Ok(QoS::AtLeastOnce),
            "2" => Ok(QoS::ExactlyOnce),
            _ => Err(self.invalid("expected QoS_0, QoS_1 or QoS_2")),
        }
    }

    /// A whole number within `min..=max`.
    pub fn integer(&self, min: u64, max: u64) -> Result<u64, ConfigError> {
        let n: u64 =
            self.value.trim().parse().map_err(|_| {
                self.invalid(format!("expected a whole number from {min} to {max}"))
            })?;
        if n < min || n > max {
            return Err(self.invalid(format!("must be from {min} to {max}")));
        }
        Ok(n)
    }

    /// Seconds, fractions allowed, within `0..=max_secs`.
    pub fn seconds(&self, max_secs: f64) -> Result<Duration, ConfigError> {
        let s: f64 = self
            .value
            .trim()
            .parse()
            .map_err(|_| self.invalid("expected a number of seconds"))?;
        if !s.is_finite() || !(0.0..=max_secs).contains(&s) {
            return Err(self.invalid(format!("must be from 0 to {max_secs} seconds")));
        }
        Ok(Duration::from_secs_f64(s))
    }
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_to_snake_case() {
        for (raw, want) in [
            ("Topic Filter", "topic_filter"),
            ("topic_filter", "topic_filter"),
            ("TOPIC-FILTER", "topic_filter"),
            ("Max. Wait Retry", "max_wait_retry"),
            ("  Clean Session Flag ", "clean_session_flag"),
            ("SWT", "swt"),
        ] {
            assert_eq!(normalize_key(raw), want, "{raw}");
        }
    }

    #[test]
    fn suggestion_names_the_nearest_key() {
        let known = ["topic_filter", "subscribe_qos", "client_id"];
        assert_eq!(
            suggestion("topic_filer", &known),
            " (did you mean 'topic_filter'?)"
        );
        assert_eq!(suggestion("zzz", &known), "");
    }

    #[test]
    fn value_forms() {
        let p = |v| Param {
            object: "line",
            name: "x",
            value: v,
        };
        assert!(p("YES").yes_no().unwrap());
        assert!(!p("false").yes_no().unwrap());
        assert!(p("maybe").yes_no().is_err());
        assert_eq!(p("QoS_2").qos().unwrap(), QoS::ExactlyOnce);
        assert_eq!(p("1").qos().unwrap(), QoS::AtLeastOnce);
        assert!(p("QoS_3").qos().is_err());
        assert_eq!(
            p("0.005").seconds(3600.0).unwrap(),
            Duration::from_millis(5)
        );
        assert!(p("-1").seconds(3600.0).is_err());
        assert!(p("NaN").seconds(3600.0).is_err());
        assert_eq!(p("65535").integer(0, 65535).unwrap(), 65535);
        let err = p("70000").integer(0, 65535).unwrap_err().to_string();
        assert!(err.contains("70000") && err.contains("65535"), "{err}");
    }

    #[test]
    fn secret_debug_hides_text() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
    }
}
