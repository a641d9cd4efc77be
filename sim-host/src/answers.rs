//! The answers to `status`, `values`, `stats` and `help`: one JSON event each (also served as
//! `/api/status`, `/api/values`, `/api/stats`), or readable tables.

use serde::Serialize;

use crate::commands::HELP;
use crate::config::LineSpec;
use crate::counters::{self, ConnectionStats, LineStats, StationStats};
use crate::output::{format_time, readable_value, value_json};
use crate::plugin::Line;
use crate::view::{LineState, LineStatus, LineView, CONNECTION_NAMES};
use mqtt_line_host::text::escape_readable;

fn time(ns: Option<i64>) -> Option<String> {
    ns.map(format_time)
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Serialize)]
pub struct LineStatusJson {
    pub name: String,
    #[serde(flatten)]
    pub status: StateJson,
    /// A redundant line's connections A and B (issue 21); absent for a line with one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<ConnectionStatusJson>,
}

/// The state of the line or of one of its connections.
#[derive(Debug, Serialize)]
pub struct StateJson {
    /// `connecting` until the first attempt ended, then `connected` or `disconnected`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub since: Option<String>,
}

/// One connection of a redundant line in `status`: its state as the line's own is shown.
#[derive(Debug, Serialize)]
pub struct ConnectionStatusJson {
    pub connection: &'static str,
    #[serde(flatten)]
    pub status: StateJson,
}

#[derive(Debug, Serialize)]
pub struct StationStatusJson {
    pub station: String,
    pub address: String,
    pub state: String,
    pub reason: String,
    pub since: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StatusAnswer {
    pub event: &'static str,
    pub line: LineStatusJson,
    pub stations: Vec<StationStatusJson>,
    pub time: String,
}

#[derive(Debug, Serialize)]
pub struct TagJson {
    pub station: String,
    pub tag: String,
    #[serde(rename = "type")]
    pub type_name: &'static str,
    pub value: serde_json::Value,
    pub valid: bool,
    /// None for a tag that never had a value.
    pub time: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub duplicate: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub retained: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub time_from_payload: bool,
}

#[derive(Debug, Serialize)]
pub struct ValuesAnswer {
    pub event: &'static str,
    pub tags: Vec<TagJson>,
    pub time: String,
}

macro_rules! line_counters_json {
    ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
        /// The line's counters in `stats`: each named as its C field (plugin-abi's
        /// `line_counters!`), then the time of the last message.
        #[derive(Debug, Serialize)]
        pub struct LineCountersJson {
            $(pub $field: u64,)*
            pub last_message: Option<String>,
        }

        pub fn line_counters(c: &LineStats) -> LineCountersJson {
            LineCountersJson {
                $($field: c.$field,)*
                last_message: time(c.last_message_ns),
            }
        }

        impl LineCountersJson {
            /// Each counter's name and value, in the order of the JSON.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field)),*]
            }
        }
    };
}
mqtt_line_abi::line_counters!(line_counters_json);

macro_rules! station_counters_json {
    ($($field:ident, $kind:ident, $metric:literal, $help:literal;)*) => {
        /// One station's counters in `stats`: its name, each counter named as its C field
        /// (plugin-abi's `station_counters!`), then the time of its last message.
        #[derive(Debug, Serialize)]
        pub struct StationCountersJson {
            pub station: String,
            $(pub $field: u64,)*
            pub last_message: Option<String>,
        }

        pub fn station_counters(name: &str, c: &StationStats) -> StationCountersJson {
            StationCountersJson {
                station: name.to_string(),
                $($field: c.$field,)*
                last_message: time(c.last_message_ns),
            }
        }

        impl StationCountersJson {
            /// The counters' names, in the order of the JSON.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Each counter's value, in the order of [`Self::NAMES`].
            pub fn values(&self) -> Vec<u64> {
                vec![$(self.$field),*]
            }
        }
    };
}
mqtt_line_abi::station_counters!(station_counters_json);

/// One connection of a redundant line in `stats` (issue 21).
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionCountersJson {
    pub connection: &'static str,
    pub received: u64,
    pub duplicates: u64,
    pub reconnects: u64,
    pub connection_attempts: u64,
}

impl ConnectionCountersJson {
    /// The counters' names, in the order of the JSON.
    pub const NAMES: &'static [&'static str] = &[
        "received",
        "duplicates",
        "reconnects",
        "connection_attempts",
    ];

    /// Each counter's value, in the order of [`Self::NAMES`].
    pub fn values(&self) -> [u64; 4] {
        [
            self.received,
            self.duplicates,
            self.reconnects,
            self.connection_attempts,
        ]
    }
}

/// A redundant line's connections in `stats`, A then B; empty for a line with one.
pub fn connection_counters(stats: &[ConnectionStats]) -> Vec<ConnectionCountersJson> {
    CONNECTION_NAMES
        .iter()
        .zip(stats)
        .map(|(&connection, c)| ConnectionCountersJson {
            connection,
            received: c.received,
            duplicates: c.duplicates,
            reconnects: c.reconnects,
            connection_attempts: c.connection_attempts,
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct StatsAnswer {
    pub event: &'static str,
    pub line: LineCountersJson,
    pub stations: Vec<StationCountersJson>,
    /// A redundant line's connections (issue 21); absent for a line with one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<ConnectionCountersJson>,
    pub time: String,
}

#[derive(Debug, Serialize)]
struct HelpEntry {
    command: &'static str,
    does: &'static str,
}

#[derive(Debug, Serialize)]
struct HelpAnswer {
    event: &'static str,
    commands: Vec<HelpEntry>,
    time: String,
}

/// The counters of the line and of every station (in configuration order), read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub line: LineStats,
    pub stations: Vec<StationStats>,
    /// A redundant line's connections A and B; empty for a line with one.
    pub connections: Vec<ConnectionStats>,
}

/// Reads every counter through the ABI.
pub fn collect_counters(line: &Line<'_>, spec: &LineSpec) -> Result<Counters, String> {
    let line_stats = counters::line_stats(line)?;
    let stations = spec
        .stations
        .iter()
        .map(|st| counters::station_stats(line, st.id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Counters {
        line: line_stats,
        stations,
        connections: counters::connection_stats(line, spec.is_redundant())?,
    })
}

/// A state as `status` shows it: its name, `host:port` when connected, the reason when
/// disconnected, and since when.
fn state_json(status: &LineStatus) -> StateJson {
    let (state, host, reason) = match &status.state {
        LineState::Connecting => ("connecting", None, None),
        LineState::Connected(host) => ("connected", Some(host.clone()), None),
        LineState::Disconnected(reason) => ("disconnected", None, Some(reason.clone())),
    };
    StateJson {
        state,
        host,
        reason,
        since: time(status.since_ns),
    }
}

pub fn line_status(spec: &LineSpec, view: &LineView) -> LineStatusJson {
    LineStatusJson {
        name: spec.name.clone(),
        status: state_json(&view.line),
        connections: CONNECTION_NAMES
            .iter()
            .zip(&view.connections)
            .map(|(&connection, c)| ConnectionStatusJson {
                connection,
                status: state_json(c),
            })
            .collect(),
    }
}

/// The status of the station at `index` (id - 1); `index` must be within the configuration.
pub fn station_status(spec: &LineSpec, view: &LineView, index: usize) -> StationStatusJson {
    let st = &spec.stations[index];
    let status = &view.stations[index];
    StationStatusJson {
        station: st.name.clone(),
        address: st.address.clone(),
        state: status.state.clone(),
        reason: status.reason.clone(),
        since: time(status.since_ns),
    }
}

pub fn status_answer(spec: &LineSpec, view: &LineView, now_ns: i64) -> StatusAnswer {
    StatusAnswer {
        event: "status",
        line: line_status(spec, view),
        stations: (0..spec.stations.len())
            .map(|i| station_status(spec, view, i))
            .collect(),
        time: format_time(now_ns),
    }
}

/// The value of the tag at `index` (id - 1), which must be within the configuration.
pub fn tag_value(spec: &LineSpec, view: &LineView, index: usize) -> Option<TagJson> {
    let (st, tag) = spec.tag_by_id(index as u64 + 1)?;
    let json = match view.tags.get(index).and_then(Option::as_ref) {
        Some(v) => TagJson {
            station: st.name.clone(),
            tag: tag.name.clone(),
            type_name: tag.type_name(),
            value: value_json(v.valid, &v.value),
            valid: v.valid,
            time: Some(format_time(v.time_ns)),
            duplicate: v.flags & mqtt_line_abi::MQL_FLAG_DUPLICATE != 0,
            retained: v.flags & mqtt_line_abi::MQL_FLAG_RETAINED != 0,
            time_from_payload: v.flags & mqtt_line_abi::MQL_FLAG_TIME_FROM_PAYLOAD != 0,
        },
        None => TagJson {
            station: st.name.clone(),
            tag: tag.name.clone(),
            type_name: tag.type_name(),
            value: serde_json::Value::Null,
            valid: false,
            time: None,
            duplicate: false,
            retained: false,
            time_from_payload: false,
        },
    };
    Some(json)
}

pub fn values_answer(spec: &LineSpec, view: &LineView, now_ns: i64) -> ValuesAnswer {
    ValuesAnswer {
        event: "values",
        tags: (0..spec.tag_count())
            .filter_map(|i| tag_value(spec, view, i))
            .collect(),
        time: format_time(now_ns),
    }
}

pub fn stats_answer(spec: &LineSpec, counters: &Counters, now_ns: i64) -> StatsAnswer {
    StatsAnswer {
        event: "stats",
        line: line_counters(&counters.line),
        stations: spec
            .stations
            .iter()
            .zip(&counters.stations)
            .map(|(st, c)| station_counters(&st.name, c))
            .collect(),
        connections: connection_counters(&counters.connections),
        time: format_time(now_ns),
    }
}

/// One JSON object without the newline, with every invisible character escaped (as events).
pub fn to_json_line(answer: &impl Serialize) -> String {
    let line = serde_json::to_string(answer).unwrap_or_else(|e| {
        serde_json::json!({ "event": "error", "error": e.to_string() }).to_string()
    });
    crate::output::json_escape_invisible(line)
}

pub fn help_json(now_ns: i64) -> String {
    to_json_line(&HelpAnswer {
        event: "help",
        commands: HELP
            .iter()
            .map(|&(command, does)| HelpEntry { command, does })
            .collect(),
        time: format_time(now_ns),
    })
}

pub fn help_readable() -> String {
    let rows = HELP
        .iter()
        .map(|&(command, does)| vec![command.to_string(), does.to_string()])
        .collect();
    table(&["command", "what it does"], rows)
}

/// A table with a header, columns padded to their widest cell; cells are escaped for a
/// terminal. No trailing newline.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|c| escape_readable(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    for row in &rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

fn or_dash(s: Option<&str>) -> String {
    s.unwrap_or("-").to_string()
}

/// `STATE HOST since TIME` or `STATE: REASON since TIME` in readable `status`.
fn state_readable(s: &StateJson) -> String {
    let detail = match (&s.host, &s.reason) {
        (Some(h), _) => format!(" {h}"),
        (None, Some(r)) => format!(": {r}"),
        (None, None) => String::new(),
    };
    let since = s
        .since
        .as_deref()
        .map_or(String::new(), |t| format!(" since {t}"));
    format!("{}{detail}{since}", s.state)
}

pub fn status_readable(a: &StatusAnswer) -> String {
    let l = &a.line;
    let mut head = escape_readable(&format!("line {}: {}", l.name, state_readable(&l.status)));
    for c in &l.connections {
        head.push('\n');
        head.push_str(&escape_readable(&format!(
            "  connection {}: {}",
            c.connection,
            state_readable(&c.status)
        )));
    }
    let rows = a
        .stations
        .iter()
        .map(|s| {
            vec![
                s.station.clone(),
                s.state.clone(),
                or_dash(s.since.as_deref()),
                s.reason.clone(),
            ]
        })
        .collect();
    format!(
        "{head}\n{}",
        table(&["station", "state", "since", "reason"], rows)
    )
}

pub fn values_readable(a: &ValuesAnswer, view_values: impl Fn(usize) -> Option<String>) -> String {
    let rows = a
        .tags
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let shown = if t.valid {
                view_values(i).unwrap_or_else(|| t.value.to_string())
            } else {
                "invalid".to_string()
            };
            vec![
                t.station.clone(),
                t.tag.clone(),
                t.type_name.to_string(),
                shown,
                or_dash(t.time.as_deref()),
            ]
        })
        .collect();
    table(&["station", "tag", "type", "value", "time"], rows)
}

pub fn stats_readable(a: &StatsAnswer) -> String {
    let l = &a.line;
    let line_rows = l
        .named()
        .into_iter()
        .map(|(name, n)| vec![name.to_string(), n.to_string()])
        .chain(std::iter::once(vec![
            "last_message".to_string(),
            or_dash(l.last_message.as_deref()),
        ]))
        .collect();
    let station_rows = a
        .stations
        .iter()
        .map(|s| {
            std::iter::once(s.station.clone())
                .chain(s.values().iter().map(u64::to_string))
                .chain(std::iter::once(or_dash(s.last_message.as_deref())))
                .collect()
        })
        .collect();
    let mut out = format!(
        "{}\n{}",
        table(&["line", "count"], line_rows),
        table(
            &std::iter::once("station")
                .chain(StationCountersJson::NAMES.iter().copied())
                .chain(std::iter::once("last_message"))
                .collect::<Vec<_>>(),
            station_rows
        )
    );
    if !a.connections.is_empty() {
        let rows = a
            .connections
            .iter()
            .map(|c| {
                std::iter::once(c.connection.to_string())
                    .chain(c.values().iter().map(u64::to_string))
                    .collect()
            })
            .collect();
        let header: Vec<&str> = std::iter::once("connection")
            .chain(ConnectionCountersJson::NAMES.iter().copied())
            .collect();
        out.push('\n');
        out.push_str(&table(&header, rows));
    }
    out
}

/// A tag value as a readable table shows it (cut when long).
pub fn readable_tag_value(view: &LineView, index: usize) -> Option<String> {
    view.tags
        .get(index)
        .and_then(Option::as_ref)
        .map(|v| readable_value(&v.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON field names of `stats` are a contract (docs/sim-host.md): the list in plugin-abi
    /// may grow, but these stay, in this order.
    #[test]
    fn stats_json_fields_keep_their_names_and_order() {
        /// The field names of a JSON object's text, in the order written.
        fn keys(text: &str) -> Vec<String> {
            text.trim_matches(['{', '}'])
                .split(',')
                .filter_map(|pair| pair.split(':').next())
                .map(|k| k.trim_matches('"').to_string())
                .collect()
        }
        let line = serde_json::to_string(&line_counters(&LineStats::default())).unwrap();
        let today = [
            "received",
            "bytes_received",
            "unrouted",
            "dropped_off",
            "dropped_simulated",
            "payload_errors",
            "will_messages",
            "held",
            "writes_ok",
            "writes_failed",
            "connection_attempts",
            "reconnects",
        ];
        let k = keys(&line);
        assert_eq!(k[..today.len()], today, "{line}");
        assert_eq!(k.last().map(String::as_str), Some("last_message"), "{line}");
        let station = serde_json::to_string(&station_counters("s", &StationStats::default()));
        let station = station.unwrap();
        let k = keys(&station);
        assert_eq!(
            k[..4],
            ["station", "received", "dropped", "held"],
            "{station}"
        );
        assert_eq!(
            k.last().map(String::as_str),
            Some("last_message"),
            "{station}"
        );
    }

    /// A redundant line's `status` and `stats` carry its connections, A then B; a line with one
    /// connection's answers are unchanged.
    #[test]
    fn connections_appear_only_for_a_redundant_line() {
        let text = "[line]\nhost = \"a\"\n";
        let spec = crate::config::FileConfig::parse(text)
            .and_then(|f| f.into_spec(text, "L"))
            .expect("a valid configuration");
        let mut view = LineView::new(0, 0, false);
        let status = serde_json::to_value(status_answer(&spec, &view, 1)).unwrap();
        assert!(status["line"].get("connections").is_none(), "{status}");
        let stats = serde_json::to_value(stats_answer(&spec, &Counters::default(), 1)).unwrap();
        assert!(stats.get("connections").is_none(), "{stats}");

        view.record_connection(0, true, "a:1883", 1_000_000);
        view.record_connection(1, false, "connection refused", 2_000_000);
        let answer = status_answer(&spec, &view, 3_000_000);
        let status = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            status["line"]["connections"],
            serde_json::json!([
                {"connection":"A","state":"connected","host":"a:1883","since":"1970-01-01T00:00:00.001Z"},
                {"connection":"B","state":"disconnected","reason":"connection refused","since":"1970-01-01T00:00:00.002Z"}
            ])
        );
        let readable = status_readable(&answer);
        assert!(
            readable.contains("\n  connection B: disconnected: connection refused since"),
            "{readable}"
        );
        let counters = Counters {
            connections: vec![
                ConnectionStats::default(),
                ConnectionStats {
                    received: 7,
                    duplicates: 6,
                    reconnects: 1,
                    connection_attempts: 3,
                },
            ],
            ..Counters::default()
        };
        let answer = stats_answer(&spec, &counters, 1);
        let stats = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            stats["connections"][1],
            serde_json::json!({"connection":"B","received":7,"duplicates":6,"reconnects":1,"connection_attempts":3})
        );
        let readable = stats_readable(&answer);
        assert!(
            readable
                .lines()
                .any(|l| l == "B           7         6           1           3"),
            "{readable}"
        );
    }

    #[test]
    fn tables_pad_columns_and_escape_cells() {
        let t = table(
            &["station", "state"],
            vec![
                vec!["a".into(), "ok".into()],
                vec!["long-name\x1b[31m".into(), "comm_error".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("station{}state", " ".repeat(14)));
        assert_eq!(lines[1], format!("a{}ok", " ".repeat(20)));
        assert_eq!(lines[2], "long-name\\u{1b}[31m  comm_error");
    }
}
