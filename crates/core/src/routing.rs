//! Which station a received topic belongs to.
//!
//! The rule, in order of priority:
//! 1. a station with address `#` takes every message;
//! 2. a station whose address equals the topic;
//! 3. stations whose address, read as a regular expression, matches the whole topic, tried in
//!    descending order of the address text (so `status/battery` is tried before `status/batt.*`);
//! 4. the station with address `.*`;
//! 5. otherwise the message belongs to no station.
//!
//! Exact addresses are one hash lookup. All regular expressions are compiled once into a single
//! `RegexSet`, so a topic is matched against every expression in one pass; among the matches the
//! one with the greatest address wins.

use std::collections::HashMap;

use regex::{RegexSet, RegexSetBuilder};

/// Compiled size allowed for all station expressions together (the default of 10 MiB is too
/// small for thousands of stations).
const REGEX_SIZE_LIMIT: usize = 256 << 20;

use crate::error::ConfigError;

/// A station address as the router sees it.
pub struct RouteEntry<'a> {
    /// Index the caller uses for the station.
    pub station: usize,
    /// The station's name, for messages.
    pub name: &'a str,
    pub address: &'a str,
}

/// The routing table of one line.
#[derive(Debug, Default)]
pub struct Router {
    catch_all: Option<usize>,
    exact: HashMap<String, usize>,
    regexes: Option<RegexSet>,
    /// Station of each pattern of `regexes`, in descending order of address.
    regex_stations: Vec<usize>,
    fallback: Option<usize>,
}

/// Checks one station address on its own, before the table is built: an empty address is
/// refused; an address that is not a valid regular expression or looks like an MQTT filter gets a
/// warning that explains how it will be matched.
pub fn check_address(name: &str, address: &str) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    if address.is_empty() {
        return Err(ConfigError::InvalidAddress {
            object: format!("station '{name}'"),
            address: String::new(),
            reason: "a station address may not be empty".into(),
        });
    }
    if address == "#" || address == ".*" {
        return Ok(warnings);
    }
    if looks_like_mqtt_filter(address) {
        warnings.push(format!(
            "station '{name}': address '{address}' looks like an MQTT topic filter, but station \
             addresses are regular expressions (use '[^/]+' for one level and '.*' for several)"
        ));
    }
    if let Err(err) = regex::Regex::new(&anchored(address)) {
        warnings.push(format!(
            "station '{name}': address '{address}' is not a valid regular expression, so it \
             matches only that exact topic ({})",
            last_line(&err.to_string())
        ));
    }
    Ok(warnings)
}

impl Router {
    /// Builds the table. Addresses must be unique and not empty (see [`check_address`]).
    pub fn build(entries: &[RouteEntry]) -> Result<Router, ConfigError> {
        let mut router = Router::default();
        let mut seen: HashMap<&str, &str> = HashMap::with_capacity(entries.len());
        let mut patterns: Vec<(&str, usize)> = Vec::new();

        for e in entries {
            if let Some(other) = seen.insert(e.address, e.name) {
                return Err(ConfigError::DuplicateAddress {
                    object: format!("station '{}'", e.name),
                    address: e.address.to_string(),
                    other: other.to_string(),
                });
            }
            match e.address {
                "#" => router.catch_all = Some(e.station),
                ".*" => router.fallback = Some(e.station),
                address => {
                    router.exact.insert(address.to_string(), e.station);
                    // Addresses without regex syntax match only themselves: the hash lookup
                    // covers them, which keeps the set small.
                    if has_regex_syntax(address) && regex::Regex::new(&anchored(address)).is_ok() {
                        patterns.push((address, e.station));
                    }
                }
            }
        }

        patterns.sort_by(|a, b| b.0.cmp(a.0));
        if !patterns.is_empty() {
            let set = RegexSetBuilder::new(patterns.iter().map(|(a, _)| anchored(a)))
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| ConfigError::InvalidAddress {
                    object: "line".into(),
                    address: String::new(),
                    reason: format!("station addresses do not compile together: {e}"),
                })?;
            router.regexes = Some(set);
            router.regex_stations = patterns.iter().map(|(_, s)| *s).collect();
        }
        Ok(router)
    }

    /// The station a topic is routed to, if any.
    pub fn route(&self, topic: &str) -> Option<usize> {
        if self.catch_all.is_some() {
            return self.catch_all;
        }
        if let Some(&station) = self.exact.get(topic) {
            return Some(station);
        }
        if let Some(set) = &self.regexes {
            // The lowest pattern index is the greatest address: the most specific expression.
            if let Some(i) = set.matches(topic).iter().next() {
                return Some(self.regex_stations[i]);
            }
        }
        self.fallback
    }
}

fn anchored(address: &str) -> String {
    format!("^(?:{address})$")
}

/// The regex crate's message ends with the line that says what is wrong.
fn last_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// True when the address uses a character that means something in a regular expression.
fn has_regex_syntax(address: &str) -> bool {
    address.chars().any(|c| {
        matches!(
            c,
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' | '\\'
        )
    })
}

/// `a/+/b`, `a/#`, `+/x`: MQTT wildcard levels, which mean something else in a regex.
fn looks_like_mqtt_filter(address: &str) -> bool {
    address.split('/').any(|level| level == "+" || level == "#")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(addresses: &[&str]) -> Router {
        let entries: Vec<RouteEntry> = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| RouteEntry {
                station: i,
                name: a,
                address: a,
            })
            .collect();
        Router::build(&entries).unwrap()
    }

    /// Each row: the station addresses of a line, a topic, and the address that must get it.
    #[test]
    fn routing_priority() {
        let rows: &[(&[&str], &str, Option<&str>)] = &[
            // `#` takes everything, even an exact match elsewhere.
            (&["#", "a/b", ".*"], "a/b", Some("#")),
            (&["#"], "anything/at/all", Some("#")),
            // Exact beats every regular expression and `.*`.
            (
                &["status/battery", "status/batt.*", ".*"],
                "status/battery",
                Some("status/battery"),
            ),
            // Exact match also applies to addresses that are regular expressions.
            (
                &["status/batt.*", "status/b.*"],
                "status/batt.*",
                Some("status/batt.*"),
            ),
            // Regular expressions in descending order of the address text.
            (
                &["status/b.*", "status/batt.*"],
                "status/battery2",
                Some("status/batt.*"),
            ),
            (
                &["status/.*", "status/b.*"],
                "status/battery",
                Some("status/b.*"),
            ),
            (&["z.*", "a.*", "[a-z]+/.*"], "a/x", Some("a.*")),
            // A full match is required.
            (&["status/b", ".*"], "status/battery", Some(".*")),
            (&["batt.*"], "status/battery", None),
            // `.*` is last and takes what nobody else did.
            (&[".*", "x"], "y", Some(".*")),
            // Nothing matches.
            (&["a", "b/.*"], "c/d", None),
            // An invalid expression still works as an exact topic.
            (&["sensor/[x", ".*"], "sensor/[x", Some("sensor/[x")),
            (&["sensor/[x", ".*"], "sensor/x", Some(".*")),
            // `a/+/b` is a regex: '/+' means one or more slashes.
            (&["a/+/b"], "a//b", Some("a/+/b")),
            (&["a/+/b"], "a/x/b", None),
            // Alternation must be anchored as a whole.
            (&["a|b"], "ab", None),
            (&["a|b"], "b", Some("a|b")),
        ];
        for (addresses, topic, want) in rows {
            let r = router(addresses);
            let got = r.route(topic).map(|i| addresses[i]);
            assert_eq!(got, *want, "stations {addresses:?}, topic {topic:?}");
        }
    }

    #[test]
    fn duplicate_addresses_are_refused() {
        let entries = [
            RouteEntry {
                station: 0,
                name: "one",
                address: "a/b",
            },
            RouteEntry {
                station: 1,
                name: "two",
                address: "a/b",
            },
        ];
        let err = Router::build(&entries).unwrap_err().to_string();
        assert!(err.contains("station 'two'"), "{err}");
        assert!(
            err.contains("'a/b'") && err.contains("station 'one'"),
            "{err}"
        );
    }

    #[test]
    fn warnings_explain_odd_addresses() {
        let w = check_address("s", "a/+/b").unwrap();
        assert!(w[0].contains("looks like an MQTT topic filter"), "{w:?}");
        let w = check_address("s", "bad([").unwrap();
        assert!(w[0].contains("not a valid regular expression"), "{w:?}");
        for ok in ["plain/topic", "re/.*", "#", ".*"] {
            assert!(check_address("s", ok).unwrap().is_empty(), "{ok}");
        }
        assert!(check_address("s", "").is_err());
    }
}
