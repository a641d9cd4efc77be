//! The redundant line (issue 21) end to end: two private mosquitto brokers, A and B, a dual-homed
//! gateway publishing every numbered message to both ([`Gateway`]: QoS 0, 1 and 2 streams), and
//! sim-host running a line with `host` = A and `redundant_host` = B.
//!
//! Broker A is killed with SIGKILL in the middle of the streams and restarted later on the same
//! port; B stays up throughout, so B accepts every message and the line must show each exactly
//! once, in order per topic, with no gap, while A is away and after it rejoins. Writes during
//! A's outage complete `ok` through B; with both brokers down they fail, naming both.
//!
//! When the streams end, the gateway sends a last message of its own to each broker (`end-0` to
//! A, `end-1` to B): a broker forwards one publisher's messages in order, so once the line has
//! shown both, every copy of every earlier message has reached it through both connections, and
//! a duplicate shown late could not hide behind the end of the test.
//!
//! [`single_line_on_the_broker_that_stays_up_shows_every_message_once`] runs the same traffic
//! against an ordinary line on B alone: the harness's own proof (the gateway survives A's death
//! and B gets everything), and the baseline the redundant line must match.

use mqtt_line_e2e::{
    assert_refused, ev, publish, subscribe_one, Gateway, LineConfig, Mosquitto, SimHost,
    StationConfig, StreamReport,
};
use serde_json::Value;

/// The three streams: topic and QoS. Each has a station of its own named after the topic's last
/// level.
const STREAMS: [(&str, u8); 3] = [("red/q0", 0), ("red/q1", 1), ("red/q2", 2)];

/// Where the line's writes go.
const WRITE_TOPIC: &str = "red-out/w";

/// How many messages of each stream the line must have shown before the next step (kill,
/// restart, finish): enough that each step happens in the middle of the streams.
const STEP: u64 = 60;

fn station_name(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

/// A broker that never drops QoS 1 and 2 messages queued for a slow line (mosquitto drops them
/// beyond `max_queued_messages`, 1000 by default): what the tests count is the line, not the
/// broker's limits.
fn broker() -> Mosquitto {
    Mosquitto::builder()
        .config_line("max_queued_messages 0")
        .start()
}

/// The line: `host` is `a`'s port, and with `b` the second connection to it.
fn line(a: u16, b: Option<u16>, gated: bool) -> LineConfig {
    let mut config = LineConfig::new(a)
        .param("client_id", "red-line")
        .param("subscribe_qos", "QoS_2")
        .param("publish_qos", "QoS_1")
        .param("topic_filter", "red/#");
    if let Some(b) = b {
        config = config
            .param("redundant_host", "127.0.0.1")
            .param_raw("redundant_port", &b.to_string());
    }
    for (topic, _) in STREAMS {
        let station = StationConfig::new(station_name(topic), topic);
        config = config.station(if gated {
            // QoS 0 messages beyond max_held_messages are dropped by design (docs/parameters.md):
            // the limit is raised so that a slow test host cannot reach it.
            station
                .param("max_held_messages", "1000000")
                .inputs()
                .ack_id()
        } else {
            station.tag("data", "IN_DATA", "TxtI")
        });
    }
    config.station(
        StationConfig::new("cmd", "red-cmd")
            .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", WRITE_TOPIC)
            .tag("out_value", "OUT_VALUE", "TxtO"),
    )
}

fn start_line(config: &LineConfig, brokers: &[&Mosquitto]) -> SimHost {
    let mut host = SimHost::start(&config.to_toml());
    for b in brokers {
        host.attach_broker(b);
    }
    host
}

/// The message numbers a station showed (IN_DATA, valid), in order.
fn shown(host: &mut SimHost, station: &str) -> Vec<String> {
    host.data_values(station)
}

/// Confirms every message an ACK_ID station shows, as a host would, until `until` holds for the
/// values shown so far (or [`TIMEOUT`] passes without a new message).
struct Confirmer {
    stations: Vec<String>,
}

impl Confirmer {
    fn new(streams: &[(&str, u8)]) -> Confirmer {
        Confirmer {
            stations: streams
                .iter()
                .map(|(t, _)| station_name(t).to_string())
                .collect(),
        }
    }

    /// Confirms the next message shown on any of the stations; returns its station and IN_DATA.
    /// Only events not yet taken are searched (the whole log would make a long run quadratic).
    fn confirm_next(&self, host: &mut SimHost) -> (String, String) {
        let stations = self.stations.clone();
        let id = host.expect("the IN_ID of the next message of a gated station", |e| {
            stations.iter().any(|s| ev::is_value(e, s, "id")) && e["valid"] == Value::Bool(true)
        });
        let station = ev::field(&id, "station").to_string();
        // IN_DATA comes before IN_ID; it waits among the events not taken yet.
        let data = host.expect(&format!("the IN_DATA of {station} before {id}"), |e| {
            ev::is_value(e, &station, "data") && e["valid"] == Value::Bool(true)
        });
        let Some(n) = id["value"].as_i64() else {
            let report = host.report();
            panic!("IN_ID of {station} is not an integer: {id}\n{report}");
        };
        host.confirm(&station, n);
        (station, ev::field(&data, "value").to_string())
    }

    /// Confirms messages until each `(station, data)` was shown.
    fn until_shown(&self, host: &mut SimHost, targets: &[(String, String)]) {
        let mut pending: Vec<&(String, String)> = targets
            .iter()
            .filter(|(s, d)| !shown(host, s).contains(d))
            .collect();
        while !pending.is_empty() {
            let (station, value) = self.confirm_next(host);
            pending.retain(|(s, d)| !(s == &station && d == &value));
        }
    }
}

/// Waits until each stream's station has shown a message numbered `ahead` beyond what the
/// gateway had sent when called, so the next step falls in the middle of the streams. With a
/// confirmer, confirms every message shown meanwhile.
fn wait_ahead(
    host: &mut SimHost,
    gateway: &Gateway,
    streams: &[(&str, u8)],
    confirmer: Option<&Confirmer>,
) {
    let targets: Vec<(String, String)> = streams
        .iter()
        .map(|(t, _)| {
            (
                station_name(t).to_string(),
                (gateway.sent(t) + STEP).to_string(),
            )
        })
        .collect();
    shown_all(host, &targets, confirmer);
}

/// Waits until each `(station, data)` was shown; with a confirmer, confirms every message shown
/// meanwhile.
fn shown_all(host: &mut SimHost, targets: &[(String, String)], confirmer: Option<&Confirmer>) {
    match confirmer {
        Some(c) => c.until_shown(host, targets),
        None => {
            for (station, data) in targets {
                host.expect_value_eq(station, "data", data.as_str());
            }
        }
    }
}

/// Ends the streams and checks what each station showed: every message a broker the line hears
/// accepted, exactly once, in order, no gap. `up` is the broker (gateway index) that stayed up
/// throughout and so must have accepted every message; `heard` are the brokers whose end marker
/// the line receives.
fn finish_and_check(
    host: &mut SimHost,
    gateway: Gateway,
    up: usize,
    heard: &[usize],
    confirmer: Option<&Confirmer>,
) -> Vec<StreamReport> {
    let reports = gateway.finish();
    for r in &reports {
        let station = station_name(&r.topic).to_string();
        assert!(r.sent >= 3 * STEP, "too short a stream: {r:?}");
        assert_eq!(
            r.accepted[up].len() as u64,
            r.sent,
            "broker {up}, which stayed up, did not accept every message of {} (the test's \
             premise): failures {:?}",
            r.topic,
            r.failures[up]
        );
        let markers: Vec<String> = heard
            .iter()
            .filter(|&&i| r.end_accepted[i])
            .map(|i| format!("end-{i}"))
            .collect();
        assert!(
            heard.iter().all(|&i| r.end_accepted[i]),
            "broker(s) {heard:?} must take the end marker of {}: {r:?}",
            r.topic
        );
        let targets: Vec<(String, String)> = markers
            .iter()
            .map(|m| (station.clone(), m.clone()))
            .collect();
        shown_all(host, &targets, confirmer);
        let got = shown(host, &station);
        let (numbers, ends): (Vec<&String>, Vec<&String>) =
            got.iter().partition(|v| !v.starts_with("end-"));
        let expected: Vec<String> = (0..r.sent).map(|n| n.to_string()).collect();
        if numbers.iter().copied().ne(expected.iter()) {
            let report = host.report();
            panic!(
                "station {station} (QoS {}) did not show 0..{} exactly once in order: {}\n{report}",
                r.qos,
                r.sent,
                describe_difference(&numbers, r.sent)
            );
        }
        let mut ends: Vec<&String> = ends;
        ends.sort();
        assert_eq!(
            ends,
            markers.iter().collect::<Vec<_>>(),
            "station {station}: each end marker once"
        );
    }
    reports
}

/// What is wrong with a shown sequence of numbers: missing, repeated, out of order.
fn describe_difference(shown: &[&String], sent: u64) -> String {
    let numbers: Vec<Option<u64>> = shown.iter().map(|s| s.parse().ok()).collect();
    let mut seen = std::collections::BTreeMap::new();
    for n in numbers.iter().flatten() {
        *seen.entry(*n).or_insert(0u32) += 1;
    }
    let missing: Vec<u64> = (0..sent).filter(|n| !seen.contains_key(n)).collect();
    let repeated: Vec<(u64, u32)> = seen
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(&n, &c)| (n, c))
        .collect();
    let backwards: Vec<(u64, u64)> = numbers
        .windows(2)
        .filter_map(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) if b <= a => Some((a, b)),
            _ => None,
        })
        .collect();
    format!(
        "{} shown; missing {} {:?}; repeated {:?}; backwards {:?}",
        shown.len(),
        missing.len(),
        &missing[..missing.len().min(30)],
        &repeated[..repeated.len().min(30)],
        &backwards[..backwards.len().min(30)]
    )
}

/// Writes `value` to `cmd.out_value` and returns the write event.
fn write(host: &mut SimHost, value: &str) -> Value {
    host.send(&format!("write cmd out_value {value}"));
    host.expect_write("cmd", "out_value")
}

/// A write that must complete `ok` and reach a subscriber of `broker`.
fn write_reaches(host: &mut SimHost, broker: &Mosquitto, value: &str) {
    let sub = subscribe_one(broker.port(), WRITE_TOPIC);
    let w = write(host, value);
    if ev::write_ok(&w) != Some(true) {
        let report = host.report();
        panic!("the write {value:?} did not complete ok: {w}\n{report}");
    }
    let got = sub.wait();
    assert_eq!(got.payload, value.as_bytes(), "{}", broker.log_tail());
}

// ---------------------------------------------------------------------------------------------
// The baseline: one line, the harness proven
// ---------------------------------------------------------------------------------------------

/// The scenario of the redundant line with an ordinary line on B alone; `gated`: through ACK_ID
/// stations.
fn single_line_on_b(gated: bool) {
    let streams: &[(&str, u8)] = &STREAMS;
    let confirmer = gated.then(|| Confirmer::new(streams));
    let c = confirmer.as_ref();
    let mut a = broker();
    let b = broker();
    let mut host = start_line(&line(b.port(), None, gated), &[&a, &b]);
    host.wait_connected();
    let gateway = Gateway::start("red-gw", &[a.port(), b.port()], streams);
    wait_ahead(&mut host, &gateway, streams, c);
    a.kill();
    wait_ahead(&mut host, &gateway, streams, c);
    write_reaches(&mut host, &b, "while A is down");
    a.restart();
    wait_ahead(&mut host, &gateway, streams, c);
    let reports = finish_and_check(&mut host, gateway, 1, &[1], c);
    for r in &reports {
        // The gateway went on without A and came back to it: A missed messages, took later ones.
        assert!(!r.failures[0].is_empty(), "A never failed: {r:?}");
        assert!(r.accepted[0].len() < r.accepted[1].len(), "{r:?}");
        assert!(r.end_accepted[0], "A did not take messages again: {r:?}");
        eprintln!(
            "{}: {} messages; A accepted {} ({} failures), B all",
            r.topic,
            r.sent,
            r.accepted[0].len(),
            r.failures[0].len()
        );
    }
    host.quit_ok();
}

#[test]
fn single_line_on_the_broker_that_stays_up_shows_every_message_once() {
    single_line_on_b(false);
}

#[test]
fn single_ack_id_line_on_the_broker_that_stays_up_shows_every_message_once() {
    single_line_on_b(true);
}

// ---------------------------------------------------------------------------------------------
// The redundant line
// ---------------------------------------------------------------------------------------------

/// A `connection` event of one connection (`A` or `B`) of a redundant line with `state`
/// (`connected`, `disconnected`).
fn is_connection(e: &Value, connection: &str, state: &str) -> bool {
    ev::kind(e) == "connection"
        && ev::field(e, "connection") == connection
        && ev::field(e, "state") == state
}

fn expect_connection(host: &mut SimHost, connection: &str, state: &str) -> Value {
    host.expect(&format!("connection {connection} {state}"), |e| {
        is_connection(e, connection, state)
    })
}

/// Starts the redundant line on `a` and `b` and waits until both connections are ready.
fn start_redundant(a: &Mosquitto, b: &Mosquitto, gated: bool) -> SimHost {
    let mut host = start_line(&line(a.port(), Some(b.port()), gated), &[a, b]);
    host.wait_connected();
    for c in ["A", "B"] {
        let e = expect_connection(&mut host, c, "connected");
        let port = if c == "A" { a.port() } else { b.port() };
        assert_eq!(
            ev::field(&e, "host"),
            format!("127.0.0.1:{port}"),
            "{e}\n{}",
            host.report()
        );
    }
    host
}

/// Sends `command` (`stats`, `status`) and returns the entry of `connection` in the answer's
/// list at `path` (`/connections`, `/line/connections`).
fn connection_entry(host: &mut SimHost, command: &str, path: &str, connection: &str) -> Value {
    host.send(command);
    let answer = host.expect(&format!("the {command} answer"), |e| ev::kind(e) == command);
    let found = answer
        .pointer(path)
        .and_then(Value::as_array)
        .and_then(|all| all.iter().find(|c| c["connection"] == connection).cloned());
    match found {
        Some(c) => c,
        None => {
            let report = host.report();
            panic!("{command} has no connection {connection} at {path}: {answer}\n{report}")
        }
    }
}

/// The `stats` counters of `connection`.
fn connection_stats(host: &mut SimHost, connection: &str) -> Value {
    connection_entry(host, "stats", "/connections", connection)
}

/// The `status` of `connection`.
fn connection_status(host: &mut SimHost, connection: &str) -> Value {
    connection_entry(host, "status", "/line/connections", connection)
}

fn counter(c: &Value, name: &str) -> u64 {
    c[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {c}"))
}

/// With both brokers down the line is disconnected and a write fails, its reason naming both
/// connections' brokers.
fn both_down_write_fails(host: &mut SimHost, a: &mut Mosquitto, b: &mut Mosquitto) {
    a.kill();
    b.kill();
    host.expect_disconnected();
    let w = write(host, "nobody listens");
    let error = ev::field(&w, "error").to_string();
    if ev::write_ok(&w) != Some(false) {
        let report = host.report();
        panic!("a write with both brokers down did not fail: {w}\n{report}");
    }
    for port in [a.port(), b.port()] {
        assert!(
            error.contains(&format!("127.0.0.1:{port}")),
            "the reason names each broker: {error:?}"
        );
    }
}

/// Kills A mid-stream and restarts it; `gated`: through ACK_ID stations; `counters`: checks
/// the connections' counters in `stats` too.
fn kill_a_mid_stream(gated: bool, counters: bool) {
    let streams: &[(&str, u8)] = &STREAMS;
    let confirmer = gated.then(|| Confirmer::new(streams));
    let c = confirmer.as_ref();
    let mut a = broker();
    let mut b = broker();
    let mut host = start_redundant(&a, &b, gated);
    let gateway = Gateway::start("red-gw", &[a.port(), b.port()], streams);
    wait_ahead(&mut host, &gateway, streams, c);
    a.kill();
    expect_connection(&mut host, "A", "disconnected");
    wait_ahead(&mut host, &gateway, streams, c);
    write_reaches(&mut host, &b, "while A is down");
    a.restart();
    expect_connection(&mut host, "A", "connected");
    assert_eq!(connection_status(&mut host, "A")["state"], "connected");
    wait_ahead(&mut host, &gateway, streams, c);
    let reports = finish_and_check(&mut host, gateway, 1, &[0, 1], c);
    if let Some(e) = host.events().iter().find(|e| ev::is_disconnected(e)) {
        let e = e.clone();
        let report = host.report();
        panic!("the line went down while B was up: {e}\n{report}");
    }
    if counters {
        // Both connections carried the streams; the copies through the slower one were
        // suppressed, and every message received was shown or suppressed.
        let (sa, sb) = (
            connection_stats(&mut host, "A"),
            connection_stats(&mut host, "B"),
        );
        assert!(counter(&sa, "reconnects") >= 1, "A came back: {sa}");
        let received = counter(&sa, "received") + counter(&sb, "received");
        let suppressed = counter(&sa, "duplicates") + counter(&sb, "duplicates");
        let shown: u64 = reports.iter().map(|r| r.sent + 2).sum();
        assert!(suppressed > 0, "no copy was suppressed: {sa} {sb}");
        assert_eq!(
            received - suppressed,
            shown,
            "every message received is shown or suppressed: {sa} {sb}"
        );
    }
    both_down_write_fails(&mut host, &mut a, &mut b);
    host.quit_ok();
}

#[test]
fn broker_a_killed_mid_stream_loses_nothing_and_shows_nothing_twice() {
    kill_a_mid_stream(false, false);
}

#[test]
fn an_ack_id_station_shows_each_message_once_in_order_while_a_is_killed() {
    kill_a_mid_stream(true, false);
}

#[test]
fn the_connections_counters_account_for_every_message_and_copy() {
    kill_a_mid_stream(false, true);
}

/// The duplicate rule matches one copy per original: a device that sends the same payload three
/// times in a row is shown three times when both brokers carry every copy.
#[test]
fn a_payload_repeated_quickly_is_shown_as_often_as_it_was_sent() {
    let a = broker();
    let b = broker();
    let mut host = start_redundant(&a, &b, false);
    // Each broker's own end marker last: once both are shown, every copy has arrived.
    for (broker, end) in [(&a, "end-0"), (&b, "end-1")] {
        for _ in 0..3 {
            publish(broker.port(), "red/q1", b"same", 1, false);
        }
        publish(broker.port(), "red/q1", end.as_bytes(), 1, false);
    }
    host.expect_value_eq("q1", "data", "end-0");
    host.expect_value_eq("q1", "data", "end-1");
    let mut got = shown(&mut host, "q1");
    got.sort();
    assert_eq!(got, ["end-0", "end-1", "same", "same", "same"]);
    host.quit_ok();
}

/// A Sparkplug edge node follows one server at a time: `redundant_host` is refused with why.
#[test]
fn an_edge_node_refuses_redundant_host() {
    let config = LineConfig::new(1883)
        .param("payload_type", "Sparkplug Edge Node")
        .param("redundant_host", "127.0.0.1")
        .station(StationConfig::new("edge1", "plant/edge1").tag("t", "SPB=t", "Ao"))
        .to_toml();
    assert_refused(&config, &["redundant_host", "one server at a time"]);
}

/// examples/redundant.toml is a valid configuration, without warnings.
#[test]
fn the_redundant_example_configuration_checks_clean() {
    let path = mqtt_line_e2e::workspace_dir().join("examples/redundant.toml");
    let config = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let plugin = mqtt_line_e2e::plugin_path();
    let args = [
        "check",
        "{config}",
        "--plugin",
        plugin.to_str().unwrap_or(""),
    ];
    let done = mqtt_line_e2e::run_to_exit(&config, &args, mqtt_line_e2e::TIMEOUT);
    assert_eq!(done.code, Some(0), "{done}");
    assert!(
        done.stdout.contains("configuration OK: 2 stations, 7 tags"),
        "{done}"
    );
    assert!(!done.stderr.contains("WARN"), "{done}");
}
