//! What a replay tells at its end (messages per station, unrouted topics, payload errors by
//! kind, tags that never got a value) and the comparison of two replays (`--diff`).

use std::collections::{BTreeMap, HashMap};

use mqtt_line_abi::{
    MQL_EVENT_LOG, MQL_EVENT_ROUTE, MQL_EVENT_TAG_VALUE, MQL_FLAG_VALID, MQL_LOG_WARN,
    MQL_ROUTE_TAKEN, MQL_ROUTE_UNROUTED,
};
use serde::Serialize;

use crate::config::LineSpec;
use crate::event::{route_outcome_name, RawEvent, Value};
use crate::output::readable_value;
use mqtt_line_host::text::escape_readable;

/// Where each received message went, in arrival order, for `--diff`: topic and destination
/// (the station's name, or the route outcome) as indexes into name tables, 8 bytes a message.
#[derive(Debug, Default)]
pub struct Deliveries {
    names: Vec<String>,
    index: HashMap<String, u32>,
    went: Vec<(u32, u32)>,
}

impl Deliveries {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    fn push(&mut self, topic: &str, went_to: &str) {
        let t = self.intern(topic);
        let w = self.intern(went_to);
        self.went.push((t, w));
    }

    fn name(&self, i: u32) -> &str {
        self.names.get(i as usize).map_or("", String::as_str)
    }
}

/// Everything a replay observed, filled from the line's events.
///
/// Per message it only counts (the route event's station id, or its topic when unrouted):
/// names and value texts are made once, for the summary, so that the replay's main loop does
/// not do much more per message than `run`'s.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages received (route events).
    pub messages: u64,
    /// Kept only for `--diff` ([`Tally::keeping_deliveries`]).
    deliveries: Option<Deliveries>,
    /// Messages taken, by station id.
    taken: HashMap<u64, u64>,
    unrouted: BTreeMap<String, u64>,
    /// Station off, simulated, will messages: by outcome.
    other_outcomes: BTreeMap<String, u64>,
    payload_errors: BTreeMap<String, u64>,
    other_warnings: u64,
    /// Per tag id: values received, invalid ones, and the last value.
    tags: HashMap<u64, TagTally>,
}

#[derive(Debug, Default, Clone)]
pub struct TagTally {
    pub values: u64,
    pub invalid: u64,
    /// The last value, `None` when it was invalid.
    last: Option<Value>,
}

impl TagTally {
    /// The last value as the readable output shows it.
    fn last_text(&self) -> String {
        self.last
            .as_ref()
            .map_or_else(|| "(invalid)".to_string(), readable_value)
    }
}

/// The kind of a payload warning, from the core's wording (crates/core/src/payload.rs).
pub fn payload_error_kind(text: &str) -> Option<&'static str> {
    [
        ("is not JSON", "not_json"),
        ("is not one CSV record", "not_csv"),
        ("cannot be inflated", "gzip"),
        ("is not in the payload", "missing_field"),
        ("does not fit time mask", "time_stamp"),
        ("not valid UTF-8", "not_utf8"),
        ("is not a number", "conversion"),
        ("out of range", "conversion"),
        ("Sparkplug", "sparkplug"),
    ]
    .into_iter()
    .find(|(needle, _)| text.contains(needle))
    .map(|(_, kind)| kind)
}

impl Tally {
    /// A tally that also keeps where every message went, for `--diff`.
    pub fn keeping_deliveries() -> Tally {
        Tally {
            deliveries: Some(Deliveries::default()),
            ..Tally::default()
        }
    }

    pub fn record(&mut self, spec: &LineSpec, ev: &RawEvent) {
        match ev.kind {
            MQL_EVENT_ROUTE => {
                self.messages += 1;
                // The event's text is the topic (RawEvent::route).
                let topic = ev.text.as_str();
                let outcome = ev.code;
                if outcome == MQL_ROUTE_TAKEN {
                    *self.taken.entry(ev.station_id).or_default() += 1;
                } else if outcome == MQL_ROUTE_UNROUTED {
                    match self.unrouted.get_mut(topic) {
                        Some(n) => *n += 1,
                        None => {
                            self.unrouted.insert(topic.to_string(), 1);
                        }
                    }
                } else {
                    *self
                        .other_outcomes
                        .entry(route_outcome_name(outcome))
                        .or_default() += 1;
                }
                if let Some(d) = self.deliveries.as_mut() {
                    let went_to = match outcome {
                        MQL_ROUTE_TAKEN => station_name(spec, ev.station_id),
                        MQL_ROUTE_UNROUTED => "(unrouted)".to_string(),
                        other => format!("({})", route_outcome_name(other)),
                    };
                    d.push(topic, &went_to);
                }
            }
            MQL_EVENT_TAG_VALUE => {
                let t = self.tags.entry(ev.tag_id).or_default();
                t.values += 1;
                if ev.flags & MQL_FLAG_VALID == 0 {
                    t.invalid += 1;
                    t.last = None;
                } else {
                    t.last = Some(ev.value.clone());
                }
            }
            MQL_EVENT_LOG if ev.code <= MQL_LOG_WARN => match payload_error_kind(&ev.text) {
                Some(kind) => *self.payload_errors.entry(kind.into()).or_default() += 1,
                None => self.other_warnings += 1,
            },
            _ => {}
        }
    }

    /// Messages taken, by station name.
    fn per_station(&self, spec: &LineSpec) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (&id, &n) in &self.taken {
            *out.entry(station_name(spec, id)).or_default() += n;
        }
        out
    }
}

fn station_name(spec: &LineSpec, id: u64) -> String {
    spec.station_by_id(id)
        .map_or_else(|| format!("#{id}"), |s| s.name.clone())
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub event: &'static str,
    pub messages: u64,
    /// Messages published to the embedded broker that the line did not receive.
    pub not_received: u64,
    pub per_station: BTreeMap<String, u64>,
    pub unrouted_topics: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub other_outcomes: BTreeMap<String, u64>,
    pub payload_errors: BTreeMap<String, u64>,
    pub other_warnings: u64,
    /// `station.tag` of every tag without any value.
    pub tags_without_value: Vec<String>,
    /// `station.tag` of tags that only ever had invalid values.
    pub tags_only_invalid: Vec<String>,
}

impl Summary {
    pub fn new(spec: &LineSpec, tally: &Tally, not_received: u64) -> Summary {
        let mut without = Vec::new();
        let mut only_invalid = Vec::new();
        for st in &spec.stations {
            for tag in &st.tags {
                let name = format!("{}.{}", st.name, tag.name);
                match tally.tags.get(&tag.id) {
                    None => without.push(name),
                    Some(t) if t.invalid == t.values => only_invalid.push(name),
                    Some(_) => {}
                }
            }
        }
        Summary {
            event: "replay_summary",
            messages: tally.messages,
            not_received,
            per_station: tally.per_station(spec),
            unrouted_topics: tally.unrouted.clone(),
            other_outcomes: tally.other_outcomes.clone(),
            payload_errors: tally.payload_errors.clone(),
            other_warnings: tally.other_warnings,
            tags_without_value: without,
            tags_only_invalid: only_invalid,
        }
    }

    pub fn readable(&self) -> String {
        let mut s = String::new();
        let unrouted: u64 = self.unrouted_topics.values().sum();
        s.push_str(&format!(
            "replay summary: {} messages received, {} routed, {} unrouted",
            self.messages,
            self.per_station.values().sum::<u64>(),
            unrouted
        ));
        if self.not_received > 0 {
            s.push_str(&format!(", {} not received", self.not_received));
        }
        s.push('\n');
        s.push_str("  messages per station:\n");
        for (station, n) in &self.per_station {
            s.push_str(&format!("    {station}: {n}\n"));
        }
        if !self.unrouted_topics.is_empty() {
            s.push_str("  unrouted topics:\n");
            for (topic, n) in &self.unrouted_topics {
                s.push_str(&format!("    {}: {n}\n", escape_readable(topic)));
            }
        }
        for (outcome, n) in &self.other_outcomes {
            s.push_str(&format!("  {outcome}: {n}\n"));
        }
        if self.payload_errors.is_empty() {
            s.push_str("  payload errors: none\n");
        } else {
            s.push_str("  payload errors:\n");
            for (kind, n) in &self.payload_errors {
                s.push_str(&format!("    {kind}: {n}\n"));
            }
        }
        if self.other_warnings > 0 {
            s.push_str(&format!("  other warnings: {}\n", self.other_warnings));
        }
        if self.tags_without_value.is_empty() {
            s.push_str("  tags without a value: none\n");
        } else {
            s.push_str(&format!(
                "  tags without a value: {}\n",
                self.tags_without_value.join(", ")
            ));
        }
        if !self.tags_only_invalid.is_empty() {
            s.push_str(&format!(
                "  tags with only invalid values: {}\n",
                self.tags_only_invalid.join(", ")
            ));
        }
        s
    }
}

/// One topic whose messages go elsewhere with the other configuration.
#[derive(Debug, Serialize, PartialEq)]
pub struct RouteChange {
    pub topic: String,
    pub from: String,
    pub to: String,
    pub messages: u64,
}

/// One tag whose values differ: by `station.tag` name, its value count and last value.
#[derive(Debug, Serialize, PartialEq)]
pub struct TagChange {
    pub tag: String,
    pub values: [u64; 2],
    pub last: [Option<String>; 2],
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub event: &'static str,
    pub messages: [u64; 2],
    pub routes: Vec<RouteChange>,
    pub tags: Vec<TagChange>,
}

fn tag_table(spec: &LineSpec, tally: &Tally) -> BTreeMap<String, (u64, Option<String>)> {
    let mut out = BTreeMap::new();
    for st in &spec.stations {
        for tag in &st.tags {
            let t = tally.tags.get(&tag.id);
            out.insert(
                format!("{}.{}", st.name, tag.name),
                (t.map_or(0, |t| t.values), t.map(TagTally::last_text)),
            );
        }
    }
    out
}

impl Diff {
    /// Compares the messages by their position in the recording (both replays receive them in
    /// the same order) and the tags by name.
    pub fn new(a: (&LineSpec, &Tally), b: (&LineSpec, &Tally)) -> Diff {
        let mut routes: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        if let (Some(da), Some(db)) = (&a.1.deliveries, &b.1.deliveries) {
            for (&(topic, x), &(_, y)) in da.went.iter().zip(&db.went) {
                let (x, y) = (da.name(x), db.name(y));
                if x != y {
                    let key = (da.name(topic).to_string(), x.to_string(), y.to_string());
                    *routes.entry(key).or_default() += 1;
                }
            }
        }
        let ta = tag_table(a.0, a.1);
        let tb = tag_table(b.0, b.1);
        let mut names: Vec<&String> = ta.keys().chain(tb.keys()).collect();
        names.sort();
        names.dedup();
        let mut tags = Vec::new();
        for name in names {
            let (va, la) = ta.get(name).cloned().unwrap_or((0, None));
            let (vb, lb) = tb.get(name).cloned().unwrap_or((0, None));
            let missing_in_one = !ta.contains_key(name) || !tb.contains_key(name);
            if missing_in_one || va != vb || la != lb {
                tags.push(TagChange {
                    tag: name.clone(),
                    values: [va, vb],
                    last: [la, lb],
                });
            }
        }
        Diff {
            event: "replay_diff",
            messages: [a.1.messages, b.1.messages],
            routes: routes
                .into_iter()
                .map(|((topic, from, to), messages)| RouteChange {
                    topic,
                    from,
                    to,
                    messages,
                })
                .collect(),
            tags,
        }
    }

    pub fn readable(&self, a: &str, b: &str) -> String {
        let mut s = format!(
            "replay diff: {a} ({} messages) -> {b} ({} messages)\n",
            self.messages[0], self.messages[1]
        );
        if self.routes.is_empty() {
            s.push_str("  routing: no message goes elsewhere\n");
        } else {
            s.push_str("  routing changes (topic: from -> to, messages):\n");
            for r in &self.routes {
                s.push_str(&format!(
                    "    {}: {} -> {}, {}\n",
                    escape_readable(&r.topic),
                    r.from,
                    r.to,
                    r.messages
                ));
            }
        }
        if self.tags.is_empty() {
            s.push_str("  tag values: no change\n");
        } else {
            s.push_str("  tag changes (tag: values, last value):\n");
            let show = |v: &Option<String>| {
                v.as_deref()
                    .map_or_else(|| "-".to_string(), escape_readable)
            };
            for t in &self.tags {
                s.push_str(&format!(
                    "    {}: {} -> {} values, last {} -> {}\n",
                    t.tag,
                    t.values[0],
                    t.values[1],
                    show(&t.last[0]),
                    show(&t.last[1])
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_warnings_are_sorted_by_kind() {
        let cases = [
            (
                "station 'a': the payload of 't' is not JSON (x); its JA= tags",
                Some("not_json"),
            ),
            (
                "station 'a': the payload of 't' is not one CSV record: y",
                Some("not_csv"),
            ),
            (
                "station 'a': the payload of 't' cannot be inflated: z",
                Some("gzip"),
            ),
            (
                "tag 'n.c': JA=f_cnt is not in the payload of 't'",
                Some("missing_field"),
            ),
            (
                "tag 'a.b': IN_DATA: 'x' is not a number; the tag is invalid",
                Some("conversion"),
            ),
            ("line 'l': connected to the broker", None),
        ];
        for (text, kind) in cases {
            assert_eq!(payload_error_kind(text), kind, "{text}");
        }
    }
}
