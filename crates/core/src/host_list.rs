//! The broker host list of a line (`host`, and any parameter that names brokers the same way):
//! entries separated by `,` or `;`, each a name or address with its own port or none.
//!
//! A port per entry is what several brokers on one machine need (the nodes of a cluster on
//! loopback, a plain and a TLS listener), and what a cluster of machines with different listener
//! ports needs; an entry without one uses the line's `port`, so every list written before keeps
//! its meaning.
//!
//! The entry forms:
//! - `name` or `192.0.2.7`: the line's port;
//! - `name:1883`, `192.0.2.7:8883`: that port;
//! - `[::1]` or `[::1]:1883`: an IPv6 address in brackets, with or without a port;
//! - `::1`, `fe80::1`: a bare IPv6 address (more than one `:`), always the line's port, as before;
//!   a port needs the brackets, since `fe80::1:1883` could be either.

use crate::error::ConfigError;
use crate::params::Param;

/// One broker of the list: where to connect, and the port the entry gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// A name or an address; an IPv6 address without its brackets.
    pub host: String,
    /// The entry's own port; `None`: the line's `port`.
    pub port: Option<u16>,
}

impl HostEntry {
    /// An entry without a port of its own.
    pub fn new(host: impl Into<String>) -> HostEntry {
        HostEntry {
            host: host.into(),
            port: None,
        }
    }

    /// The port to connect to: the entry's own, else `default_port` (the line's).
    pub fn port_or(&self, default_port: u16) -> u16 {
        self.port.unwrap_or(default_port)
    }
}

/// The list as a person reads it, every entry with the port it connects to (`a:1883;b:8883`),
/// for messages that name all the brokers of a connection.
pub fn describe_host_list(entries: &[HostEntry], default_port: u16) -> String {
    entries
        .iter()
        .map(|e| crate::proxy_url::host_port(&e.host, e.port_or(default_port)))
        .collect::<Vec<_>>()
        .join(";")
}

/// Why a host list is refused; each names the entry and, where one is at fault, the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostListError {
    #[error("expected at least one host name or address")]
    Empty,
    #[error("host '{entry}' contains white space")]
    WhiteSpace { entry: String },
    #[error("entry '{entry}' has no host before the port")]
    NoHost { entry: String },
    #[error("entry '{entry}': the IPv6 address in '[' lacks its ']'")]
    UnclosedBracket { entry: String },
    #[error("entry '{entry}': after ']' only ':port' may follow, not '{rest}'")]
    AfterBracket { entry: String, rest: String },
    #[error("entry '{entry}': port '{port}' is not a number from 1 to 65535")]
    BadPort { entry: String, port: String },
}

/// A host list parameter (`host`, `redundant_host`): its error names the parameter and value.
pub(crate) fn from_param(p: &Param) -> Result<Vec<HostEntry>, ConfigError> {
    parse_host_list(p.value).map_err(|e| p.invalid(e.to_string()))
}

/// Reads a host list. Spaces around entries are trimmed and empty entries skipped, as always.
pub fn parse_host_list(text: &str) -> Result<Vec<HostEntry>, HostListError> {
    let entries = text
        .split([',', ';'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(parse_entry)
        .collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Err(HostListError::Empty);
    }
    Ok(entries)
}

/// Reads one entry (trimmed, not empty).
fn parse_entry(entry: &str) -> Result<HostEntry, HostListError> {
    let owned = || entry.to_string();
    if entry.contains(char::is_whitespace) {
        return Err(HostListError::WhiteSpace { entry: owned() });
    }
    let (host, port) = if let Some(inner) = entry.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| HostListError::UnclosedBracket { entry: owned() })?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| HostListError::AfterBracket {
                        entry: owned(),
                        rest: after.to_string(),
                    })?,
            ),
        };
        (host, port)
    } else {
        match entry.split_once(':') {
            // One ':' separates a port; more are a bare IPv6 address (the form lists had before).
            Some((host, port)) if !port.contains(':') => (host, Some(port)),
            _ => (entry, None),
        }
    };
    if host.is_empty() {
        return Err(HostListError::NoHost { entry: owned() });
    }
    let port = match port {
        None => None,
        Some(text) => Some(text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            HostListError::BadPort {
                entry: owned(),
                port: text.to_string(),
            }
        })?),
    };
    Ok(HostEntry {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, port: Option<u16>) -> HostEntry {
        HostEntry {
            host: host.into(),
            port,
        }
    }

    /// A list's text and the entries (host, own port) it must give.
    type Row = (&'static str, &'static [(&'static str, Option<u16>)]);

    #[test]
    fn host_lists_are_read() {
        let rows: &[Row] = &[
            // The old form: names and addresses, the line's port for all.
            ("broker", &[("broker", None)]),
            ("a, b;c", &[("a", None), ("b", None), ("c", None)]),
            (" a ;; , b ", &[("a", None), ("b", None)]),
            ("192.0.2.7", &[("192.0.2.7", None)]),
            ("::1", &[("::1", None)]),
            ("fe80::1:1883", &[("fe80::1:1883", None)]),
            // A port per entry.
            (
                "broker1:1883; broker2:8883",
                &[("broker1", Some(1883)), ("broker2", Some(8883))],
            ),
            ("a:1884, b", &[("a", Some(1884)), ("b", None)]),
            ("127.0.0.2:65535", &[("127.0.0.2", Some(65535))]),
            ("[::1]:1883", &[("::1", Some(1883))]),
            ("[::1]", &[("::1", None)]),
            ("[fe80::1]:1, ::2", &[("fe80::1", Some(1)), ("::2", None)]),
        ];
        for (text, want) in rows {
            let want: Vec<HostEntry> = want.iter().map(|(h, p)| entry(h, *p)).collect();
            assert_eq!(parse_host_list(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_host_lists_are_refused_naming_the_entry_and_value() {
        let rows: &[(&str, &str)] = &[
            ("", "at least one host"),
            (" ; , ", "at least one host"),
            ("a b", "host 'a b' contains white space"),
            (
                "a, b:0",
                "entry 'b:0': port '0' is not a number from 1 to 65535",
            ),
            ("b:65536", "entry 'b:65536': port '65536'"),
            ("b:http", "entry 'b:http': port 'http'"),
            ("b:", "entry 'b:': port ''"),
            ("b:-1", "entry 'b:-1': port '-1'"),
            (":1883", "entry ':1883' has no host"),
            ("[]:1883", "entry '[]:1883' has no host"),
            (
                "[::1:1883",
                "entry '[::1:1883': the IPv6 address in '[' lacks its ']'",
            ),
            ("[::1]1883", "after ']' only ':port' may follow, not '1883'"),
            ("[::1]:x", "entry '[::1]:x': port 'x'"),
        ];
        for (text, want) in rows {
            let err = parse_host_list(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn an_entry_without_a_port_uses_the_lines() {
        assert_eq!(entry("a", None).port_or(8883), 8883);
        assert_eq!(entry("a", Some(1884)).port_or(8883), 1884);
    }
}
