//! Micro-benchmarks of the core's per-message work: routing against station count, JSON address
//! extraction and time stamps, a whole message through the line (`deliver`); and of configuring a line of 10,000 stations (start-up). `cargo bench -p mqtt-line-core`; `bench/scripts/plot.py` reads
//! the routing results from `target/criterion`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mqtt_line_core::parts::parse_json;
use mqtt_line_core::parts::JsonPath;
use mqtt_line_core::parts::PathTree;
use mqtt_line_core::parts::{check_address, RouteEntry, Router};
use mqtt_line_core::parts::{TimeMask, TimeZone};
use mqtt_line_core::{Line, LineConfig, StationId, TagId, ValueType};

// Shared with the tests, which use more of it than the bench does.
#[path = "../tests/common/payloads.rs"]
#[allow(dead_code)]
mod payloads;
use payloads::{kepware_item, kepware_message, UPLINK, UPLINK_TAGS};

/// `n` stations: even ones exact topics, odd ones regular expressions, as in scenario 3 of
/// `mqtt-line-bench`.
fn addresses(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                format!("site/e/{i}/up")
            } else {
                format!("site/r/{i}/[^/]+")
            }
        })
        .collect()
}

/// Station `i` named by its address.
fn route_entries(addrs: &[String]) -> Vec<RouteEntry<'_>> {
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| RouteEntry {
            station: i,
            name: a,
            address: a,
            pattern: check_address(a, a).is_ok_and(|c| c.pattern),
        })
        .collect()
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing");
    g.throughput(Throughput::Elements(1));
    for n in [10usize, 100, 1_000, 10_000, 100_000] {
        let addrs = addresses(n);
        let entries = route_entries(&addrs);
        let router = Router::build(&entries).expect("router");
        // Topics spread over the stations, as the traffic of scenario 3.
        let k = 64.min(n / 2);
        let exact: Vec<String> = (0..k)
            .map(|j| format!("site/e/{}/up", (j * n / k) & !1))
            .collect();
        let regex: Vec<String> = (0..k)
            .map(|j| format!("site/r/{}/up", (j * n / k) | 1))
            .collect();
        let miss: Vec<String> = (0..k).map(|j| format!("other/{j}/up")).collect();
        for t in exact.iter().chain(&regex) {
            assert!(router.route(t).is_some(), "{t} must route");
        }
        for (name, topics) in [("exact", &exact), ("regex", &regex), ("miss", &miss)] {
            g.bench_with_input(BenchmarkId::new(name, n), topics, |b, topics| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % topics.len();
                    black_box(router.route(black_box(&topics[i])))
                })
            });
        }
    }
    g.finish();
}

fn json(c: &mut Criterion) {
    let mut g = c.benchmark_group("json");
    let paths: Vec<JsonPath> = UPLINK_TAGS
        .iter()
        .map(|(p, _)| JsonPath::parse(p).expect("path"))
        .collect();
    g.bench_function("parse_uplink_1k", |b| {
        b.iter(|| black_box(parse_json(black_box(UPLINK.as_bytes())).is_ok()))
    });
    let doc = parse_json(UPLINK.as_bytes()).expect("json");
    g.bench_function("find_8_paths", |b| {
        b.iter(|| {
            for p in &paths {
                black_box(p.find(black_box(&doc)));
            }
        })
    });
    // What the line did per message before json_extract: build the document, then look up.
    g.bench_function("parse_and_find_8_paths", |b| {
        b.iter(|| {
            let doc = parse_json(black_box(UPLINK.as_bytes())).expect("json");
            for p in &paths {
                black_box(p.find(&doc));
            }
        })
    });
    // What it does now: one pass that builds only the addressed values.
    let tree = PathTree::new(&paths);
    let mut out = Vec::new();
    g.bench_function("extract_8_paths", |b| {
        b.iter(|| {
            tree.extract(black_box(UPLINK.as_bytes()), &mut out)
                .expect("json");
            black_box(&out);
        })
    });
    g.bench_function("parse_path", |b| {
        b.iter(|| black_box(JsonPath::parse(black_box("rx.gwrxf[1].\"gw.id\"")).is_ok()))
    });
    // A Kepware IoT Gateway message of 100 items in reverse order, read as the line reads it:
    // each tag's value, its item's time and its item's quality (300 addresses), in one pass.
    let kepware = kepware_message(100);
    let kep_paths: Vec<JsonPath> = (1..=100)
        .flat_map(|k| ["v", "t", "q"].map(|f| format!(r#"values[id="{}"].{f}"#, kepware_item(k))))
        .map(|p| JsonPath::parse(&p).expect("path"))
        .collect();
    let kep_tree = PathTree::new(&kep_paths);
    g.throughput(Throughput::Bytes(kepware.len() as u64));
    g.bench_function("extract_kepware_100_items", |b| {
        b.iter(|| {
            kep_tree
                .extract(black_box(kepware.as_bytes()), &mut out)
                .expect("json");
            black_box(&out);
        })
    });
    g.bench_function("parse_and_find_kepware_100_items", |b| {
        b.iter(|| {
            let doc = parse_json(black_box(kepware.as_bytes())).expect("json");
            for p in &kep_paths {
                black_box(p.find(&doc));
            }
        })
    });
    g.finish();
}

fn time(c: &mut Criterion) {
    let mut g = c.benchmark_group("time_mask");
    g.bench_function("parse_mask", |b| {
        b.iter(|| black_box(TimeMask::parse(black_box("yyyy-mm-dd hh:mi:ss.mss")).is_ok()))
    });
    let cases = [
        (
            "read_mask",
            "yyyy-mm-dd hh:mi:ss.mss",
            serde_json::json!("2026-11-24 10:00:00.123"),
        ),
        (
            "read_iso8601",
            "ISO8601",
            serde_json::json!("2026-11-24T10:00:00.123456789Z"),
        ),
        ("read_unixms", "UNIXMS", serde_json::json!(1763978400123i64)),
    ];
    for (name, mask, value) in cases {
        let m = TimeMask::parse(mask).expect("mask");
        assert!(m.read(&value, TimeZone::Utc).is_ok(), "{name}");
        g.bench_function(name, |b| {
            b.iter(|| black_box(m.read(black_box(&value), TimeZone::Utc).is_ok()))
        });
    }
    g.finish();
}

/// A line of `n` stations as `sim-host check` configures it (scenario 3's stations: half exact
/// topics, half regular expressions, 10 tags each), started: what a host waits for before the
/// line can connect.
fn configure_line(addrs: &[String]) -> Line {
    let (config, _) =
        LineConfig::from_params("line 'L'", [("host", "127.0.0.1")]).expect("line config");
    let mut line = Line::new("L", config, Instant::now());
    let tags = [
        ("IN_TOPIC", ValueType::TxtI),
        ("IN_DATA", ValueType::TxtI),
        ("IN_ID", ValueType::Ci),
        ("JA=v0", ValueType::Ai),
        ("JA=v1", ValueType::Ai),
        ("JA=v2", ValueType::Ai),
        ("JA=v3", ValueType::Ai),
        ("JA=v4", ValueType::Ai),
        ("JA=v5", ValueType::Ai),
        ("JA=v6", ValueType::Ai),
    ];
    for (i, address) in addrs.iter().enumerate() {
        let id = i as u64;
        line.add_station(StationId(id), &format!("s{i}"), address, [])
            .expect("station");
        for (k, (tag, ty)) in tags.iter().enumerate() {
            line.add_tag(
                StationId(id),
                TagId(id * 16 + k as u64),
                tag,
                tag,
                *ty,
                None,
            )
            .expect("tag");
        }
    }
    line.start(0).expect("start");
    line
}

fn startup(c: &mut Criterion) {
    let mut g = c.benchmark_group("startup");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for n in [1_000usize, 10_000] {
        let addrs = addresses(n);
        g.bench_with_input(BenchmarkId::new("configure_line", n), &addrs, |b, addrs| {
            b.iter(|| black_box(configure_line(addrs)))
        });
        let entries = route_entries(&addrs);
        g.bench_with_input(BenchmarkId::new("router_build", n), &entries, |b, e| {
            b.iter(|| black_box(Router::build(e).expect("router")))
        });
    }
    g.finish();
}

/// `line` connected and subscribed, as a broker would answer it.
fn connect(line: &mut Line, now: Instant) {
    use mqtt_line_core::mqtt::{conn_ack, sub_ack, ConnectReturnCode, Packet, SubscribeReasonCode};
    line.transport_open("127.0.0.1:1883", &Default::default(), now);
    while line.poll_transmit(now).is_some() {}
    let connack = Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false));
    line.handle_packet(connack, now, 0).expect("connack");
    let mut pkid = 0;
    while let Some(p) = line.poll_transmit(now) {
        if let Packet::Subscribe(s) = p {
            pkid = s.pkid;
        }
    }
    let ok = vec![SubscribeReasonCode::Success(
        mqtt_line_core::mqtt::QoS::AtMostOnce,
    )];
    line.handle_packet(Packet::SubAck(sub_ack(pkid, ok)), now, 0)
        .expect("suback");
    while line.poll_event().is_some() {}
}

/// One received QoS 0 message through the whole line (counters, routing, the station's tags,
/// the events drained), on a line of 1,000 stations; with the routing trace off and on.
fn deliver(c: &mut Criterion) {
    use mqtt_line_core::mqtt::{Packet, Publish, QoS};
    let mut g = c.benchmark_group("deliver");
    g.throughput(Throughput::Elements(1));
    let addrs = addresses(1_000);
    for trace in [false, true] {
        let mut line = configure_line(&addrs);
        line.set_trace_routing(trace);
        let now = Instant::now();
        connect(&mut line, now);
        let publish = Publish::new("site/e/500/up", QoS::AtMostOnce, "21.5", None);
        let name = if trace { "text_traced" } else { "text" };
        g.bench_function(name, |b| {
            b.iter(|| {
                line.handle_packet(Packet::Publish(publish.clone()), now, 1)
                    .expect("publish");
                while let Some(e) = line.poll_event() {
                    black_box(e);
                }
            })
        });
    }
    g.finish();
}

/// A Sparkplug edge node line with 20 output metrics on its node station, born: each iteration
/// writes all 20 (20 NDATA by alias), encodes the packets into the shell's buffer, flushes and
/// drains the write-done events; throughput in NDATA messages.
fn edge_ndata(c: &mut Criterion) {
    use bytes::BytesMut;
    use mqtt_line_core::mqtt::SubscribeReasonCode;
    use mqtt_line_core::mqtt::{conn_ack, sub_ack, ConnectReturnCode, Packet, QoS};
    use mqtt_line_core::Value;
    let params = [
        ("host", "127.0.0.1"),
        ("payload_type", "Sparkplug Edge Node"),
    ];
    let (config, _) = LineConfig::from_params("line 'bench'", params).expect("valid parameters");
    let now = Instant::now();
    let mut line = Line::new("bench", config, now);
    line.add_station(StationId(1), "node", "plant/edge1", [])
        .expect("station");
    for t in 0..20u64 {
        let address = format!("SPB=Metric {t}");
        line.add_tag(
            StationId(1),
            TagId(t),
            &address,
            &address,
            ValueType::Ao,
            None,
        )
        .expect("tag");
    }
    line.start(0).expect("start");
    line.transport_open("127.0.0.1:1883", &Default::default(), now);
    while line.poll_transmit(now).is_some() {}
    let connack = Packet::ConnAck(conn_ack(ConnectReturnCode::Success, false));
    line.handle_packet(connack, now, 0).expect("connack");
    let mut sub = (0, 0);
    while let Some(p) = line.poll_transmit(now) {
        if let Packet::Subscribe(s) = p {
            sub = (s.pkid, s.filters.len());
        }
    }
    let ok = vec![SubscribeReasonCode::Success(QoS::AtMostOnce); sub.1];
    line.handle_packet(Packet::SubAck(sub_ack(sub.0, ok)), now, 0)
        .expect("suback");
    let mut buf = BytesMut::with_capacity(64 * 1024);
    line.poll_transmit_into(now, &mut buf, 0).expect("births");
    while line.poll_event().is_some() {}
    let mut g = c.benchmark_group("edge");
    g.throughput(Throughput::Elements(20));
    let mut request = 0u64;
    let wall = 1_700_000_000_000_000_000i64;
    g.bench_function("ndata_20_metrics", |b| {
        b.iter(|| {
            for t in 0..20u64 {
                request += 1;
                let value = Value::Float(request as f64 * 0.5);
                line.write(TagId(t), request, value, now, wall)
                    .expect("write");
            }
            buf.clear();
            line.poll_transmit_into(now, &mut buf, wall)
                .expect("encode");
            black_box(buf.len());
            line.flushed(wall);
            while let Some(e) = line.poll_event() {
                black_box(e);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, routing, json, time, startup, deliver, edge_ndata);
criterion_main!(benches);
