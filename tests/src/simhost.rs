//! sim-host as a child process: its JSON event stream, its commands, its exit.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::broker::Mosquitto;
use crate::paths::{plugin_path, sim_host_path};
use crate::process::{
    collect_opt, kill_and_reap, send_signal, tail, wait_with_deadline, Collected,
};
use crate::TIMEOUT;

/// Predicates and accessors for sim-host's `--json` events.
pub mod ev {
    use serde_json::Value;

    /// A string field, or "" when absent or not a string.
    pub fn field<'a>(e: &'a Value, name: &str) -> &'a str {
        e.get(name).and_then(Value::as_str).unwrap_or("")
    }

    /// `"event"`: line, station, value, write.
    pub fn kind(e: &Value) -> &str {
        field(e, "event")
    }

    pub fn is_line(e: &Value, state: &str) -> bool {
        kind(e) == "line" && field(e, "state") == state
    }

    pub fn is_connected(e: &Value) -> bool {
        is_line(e, "connected")
    }

    pub fn is_disconnected(e: &Value) -> bool {
        is_line(e, "disconnected")
    }

    /// A station event of `station` with `state` (ok, hard_error, comm_error, off, simulation).
    pub fn is_station(e: &Value, station: &str, state: &str) -> bool {
        kind(e) == "station" && field(e, "station") == station && field(e, "state") == state
    }

    /// Any station event of `station`.
    pub fn is_station_event(e: &Value, station: &str) -> bool {
        kind(e) == "station" && field(e, "station") == station
    }

    /// A value event of `station`.`tag`.
    pub fn is_value(e: &Value, station: &str, tag: &str) -> bool {
        kind(e) == "value" && field(e, "station") == station && field(e, "tag") == tag
    }

    /// A valid value event of `station`.`tag` carrying `value`.
    pub fn is_value_of(e: &Value, station: &str, tag: &str, value: &Value) -> bool {
        is_value(e, station, tag)
            && e.get("valid") == Some(&Value::Bool(true))
            && value_eq(e, value)
    }

    /// A value event of any station whose tag is `tag` and whose value is `value`.
    pub fn is_any_value_of(e: &Value, tag: &str, value: &Value) -> bool {
        kind(e) == "value" && field(e, "tag") == tag && value_eq(e, value)
    }

    fn value_eq(e: &Value, value: &Value) -> bool {
        match (e.get("value"), value) {
            // 42 and 42.0 are the same number for Ai/Ao.
            (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Some(a), b) => a == b,
            (None, _) => false,
        }
    }

    /// A write event of `station`.`tag`.
    pub fn is_write(e: &Value, station: &str, tag: &str) -> bool {
        kind(e) == "write" && field(e, "station") == station && field(e, "tag") == tag
    }

    /// `"ok"` of a write event.
    pub fn write_ok(e: &Value) -> Option<bool> {
        e.get("ok").and_then(Value::as_bool)
    }
}

enum Output {
    Event(Value),
    /// A stdout line that is not a JSON object.
    Raw(String),
}

/// A running `sim-host run CONFIG --json`. Killed on drop.
pub struct SimHost {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<Output>,
    stdout_closed: bool,
    /// Events not yet taken by an `expect`.
    pending: VecDeque<Value>,
    /// Every event so far, in order.
    log: Vec<Value>,
    /// Stdout lines that were not JSON objects.
    raw: Vec<String>,
    stderr: Collected,
    commands: Vec<String>,
    attached_logs: Vec<(String, PathBuf)>,
    config_path: PathBuf,
    status: Option<ExitStatus>,
    _dir: tempfile::TempDir,
}

impl SimHost {
    /// Writes `config` (TOML) to a temporary file and starts `sim-host run FILE --plugin PLUGIN
    /// --json`.
    pub fn start(config: &str) -> SimHost {
        SimHost::start_with(config, &[])
    }

    /// [`SimHost::start`] with more command-line arguments.
    pub fn start_with(config: &str, extra_args: &[&str]) -> SimHost {
        SimHost::start_with_env(config, extra_args, &[])
    }

    /// [`SimHost::start_with`] with more environment variables for the sim-host process
    /// (`password_env`, say).
    pub fn start_with_env(config: &str, extra_args: &[&str], env: &[(&str, &str)]) -> SimHost {
        SimHost::spawn(config, true, extra_args, env)
    }

    /// [`SimHost::start_with`] with readable output instead of `--json`: every stdout line is
    /// kept as text ([`SimHost::wait_stdout`]); no events arrive.
    pub fn start_readable(config: &str, extra_args: &[&str]) -> SimHost {
        SimHost::spawn(config, false, extra_args, &[])
    }

    fn spawn(config: &str, json: bool, extra_args: &[&str], env: &[(&str, &str)]) -> SimHost {
        let dir = tempfile::Builder::new()
            .prefix("mqtt-line-simhost-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let config_path = dir.path().join("line.toml");
        std::fs::write(&config_path, config)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
        let mut cmd = Command::new(sim_host_path());
        cmd.arg("run")
            .arg(&config_path)
            .arg("--plugin")
            .arg(plugin_path())
            .args(json.then_some("--json"))
            .args(extra_args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot start {}: {e}", sim_host_path().display()),
        };
        let stdin = child.stdin.take();
        let stderr = collect_opt(child.stderr.take());
        let (tx, rx) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    let out = match serde_json::from_str::<Value>(text) {
                        Ok(v) if v.is_object() => Output::Event(v),
                        _ => Output::Raw(text.to_string()),
                    };
                    if tx.send(out).is_err() {
                        break;
                    }
                }
            });
        }
        SimHost {
            child,
            stdin,
            stdout: rx,
            stdout_closed: false,
            pending: VecDeque::new(),
            log: Vec::new(),
            raw: Vec::new(),
            stderr,
            commands: Vec::new(),
            attached_logs: Vec::new(),
            config_path,
            status: None,
            _dir: dir,
        }
    }

    /// Runs the line of `config` with the broker's log attached to failure reports.
    pub fn start_on(broker: &Mosquitto, config: &crate::LineConfig) -> SimHost {
        let mut host = SimHost::start(&config.to_toml());
        host.attach_broker(broker);
        host
    }

    /// `quit`, and sim-host must end with exit code 0.
    pub fn quit_ok(&mut self) {
        let code = self.quit();
        if code != Some(0) {
            let report = self.report();
            panic!("`quit` ended sim-host with {code:?}, expected 0\n{report}");
        }
    }

    /// Includes the broker's log in failure messages.
    pub fn attach_broker(&mut self, broker: &Mosquitto) {
        self.attach_log(&format!("mosquitto :{}", broker.port()), broker.log_path());
    }

    /// Includes the end of a log file in failure messages.
    pub fn attach_log(&mut self, name: &str, path: &Path) {
        self.attached_logs
            .push((name.to_string(), path.to_path_buf()));
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// What sim-host wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// The `ADDRESS:PORT` of the `--http` server, from sim-host's `INFO http: live page on
    /// http://ADDRESS:PORT/` line (waited for at most [`TIMEOUT`]).
    pub fn http_address(&mut self) -> String {
        const MARK: &str = "live page on http://";
        let text = self.wait_stderr("the live page's address", |t| {
            t.lines().any(|l| l.contains(MARK) && l.contains("/ "))
        });
        text.lines()
            .find_map(|l| l.split_once(MARK))
            .and_then(|(_, rest)| rest.split_once('/'))
            .map(|(address, _)| address.to_string())
            .unwrap_or_default()
    }

    /// Waits (at most [`TIMEOUT`]) until sim-host's stderr satisfies `pred` and returns it.
    pub fn wait_stderr(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = self.stderr.text();
            if pred(&text) {
                return text;
            }
            if Instant::now() >= deadline {
                let report = self.report();
                panic!("timed out after {TIMEOUT:?} waiting for sim-host's stderr to show {what}\n{report}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (at most [`TIMEOUT`]) until the stdout lines that are not JSON objects (all of them
    /// with [`SimHost::start_readable`]) satisfy `pred`, and returns them.
    pub fn wait_stdout(&mut self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.drain();
            if pred(&self.raw) {
                return self.raw.clone();
            }
            if Instant::now() >= deadline {
                let report = self.report();
                panic!("timed out after {TIMEOUT:?} waiting for sim-host's stdout to show {what}\n{report}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All events so far (those already taken by `expect` too), in order.
    pub fn events(&mut self) -> &[Value] {
        self.drain();
        &self.log
    }

    /// Takes every event not yet taken by an `expect` and forgets all events so far (they no
    /// longer appear in [`SimHost::events`] or in failure reports). For long runs (the soak),
    /// where keeping every event would grow the test's own memory without bound.
    pub fn take_events(&mut self) -> Vec<Value> {
        self.drain();
        self.log.clear();
        self.pending.drain(..).collect()
    }

    /// Events so far that satisfy `pred`.
    pub fn events_where(&mut self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.events().iter().filter(|e| pred(e)).cloned().collect()
    }

    /// Index in [`SimHost::events`] of the first event satisfying `pred`.
    pub fn position(&mut self, pred: impl Fn(&Value) -> bool) -> Option<usize> {
        self.events().iter().position(pred)
    }

    /// Everything useful for a failure message: commands, events, stderr, attached logs.
    pub fn report(&mut self) -> String {
        self.drain();
        let events: Vec<String> = self.log.iter().map(Value::to_string).collect();
        let mut out = format!(
            "-- sim-host events ({}) --\n{}\n-- commands sent to sim-host --\n{}\n",
            events.len(),
            tail(&events.join("\n"), 12000),
            self.commands.join("\n"),
        );
        if !self.raw.is_empty() {
            out.push_str(&format!(
                "-- sim-host stdout lines that are not JSON objects --\n{}\n",
                tail(&self.raw.join("\n"), 4000)
            ));
        }
        if let Some(status) = self.status {
            out.push_str(&format!("-- sim-host exited: {status} --\n"));
        }
        out.push_str(&format!(
            "-- sim-host stderr --\n{}\n",
            tail(&self.stderr.text(), 8000)
        ));
        out.push_str(&format!(
            "-- sim-host config {} --\n{}\n",
            self.config_path.display(),
            std::fs::read_to_string(&self.config_path).unwrap_or_default()
        ));
        for (name, path) in &self.attached_logs {
            out.push_str(&format!(
                "-- {name} log --\n{}\n",
                tail(&std::fs::read_to_string(path).unwrap_or_default(), 6000)
            ));
        }
        out
    }

    fn take(&mut self, out: Output) {
        match out {
            Output::Event(v) => {
                self.log.push(v.clone());
                self.pending.push_back(v);
            }
            Output::Raw(line) => self.raw.push(line),
        }
    }

    /// Takes what sim-host printed so far without waiting.
    pub fn drain(&mut self) {
        loop {
            match self.stdout.try_recv() {
                Ok(out) => self.take(out),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.stdout_closed = true;
                    return;
                }
            }
        }
    }

    /// Waits for an event satisfying `pred`, at most [`TIMEOUT`]. Events that arrived earlier and
    /// were not taken yet count; the event returned is taken, others stay for later `expect`s.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.expect_within(what, TIMEOUT, pred)
    }

    /// [`SimHost::expect`] with another time limit.
    pub fn expect_within(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(&pred) {
                if let Some(e) = self.pending.remove(i) {
                    return e;
                }
            }
            if self.stdout_closed {
                if self.status.is_none() {
                    if let Ok(Some(status)) =
                        wait_with_deadline(&mut self.child, Duration::from_secs(2))
                    {
                        self.status = Some(status);
                    }
                }
                let report = self.report();
                panic!("sim-host closed its stdout while the test waited for {what}\n{report}");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(out) => self.take(out),
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
                Err(RecvTimeoutError::Timeout) => {
                    let report = self.report();
                    panic!("timed out after {timeout:?} waiting for {what}\n{report}");
                }
            }
        }
    }

    /// Like [`SimHost::expect_within`], but `None` when no such event came in time: for showing
    /// that something does not happen (keep `timeout` short).
    pub fn try_expect_within(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(&pred) {
                return self.pending.remove(i);
            }
            if self.stdout_closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(out) => self.take(out),
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
                Err(RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    /// Waits for the line's `connected` event (CONNACK and SUBACK done).
    pub fn wait_connected(&mut self) -> Value {
        self.expect("the line's `connected` event", ev::is_connected)
    }

    /// Waits for a `disconnected` event.
    pub fn expect_disconnected(&mut self) -> Value {
        self.expect("a `disconnected` event", ev::is_disconnected)
    }

    /// Waits for the first `disconnected` event, whose reason must pass `pred` (it should name
    /// `what`), and checks that the line never reported `connected`: for a connection the line
    /// must refuse (a certificate, a key, a proxy's answer) or cannot make. Returns the reason.
    pub fn expect_refusal(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let e = self.expect_disconnected();
        let reason = ev::field(&e, "reason").to_string();
        eprintln!("refused ({what}): {reason}");
        let report = self.report();
        assert!(
            pred(&reason),
            "the `disconnected` reason should name {what}: {reason:?}\n{report}"
        );
        assert!(
            !self.events().iter().any(ev::is_connected),
            "the line must not report `connected`\n{report}"
        );
        reason
    }

    /// Waits for a station event with this state.
    pub fn expect_station(&mut self, station: &str, state: &str) -> Value {
        self.expect(&format!("station {station} state {state}"), |e| {
            ev::is_station(e, station, state)
        })
    }

    /// Waits for any value event of `station`.`tag`.
    pub fn expect_value(&mut self, station: &str, tag: &str) -> Value {
        self.expect(&format!("a value of {station}.{tag}"), |e| {
            ev::is_value(e, station, tag)
        })
    }

    /// Waits for a valid value event of `station`.`tag` equal to `value`.
    pub fn expect_value_eq(&mut self, station: &str, tag: &str, value: impl Into<Value>) -> Value {
        let value = value.into();
        self.expect(&format!("{station}.{tag} = {value}"), |e| {
            ev::is_value_of(e, station, tag, &value)
        })
    }

    /// Waits for the write event of `station`.`tag`.
    pub fn expect_write(&mut self, station: &str, tag: &str) -> Value {
        self.expect(&format!("the write event of {station}.{tag}"), |e| {
            ev::is_write(e, station, tag)
        })
    }

    /// Stops `broker` with SIGTERM (mosquitto saves its persistent sessions), waits until the
    /// line noticed, restarts the broker on the same port and waits until the line is connected
    /// again.
    pub fn restart_broker(&mut self, broker: &mut Mosquitto) {
        broker.stop();
        self.expect_disconnected();
        broker.restart();
        self.wait_connected();
    }

    /// Waits for IN_DATA = `data` on `station` (a station with [`StationConfig::inputs`]), then
    /// for the valid IN_ID that follows it (invalidations after a lost connection may still be
    /// pending); returns the id, which ACK_ID confirms.
    ///
    /// [`StationConfig::inputs`]: crate::StationConfig::inputs
    pub fn expect_message(&mut self, station: &str, data: &str) -> i64 {
        self.expect_value_eq(station, "data", data);
        let id = self.expect(&format!("the IN_ID of {station} after {data:?}"), |e| {
            ev::is_value(e, station, "id") && e["valid"] == Value::Bool(true)
        });
        match id["value"].as_i64() {
            Some(id) => id,
            None => {
                let report = self.report();
                panic!("IN_ID of {station} is not an integer: {id}\n{report}")
            }
        }
    }

    /// Confirms IN_ID `id` by writing it to `station`'s ACK_ID tag `ack` (a station with
    /// [`StationConfig::ack_id`]) and asserts that the write event says `ok`.
    ///
    /// [`StationConfig::ack_id`]: crate::StationConfig::ack_id
    pub fn confirm(&mut self, station: &str, id: i64) {
        self.send(&format!("write {station} ack {id}"));
        let w = self.expect_write(station, "ack");
        if ev::write_ok(&w) != Some(true) {
            let report = self.report();
            panic!("confirming IN_ID {id} on {station} through ACK_ID failed: {w}\n{report}");
        }
    }

    /// The valid IN_DATA values of `station` so far, in order.
    pub fn data_values(&mut self, station: &str) -> Vec<String> {
        self.events_where(|e| ev::is_value(e, station, "data") && e["valid"] == Value::Bool(true))
            .iter()
            .map(|e| e["value"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Sends one command line (`write battery cmd 1`, `station battery off`, `quit`).
    pub fn send(&mut self, command: &str) {
        self.commands.push(command.to_string());
        let result = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{command}").and_then(|_| stdin.flush()),
            None => Err(std::io::Error::other("stdin was closed by the test")),
        };
        if let Err(e) = result {
            let report = self.report();
            panic!("cannot send {command:?} to sim-host: {e}\n{report}");
        }
    }

    /// Closes sim-host's stdin (which must not end the run).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends a signal by name (`TERM`, `INT`, ...).
    pub fn signal(&mut self, signal: &str) {
        if let Err(e) = send_signal(self.child.id(), signal) {
            let report = self.report();
            panic!("{e}\n{report}");
        }
    }

    /// Sends `quit` and waits for the exit. Returns the exit code (None when killed by a signal).
    pub fn quit(&mut self) -> Option<i32> {
        self.send("quit");
        self.wait_exit()
    }

    /// Waits (at most [`TIMEOUT`]) until sim-host exited and its output is read to the end.
    pub fn wait_exit(&mut self) -> Option<i32> {
        if self.status.is_none() {
            match wait_with_deadline(&mut self.child, TIMEOUT) {
                Ok(Some(status)) => self.status = Some(status),
                Ok(None) | Err(_) => {
                    let report = self.report();
                    kill_and_reap(&mut self.child);
                    panic!("sim-host did not exit within {TIMEOUT:?}\n{report}");
                }
            }
        }
        let deadline = Instant::now() + TIMEOUT;
        while !self.stdout_closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(out) => self.take(out),
                Err(RecvTimeoutError::Disconnected) => self.stdout_closed = true,
                Err(RecvTimeoutError::Timeout) => {
                    let report = self.report();
                    panic!("sim-host exited but its stdout stayed open\n{report}");
                }
            }
        }
        self.status.and_then(|s| s.code())
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        self.stdin = None;
        kill_and_reap(&mut self.child);
    }
}

/// How a sim-host command that ended by itself ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub command: String,
    /// None when it was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}\n-- stdout --\n{}\n-- stderr --\n{}",
            self.command,
            self.code,
            tail(&self.stdout, 6000),
            tail(&self.stderr, 6000)
        )
    }
}

/// Runs sim-host with `args` where `{config}` stands for a file holding `config`, and waits (at most
/// `timeout`) for it to exit by itself; stdin is empty. Panics when it is still running then.
pub fn run_to_exit(config: &str, args: &[&str], timeout: Duration) -> Finished {
    let dir = tempfile::Builder::new()
        .prefix("mqtt-line-simhost-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let config_path = dir.path().join("line.toml");
    std::fs::write(&config_path, config)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
    let args: Vec<OsString> = args
        .iter()
        .map(|a| {
            if *a == "{config}" {
                config_path.clone().into_os_string()
            } else {
                OsString::from(a)
            }
        })
        .collect();
    let command = format!(
        "sim-host {}",
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = match Command::new(sim_host_path())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start {command}: {e}"),
    };
    let stdout = collect_opt(child.stdout.take());
    let stderr = collect_opt(child.stderr.take());
    let status = match wait_with_deadline(&mut child, timeout) {
        Ok(Some(status)) => status,
        Ok(None) | Err(_) => {
            kill_and_reap(&mut child);
            panic!(
                "`{command}` was still running after {timeout:?}\n-- config --\n{config}\n\
                 -- stdout --\n{}\n-- stderr --\n{}",
                tail(&stdout.text(), 6000),
                tail(&stderr.text(), 6000)
            );
        }
    };
    // The readers end when the pipes close, right after the exit.
    stdout.wait_closed(Duration::from_secs(5));
    stderr.wait_closed(Duration::from_secs(5));
    Finished {
        command,
        code: status.code(),
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// `sim-host check` of `config` with the built plugin, waited for (at most [`crate::TIMEOUT`]).
pub fn check_config(config: &str) -> Finished {
    let plugin = plugin_path();
    let plugin = plugin.to_str().expect("UTF-8 path");
    run_to_exit(
        config,
        &["check", "{config}", "--plugin", plugin],
        crate::TIMEOUT,
    )
}

/// Checks the shipped example `examples/{name}`: it must pass `check` without a warning, and
/// `check` must sum it up as `summary` (`configuration OK: 3 stations, 6 tags`).
pub fn assert_example_checks_clean(name: &str, summary: &str) {
    let path = crate::workspace_dir().join("examples").join(name);
    let config = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let done = check_config(&config);
    assert_eq!(done.code, Some(0), "{done}");
    assert!(done.stdout.contains(summary), "{done}");
    assert!(!done.stderr.contains("WARN"), "{done}");
}

/// Runs `check` and `run` on `config`; both must exit 2 with a message containing each of
/// `needles` on stderr, short (long values are cut), without a NUL or a panic.
pub fn assert_refused(config: &str, needles: &[&str]) {
    let plugin = plugin_path();
    let plugin = plugin.to_str().expect("UTF-8 path");
    for args in [
        vec!["check", "{config}", "--plugin", plugin],
        vec!["run", "{config}", "--plugin", plugin, "--json"],
    ] {
        let done = run_to_exit(config, &args, crate::TIMEOUT);
        assert_eq!(done.code, Some(2), "expected exit code 2\n{done}");
        for needle in needles {
            assert!(
                done.stderr.contains(needle),
                "stderr lacks {needle:?}\n{done}"
            );
        }
        assert!(
            done.stderr.len() < 2000,
            "{} bytes of stderr",
            done.stderr.len()
        );
        assert!(!done.stderr.contains('\0'), "a NUL reached the terminal");
        assert!(!done.stderr.contains("panicked"), "{done}");
    }
}
