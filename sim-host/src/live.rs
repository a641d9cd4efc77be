//! What the live page receives: a snapshot when it connects, then deltas with only what changed,
//! at most one per interval, and no more often than the line can afford (see [`Pacer`]).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::answers::{
    self, ConnectionCountersJson, LineCountersJson, LineStatusJson, StationCountersJson,
    StationStatusJson, StatsAnswer, StatusAnswer, TagJson, ValuesAnswer,
};
use crate::config::LineSpec;
use crate::counters;
use crate::output::format_time;
use crate::plugin::Line;
use crate::view::{LineView, UnroutedTopic};

/// The shortest time between two deltas.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// A delta may cost at most 1/BUDGET_RATIO of the main loop's time: after one took `t` to build,
/// the next comes no sooner than `BUDGET_RATIO * t` later.
const BUDGET_RATIO: u32 = 20;

#[derive(Debug, Serialize)]
pub struct UnroutedJson {
    pub topic: String,
    pub time: String,
}

fn unrouted_json<'a>(list: impl IntoIterator<Item = &'a UnroutedTopic>) -> Vec<UnroutedJson> {
    list.into_iter()
        .map(|u| UnroutedJson {
            topic: u.topic.clone(),
            time: format_time(u.time_ns),
        })
        .collect()
}

#[derive(Serialize)]
struct Snapshot {
    status: StatusAnswer,
    /// None when the plugin has no counters (before ABI 1.2).
    stats: Option<StatsAnswer>,
    values: ValuesAnswer,
    unrouted: Vec<UnroutedJson>,
}

#[derive(Serialize)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<LineStatusJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counters: Option<LineCountersJson>,
    stations: Vec<StationStatusJson>,
    station_stats: Vec<StationCountersJson>,
    /// A redundant line's connection counters, with every delta (the line's counters come so
    /// too); absent for a line with one connection.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    connection_stats: Vec<ConnectionCountersJson>,
    tags: Vec<TagJson>,
    unrouted: Vec<UnroutedJson>,
    time: String,
}

/// Everything the page shows, for a page that just connected.
pub fn snapshot(spec: &LineSpec, view: &LineView, line: &Line<'_>, now_ns: i64) -> String {
    let stats = answers::collect_counters(line, spec)
        .ok()
        .map(|c| answers::stats_answer(spec, &c, now_ns));
    answers::to_json_line(&Snapshot {
        status: answers::status_answer(spec, view, now_ns),
        stats,
        values: answers::values_answer(spec, view, now_ns),
        unrouted: unrouted_json(&view.unrouted),
    })
}

/// What changed since the last delta (the marks are cleared), or None when nothing did.
pub fn delta(spec: &LineSpec, view: &mut LineView, line: &Line<'_>, now_ns: i64) -> Option<String> {
    let changes = view.changes()?;
    if changes.is_empty() {
        return None;
    }
    let line_changed = std::mem::take(&mut changes.line);
    let stations = changes.stations.take();
    let tags = changes.tags.take();
    let unrouted: Vec<UnroutedTopic> = changes.unrouted.drain(..).collect();
    let view = &*view;
    let line_counters = counters::line_stats(line)
        .ok()
        .map(|c| answers::line_counters(&c));
    let station_stats = stations
        .iter()
        .filter_map(|&i| {
            let st = spec.stations.get(i)?;
            counters::station_stats(line, st.id)
                .ok()
                .map(|c| answers::station_counters(&st.name, &c))
        })
        .collect();
    let redundant = spec.is_redundant() || !view.connections.is_empty();
    let connection_stats = counters::connection_stats(line, redundant)
        .map(|c| answers::connection_counters(&c))
        .unwrap_or_default();
    let delta = Delta {
        line: line_changed.then(|| answers::line_status(spec, view)),
        counters: line_counters,
        connection_stats,
        stations: stations
            .iter()
            .filter(|&&i| i < spec.stations.len())
            .map(|&i| answers::station_status(spec, view, i))
            .collect(),
        station_stats,
        tags: tags
            .iter()
            .filter_map(|&i| answers::tag_value(spec, view, i))
            .collect(),
        unrouted: unrouted_json(&unrouted),
        time: format_time(now_ns),
    };
    Some(answers::to_json_line(&delta))
}

/// When the next delta is due.
#[derive(Debug)]
pub struct Pacer {
    next: Instant,
}

impl Pacer {
    pub fn new(now: Instant) -> Pacer {
        Pacer {
            next: now + MIN_INTERVAL,
        }
    }

    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// How long until the next delta is due.
    pub fn wait(&self, now: Instant) -> Duration {
        self.next.saturating_duration_since(now)
    }

    /// A delta that took `cost` to build was sent at `now`.
    pub fn sent(&mut self, now: Instant, cost: Duration) {
        self.next = now + MIN_INTERVAL.max(cost * BUDGET_RATIO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_paced_by_their_cost() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(t0);
        assert!(!pacer.is_due(t0));
        assert!(pacer.is_due(t0 + MIN_INTERVAL));
        let cases = [
            (Duration::from_millis(1), MIN_INTERVAL),
            (Duration::from_millis(100), Duration::from_secs(2)),
        ];
        for (cost, interval) in cases {
            pacer.sent(t0, cost);
            assert_eq!(pacer.wait(t0), interval, "{cost:?}");
            assert!(!pacer.is_due(t0 + interval - Duration::from_millis(1)));
            assert!(pacer.is_due(t0 + interval));
        }
    }
}
