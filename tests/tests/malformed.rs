//! Bad input from the broker: every MQTT 3.1.1 case and every MQTT 5 case of the malformed-packet
//! corpus replayed against the real plugin, and oversized packets, long topics, invalid UTF-8 topics and deeply
//! nested JSON.
//!
//! One sim-host runs the whole corpus: its line reconnects to the fake broker ([`CorpusBroker`])
//! after each case, and the broker serves case after case on successive connections. The line's
//! host list names 127.0.0.1 three times, so a failed connection (one that never got to SUBACK)
//! is retried at once on the "next" host instead of after the back-off; and after such a case the
//! broker serves one good connection, which resets the line's failure count. See
//! docs/interop.md, "Malformed packets".

use std::time::{Duration, Instant};

use mqtt_line_e2e::corpus_broker::{
    corpus_dir, hex, load_corpus, to_hex, Case, CorpusBroker, Msg, PacketType, Peer, Reaction,
};
use mqtt_line_e2e::{ev, missing, wire, LineConfig, SimHost, StationConfig};
use serde_json::json;

/// How long one step of a case may wait. Only reached when something is wrong.
const STEP: Duration = Duration::from_secs(10);

/// Cases where the line's reaction differs from the corpus on purpose, with the reason
/// (`file / group / test name`). docs/interop.md explains each.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

/// What happened in one case.
#[derive(Debug)]
struct Observed {
    reaction: Reaction,
    /// `recv` messages that were not what the corpus says.
    mismatches: Vec<String>,
    /// Whether the line got a SUBACK on this connection (so it reconnects at once).
    ready: bool,
}

struct Runner {
    broker: CorpusBroker,
    host: SimHost,
    publish_qos: u8,
    filters: u32,
    probes: u32,
}

fn corpus_config(port: u16, ver: u64) -> LineConfig {
    LineConfig::new(port)
        .param("protocol_version", if ver == 5 { "5" } else { "3.1.1" })
        // The same broker three times: after a connection that was ready ends, the line moves to
        // the next host of the list, and a failed attempt there moves on at once to the third,
        // instead of waiting for the back-off that follows a whole round of failures.
        .host("127.0.0.1,127.0.0.1,127.0.0.1")
        // The corpus expects a client with a clean session (a CONNACK with session present is
        // then a violation), and in-flight publications must not be resent into later cases.
        .param("clean_session", "YES")
        .param("publish_qos", "QoS_1")
        .param("topic_filter", "probe/#")
        .station(StationConfig::new("probe", "probe/x").inputs())
        .station(
            StationConfig::new("cmd", "cmd/none")
                .tag_with_default("out_topic", "OUT_TOPIC", "TxtO", "test/publish")
                .tag("out_value", "OUT_VALUE", "TxtO"),
        )
}

/// Replaces the packet id 1 of an acknowledgement in the corpus by the one our client used: the
/// corpus was written for Mosquitto's client, whose first packet id is 1.
/// MQTT 5 acknowledgements may go on after the packet id (reason code, properties).
fn with_mid(bytes: &[u8], mid: Option<u16>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(mid) = mid {
        let ack = matches!(bytes.first().map(|b| b >> 4), Some(4..=7 | 9 | 11));
        let short_length = bytes.get(1).is_some_and(|&l| (2..0x80).contains(&l));
        if ack && short_length && bytes.len() >= 4 && bytes[2..4] == [0, 1] {
            out[2..4].copy_from_slice(&mid.to_be_bytes());
        }
    }
    out
}

impl Runner {
    fn probe_payload(&mut self) -> Vec<u8> {
        self.probes += 1;
        format!("probe {}", self.probes).into_bytes()
    }

    /// A good connection: handshake and a probe that must be answered; then `command` is sent to
    /// sim-host (the line then closes the connection itself), or the broker closes it.
    fn good_connection(&mut self, command: Option<&str>) -> Result<(), String> {
        let payload = self.probe_payload();
        let mut peer = self.broker.accept(STEP)?;
        peer.handshake(STEP)?;
        match peer.probe("probe/x", &payload, STEP) {
            Reaction::CarriedOn => {}
            other => return Err(format!("a good connection: probe gave {other:?}")),
        }
        match command {
            Some(cmd) => {
                self.host.send(cmd);
                if !peer.wait_closed(STEP) {
                    return Err(format!("the line did not reconnect after `{cmd}`"));
                }
            }
            None => peer.close(),
        }
        Ok(())
    }

    /// Makes the line do what the case's `command` needs, on a good connection before it.
    fn prepare(&mut self, case: &Case) -> Result<(), String> {
        match case.command.as_deref() {
            Some("publish-1") if self.publish_qos != 1 => {
                self.publish_qos = 1;
                self.good_connection(Some("set publish_qos QoS_1"))
            }
            Some("publish-2") if self.publish_qos != 2 => {
                self.publish_qos = 2;
                self.good_connection(Some("set publish_qos QoS_2"))
            }
            Some("unsubscribe") => {
                // A new topic filter: on the next connection the line unsubscribes the old one.
                self.filters += 1;
                let cmd = format!("set topic_filter probe/f{}", self.filters);
                self.good_connection(Some(&cmd))
            }
            Some("publish-1" | "publish-2") | None => Ok(()),
            Some(other) => Err(format!("unknown corpus command {other:?}")),
        }
    }

    fn run_case(&mut self, n: usize, case: &Case) -> Result<Observed, String> {
        self.prepare(case)?;
        self.broker.note(&format!("== case {n}: {}", case.id));
        let payload = self.probe_payload();
        let mut peer = self.broker.accept(STEP)?;
        let connect = peer.read_until("CONNECT", STEP, |_| true)?;
        if !connect.is(PacketType::Connect) {
            return Err(format!("expected CONNECT, got {}", to_hex(&connect.0)));
        }
        let mut mid = None;
        if case.connack {
            let connack = peer.connack_bytes();
            peer.send(&connack);
            match case.command.as_deref() {
                Some("unsubscribe") => {
                    let p =
                        peer.read_until("UNSUBSCRIBE", STEP, |p| p.is(PacketType::Unsubscribe))?;
                    mid = p.pkid();
                }
                command => {
                    peer.subscribe(STEP)?;
                    if let Some(qos) = match command {
                        Some("publish-1") => Some(1),
                        Some("publish-2") => Some(2),
                        _ => None,
                    } {
                        // The probe's PUBACK shows that the line took the SUBACK: it is ready,
                        // so the write is published rather than refused.
                        self.probes += 1;
                        let ready = format!("probe {}", self.probes);
                        match peer.probe("probe/x", ready.as_bytes(), STEP) {
                            Reaction::CarriedOn => {}
                            other => {
                                return Err(format!("before the command: probe gave {other:?}"))
                            }
                        }
                        self.host
                            .send(&format!("write cmd out_value corpus case {n}"));
                        let p = peer.read_until("the line's PUBLISH", STEP, |p| {
                            p.is(PacketType::Publish)
                        })?;
                        if p.qos() != qos {
                            return Err(format!("the line published at QoS {}", p.qos()));
                        }
                        mid = p.publish_pkid();
                    }
                }
            }
        }
        let mut mismatches = Vec::new();
        for m in &case.msgs {
            match m {
                Msg::Send(bytes) => peer.send(&with_mid(bytes, mid)),
                Msg::Recv(bytes) => {
                    let want = with_mid(bytes, mid);
                    let kind = want.first().map_or(0, |b| b >> 4);
                    match peer.read_until("the expected answer", STEP, |p| p.kind() == kind) {
                        Ok(p) if p.0 == want => {}
                        Ok(p) => mismatches.push(format!(
                            "expected {}, got {}",
                            to_hex(&want),
                            to_hex(&p.0)
                        )),
                        Err(e) if peer.is_closed() => {
                            mismatches.push(format!("expected {}: {e}", to_hex(&want)));
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let reaction = peer.probe("probe/x", &payload, STEP);
        let ready = peer.subacked();
        if reaction == Reaction::CarriedOn {
            peer.close();
        }
        Ok(Observed {
            reaction,
            mismatches,
            ready,
        })
    }
}

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn every_mqtt_3_1_1_case_of_the_malformed_packet_corpus() {
    replay_corpus(4, 271, KNOWN_EXCEPTIONS);
}

/// The corpus's MQTT 5 cases against a line with `protocol_version = 5` (issue 13).
#[test]
fn every_mqtt_5_case_of_the_malformed_packet_corpus() {
    replay_corpus(5, 1059, KNOWN_EXCEPTIONS_V5);
}

/// Cases of the MQTT 5 corpus where the line differs on purpose (docs/interop.md).
const KNOWN_EXCEPTIONS_V5: &[(&str, &str)] = &[(
    "CONNACK.json / v5.0   CONNACK / 20 long",
    "a CONNACK with a byte after its properties is malformed (a CONNACK has no payload); the \
     line refuses it, as it refuses a 3.1.1 CONNACK that is too long",
)];

/// Replays every case of protocol level `ver` (4 or 5; `count` of them) against one sim-host.
fn replay_corpus(ver: u64, count: usize, known: &[(&str, &str)]) {
    let dir = corpus_dir();
    if !dir.is_dir() {
        missing(
            &format!("the malformed-packet corpus is not at {}", dir.display()),
            "put shared/ beside the repository, or point MQTT_MALFORMED_CORPUS at a copy",
        );
    }
    let cases = load_corpus(&dir, ver).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cases.len(), count, "level {ver} cases in {}", dir.display());

    let broker = if ver == 5 {
        CorpusBroker::start_v5()
    } else {
        CorpusBroker::start()
    };
    let host = SimHost::start(&corpus_config(broker.port(), ver).to_toml());
    let mut run = Runner {
        broker,
        host,
        publish_qos: 1,
        filters: 0,
        probes: 0,
    };
    let started = Instant::now();
    if let Err(e) = run.good_connection(None) {
        let report = run.host.report();
        panic!(
            "first connection: {e}\n{}\n{report}",
            run.broker.transcript_tail()
        );
    }
    run.host.wait_connected();
    let pid = run.host.pid();
    let fds_before = open_fds(pid);
    let rss_before = proc_status(pid, "VmRSS:").unwrap_or(0);

    let mut differences = Vec::new();
    let mut carried_on = 0;
    for (n, case) in cases.iter().enumerate() {
        let observed = match run.run_case(n, case) {
            Ok(o) => o,
            Err(e) => {
                let report = run.host.report();
                panic!(
                    "case {n} ({}): {e}\n-- fake broker --\n{}\n{report}",
                    case.id,
                    run.broker.transcript_tail()
                );
            }
        };
        let expected = if case.expect_disconnect {
            Reaction::Disconnected
        } else {
            Reaction::CarriedOn
        };
        if observed.reaction == Reaction::CarriedOn {
            carried_on += 1;
        }
        if observed.reaction != expected || !observed.mismatches.is_empty() {
            differences.push((
                case.id.clone(),
                expected,
                observed.reaction.clone(),
                observed.mismatches.clone(),
            ));
        }
        if observed.reaction == Reaction::Hung {
            let report = run.host.report();
            panic!(
                "case {n} ({}): the line neither closed the connection nor answered within {STEP:?}\n\
                 -- fake broker --\n{}\n{report}",
                case.id,
                run.broker.transcript_tail()
            );
        }
        // A connection that never got to SUBACK counts as a failed attempt for the line: one good
        // connection resets its back-off.
        if !observed.ready {
            if let Err(e) = run.good_connection(None) {
                let report = run.host.report();
                panic!(
                    "reconnecting after case {n} ({}): {e}\n-- fake broker --\n{}\n{report}",
                    case.id,
                    run.broker.transcript_tail()
                );
            }
        }
    }
    // It reconnects after the last case too.
    if let Err(e) = run.good_connection(None) {
        let report = run.host.report();
        panic!(
            "after the corpus: {e}\n{}\n{report}",
            run.broker.transcript_tail()
        );
    }
    let elapsed = started.elapsed();
    let fds_after = open_fds(pid);
    let rss_after = proc_status(pid, "VmRSS:").unwrap_or(0);
    eprintln!(
        "malformed corpus: {} cases ({carried_on} carried on) over {} connections in {elapsed:?}; \
         sim-host fds {fds_before} -> {fds_after}, VmRSS {rss_before} -> {rss_after} kB",
        cases.len(),
        run.broker.connections()
    );

    let mut unexpected = Vec::new();
    for (id, expected, got, mismatches) in &differences {
        if !known.iter().any(|(k, _)| k == id) {
            unexpected.push(format!(
                "  {id}: expected {expected:?}, got {got:?} {}",
                mismatches.join("; ")
            ));
        }
    }
    let stale: Vec<&str> = known
        .iter()
        .filter(|(k, _)| !differences.iter().any(|d| d.0 == *k))
        .map(|(k, _)| *k)
        .collect();
    let code = run.host.quit();
    let report = run.host.report();
    assert!(
        unexpected.is_empty(),
        "{} cases differ from the corpus:\n{}\n{report}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed as exceptions but now as the corpus says: {stale:?}"
    );
    assert_eq!(code, Some(0), "{report}");
    let stderr = run.host.stderr();
    assert!(!stderr.contains("panicked"), "{report}");
    assert!(!stderr.contains("internal error"), "{report}");
    assert!(
        stderr.contains("malformed packet from the broker"),
        "a malformed packet must be named in a warning\n{report}"
    );
    // No socket or memory kept per connection (hundreds of connections were made).
    assert!(
        fds_after <= fds_before + 1,
        "sim-host had {fds_before} open files before the corpus and {fds_after} after"
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "sim-host grew from {rss_before} kB to {rss_after} kB over the corpus"
    );
}

// ---------------------------------------------------------------------------------------------
// Oversized packets, long topics, invalid UTF-8 topics, deep JSON
// ---------------------------------------------------------------------------------------------

/// A line to a fresh corpus broker with one catch-all station (and `params`).
fn catch_all(params: &[(&str, &str)], station: StationConfig) -> (CorpusBroker, SimHost) {
    let broker = CorpusBroker::start();
    let mut config = LineConfig::new(broker.port()).host("127.0.0.1,127.0.0.1");
    for (k, v) in params {
        config = config.param(k, v);
    }
    let host = SimHost::start(&config.station(station).to_toml());
    (broker, host)
}

fn connected(broker: &mut CorpusBroker) -> Peer<'_> {
    let mut peer = broker.accept(STEP).unwrap_or_else(|e| panic!("{e}"));
    peer.handshake(STEP).unwrap_or_else(|e| panic!("{e}"));
    peer
}

/// The line closes the connection; returns the reason of its `disconnected` event.
fn expect_closed_with(host: &mut SimHost, peer: &mut Peer<'_>, needle: &str) -> String {
    assert!(
        peer.wait_closed(STEP),
        "the line kept the connection\n{}",
        host.report()
    );
    let e = host.expect(&format!("`disconnected` naming {needle:?}"), |e| {
        ev::is_disconnected(e) && ev::field(e, "reason").contains(needle)
    });
    let reason = ev::field(&e, "reason").to_string();
    eprintln!("the line disconnected: {reason}");
    reason
}

/// After a refusal the line reconnects and receives again.
fn reconnects_and_receives(broker: &mut CorpusBroker, host: &mut SimHost, station: &str) {
    let mut peer = connected(broker);
    assert_eq!(
        peer.probe("probe/after", b"after", STEP),
        Reaction::CarriedOn,
        "{}",
        host.report()
    );
    host.expect_value_eq(station, "data", "after");
    peer.close();
}

#[test]
fn a_packet_over_the_size_limit_is_refused_from_its_header() {
    let (mut broker, mut host) = catch_all(&[], StationConfig::new("all", ".*").inputs());
    let pid = host.pid();
    let mut peer = connected(&mut broker);
    host.wait_connected();
    let rss_before = proc_status(pid, "VmRSS:").unwrap_or(0);
    // A PUBLISH announcing 268,435,455 bytes (the most MQTT can say), followed by a little: the
    // line must refuse it from the header, not buffer it.
    let mut bytes = hex("30 FF FF FF 7F 0007 70726f62652f78");
    bytes.extend_from_slice(&[b'x'; 4096]);
    peer.send(&bytes);
    let reason = expect_closed_with(&mut host, &mut peer, "larger than the limit");
    drop(peer);
    let rss_after = proc_status(pid, "VmRSS:").unwrap_or(0);
    assert!(
        rss_after < rss_before + 16 * 1024,
        "VmRSS {rss_before} -> {rss_after} kB after {reason}"
    );
    reconnects_and_receives(&mut broker, &mut host, "all");
    assert_eq!(host.quit(), Some(0));
    assert!(!host.stderr().contains("panicked"), "{}", host.report());
}

#[test]
fn a_long_topic_and_a_large_payload_are_delivered() {
    let (mut broker, mut host) = catch_all(&[], StationConfig::new("all", ".*").inputs());
    let mut peer = connected(&mut broker);
    host.wait_connected();
    // The longest topic MQTT allows (65,535 bytes) and a payload of 4 MiB.
    let topic = format!("long/{}", "t".repeat(65_535 - 5));
    let payload = vec![b'p'; 4 << 20];
    peer.send(&wire::publish(&topic, &payload, 1, 7));
    let got = peer
        .read_until("PUBACK 7", STEP, |p| {
            p.is(PacketType::PubAck) && p.pkid() == Some(7)
        })
        .map_err(|e| format!("{e}\n{}", host.report()));
    assert!(got.is_ok(), "{got:?}");
    let data = host.expect_value("all", "data");
    assert_eq!(data["value"].as_str().map(str::len), Some(4 << 20));
    let t = host.expect_value("all", "topic");
    assert_eq!(t["value"], json!(topic));
    assert_eq!(
        peer.probe("probe/x", b"still here", STEP),
        Reaction::CarriedOn
    );
    peer.close();
    assert_eq!(host.quit(), Some(0));
}

#[test]
fn an_invalid_utf8_topic_closes_the_connection_with_a_clear_reason() {
    let (mut broker, mut host) = catch_all(&[], StationConfig::new("all", ".*").inputs());
    let mut peer = connected(&mut broker);
    host.wait_connected();
    peer.send(&wire::malformed_publish(b"bad/\xff\xfe/topic", b"x", 1, 3));
    let reason = expect_closed_with(&mut host, &mut peer, "UTF-8");
    assert!(reason.contains("malformed packet"), "{reason}");
    drop(peer);
    // U+0000 is valid UTF-8 but forbidden in a topic (MQTT-1.5.3-2); so is a wildcard in a
    // published topic (MQTT-3.3.2-2).
    let mut peer = connected(&mut broker);
    peer.send(&wire::malformed_publish(b"bad/\x00", b"x", 1, 4));
    expect_closed_with(&mut host, &mut peer, "malformed packet");
    drop(peer);
    let mut peer = connected(&mut broker);
    peer.send(&wire::malformed_publish(b"bad/#", b"x", 0, 0));
    expect_closed_with(&mut host, &mut peer, "malformed packet");
    drop(peer);
    reconnects_and_receives(&mut broker, &mut host, "all");
    assert_eq!(host.quit(), Some(0));
}

#[test]
fn deeply_nested_json_makes_json_tags_invalid_with_a_warning() {
    let station = StationConfig::new("j", ".*")
        .inputs()
        .tag("a", "JA=a", "Ai");
    let (mut broker, mut host) = catch_all(&[("payload_type", "json")], station);
    let mut peer = connected(&mut broker);
    host.wait_connected();
    // 100,000 levels: far beyond serde_json's recursion limit of 128.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    peer.send(&wire::publish("deep", deep.as_bytes(), 1, 11));
    peer.read_until("PUBACK 11", STEP, |p| {
        p.is(PacketType::PubAck) && p.pkid() == Some(11)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", host.report()));
    let a = host.expect_value("j", "a");
    assert_eq!(a["valid"], json!(false), "{a}");
    // A sane payload right after still works.
    peer.send(&wire::publish("flat", br#"{"a": 42}"#, 1, 12));
    host.expect_value_eq("j", "a", 42);
    assert_eq!(host.quit(), Some(0));
    let stderr = host.stderr();
    assert!(
        stderr.contains("recursion limit"),
        "the warning must say why\n{}",
        host.report()
    );
    assert!(!stderr.contains("panicked"));
    // The warning does not repeat the payload.
    assert!(stderr.len() < 100_000, "stderr is {} bytes", stderr.len());
}
