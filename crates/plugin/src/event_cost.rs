//! The cost test of the hand-over (issue 18): the events of received messages go into the line's
//! event queue as the driver puts them there, and out through `line_poll_events` into a host's
//! array, in batches as the benchmark's host takes them. Instructions per message, counted by
//! callgrind (crates/cost), against crates/plugin/cost-budgets.toml: more than 3 % over fails.
//! The core's part of the receive path has its own test (crates/core/tests/cost).

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::Arc;

use mqtt_line_core::{Event, StationId, TagId, Value, FLAG_VALID};
use mqtt_line_cost::{callgrind, measure, same_names, Budgets, Measured, Workload};

use super::*;
use crate::queue::EventQueue;

const BUDGET_FILE: &str = "crates/plugin/cost-budgets.toml";

/// The benchmark host's batch (host/src/plugin.rs, `POLL_BATCH`).
const POLL_BATCH: usize = 256;

/// Messages between two polls: about as many events as one batch holds.
const MESSAGES_PER_POLL: u64 = 64;

/// Each workload: the events one message makes, put where the core keeps them.
const WORKLOADS: [(Workload, Events); 3] = [
    (
        Workload {
            name: "numbers_3",
            what: "scenario 6: three number tags of a JSON message",
            messages: 8_192,
        },
        numbers_3,
    ),
    (
        Workload {
            name: "sparkplug_20",
            what: "scenario 8: twenty Double metrics into float tags",
            messages: 2_048,
        },
        sparkplug_20,
    ),
    (
        Workload {
            name: "texts_2",
            what: "scenario 1: a message's topic and text into IN_TOPIC and IN_DATA",
            messages: 8_192,
        },
        texts_2,
    ),
];

fn value(tag: u64, value: Option<Value>, m: u64) -> Event {
    Event::TagValue {
        station: StationId(1),
        tag: TagId(tag),
        value,
        time_ns: 1_764_000_000_000_000_000 + m as i64,
        flags: FLAG_VALID,
    }
}

/// The events of message `m`, appended to the core's queue.
type Events = fn(u64, &mut VecDeque<Event>);

fn numbers_3(m: u64, out: &mut VecDeque<Event>) {
    out.push_back(value(1, Some(Value::Float(21.5 + m as f64)), m));
    out.push_back(value(2, Some(Value::Int(m as i64)), m));
    out.push_back(value(3, Some(Value::Int(1)), m));
}

fn sparkplug_20(m: u64, out: &mut VecDeque<Event>) {
    for k in 1..=20 {
        out.push_back(value(k, Some(Value::Float(k as f64 + m as f64)), m));
    }
}

/// The texts are made as the core makes them, one `String` each.
fn texts_2(m: u64, out: &mut VecDeque<Event>) {
    let topic = format!("plant/line1/sensor/{}", m % 8);
    let data = format!(r#"{{"time":"2026-12-07T10:00:00Z","temp":{m}.5,"hum":40,"ok":true}}"#);
    out.push_back(value(1, Some(Value::Text(topic)), m));
    out.push_back(value(2, Some(Value::Text(data)), m));
}

/// The events of message `m`, as a list (for the checks).
fn events_of(events: Events, m: u64) -> Vec<Event> {
    let mut out = VecDeque::new();
    events(m, &mut out);
    out.into()
}

/// A line that is never started (it connects nowhere), its queue, and the host's array.
struct Feed {
    line: *mut MqlLine,
    queue: Arc<EventQueue>,
    events: Events,
    staged: VecDeque<Event>,
    host: Vec<MqlEvent>,
}

impl Feed {
    fn new(events: Events) -> Feed {
        let params = [
            MqlParam {
                key: MqlStr::from_str("host"),
                value: MqlStr::from_str("127.0.0.1"),
            },
            MqlParam {
                key: MqlStr::from_str("port"),
                value: MqlStr::from_str("1883"),
            },
        ];
        let config = MqlLineConfig {
            size: size_of::<MqlLineConfig>(),
            name: MqlStr::from_str("cost"),
            params: params.as_ptr(),
            param_count: params.len(),
            notify: None,
            notify_user_data: std::ptr::null_mut(),
            event_queue_capacity: 0,
            log_level: MQL_LOG_INFO,
            trace_routing: 0,
        };
        let mut line = std::ptr::null_mut();
        // SAFETY: the configuration and its strings live for the call; no error buffer.
        let status = unsafe { line_create(&config, &mut line, std::ptr::null_mut()) };
        assert_eq!(status, MQL_OK, "line_create");
        // SAFETY: a line just created.
        let queue = unsafe { handle(line) }
            .map(|h| h.shared.queue.clone())
            .unwrap_or_else(|_| panic!("the line's handle"));
        Feed {
            line,
            queue,
            events,
            staged: VecDeque::new(),
            host: Vec::with_capacity(POLL_BATCH),
        }
    }

    /// Feeds `messages` messages; the events the host received.
    fn run(&mut self, messages: u64) -> usize {
        let mut got = 0;
        for m in 0..messages {
            // The core's queue, then the plugin's in one batch, as the driver moves them.
            (self.events)(m, &mut self.staged);
            let staged = &mut self.staged;
            self.queue
                .push_all(std::iter::from_fn(|| staged.pop_front()));
            if (m + 1) % MESSAGES_PER_POLL == 0 {
                got += self.poll();
            }
        }
        got + self.poll()
    }

    /// Polls until the queue is empty, as the host does after a wake-up.
    fn poll(&mut self) -> usize {
        let mut got = 0;
        loop {
            let mut count = 0;
            // SAFETY: the array has room for `POLL_BATCH` events of this ABI's size.
            let status = unsafe {
                line_poll_events(
                    self.line,
                    self.host.as_mut_ptr(),
                    size_of::<MqlEvent>(),
                    POLL_BATCH,
                    &mut count,
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(status, MQL_OK, "line_poll_events");
            // SAFETY: the plugin wrote `count` events.
            unsafe { self.host.set_len(count) };
            assert!(
                self.host.iter().all(|e| e.kind == MQL_EVENT_TAG_VALUE),
                "only tag values were queued"
            );
            got += count;
            if count < POLL_BATCH {
                return got;
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // SAFETY: the line this feed created, destroyed once.
        unsafe { line_destroy(self.line) };
    }
}

fn budgets() -> Budgets {
    Budgets::of_crate(env!("CARGO_MANIFEST_DIR"), BUDGET_FILE).unwrap()
}

fn workloads() -> Vec<Workload> {
    WORKLOADS.iter().map(|&(w, _)| w).collect()
}

/// Every workload's events all reach the host: the cost test measures working code.
#[test]
fn workloads_hand_over_every_event() {
    for (w, events) in WORKLOADS {
        let per_message = events_of(events, 0).len();
        let mut feed = Feed::new(events);
        assert_eq!(feed.run(300), 300 * per_message, "{}", w.name);
        let last = feed.host.last().map(|e| e.tag_id);
        let want = events_of(events, 299).last().map(|e| match e {
            Event::TagValue { tag, .. } => tag.0,
            _ => 0,
        });
        assert_eq!(last, want, "{}: the last event", w.name);
    }
}

#[test]
fn the_budget_file_names_every_workload_once() {
    same_names(&budgets(), &workloads()).unwrap();
}

/// The measured run: started by `hand_over_within_budgets` under callgrind, with the workload
/// and the message count in the environment.
#[test]
#[ignore = "the measured run of hand_over_within_budgets, which starts it under callgrind"]
fn measured_run() {
    let (name, messages) = callgrind::requested().unwrap();
    let (_, events) = WORKLOADS
        .iter()
        .find(|(w, _)| w.name == name)
        .unwrap_or_else(|| panic!("no workload {name}"));
    let mut feed = Feed::new(*events);
    std::hint::black_box(feed.run(messages));
    // Ends here, before the harness times and reports the test (see the core's cost test).
    std::process::exit(0);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "the budgets are instructions of release builds: cargo test --release"
)]
fn hand_over_within_budgets() {
    let how = Measured {
        test: "ffi::event_cost::measured_run",
        unit: "message handed to the host",
    };
    measure(&workloads(), &budgets(), how).assert();
}
