//! Issue 11 in sim-host: the `status`, `values`, `stats` and `help` answers on stdin,
//! `--trace-routing`, `--json-logs`, and the `--http` server's `/metrics` and `/api/*`, all
//! checked against what was published.
//!
//! Every test has its own mosquitto on its own loopback port and its own sim-host. Messages that
//! fill no tag are waited for through their `route` events (`--trace-routing`).

use std::collections::BTreeMap;

use mqtt_line_e2e::{ev, http_get, publish, LineConfig, Mosquitto, SimHost, StationConfig};
use serde_json::{json, Value};

/// Stations `a` and `b` (a counter tag each), `never` (never gets a message), `offline`
/// (switched off) and `odd"name\` (a name that needs escaping in metrics labels).
fn line(port: u16) -> LineConfig {
    LineConfig::new(port)
        .param("topic_filter", "plant/#")
        .station(StationConfig::new("a", "plant/a").tag("v", "IN_DATA", "Ci"))
        .station(StationConfig::new("b", "plant/b").tag("v", "IN_DATA", "Ci"))
        .station(StationConfig::new("never", "plant/never").tag("x", "IN_DATA", "TxtI"))
        .station(
            StationConfig::new("offline", "plant/offline")
                .state("off")
                .tag("v", "IN_DATA", "Ci"),
        )
        .station(StationConfig::new("odd\"name\\", "plant/odd").tag("v", "IN_DATA", "Ci"))
}

/// Publishes 3 messages to `a`, 2 to `b`, 1 to `odd"name\`, 1 unrouted and 1 to the station
/// that is off (8 in all), and waits until sim-host has seen every one of them.
fn publish_known_counts(host: &mut SimHost, port: u16) {
    for (topic, payload) in [
        ("plant/a", "1"),
        ("plant/a", "2"),
        ("plant/a", "3"),
        ("plant/b", "10"),
        ("plant/b", "20"),
        ("plant/odd", "7"),
        ("plant/nobody", "lost"),
        ("plant/offline", "5"),
    ] {
        publish(port, topic, payload.as_bytes(), 1, false);
    }
    host.expect_value_eq("a", "v", 3);
    host.expect_value_eq("b", "v", 20);
    host.expect_value_eq("odd\"name\\", "v", 7);
    host.expect("the unrouted message's route event", |e| {
        ev::kind(e) == "route" && ev::field(e, "outcome") == "unrouted"
    });
    host.expect("the route event of the station that is off", |e| {
        ev::kind(e) == "route" && ev::field(e, "outcome") == "station_off"
    });
}

/// A line to `broker` (topic filter `plant/#`) with one station, run with `args`
/// (readable output unless `json`), connected.
fn one_station(broker: &Mosquitto, station: StationConfig, json: bool, args: &[&str]) -> SimHost {
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "plant/#")
        .station(station);
    let mut host = if json {
        SimHost::start_with(&config.to_toml(), args)
    } else {
        SimHost::start_readable(&config.to_toml(), args)
    };
    host.attach_broker(broker);
    if json {
        host.wait_connected();
    } else {
        host.wait_stdout("connected", |lines| {
            lines.iter().any(|l| l.contains(" line connected "))
        });
    }
    host
}

fn by_station(list: &Value) -> BTreeMap<String, Value> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|s| (ev::field(s, "station").to_string(), s.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_stats(stats: &Value) {
    let l = &stats["line"];
    assert_eq!(l["received"], 8, "{stats}");
    assert_eq!(l["unrouted"], 1, "{stats}");
    assert_eq!(l["dropped_off"], 1, "{stats}");
    assert_eq!(l["dropped_simulated"], 0, "{stats}");
    assert_eq!(
        l["bytes_received"], 13,
        "1+1+1+2+2+1+4+1 payload bytes: {stats}"
    );
    assert_eq!(l["connection_attempts"], 1, "{stats}");
    assert!(l["last_message"].is_string(), "{stats}");
    let st = by_station(&stats["stations"]);
    let received: Vec<(&str, u64)> = st
        .iter()
        .map(|(name, s)| (name.as_str(), s["received"].as_u64().unwrap_or(u64::MAX)))
        .collect();
    assert_eq!(
        received,
        vec![
            ("a", 3),
            ("b", 2),
            ("never", 0),
            ("odd\"name\\", 1),
            ("offline", 1)
        ],
        "{stats}"
    );
    assert_eq!(st["offline"]["dropped"], 1, "{stats}");
    assert_eq!(st["never"]["last_message"], Value::Null, "{stats}");
}

fn without_time(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.remove("time");
    }
    v
}

#[test]
fn stdin_status_values_and_stats_answer_with_the_published_counts() {
    let broker = Mosquitto::start();
    let mut host = SimHost::start_with(&line(broker.port()).to_toml(), &["--trace-routing"]);
    host.attach_broker(&broker);
    host.wait_connected();
    publish_known_counts(&mut host, broker.port());

    host.send("stats");
    let stats = host.expect("the stats answer", |e| ev::kind(e) == "stats");
    assert_stats(&stats);

    host.send("values");
    let values = host.expect("the values answer", |e| ev::kind(e) == "values");
    let tags = values["tags"].as_array().cloned().unwrap_or_default();
    assert_eq!(tags.len(), 5, "{values}");
    assert_eq!(
        tags[0],
        json!({"station":"a","tag":"v","type":"Ci","value":3,"valid":true,"time":tags[0]["time"]}),
        "{values}"
    );
    assert!(tags[0]["time"].is_string(), "{values}");
    assert_eq!(
        tags[2],
        json!({"station":"never","tag":"x","type":"TxtI","value":null,"valid":false,"time":null}),
        "a tag that never had a value: {values}"
    );

    host.send("status");
    let status = host.expect("the status answer", |e| ev::kind(e) == "status");
    assert_eq!(status["line"]["state"], "connected", "{status}");
    assert_eq!(
        status["line"]["host"],
        format!("127.0.0.1:{}", broker.port()),
        "{status}"
    );
    let st = by_station(&status["stations"]);
    assert_eq!(st["a"]["state"], "ok", "{status}");
    assert_eq!(st["offline"]["state"], "off", "{status}");
    assert_eq!(st["a"]["address"], "plant/a", "{status}");

    host.send("help");
    let help = host.expect("the help answer", |e| ev::kind(e) == "help");
    let commands: Vec<&str> = help["commands"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["command"].as_str()).collect())
        .unwrap_or_default();
    for word in ["status", "values", "stats", "help", "quit"] {
        assert!(commands.contains(&word), "{word} in {help}");
    }
    host.quit_ok();
}

#[test]
fn readable_answers_are_tables() {
    let broker = Mosquitto::start();
    let station = StationConfig::new("a", "plant/a").tag("v", "IN_DATA", "TxtI");
    let mut host = one_station(&broker, station, false, &[]);
    publish(broker.port(), "plant/a", b"hello\x1b[31m", 1, false);
    host.wait_stdout("the value", |lines| {
        lines.iter().any(|l| l.contains("value a.v = "))
    });
    host.send("values");
    let lines = host.wait_stdout("the values table", |lines| {
        lines
            .iter()
            .any(|l| l.starts_with("station") && l.contains("value"))
            && lines
                .iter()
                .any(|l| l.starts_with("a ") && l.contains("TxtI"))
    });
    let row = lines
        .iter()
        .find(|l| l.starts_with("a ") && l.contains("TxtI"))
        .cloned()
        .unwrap_or_default();
    assert!(row.contains("\"hello\\u001b[31m\""), "escaped: {row}");
    assert!(!row.contains('\x1b'), "{row:?}");
    host.send("stats");
    host.wait_stdout("the stats table", |lines| {
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["received", "1"])
    });
    host.send("status");
    host.wait_stdout("the status table", |lines| {
        lines
            .iter()
            .any(|l| l.starts_with("line ") && l.contains(": connected 127.0.0.1:"))
            && lines
                .iter()
                .any(|l| l.starts_with("a ") && l.contains(" ok "))
    });
    host.quit_ok();
}

#[test]
fn trace_routing_tells_where_every_message_went() {
    let broker = Mosquitto::start();
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "plant/#")
        .station(StationConfig::new("a", "plant/a/[^/]+").tag("v", "IN_DATA", "TxtI"))
        .station(StationConfig::new("off", "plant/off").state("off"))
        .station(StationConfig::new("sim", "plant/sim").state("simulate"))
        .station(
            StationConfig::new("dev", "plant/dev")
                .param("SWT", "plant/dev/will")
                .param("SWP", "gone"),
        );
    let mut host = SimHost::start_with(&config.to_toml(), &["--trace-routing"]);
    host.attach_broker(&broker);
    host.wait_connected();
    let cases = [
        ("plant/a/x", "21.5", "taken", Some("a")),
        ("plant/nobody", "?", "unrouted", None),
        ("plant/off", "1", "station_off", Some("off")),
        ("plant/sim", "2", "simulated", Some("sim")),
        ("plant/dev/will", "gone", "will", Some("dev")),
    ];
    for (topic, payload, outcome, station) in cases {
        publish(broker.port(), topic, payload.as_bytes(), 1, false);
        let route = host.expect(&format!("the route event of {topic}"), |e| {
            ev::kind(e) == "route" && ev::field(e, "topic") == topic
        });
        assert_eq!(ev::field(&route, "outcome"), outcome, "{route}");
        assert_eq!(ev::field(&route, "payload"), payload, "{route}");
        assert_eq!(
            route.get("station").and_then(Value::as_str),
            station,
            "{route}"
        );
        assert!(route["time"].is_string(), "{route}");
    }
    host.quit_ok();
}

#[test]
fn trace_routing_reads_like_mosquitto_sub_without_json() {
    let broker = Mosquitto::start();
    let station = StationConfig::new("a", "plant/a");
    let mut host = one_station(&broker, station, false, &["--trace-routing"]);
    publish(broker.port(), "plant/a", b"on", 1, false);
    publish(broker.port(), "plant/zz", b"x\ny", 1, false);
    host.wait_stdout("both route lines", |lines| {
        lines.iter().any(|l| l.ends_with(" route plant/a on -> a"))
            && lines
                .iter()
                .any(|l| l.ends_with(" route plant/zz x\\ny -> unrouted"))
    });
    host.quit_ok();
}

#[test]
fn json_logs_put_log_messages_on_stdout() {
    let broker = Mosquitto::start();
    let station = StationConfig::new("a", "plant/a");
    let mut host = one_station(&broker, station, true, &["--json-logs"]);
    host.send("frobnicate now");
    let log = host.expect("the command error as a log event", |e| {
        ev::kind(e) == "log" && ev::field(e, "level") == "error"
    });
    assert!(ev::field(&log, "text").contains("frobnicate"), "{log}");
    assert!(log["time"].is_string(), "{log}");
    host.quit_ok();
    assert!(!host.stderr().contains("ERROR"), "{}", host.stderr());
}

/// `NAME{labels} VALUE` lines of a metrics text by name and labels.
fn samples(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn metrics_and_api_answer_with_the_published_counts() {
    let broker = Mosquitto::start();
    let mut host = SimHost::start_with(
        &line(broker.port()).to_toml(),
        &["--trace-routing", "--http", "127.0.0.1:0"],
    );
    host.attach_broker(&broker);
    let address = host.http_address();
    host.wait_connected();
    publish_known_counts(&mut host, broker.port());

    let metrics = http_get(&address, "/metrics");
    assert_eq!(metrics.status, 200, "{metrics:?}");
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{metrics:?}"
    );
    let m = samples(&metrics.body);
    let expected = [
        ("mqtt_line_messages_received_total", "8"),
        ("mqtt_line_messages_unrouted_total", "1"),
        ("mqtt_line_messages_dropped_station_off_total", "1"),
        ("mqtt_line_received_bytes_total", "13"),
        ("mqtt_line_connected", "1"),
        (
            "mqtt_line_station_messages_received_total{station=\"a\"}",
            "3",
        ),
        (
            "mqtt_line_station_messages_received_total{station=\"b\"}",
            "2",
        ),
        (
            "mqtt_line_station_messages_received_total{station=\"never\"}",
            "0",
        ),
        (
            "mqtt_line_station_messages_received_total{station=\"odd\\\"name\\\\\"}",
            "1",
        ),
        (
            "mqtt_line_station_messages_dropped_total{station=\"offline\"}",
            "1",
        ),
        (
            "mqtt_line_station_state{station=\"offline\",state=\"off\"}",
            "1",
        ),
    ];
    for (name, value) in expected {
        assert_eq!(
            m.get(name).map(String::as_str),
            Some(value),
            "{name}\n{}",
            metrics.body
        );
    }
    // Every family has its HELP and TYPE.
    let families: Vec<&str> = m.keys().map(|k| k.split('{').next().unwrap_or(k)).collect();
    for family in families {
        for kind in ["HELP", "TYPE"] {
            assert!(
                metrics.body.contains(&format!("# {kind} {family} ")),
                "# {kind} {family}\n{}",
                metrics.body
            );
        }
    }

    // /api/* give what the stdin commands give.
    for (path, command) in [
        ("/api/stats", "stats"),
        ("/api/values", "values"),
        ("/api/status", "status"),
    ] {
        let response = http_get(&address, path);
        assert_eq!(response.status, 200, "{path}: {response:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        let api = response.json();
        host.send(command);
        let answer = host.expect(&format!("the {command} answer"), |e| ev::kind(e) == command);
        assert_eq!(
            without_time(api),
            without_time(answer),
            "{path} vs {command}"
        );
    }
    assert_stats(&http_get(&address, "/api/stats").json());

    let page = http_get(&address, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<script src=\"/page.js\""),
        "{}",
        page.body
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|p| p.contains("script-src 'self'")),
        "{page:?}"
    );
    assert_eq!(http_get(&address, "/nothing-here").status, 404);
    host.quit_ok();
}

/// `--http` on an address that is not loopback is refused unless `--http-public` says so, and
/// before anything is bound: the test holds 127.0.0.1:PORT, so an attempt to bind 0.0.0.0:PORT
/// would fail with "cannot listen" (exit code 1) instead. Nothing here binds beyond loopback.
#[test]
fn a_non_loopback_http_address_needs_http_public() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = held.local_addr().expect("address").port();
    let plugin = mqtt_line_e2e::plugin_path();
    let config = LineConfig::new(mqtt_line_e2e::free_port())
        .station(StationConfig::new("a", "plant/a").tag("v", "IN_DATA", "Ci"))
        .to_toml();
    let http = format!("0.0.0.0:{port}");
    let args = [
        "run",
        "{config}",
        "--plugin",
        plugin.to_str().expect("plugin path"),
        "--duration",
        "2",
        "--http",
        &http,
    ];
    let done = mqtt_line_e2e::run_to_exit(&config, &args, mqtt_line_e2e::TIMEOUT);
    assert_eq!(done.code, Some(2), "{done}");
    assert!(
        done.stderr.contains("0.0.0.0 is not a loopback address")
            && done.stderr.contains("--http-public"),
        "{done}"
    );
    assert!(!done.stderr.contains("cannot listen"), "{done}");
    drop(held);
}

/// A client of `/events` that connects and never reads: once its socket is full, the server
/// closes it after the stall limit and counts it in `/metrics`; the server goes on answering.
/// The snapshot is made large (big values) so that it cannot all fit in the socket buffers.
#[test]
fn an_event_stream_client_that_never_reads_is_closed_and_counted() {
    use std::io::{Read, Write};
    let broker = Mosquitto::start();
    let mut station = StationConfig::new("big", "plant/big");
    for i in 0..4 {
        station = station.tag(&format!("text{i}"), "IN_DATA", "TxtI");
    }
    let config = LineConfig::new(broker.port())
        .param("topic_filter", "plant/#")
        .station(station);
    let mut host = SimHost::start_with(&config.to_toml(), &["--http", "127.0.0.1:0"]);
    host.attach_broker(&broker);
    let address = host.http_address();
    host.wait_connected();
    let big = "x".repeat(1024 * 1024);
    publish(broker.port(), "plant/big", big.as_bytes(), 1, false);
    host.expect_value("big", "text3");

    let mut client = std::net::TcpStream::connect(&address).expect("connect to --http");
    let request = format!("GET /events HTTP/1.1\r\nHost: {address}\r\n\r\n");
    client
        .write_all(request.as_bytes())
        .expect("send the request");
    // The client now reads nothing. Its connection is closed within the stall limit (10 s)
    // once the buffers are full; wait for the counter, at most the limit and TIMEOUT.
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(10) + mqtt_line_e2e::TIMEOUT;
    let closed = loop {
        let m = samples(&http_get(&address, "/metrics").body);
        let closed = m.get("sim_host_http_slow_clients_closed_total").cloned();
        if closed.as_deref() != Some("0") || std::time::Instant::now() > deadline {
            break closed;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // Not host.report(): its events hold the 4 MiB of values.
    assert_eq!(
        closed.as_deref(),
        Some("1"),
        "sim_host_http_slow_clients_closed_total in /metrics"
    );
    // What the server had handed to the kernel still arrives, then the end of the stream.
    client
        .set_read_timeout(Some(mqtt_line_e2e::TIMEOUT))
        .expect("read timeout");
    let mut received = Vec::new();
    let end = client.read_to_end(&mut received);
    assert!(
        end.is_ok() || matches!(&end, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection is closed: {end:?} after {} bytes",
        received.len()
    );
    assert!(
        received.len() < big.len() * 4,
        "the whole snapshot did not get through"
    );
    assert_eq!(http_get(&address, "/api/status").status, 200);
    host.quit_ok();
}
