//! The subscribers users run instead of a line driver, started as child processes on the same
//! job: `mosquitto_sub` (C, prints payloads, no processing), a Python paho-mqtt script and a Node
//! mqtt.js script (both route and extract JSON as our line does; see `bench/scripts/`); for the
//! Sparkplug scenario a Node consumer on Eclipse Tahu's `sparkplug-payload` and a Python one on
//! `pysparkplug`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::stats::{wait_child, wall_ns, ChildEnd};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tool {
    MosquittoSub,
    Paho,
    MqttJs,
    /// mqtt.js with Eclipse Tahu's sparkplug-payload (bench/scripts/spb_sub.js).
    TahuJs,
    /// paho-mqtt with pysparkplug's payloads (bench/scripts/spb_sub.py).
    PySparkplug,
}

impl Tool {
    pub const ALL: [Tool; 3] = [Tool::MosquittoSub, Tool::Paho, Tool::MqttJs];
    /// The consumers of the Sparkplug scenario.
    pub const SPARKPLUG: [Tool; 2] = [Tool::TahuJs, Tool::PySparkplug];

    pub fn name(self) -> &'static str {
        match self {
            Tool::MosquittoSub => "mosquitto_sub",
            Tool::Paho => "paho-mqtt (Python)",
            Tool::MqttJs => "mqtt.js (Node)",
            Tool::TahuJs => "Tahu JS (Node)",
            Tool::PySparkplug => "pysparkplug (Python)",
        }
    }

    /// `Ok` when the tool can run here, else how to install it.
    pub fn check(self, scripts: &Path) -> Result<(), String> {
        let ok = |mut c: Command| {
            c.stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        match self {
            Tool::MosquittoSub => {
                // `--help` exits with 1 in mosquitto 2.0; only a missing binary is an error.
                Command::new("mosquitto_sub")
                    .arg("--help")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|_| ())
                    .map_err(|_| {
                        "mosquitto_sub not found (apt-get install mosquitto-clients)".into()
                    })
            }
            Tool::Paho => {
                let mut c = Command::new("python3");
                c.args(["-c", "import paho.mqtt.client"]);
                if ok(c) {
                    Ok(())
                } else {
                    Err("python3 with paho-mqtt not found (pip install paho-mqtt)".into())
                }
            }
            Tool::PySparkplug => {
                let mut c = Command::new("python3");
                c.args(["-c", "import pysparkplug, paho.mqtt.client"]);
                if ok(c) {
                    Ok(())
                } else {
                    Err("python3 with pysparkplug not found (pip install pysparkplug)".into())
                }
            }
            Tool::MqttJs | Tool::TahuJs => {
                let module = if self == Tool::MqttJs {
                    "node_modules/mqtt"
                } else {
                    "node_modules/sparkplug-payload"
                };
                if !scripts.join(module).is_dir() {
                    return Err(format!(
                        "{module} not installed (cd {} && npm ci)",
                        scripts.display()
                    ));
                }
                let mut c = Command::new("node");
                c.arg("--version");
                if ok(c) {
                    Ok(())
                } else {
                    Err("node not found".into())
                }
            }
        }
    }
}

/// One subscriber job, the same for every tool.
pub struct Job {
    pub port: u16,
    pub filter: String,
    pub qos: u8,
    pub count: u64,
    pub client_id: String,
    pub clean: bool,
    /// Only create the persistent session (connect, subscribe, leave).
    pub session_only: bool,
    /// Station addresses and whether each is a regular expression.
    pub stations: Vec<(String, bool)>,
    /// JSON paths to extract, as arrays of keys and 0-based indices; empty for text payloads.
    pub paths: Vec<Json>,
    pub time_path: Option<Json>,
    /// `text_ns`, `iso` or `none`: where the send time is.
    pub latency: &'static str,
    pub limit: Duration,
}

pub struct Outcome {
    pub count: u64,
    pub connect_ns: Option<i64>,
    pub last_ns: i64,
    pub lat_ms: Option<[f64; 3]>,
    pub end: ChildEnd,
    pub note: String,
}

pub struct Running {
    tool: Tool,
    child: Child,
    lines: mpsc::Receiver<String>,
    job_count: u64,
    limit: Duration,
    /// The scripts' job file, removed when the client is done.
    job_file: Option<PathBuf>,
}

pub fn spawn(tool: Tool, job: &Job, scripts: &Path, work: &Path) -> Result<Running, String> {
    let mut job_file = None;
    let mut cmd = match tool {
        Tool::MosquittoSub => {
            let mut c = Command::new("mosquitto_sub");
            c.args(["-h", "127.0.0.1", "-p", &job.port.to_string()])
                .args(["-t", &job.filter, "-q", &job.qos.to_string()])
                .args(["-i", &job.client_id])
                .args(["-W", &(job.limit.as_secs() + 1).to_string()]);
            if !job.clean {
                c.arg("-c");
            }
            if job.session_only {
                c.arg("-E");
            } else {
                c.args(["-C", &job.count.to_string()]);
            }
            c.stdout(Stdio::null());
            c
        }
        Tool::Paho | Tool::MqttJs | Tool::TahuJs | Tool::PySparkplug => {
            let file = work.join(format!("job-{}.json", job.client_id));
            let spec = json!({
                "host": "127.0.0.1",
                "port": job.port,
                "filter": job.filter,
                "qos": job.qos,
                "count": job.count,
                "client_id": job.client_id,
                "clean": job.clean,
                "session_only": job.session_only,
                "stations": job.stations.iter().map(|(a, r)| json!({"address": a, "regex": r})).collect::<Vec<_>>(),
                "paths": job.paths,
                "time_path": job.time_path,
                "latency": job.latency,
                "limit_s": job.limit.as_secs_f64(),
            });
            std::fs::write(&file, spec.to_string()).map_err(|e| e.to_string())?;
            job_file = Some(file.clone());
            let (program, script) = match tool {
                Tool::Paho => ("python3", "paho_sub.py"),
                Tool::PySparkplug => ("python3", "spb_sub.py"),
                Tool::TahuJs => ("node", "spb_sub.js"),
                _ => ("node", "mqttjs_sub.js"),
            };
            let mut c = Command::new(program);
            c.arg(scripts.join(script));
            c.arg(&file).stdout(Stdio::piped());
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", tool.name()))?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    Ok(Running {
        tool,
        child,
        lines: rx,
        job_count: job.count,
        limit: job.limit,
        job_file,
    })
}

impl Running {
    /// Waits until the subscription stands. The scripts say `ready`; mosquitto_sub gets a second.
    pub fn wait_ready(&mut self) -> Result<(), String> {
        if self.tool == Tool::MosquittoSub {
            std::thread::sleep(Duration::from_secs(1));
            return Ok(());
        }
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) if l.trim() == "ready" => return Ok(()),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        Err(format!("{} did not subscribe", self.tool.name()))
    }

    pub fn finish(self) -> Outcome {
        let end = wait_child(self.child.id(), self.limit + Duration::from_secs(20));
        let mut report: Option<Json> = None;
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            if l.starts_with('{') {
                report = serde_json::from_str(&l).ok();
            }
        }
        drop(self.child);
        if let Some(f) = &self.job_file {
            let _ = std::fs::remove_file(f);
        }
        match (self.tool, report) {
            (Tool::MosquittoSub, _) => Outcome {
                count: if end.exited { self.job_count } else { 0 },
                connect_ns: None,
                last_ns: end.end_ns,
                lat_ms: None,
                note: if end.exited {
                    String::new()
                } else {
                    "did not finish in time".into()
                },
                end,
            },
            (_, Some(r)) => {
                let lat = r["lat_ns"].as_array().and_then(|a| {
                    let v: Vec<f64> = a.iter().filter_map(|x| x.as_f64()).collect();
                    (v.len() == 3).then(|| [v[0] / 1e6, v[1] / 1e6, v[2] / 1e6])
                });
                let count = r["count"].as_u64().unwrap_or(0);
                Outcome {
                    count,
                    connect_ns: r["connect_ns"].as_i64(),
                    last_ns: r["last_ns"].as_i64().unwrap_or_else(wall_ns),
                    lat_ms: lat,
                    note: if count < self.job_count {
                        format!("stopped after {:.0} s", self.limit.as_secs_f64())
                    } else {
                        String::new()
                    },
                    end,
                }
            }
            (_, None) => Outcome {
                count: 0,
                connect_ns: None,
                last_ns: end.end_ns,
                lat_ms: None,
                note: "no report (failed)".into(),
                end,
            },
        }
    }
}

/// Where the scripts live: `bench/scripts` of this source tree.
pub fn default_scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts")
}
