//! Printing events: one JSON object per line (`--json`) or readable lines, on stdout.

use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat};
use mqtt_line_abi::{MQL_FLAG_DUPLICATE, MQL_FLAG_RETAINED, MQL_FLAG_TIME_FROM_PAYLOAD};
use serde::Serialize;
use serde_json::json;

use crate::event::Value;
use mqtt_line_host::text::escape_readable;
use mqtt_line_host::text::is_invisible;

/// An event with ids resolved to names, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Line {
        time_ns: i64,
        connected: bool,
        /// host:port when connected, the reason otherwise.
        text: String,
    },
    /// One connection of a redundant line (issue 21) changed state: `connection` is `A` (`host`)
    /// or `B` (`redundant_host`). The line's own state stays [`Event::Line`].
    Connection {
        time_ns: i64,
        connection: &'static str,
        connected: bool,
        /// host:port when connected, the reason otherwise.
        text: String,
    },
    Station {
        time_ns: i64,
        station: String,
        state: String,
        reason: String,
    },
    Value {
        time_ns: i64,
        station: String,
        tag: String,
        type_name: String,
        valid: bool,
        value: Value,
        flags: u32,
    },
    Write {
        time_ns: i64,
        station: String,
        tag: String,
        /// `None` when the write succeeded.
        error: Option<String>,
    },
    /// Where one received message went (`--trace-routing`).
    Route {
        time_ns: i64,
        topic: String,
        payload: String,
        /// `taken`, `unrouted`, `station_off`, `simulated` or `will`.
        outcome: String,
        /// The station, for every outcome but `unrouted`.
        station: Option<String>,
    },
    /// A plugin log message (a JSON event with `--json-logs`, else a line on stderr).
    Log {
        time_ns: i64,
        /// `error`, `warn`, `info`, `debug` or `trace`.
        level: &'static str,
        text: String,
    },
}

/// RFC 3339 UTC with milliseconds, or micro/nanoseconds when the time has finer digits.
pub fn format_time(time_ns: i64) -> String {
    let t = DateTime::from_timestamp_nanos(time_ns);
    let sub_ms = time_ns.rem_euclid(1_000_000);
    let format = if sub_ms == 0 {
        SecondsFormat::Millis
    } else if sub_ms % 1_000 == 0 {
        SecondsFormat::Micros
    } else {
        SecondsFormat::Nanos
    };
    t.to_rfc3339_opts(format, true)
}

/// The JSON form of a value; `null` for an invalid one.
pub fn value_json(valid: bool, value: &Value) -> serde_json::Value {
    if !valid {
        return serde_json::Value::Null;
    }
    match value {
        Value::None => serde_json::Value::Null,
        Value::Int(i) | Value::Quad(i) => json!(i),
        Value::Float(f) | Value::RelTime(f) => json!(f),
        Value::Bool(b) => json!(b),
        Value::Text(s) => json!(s),
        Value::AbsTime(ns) => json!(format_time(*ns)),
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize)]
struct LineJson<'a> {
    event: &'static str,
    /// Only in `connection` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<&'a str>,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    time: String,
}

#[derive(Serialize)]
struct StationJson<'a> {
    event: &'static str,
    station: &'a str,
    state: &'a str,
    reason: &'a str,
    time: String,
}

#[derive(Serialize)]
struct ValueJson<'a> {
    event: &'static str,
    station: &'a str,
    tag: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    value: serde_json::Value,
    valid: bool,
    time: String,
    #[serde(skip_serializing_if = "is_false")]
    duplicate: bool,
    #[serde(skip_serializing_if = "is_false")]
    retained: bool,
    #[serde(skip_serializing_if = "is_false")]
    time_from_payload: bool,
}

#[derive(Serialize)]
struct WriteJson<'a> {
    event: &'static str,
    station: &'a str,
    tag: &'a str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    time: String,
}

#[derive(Serialize)]
struct RouteJson<'a> {
    event: &'static str,
    topic: &'a str,
    payload: &'a str,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    station: Option<&'a str>,
    time: String,
}

#[derive(Serialize)]
struct LogJson<'a> {
    event: &'static str,
    level: &'a str,
    text: &'a str,
    time: String,
}

impl<'a> LineJson<'a> {
    /// A `line` event, or with `connection` a `connection` event; `text` is `host:port` when
    /// connected, the reason otherwise.
    fn new(connection: Option<&'a str>, connected: bool, text: &'a str, time_ns: i64) -> Self {
        LineJson {
            event: if connection.is_some() {
                "connection"
            } else {
                "line"
            },
            connection,
            state: if connected {
                "connected"
            } else {
                "disconnected"
            },
            host: connected.then_some(text),
            reason: (!connected).then_some(text),
            time: format_time(time_ns),
        }
    }
}

/// One JSON object, without the newline.
pub fn json_line(ev: &Event) -> String {
    let result = match ev {
        Event::Line {
            time_ns,
            connected,
            text,
        } => serde_json::to_string(&LineJson::new(None, *connected, text, *time_ns)),
        Event::Connection {
            time_ns,
            connection,
            connected,
            text,
        } => serde_json::to_string(&LineJson::new(Some(connection), *connected, text, *time_ns)),
        Event::Station {
            time_ns,
            station,
            state,
            reason,
        } => serde_json::to_string(&StationJson {
            event: "station",
            station,
            state,
            reason,
            time: format_time(*time_ns),
        }),
        Event::Value {
            time_ns,
            station,
            tag,
            type_name,
            valid,
            value,
            flags,
        } => serde_json::to_string(&ValueJson {
            event: "value",
            station,
            tag,
            type_name,
            value: value_json(*valid, value),
            valid: *valid,
            time: format_time(*time_ns),
            duplicate: flags & MQL_FLAG_DUPLICATE != 0,
            retained: flags & MQL_FLAG_RETAINED != 0,
            time_from_payload: flags & MQL_FLAG_TIME_FROM_PAYLOAD != 0,
        }),
        Event::Write {
            time_ns,
            station,
            tag,
            error,
        } => serde_json::to_string(&WriteJson {
            event: "write",
            station,
            tag,
            ok: error.is_none(),
            error: error.as_deref(),
            time: format_time(*time_ns),
        }),
        Event::Route {
            time_ns,
            topic,
            payload,
            outcome,
            station,
        } => serde_json::to_string(&RouteJson {
            event: "route",
            topic,
            payload,
            outcome,
            station: station.as_deref(),
            time: format_time(*time_ns),
        }),
        Event::Log {
            time_ns,
            level,
            text,
        } => serde_json::to_string(&LogJson {
            event: "log",
            level,
            text,
            time: format_time(*time_ns),
        }),
    };
    // Serializing these plain structs cannot fail; keep the stream line-oriented regardless.
    let line =
        result.unwrap_or_else(|e| json!({ "event": "error", "error": e.to_string() }).to_string());
    json_escape_invisible(line)
}

/// serde_json escapes C0 controls, but passes DEL, C1 and the Unicode separators and bidi
/// controls through raw. They can only occur inside JSON strings, where `\uXXXX` means the same
/// character, so a JSON reader sees the same text and a terminal sees none of them.
pub fn json_escape_invisible(line: String) -> String {
    if !line.chars().any(is_invisible) {
        return line;
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        if is_invisible(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Text values longer than this many characters are cut in readable output.
const READABLE_TEXT_MAX: usize = 200;

/// The first [`READABLE_TEXT_MAX`] characters of a longer text; None when it is not longer.
fn cut_long(s: &str) -> Option<&str> {
    s.char_indices()
        .nth(READABLE_TEXT_MAX)
        .map(|(cut, _)| &s[..cut])
}

/// A value as a readable line shows it: its JSON form, a long text cut after its start, with
/// its length.
pub fn readable_value(value: &Value) -> String {
    match value {
        Value::Text(s) => match cut_long(s) {
            Some(start) => format!("{}... ({} bytes)", json!(start), s.len()),
            None => json!(s).to_string(),
        },
        _ => value_json(true, value).to_string(),
    }
}

/// One readable line, without the newline, with no raw control characters.
pub fn readable_line(ev: &Event) -> String {
    escape_readable(&readable_text(ev))
}

fn readable_text(ev: &Event) -> String {
    match ev {
        Event::Line {
            time_ns,
            connected: true,
            text,
        } => format!("{} line connected {text}", format_time(*time_ns)),
        Event::Line {
            time_ns,
            connected: false,
            text,
        } => format!("{} line disconnected: {text}", format_time(*time_ns)),
        Event::Connection {
            time_ns,
            connection,
            connected: true,
            text,
        } => format!(
            "{} connection {connection} connected {text}",
            format_time(*time_ns)
        ),
        Event::Connection {
            time_ns,
            connection,
            connected: false,
            text,
        } => format!(
            "{} connection {connection} disconnected: {text}",
            format_time(*time_ns)
        ),
        Event::Station {
            time_ns,
            station,
            state,
            reason,
        } => {
            let mut s = format!("{} station {station} {state}", format_time(*time_ns));
            if !reason.is_empty() {
                s.push_str(&format!(" ({reason})"));
            }
            s
        }
        Event::Value {
            time_ns,
            station,
            tag,
            type_name,
            valid,
            value,
            flags,
        } => {
            let shown = if *valid {
                readable_value(value)
            } else {
                "invalid".to_string()
            };
            let mut s = format!(
                "{} value {station}.{tag} = {shown} ({type_name})",
                format_time(*time_ns)
            );
            let marks: Vec<&str> = [
                (MQL_FLAG_DUPLICATE, "duplicate"),
                (MQL_FLAG_RETAINED, "retained"),
                (MQL_FLAG_TIME_FROM_PAYLOAD, "time from payload"),
            ]
            .iter()
            .filter(|(bit, _)| flags & bit != 0)
            .map(|(_, name)| *name)
            .collect();
            if !marks.is_empty() {
                s.push_str(&format!(" [{}]", marks.join(", ")));
            }
            s
        }
        Event::Write {
            time_ns,
            station,
            tag,
            error: None,
        } => format!("{} write {station}.{tag} ok", format_time(*time_ns)),
        Event::Write {
            time_ns,
            station,
            tag,
            error: Some(e),
        } => format!(
            "{} write {station}.{tag} failed: {e}",
            format_time(*time_ns)
        ),
        Event::Route {
            time_ns,
            topic,
            payload,
            outcome,
            station,
        } => {
            let to = match (outcome.as_str(), station) {
                ("taken", Some(s)) => s.clone(),
                ("station_off", Some(s)) => format!("{s} (station off)"),
                ("simulated", Some(s)) => format!("{s} (simulated)"),
                ("will", Some(s)) => format!("{s} (will message)"),
                (other, _) => other.to_string(),
            };
            format!(
                "{} route {topic} {} -> {to}",
                format_time(*time_ns),
                readable_payload(payload)
            )
        }
        Event::Log { level, text, .. } => format!("{} {text}", level.to_ascii_uppercase()),
    }
}

/// A payload as `--trace-routing` shows it, like `mosquitto_sub -v`: the text itself, cut after
/// its first 200 characters and followed by its length.
fn readable_payload(payload: &str) -> String {
    match cut_long(payload) {
        Some(start) => format!("{start}... ({} bytes)", payload.len()),
        None => payload.to_string(),
    }
}

/// Writes events to stdout, flushing each line so a reader sees it at once.
pub struct Printer<W: Write> {
    out: W,
    json: bool,
    /// Log messages as JSON events on stdout rather than lines on stderr.
    json_logs: bool,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, json: bool) -> Self {
        Printer {
            out,
            json,
            json_logs: false,
        }
    }

    /// Log messages go to stdout as JSON events (`--json-logs`, only with `--json`).
    pub fn with_json_logs(mut self, json_logs: bool) -> Self {
        self.json_logs = json_logs && self.json;
        self
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Already formatted text (an answer, one line or a table), with a newline.
    pub fn print_text(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }

    /// A sim-host error about a command: an `ERROR` line on stderr, or a log event.
    pub fn print_error(&mut self, time_ns: i64, text: String) -> io::Result<()> {
        self.print(&Event::Log {
            time_ns,
            level: "error",
            text,
        })
    }

    /// Fails when stdout is gone (a closed pipe shows up as `BrokenPipe`: Rust ignores SIGPIPE).
    pub fn print(&mut self, ev: &Event) -> io::Result<()> {
        if matches!(ev, Event::Log { .. }) && !self.json_logs {
            stderr_line(&readable_text(ev));
            return Ok(());
        }
        let line = if self.json {
            json_line(ev)
        } else {
            readable_line(ev)
        };
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }
}

/// A diagnostic line on stderr, escaped like a readable line; failures to write it are ignored
/// (there is nowhere left to say so).
pub fn stderr_line(line: &str) {
    let line = escape_readable(line);
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_line_abi::MQL_FLAG_VALID;

    const T: i64 = 1_795_428_000_123_000_000; // 2026-11-23T10:00:00.123Z

    #[test]
    fn times_have_at_least_milliseconds() {
        let cases = [
            (T, "2026-11-23T10:00:00.123Z"),
            (1_795_428_000_000_000_000, "2026-11-23T10:00:00.000Z"),
            (T + 456_000, "2026-11-23T10:00:00.123456Z"),
            (T + 456_789, "2026-11-23T10:00:00.123456789Z"),
            (0, "1970-01-01T00:00:00.000Z"),
            (-1_000_000, "1969-12-31T23:59:59.999Z"),
        ];
        for (ns, text) in cases {
            assert_eq!(format_time(ns), text, "{ns}");
        }
    }

    fn value_event(type_name: &str, value: Value, flags: u32) -> Event {
        Event::Value {
            time_ns: T,
            station: "battery".into(),
            tag: "t".into(),
            type_name: type_name.into(),
            valid: flags & MQL_FLAG_VALID != 0,
            value,
            flags,
        }
    }

    fn parsed(ev: &Event) -> serde_json::Value {
        serde_json::from_str(&json_line(ev)).expect("valid JSON")
    }

    #[test]
    fn values_of_every_type_in_json() {
        let v = MQL_FLAG_VALID;
        let cases = [
            (
                "TxtI",
                Value::Text("status/battery".into()),
                json!("status/battery"),
            ),
            ("TxtO", Value::Text("a \"q\"".into()), json!("a \"q\"")),
            ("Ci", Value::Int(42), json!(42)),
            ("Co", Value::Int(-7), json!(-7)),
            ("Qi", Value::Quad(2), json!(2)),
            ("Ai", Value::Float(21.5), json!(21.5)),
            ("Ao", Value::Float(-0.25), json!(-0.25)),
            ("Di", Value::Bool(true), json!(true)),
            ("Do", Value::Bool(false), json!(false)),
            ("TiA", Value::AbsTime(T), json!("2026-11-23T10:00:00.123Z")),
            ("ToA", Value::AbsTime(0), json!("1970-01-01T00:00:00.000Z")),
            ("TiR", Value::RelTime(1.5), json!(1.5)),
            ("ToR", Value::RelTime(60.0), json!(60.0)),
        ];
        for (type_name, value, expected) in cases {
            let j = parsed(&value_event(type_name, value, v));
            assert_eq!(j["event"], "value");
            assert_eq!(j["station"], "battery");
            assert_eq!(j["tag"], "t");
            assert_eq!(j["type"], type_name);
            assert_eq!(j["value"], expected, "{type_name}");
            assert_eq!(j["valid"], true);
            assert_eq!(j["time"], "2026-11-23T10:00:00.123Z");
            for flag in ["duplicate", "retained", "time_from_payload"] {
                assert!(j.get(flag).is_none(), "{type_name}: {flag} without its bit");
            }
        }
    }

    #[test]
    fn invalid_values_are_null() {
        let j = parsed(&value_event("Ai", Value::None, 0));
        assert_eq!(j["value"], serde_json::Value::Null);
        assert_eq!(j["valid"], false);
        // A stale payload with the valid bit clear is still shown as null.
        let j = parsed(&value_event("Ci", Value::Int(5), 0));
        assert_eq!(j["value"], serde_json::Value::Null);
    }

    #[test]
    fn flags_appear_only_when_set() {
        let cases = [
            (MQL_FLAG_DUPLICATE, "duplicate"),
            (MQL_FLAG_RETAINED, "retained"),
            (MQL_FLAG_TIME_FROM_PAYLOAD, "time_from_payload"),
        ];
        for (bit, name) in cases {
            let j = parsed(&value_event(
                "TxtI",
                Value::Text("x".into()),
                MQL_FLAG_VALID | bit,
            ));
            assert_eq!(j[name], true);
            let others = cases.iter().filter(|(b, _)| *b != bit);
            for (_, other) in others {
                assert!(j.get(*other).is_none(), "{other} set with {name}");
            }
        }
    }

    #[test]
    fn status_events_in_json() {
        let cases = [
            (
                Event::Line {
                    time_ns: T,
                    connected: true,
                    text: "127.0.0.1:1883".into(),
                },
                json!({"event":"line","state":"connected","host":"127.0.0.1:1883"}),
            ),
            (
                Event::Line {
                    time_ns: T,
                    connected: false,
                    text: "connection refused".into(),
                },
                json!({"event":"line","state":"disconnected","reason":"connection refused"}),
            ),
            (
                Event::Connection {
                    time_ns: T,
                    connection: "B",
                    connected: true,
                    text: "10.0.0.2:1883".into(),
                },
                json!({"event":"connection","connection":"B","state":"connected","host":"10.0.0.2:1883"}),
            ),
            (
                Event::Connection {
                    time_ns: T,
                    connection: "A",
                    connected: false,
                    text: "connection refused".into(),
                },
                json!({"event":"connection","connection":"A","state":"disconnected","reason":"connection refused"}),
            ),
            (
                Event::Station {
                    time_ns: T,
                    station: "battery".into(),
                    state: "ok".into(),
                    reason: "line started".into(),
                },
                json!({"event":"station","station":"battery","state":"ok","reason":"line started"}),
            ),
            (
                Event::Write {
                    time_ns: T,
                    station: "battery".into(),
                    tag: "cmd_value".into(),
                    error: None,
                },
                json!({"event":"write","station":"battery","tag":"cmd_value","ok":true}),
            ),
            (
                Event::Write {
                    time_ns: T,
                    station: "battery".into(),
                    tag: "cmd_value".into(),
                    error: Some("no connection".into()),
                },
                json!({"event":"write","station":"battery","tag":"cmd_value","ok":false,"error":"no connection"}),
            ),
        ];
        for (ev, expected) in cases {
            let mut j = parsed(&ev);
            assert_eq!(j["time"], "2026-11-23T10:00:00.123Z");
            if let Some(map) = j.as_object_mut() {
                map.remove("time");
            }
            assert_eq!(j, expected);
            assert!(json_line(&ev).starts_with("{\"event\":"));
        }
    }

    #[test]
    fn readable_lines() {
        let cases = [
            (
                value_event("TxtI", Value::Text("status/battery".into()), MQL_FLAG_VALID),
                "2026-11-23T10:00:00.123Z value battery.t = \"status/battery\" (TxtI)",
            ),
            (
                value_event("Ai", Value::None, 0),
                "2026-11-23T10:00:00.123Z value battery.t = invalid (Ai)",
            ),
            (
                value_event(
                    "Ci",
                    Value::Int(3),
                    MQL_FLAG_VALID | MQL_FLAG_DUPLICATE | MQL_FLAG_RETAINED,
                ),
                "2026-11-23T10:00:00.123Z value battery.t = 3 (Ci) [duplicate, retained]",
            ),
            (
                Event::Station {
                    time_ns: T,
                    station: "battery".into(),
                    state: "ok".into(),
                    reason: String::new(),
                },
                "2026-11-23T10:00:00.123Z station battery ok",
            ),
            (
                Event::Line {
                    time_ns: T,
                    connected: true,
                    text: "127.0.0.1:1883".into(),
                },
                "2026-11-23T10:00:00.123Z line connected 127.0.0.1:1883",
            ),
            (
                Event::Connection {
                    time_ns: T,
                    connection: "A",
                    connected: false,
                    text: "the broker closed the connection".into(),
                },
                "2026-11-23T10:00:00.123Z connection A disconnected: the broker closed the connection",
            ),
            (
                Event::Write {
                    time_ns: T,
                    station: "b".into(),
                    tag: "v".into(),
                    error: Some("refused".into()),
                },
                "2026-11-23T10:00:00.123Z write b.v failed: refused",
            ),
        ];
        for (ev, text) in cases {
            assert_eq!(readable_line(&ev), text);
        }
    }

    fn route(outcome: &str, station: Option<&str>, payload: &str) -> Event {
        Event::Route {
            time_ns: T,
            topic: "plant/a".into(),
            payload: payload.into(),
            outcome: outcome.into(),
            station: station.map(String::from),
        }
    }

    #[test]
    fn route_lines_name_the_outcome() {
        let cases = [
            (route("taken", Some("a"), "21.5"), "route plant/a 21.5 -> a"),
            (route("unrouted", None, "x"), "route plant/a x -> unrouted"),
            (
                route("station_off", Some("a"), "1"),
                "route plant/a 1 -> a (station off)",
            ),
            (
                route("simulated", Some("a"), "1"),
                "route plant/a 1 -> a (simulated)",
            ),
            (
                route("will", Some("a"), "gone"),
                "route plant/a gone -> a (will message)",
            ),
            (
                route("taken", Some("a"), "two\nlines"),
                "route plant/a two\\nlines -> a",
            ),
        ];
        for (ev, tail) in cases {
            let line = readable_line(&ev);
            assert_eq!(line, format!("2026-11-23T10:00:00.123Z {tail}"));
        }
        let long = readable_line(&route("taken", Some("a"), &"p".repeat(300)));
        assert!(long.ends_with("... (300 bytes) -> a"), "{long}");
        let j = parsed(&route("unrouted", None, "x"));
        assert_eq!(
            j,
            json!({"event":"route","topic":"plant/a","payload":"x","outcome":"unrouted","time":"2026-11-23T10:00:00.123Z"})
        );
    }

    #[test]
    fn log_events_in_json() {
        let ev = Event::Log {
            time_ns: T,
            level: "warn",
            text: "station 'a': no time field".into(),
        };
        let j = parsed(&ev);
        assert_eq!(
            j,
            json!({"event":"log","level":"warn","text":"station 'a': no time field","time":"2026-11-23T10:00:00.123Z"})
        );
        assert_eq!(readable_line(&ev), "WARN station 'a': no time field");
    }

    const HOSTILE: &str = "a\x1b[31m\x07b\r\nINFO forged\x7f\u{9b}\u{202e}";

    #[test]
    fn readable_lines_carry_no_control_characters() {
        let events = [
            value_event("TxtI", Value::Text(HOSTILE.into()), MQL_FLAG_VALID),
            Event::Station {
                time_ns: T,
                station: "s".into(),
                state: "hard_error".into(),
                reason: format!("will message received on '{HOSTILE}'"),
            },
            Event::Line {
                time_ns: T,
                connected: false,
                text: HOSTILE.into(),
            },
            Event::Write {
                time_ns: T,
                station: "s".into(),
                tag: "t".into(),
                error: Some(HOSTILE.into()),
            },
        ];
        for ev in &events {
            let line = readable_line(ev);
            assert!(!line.chars().any(is_invisible), "{line:?}");
            assert!(
                line.contains("\\u{1b}[31m") || line.contains("\\u001b[31m"),
                "{line}"
            );
            assert!(
                line.contains("\\u{7f}") && line.contains("\\u{202e}"),
                "{line}"
            );
        }
        assert_eq!(
            escape_readable("already \\u{1b} escaped \\n"),
            "already \\u{1b} escaped \\n"
        );
    }

    #[test]
    fn json_lines_escape_every_invisible_character() {
        let ev = value_event("TxtI", Value::Text(HOSTILE.into()), MQL_FLAG_VALID);
        let line = json_line(&ev);
        assert!(!line.chars().any(is_invisible), "{line:?}");
        assert_eq!(
            parsed(&ev)["value"],
            HOSTILE,
            "a JSON reader gets the text back"
        );
    }

    #[test]
    fn long_texts_are_cut_in_readable_lines() {
        let long = "x".repeat(5000);
        let line = readable_line(&value_event("TxtI", Value::Text(long), MQL_FLAG_VALID));
        assert!(line.contains("... (5000 bytes)"), "{line}");
        assert!(line.len() < 400, "{line}");
        let j = parsed(&value_event(
            "TxtI",
            Value::Text("y".repeat(5000)),
            MQL_FLAG_VALID,
        ));
        assert_eq!(
            j["value"].as_str().map(str::len),
            Some(5000),
            "JSON keeps it whole"
        );
    }

    /// A writer whose reader has gone away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stdout_is_reported_as_broken_pipe() {
        let ev = value_event("Ci", Value::Int(1), MQL_FLAG_VALID);
        let err = Printer::new(ClosedPipe, true)
            .print(&ev)
            .expect_err("writing to a closed pipe fails");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);

        let mut buf = Vec::new();
        Printer::new(&mut buf, true)
            .print(&ev)
            .expect("a Vec accepts writes");
        assert!(buf.ends_with(b"}\n"));
    }
}
