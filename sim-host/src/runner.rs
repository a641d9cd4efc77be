//! Setting a line up from its configuration, and the main loop that runs it.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_line_abi::*;

use crate::answers;
use crate::commands::{spawn_stdin_reader, Command};
use crate::config::{LineSpec, StationMode};
use crate::event::{log_level_name, route_outcome_name, station_state_name, RawEvent};
use crate::http::{self, Query};
use crate::live::{self, Pacer};
use crate::metrics;
use crate::output::{stderr_line, Event, Printer};
use crate::plugin::{CallError, Line, LineOptions, Plugin};
use crate::view::LineView;
use crate::wake::Waker;

/// Why sim-host stops with an error, and so its exit code.
#[derive(Debug)]
pub enum AppError {
    /// The configuration is invalid (exit code 2).
    Config(String),
    /// Anything else (exit code 1).
    Fatal(String),
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) => 2,
            AppError::Fatal(_) => 1,
        }
    }

    /// Classifies a refused set-up call by its status.
    fn from_call(e: CallError) -> AppError {
        if e.is_config() {
            AppError::Config(e.message)
        } else {
            AppError::Fatal(e.message)
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            AppError::Config(m) | AppError::Fatal(m) => f.write_str(m),
        }
    }
}

/// How often the main loop wakes without a notification, to see signals and the deadline.
const TICK: Duration = Duration::from_millis(100);
/// Batches polled before the loop looks at commands and signals again.
const MAX_BATCHES_PER_TURN: usize = 16;

pub struct RunOptions {
    pub json: bool,
    pub duration: Option<Duration>,
    pub log_level: u32,
    /// Print a `route` event for every received message.
    pub trace_routing: bool,
    /// Plugin log messages as JSON `log` events on stdout (with `json`).
    pub json_logs: bool,
    /// Serve the live page, `/metrics` and `/api/*` here.
    pub http: Option<SocketAddr>,
    /// `--http-public`: the address may be one other hosts reach.
    pub http_public: bool,
}

/// Creates the line and adds every station and tag, then switches stations that start off or
/// simulated. The line is not started. When a step fails, the plugin's log events (which may
/// explain it) are printed before the error is returned.
fn build_line<'p>(
    plugin: &'p Plugin,
    spec: &LineSpec,
    options: LineOptions,
) -> Result<Line<'p>, AppError> {
    let mut line = Line::create_with(plugin, &spec.name, &spec.params, options)
        .map_err(AppError::from_call)?;
    if let Err(e) = configure(&mut line, spec) {
        print_waiting_logs(&mut line);
        return Err(e);
    }
    Ok(line)
}

fn configure(line: &mut Line<'_>, spec: &LineSpec) -> Result<(), AppError> {
    for st in &spec.stations {
        line.add_station(st.id, &st.name, &st.address, &st.params)
            .map_err(AppError::from_call)?;
        for tag in &st.tags {
            line.add_tag(
                st.id,
                tag.id,
                &tag.name,
                &tag.address,
                tag.value_type,
                tag.default.as_deref(),
            )
            .map_err(AppError::from_call)?;
        }
    }
    for st in &spec.stations {
        let command = match st.mode {
            StationMode::On => continue,
            StationMode::Off => MQL_STATION_CMD_OFF,
            StationMode::Simulate => MQL_STATION_CMD_SIMULATE,
        };
        line.station_command(st.id, command)
            .map_err(AppError::from_call)?;
    }
    Ok(())
}

/// Prints the log events waiting in the queue (other events are dropped: the line is not
/// running yet or is about to be destroyed).
fn print_waiting_logs(line: &mut Line<'_>) {
    let mut events = Vec::new();
    // A failing poll leaves nothing more to print; the caller reports its own error.
    while let Ok(true) = line.poll(&mut events) {}
    for ev in events.iter().filter(|e| e.kind == MQL_EVENT_LOG) {
        print_log(ev);
    }
}

fn print_log(ev: &RawEvent) {
    stderr_line(&format!("{} {}", log_level_name(ev.code), ev.text));
}

/// `sim-host check`: configures a line without starting it and prints the plugin's warnings.
pub fn check(plugin: &Plugin, spec: &LineSpec) -> Result<String, AppError> {
    let options = LineOptions {
        log_level: MQL_LOG_WARN,
        ..LineOptions::default()
    };
    let mut line = build_line(plugin, spec, options)?;
    // The plugin's start-time rules, so that every host gets the same warnings.
    let checked = line.check();
    print_waiting_logs(&mut line);
    if !checked.map_err(AppError::from_call)? {
        stderr_line(
            "WARN the plugin predates line_check (ABI 1.1): checks made at start are not run",
        );
    }
    drop(line);
    let stations = spec.stations.len();
    let tags = spec.tag_count();
    Ok(format!(
        "configuration OK: {stations} station{}, {tags} tag{}",
        if stations == 1 { "" } else { "s" },
        if tags == 1 { "" } else { "s" },
    ))
}

/// Why the main loop ended without an error.
#[derive(Debug)]
enum Stop {
    Quit,
    Signal,
    Deadline,
    StdoutClosed,
    /// The observer said the run is complete (`replay`).
    Observed,
}

/// What `replay` watches of a run: every event before it is printed, whether the run is
/// complete, and the line's counters at the end.
pub trait RunObserver {
    fn event(&mut self, ev: &RawEvent);
    /// Asked after every turn of the main loop; true ends the run cleanly.
    fn finished(&mut self, line: &Line<'_>) -> bool;
    /// The line just before it is destroyed.
    fn last_look(&mut self, line: &Line<'_>);
}

/// The running line with what is needed to print its events by name.
struct Session<'a, 'p, W: Write> {
    spec: &'a LineSpec,
    line: Line<'p>,
    printer: Printer<W>,
    next_request: u64,
    /// Writes the plugin accepted, by request id, until their WRITE_DONE arrives.
    pending: HashMap<u64, (String, String)>,
    /// What the events told so far: the `status` and `values` answers, the live page.
    view: LineView,
    trace_routing: bool,
    live: Option<Live>,
    observer: Option<&'a mut dyn RunObserver>,
}

/// The `--http` server's side of the main loop.
struct Live {
    server: http::HttpServer,
    queries: Receiver<Query>,
    pacer: Pacer,
}

/// The name of an `MQL_LOG_*` level in `log` events.
fn log_level_key(level: u32) -> &'static str {
    match level {
        MQL_LOG_ERROR => "error",
        MQL_LOG_WARN => "warn",
        MQL_LOG_INFO => "info",
        MQL_LOG_DEBUG => "debug",
        MQL_LOG_TRACE => "trace",
        _ => "log",
    }
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

impl<W: Write> Session<'_, '_, W> {
    fn station_name(&self, id: u64) -> String {
        self.spec
            .station_by_id(id)
            .map_or_else(|| format!("#{id}"), |s| s.name.clone())
    }

    /// Station and tag names of a tag id, with the tag's type name.
    fn tag_names(&self, station_id: u64, tag_id: u64) -> (String, String, String) {
        match self.spec.tag_by_id(tag_id) {
            Some((s, t)) => (s.name.clone(), t.name.clone(), t.type_name().to_string()),
            None => (
                self.station_name(station_id),
                format!("#{tag_id}"),
                "?".into(),
            ),
        }
    }

    /// Turns a plugin event into a printable one; logs go to stderr at once.
    fn resolve(&mut self, ev: RawEvent) -> Option<Event> {
        // Status events without a time get the time of arrival rather than 1970.
        let status_time = if ev.time_ns == 0 {
            now_ns()
        } else {
            ev.time_ns
        };
        self.view.record(&ev, status_time);
        match ev.kind {
            MQL_EVENT_TAG_VALUE => {
                let (station, tag, type_name) = self.tag_names(ev.station_id, ev.tag_id);
                Some(Event::Value {
                    time_ns: ev.time_ns,
                    station,
                    tag,
                    type_name,
                    valid: ev.flags & MQL_FLAG_VALID != 0,
                    value: ev.value,
                    flags: ev.flags,
                })
            }
            MQL_EVENT_STATION_STATE => Some(Event::Station {
                time_ns: status_time,
                station: self.station_name(ev.station_id),
                state: station_state_name(ev.code),
                reason: ev.text,
            }),
            MQL_EVENT_LINE_STATE => Some(Event::Line {
                time_ns: status_time,
                connected: ev.code == MQL_LINE_CONNECTED,
                text: ev.text,
            }),
            MQL_EVENT_LINK_STATE => {
                let i = crate::view::connection_index(ev.link)?;
                Some(Event::Connection {
                    time_ns: status_time,
                    connection: crate::view::CONNECTION_NAMES[i],
                    connected: ev.code == MQL_LINE_CONNECTED,
                    text: ev.text,
                })
            }
            MQL_EVENT_WRITE_DONE => {
                let (station, tag) = match self.pending.remove(&ev.request_id) {
                    Some(names) => names,
                    None => {
                        let (s, t, _) = self.tag_names(ev.station_id, ev.tag_id);
                        (s, t)
                    }
                };
                let error = (ev.code != MQL_WRITE_OK).then(|| {
                    if ev.text.is_empty() {
                        "write failed".to_string()
                    } else {
                        ev.text
                    }
                });
                Some(Event::Write {
                    time_ns: status_time,
                    station,
                    tag,
                    error,
                })
            }
            MQL_EVENT_LOG => Some(Event::Log {
                time_ns: status_time,
                level: log_level_key(ev.code),
                text: ev.text,
            }),
            MQL_EVENT_ROUTE if self.trace_routing => {
                let route = ev.route()?;
                Some(Event::Route {
                    time_ns: status_time,
                    station: route.station_id.map(|id| self.station_name(id)),
                    outcome: route_outcome_name(route.outcome),
                    topic: route.topic,
                    payload: route.payload,
                })
            }
            // Kinds added by later minor versions are skipped.
            _ => None,
        }
    }

    /// Drains up to a bounded number of batches. Returns whether more may be waiting.
    fn pump(&mut self) -> Result<bool, Failure> {
        let mut raw = Vec::new();
        let mut more = false;
        for _ in 0..MAX_BATCHES_PER_TURN {
            more = self
                .line
                .poll(&mut raw)
                .map_err(|e| Failure::App(AppError::Fatal(e.message)))?;
            for ev in raw.drain(..) {
                if let Some(o) = self.observer.as_mut() {
                    o.event(&ev);
                }
                if let Some(ev) = self.resolve(ev) {
                    self.printer.print(&ev).map_err(Failure::Stdout)?;
                }
            }
            if !more {
                break;
            }
        }
        Ok(more)
    }

    fn write_failed(&mut self, station: &str, tag: &str, error: String) -> Result<(), Failure> {
        let ev = Event::Write {
            time_ns: now_ns(),
            station: station.to_string(),
            tag: tag.to_string(),
            error: Some(error),
        };
        self.printer.print(&ev).map_err(Failure::Stdout)
    }

    /// Prints an answer: the JSON event with `--json`, else the readable text.
    fn answer(
        &mut self,
        json: impl FnOnce(&mut Self) -> String,
        text: impl FnOnce(&mut Self) -> String,
    ) -> Result<(), Failure> {
        let out = if self.printer.is_json() {
            json(self)
        } else {
            text(self)
        };
        self.printer.print_text(&out).map_err(Failure::Stdout)
    }

    fn error(&mut self, text: String) -> Result<(), Failure> {
        self.printer
            .print_error(now_ns(), text)
            .map_err(Failure::Stdout)
    }

    fn counters(&mut self) -> Result<answers::Counters, String> {
        answers::collect_counters(&self.line, self.spec)
    }

    fn status_json(&self) -> String {
        answers::to_json_line(&answers::status_answer(self.spec, &self.view, now_ns()))
    }

    fn values_json(&self) -> String {
        answers::to_json_line(&answers::values_answer(self.spec, &self.view, now_ns()))
    }

    fn stats_json(&mut self) -> Result<String, String> {
        let c = self.counters()?;
        Ok(answers::to_json_line(&answers::stats_answer(
            self.spec,
            &c,
            now_ns(),
        )))
    }

    fn metrics_text(&mut self) -> Result<String, String> {
        let c = self.counters()?;
        let mut text = metrics::render(self.spec, &self.view, &c);
        if let Some(live) = &self.live {
            text.push_str(&live.server.metrics_text());
        }
        Ok(text)
    }

    fn command(&mut self, cmd: Command) -> Result<Option<Stop>, Failure> {
        match cmd {
            Command::Quit => return Ok(Some(Stop::Quit)),
            Command::Invalid(message) => self.error(message)?,
            Command::Help => self.answer(
                |_| answers::help_json(now_ns()),
                |_| answers::help_readable(),
            )?,
            Command::Status => self.answer(
                |s| s.status_json(),
                |s| answers::status_readable(&answers::status_answer(s.spec, &s.view, now_ns())),
            )?,
            Command::Values => self.answer(
                |s| s.values_json(),
                |s| {
                    let a = answers::values_answer(s.spec, &s.view, now_ns());
                    answers::values_readable(&a, |i| answers::readable_tag_value(&s.view, i))
                },
            )?,
            Command::Stats => match self.counters() {
                Ok(c) => {
                    let a = answers::stats_answer(self.spec, &c, now_ns());
                    self.answer(
                        |_| answers::to_json_line(&a),
                        |_| answers::stats_readable(&a),
                    )?
                }
                Err(e) => self.error(format!("stats: {e}"))?,
            },
            Command::Write {
                station,
                tag,
                value,
            } => {
                let Some(st) = self.spec.station_by_name(&station) else {
                    let error = format!("unknown station '{station}'");
                    self.write_failed(&station, &tag, error)?;
                    return Ok(None);
                };
                let Some(t) = st.tag_by_name(&tag) else {
                    let error = format!("station '{station}' has no tag '{tag}'");
                    self.write_failed(&station, &tag, error)?;
                    return Ok(None);
                };
                let request = self.next_request;
                self.next_request += 1;
                match self.line.write(t.id, request, &value) {
                    Ok(()) => {
                        self.pending.insert(request, (station, tag));
                    }
                    Err(e) => self.write_failed(&station, &tag, e.message)?,
                }
            }
            Command::Set { param, value } => {
                // A refused change leaves the line as it was; the run goes on.
                if let Err(e) = self.line.set_parameters(&[(param.clone(), value)]) {
                    self.error(format!("set {param}: {e}"))?;
                }
            }
            Command::Station { station, action } => match self.spec.station_by_name(&station) {
                Some(st) => {
                    if let Err(e) = self.line.station_command(st.id, action) {
                        self.error(format!("station {station}: {e}"))?;
                    }
                }
                None => self.error(format!("unknown station '{station}'"))?,
            },
        }
        Ok(None)
    }

    /// Answers what the HTTP server asked; a reader that went away is not an error.
    fn answer_queries(&mut self) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        let queries: Vec<Query> = live.queries.try_iter().collect();
        for query in queries {
            match query {
                Query::Status(reply) => drop(reply.send(Ok(self.status_json()))),
                Query::Values(reply) => drop(reply.send(Ok(self.values_json()))),
                Query::Stats(reply) => drop(reply.send(self.stats_json())),
                Query::Metrics(reply) => drop(reply.send(self.metrics_text())),
                Query::Subscribe(reply) => {
                    let snapshot = live::snapshot(self.spec, &self.view, &self.line, now_ns());
                    if let Some(live) = self.live.as_ref() {
                        let updates = live.server.updates.subscribe();
                        drop(reply.send((snapshot, updates)));
                    }
                }
            }
        }
    }

    /// Sends the live pages what changed, when a delta is due; with no page connected the
    /// changes are forgotten (a page that connects gets a snapshot).
    fn push_delta(&mut self) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        let now = Instant::now();
        if !live.pacer.is_due(now) {
            return;
        }
        if live.server.updates.receiver_count() == 0 {
            self.view.forget_changes();
            if let Some(live) = self.live.as_mut() {
                live.pacer.sent(now, Duration::ZERO);
            }
            return;
        }
        let delta = live::delta(self.spec, &mut self.view, &self.line, now_ns());
        let cost = now.elapsed();
        if let Some(live) = self.live.as_mut() {
            if let Some(delta) = delta {
                tracing::debug!(
                    "live page: a delta of {} bytes built in {cost:?}",
                    delta.len()
                );
                // No receiver left in between is not an error.
                let _ = live.server.updates.send(delta.into());
            }
            live.pacer.sent(now, cost);
        }
    }

    /// How long the loop may sleep before the next delta is due.
    fn live_wait(&self) -> Option<Duration> {
        self.live.as_ref().map(|l| l.pacer.wait(Instant::now()))
    }
}

/// What ended a turn of the loop abnormally.
enum Failure {
    Stdout(io::Error),
    App(AppError),
}

/// Runs a configured line until `quit`, a signal, the deadline, or a closed stdout.
pub fn run(
    plugin: &Plugin,
    spec: &LineSpec,
    opts: &RunOptions,
    stop_signal: &AtomicBool,
) -> Result<(), AppError> {
    run_observed(plugin, spec, opts, stop_signal, io::stdout(), None)
}

/// [`run`] printing into `out`, with an observer that sees every event and may end the run.
pub fn run_observed<'a, W: Write>(
    plugin: &Plugin,
    spec: &'a LineSpec,
    opts: &RunOptions,
    stop_signal: &AtomicBool,
    out: W,
    observer: Option<&'a mut dyn RunObserver>,
) -> Result<(), AppError> {
    let waker = Arc::new(Waker::default());
    // The page lists unrouted topics, which only route events tell; so does replay's summary.
    let trace_routing = opts.trace_routing || opts.http.is_some() || observer.is_some();
    let options = LineOptions {
        log_level: opts.log_level,
        waker: Some(waker.clone()),
        trace_routing,
    };
    let mut line = build_line(plugin, spec, options)?;
    // Bound before the line starts, so a port in use fails the run before anything connects.
    let live = match opts.http {
        Some(address) => Some(start_http(address, opts.http_public, waker.clone())?),
        None => None,
    };
    if let Err(e) = line.start() {
        print_waiting_logs(&mut line);
        return Err(AppError::from_call(e));
    }
    let started = Instant::now();

    let (tx, commands) = mpsc::channel();
    spawn_stdin_reader(tx, waker.clone())
        .map_err(|e| AppError::Fatal(format!("cannot start the stdin reader: {e}")))?;

    let mut session = Session {
        spec,
        line,
        printer: Printer::new(out, opts.json).with_json_logs(opts.json_logs),
        next_request: 1,
        pending: HashMap::new(),
        view: redundant_view(spec, live.is_some()),
        trace_routing: opts.trace_routing,
        live,
        observer,
    };
    let outcome = main_loop(&mut session, &commands, &waker, opts, started, stop_signal);
    if let Some(o) = session.observer.as_mut() {
        o.last_look(&session.line);
    }
    // Dropping the session destroys the line: a clean MQTT DISCONNECT.
    drop(session);
    let stop = outcome?;
    tracing::debug!("line stopped: {stop:?}");
    Ok(())
}

fn start_http(address: SocketAddr, public: bool, waker: Arc<Waker>) -> Result<Live, AppError> {
    let (tx, queries) = mpsc::channel();
    let server = http::start(address, tx, waker).map_err(|e| AppError::Fatal(e.to_string()))?;
    stderr_line(&format!(
        "INFO http: live page on http://{0}/ (also /metrics, /api/status, /api/values, /api/stats)",
        server.address
    ));
    if public && !server.address.ip().is_loopback() {
        let reach = if server.address.ip().is_unspecified() {
            format!(
                "on every network address of this host, port {}",
                server.address.port()
            )
        } else {
            format!("at http://{}/", server.address)
        };
        stderr_line(&format!(
            "WARN http: --http-public: the live page, /metrics and /api/* are reachable {reach} \
             from other hosts, without authentication: everyone who reaches it sees every value"
        ));
    }
    Ok(Live {
        server,
        queries,
        pacer: Pacer::new(Instant::now()),
    })
}

fn main_loop<W: Write>(
    session: &mut Session<'_, '_, W>,
    commands: &Receiver<Command>,
    waker: &Waker,
    opts: &RunOptions,
    started: Instant,
    stop_signal: &AtomicBool,
) -> Result<Stop, AppError> {
    let mut more = false;
    loop {
        if stop_signal.load(Ordering::Relaxed) {
            return Ok(Stop::Signal);
        }
        let mut timeout = TICK;
        if let Some(limit) = opts.duration {
            let elapsed = started.elapsed();
            if elapsed >= limit {
                return Ok(Stop::Deadline);
            }
            timeout = timeout.min(limit - elapsed);
        }
        if let Some(wait) = session.live_wait() {
            timeout = timeout.min(wait);
        }
        if !more {
            waker.wait(timeout);
        }
        // A closed stdin (a disconnected channel) leaves the line running.
        while let Ok(cmd) = commands.try_recv() {
            match session.command(cmd) {
                Ok(Some(stop)) => return Ok(stop),
                Ok(None) => {}
                Err(f) => return failure(f),
            }
        }
        more = match session.pump() {
            Ok(more) => more,
            Err(f) => return failure(f),
        };
        session.answer_queries();
        session.push_delta();
        if let Some(o) = session.observer.as_mut() {
            if o.finished(&session.line) {
                return Ok(Stop::Observed);
            }
        }
    }
}

/// A broken stdout ends the run cleanly; anything else is fatal.
fn failure(f: Failure) -> Result<Stop, AppError> {
    match f {
        Failure::Stdout(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Stop::StdoutClosed),
        Failure::Stdout(e) => Err(AppError::Fatal(format!("cannot write to stdout: {e}"))),
        Failure::App(e) => Err(e),
    }
}

/// The view of `spec`'s line; a redundant one shows its connections from the start.
fn redundant_view(spec: &LineSpec, track_changes: bool) -> LineView {
    let mut view = LineView::new(spec.stations.len(), spec.tag_count(), track_changes);
    if spec.is_redundant() {
        view.set_redundant();
    }
    view
}
