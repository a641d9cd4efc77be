//! A helper program of a test that takes JSON commands on stdin and reports JSON events on
//! stdout, one a line: Eclipse Tahu's edge node (`tests/sparkplug/edge.js`) and pysparkplug's
//! host (`tests/sparkplug/host.py`). Its stderr goes to the test's own, so what the program
//! says shows beside a failure; it is killed on drop.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

use serde_json::Value;

use crate::process::kill_and_reap;
use crate::TIMEOUT;

/// A running JSON-lines program and every event it reported so far.
pub struct JsonLinesChild {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Value>,
    seen: Vec<Value>,
}

impl JsonLinesChild {
    /// Starts `cmd` with its stdin and stdout piped; `name` names it in failures ("the edge
    /// node"). A line of stdout that is not JSON is kept as a JSON string.
    pub fn start(name: &str, mut cmd: Command) -> JsonLinesChild {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        JsonLinesChild {
            name: name.to_string(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Writes `command` as one line.
    pub fn send(&mut self, command: Value) {
        let name = &self.name;
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("{name} takes no command {command}: {e}"));
    }

    /// Waits (at most [`TIMEOUT`]) for an event that passes `pred`; earlier ones are passed over.
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "{} did not report {what} within {TIMEOUT:?}; it said: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Every event reported so far, waiting for none.
    pub fn seen(&mut self) -> &[Value] {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
        &self.seen
    }
}

impl Drop for JsonLinesChild {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}
