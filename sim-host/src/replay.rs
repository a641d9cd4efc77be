//! `sim-host replay`: the line of a configuration against a recording. An embedded broker
//! (rumqttd, as in the demo) gets the recorded messages from a publisher of ours once the line
//! is connected and subscribed, so the whole line runs as in production; the run prints what
//! `run` prints and ends with a summary (summary.rs), or with `--diff` the changes between two
//! configurations.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mqtt_line_abi::{MQL_EVENT_LINE_STATE, MQL_EVENT_ROUTE, MQL_LINE_CONNECTED};

use crate::config::LineSpec;
use crate::demo;
use crate::event::RawEvent;
use crate::output::stderr_line;
use crate::plugin::{Line, Plugin};
use crate::recording::{self, filter_matches, RecordingReader};
use crate::replay_publisher::{LineProgress, Publisher};
use crate::runner::{self, AppError, RunObserver, RunOptions};
use crate::summary::{Diff, Summary, Tally};

#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Times the recorded pace (2.0: twice as fast).
    Speed(f64),
    AsFastAsPossible,
}

pub struct ReplayOptions {
    pub file: PathBuf,
    pub pace: Pace,
    pub run: RunOptions,
}

/// After the last message was published, how long the line may stay silent before the messages
/// it has not received are counted as lost.
const QUIET_END: Duration = Duration::from_secs(3);
/// How long the line may take to connect to the embedded broker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Line parameters that point at the plant's broker or its credentials; the replay's line
/// connects to the embedded broker in plain TCP instead.
const BROKER_PARAMETERS: &[&str] = &[
    "host",
    "hosts",
    "address",
    "port",
    "transport",
    "ws_path",
    "tls",
    "tls_ca_file",
    "tls_client_cert_file",
    "tls_client_key_file",
    "password",
    "password_env",
    "password_file",
];

fn line_param<'s>(spec: &'s LineSpec, name: &str) -> Option<&'s str> {
    spec.params
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The configuration pointed at the embedded broker.
fn against_broker(spec: &LineSpec, port: u16) -> LineSpec {
    let mut s = spec.clone();
    s.params
        .retain(|(n, _)| !BROKER_PARAMETERS.contains(&n.to_ascii_lowercase().as_str()));
    s.params
        .insert(0, ("host".into(), Ipv4Addr::LOCALHOST.to_string()));
    s.params.insert(1, ("port".into(), port.to_string()));
    // rumqttd refuses a keep-alive of 0 (the line's default): such a line gets one, and pings
    // well within it.
    let keep_alive_off = line_param(&s, "keep_alive").is_none_or(|k| k.parse() == Ok(0u32));
    if keep_alive_off {
        s.params.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("keep_alive") && !n.eq_ignore_ascii_case("ping_interval")
        });
        s.params
            .push(("keep_alive".into(), REPLAY_KEEP_ALIVE.into()));
        s.params
            .push(("ping_interval".into(), REPLAY_PING_INTERVAL.into()));
    }
    // rumqttd 0.20 gives one topic alias per subscription filter, not per topic, so with `#`
    // every topic would arrive as the first one: a replayed MQTT 5 line takes no aliases.
    if is_v5(&s) {
        s.params
            .retain(|(n, _)| !n.eq_ignore_ascii_case("topic_alias_maximum"));
        s.params.push(("topic_alias_maximum".into(), "0".into()));
    }
    s
}

/// The keep-alive and ping interval of a replayed line whose keep-alive is off.
const REPLAY_KEEP_ALIVE: &str = "60";
const REPLAY_PING_INTERVAL: &str = "20";

fn is_v5(spec: &LineSpec) -> bool {
    line_param(spec, "protocol_version").is_some_and(|v| v.starts_with('5'))
}

/// What the publisher and the main loop share.
#[derive(Default)]
struct Progress {
    /// Messages published that the line's topic filter takes.
    expected: AtomicU64,
    /// The line's progress, for the publisher's flow control (replay_publisher.rs).
    line: LineProgress,
    done: AtomicBool,
    error: Mutex<Option<String>>,
}

/// The observer of one replay run: starts the publisher when the line is connected, tallies
/// the events and says when every message has arrived.
struct Watch<'s> {
    spec: &'s LineSpec,
    tally: Tally,
    go: Option<Sender<()>>,
    progress: Arc<Progress>,
    connect_deadline: Instant,
    last_received: u64,
    last_change: Instant,
    not_received: u64,
    failed: Option<String>,
}

impl RunObserver for Watch<'_> {
    fn event(&mut self, ev: &RawEvent) {
        if ev.kind == MQL_EVENT_LINE_STATE && ev.code == MQL_LINE_CONNECTED {
            // The line reports connected once its subscription is confirmed (SessionEvent::Ready).
            if let Some(go) = self.go.take() {
                let _ = go.send(());
            }
        }
        self.tally.record(self.spec, ev);
        if ev.kind == MQL_EVENT_ROUTE {
            self.progress
                .line
                .received
                .store(self.tally.messages, Ordering::Release);
        }
    }

    fn finished(&mut self, line: &Line<'_>) -> bool {
        if let Some(e) = self.progress.error.lock().ok().and_then(|mut e| e.take()) {
            self.failed = Some(e);
            return true;
        }
        if self.go.is_some() {
            if Instant::now() >= self.connect_deadline {
                self.failed = Some(format!(
                    "the line did not connect to the embedded broker within {}s",
                    CONNECT_TIMEOUT.as_secs()
                ));
                return true;
            }
            return false;
        }
        // Counted from the route events the host has drained, not from the line's counters:
        // those run ahead of the events still in the plugin's queue.
        let _ = line;
        let received = self.tally.messages;
        if received != self.last_received {
            self.last_received = received;
            self.last_change = Instant::now();
        }
        if !self.progress.done.load(Ordering::Acquire) {
            self.last_change = Instant::now();
            return false;
        }
        let expected = self.progress.expected.load(Ordering::Acquire);
        if received >= expected {
            return true;
        }
        if self.last_change.elapsed() >= QUIET_END {
            self.not_received = expected - received;
            return true;
        }
        false
    }

    fn last_look(&mut self, _line: &Line<'_>) {}
}

/// Publishes the recording to the embedded broker once `go` fires.
fn spawn_publisher(
    file: PathBuf,
    port: u16,
    v5: bool,
    pace: Pace,
    filter: String,
    go: Receiver<()>,
    progress: Arc<Progress>,
) -> Result<(), AppError> {
    thread::Builder::new()
        .name("replay-publisher".into())
        .spawn(move || {
            let result = publish_all(&file, port, v5, pace, &filter, go, &progress);
            if let Err(e) = result {
                if let Ok(mut slot) = progress.error.lock() {
                    *slot = Some(e);
                }
            }
            progress.done.store(true, Ordering::Release);
        })
        .map(|_| ())
        .map_err(|e| AppError::Fatal(format!("cannot start the replay publisher: {e}")))
}

fn publish_all(
    file: &std::path::Path,
    port: u16,
    v5: bool,
    pace: Pace,
    filter: &str,
    go: Receiver<()>,
    progress: &Progress,
) -> Result<(), String> {
    let mut reader = RecordingReader::open(file).map_err(|e| e.to_string())?;
    let mut publisher = Publisher::connect(port, v5).map_err(|e| e.to_string())?;
    // The line's connection comes first, so no message is published before it subscribed.
    if go.recv().is_err() {
        return Ok(());
    }
    let filters: Vec<&str> = filter.split([',', ';']).map(str::trim).collect();
    let started = Instant::now();
    let mut first_ns = None;
    while let Some(m) = reader.next_message().map_err(|e| e.to_string())? {
        if let Pace::Speed(x) = pace {
            let first = *first_ns.get_or_insert(m.time_ns);
            let offset = Duration::from_nanos(m.time_ns.saturating_sub(first).max(0) as u64);
            let due = started + offset.div_f64(x);
            let now = Instant::now();
            if due > now {
                publisher.flush().map_err(|e| e.to_string())?;
                thread::sleep(due - now);
            }
        }
        let to_line = filters.iter().any(|f| filter_matches(f, &m.topic));
        if !publisher
            .publish(m, to_line, &progress.line)
            .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        if to_line {
            progress.expected.fetch_add(1, Ordering::AcqRel);
        }
    }
    publisher.finish(&progress.line).map_err(|e| e.to_string())
}

/// One replay of the recording with `spec`; prints the run's events into `out`.
fn replay_once<W: Write>(
    plugin: &Plugin,
    spec: &LineSpec,
    o: &ReplayOptions,
    diff: bool,
    stop: &AtomicBool,
    out: W,
) -> Result<(Tally, u64), AppError> {
    let v5 = is_v5(spec);
    // Any message a recording can hold, with room for the packet's other fields: the limit is
    // only a check in rumqttd (nothing is allocated by it), and a limit that fits the recording
    // would take a pass over the whole file first (a second of a million messages).
    let limit = recording::MAX_LINE.saturating_add(64 * 1024);
    let port = demo::start_broker_for_replay(limit, v5).map_err(AppError::Fatal)?;
    let line_spec = against_broker(spec, port);
    let sparkplug = line_param(spec, "payload_type")
        .is_some_and(|p| p.to_ascii_lowercase().starts_with("sparkplug"));
    // The line's own default filter (docs/parameters.md, docs/sparkplug.md).
    let filter = line_param(spec, "topic_filter")
        .filter(|f| !f.is_empty())
        .unwrap_or(if sparkplug { "spBv1.0/#" } else { "#" })
        .to_string();
    let (go_tx, go_rx) = mpsc::channel();
    let progress = Arc::new(Progress::default());
    spawn_publisher(
        o.file.clone(),
        port,
        v5,
        o.pace,
        filter,
        go_rx,
        progress.clone(),
    )?;
    let mut watch = Watch {
        spec: &line_spec,
        tally: if diff {
            Tally::keeping_deliveries()
        } else {
            Tally::default()
        },
        go: Some(go_tx),
        progress,
        connect_deadline: Instant::now() + CONNECT_TIMEOUT,
        last_received: 0,
        last_change: Instant::now(),
        not_received: 0,
        failed: None,
    };
    let run = runner::run_observed(plugin, &line_spec, &o.run, stop, out, Some(&mut watch));
    // A run ended early (quit, Ctrl-C, --duration, an error) stops the publisher too.
    watch.progress.line.cancelled.store(true, Ordering::Release);
    run?;
    if let Some(e) = watch.failed {
        return Err(AppError::Fatal(format!("replay: {e}")));
    }
    Ok((watch.tally, watch.not_received))
}

/// `sim-host replay CONFIG FILE [--diff OTHER]`.
pub fn replay(
    plugin: &Plugin,
    spec: &LineSpec,
    other: Option<&LineSpec>,
    o: &ReplayOptions,
    stop: &AtomicBool,
) -> Result<(), AppError> {
    stderr_line(&format!(
        "INFO replay: {} against line '{}' on an embedded broker",
        o.file.display(),
        spec.name
    ));
    let (tally, not_received) = replay_once(plugin, spec, o, other.is_some(), stop, io::stdout())?;
    let mut out = io::stdout().lock();
    let print = |out: &mut io::StdoutLock, text: String| {
        // A reader that went away misses only the summary.
        let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    };
    let summary = Summary::new(spec, &tally, not_received);
    if o.run.json {
        print(&mut out, json_line(&summary));
    } else {
        print(&mut out, summary.readable());
    }
    let Some(other) = other else {
        return Ok(());
    };
    if stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    drop(out);
    stderr_line(&format!(
        "INFO replay: the same recording against line '{}' for --diff",
        other.name
    ));
    let quiet = RunOptions {
        json: o.run.json,
        duration: o.run.duration,
        log_level: mqtt_line_abi::MQL_LOG_ERROR,
        trace_routing: false,
        json_logs: false,
        http: None,
        http_public: false,
    };
    let second = ReplayOptions {
        file: o.file.clone(),
        pace: o.pace,
        run: quiet,
    };
    let (other_tally, _) = replay_once(plugin, other, &second, true, stop, io::sink())?;
    let diff = Diff::new((spec, &tally), (other, &other_tally));
    let mut out = io::stdout().lock();
    if o.run.json {
        print(&mut out, json_line(&diff));
    } else {
        print(&mut out, diff.readable(&spec.name, &other.name));
    }
    Ok(())
}

fn json_line<T: serde::Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string(value).unwrap_or_else(|e| {
        format!("{{\"event\":\"error\",\"text\":\"cannot encode the summary: {e}\"}}")
    });
    s.push('\n');
    s
}
