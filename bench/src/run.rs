//! The scenarios, their table and results.json.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use mqtt_line_abi::*;
use serde_json::{json, Value as Json};

use crate::broker::Mosquitto;
use crate::external::{self, Tool};
use crate::host::{HostLine, Probe, ProbeKind, StationDef, TagDef, WriteLoad, SLOTS};
use crate::plugin::Plugin;
use crate::stats::{
    peak_rss_mb, percentiles_ms, percentiles_us_ms, process_cpu_s, reset_peak_rss, wall_ns,
};
use crate::wire::{self, Plan, StampFormat, Template};

#[derive(Args)]
pub struct BenchArgs {
    /// Scenarios to run, comma-separated (1 text, 2 LoRaWAN JSON and a 100-item Kepware array,
    /// 3 10,000 stations, 4 writes, 5 drain, 6 raw source, 7 start-up of 1,000 and 10,000
    /// stations, 8 Sparkplug B NDATA, 9 Sparkplug edge node NDATA out, 10 a redundant line
    /// receiving every message twice against a single line receiving it once).
    #[arg(long, default_value = "1,2,3,4,5,6,7,8,9,10", value_delimiter = ',')]
    scenarios: Vec<u32>,
    /// Multiplies every message count (0.1 for a quick look).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Skip mosquitto_sub, paho-mqtt and mqtt.js.
    #[arg(long)]
    no_external: bool,
    /// Skip the station-count sweep of scenario 3 (10 .. 10,000 stations).
    #[arg(long)]
    no_sweep: bool,
    /// Longest time one client may take for one scenario, in seconds.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
    /// Scenario 4: how many messages the flood may run ahead of the host (closed loop). A
    /// write's acknowledgement queues behind this backlog in the broker.
    #[arg(long, default_value_t = 500)]
    flood_window: u64,
    /// Where results.json and the broker's scratch directory go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The mosquitto broker binary.
    #[arg(long, default_value = "mosquitto")]
    mosquitto: PathBuf,
    /// The ~1 KB LoRaWAN uplink of scenario 2.
    #[arg(long)]
    payload: Option<PathBuf>,
    /// Folder of paho_sub.py, mqttjs_sub.js and node_modules [default: bench/scripts].
    #[arg(long)]
    scripts: Option<PathBuf>,
    /// Also run our line with `protocol_version = 5` on the floods (scenarios 1, 2 and 6): rows
    /// "mqtt-line v5" beside the 3.1.1 ones.
    #[arg(long)]
    mqtt5: bool,
}

/// One line of the table.
struct Row {
    scenario: String,
    client: String,
    messages: u64,
    rate: f64,
    lat_ms: Option<[f64; 3]>,
    cpu_s: f64,
    pub_cpu_s: Option<f64>,
    rss_mb: f64,
    note: String,
}

impl Row {
    fn json(&self) -> Json {
        json!({
            "scenario": self.scenario, "client": self.client, "messages": self.messages,
            "msg_per_s": self.rate, "lat_ms": self.lat_ms, "cpu_s": self.cpu_s,
            "publisher_cpu_s": self.pub_cpu_s, "peak_rss_mb": self.rss_mb, "note": self.note,
        })
    }
}

struct Ctx<'p> {
    plugin: &'p Plugin,
    broker: Mosquitto,
    args: BenchArgs,
    work: PathBuf,
    scripts: PathBuf,
    tools: Vec<Tool>,
    rows: Vec<Row>,
    sweep: Vec<Json>,
    startup: Vec<Json>,
    /// Scenario 10's CPU per message, single and redundant, and their ratio.
    redundant: Vec<Json>,
    limit: Duration,
    run: u32,
    /// Our line speaks MQTT 5 in the run under way (`--mqtt5`).
    v5: bool,
}

/// What the load of one scenario looks like, for our line and for the other subscribers.
struct Load {
    key: &'static str,
    stations: Vec<StationDef>,
    ext_stations: Vec<(String, bool)>,
    templates: Arc<[Template]>,
    stamp: StampFormat,
    json: bool,
    /// Our JA= path of the time field, and the scripts' form of it.
    time_field: Option<(&'static str, Json)>,
    paths: Vec<Json>,
    /// More line parameters of this load (payload settings beyond `json` and `time_field`).
    params: Vec<(&'static str, &'static str)>,
    /// The scripts' time path when our time comes from `params` rather than `time_field`.
    script_time: Option<Json>,
    probe: Probe,
    count: u64,
    /// The line's payload type is Sparkplug B.
    sparkplug: bool,
}

impl Load {
    fn latency_mode(&self) -> &'static str {
        match self.stamp {
            StampFormat::Ns19 => "text_ns",
            StampFormat::Iso30 => "iso",
            StampFormat::Ms13 => "ms",
            StampFormat::VarintMs10 => "spb_ms",
        }
    }
}

fn tag(station: u64, slot: u64, address: &str, ty: MqlValueType) -> TagDef {
    TagDef {
        id: station * SLOTS + slot,
        address: address.to_string(),
        ty,
        default: None,
    }
}

/// IN_TOPIC, IN_DATA (TxtI, the probe of text loads) and IN_ID in slots 1, 2, 3.
fn in_tags(station: u64) -> Vec<TagDef> {
    vec![
        tag(station, 1, "IN_TOPIC", MQL_TYPE_TXTI),
        tag(station, 2, "IN_DATA", MQL_TYPE_TXTI),
        tag(station, 3, "IN_ID", MQL_TYPE_CI),
    ]
}

impl Ctx<'_> {
    fn scaled(&self, n: u64) -> u64 {
        ((n as f64 * self.args.scale) as u64).max(100)
    }

    fn next_id(&mut self, what: &str) -> String {
        self.run += 1;
        format!("bench-{}-{what}-{}", std::process::id(), self.run)
    }

    fn line_params(
        &self,
        port: u16,
        filter: &str,
        client: &str,
        load: &Load,
    ) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("host", "127.0.0.1".to_string()),
            ("port", port.to_string()),
            ("topic_filter", filter.to_string()),
            ("subscribe_qos", "QoS_1".to_string()),
            ("client_id", client.to_string()),
            ("clean_session", "YES".to_string()),
        ];
        if load.json {
            p.push(("payload_type", "JSON".into()));
        }
        if load.sparkplug {
            p.push(("payload_type", "Sparkplug B".into()));
        }
        if self.v5 {
            p.push(("protocol_version", "5".into()));
        }
        if let Some((field, _)) = &load.time_field {
            p.push(("time_field_name", field.to_string()));
            p.push(("time_mask", "ISO8601".into()));
        }
        p.extend(load.params.iter().map(|&(k, v)| (k, v.to_string())));
        p
    }

    fn plan(&self, load: &Load, window: Option<(Arc<AtomicU64>, u64)>) -> Plan {
        Plan {
            templates: load.templates.clone(),
            stamp: load.stamp,
            count: load.count,
            window,
            limit: self.limit,
            stamp_every: wire::STAMP_EVERY,
        }
    }

    fn push(&mut self, row: Row) {
        eprintln!("bench: {}", format_row(&row));
        self.rows.push(row);
    }

    /// Our line on `load`, fed by the broker (`raw` false) or by a raw source.
    /// The load's station definitions are dropped once configured: they are the host's data,
    /// not the plugin's, and would count in the peak RSS.
    fn ours(
        &mut self,
        scenario: &str,
        load: &mut Load,
        filter: &str,
        raw: bool,
    ) -> Result<f64, String> {
        let client = self.next_id(load.key);
        let source = if raw {
            Some(wire::raw_source(self.plan(load, None)).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let port = source.as_ref().map_or(self.broker.port, |s| s.port);
        let params = self.line_params(port, filter, &client, load);
        let built = std::time::Instant::now();
        let mut line = HostLine::build(self.plugin, &params, &load.stations)?;
        let stations = load.stations.len();
        load.stations = Vec::new();
        let build_s = built.elapsed().as_secs_f64();
        // The raw source streams right after SUBACK: values would arrive while waiting.
        if !raw {
            line.wait_connected(Duration::from_secs(10))?;
        }
        let build_rss = peak_rss_mb();
        trim_and_reset_peak();
        let cpu0 = process_cpu_s();
        let publisher = (!raw).then(|| {
            let id = format!("{client}-pub");
            wire::publish(self.broker.port, id, self.plan(load, None))
        });
        let got = line.collect(load.probe, load.count, self.limit, None, None)?;
        // CPU until the last value: taking the line down (freeing thousands of stations in the
        // sweep) is no cost of a message; it is noted beside the row instead.
        let cpu = process_cpu_s() - cpu0;
        drop(line);
        let teardown_s = process_cpu_s() - cpu0 - cpu;
        let generator = match (publisher, source) {
            (Some(p), _) => p.join(),
            (None, Some(s)) => s.handle.join(),
            _ => unreachable!(),
        }
        .map_err(|_| "load generator panicked".to_string())?;
        if let Some(e) = generator.error {
            return Err(e);
        }
        let rss = peak_rss_mb();
        let mut lat = got.lat_us;
        let secs = (got.last_ns - generator.start_ns) as f64 / 1e9;
        let rate = got.count as f64 / secs.max(1e-9);
        self.push(Row {
            scenario: scenario.into(),
            client: if self.v5 { "mqtt-line v5" } else { "mqtt-line" }.into(),
            messages: got.count,
            rate,
            lat_ms: percentiles_us_ms(&mut lat),
            cpu_s: cpu - generator.cpu_s,
            pub_cpu_s: Some(generator.cpu_s),
            rss_mb: rss,
            note: {
                let mut n = String::new();
                if got.count < load.count {
                    let _ = write!(n, "{} of {} in time; ", got.count, load.count);
                }
                if stations > 100 {
                    let _ = write!(
                        n,
                        "configuring {stations} stations took {build_s:.1} s, peak RSS then \
                         {build_rss:.1} MB; taking the line down {teardown_s:.2} CPU s (not counted)"
                    );
                }
                n
            },
        });
        Ok(rate)
    }

    fn ext_job(&mut self, tool: Tool, load: &Load, port: u16, filter: &str) -> external::Job {
        external::Job {
            port,
            filter: filter.into(),
            qos: 1,
            count: load.count,
            client_id: self
                .next_id(&format!("{}-{tool:?}", load.key))
                .to_lowercase(),
            clean: true,
            session_only: false,
            stations: load.ext_stations.clone(),
            paths: load.paths.clone(),
            time_path: load
                .time_field
                .as_ref()
                .map(|(_, p)| p.clone())
                .or_else(|| load.script_time.clone()),
            latency: load.latency_mode(),
            limit: self.limit,
        }
    }

    /// The other subscribers on the same load.
    fn theirs(&mut self, scenario: &str, load: &Load, filter: &str, raw: bool) {
        for tool in self.tools.clone() {
            let r = (|| -> Result<Row, String> {
                let source = if raw {
                    Some(wire::raw_source(self.plan(load, None)).map_err(|e| e.to_string())?)
                } else {
                    None
                };
                let port = source.as_ref().map_or(self.broker.port, |s| s.port);
                let job = self.ext_job(tool, load, port, filter);
                let mut running = external::spawn(tool, &job, &self.scripts, &self.work)?;
                if !raw {
                    running.wait_ready()?;
                }
                let publisher = (!raw).then(|| {
                    wire::publish(
                        self.broker.port,
                        format!("{}-pub", job.client_id),
                        self.plan(load, None),
                    )
                });
                let out = running.finish();
                let generator = match (publisher, source) {
                    (Some(p), _) => p.join(),
                    (None, Some(s)) => s.handle.join(),
                    _ => unreachable!(),
                }
                .map_err(|_| "load generator panicked".to_string())?;
                let secs = (out.last_ns - generator.start_ns) as f64 / 1e9;
                Ok(Row {
                    scenario: scenario.into(),
                    client: tool.name().into(),
                    messages: out.count,
                    rate: out.count as f64 / secs.max(1e-9),
                    lat_ms: out.lat_ms,
                    cpu_s: out.end.cpu_s,
                    pub_cpu_s: Some(generator.cpu_s),
                    rss_mb: out.end.peak_rss_mb,
                    note: out.note,
                })
            })();
            match r {
                Ok(row) => self.push(row),
                Err(e) => eprintln!("bench: {scenario} with {}: {e}", tool.name()),
            }
        }
    }

    fn flood(&mut self, scenario: &str, load: &mut Load, raw: bool) -> Result<f64, String> {
        let filter = format!("bench/{}/#", load.key);
        let v5_too = self.args.mqtt5;
        // `ours` drops the stations once configured: the MQTT 5 run gets its own copy.
        let stations = v5_too.then(|| load.stations.clone());
        let rate = self.ours(scenario, load, &filter, raw)?;
        if let Some(stations) = stations {
            load.stations = stations;
            self.v5 = true;
            let v5 = self.ours(scenario, load, &filter, raw);
            self.v5 = false;
            if let Err(e) = v5 {
                eprintln!("bench: {scenario} with MQTT 5: {e}");
            }
        }
        self.theirs(scenario, load, &filter, raw);
        Ok(rate)
    }
}

/// Returns freed heap to the system, then restarts the peak RSS from what is in use, so a
/// scenario's peak is not an earlier scenario's leftover.
fn trim_and_reset_peak() {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe { libc::malloc_trim(0) };
    reset_peak_rss();
}

fn format_row(r: &Row) -> String {
    let lat = r
        .lat_ms
        .map_or("      -       -       -".to_string(), |[a, b, c]| {
            format!("{a:7.2} {b:7.2} {c:7.1}")
        });
    format!(
        "{:<24} {:<19} {:>9} {:>10.0} {} {:>7.2} {:>7} {:>7.1}  {}",
        r.scenario,
        r.client,
        r.messages,
        r.rate,
        lat,
        r.cpu_s,
        r.pub_cpu_s.map_or("-".into(), |c| format!("{c:.2}")),
        r.rss_mb,
        r.note
    )
}

// ---- the loads ----

fn text_load(key: &'static str, count: u64, qos: u8) -> Load {
    let topic = format!("bench/{key}/dev1");
    let payload = StampFormat::Ns19.placeholder();
    Load {
        key,
        stations: vec![StationDef {
            id: 1,
            address: topic.clone(),
            tags: in_tags(1),
        }],
        ext_stations: vec![(topic.clone(), false)],
        templates: vec![Template::publish(&topic, payload, StampFormat::Ns19, qos)].into(),
        stamp: StampFormat::Ns19,
        json: false,
        time_field: None,
        paths: vec![],
        params: vec![],
        script_time: None,
        probe: Probe {
            kind: ProbeKind::TextNs,
            slot: 2,
        },
        count,
        sparkplug: false,
    }
}

/// The 8 JA= tags of the LoRaWAN uplink (ChirpStack v4) and the same paths for the scripts.
const LORA_TAGS: [(&str, MqlValueType, &str); 8] = [
    (
        "JA=deduplicationId",
        MQL_TYPE_TXTI,
        r#"["deduplicationId"]"#,
    ),
    (
        "JA=deviceInfo.devEui",
        MQL_TYPE_TXTI,
        r#"["deviceInfo","devEui"]"#,
    ),
    ("JA=devAddr", MQL_TYPE_TXTI, r#"["devAddr"]"#),
    ("JA=dr", MQL_TYPE_CI, r#"["dr"]"#),
    ("JA=fPort", MQL_TYPE_CI, r#"["fPort"]"#),
    ("JA=rxInfo[1].rssi", MQL_TYPE_AI, r#"["rxInfo",0,"rssi"]"#),
    ("JA=rxInfo[1].snr", MQL_TYPE_AI, r#"["rxInfo",0,"snr"]"#),
    (
        "JA=txInfo.modulation.lora.spreadingFactor",
        MQL_TYPE_CI,
        r#"["txInfo","modulation","lora","spreadingFactor"]"#,
    ),
];

fn lora_load(key: &'static str, count: u64, uplink: &str) -> Result<Load, String> {
    // The uplink's own "time" value becomes the send-time placeholder.
    let start = uplink
        .find("\"time\"")
        .and_then(|i| uplink[i + 6..].find('"').map(|j| i + 6 + j + 1))
        .ok_or("the uplink has no \"time\" field")?;
    let end = start + uplink[start..].find('"').ok_or("unterminated \"time\"")?;
    let payload = format!(
        "{}{}{}",
        &uplink[..start],
        StampFormat::Iso30.placeholder(),
        &uplink[end..]
    );
    let topic = format!("bench/{key}/application/1/device/0101010101010101/event/up");
    let tags = LORA_TAGS
        .iter()
        .enumerate()
        .map(|(i, (a, t, _))| tag(1, i as u64 + 1, a, *t))
        .collect();
    Ok(Load {
        key,
        stations: vec![StationDef {
            id: 1,
            address: topic.clone(),
            tags,
        }],
        ext_stations: vec![(topic.clone(), false)],
        templates: vec![Template::publish(&topic, &payload, StampFormat::Iso30, 0)].into(),
        stamp: StampFormat::Iso30,
        json: true,
        time_field: Some(("time", json!(["time"]))),
        paths: LORA_TAGS
            .iter()
            .map(|(_, _, p)| serde_json::from_str(p).unwrap_or(Json::Null))
            .collect(),
        params: vec![],
        script_time: None,
        probe: Probe {
            kind: ProbeKind::Stamp,
            slot: 8,
        },
        count,
        sparkplug: false,
    })
}

/// How many items the Kepware message of scenario 2 carries.
const KEPWARE_ITEMS: u64 = 100;

/// Scenario 2's second row: a Kepware IoT Gateway message of 100 items (~7 KB) in reverse tag
/// order, read by 100 tags that each select their item by `id`, with the item's `t` as time
/// (UNIXMS) and `q` as validity. The probe is the last tag, whose item's `t` is the send time in
/// milliseconds (so latencies are rounded up by up to 1 ms).
fn kepware_load(key: &'static str, count: u64) -> Load {
    let topic = format!("bench/{key}/iotgateway");
    let name = |k: u64| format!("Channel1.Device1.Tag{k:03}");
    let items: Vec<String> = (1..=KEPWARE_ITEMS)
        .rev()
        .map(|k| {
            let t = if k == KEPWARE_ITEMS {
                StampFormat::Ms13.placeholder().to_string()
            } else {
                "1700000000000".to_string()
            };
            format!(r#"{{"id":"{}","v":{k}.5,"q":true,"t":{t}}}"#, name(k))
        })
        .collect();
    let payload = format!(
        r#"{{"timestamp":1700000000000,"values":[{}]}}"#,
        items.join(",")
    );
    // The probe (the last tag) in slot 1; the others in slot 0, which nothing counts.
    let tags = (1..=KEPWARE_ITEMS)
        .map(|k| TagDef {
            id: if k == KEPWARE_ITEMS {
                SLOTS + 1
            } else {
                (100 + k) * SLOTS
            },
            address: format!(r#"JA=values[id="{}"].v"#, name(k)),
            ty: MQL_TYPE_AI,
            default: None,
        })
        .collect();
    Load {
        key,
        stations: vec![StationDef {
            id: 1,
            address: topic.clone(),
            tags,
        }],
        ext_stations: vec![(topic.clone(), false)],
        templates: vec![Template::publish(&topic, &payload, StampFormat::Ms13, 0)].into(),
        stamp: StampFormat::Ms13,
        json: true,
        time_field: None,
        // The scripts read the same 300 fields with a generic path lookup: an array step picks
        // the element by `id` as a linear search (what a JSON-path library does).
        paths: (1..=KEPWARE_ITEMS)
            .flat_map(|k| {
                ["v", "t", "q"].map(|f| json!(["values", {"key": "id", "value": name(k)}, f]))
            })
            .collect(),
        script_time: Some(json!([
            "values",
            {"key": "id", "value": name(KEPWARE_ITEMS)},
            "t"
        ])),
        params: vec![
            ("time_field_name", "timestamp"),
            ("time_mask", "UNIXMS"),
            ("item_time_field", "t"),
            ("quality_field", "q"),
            ("valid_quality", "true"),
        ],
        probe: Probe {
            kind: ProbeKind::Stamp,
            slot: 1,
        },
        count,
        sparkplug: false,
    }
}

/// A small JSON reading: 3 values and a time stamp (~70 bytes).
fn small_json_payload() -> String {
    format!(
        r#"{{"time":"{}","temp":21.5,"hum":40,"ok":1}}"#,
        StampFormat::Iso30.placeholder()
    )
}

/// The JSON job of scenario 6: 3 JA= tags and the time stamp, one station.
fn raw_load(key: &'static str, count: u64) -> Load {
    let topic = format!("bench/{key}/sensor/1");
    let tags = vec![
        tag(1, 1, "JA=temp", MQL_TYPE_AI),
        tag(1, 2, "JA=hum", MQL_TYPE_CI),
        tag(1, 3, "JA=ok", MQL_TYPE_CI),
    ];
    Load {
        key,
        stations: vec![StationDef {
            id: 1,
            address: topic.clone(),
            tags,
        }],
        ext_stations: vec![(topic.clone(), false)],
        templates: vec![Template::publish(
            &topic,
            &small_json_payload(),
            StampFormat::Iso30,
            0,
        )]
        .into(),
        stamp: StampFormat::Iso30,
        json: true,
        time_field: Some(("time", json!(["time"]))),
        paths: vec![json!(["temp"]), json!(["hum"]), json!(["ok"])],
        params: vec![],
        script_time: None,
        probe: Probe {
            kind: ProbeKind::Stamp,
            slot: 3,
        },
        count,
        sparkplug: false,
    }
}

/// `stations` stations, half exact topics and half regular expressions, 10 tags each
/// (IN_TOPIC, IN_DATA, IN_ID and 7 JA=), messages spread round-robin over all of them.
fn many_load(key: &'static str, stations: u64, count: u64) -> Load {
    const JA: [(&str, MqlValueType, &str); 7] = [
        ("JA=time", MQL_TYPE_TXTI, r#"["time"]"#),
        ("JA=temp", MQL_TYPE_AI, r#"["temp"]"#),
        ("JA=hum", MQL_TYPE_CI, r#"["hum"]"#),
        ("JA=ok", MQL_TYPE_CI, r#"["ok"]"#),
        ("JA=temp", MQL_TYPE_TXTI, r#"["temp"]"#),
        ("JA=hum", MQL_TYPE_AI, r#"["hum"]"#),
        ("JA=ok", MQL_TYPE_DI, r#"["ok"]"#),
    ];
    let payload = small_json_payload();
    let mut defs = Vec::with_capacity(stations as usize);
    let mut ext = Vec::new();
    let mut templates = Vec::new();
    for s in 0..stations {
        let id = s + 1;
        let (address, topic, regex) = if s % 2 == 0 {
            let t = format!("bench/{key}/e/{s}/up");
            (t.clone(), t, false)
        } else {
            (
                format!("bench/{key}/r/{s}/[^/]+"),
                format!("bench/{key}/r/{s}/up"),
                true,
            )
        };
        let mut tags = vec![
            tag(id, 1, "IN_TOPIC", MQL_TYPE_TXTI),
            tag(id, 2, "IN_DATA", MQL_TYPE_TXTI),
        ];
        for (k, (a, t, _)) in JA.iter().enumerate() {
            tags.push(tag(id, 4 + k as u64, a, *t));
        }
        // IN_ID comes last among a message's values; it carries the payload's time stamp.
        tags.push(tag(id, 3, "IN_ID", MQL_TYPE_CI));
        defs.push(StationDef {
            id,
            address: address.clone(),
            tags,
        });
        ext.push((address, regex));
        templates.push(Template::publish(&topic, &payload, StampFormat::Iso30, 0));
    }
    Load {
        key,
        stations: defs,
        ext_stations: ext,
        templates: templates.into(),
        stamp: StampFormat::Iso30,
        json: true,
        time_field: Some(("time", json!(["time"]))),
        paths: JA
            .iter()
            .map(|(_, _, p)| serde_json::from_str(p).unwrap_or(Json::Null))
            .collect(),
        params: vec![],
        script_time: None,
        probe: Probe {
            kind: ProbeKind::Stamp,
            slot: 3,
        },
        count,
        sparkplug: false,
    }
}

/// Scenario 8: one Sparkplug B edge node's NDATA, 20 Double metrics by alias. The NBIRTH
/// (names, aliases, types) is retained, so every subscriber gets it first; 256 templates carry
/// seq 1, 2, .. 255, 0 in turn, the seq the messages need after the birth's 0.
const SPB_METRICS: u64 = 20;
const SPB_NODE: &str = "bench/node1";

/// A protobuf field key and a varint: the few encodings the scenario's payloads need. (The
/// benchmark does not link the core; these payloads are fixed, so they are written out here.)
fn pb_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    pb_varint(out, field << 3 | 2);
    pb_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A metric: name (1) when given, alias (2), datatype (4) when given, double_value (13) or
/// long_value (11).
fn pb_metric(
    name: Option<&str>,
    alias: Option<u64>,
    datatype: Option<u64>,
    value: Result<f64, u64>,
) -> Vec<u8> {
    let mut m = Vec::new();
    if let Some(n) = name {
        pb_bytes(&mut m, 1, n.as_bytes());
    }
    if let Some(a) = alias {
        pb_varint(&mut m, 2 << 3);
        pb_varint(&mut m, a);
    }
    if let Some(t) = datatype {
        pb_varint(&mut m, 4 << 3);
        pb_varint(&mut m, t);
    }
    match value {
        Ok(d) => {
            pb_varint(&mut m, 13 << 3 | 1);
            m.extend_from_slice(&d.to_le_bytes());
        }
        Err(l) => {
            pb_varint(&mut m, 11 << 3);
            pb_varint(&mut m, l);
        }
    }
    m
}

/// The retained NBIRTH: seq 0, bdSeq 0, metrics `M/1` .. `M/20` (Double, aliases 1 .. 20).
fn spb_birth() -> Vec<u8> {
    let mut p = Vec::new();
    pb_varint(&mut p, 1 << 3);
    pb_varint(&mut p, wall_ns() as u64 / 1_000_000);
    pb_bytes(&mut p, 2, &pb_metric(Some("bdSeq"), None, Some(4), Err(0)));
    for k in 1..=SPB_METRICS {
        pb_bytes(
            &mut p,
            2,
            &pb_metric(Some(&format!("M/{k}")), Some(k), Some(10), Ok(0.0)),
        );
    }
    pb_varint(&mut p, 3 << 3);
    pb_varint(&mut p, 0);
    p
}

/// The NDATA of one seq: the time stamp placeholder first, then 20 metrics by alias only.
fn spb_data(seq: u64) -> (Vec<u8>, usize) {
    let mut p = Vec::new();
    pb_varint(&mut p, 1 << 3);
    let stamp_at = p.len();
    p.extend_from_slice(&[0x80; 9]);
    p.push(0);
    for k in 1..=SPB_METRICS {
        pb_bytes(
            &mut p,
            2,
            &pb_metric(None, Some(k), None, Ok(k as f64 + 0.5)),
        );
    }
    pb_varint(&mut p, 3 << 3);
    pb_varint(&mut p, seq);
    (p, stamp_at)
}

fn sparkplug_load(key: &'static str, count: u64) -> Load {
    let topic = "spBv1.0/bench/NDATA/node1";
    // Tag ids: slot 1 for metrics 1 .. 19, slot 2 (the probe, the message's last value) for 20.
    let tags = (1..=SPB_METRICS)
        .map(|k| TagDef {
            id: if k < SPB_METRICS {
                k * SLOTS + 1
            } else {
                k * SLOTS + 2
            },
            address: format!("SPB=M/{k}"),
            ty: MQL_TYPE_AI,
            default: None,
        })
        .collect();
    let templates: Vec<Template> = (0..256u64)
        .map(|i| {
            let (payload, stamp_at) = spb_data((i + 1) % 256);
            Template::publish_bytes(topic, &payload, stamp_at, 1)
        })
        .collect();
    Load {
        key,
        stations: vec![StationDef {
            id: 1,
            address: SPB_NODE.into(),
            tags,
        }],
        ext_stations: vec![(SPB_NODE.into(), false)],
        templates: templates.into(),
        stamp: StampFormat::VarintMs10,
        json: false,
        time_field: None,
        paths: vec![],
        params: vec![],
        script_time: None,
        probe: Probe {
            kind: ProbeKind::Stamp,
            slot: 2,
        },
        count,
        sparkplug: true,
    }
}

// ---- scenarios ----

fn scenario_writes(ctx: &mut Ctx, count: u64) -> Result<(), String> {
    // A broker of its own with TCP_NODELAY: with mosquitto's default (Nagle on), its small
    // segments wait for the line's delayed ACK whenever the closed-loop flood pauses, and a
    // QoS 1/2 write then takes some 40 ms (measured: p50 44 ms, inbound down to 12k msg/s).
    let broker = Mosquitto::start(&ctx.args.mosquitto, &ctx.work, true)?;
    let port = broker.port;
    for qos in 0..=2u8 {
        let mut load = text_load("s4", count, 0);
        load.stations[0].tags.push(TagDef {
            id: SLOTS + 10,
            address: "OUT_TOPIC".into(),
            ty: MQL_TYPE_TXTO,
            default: Some("bench/s4-out/cmd".into()),
        });
        load.stations[0].tags.push(TagDef {
            id: SLOTS + 11,
            address: "OUT_VALUE".into(),
            ty: MQL_TYPE_TXTO,
            default: None,
        });
        let client = ctx.next_id("s4");
        let filter = "bench/s4/#";
        let mut params = ctx.line_params(port, filter, &client, &load);
        params.push(("publish_qos", format!("QoS_{qos}")));
        let mut line = HostLine::build(ctx.plugin, &params, &load.stations)?;
        line.wait_connected(Duration::from_secs(10))?;
        trim_and_reset_peak();
        let cpu0 = process_cpu_s();
        // Closed loop: the flood runs at full speed but stays at most `flood_window` messages
        // ahead of the host; an open-loop flood would queue without bound in the broker, and a
        // PUBACK would wait behind all of it.
        let seen = Arc::new(AtomicU64::new(0));
        let publisher = wire::publish(
            port,
            format!("{client}-pub"),
            ctx.plan(&load, Some((seen.clone(), ctx.args.flood_window))),
        );
        let mut writes = WriteLoad::new(SLOTS + 11, Duration::from_millis(1));
        let got = line.collect(
            load.probe,
            load.count,
            ctx.limit,
            Some(&seen),
            Some(&mut writes),
        )?;
        drop(line);
        let generator = publisher.join().map_err(|_| "publisher panicked")?;
        let cpu = process_cpu_s() - cpu0;
        if let Some(e) = generator.error {
            return Err(e);
        }
        let secs = (got.last_ns - generator.start_ns) as f64 / 1e9;
        let inbound = got.count as f64 / secs.max(1e-9);
        let rss = peak_rss_mb();
        let mut inbound_lat = got.lat_us;
        let inbound_p = percentiles_us_ms(&mut inbound_lat).unwrap_or([0.0; 3]);
        let done = writes.lat_ns.len() as u64;
        ctx.push(Row {
            scenario: format!("4 writes QoS {qos}"),
            client: "mqtt-line".into(),
            messages: done,
            rate: inbound,
            lat_ms: percentiles_ms(&mut writes.lat_ns),
            cpu_s: cpu - generator.cpu_s,
            pub_cpu_s: Some(generator.cpu_s),
            rss_mb: rss,
            note: format!(
                "writes: count/latency; msg/s = inbound flood ({} msgs, p99 {:.1} ms){}",
                got.count,
                inbound_p[1],
                if writes.failed > 0 {
                    format!(", {} writes failed", writes.failed)
                } else {
                    String::new()
                }
            ),
        });
    }
    Ok(())
}

/// Scenario 8: Sparkplug B NDATA (20 metrics by alias) into our line, and into a Tahu-based
/// Node consumer and a pysparkplug-based Python one, side by side.
fn scenario_sparkplug(ctx: &mut Ctx, count: u64) -> Result<(), String> {
    let birth_topic = "spBv1.0/bench/NBIRTH/node1";
    let id = ctx.next_id("spb-birth");
    wire::publish_retained(ctx.broker.port, &id, birth_topic, &spb_birth())
        .map_err(|e| format!("cannot publish the NBIRTH: {e}"))?;
    let mut load = sparkplug_load("spb", count);
    let generic = std::mem::take(&mut ctx.tools);
    if !ctx.args.no_external {
        for t in Tool::SPARKPLUG {
            match t.check(&ctx.scripts) {
                Ok(()) => ctx.tools.push(t),
                Err(why) => eprintln!("bench: {} skipped: {why}", t.name()),
            }
        }
    }
    let filter = "spBv1.0/bench/#";
    let r = ctx.ours("8 Sparkplug NDATA 20", &mut load, filter, false);
    ctx.theirs("8 Sparkplug NDATA 20", &load, filter, false);
    ctx.tools = generic;
    let id = ctx.next_id("spb-clear");
    wire::publish_retained(ctx.broker.port, &id, birth_topic, &[])
        .map_err(|e| format!("cannot clear the NBIRTH: {e}"))?;
    r.map(|_| ())
}

/// How many output metrics the edge node of scenario 9 has.
const EDGE_METRICS: u64 = 20;

/// Scenario 9: our line as a Sparkplug edge node publishing NDATA, and Eclipse Tahu's JS edge
/// client (`sparkplug-client`) publishing the same, on one broker in one run. The edge node has
/// 20 Ao tags `SPB=m1` .. `SPB=m20` (20 Double metrics in its NBIRTH); the host writes them in
/// turn, each write one NDATA carrying that metric by alias with the write's time (what
/// `line_write` does: the line does not batch writes), at most 64 writes outstanding. msg/s is
/// NDATA per second until the last write is done; CPU is the bench process (host and plugin)
/// while writing. Tahu publishes the same NDATA (one metric by alias each, in turn), and, in a
/// second row, NDATA carrying all 20 metrics (a twentieth as many, the same metric updates).
fn scenario_edge(ctx: &mut Ctx, count: u64) -> Result<(), String> {
    let scenario = "9 edge NDATA 20 metrics";
    let client = ctx.next_id("edge");
    let station = StationDef {
        id: 1,
        address: "bench9/edge1".into(),
        tags: (1..=EDGE_METRICS)
            .map(|m| TagDef {
                id: SLOTS + m,
                address: format!("SPB=m{m}"),
                ty: MQL_TYPE_AO,
                default: None,
            })
            .collect(),
    };
    let tags: Vec<u64> = station.tags.iter().map(|t| t.id).collect();
    let params = vec![
        ("host", "127.0.0.1".to_string()),
        ("port", ctx.broker.port.to_string()),
        ("client_id", client.clone()),
        ("payload_type", "Sparkplug Edge Node".to_string()),
    ];
    let mut line = HostLine::build(ctx.plugin, &params, &[station])?;
    line.wait_connected(Duration::from_secs(10))?;
    // Born when a write is published rather than stored: before that, writes go to the store.
    let born_by = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let before = line.stats()?.edge_stored;
        line.write_flood(&tags[..1], 1, 1, Duration::from_secs(5))?;
        if line.stats()?.edge_stored == before {
            break;
        }
        if std::time::Instant::now() > born_by {
            return Err("the edge node was not born in 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    trim_and_reset_peak();
    let cpu0 = process_cpu_s();
    let start_ns = wall_ns();
    let (ok, failed, last_ns) = line.write_flood(&tags, count, 64, ctx.limit)?;
    let cpu = process_cpu_s() - cpu0;
    let stats = line.stats()?;
    drop(line);
    let rate = ok as f64 / ((last_ns - start_ns) as f64 / 1e9).max(1e-9);
    let mut note = format!(
        "1 metric/NDATA, {:.2} us CPU/NDATA",
        cpu * 1e6 / ok.max(1) as f64
    );
    if failed > 0 || ok < count {
        let _ = write!(note, "; {ok} of {count} done, {failed} failed");
    }
    if stats.edge_stored > 0 {
        let _ = write!(note, "; {} stored", stats.edge_stored);
    }
    ctx.push(Row {
        scenario: scenario.into(),
        client: "mqtt-line edge".into(),
        messages: ok,
        rate,
        lat_ms: None,
        cpu_s: cpu,
        pub_cpu_s: None,
        rss_mb: peak_rss_mb(),
        note,
    });
    if ctx.args.no_external {
        return Ok(());
    }
    if !ctx.scripts.join("node_modules/sparkplug-client").is_dir() {
        eprintln!(
            "bench: Tahu JS edge skipped: node_modules/sparkplug-client not installed (cd {} && npm ci)",
            ctx.scripts.display()
        );
        return Ok(());
    }
    for (mode, n, per) in [
        ("single", count, 1),
        ("batch", count / EDGE_METRICS, EDGE_METRICS),
    ] {
        match tahu_edge(ctx, mode, n) {
            Ok((done, secs, cpu_s)) => ctx.push(Row {
                scenario: scenario.into(),
                client: "Tahu JS edge (Node)".into(),
                messages: done,
                rate: done as f64 / secs.max(1e-9),
                lat_ms: None,
                cpu_s,
                pub_cpu_s: None,
                rss_mb: 0.0,
                note: format!(
                    "{per} metric/NDATA, {:.2} us CPU/NDATA; RSS not measured",
                    cpu_s * 1e6 / done.max(1) as f64
                ),
            }),
            Err(e) => eprintln!("bench: Tahu JS edge {mode}: {e}"),
        }
    }
    Ok(())
}

/// Runs `spb_edge_pub.js` on the bench's broker: (NDATA published, seconds, CPU seconds).
fn tahu_edge(ctx: &mut Ctx, mode: &str, count: u64) -> Result<(u64, f64, f64), String> {
    let node = ctx.next_id(&format!("tahu-{mode}"));
    let out = std::process::Command::new("timeout")
        .arg(format!("{}", ctx.limit.as_secs() + 20))
        .arg("node")
        .arg(ctx.scripts.join("spb_edge_pub.js"))
        .args([
            ctx.broker.port.to_string(),
            "bench9".into(),
            node,
            count.to_string(),
            EDGE_METRICS.to_string(),
            mode.into(),
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start node: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Json = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no report ({})", out.status))?;
    let field = |k: &str| {
        report[k]
            .as_f64()
            .ok_or_else(|| format!("no {k} in {report}"))
    };
    Ok((
        field("count")? as u64,
        (field("end_ns")? - field("start_ns")?) / 1e9,
        field("cpu_s")?,
    ))
}

/// Scenario 7: how long a host waits before a line of scenario 3's stations (half exact topics,
/// half regular expressions, 10 tags each) is usable: configuring it through the C ABI (what
/// `sim-host check` does), `line_start` (the routing table), and the time until `connected`,
/// with the peak RSS of the process meanwhile. Three runs each; the fastest is reported.
fn scenario_startup(ctx: &mut Ctx) -> Result<(), String> {
    for stations in [1_000u64, 10_000] {
        let mut best: Option<(f64, f64, f64, f64)> = None;
        for _ in 0..3 {
            let load = many_load("s7", stations, 1);
            let client = ctx.next_id("s7");
            let params = ctx.line_params(ctx.broker.port, "bench/s7/#", &client, &load);
            trim_and_reset_peak();
            let began = std::time::Instant::now();
            let mut line = HostLine::build(ctx.plugin, &params, &load.stations)?;
            line.wait_connected(Duration::from_secs(60))?;
            let connected_s = began.elapsed().as_secs_f64();
            let run = (line.configure_s, line.start_s, connected_s, peak_rss_mb());
            drop(line);
            if best.is_none_or(|b| run.2 < b.2) {
                best = Some(run);
            }
        }
        let Some((configure_s, start_s, connected_s, rss)) = best else {
            continue;
        };
        eprintln!(
            "bench: 7 start-up {stations} stations: configure {configure_s:.3} s, start \
             {start_s:.3} s, connected after {connected_s:.3} s, peak RSS {rss:.1} MB"
        );
        ctx.startup.push(json!({
            "stations": stations, "configure_s": configure_s, "start_s": start_s,
            "connected_s": connected_s, "peak_rss_mb": rss,
        }));
    }
    Ok(())
}

fn scenario_drain(ctx: &mut Ctx, count: u64) -> Result<(), String> {
    let load = text_load("s5", count, 1);
    let filter = "bench/s5/#";
    let publish_all = |ctx: &Ctx, id: String| -> Result<(), String> {
        let p = wire::publish(ctx.broker.port, id, ctx.plan(&load, None))
            .join()
            .map_err(|_| "publisher panicked")?;
        match p.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    };
    // Ours: create the session, leave, let the broker queue, then time the drain.
    let client = ctx.next_id("s5");
    let mut params = ctx.line_params(ctx.broker.port, filter, &client, &load);
    params.retain(|(k, _)| *k != "clean_session");
    params.push(("clean_session", "NO".into()));
    {
        let mut line = HostLine::build(ctx.plugin, &params, &load.stations)?;
        line.wait_connected(Duration::from_secs(10))?;
    }
    publish_all(ctx, format!("{client}-pub"))?;
    trim_and_reset_peak();
    let cpu0 = process_cpu_s();
    let t0 = wall_ns();
    let mut line = HostLine::build(ctx.plugin, &params, &load.stations)?;
    let got = line.collect(load.probe, load.count, ctx.limit, None, None)?;
    drop(line);
    let cpu = process_cpu_s() - cpu0;
    ctx.push(Row {
        scenario: "5 drain QoS 1".into(),
        client: "mqtt-line".into(),
        messages: got.count,
        rate: got.count as f64 / ((got.last_ns - t0) as f64 / 1e9).max(1e-9),
        lat_ms: None,
        cpu_s: cpu,
        pub_cpu_s: None,
        rss_mb: peak_rss_mb(),
        note: "from CONNECT to the last value".into(),
    });

    for tool in ctx.tools.clone() {
        let r = (|| -> Result<Row, String> {
            let mut job = ctx.ext_job(tool, &load, ctx.broker.port, filter);
            job.clean = false;
            job.session_only = true;
            external::spawn(tool, &job, &ctx.scripts, &ctx.work)?.finish();
            publish_all(ctx, format!("{}-pub", job.client_id))?;
            job.session_only = false;
            let t0 = wall_ns();
            let out = external::spawn(tool, &job, &ctx.scripts, &ctx.work)?.finish();
            let start = out.connect_ns.unwrap_or(t0);
            Ok(Row {
                scenario: "5 drain QoS 1".into(),
                client: tool.name().into(),
                messages: out.count,
                rate: out.count as f64 / ((out.last_ns - start) as f64 / 1e9).max(1e-9),
                lat_ms: None,
                cpu_s: out.end.cpu_s,
                pub_cpu_s: None,
                rss_mb: out.end.peak_rss_mb,
                note: out.note,
            })
        })();
        match r {
            Ok(row) => ctx.push(row),
            Err(e) => eprintln!("bench: drain with {}: {e}", tool.name()),
        }
    }
    Ok(())
}

/// How many times scenario 10 runs each line, alternating, on a machine shared with others.
const REDUNDANT_ROUNDS: usize = 3;

/// The redundant line's duplicate rule must cost at most this much more per message shown
/// (issue 21); printed beside the measured ratio.
const REDUNDANT_TARGET: f64 = 1.5;

/// Scenario 10: CPU per message of a redundant line (issue 21) receiving every message twice
/// against a single line receiving it once, in one run. One raw source plays both brokers: the
/// redundant line connects to it twice (`host` and `redundant_host` the same address, A and B)
/// and gets the same bytes on both connections, as from two brokers fed by one dual-homed
/// publisher; the single line gets them once. The load is scenario 6's JSON reading (3 JA=
/// tags and the time stamp, QoS 0) with a time stamp of its own in every payload, so that no
/// two messages in a row are equal. CPU is the bench process (host and plugin) less the
/// source's thread, until the last value; up to one 32 KiB batch of copies through the second
/// connection may still be under way then (about 0.1 % of the copies at the default count).
/// Each line runs [`REDUNDANT_ROUNDS`] times, alternating; the medians give the ratio.
fn scenario_redundant(ctx: &mut Ctx, count: u64) -> Result<(), String> {
    let mut per_msg: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..REDUNDANT_ROUNDS {
        for (i, clients) in [1usize, 2].into_iter().enumerate() {
            per_msg[i].push(redundant_round(ctx, count, clients)?);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let single = median(&mut per_msg[0]);
    let twice = median(&mut per_msg[1]);
    let ratio = twice / single.max(1e-9);
    eprintln!(
        "bench: 10 redundant: CPU per message shown: single line {single:.3} us, redundant line \
         (every message twice) {twice:.3} us, ratio {ratio:.2} (target at most {REDUNDANT_TARGET})"
    );
    ctx.redundant.push(json!({
        "messages": count, "rounds": REDUNDANT_ROUNDS,
        "single_cpu_us_per_msg": single, "redundant_cpu_us_per_msg": twice,
        "ratio": ratio, "target": REDUNDANT_TARGET,
    }));
    Ok(())
}

/// One line of scenario 10 (`clients` 1: single, 2: redundant); returns its CPU microseconds per
/// message shown.
fn redundant_round(ctx: &mut Ctx, count: u64, clients: usize) -> Result<f64, String> {
    let mut load = raw_load("s10", count);
    let mut plan = ctx.plan(&load, None);
    plan.stamp_every = 1;
    let source = wire::raw_source_for(plan, clients).map_err(|e| e.to_string())?;
    let client = ctx.next_id("s10");
    let mut params = ctx.line_params(source.port, "bench/s10/#", &client, &load);
    if clients == 2 {
        params.push(("redundant_host", "127.0.0.1".into()));
        params.push(("redundant_port", source.port.to_string()));
    }
    let mut line = HostLine::build(ctx.plugin, &params, &load.stations)?;
    load.stations = Vec::new();
    trim_and_reset_peak();
    let cpu0 = process_cpu_s();
    let got = line.collect(load.probe, load.count, ctx.limit, None, None)?;
    let cpu = process_cpu_s() - cpu0;
    let rss = peak_rss_mb();
    // Copies shown twice would arrive as more values: look a little longer (not measured).
    let extra = line
        .collect(load.probe, u64::MAX, Duration::from_millis(300), None, None)?
        .count;
    drop(line);
    let generator = source
        .handle
        .join()
        .map_err(|_| "load generator panicked".to_string())?;
    if let Some(e) = generator.error {
        return Err(e);
    }
    let cpu = cpu - generator.cpu_s;
    let us = cpu * 1e6 / got.count.max(1) as f64;
    let mut lat = got.lat_us;
    let secs = (got.last_ns - generator.start_ns) as f64 / 1e9;
    let mut note = format!("{us:.3} us CPU/message shown");
    if clients == 2 {
        let _ = write!(note, "; every message received twice (A and B)");
    }
    if got.count < count {
        let _ = write!(note, "; {} of {count} in time", got.count);
    }
    if extra > 0 {
        let _ = write!(note, "; {extra} more values than messages: copies shown");
    }
    ctx.push(Row {
        scenario: if clients == 2 {
            "10 redundant: twice"
        } else {
            "10 redundant: single"
        }
        .into(),
        client: "mqtt-line".into(),
        messages: got.count,
        rate: got.count as f64 / secs.max(1e-9),
        lat_ms: percentiles_us_ms(&mut lat),
        cpu_s: cpu,
        pub_cpu_s: Some(generator.cpu_s),
        rss_mb: rss,
        note,
    });
    Ok(us)
}

fn machine() -> Json {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_string()));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
        "mem_total": mem,
        "loadavg_at_start": load.trim(),
    })
}

pub fn run(plugin: &Plugin, args: BenchArgs) -> Result<(), String> {
    let work = args.out.clone();
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let scripts = args
        .scripts
        .clone()
        .unwrap_or_else(external::default_scripts_dir);
    let mut tools = Vec::new();
    if !args.no_external {
        for t in Tool::ALL {
            match t.check(&scripts) {
                Ok(()) => tools.push(t),
                Err(why) => eprintln!("bench: {} skipped: {why}", t.name()),
            }
        }
    }
    let machine = machine();
    eprintln!("bench: machine {machine}");
    let broker = Mosquitto::start(&args.mosquitto, &work, false)?;
    eprintln!("bench: mosquitto on 127.0.0.1:{}", broker.port);
    let limit = Duration::from_secs(args.time_limit);
    let mut ctx = Ctx {
        plugin,
        broker,
        args,
        work: work.clone(),
        scripts,
        tools,
        rows: Vec::new(),
        sweep: Vec::new(),
        startup: Vec::new(),
        redundant: Vec::new(),
        limit,
        run: 0,
        v5: false,
    };
    let scenarios = ctx.args.scenarios.clone();
    for s in scenarios {
        let result = match s {
            1 => {
                let mut load = text_load("s1", ctx.scaled(200_000), 0);
                ctx.flood("1 text", &mut load, false).map(|_| ())
            }
            2 => {
                let path = ctx.args.payload.clone().unwrap_or_else(|| {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join("../../shared/payloads/chirpstack-v4-up-docs.json")
                });
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))
                    .and_then(|uplink| lora_load("s2", ctx.scaled(100_000), &uplink))
                    .and_then(|mut load| ctx.flood("2 LoRaWAN 8xJA", &mut load, false).map(|_| ()))
                    .unwrap_or_else(|e| eprintln!("bench: scenario 2 LoRaWAN: {e}"));
                let mut load = kepware_load("s2k", ctx.scaled(20_000));
                ctx.flood("2 Kepware 100 items", &mut load, false)
                    .map(|_| ())
            }
            3 => {
                let n = ctx.scaled(200_000);
                let mut load = many_load("s3", 10_000, n);
                let r = ctx.flood("3 10k stations", &mut load, false);
                if !ctx.args.no_sweep {
                    for stations in [10u64, 100, 1_000, 10_000] {
                        let mut load = many_load("sw", stations, n);
                        let filter = "bench/sw/#".to_string();
                        let before = ctx.rows.len();
                        match ctx.ours(&format!("3 sweep {stations}"), &mut load, &filter, false) {
                            Ok(rate) => {
                                let row = &ctx.rows[before];
                                let cpu_us = row.cpu_s * 1e6 / row.messages.max(1) as f64;
                                ctx.sweep.push(json!({
                                    "stations": stations, "msg_per_s": rate,
                                    "cpu_us_per_msg": cpu_us, "peak_rss_mb": row.rss_mb,
                                }));
                            }
                            Err(e) => eprintln!("bench: sweep {stations}: {e}"),
                        }
                    }
                }
                r.map(|_| ())
            }
            4 => {
                let n = ctx.scaled(200_000);
                scenario_writes(&mut ctx, n)
            }
            5 => {
                let n = ctx.scaled(100_000);
                scenario_drain(&mut ctx, n)
            }
            6 => {
                let mut load = raw_load("s6", ctx.scaled(500_000));
                ctx.flood("6 raw source JSON", &mut load, true).map(|_| ())
            }
            7 => scenario_startup(&mut ctx),
            8 => {
                let n = ctx.scaled(100_000);
                scenario_sparkplug(&mut ctx, n)
            }
            9 => {
                let n = ctx.scaled(100_000);
                scenario_edge(&mut ctx, n)
            }
            10 => {
                let n = ctx.scaled(300_000);
                scenario_redundant(&mut ctx, n)
            }
            other => Err(format!("there is no scenario {other}")),
        };
        if let Err(e) = result {
            eprintln!("bench: scenario {s}: {e}");
        }
    }
    ctx.broker.stop();

    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<24} {:<19} {:>9} {:>10} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}  note",
        "scenario",
        "client",
        "messages",
        "msg/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "CPU s",
        "pub CPU",
        "RSS MB"
    );
    for r in &ctx.rows {
        let _ = writeln!(table, "{}", format_row(r));
    }
    print!("{table}");
    let results = json!({
        "machine": machine,
        "time": chrono::Utc::now().to_rfc3339(),
        "rows": ctx.rows.iter().map(Row::json).collect::<Vec<_>>(),
        "sweep": ctx.sweep,
        "startup": ctx.startup,
        "redundant": ctx.redundant,
    });
    let file = work.join("results.json");
    std::fs::write(
        &file,
        serde_json::to_string_pretty(&results).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", file.display()))?;
    eprintln!("bench: results in {}", file.display());
    Ok(())
}
