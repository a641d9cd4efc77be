//! Faults end to end: the broker killed or stopped while QoS 1 and QoS 2 messages flow in and
//! writes go out, sim-host killed while ACK_ID confirmations are pending, a frozen broker, and a
//! soak (`#[ignore]`d; run by `tests/soak.sh`).
//!
//! # What the broker restarts can and cannot prove
//!
//! mosquitto acknowledges a publication (PUBACK/PUBCOMP to the publisher) before it writes its
//! persistence file: it saves at `autosave_interval`, on SIGUSR1 and when it is terminated
//! (SIGTERM). A broker killed with SIGKILL therefore loses, by itself, messages it accepted after
//! its last save, and it forgets acknowledgements it received after that save, so it may send a
//! QoS 2 message again that the line had already completed. Neither is something a client can
//! prevent, so the two restart tests assert different things:
//!
//! * [`broker_killed_three_times_while_messages_flow_both_ways`] (SIGKILL, the connection-loss
//!   part): every message the broker's log shows the line acknowledged (PUBACK for QoS 1, PUBREC
//!   for QoS 2) reached the host, so the line never acknowledges what it did not hand over;
//!   every message the last broker run accepted once the line was connected to it reached the
//!   host; a QoS 2 message reaches the host more than once only if the broker sent it in more
//!   than one run; every write gets exactly one write event (ok, or failed with a reason). It
//!   prints how many accepted messages the broker itself lost.
//! * [`broker_stopped_three_times_keeps_every_message_and_write`] (SIGTERM, the persistence
//!   part): every message the broker accepted, while the line was connected or not, reached the
//!   host; QoS 2 ones exactly once; every write gets one write event, and every write reported
//!   ok reached a subscriber.
//!
//! Publishers are mosquitto_pub runs in a loop. Each attempt publishes a topic of its own
//! (`faults/qN/MESSAGE/ATTEMPT`): an attempt that fails (broker down) is retried as the next
//! attempt of the same message until one is accepted; only accepted attempts count. An attempt
//! that failed may still have reached the broker (the connection broke after the broker took it),
//! so the host may see more than was counted, never less.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mqtt_line_e2e::{
    ev, publish, try_publish, LineConfig, Mosquitto, SimHost, StationConfig, TIMEOUT,
};
use serde_json::{json, Value};

/// The line's client id (the broker log is read by it).
const CLIENT: &str = "faults-line";

// ---------------------------------------------------------------------------------------------
// Traffic: publishers, writes, counting
// ---------------------------------------------------------------------------------------------

/// The line of the restart tests: persistent session, QoS 2 subscription, QoS 1 writes.
fn traffic_line(port: u16) -> LineConfig {
    LineConfig::new(port)
        .param("client_id", CLIENT)
        .param("clean_session", "NO")
        .param("subscribe_qos", "QoS_2")
        .param("publish_qos", "QoS_1")
        .param("topic_filter", "faults/#")
        .station(StationConfig::new("q1", "faults/q1/.*").tag("topic", "IN_TOPIC", "TxtI"))
        .station(StationConfig::new("q2", "faults/q2/.*").tag("topic", "IN_TOPIC", "TxtI"))
        .station(
            StationConfig::new("cmd", "faults-cmd")
                .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "faults-out/w")
                .tag("out_value", "OUT_VALUE", "TxtO"),
        )
}

/// A broker with persistence, keeping every message queued for the line while it is away
/// (mosquitto drops QoS 1 and 2 messages beyond `max_queued_messages`, 1000 by default).
fn persistent_broker() -> Mosquitto {
    Mosquitto::builder()
        .persistence()
        .config_line("max_queued_messages 0")
        .start()
}

/// A message the broker accepted.
#[derive(Debug, Clone)]
struct Accepted {
    topic: String,
    /// The broker run that took it, when the attempt began and ended in the same run. A run
    /// counts from the moment the line is connected (and so subscribed) to it.
    run: Option<u32>,
}

/// A thread publishing numbered messages at one QoS until stopped.
struct Publisher {
    qos: u8,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(Vec<Accepted>, u64)>>,
}

impl Publisher {
    /// `run` is the number of the broker run, bumped by the test once the line is connected
    /// after a restart.
    fn start(port: u16, qos: u8, run: Arc<AtomicU32>) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut accepted = Vec::new();
            let mut failed = 0u64;
            let mut message = 0u64;
            let mut attempt = 0u32;
            while !flag.load(Ordering::Acquire) {
                let topic = format!("faults/q{qos}/{message}/{attempt}");
                let before = run.load(Ordering::Acquire);
                let result = try_publish(
                    port,
                    &[],
                    &topic,
                    topic.as_bytes(),
                    qos,
                    Duration::from_secs(3),
                );
                let after = run.load(Ordering::Acquire);
                match result {
                    Ok(()) => {
                        accepted.push(Accepted {
                            topic,
                            run: (before == after).then_some(after),
                        });
                        message += 1;
                        attempt = 0;
                        std::thread::sleep(Duration::from_millis(15));
                    }
                    Err(_) => {
                        failed += 1;
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(30));
                    }
                }
            }
            (accepted, failed)
        });
        Publisher {
            qos,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops after the attempt under way; returns the accepted messages and the failed attempts.
    fn finish(mut self) -> (Vec<Accepted>, u64) {
        self.stop.store(true, Ordering::Release);
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => panic!("the QoS {} publisher thread panicked", self.qos),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Writes sent to the line and their events.
#[derive(Default)]
struct Writes {
    sent: u64,
}

impl Writes {
    fn send(&mut self, host: &mut SimHost) {
        self.sent += 1;
        host.send(&format!("write cmd out_value w{}", self.sent));
    }

    /// Waits until every write has its event; returns (ok, failed). Panics on a write event
    /// without a result, on a failure without a reason, and on more events than writes.
    fn settle(&self, host: &mut SimHost) -> (u64, u64) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let events = host.events_where(|e| ev::is_write(e, "cmd", "out_value"));
            let count = events.len() as u64;
            if count > self.sent {
                let report = host.report();
                panic!(
                    "{count} write events for {} write commands\n{report}",
                    self.sent
                );
            }
            if count == self.sent {
                let mut ok = 0;
                for e in &events {
                    match ev::write_ok(e) {
                        Some(true) => ok += 1,
                        Some(false) if !ev::field(e, "error").is_empty() => {}
                        _ => {
                            let report = host.report();
                            panic!("a write event without a result or reason: {e}\n{report}")
                        }
                    }
                }
                return (ok, count - ok);
            }
            if Instant::now() >= deadline {
                let report = host.report();
                panic!(
                    "only {count} write events for {} write commands after {TIMEOUT:?}: a write \
                     went silent\n{report}",
                    self.sent
                );
            }
            // Whatever comes next: the count is taken again.
            host.expect("the next write event", |e| {
                ev::is_write(e, "cmd", "out_value")
            });
        }
    }
}

/// How many times the host got each topic as IN_TOPIC of station `station`.
fn received(host: &mut SimHost, station: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for e in host.events() {
        if ev::is_value(e, station, "topic") && e["valid"] == json!(true) {
            if let Some(t) = e["value"].as_str() {
                *counts.entry(t.to_string()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Waits until the host got every topic of `topics` on `station`.
fn wait_all(host: &mut SimHost, station: &str, topics: &[String]) {
    let got = received(host, station);
    for t in topics.iter().filter(|t| !got.contains_key(*t)) {
        let value = json!(t);
        host.expect(&format!("{station}.topic = {t}"), |e| {
            ev::is_value_of(e, station, "topic", &value)
        });
    }
}

/// Sends writes every 50 ms for `how_long` while draining events.
fn write_for(host: &mut SimHost, writes: &mut Writes, how_long: Duration) {
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        writes.send(host);
        host.drain();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the broker log says about the line's subscription deliveries.
#[derive(Default, Debug)]
struct Deliveries {
    /// Topics the line acknowledged (PUBACK for QoS 1, PUBREC for QoS 2).
    acknowledged: BTreeSet<String>,
    /// For each topic, the broker runs in which it was sent to the line.
    sent_in_runs: HashMap<String, BTreeSet<u32>>,
}

/// Reads mosquitto's `log_type all` lines for [`CLIENT`]: `Sending PUBLISH to CLIENT (d0, q1, r0,
/// m3, 'topic', ...`, `Received PUBACK from CLIENT (Mid: 3, RC:0)`, `Received PUBREC from CLIENT
/// (Mid: 3)`. Runs start at `mosquitto version ... starting`.
fn deliveries(log: &str) -> Deliveries {
    let mut d = Deliveries::default();
    let mut run = 0u32;
    let mut by_mid: HashMap<u32, String> = HashMap::new();
    let sending = format!("Sending PUBLISH to {CLIENT} (");
    let puback = format!("Received PUBACK from {CLIENT} (Mid: ");
    let pubrec = format!("Received PUBREC from {CLIENT} (Mid: ");
    for line in log.lines() {
        if line.contains("mosquitto version") && line.contains("starting") {
            run += 1;
            by_mid.clear();
        } else if let Some(at) = line.find(&sending) {
            let rest = &line[at + sending.len()..];
            let mid = rest
                .split(", ")
                .find_map(|f| f.strip_prefix('m'))
                .and_then(|m| m.parse::<u32>().ok());
            let topic = rest.split('\'').nth(1);
            if let (Some(mid), Some(topic)) = (mid, topic) {
                by_mid.insert(mid, topic.to_string());
                d.sent_in_runs
                    .entry(topic.to_string())
                    .or_default()
                    .insert(run);
            }
        } else if let Some(at) = line
            .find(&puback)
            .map(|a| a + puback.len())
            .or_else(|| line.find(&pubrec).map(|a| a + pubrec.len()))
        {
            let mid: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Some(topic) = mid.parse::<u32>().ok().and_then(|m| by_mid.get(&m)) {
                d.acknowledged.insert(topic.clone());
            }
        }
    }
    d
}

#[derive(Clone, Copy, PartialEq)]
enum Restart {
    /// SIGKILL: nothing saved, connections dropped.
    Kill,
    /// SIGTERM: mosquitto saves its state first.
    Stop,
}

/// Runs `cycles` broker restarts under traffic; returns the accepted messages per QoS, the
/// failed attempts and the write results.
struct Outcome {
    q1: Vec<Accepted>,
    q2: Vec<Accepted>,
    failed_attempts: u64,
    writes_ok: u64,
    writes_failed: u64,
    last_run: u32,
}

fn restarts_under_traffic(
    broker: &mut Mosquitto,
    host: &mut SimHost,
    how: Restart,
    cycles: u32,
    phase: Duration,
) -> Outcome {
    let run = Arc::new(AtomicU32::new(1));
    let p1 = Publisher::start(broker.port(), 1, run.clone());
    let p2 = Publisher::start(broker.port(), 2, run.clone());
    let mut writes = Writes::default();
    for _ in 0..cycles {
        write_for(host, &mut writes, phase);
        match how {
            Restart::Kill => broker.kill(),
            Restart::Stop => broker.stop(),
        }
        host.expect_disconnected();
        // Down for a while: publishers fail and retry, writes fail at once.
        write_for(host, &mut writes, Duration::from_millis(300));
        broker.restart();
        host.expect("the line connected again", ev::is_connected);
        // From here on the line's subscription is in place on the new broker run.
        run.fetch_add(1, Ordering::AcqRel);
    }
    write_for(host, &mut writes, phase);
    let (q1, f1) = p1.finish();
    let (q2, f2) = p2.finish();
    // A last write on the settled connection must succeed.
    writes.send(host);
    let (writes_ok, writes_failed) = writes.settle(host);
    let last = host
        .events_where(|e| ev::is_write(e, "cmd", "out_value"))
        .last()
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(ev::write_ok(&last), Some(true), "the last write: {last}");
    Outcome {
        q1,
        q2,
        failed_attempts: f1 + f2,
        writes_ok,
        writes_failed,
        last_run: run.load(Ordering::Acquire),
    }
}

fn topics(accepted: &[Accepted], pred: impl Fn(&Accepted) -> bool) -> Vec<String> {
    accepted
        .iter()
        .filter(|a| pred(a))
        .map(|a| a.topic.clone())
        .collect()
}

fn missing(expected: &[String], got: &BTreeMap<String, u32>) -> Vec<String> {
    expected
        .iter()
        .filter(|t| !got.contains_key(*t))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Broker restarts
// ---------------------------------------------------------------------------------------------

#[test]
fn broker_killed_three_times_while_messages_flow_both_ways() {
    let mut broker = Mosquitto::builder()
        .persistence()
        .config_line("max_queued_messages 0")
        // Saves every second; what was accepted after the last save dies with the broker.
        .config_line("autosave_interval 1")
        .start();
    let mut host = SimHost::start(&traffic_line(broker.port()).to_toml());
    host.attach_broker(&broker);
    host.wait_connected();
    let out = restarts_under_traffic(
        &mut broker,
        &mut host,
        Restart::Kill,
        3,
        Duration::from_millis(700),
    );
    // Everything the last broker run accepted once the line was subscribed arrives.
    let last_q1 = topics(&out.q1, |a| a.run == Some(out.last_run));
    let last_q2 = topics(&out.q2, |a| a.run == Some(out.last_run));
    wait_all(&mut host, "q1", &last_q1);
    wait_all(&mut host, "q2", &last_q2);
    host.quit_ok();

    let got1 = received(&mut host, "q1");
    let got2 = received(&mut host, "q2");
    let log = deliveries(&broker.log());
    let report = host.report();
    // The line acknowledged only what the host got.
    let acked_not_received: Vec<&String> = log
        .acknowledged
        .iter()
        .filter(|t| !got1.contains_key(*t) && !got2.contains_key(*t))
        .collect();
    assert!(
        acked_not_received.is_empty(),
        "the broker got acknowledgements for messages the host never saw: {acked_not_received:?}\n{report}"
    );
    // QoS 2 twice only when the broker sent it in two runs (a regressed state after SIGKILL).
    for (topic, count) in &got2 {
        let runs = log.sent_in_runs.get(topic).map_or(0, BTreeSet::len);
        assert!(
            *count as usize <= runs.max(1),
            "QoS 2 message {topic} reached the host {count} times, sent in {runs} broker runs\n{report}"
        );
    }
    let lost1 = missing(&topics(&out.q1, |_| true), &got1);
    let lost2 = missing(&topics(&out.q2, |_| true), &got2);
    let dup1 = got1.values().filter(|c| **c > 1).count();
    let dup2 = got2.values().filter(|c| **c > 1).count();
    eprintln!(
        "SIGKILL x3: accepted q1 {} q2 {} (failed attempts {}); host got q1 {} (dup {dup1}) \
         q2 {} (dup {dup2}); lost by the broker (accepted, not saved before SIGKILL): q1 {} q2 {}; \
         acknowledged by the line {}; writes ok {} failed {}",
        out.q1.len(),
        out.q2.len(),
        out.failed_attempts,
        got1.len(),
        got2.len(),
        lost1.len(),
        lost2.len(),
        log.acknowledged.len(),
        out.writes_ok,
        out.writes_failed
    );
    assert!(!out.q1.is_empty() && !out.q2.is_empty(), "{report}");
}

/// A `mosquitto_sub` with a persistent session that collects every payload of `topic`,
/// reconnecting by itself across broker restarts.
struct Collector {
    child: Child,
    payloads: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    fn start(port: u16, topic: &str) -> Collector {
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub"])
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
            .args(["-i", "faults-collector", "-c", "-q", "1", "-t", topic])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto_sub: {e}"));
        let payloads = Arc::new(Mutex::new(Vec::new()));
        let sink = payloads.clone();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut p) = sink.lock() {
                        p.push(line);
                    }
                }
            });
        }
        Collector { child, payloads }
    }

    fn distinct(&self) -> BTreeSet<String> {
        self.payloads
            .lock()
            .map(|p| p.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits until at least `n` distinct payloads arrived; false after [`TIMEOUT`].
    fn wait_distinct(&self, n: usize) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        while self.distinct().len() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn broker_stopped_three_times_keeps_every_message_and_write() {
    let mut broker = persistent_broker();
    // The collector's persistent session exists before any write.
    let collector = Collector::start(broker.port(), "faults-out/w");
    broker.wait_log("the collector's subscription", |log| {
        log.contains("faults-collector 1 faults-out/w")
    });
    let mut host = SimHost::start(&traffic_line(broker.port()).to_toml());
    host.attach_broker(&broker);
    host.wait_connected();
    let out = restarts_under_traffic(
        &mut broker,
        &mut host,
        Restart::Stop,
        3,
        Duration::from_millis(700),
    );
    let all_q1 = topics(&out.q1, |_| true);
    let all_q2 = topics(&out.q2, |_| true);
    wait_all(&mut host, "q1", &all_q1);
    wait_all(&mut host, "q2", &all_q2);
    let writes_arrived = collector.wait_distinct(out.writes_ok as usize);
    host.quit_ok();

    let got1 = received(&mut host, "q1");
    let got2 = received(&mut host, "q2");
    let report = host.report();
    let lost: Vec<String> = missing(&all_q1, &got1)
        .into_iter()
        .chain(missing(&all_q2, &got2))
        .collect();
    assert!(
        lost.is_empty(),
        "accepted but never received: {lost:?}\n{report}"
    );
    let twice: Vec<(&String, &u32)> = got2.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        twice.is_empty(),
        "QoS 2 messages received more than once: {twice:?}\n{report}"
    );
    let distinct_writes = collector.distinct().len();
    assert!(
        writes_arrived,
        "{} writes reported ok but only {distinct_writes} distinct payloads reached the \
         subscriber\n{report}",
        out.writes_ok
    );
    eprintln!(
        "SIGTERM x3: accepted q1 {} q2 {} (failed attempts {}); host got q1 {} (dup {}) q2 {} \
         (dup 0); writes ok {} failed {}; the subscriber got {distinct_writes} distinct writes",
        out.q1.len(),
        out.q2.len(),
        out.failed_attempts,
        got1.len(),
        got1.values().filter(|c| **c > 1).count(),
        got2.len(),
        out.writes_ok,
        out.writes_failed
    );
    assert!(!all_q1.is_empty() && !all_q2.is_empty(), "{report}");
}

// ---------------------------------------------------------------------------------------------
// sim-host killed with ACK_ID confirmations pending
// ---------------------------------------------------------------------------------------------

fn ack_line(port: u16) -> LineConfig {
    let station = |name: &str| {
        StationConfig::new(name, &format!("ack/{name}"))
            .inputs()
            .ack_id()
    };
    LineConfig::new(port)
        .param("client_id", "faults-ack")
        .param("clean_session", "NO")
        .param("subscribe_qos", "QoS_2")
        .param("topic_filter", "ack/#")
        .station(station("a"))
        .station(station("b"))
        .station(station("c"))
}

/// Waits for `station` to show `payload`; returns its IN_ID.
fn shown(host: &mut SimHost, station: &str, payload: &str) -> i64 {
    host.expect_value_eq(station, "data", payload);
    let id = host.expect_value(station, "id");
    match id["value"].as_i64() {
        Some(id) => id,
        None => {
            let report = host.report();
            panic!("IN_ID of {payload} is not an integer: {id}\n{report}")
        }
    }
}

#[test]
fn sim_host_killed_with_confirmations_pending_gets_exactly_the_unconfirmed_again() {
    let broker = Mosquitto::start();
    let config = ack_line(broker.port()).to_toml();
    let mut first = SimHost::start(&config);
    first.attach_broker(&broker);
    first.wait_connected();
    // Arrival order a1 b1 c1 a2 b2 c2 a3 b3 c3, QoS 1 and 2 mixed.
    let messages = [
        ("a", "a1", 1),
        ("b", "b1", 2),
        ("c", "c1", 1),
        ("a", "a2", 2),
        ("b", "b2", 1),
        ("c", "c2", 2),
        ("a", "a3", 1),
        ("b", "b3", 2),
        ("c", "c3", 1),
    ];
    for (station, payload, qos) in messages {
        publish(
            broker.port(),
            &format!("ack/{station}"),
            payload.as_bytes(),
            qos,
            false,
        );
    }
    // Each station shows its first message; the host confirms a1, b1, c1, a2 (a prefix of the
    // arrival order, so their acknowledgements leave) and c2, and leaves b2 and a3 unconfirmed.
    let a1 = shown(&mut first, "a", "a1");
    let b1 = shown(&mut first, "b", "b1");
    let c1 = shown(&mut first, "c", "c1");
    first.confirm("a", a1);
    let a2 = shown(&mut first, "a", "a2");
    first.confirm("b", b1);
    shown(&mut first, "b", "b2");
    first.confirm("c", c1);
    let c2 = shown(&mut first, "c", "c2");
    first.confirm("a", a2);
    shown(&mut first, "a", "a3");
    first.confirm("c", c2);
    // The broker got the acknowledgements of the confirmed prefix (PUBACK for QoS 1, PUBREC for
    // QoS 2) before sim-host dies.
    for (id, packet) in [
        (a1, "PUBACK"),
        (b1, "PUBREC"),
        (c1, "PUBACK"),
        (a2, "PUBREC"),
    ] {
        // "(Mid: 3, RC:0)" for PUBACK, "(Mid: 3)" for PUBREC.
        let needle = format!("Received {packet} from faults-ack (Mid: {id}");
        broker.wait_log(&needle, |log| {
            log.contains(&format!("{needle},")) || log.contains(&format!("{needle})"))
        });
    }
    first.signal("KILL");
    first.wait_exit();

    let mut second = SimHost::start(&config);
    second.attach_broker(&broker);
    second.wait_connected();
    // Confirm whatever shows, until the last message of each station and a marker after it.
    for station in ["a", "b", "c"] {
        publish(
            broker.port(),
            &format!("ack/{station}"),
            format!("{station}-end").as_bytes(),
            1,
            false,
        );
    }
    let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for station in ["a", "b", "c"] {
        let end = format!("{station}-end");
        loop {
            let e = second.expect(&format!("the next message on {station}"), |e| {
                ev::is_value(e, station, "data")
            });
            let payload = e["value"].as_str().unwrap_or_default().to_string();
            let id = second.expect_value(station, "id");
            let id = id["value"].as_i64().unwrap_or(-1);
            second.confirm(station, id);
            let done = payload == end;
            seen.entry(station).or_default().push(payload);
            if done {
                break;
            }
        }
    }
    second.quit_ok();
    let report = second.report();
    // Confirmed and acknowledged: never again. Unconfirmed (shown or only held): again, in order.
    assert_eq!(seen["a"], ["a3", "a-end"], "{report}");
    assert_eq!(seen["b"], ["b2", "b3", "b-end"], "{report}");
    // c2 was confirmed, but its acknowledgement waited behind the unconfirmed b2 (MQTT 3.1.1
    // sends acknowledgements in arrival order), so the broker delivers it again.
    assert_eq!(seen["c"], ["c2", "c3", "c-end"], "{report}");
}

// ---------------------------------------------------------------------------------------------
// A frozen broker
// ---------------------------------------------------------------------------------------------

#[test]
fn frozen_broker_is_detected_and_the_line_fails_over_to_the_next_host() {
    let first = Mosquitto::start();
    let second = Mosquitto::builder()
        .bind_address(Ipv4Addr::new(127, 0, 0, 2))
        .port(first.port())
        .start();
    let port = first.port();
    let config = LineConfig::new(port)
        .host("127.0.0.1,127.0.0.2")
        .param("ping_interval", "1")
        .param("reply_timeout", "1")
        .station(StationConfig::new("s", "frozen/s").inputs());
    let mut host = SimHost::start(&config.to_toml());
    host.attach_broker(&first);
    host.attach_log("mosquitto 127.0.0.2", second.log_path());
    let connected = host.wait_connected();
    assert_eq!(ev::field(&connected, "host"), format!("127.0.0.1:{port}"));
    publish(port, "frozen/s", b"from the first", 1, false);
    host.expect_value_eq("s", "data", "from the first");

    first.freeze();
    let lost = host.expect_disconnected();
    let reason = ev::field(&lost, "reason");
    assert!(
        reason.contains("PINGRESP") || reason.contains("reply timeout"),
        "the reason should name the missing ping answer: {lost}"
    );
    let again = host.expect("connected to the second host", ev::is_connected);
    let report = host.report();
    assert_eq!(
        ev::field(&again, "host"),
        format!("127.0.0.2:{port}"),
        "{report}"
    );
    second.wait_log("the line's CONNECT on 127.0.0.2", |log| {
        log.contains(" as D2000kom (")
    });
    // The second broker's messages arrive.
    let out = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.2", "-p", &port.to_string(), "-V", "mqttv311"])
        .args(["-t", "frozen/s", "-q", "1", "-m", "from the second"])
        .output()
        .expect("mosquitto_pub");
    assert!(out.status.success(), "{out:?}");
    host.expect_value_eq("s", "data", "from the second");
    first.thaw();
    host.quit_ok();
}

// ---------------------------------------------------------------------------------------------
// Soak
// ---------------------------------------------------------------------------------------------

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// Mixed traffic for `SOAK_SECONDS` (default 1800) with the broker stopped and restarted every
/// `SOAK_RESTART_SECONDS` (default 180): QoS 1 and QoS 2 in, QoS 1 writes out. Prints counts and
/// sim-host's resident memory every `SOAK_REPORT_SECONDS` (default 30); at the end asserts that
/// every accepted message arrived (QoS 2 once) and that memory stayed flat. Run by
/// `tests/soak.sh`.
#[test]
#[ignore = "long: run by tests/soak.sh"]
fn soak() {
    let total = env_secs("SOAK_SECONDS", 1800);
    let every = env_secs("SOAK_RESTART_SECONDS", 180);
    let report_every = env_secs("SOAK_REPORT_SECONDS", 30);
    let mut broker = persistent_broker();
    let mut host = SimHost::start(&traffic_line(broker.port()).to_toml());
    host.attach_broker(&broker);
    host.wait_connected();
    let pid = host.pid();
    let run = Arc::new(AtomicU32::new(1));
    let p1 = Publisher::start(broker.port(), 1, run.clone());
    let p2 = Publisher::start(broker.port(), 2, run.clone());
    let start = Instant::now();
    let mut next_restart = start + every;
    let mut next_report = start;
    let mut restarts = 0u32;
    let mut writes = 0u64;
    let (mut writes_ok, mut writes_failed) = (0u64, 0u64);
    let mut counts: [HashMap<String, u32>; 2] = [HashMap::new(), HashMap::new()];
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let tally = |events: Vec<Value>,
                 counts: &mut [HashMap<String, u32>; 2],
                 ok: &mut u64,
                 failed: &mut u64| {
        for e in events {
            if ev::kind(&e) == "write" {
                match ev::write_ok(&e) {
                    Some(true) => *ok += 1,
                    _ => *failed += 1,
                }
            } else if e["valid"] == json!(true) {
                let i = match ev::field(&e, "station") {
                    "q1" => 0,
                    "q2" => 1,
                    _ => continue,
                };
                if let Some(t) = e["value"].as_str() {
                    *counts[i].entry(t.to_string()).or_insert(0) += 1;
                }
            }
        }
    };
    println!("soak: {total:?}, broker restart (SIGTERM) every {every:?}");
    println!("  elapsed  restarts  q1-recv  q2-recv  writes-ok  writes-failed  sim-host-RSS-KiB");
    while start.elapsed() < total {
        writes += 1;
        host.send(&format!("write cmd out_value w{writes}"));
        std::thread::sleep(Duration::from_millis(100));
        let events = host.take_events();
        tally(events, &mut counts, &mut writes_ok, &mut writes_failed);
        let now = Instant::now();
        if now >= next_report {
            next_report = now + report_every;
            let kib = rss_kib(pid).unwrap_or(0);
            rss.push((start.elapsed().as_secs(), kib));
            println!(
                "  {:>6}s  {restarts:>8}  {:>7}  {:>7}  {writes_ok:>9}  {writes_failed:>13}  {kib:>16}",
                start.elapsed().as_secs(),
                counts[0].len(),
                counts[1].len()
            );
        }
        if now >= next_restart {
            next_restart = now + every;
            broker.stop();
            broker.restart();
            run.fetch_add(1, Ordering::AcqRel);
            restarts += 1;
        }
    }
    let (q1, f1) = p1.finish();
    let (q2, f2) = p2.finish();
    // Let the last messages and writes arrive.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let events = host.take_events();
        tally(events, &mut counts, &mut writes_ok, &mut writes_failed);
        let done = q1.iter().all(|a| counts[0].contains_key(&a.topic))
            && q2.iter().all(|a| counts[1].contains_key(&a.topic))
            && writes_ok + writes_failed >= writes;
        if done || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let kib = rss_kib(pid).unwrap_or(0);
    rss.push((start.elapsed().as_secs(), kib));
    host.quit_ok();
    let lost1 = q1
        .iter()
        .filter(|a| !counts[0].contains_key(&a.topic))
        .count();
    let lost2 = q2
        .iter()
        .filter(|a| !counts[1].contains_key(&a.topic))
        .count();
    let dup1 = counts[0].values().filter(|c| **c > 1).count();
    let dup2 = counts[1].values().filter(|c| **c > 1).count();
    println!(
        "soak done after {}s: {restarts} broker restarts; accepted q1 {} q2 {} (failed attempts \
         {}); lost q1 {lost1} q2 {lost2}; duplicates q1 {dup1} q2 {dup2}; writes {writes}: ok \
         {writes_ok}, failed {writes_failed}; sim-host RSS KiB first {} last {} max {}",
        start.elapsed().as_secs(),
        q1.len(),
        q2.len(),
        f1 + f2,
        rss.first().map_or(0, |r| r.1),
        kib,
        rss.iter().map(|r| r.1).max().unwrap_or(0)
    );
    assert_eq!(
        (lost1, lost2, dup2),
        (0, 0, 0),
        "lost or duplicated messages"
    );
    assert_eq!(writes_ok + writes_failed, writes, "a write went silent");
    // Flat memory: the second half of the run grows by less than 25 % (and 4 MiB) over the
    // largest figure of the first half.
    let half = total.as_secs() / 2;
    let first_half = rss.iter().filter(|r| r.0 <= half).map(|r| r.1).max();
    let second_half = rss.iter().filter(|r| r.0 > half).map(|r| r.1).max();
    if let (Some(a), Some(b)) = (first_half, second_half) {
        assert!(
            b <= a + a / 4 + 4096,
            "sim-host memory grew from {a} KiB to {b} KiB"
        );
    }
}
