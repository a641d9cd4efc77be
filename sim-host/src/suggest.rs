//! `sim-host suggest`: a line configuration proposed from a recording (docs/commissioning.md).
//!
//! Two passes over the file: the first collects the topics and decides the stations (an exact
//! topic, or one regular expression per topic family), the second reads every payload into its
//! station's picture (JSON leaves, CSV fields, numbers, text, Sparkplug births). The proposal is
//! TOML with a comment on every station and tag saying where it came from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use regex::Regex;
use serde_json::Value as Json;

use crate::recording::{Header, Message, RecordingReader};
use crate::runner::AppError;
use crate::spb_birth;

/// At most this many tags per station; the rest are named in a comment.
const MAX_TAGS: usize = 300;
/// JSON deeper than this is not looked into.
const MAX_DEPTH: usize = 12;
/// Array items addressed by position, at most.
const MAX_INDEX: usize = 8;
/// Keys that identify an item of an array of objects (`values[id="..."]`).
const ID_KEYS: &[&str] = &["id", "name", "tag", "key"];
/// Keys whose value is recognised as the message's time stamp.
const TIME_KEYS: &[&str] = &[
    "time",
    "timestamp",
    "ts",
    "datetime",
    "date_time",
    "received_at",
    "receivedat",
];
const SPARKPLUG_NAMESPACE: &str = "spBv1.0";

fn fatal(e: impl std::fmt::Display) -> AppError {
    AppError::Fatal(e.to_string())
}

fn each_message(file: &Path, mut f: impl FnMut(Message)) -> Result<Header, AppError> {
    let mut reader = RecordingReader::open(file).map_err(fatal)?;
    while let Some(m) = reader.next_message().map_err(fatal)? {
        f(m);
    }
    Ok(reader.header)
}

/// `sim-host suggest FILE`: the proposal as TOML text.
pub fn suggest_file(file: &Path) -> Result<String, AppError> {
    let mut topics: Vec<String> = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let header = each_message(file, |m| {
        let n = seen.entry(m.topic.clone()).or_default();
        if *n == 0 {
            topics.push(m.topic);
        }
        *n += 1;
    })?;
    let sparkplug = topics.iter().any(|t| is_sparkplug(t));
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if sparkplug {
        let mut nodes = Sparkplug::default();
        each_message(file, |m| nodes.add(&m))?;
        let others: Vec<&String> = topics.iter().filter(|t| !is_sparkplug(t)).collect();
        if !others.is_empty() {
            crate::output::stderr_line(&format!(
                "WARN suggest: a Sparkplug line takes only spBv1.0/ topics; {} other topics are \
                 left out (record them apart and suggest a second line)",
                others.len()
            ));
        }
        return Ok(nodes.toml(&header, &file_name, seen.values().sum(), &others));
    }
    let groups = group_topics(&topics);
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (gi, g) in groups.iter().enumerate() {
        for t in &g.topics {
            index.insert(t.as_str(), gi);
        }
    }
    let mut pictures: Vec<Picture> = groups.iter().map(|_| Picture::default()).collect();
    each_message(file, |m| {
        if let Some(&gi) = index.get(m.topic.as_str()) {
            pictures[gi].add(&m.payload);
        }
    })?;
    Ok(plain_toml(&header, &file_name, &groups, &pictures, &seen))
}

fn is_sparkplug(topic: &str) -> bool {
    topic.split('/').next() == Some(SPARKPLUG_NAMESPACE)
}

// ---- stations from topics ----

/// A station to propose: its address and the topics it takes.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    address: String,
    /// Whether the address is a regular expression over a family of topics.
    family: bool,
    topics: Vec<String>,
}

/// A level that names one device among many: it holds a digit (`node-1`, `rtu1`, a EUI).
fn is_variable_level(level: &str) -> bool {
    level.bytes().any(|b| b.is_ascii_digit())
}

fn regex_escape(level: &str) -> String {
    let mut out = String::with_capacity(level.len());
    for c in level.chars() {
        if "\\.+*?()|[]{}^$#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Topics with the same levels apart from device-naming ones form a family with one regular
/// expression (`dev/[^/]+/up`); a family of one stays an exact topic. A family whose expression
/// would win topics of another station is split back into exact topics, so every topic goes to
/// the station proposed for it under the line's routing rule (docs/routing.md).
fn group_topics(topics: &[String]) -> Vec<Group> {
    let mut families: BTreeMap<Vec<Option<String>>, Vec<String>> = BTreeMap::new();
    let mut order: Vec<Vec<Option<String>>> = Vec::new();
    for t in topics {
        let key: Vec<Option<String>> = t
            .split('/')
            .map(|l| (!is_variable_level(l)).then(|| l.to_string()))
            .collect();
        let members = families.entry(key.clone()).or_default();
        if members.is_empty() {
            order.push(key);
        }
        members.push(t.clone());
    }
    let mut groups: Vec<Group> = Vec::new();
    for key in order {
        let members = families.remove(&key).unwrap_or_default();
        if members.len() >= 2 {
            let address = key
                .iter()
                .map(|l| {
                    l.as_deref()
                        .map_or_else(|| "[^/]+".to_string(), regex_escape)
                })
                .collect::<Vec<_>>()
                .join("/");
            groups.push(Group {
                address,
                family: true,
                topics: members,
            });
        } else {
            groups.extend(members.into_iter().map(exact_group));
        }
    }
    // Bounded: each round splits at least one family or stops.
    for _ in 0..groups.len() + 1 {
        let Some(thief) = first_thief(&groups) else {
            break;
        };
        let g = groups.remove(thief);
        groups.extend(g.topics.into_iter().map(exact_group));
    }
    groups
}

fn exact_group(topic: String) -> Group {
    Group {
        address: topic.clone(),
        family: false,
        topics: vec![topic],
    }
}

/// A family station that would take a topic proposed for another station, if any.
fn first_thief(groups: &[Group]) -> Option<usize> {
    let exact: HashSet<&str> = groups
        .iter()
        .filter(|g| !g.family)
        .map(|g| g.address.as_str())
        .collect();
    let mut regexes: Vec<(usize, &str, Regex)> = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.family)
        .filter_map(|(i, g)| {
            Regex::new(&format!("^(?:{})$", g.address))
                .ok()
                .map(|r| (i, g.address.as_str(), r))
        })
        .collect();
    // The highest address text wins among matching expressions.
    regexes.sort_by(|a, b| b.1.cmp(a.1));
    for (gi, g) in groups.iter().enumerate() {
        for t in &g.topics {
            if exact.contains(t.as_str()) {
                continue;
            }
            if let Some((winner, _, _)) = regexes.iter().find(|(_, _, r)| r.is_match(t)) {
                if *winner != gi {
                    return Some(*winner);
                }
            }
        }
    }
    None
}

// ---- what the payloads hold ----

/// The values one tag candidate took.
#[derive(Debug, Default, Clone)]
struct Seen {
    count: u64,
    bools: u64,
    ints: u64,
    floats: u64,
    sample: String,
}

impl Seen {
    fn add_json(&mut self, v: &Json) {
        self.count += 1;
        match v {
            Json::Bool(_) => self.bools += 1,
            Json::Number(n) if n.is_i64() => self.ints += 1,
            Json::Number(_) => self.floats += 1,
            _ => {}
        }
        if self.sample.is_empty() {
            self.sample = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
        }
    }

    fn add_text(&mut self, field: &str) {
        let field = field.trim();
        let json = if field.parse::<i64>().is_ok() {
            Json::from(field.parse::<i64>().unwrap_or_default())
        } else if let Some(f) = field
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            Json::Number(f)
        } else {
            Json::String(field.to_string())
        };
        self.add_json(&json);
    }

    /// The D2000 type that takes every value seen, and how to say so in a comment.
    fn tag_type(&self) -> (&'static str, &'static str) {
        if self.count > 0 && self.bools == self.count {
            ("Di", "booleans")
        } else if self.count > 0 && self.ints == self.count {
            ("Ci", "whole numbers")
        } else if self.count > 0 && self.ints + self.floats == self.count {
            ("Ai", "numbers")
        } else {
            ("TxtI", "text")
        }
    }
}

/// One JSON leaf: its JA= address and a name made of its keys.
#[derive(Debug, Clone)]
struct Leaf {
    address: String,
    name: String,
    seen: Seen,
}

/// Everything the messages of one station showed.
#[derive(Debug, Default)]
struct Picture {
    messages: u64,
    not_utf8: u64,
    json_objects: u64,
    numbers: Seen,
    csv_fields: Option<usize>,
    csv_broken: bool,
    csv_columns: Vec<Seen>,
    leaves: Vec<Leaf>,
    leaf_index: HashMap<String, usize>,
    dropped_leaves: u64,
    /// Time field candidates: JA= address → (mask, messages where it fits).
    times: HashMap<String, (&'static str, u64)>,
    csv_times: HashMap<usize, u64>,
}

/// The time mask a value fits, if it looks like a time stamp.
fn time_mask_of(v: &Json) -> Option<&'static str> {
    match v {
        Json::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .is_ok()
            .then_some("ISO8601"),
        Json::Number(n) => match n.as_i64()? {
            1_000_000_000_000..=99_999_999_999_999 => Some("UNIXMS"),
            1_000_000_000..=99_999_999_999 => Some("UNIX"),
            _ => None,
        },
        _ => None,
    }
}

/// A key in JA= syntax: quoted unless it is plain letters, digits, `_` and `-`.
fn ja_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        key.to_string()
    } else {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A name part: letters, digits, `_` and `-` kept, anything else `_`.
fn name_part(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').to_string()
}

/// [`name_part`], or `x` when nothing is left of the text.
fn tag_name_part(text: &str) -> String {
    let s = name_part(text);
    if s.is_empty() {
        "x".into()
    } else {
        s
    }
}

fn join(prefix: &str, sep: &str, part: &str) -> String {
    if prefix.is_empty() {
        part.to_string()
    } else {
        format!("{prefix}{sep}{part}")
    }
}

impl Picture {
    fn add(&mut self, payload: &[u8]) {
        self.messages += 1;
        let Ok(text) = std::str::from_utf8(payload) else {
            self.not_utf8 += 1;
            return;
        };
        if let Ok(json @ Json::Object(_)) = serde_json::from_str::<Json>(text) {
            self.json_objects += 1;
            self.walk(&json, "", "", 0, &mut Vec::new());
            return;
        }
        let trimmed = text.trim();
        if trimmed.parse::<f64>().is_ok() {
            self.numbers.add_text(trimmed);
        }
        self.add_csv(text.trim_end_matches(['\r', '\n']));
    }

    fn add_csv(&mut self, record: &str) {
        if record.contains(['"', '\n', '\r']) || !record.contains(',') {
            self.csv_broken = true;
            return;
        }
        let fields: Vec<&str> = record.split(',').collect();
        match self.csv_fields {
            None => {
                self.csv_fields = Some(fields.len());
                self.csv_columns = vec![Seen::default(); fields.len()];
            }
            Some(n) if n != fields.len() => self.csv_broken = true,
            Some(_) => {}
        }
        if self.csv_broken {
            return;
        }
        for (i, f) in fields.iter().enumerate() {
            self.csv_columns[i].add_text(f);
            if let Ok(n) = f.trim().parse::<i64>() {
                if time_mask_of(&Json::from(n)) == Some("UNIXMS") {
                    *self.csv_times.entry(i + 1).or_default() += 1;
                }
            }
        }
    }

    fn leaf(&mut self, address: String, name: String, v: &Json, in_array: bool, key: &str) {
        if !in_array && TIME_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
            if let Some(mask) = time_mask_of(v) {
                let e = self.times.entry(address.clone()).or_insert((mask, 0));
                if e.0 == mask {
                    e.1 += 1;
                }
            }
        }
        let i = match self.leaf_index.get(&address) {
            Some(&i) => i,
            None => {
                if self.leaves.len() >= MAX_TAGS {
                    self.dropped_leaves += 1;
                    return;
                }
                self.leaf_index.insert(address.clone(), self.leaves.len());
                self.leaves.push(Leaf {
                    address,
                    name,
                    seen: Seen::default(),
                });
                self.leaves.len() - 1
            }
        };
        self.leaves[i].seen.add_json(v);
    }

    /// Collects the leaves under `v`; `keys` tracks whether an array was crossed.
    fn walk(&mut self, v: &Json, address: &str, name: &str, depth: usize, arrays: &mut Vec<()>) {
        if depth > MAX_DEPTH {
            return;
        }
        match v {
            Json::Object(map) => {
                for (k, child) in map {
                    let a = join(address, ".", &ja_key(k));
                    let n = join(name, "_", &tag_name_part(k));
                    if child.is_object() || child.is_array() {
                        self.walk(child, &a, &n, depth + 1, arrays);
                    } else if !child.is_null() {
                        let in_array = !arrays.is_empty();
                        self.leaf(a, n, child, in_array, k);
                    }
                }
            }
            Json::Array(items) if address.is_empty() => {
                // A top-level array has no JA= address to start from.
                let _ = items;
            }
            Json::Array(items) => {
                arrays.push(());
                if let Some(id_key) = id_key_of(items) {
                    for item in items {
                        let Some(Json::Object(fields)) = Some(item) else {
                            continue;
                        };
                        let Some(Json::String(id)) = fields.get(id_key) else {
                            continue;
                        };
                        let a = format!(
                            "{address}[{id_key}=\"{}\"]",
                            id.replace('\\', "\\\\").replace('"', "\\\"")
                        );
                        let n = join(name, "_", &tag_name_part(id));
                        for (k, child) in fields.iter().filter(|(k, _)| *k != id_key) {
                            let ca = format!("{a}.{}", ja_key(k));
                            let cn = join(&n, "_", &tag_name_part(k));
                            if child.is_object() || child.is_array() {
                                self.walk(child, &ca, &cn, depth + 2, arrays);
                            } else if !child.is_null() {
                                self.leaf(ca, cn, child, true, k);
                            }
                        }
                    }
                } else {
                    // JA= indexes count from 1.
                    for (i, item) in (1..).zip(items.iter().take(MAX_INDEX)) {
                        let a = format!("{address}[{i}]");
                        let n = format!("{name}_{i}");
                        if item.is_object() || item.is_array() {
                            self.walk(item, &a, &n, depth + 1, arrays);
                        } else if !item.is_null() {
                            self.leaf(a, n, item, true, "");
                        }
                    }
                }
                arrays.pop();
            }
            _ => {}
        }
    }

    /// The time field of the station: a candidate present and fitting in every message.
    fn time_field(&self) -> Option<(String, &'static str)> {
        let mut best: Option<(&String, &'static str)> = None;
        for (address, (mask, n)) in &self.times {
            if *n == self.json_objects
                && best.is_none_or(|(b, _)| (address.len(), address) < (b.len(), b))
            {
                best = Some((address, mask));
            }
        }
        best.map(|(a, m)| (a.clone(), m))
    }

    fn csv_time_field(&self) -> Option<usize> {
        self.csv_times
            .iter()
            .filter(|(_, n)| **n == self.messages)
            .map(|(i, _)| *i)
            .min()
    }
}

/// The key that tells the items of an array of objects apart, when every item has it as a
/// distinct string.
fn id_key_of(items: &[Json]) -> Option<&'static str> {
    if items.len() < 2 || !items.iter().all(Json::is_object) {
        return None;
    }
    ID_KEYS.iter().copied().find(|k| {
        let mut ids = HashSet::new();
        items
            .iter()
            .all(|it| matches!(it.get(k), Some(Json::String(s)) if ids.insert(s.as_str())))
    })
}

// ---- writing the proposal ----

/// TOML text: a basic string with JSON's escapes, which TOML reads the same way.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Outside text in a comment: one line, invisible characters escaped, at most 60 characters.
fn comment(s: &str) -> String {
    let escaped: String = s.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 60 {
        let cut: String = escaped.chars().take(57).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

/// Names made unique by a number: `temp`, `temp_2`, ...
#[derive(Default)]
struct Names(HashSet<String>);

impl Names {
    fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut n = 2;
        while !self.0.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    }
}

/// A station's name from its address: the fixed levels, or for a single topic all of them.
fn station_base_name(g: &Group) -> String {
    let levels: Vec<String> = if g.family {
        g.address
            .split('/')
            .filter(|l| *l != "[^/]+")
            .map(|l| name_part(&l.replace('\\', "")))
            .collect()
    } else {
        g.address.split('/').map(name_part).collect()
    };
    let levels: Vec<String> = levels.into_iter().filter(|l| !l.is_empty()).collect();
    if levels.is_empty() {
        "station".into()
    } else {
        levels.join("_")
    }
}

struct TagOut {
    name: String,
    address: String,
    value_type: &'static str,
    why: String,
}

fn write_header(out: &mut String, header: &Header, file: &str, messages: u64, topics: usize) {
    let _ = writeln!(
        out,
        "# Proposed by `sim-host suggest` from {} ({messages} messages on {topics} topics,\n\
         # recorded from {}:{} with topic filter '{}' at {}).\n\
         # Names come from topic levels and JSON keys; each station and tag says where it came\n\
         # from. Try it with `sim-host check` and `sim-host replay`, then rename freely.",
        comment(file),
        comment(&header.source.host),
        header.source.port,
        comment(&header.source.topic_filter),
        comment(&header.started)
    );
    let host = if header.source.host.is_empty() {
        "127.0.0.1"
    } else {
        &header.source.host
    };
    let port = if header.source.port == 0 {
        1883
    } else {
        header.source.port
    };
    let _ = writeln!(out, "\n[line]\nhost = {}\nport = {port}", quoted(host));
}

fn write_tags(out: &mut String, tags: &[TagOut]) {
    for t in tags {
        let _ = writeln!(
            out,
            "\n[[station.tag]]   # {}\nname = {}\naddress = {}\ntype = {}",
            t.why,
            quoted(&t.name),
            quoted(&t.address),
            quoted(t.value_type)
        );
    }
}

fn plain_toml(
    header: &Header,
    file: &str,
    groups: &[Group],
    pictures: &[Picture],
    counts: &HashMap<String, u64>,
) -> String {
    let mut out = String::new();
    let total: u64 = counts.values().sum();
    write_header(&mut out, header, file, total, counts.len());
    let filter = if header.source.topic_filter.is_empty() {
        "#"
    } else {
        &header.source.topic_filter
    };
    let _ = writeln!(
        out,
        "\n[line.parameters]\ntopic_filter = {}\nclient_id = \"mqtt-line-suggested\"",
        quoted(filter)
    );
    if header.source.protocol_version == 5 {
        let _ = writeln!(out, "protocol_version = \"5\"");
    }
    let mut station_names = Names::default();
    for (g, p) in groups.iter().zip(pictures) {
        let name = station_base_name(g);
        let name = station_names.unique(&name);
        let origin = if g.family {
            let shown: Vec<String> = g.topics.iter().take(3).map(|t| comment(t)).collect();
            format!(
                "a family of {} topics ({}{}), {} messages",
                g.topics.len(),
                shown.join(", "),
                if g.topics.len() > 3 { ", ..." } else { "" },
                p.messages
            )
        } else {
            format!("topic '{}', {} messages", comment(&g.address), p.messages)
        };
        let (params, tags, kind) = station_content(g, p);
        let _ = writeln!(
            out,
            "\n# {kind}: {origin}\n[[station]]\nname = {}\naddress = {}",
            quoted(&name),
            quoted(&g.address)
        );
        if !params.is_empty() {
            let _ = writeln!(out, "\n[station.parameters]");
            for (k, v, why) in params {
                let _ = writeln!(out, "{k} = {}   # {why}", quoted(&v));
            }
        }
        write_tags(&mut out, &tags);
        if p.dropped_leaves > 0 {
            let _ = writeln!(
                out,
                "# {} more JSON leaves were left out (at most {MAX_TAGS} tags per station)",
                p.dropped_leaves
            );
        }
    }
    out
}

type Params = Vec<(&'static str, String, String)>;

/// The station's parameters, tags and a word for its payload kind.
fn station_content(g: &Group, p: &Picture) -> (Params, Vec<TagOut>, &'static str) {
    let mut params: Params = Vec::new();
    let mut tags = Vec::new();
    let mut names = Names::default();
    let topic_tag = |tags: &mut Vec<TagOut>, names: &mut Names, why: &str| {
        tags.push(TagOut {
            name: names.unique("topic"),
            address: "IN_TOPIC".into(),
            value_type: "TxtI",
            why: why.into(),
        });
    };
    if g.family {
        topic_tag(
            &mut tags,
            &mut names,
            "which topic of the family it came on",
        );
    }
    let kind;
    if p.not_utf8 > 0 {
        kind = "binary payloads";
        if !g.family {
            topic_tag(
                &mut tags,
                &mut names,
                "binary payloads: only the topic is shown",
            );
        }
    } else if p.json_objects == p.messages && !p.leaves.is_empty() {
        kind = "JSON";
        params.push(("payload_type", "JSON".into(), "JSON objects seen".into()));
        if let Some((address, mask)) = p.time_field() {
            params.push((
                "time_field_name",
                address.clone(),
                "a time stamp in every message".into(),
            ));
            params.push(("time_mask", mask.into(), format!("its values fit {mask}")));
        }
        for leaf in &p.leaves {
            let (value_type, what) = leaf.seen.tag_type();
            tags.push(TagOut {
                name: names.unique(&leaf.name),
                address: format!("JA={}", leaf.address),
                value_type,
                why: format!(
                    "{what} in {} of {} messages, e.g. {}",
                    leaf.seen.count,
                    p.messages,
                    comment(&leaf.seen.sample)
                ),
            });
        }
    } else if p.numbers.count == p.messages && p.messages > 0 {
        kind = "numbers";
        let (value_type, what) = p.numbers.tag_type();
        tags.push(TagOut {
            name: names.unique("value"),
            address: "IN_DATA".into(),
            value_type,
            why: format!("{what}, e.g. {}", comment(&p.numbers.sample)),
        });
    } else if !p.csv_broken && p.csv_fields.is_some_and(|n| n >= 2) {
        kind = "CSV records";
        params.push((
            "payload_type",
            "CSV".into(),
            "one comma-separated record".into(),
        ));
        if let Some(i) = p.csv_time_field() {
            params.push((
                "time_field_name",
                i.to_string(),
                format!("field {i} holds Unix milliseconds in every record"),
            ));
            params.push(("time_mask", "UNIXMS".into(), "Unix milliseconds".into()));
        }
        for (i, col) in p.csv_columns.iter().enumerate() {
            let (value_type, what) = col.tag_type();
            tags.push(TagOut {
                name: names.unique(&format!("field{}", i + 1)),
                address: format!("CSV={}", i + 1),
                value_type,
                why: format!("field {}: {what}, e.g. {}", i + 1, comment(&col.sample)),
            });
        }
    } else {
        kind = "text";
        tags.push(TagOut {
            name: names.unique("data"),
            address: "IN_DATA".into(),
            value_type: "TxtI",
            why: "the payload as text".into(),
        });
    }
    (params, tags, kind)
}

// ---- Sparkplug ----

/// The nodes and devices of a Sparkplug recording, in order of appearance, with the metrics
/// their births announced.
#[derive(Default)]
struct Sparkplug {
    identities: Vec<String>,
    metrics: HashMap<String, Vec<spb_birth::BirthMetric>>,
    messages: HashMap<String, u64>,
    unreadable_births: u64,
    other_topics: u64,
}

impl Sparkplug {
    fn add(&mut self, m: &Message) {
        let levels: Vec<&str> = m.topic.split('/').collect();
        let (group, kind, node, device) = match levels.as_slice() {
            [_, g, k, n] => (*g, *k, *n, None),
            [_, g, k, n, d] => (*g, *k, *n, Some(*d)),
            _ => {
                self.other_topics += 1;
                return;
            }
        };
        if !matches!(
            kind,
            "NBIRTH" | "NDATA" | "NDEATH" | "DBIRTH" | "DDATA" | "DDEATH"
        ) {
            self.other_topics += 1;
            return;
        }
        let identity = match device {
            Some(d) => format!("{group}/{node}/{d}"),
            None => format!("{group}/{node}"),
        };
        let n = self.messages.entry(identity.clone()).or_default();
        if *n == 0 {
            self.identities.push(identity.clone());
        }
        *n += 1;
        if kind.ends_with("BIRTH") {
            match spb_birth::birth_metrics(&m.payload) {
                Some(metrics) => {
                    let known = self.metrics.entry(identity).or_default();
                    for metric in metrics {
                        if !metric.is_null && !known.iter().any(|k| k.name == metric.name) {
                            known.push(metric);
                        }
                    }
                }
                None => self.unreadable_births += 1,
            }
        }
    }

    fn toml(&self, header: &Header, file: &str, total: u64, others: &[&String]) -> String {
        let mut out = String::new();
        write_header(
            &mut out,
            header,
            file,
            total,
            self.messages.len() + others.len(),
        );
        let filter = if header.source.topic_filter.starts_with(SPARKPLUG_NAMESPACE) {
            header.source.topic_filter.as_str()
        } else {
            "spBv1.0/#"
        };
        let _ = writeln!(
            out,
            "\n[line.parameters]\npayload_type = \"Sparkplug B\"   # spBv1.0/ topics seen\n\
             topic_filter = {}\nclient_id = \"mqtt-line-suggested\"",
            quoted(filter)
        );
        if !others.is_empty() {
            let shown: Vec<String> = others.iter().take(5).map(|t| comment(t)).collect();
            let _ = writeln!(
                out,
                "# Left out: {} topics outside Sparkplug ({}{}); record them apart.",
                others.len(),
                shown.join(", "),
                if others.len() > 5 { ", ..." } else { "" }
            );
        }
        if self.unreadable_births > 0 {
            let _ = writeln!(
                out,
                "# {} births could not be read and gave no tags.",
                self.unreadable_births
            );
        }
        let mut station_names = Names::default();
        for identity in &self.identities {
            let what = if identity.matches('/').count() == 2 {
                "device"
            } else {
                "node"
            };
            let name = station_names.unique(&tag_name_part(identity));
            let _ = writeln!(
                out,
                "\n# Sparkplug {what} {}: {} messages\n[[station]]\nname = {}\naddress = {}",
                comment(identity),
                self.messages.get(identity).copied().unwrap_or(0),
                quoted(&name),
                quoted(identity)
            );
            let mut names = Names::default();
            let tags: Vec<TagOut> = self
                .metrics
                .get(identity)
                .map(|ms| {
                    ms.iter()
                        .take(MAX_TAGS)
                        .map(|m| TagOut {
                            name: names.unique(&tag_name_part(&m.name)),
                            address: format!("SPB={}", m.name),
                            value_type: spb_birth::tag_type(m.datatype),
                            why: format!(
                                "metric '{}' ({}) from the birth",
                                comment(&m.name),
                                spb_birth::datatype_name(m.datatype)
                            ),
                        })
                        .collect()
                })
                .unwrap_or_default();
            write_tags(&mut out, &tags);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn families_become_one_expression_and_singles_stay_exact() {
        let groups = group_topics(&topics(&[
            "dev/node-1/up",
            "dev/node-2/up",
            "status/battery",
            "tag/rtu1/voltage/in",
        ]));
        let addresses: Vec<(&str, bool)> = groups
            .iter()
            .map(|g| (g.address.as_str(), g.family))
            .collect();
        assert_eq!(
            addresses,
            vec![
                ("dev/[^/]+/up", true),
                ("status/battery", false),
                ("tag/rtu1/voltage/in", false)
            ]
        );
    }

    #[test]
    fn a_family_that_would_take_another_stations_topics_is_split() {
        // `[^/]+/[^/]+/x` sorts above nothing here but would win `ABC/m1/x`: 'A' < '['.
        let groups = group_topics(&topics(&["n1/m1/x", "n2/m2/x", "ABC/m1/x", "ABC/m2/x"]));
        for g in &groups {
            for t in &g.topics {
                let winner = groups
                    .iter()
                    .find(|o| !o.family && o.address == *t)
                    .or_else(|| {
                        let mut fam: Vec<&Group> = groups.iter().filter(|o| o.family).collect();
                        fam.sort_by(|a, b| b.address.cmp(&a.address));
                        fam.into_iter().find(|o| {
                            Regex::new(&format!("^(?:{})$", o.address))
                                .expect("regex")
                                .is_match(t)
                        })
                    })
                    .expect("routed");
                assert_eq!(winner, g, "{t}");
            }
        }
    }

    #[test]
    fn json_leaves_types_selections_and_time() {
        let mut p = Picture::default();
        p.add(br#"{"timestamp":1700000000000,"values":[{"id":"Ch1.T1","v":1.5,"q":true},{"id":"Ch1.T2","v":2,"q":true}],"gw id":"a"}"#);
        p.add(br#"{"timestamp":1700000001000,"values":[{"id":"Ch1.T1","v":2,"q":false},{"id":"Ch1.T2","v":3,"q":true}],"gw id":"b"}"#);
        let by_address: HashMap<&str, (&str, &str)> = p
            .leaves
            .iter()
            .map(|l| (l.address.as_str(), (l.name.as_str(), l.seen.tag_type().0)))
            .collect();
        assert_eq!(
            by_address[r#"values[id="Ch1.T1"].v"#],
            ("values_Ch1_T1_v", "Ai")
        );
        assert_eq!(
            by_address[r#"values[id="Ch1.T2"].v"#],
            ("values_Ch1_T2_v", "Ci")
        );
        assert_eq!(by_address[r#"values[id="Ch1.T1"].q"#].1, "Di");
        assert_eq!(by_address[r#""gw id""#], ("gw_id", "TxtI"));
        assert_eq!(p.time_field(), Some(("timestamp".into(), "UNIXMS")));
    }

    #[test]
    fn csv_numbers_text_and_binary_are_told_apart() {
        let g = exact_group("t".into());
        type Case<'a> = (&'a [&'a [u8]], &'a str, &'a [&'a str]);
        let cases: [Case; 4] = [
            (
                &[b"1.5,1700000000000,1", b"2,1700000001000,0"],
                "CSV records",
                &["CSV=1", "CSV=2", "CSV=3"],
            ),
            (&[b"21.5", b"22"], "numbers", &["IN_DATA"]),
            (&[b"hello", b"a,b"], "text", &["IN_DATA"]),
            (&[b"ok", &[0xff, 0]], "binary payloads", &["IN_TOPIC"]),
        ];
        for (payloads, kind, addresses) in cases {
            let mut p = Picture::default();
            for pl in payloads {
                p.add(pl);
            }
            let (_, tags, k) = station_content(&g, &p);
            assert_eq!(k, kind);
            let got: Vec<&str> = tags.iter().map(|t| t.address.as_str()).collect();
            assert_eq!(got, addresses, "{kind}");
        }
    }

    #[test]
    fn names_are_unique_and_comments_stay_on_one_line() {
        let mut n = Names::default();
        assert_eq!(n.unique("a"), "a");
        assert_eq!(n.unique("a"), "a_2");
        assert_eq!(comment("x\ny\u{1b}"), "x\\ny\\u{1b}");
        assert_eq!(ja_key("a.b"), "\"a.b\"");
        assert_eq!(name_part("dev/node-1"), "dev_node-1");
    }
}
