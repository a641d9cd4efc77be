//! What sim-host knows of the running line from its events: the line's and stations' states,
//! every tag's last value and the most recent unrouted topics. The `status` and `values` answers
//! are read from here; with the live page it also notes what changed since the last update.

use std::collections::VecDeque;

use mqtt_line_abi::*;

use crate::event::{station_state_name, RawEvent, Value};

/// How many unrouted topics are kept (the most recent ones).
pub const UNROUTED_KEPT: usize = 20;

/// The line's connection as its events reported it.
#[derive(Debug, Clone, PartialEq)]
pub enum LineState {
    /// No connection attempt has ended yet.
    Connecting,
    /// `host:port` of the broker.
    Connected(String),
    /// Why the connection ended or failed.
    Disconnected(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineStatus {
    pub state: LineState,
    /// When it was reported (None before the first report).
    pub since_ns: Option<i64>,
}

/// The names of a redundant line's connections (issue 21), by index: A to `host`, B to
/// `redundant_host`.
pub const CONNECTION_NAMES: [&str; 2] = ["A", "B"];

#[derive(Debug, Clone, PartialEq)]
pub struct StationStatus {
    /// The contract's name (`ok`, `comm_error`, ...); `unknown` before the first report.
    pub state: String,
    pub reason: String,
    pub since_ns: Option<i64>,
}

/// A tag's last value event.
#[derive(Debug, Clone, PartialEq)]
pub struct TagValue {
    pub value: Value,
    pub valid: bool,
    pub time_ns: i64,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnroutedTopic {
    pub time_ns: i64,
    pub topic: String,
}

/// Indexes marked since the last [`Changes::take`], each once, in the order first marked.
#[derive(Debug, Default)]
pub struct Marks {
    marked: Vec<bool>,
    order: Vec<usize>,
}

impl Marks {
    fn new(len: usize) -> Marks {
        Marks {
            marked: vec![false; len],
            order: Vec::new(),
        }
    }

    fn mark(&mut self, i: usize) {
        if let Some(m) = self.marked.get_mut(i) {
            if !*m {
                *m = true;
                self.order.push(i);
            }
        }
    }

    /// The marked indexes; the marks are cleared.
    pub fn take(&mut self) -> Vec<usize> {
        for &i in &self.order {
            self.marked[i] = false;
        }
        std::mem::take(&mut self.order)
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// What changed since the live page's last update.
#[derive(Debug, Default)]
pub struct Changes {
    pub line: bool,
    /// Station indexes (id - 1) with a new state or a new message.
    pub stations: Marks,
    /// Tag indexes (id - 1) with a new value.
    pub tags: Marks,
    /// Unrouted topics since the last update (at most [`UNROUTED_KEPT`]).
    pub unrouted: VecDeque<UnroutedTopic>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.line && self.stations.is_empty() && self.tags.is_empty() && self.unrouted.is_empty()
    }
}

#[derive(Debug)]
pub struct LineView {
    pub line: LineStatus,
    /// A redundant line's connections, A and B, as their events reported them; empty on a line
    /// with one connection, whose state is [`LineView::line`] alone.
    pub connections: Vec<LineStatus>,
    /// By station id - 1.
    pub stations: Vec<StationStatus>,
    /// By tag id - 1; None until the tag's first value event.
    pub tags: Vec<Option<TagValue>>,
    /// Oldest first.
    pub unrouted: VecDeque<UnroutedTopic>,
    /// Kept only while a live page may ask for them.
    changes: Option<Changes>,
}

fn index(id: u64) -> Option<usize> {
    usize::try_from(id).ok()?.checked_sub(1)
}

/// The index in [`CONNECTION_NAMES`] of an event's `link` (`MQL_LINK_A`, `MQL_LINK_B`).
pub fn connection_index(link: u32) -> Option<usize> {
    match link {
        MQL_LINK_A => Some(0),
        MQL_LINK_B => Some(1),
        _ => None,
    }
}

fn push_bounded(list: &mut VecDeque<UnroutedTopic>, item: UnroutedTopic) {
    if list.len() == UNROUTED_KEPT {
        list.pop_front();
    }
    list.push_back(item);
}

impl LineView {
    /// A view of `stations` stations and `tags` tags (ids 1..=n); `track_changes` for the live
    /// page.
    pub fn new(stations: usize, tags: usize, track_changes: bool) -> LineView {
        LineView {
            line: LineStatus {
                state: LineState::Connecting,
                since_ns: None,
            },
            connections: Vec::new(),
            stations: vec![
                StationStatus {
                    state: "unknown".into(),
                    reason: String::new(),
                    since_ns: None,
                };
                stations
            ],
            tags: vec![None; tags],
            unrouted: VecDeque::with_capacity(UNROUTED_KEPT),
            changes: track_changes.then(|| Changes {
                stations: Marks::new(stations),
                tags: Marks::new(tags),
                ..Changes::default()
            }),
        }
    }

    /// Notes what `ev` tells; `time_ns` is its time (the arrival time for status events
    /// without one). Events of unknown ids are ignored.
    pub fn record(&mut self, ev: &RawEvent, time_ns: i64) {
        match ev.kind {
            MQL_EVENT_TAG_VALUE => {
                let Some(slot) = index(ev.tag_id).and_then(|i| self.tags.get_mut(i)) else {
                    return;
                };
                *slot = Some(TagValue {
                    value: ev.value.clone(),
                    valid: ev.flags & MQL_FLAG_VALID != 0,
                    time_ns: ev.time_ns,
                    flags: ev.flags,
                });
                if let (Some(c), Some(i)) = (self.changes.as_mut(), index(ev.tag_id)) {
                    c.tags.mark(i);
                }
            }
            MQL_EVENT_STATION_STATE => {
                let Some(i) = index(ev.station_id).filter(|&i| i < self.stations.len()) else {
                    return;
                };
                self.stations[i] = StationStatus {
                    state: station_state_name(ev.code),
                    reason: ev.text.clone(),
                    since_ns: Some(time_ns),
                };
                if let Some(c) = self.changes.as_mut() {
                    c.stations.mark(i);
                }
            }
            MQL_EVENT_LINE_STATE => {
                let state = if ev.code == MQL_LINE_CONNECTED {
                    LineState::Connected(ev.text.clone())
                } else {
                    LineState::Disconnected(ev.text.clone())
                };
                self.line = LineStatus {
                    state,
                    since_ns: Some(time_ns),
                };
                if let Some(c) = self.changes.as_mut() {
                    c.line = true;
                }
            }
            MQL_EVENT_LINK_STATE => {
                if let Some(i) = connection_index(ev.link) {
                    self.record_connection(i, ev.code == MQL_LINE_CONNECTED, &ev.text, time_ns);
                }
            }
            MQL_EVENT_ROUTE => self.record_route(ev, time_ns),
            _ => {}
        }
    }

    /// Makes the view one of a redundant line (its configuration sets `redundant_host`): both
    /// connections are shown, `connecting` until their first event.
    pub fn set_redundant(&mut self) {
        if self.connections.is_empty() {
            self.connections = vec![
                LineStatus {
                    state: LineState::Connecting,
                    since_ns: None,
                };
                CONNECTION_NAMES.len()
            ];
        }
    }

    /// Notes a connection event of a redundant line: `index` 0 is A, 1 is B; `text` is
    /// `host:port` when connected, the reason otherwise. Other indexes are ignored.
    pub fn record_connection(&mut self, index: usize, connected: bool, text: &str, time_ns: i64) {
        if index >= CONNECTION_NAMES.len() {
            return;
        }
        self.set_redundant();
        self.connections[index] = LineStatus {
            state: if connected {
                LineState::Connected(text.to_string())
            } else {
                LineState::Disconnected(text.to_string())
            },
            since_ns: Some(time_ns),
        };
        if let Some(c) = self.changes.as_mut() {
            c.line = true;
        }
    }

    fn record_route(&mut self, ev: &RawEvent, time_ns: i64) {
        if ev.code == MQL_ROUTE_UNROUTED {
            let item = UnroutedTopic {
                time_ns,
                topic: ev.text.clone(),
            };
            if let Some(c) = self.changes.as_mut() {
                push_bounded(&mut c.unrouted, item.clone());
            }
            push_bounded(&mut self.unrouted, item);
        } else if let Some(c) = self.changes.as_mut() {
            // A station's counters changed, whatever it did with the message.
            if ev.code == MQL_ROUTE_TAKEN || ev.station_id != 0 {
                if let Some(i) = index(ev.station_id) {
                    c.stations.mark(i);
                }
            }
        }
    }

    /// Forgets what changed (no page is listening; one that connects gets a snapshot).
    pub fn forget_changes(&mut self) {
        if let Some(c) = self.changes.as_mut() {
            c.line = false;
            c.stations.take();
            c.tags.take();
            c.unrouted.clear();
        }
    }

    /// What changed since the last call (None without change tracking); tracking goes on.
    pub fn changes(&mut self) -> Option<&mut Changes> {
        self.changes.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u32) -> RawEvent {
        RawEvent {
            kind,
            code: 0,
            flags: 0,
            station_id: 0,
            tag_id: 0,
            request_id: 0,
            time_ns: 7,
            value: Value::None,
            text: String::new(),
            link: 0,
        }
    }

    #[test]
    fn events_update_the_view_and_mark_changes() {
        let mut view = LineView::new(2, 3, true);
        let mut value = event(MQL_EVENT_TAG_VALUE);
        value.tag_id = 2;
        value.station_id = 1;
        value.flags = MQL_FLAG_VALID;
        value.value = Value::Int(5);
        view.record(&value, 7);
        view.record(&value, 7);
        let mut station = event(MQL_EVENT_STATION_STATE);
        station.station_id = 2;
        station.code = MQL_STATION_OK;
        station.text = "connected".into();
        view.record(&station, 9);
        let mut line = event(MQL_EVENT_LINE_STATE);
        line.code = MQL_LINE_CONNECTED;
        line.text = "127.0.0.1:1883".into();
        view.record(&line, 9);

        assert_eq!(
            view.tags[1].as_ref().map(|t| &t.value),
            Some(&Value::Int(5))
        );
        assert!(view.tags[0].is_none() && view.tags[2].is_none());
        assert_eq!(view.stations[1].state, "ok");
        assert_eq!(view.stations[0].state, "unknown");
        assert_eq!(
            view.line.state,
            LineState::Connected("127.0.0.1:1883".into())
        );
        let changes = view.changes().expect("tracking");
        assert!(changes.line);
        assert_eq!(changes.tags.take(), vec![1], "marked once");
        assert_eq!(changes.stations.take(), vec![1]);
        assert!(changes.tags.take().is_empty(), "marks are cleared");
    }

    #[test]
    fn unknown_ids_are_ignored() {
        let mut view = LineView::new(1, 1, true);
        for (kind, station_id, tag_id) in [
            (MQL_EVENT_TAG_VALUE, 1, 0),
            (MQL_EVENT_TAG_VALUE, 1, 2),
            (MQL_EVENT_STATION_STATE, 0, 0),
            (MQL_EVENT_STATION_STATE, 5, 0),
            (MQL_EVENT_ROUTE, 9, 0),
        ] {
            let mut ev = event(kind);
            ev.station_id = station_id;
            ev.tag_id = tag_id;
            ev.code = MQL_ROUTE_TAKEN;
            view.record(&ev, 1);
        }
        assert!(view.tags[0].is_none());
        assert_eq!(view.stations[0].state, "unknown");
        assert!(view.changes().is_some_and(|c| c.is_empty()));
    }

    #[test]
    fn only_the_most_recent_unrouted_topics_are_kept() {
        let mut view = LineView::new(0, 0, true);
        for i in 0..(UNROUTED_KEPT + 5) {
            let mut ev = event(MQL_EVENT_ROUTE);
            ev.code = MQL_ROUTE_UNROUTED;
            ev.text = format!("t/{i}");
            view.record(&ev, i as i64);
        }
        assert_eq!(view.unrouted.len(), UNROUTED_KEPT);
        assert_eq!(view.unrouted.front().map(|u| u.topic.as_str()), Some("t/5"));
        let c = view.changes().expect("tracking");
        assert_eq!(c.unrouted.len(), UNROUTED_KEPT);
        assert_eq!(c.unrouted.back().map(|u| u.topic.as_str()), Some("t/24"));
    }

    #[test]
    fn forgotten_changes_are_gone() {
        let mut view = LineView::new(1, 1, true);
        let mut ev = event(MQL_EVENT_TAG_VALUE);
        ev.tag_id = 1;
        view.record(&ev, 1);
        view.forget_changes();
        assert!(view.changes().is_some_and(|c| c.is_empty()));
        assert!(view.tags[0].is_some(), "the values stay");
    }

    #[test]
    fn without_tracking_nothing_is_marked() {
        let mut view = LineView::new(1, 1, false);
        let mut ev = event(MQL_EVENT_TAG_VALUE);
        ev.tag_id = 1;
        view.record(&ev, 1);
        assert!(view.tags[0].is_some());
        assert!(view.changes().is_none());
    }
}
