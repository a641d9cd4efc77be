//! The other MQTT clients of a test: mosquitto_pub and mosquitto_sub.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::process::{collect_opt, kill_and_reap, tail, wait_with_deadline, Collected};
use crate::TIMEOUT;

/// Publishes one message to 127.0.0.1:`port` with `mosquitto_pub` (payload from stdin, so any
/// bytes work) and asserts that it succeeded. For QoS 1 and 2 that means the broker acknowledged
/// it, and messages published at QoS 1 or 2 one after another reach a subscriber in that order:
/// a test can publish a marker after messages it expects to be dropped and wait for the marker.
pub fn publish(port: u16, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    publish_at("127.0.0.1", port, topic, payload, qos, retain)
}

/// [`publish`] to a broker on another loopback address (`127.0.0.2`, say).
pub fn publish_at(host: &str, port: u16, topic: &str, payload: &[u8], qos: u8, retain: bool) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", host, "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-t", topic, "-q", &qos.to_string()]);
    if retain {
        cmd.arg("-r");
    }
    // `-s` reads the whole of stdin as the payload; an empty stdin is better said with `-n`.
    cmd.arg(if payload.is_empty() { "-n" } else { "-s" });
    let what = format!("mosquitto_pub -h {host} -p {port} -t {topic:?} -q {qos} (retain {retain})");
    let mut child = match cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start {what}: {e} (install `mosquitto-clients`; .ci/run does)"),
    };
    let out = collect_opt(child.stdout.take());
    let err = collect_opt(child.stderr.take());
    if let Some(mut stdin) = child.stdin.take() {
        if let Err(e) = stdin.write_all(payload) {
            kill_and_reap(&mut child);
            panic!("{what}: cannot write the payload: {e}\n{}", err.text());
        }
    }
    match wait_with_deadline(&mut child, TIMEOUT) {
        Ok(Some(status)) if status.success() => {}
        Ok(Some(status)) => panic!(
            "{what} failed ({status})\n-- stdout --\n{}\n-- stderr --\n{}",
            out.text(),
            err.text()
        ),
        Ok(None) | Err(_) => {
            kill_and_reap(&mut child);
            panic!(
                "{what} did not finish within {TIMEOUT:?}\n-- stderr --\n{}",
                err.text()
            );
        }
    }
}

/// One message as mosquitto_sub received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub payload: Vec<u8>,
    /// The QoS it was delivered with (at most the subscription's QoS 2).
    pub qos: u8,
    pub retain: bool,
}

/// A `mosquitto_sub -C 1` that is subscribed: started before the action that publishes.
pub struct Subscription {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Collected,
    topic: String,
}

/// Subscribes to `topic` at QoS 2 and returns once the broker acknowledged the subscription, so
/// that whatever is published afterwards reaches it. [`Subscription::wait`] returns the message.
pub fn subscribe_one(port: u16, topic: &str) -> Subscription {
    // -d prints the protocol exchange, which tells when the SUBACK arrived; the message itself is
    // printed on a line of its own starting with a marker, with its payload in hex. mosquitto_sub
    // does not flush its debug lines, so its stdout is made line-buffered with stdbuf.
    let child = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub"])
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-t", topic, "-q", "2", "-C", "1", "-W", "20", "-d"])
        .args(["-F", "MSG= %q %r %x"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!("cannot start mosquitto_sub: {e} (install `mosquitto-clients`)"),
    };
    let (tx, lines) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let stderr = collect_opt(child.stderr.take());
    let mut sub = Subscription {
        child,
        lines,
        seen: Vec::new(),
        stderr,
        topic: topic.to_string(),
    };
    sub.wait_line("the SUBACK", |l| l.starts_with("Subscribed (mid"));
    if let Some(line) = sub.seen.last() {
        if line.trim_end().ends_with("128") {
            let report = sub.report();
            panic!("mosquitto_sub: the broker refused the subscription\n{report}");
        }
    }
    sub
}

impl Subscription {
    fn report(&self) -> String {
        format!(
            "-- mosquitto_sub -t {:?} output --\n{}\n-- stderr --\n{}",
            self.topic,
            tail(&self.seen.join("\n"), 4000),
            self.stderr.text()
        )
    }

    fn wait_line(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    self.seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let report = self.report();
                    panic!("mosquitto_sub: no {what} within {TIMEOUT:?}\n{report}");
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_with_deadline(&mut self.child, Duration::from_secs(2));
                    let report = self.report();
                    panic!("mosquitto_sub ended ({status:?}) before {what}\n{report}");
                }
            }
        }
    }

    /// Waits for the one message (at most [`TIMEOUT`]).
    pub fn wait(mut self) -> Received {
        let line = self.wait_line("message", |l| l.starts_with("MSG= "));
        let fields: Vec<&str> = line.split(' ').collect();
        let parsed = match fields.as_slice() {
            [_, qos, retain, hex] => Some((qos.parse().ok(), *retain == "1", decode_hex(hex))),
            [_, qos, retain] => Some((qos.parse().ok(), *retain == "1", Some(Vec::new()))),
            _ => None,
        };
        match parsed {
            Some((Some(qos), retain, Some(payload))) => {
                let _ = wait_with_deadline(&mut self.child, Duration::from_secs(5));
                Received {
                    payload,
                    qos,
                    retain,
                }
            }
            _ => {
                let report = self.report();
                panic!("mosquitto_sub printed an unexpected line {line:?}\n{report}")
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

/// Publishes one message like [`publish`], but returns an error instead of panicking when
/// mosquitto_pub fails (the broker is down, say) or has not finished within `timeout` (it is then
/// killed). `extra` goes to mosquitto_pub as is (`-u USER -P PASSWORD`, say).
///
/// An error does not prove that the broker did not take the message: it may have been accepted
/// just before the connection broke.
pub fn try_publish(
    port: u16,
    extra: &[&str],
    topic: &str,
    payload: &[u8],
    qos: u8,
    timeout: Duration,
) -> Result<(), String> {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(extra)
        .args(["-t", topic, "-q", &qos.to_string()])
        .arg(if payload.is_empty() { "-n" } else { "-s" });
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start mosquitto_pub: {e}"))?;
    let err = collect_opt(child.stderr.take());
    if let Some(mut stdin) = child.stdin.take() {
        if let Err(e) = stdin.write_all(payload) {
            kill_and_reap(&mut child);
            return Err(format!("cannot write the payload: {e}"));
        }
    }
    match wait_with_deadline(&mut child, timeout) {
        Ok(Some(status)) if status.success() => Ok(()),
        Ok(Some(status)) => Err(format!("mosquitto_pub failed ({status}): {}", err.text())),
        Ok(None) | Err(_) => {
            kill_and_reap(&mut child);
            Err(format!("mosquitto_pub did not finish within {timeout:?}"))
        }
    }
}
