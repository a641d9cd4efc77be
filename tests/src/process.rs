//! Child processes: signals, bounded waits, pipe readers.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`, `INT`) to a process id with `kill`.
pub fn send_signal(pid: u32, signal: &str) -> Result<(), String> {
    let out = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `kill -{signal} {pid}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`kill -{signal} {pid}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Waits for a child to exit, at most `timeout`. `Ok(None)` when it is still running.
pub fn wait_with_deadline(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills a child started in its own process group (`process_group(0)`) and everything in that
/// group with SIGKILL, by the child's process id, and reaps the child.
pub(crate) fn kill_group(child: &mut Child) {
    let _ = send_signal(child.id(), "KILL");
    // The group: the negative process id.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}

/// Kills a child (SIGKILL) unless it already ended, and reaps it.
pub(crate) fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Text collected from a pipe by a background thread.
#[derive(Clone, Default)]
pub(crate) struct Collected(Arc<Mutex<Vec<u8>>>, Arc<AtomicBool>);

impl Collected {
    /// Waits until the pipe reached its end; false after `timeout`.
    pub(crate) fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.1.load(Ordering::Acquire) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    pub(crate) fn text(&self) -> String {
        match self.0.lock() {
            Ok(buf) => String::from_utf8_lossy(&buf).into_owned(),
            Err(poisoned) => String::from_utf8_lossy(&poisoned.into_inner()).into_owned(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        match self.0.lock() {
            Ok(mut buf) => buf.extend_from_slice(bytes),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(bytes),
        }
    }
}

/// Reads a pipe to its end in a thread, keeping everything.
pub(crate) fn collect(pipe: impl Read + Send + 'static) -> (Collected, JoinHandle<()>) {
    let collected = Collected::default();
    let sink = collected.clone();
    let handle = std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut chunk = Vec::new();
        loop {
            chunk.clear();
            match reader.read_until(b'\n', &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => sink.push(&chunk),
            }
        }
        sink.1.store(true, Ordering::Release);
    });
    (collected, handle)
}

/// [`collect`] for a pipe that may not be there.
pub(crate) fn collect_opt(pipe: Option<impl Read + Send + 'static>) -> Collected {
    match pipe {
        Some(p) => collect(p).0,
        None => {
            let c = Collected::default();
            c.1.store(true, Ordering::Release);
            c
        }
    }
}

/// The last `max` characters of a text, for failure messages.
pub(crate) fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        text.to_string()
    } else {
        let skip = count - max;
        format!(
            "[... {skip} characters before]\n{}",
            text.chars().skip(skip).collect::<String>()
        )
    }
}

/// Any child process whose stdout is read line by line and whose stderr is kept; killed on drop.
pub struct Spawned {
    name: String,
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout_closed: bool,
    stderr: Collected,
}

impl Spawned {
    /// Starts `cmd` with piped stdout and stderr (stdin is inherited unless `cmd` says otherwise).
    pub fn start(name: &str, mut cmd: Command) -> Spawned {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot start {name}: {e}"),
        };
        let (tx, lines) = std::sync::mpsc::channel();
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
                    let text = String::from_utf8_lossy(&line)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    if tx.send(text).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = collect_opt(child.stderr.take());
        Spawned {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
            stdout_closed: false,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Stdout lines read so far, stderr so far.
    pub fn report(&self) -> String {
        format!(
            "-- {} stdout --\n{}\n-- {} stderr --\n{}",
            self.name,
            tail(&self.seen.join("\n"), 6000),
            self.name,
            tail(&self.stderr.text(), 6000)
        )
    }

    /// Waits (at most `timeout`) for a stdout line satisfying `pred` and returns it.
    pub fn expect_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout_closed {
                let status = wait_with_deadline(&mut self.child, Duration::from_secs(2));
                panic!(
                    "{} closed its stdout ({status:?}) while waiting for {what}\n{}",
                    self.name,
                    self.report()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => self.stdout_closed = true,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!(
                    "{}: timed out after {timeout:?} waiting for {what}\n{}",
                    self.name,
                    self.report()
                ),
            }
        }
    }

    /// Whether the child still runs (an exited child is reaped here). Never panics, so a
    /// `Drop` can poll it.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most `timeout`) for the exit; panics with the output when it still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match wait_with_deadline(&mut self.child, timeout) {
            Ok(Some(status)) => {
                self.stderr.wait_closed(Duration::from_secs(5));
                status
            }
            Ok(None) | Err(_) => {
                let report = self.report();
                kill_and_reap(&mut self.child);
                panic!("{} did not exit within {timeout:?}\n{report}", self.name);
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}
