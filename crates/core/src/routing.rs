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

use regex::RegexSet;

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

impl Router {
    /// Builds the table. Returns warnings for addresses that are not what they may seem.
    pub fn build(entries: &[RouteEntry]) -> Result<(Router, Vec<String>), ConfigError> {
        let mut router = Router::default();
        let mut warnings = Vec::new();
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
                "" => {
                    return Err(ConfigError::InvalidAddress {
                        object: format!("station '{}'", e.name),
                        address: String::new(),
                        reason: "a station address may not be empty".into(),
                    })
                }
                "#" => router.catch_all = Some(e.station),
                ".*" => router.fallback = Some(e.station),
                address => {
                    router.exact.insert(address.to_string(), e.station);
                    if looks_like_mqtt_filter(address) {
                        warnings.push(format!(
                            "station '{}': address '{}' looks like an MQTT topic filter, but \
                             station addresses are regular expressions (use '[^/]+' for one \
                             level and '.*' for several)",
                            e.name, address
                        ));
                    }
                    match regex::Regex::new(&anchored(address)) {
                        Ok(_) => patterns.push((address, e.station)),
                        Err(err) => warnings.push(format!(
                            "station '{}': address '{}' is not a valid regular expression, so \
                             it matches only that exact topic ({})",
                            e.name,
                            address,
                            first_line(&err.to_string())
                        )),
                    }
                }
            }
        }

        // Addresses that contain no regex syntax match only themselves: the hash lookup already
        // covers them, so the set stays small.
        patterns.retain(|(address, _)| has_regex_syntax(address));
        patterns.sort_by(|a, b| b.0.cmp(a.0));
        if !patterns.is_empty() {
            let set = RegexSet::new(patterns.iter().map(|(a, _)| anchored(a))).map_err(|e| {
                ConfigError::InvalidAddress {
                    object: "line".into(),
                    address: String::new(),
                    reason: format!("station addresses do not compile together: {e}"),
                }
            })?;
            router.regexes = Some(set);
            router.regex_stations = patterns.iter().map(|(_, s)| *s).collect();
        }
        Ok((router, warnings))
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

fn first_line(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .last()
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

    fn router(addresses: &[&str]) -> (Router, Vec<String>) {
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
            let (r, _) = router(addresses);
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
        let (_, w) = router(&["a/+/b"]);
        assert!(w[0].contains("looks like an MQTT topic filter"), "{w:?}");
        let (_, w) = router(&["bad(["]);
        assert!(w[0].contains("not a valid regular expression"), "{w:?}");
        let (_, w) = router(&["plain/topic", "re/.*"]);
        assert!(w.is_empty(), "{w:?}");
    }
}
