//! A 3-node rmqtt raft cluster on loopback for the scale-out tests (tests/tests/scale_out.rs) and
//! the scale-out benchmark: a clustered broker that exists, not one of our own.
//!
//! Every node listens on 127.0.0.1 only: MQTT, its gRPC port (node to node), its raft port and
//! its HTTP API (rmqttd starts that API even when not asked, on 0.0.0.0:6060 by default, so it is
//! configured here). The ports differ per node, which the line's host list now carries per entry.
//!
//! The first node is started alone and the others only once it reports itself the raft leader
//! through its HTTP API: started together, each node elects itself and the cluster splits. Each
//! node is a child process in its own process group, stopped by its process id (SIGKILL) at drop.
//!
//! rmqttd is not a Debian package; tests/run.sh installs a pinned version with `cargo install`
//! into a tool directory ([`require_rmqttd`] says where it is looked for; without it the tests
//! fail saying how to install it).

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http_client::try_http_get;
use crate::net::{free_port, wait_for_port};
use crate::process::{kill_group, tail};
use crate::required::missing;

/// The pinned rmqttd version tests/run.sh installs.
pub const RMQTTD_VERSION: &str = "0.24.0";

/// The environment variable that names another rmqttd binary.
pub const RMQTTD_ENV: &str = "MQTT_LINE_RMQTTD";

/// How long a node may take to start, and the cluster to agree on its leader.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where rmqttd is: `$MQTT_LINE_RMQTTD`, else tests/run.sh's tool directory
/// `$HOME/.cache/mqtt-line-tools/rmqttd-0.24.0/bin/rmqttd`. Fails the calling test when neither
/// names a file, saying how to install it: tests/run.sh installs it, so a missing rmqttd is a
/// broken set-up, never a test to pass silently (docs/decisions.md, *Tests: a missing tool fails
/// its test*).
#[track_caller]
pub fn require_rmqttd() -> PathBuf {
    let install = format!(
        "install it with `apt-get install protobuf-compiler cmake && cargo install --locked \
         rmqttd@{RMQTTD_VERSION} --root ~/.cache/mqtt-line-tools/rmqttd-{RMQTTD_VERSION}` (about \
         25 minutes once) or set {RMQTTD_ENV} to an rmqttd {RMQTTD_VERSION} binary"
    );
    if let Some(path) = std::env::var_os(RMQTTD_ENV) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            missing(
                &format!(
                    "the rmqttd binary {RMQTTD_ENV}={} is not a file",
                    path.display().to_string().escape_debug()
                ),
                &install,
            );
        }
        return path;
    }
    let Some(home) = std::env::var_os("HOME") else {
        missing(
            &format!("the rmqttd binary: HOME is not set and neither is {RMQTTD_ENV}"),
            &install,
        );
    };
    let path = PathBuf::from(home).join(format!(
        ".cache/mqtt-line-tools/rmqttd-{RMQTTD_VERSION}/bin/rmqttd"
    ));
    if !path.is_file() {
        missing(
            &format!(
                "the rmqttd binary ({RMQTTD_VERSION}) is not installed at {} and {RMQTTD_ENV} is \
                 not set",
                path.display()
            ),
            &install,
        );
    }
    path
}

/// One node's ports, all on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct NodePorts {
    pub mqtt: u16,
    pub grpc: u16,
    pub raft: u16,
    pub http: u16,
}

struct Node {
    id: u64,
    /// With the raft cluster plugin; a standalone node has none.
    clustered: bool,
    ports: NodePorts,
    dir: PathBuf,
    child: Option<Child>,
}

/// A running rmqtt raft cluster; dropping it kills every node.
pub struct RmqttCluster {
    binary: PathBuf,
    nodes: Vec<Node>,
    // Last: removed after the nodes are gone.
    dir: tempfile::TempDir,
}

impl RmqttCluster {
    /// Starts `size` nodes (1 to 9): node 1 first, the others once it leads.
    pub fn start(binary: &Path, size: usize) -> RmqttCluster {
        RmqttCluster::launch(binary, size, true)
    }

    /// One rmqtt node without the cluster plugin: the single broker the cluster is measured
    /// against.
    pub fn standalone(binary: &Path) -> RmqttCluster {
        RmqttCluster::launch(binary, 1, false)
    }

    fn launch(binary: &Path, size: usize, clustered: bool) -> RmqttCluster {
        let dir = tempfile::Builder::new()
            .prefix("mqtt-line-rmqtt-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let ports: Vec<NodePorts> = (0..size)
            .map(|_| NodePorts {
                mqtt: free_port(),
                grpc: free_port(),
                raft: free_port(),
                http: free_port(),
            })
            .collect();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, p)| Node {
                id: i as u64 + 1,
                clustered,
                ports: *p,
                dir: dir.path().join(format!("node{}", i + 1)),
                child: None,
            })
            .collect();
        let mut cluster = RmqttCluster {
            binary: binary.to_path_buf(),
            nodes,
            dir,
        };
        for i in 0..size {
            cluster.write_config(i, &ports);
        }
        cluster.spawn(0);
        if !clustered {
            cluster.wait_serving(0);
            return cluster;
        }
        cluster.wait_leader(0, 1);
        for i in 1..size {
            cluster.spawn(i);
        }
        for i in 1..size {
            cluster.wait_leader(i, 1);
        }
        cluster
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// The ports of node `i` (0-based).
    pub fn ports(&self, i: usize) -> NodePorts {
        self.nodes[i].ports
    }

    /// The MQTT port of node `i` (0-based) on 127.0.0.1.
    pub fn mqtt_port(&self, i: usize) -> u16 {
        self.nodes[i].ports.mqtt
    }

    /// A host list that starts at node `first` and names every other node after it, each with
    /// its own port: `127.0.0.1:P2; 127.0.0.1:P3; 127.0.0.1:P1`.
    pub fn host_list(&self, first: usize) -> String {
        let n = self.nodes.len();
        (0..n)
            .map(|k| format!("127.0.0.1:{}", self.nodes[(first + k) % n].ports.mqtt))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    /// Kills node `i` with SIGKILL (its process group, started by us) and reaps it.
    pub fn kill(&mut self, i: usize) {
        let Some(mut child) = self.nodes[i].child.take() else {
            return;
        };
        kill_group(&mut child);
    }

    /// Node `i`'s raft status as its HTTP API reports it (`leader_id`, `role`, ...), `None` while
    /// it has none.
    pub fn raft_status(&self, i: usize) -> Option<Value> {
        let node = &self.nodes[i];
        let path = format!("/api/v1/plugins/{}/rmqtt-cluster-raft", node.id);
        let answer = try_http_get(&format!("127.0.0.1:{}", node.ports.http), &path).ok()?;
        if answer.status != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&answer.body).ok()?;
        let status = v.get("attrs")?.get("raft_status")?.clone();
        (!status.is_null()).then_some(status)
    }

    /// The end of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let text = std::fs::read_to_string(node.dir.join("stdout.log")).unwrap_or_default();
            out.push_str(&format!(
                "-- rmqtt node {} (mqtt 127.0.0.1:{}) --\n{}\n",
                node.id,
                node.ports.mqtt,
                tail(&text, 3000)
            ));
        }
        out
    }

    /// The directory of the cluster's configuration and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn write_config(&self, i: usize, all: &[NodePorts]) {
        let node = &self.nodes[i];
        let plugins = node.dir.join("plugins");
        std::fs::create_dir_all(&plugins)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", plugins.display()));
        let p = node.ports;
        let main = format!(
            "# Generated by the mqtt-line scale-out tests (tests/src/rmqtt_cluster.rs).\n\
             node.id = {id}\n\
             # The machine's load must not make a node refuse connections (\"busy\") mid-test.\n\
             node.busy.check_enable = false\n\
             rpc.server_addr = \"127.0.0.1:{grpc}\"\n\
             log.to = \"console\"\n\
             log.level = \"info\"\n\
             log.dir = \"{dir}\"\n\
             plugins.dir = \"{plugins}\"\n\
             plugins.default_startups = [{cluster}\"rmqtt-shared-subscription\", \
             \"rmqtt-http-api\"]\n\
             # Nothing of ours needs access rules; without a rules file it would decide for us.\n\
             plugins.disabled_default_startups = [\"rmqtt-acl\"]\n\
             listener.tcp.external.addr = \"127.0.0.1:{mqtt}\"\n\
             listener.tcp.external.allow_anonymous = true\n\
             listener.tcp.external.max_inflight = 64\n\
             listener.tcp.external.max_mqueue_len = 100000\n\
             listener.tcp.external.session_expiry_interval = \"5m\"\n\
             listener.tcp.external.message_retry_interval = \"5s\"\n",
            id = node.id,
            cluster = if node.clustered {
                "\"rmqtt-cluster-raft\", "
            } else {
                ""
            },
            grpc = p.grpc,
            mqtt = p.mqtt,
            dir = node.dir.display(),
            plugins = plugins.display(),
        );
        // Every node as `"id@127.0.0.1:port"`, with the port `port` picks.
        let peers = |port: fn(&NodePorts) -> u16| {
            all.iter()
                .enumerate()
                .map(|(k, q)| format!("\"{}@127.0.0.1:{}\"", k + 1, port(q)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let grpc_addrs = peers(|q| q.grpc);
        let raft_addrs = peers(|q| q.raft);
        let raft = format!(
            "node_grpc_addrs = [{grpc_addrs}]\n\
             raft_peer_addrs = [{raft_addrs}]\n\
             laddr = \"127.0.0.1:{raft}\"\n\
             # The first node leads; the others join it (they are started after it leads).\n\
             leader_id = 1\n",
            raft = p.raft
        );
        let http = format!(
            "http_laddr = \"127.0.0.1:{http}\"\nhttp_request_log = false\n",
            http = p.http
        );
        let shared = "strategy = \"round_robin\"\n";
        for (name, text) in [
            (node.dir.join("rmqtt.toml"), main),
            (plugins.join("rmqtt-cluster-raft.toml"), raft),
            (plugins.join("rmqtt-http-api.toml"), http),
            (
                plugins.join("rmqtt-shared-subscription.toml"),
                shared.to_string(),
            ),
        ] {
            std::fs::write(&name, text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", name.display()));
        }
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log_path = node.dir.join("stdout.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .and_then(|f| Ok((f.try_clone()?, f)));
        let (out, err): (File, File) = match log {
            Ok(pair) => pair,
            Err(e) => panic!("cannot open {}: {e}", log_path.display()),
        };
        let child = Command::new(&self.binary)
            .arg("-f")
            .arg(node.dir.join("rmqtt.toml"))
            // rmqttd also reads ./rmqtt.toml: the node's own directory holds only its own.
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        node.child = Some(child);
    }

    /// Waits until standalone node `i` accepts MQTT connections and serves its HTTP API.
    fn wait_serving(&mut self, i: usize) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let ports = self.nodes[i].ports;
        while !(wait_for_port(ports.mqtt, Duration::from_millis(100))
            && wait_for_port(ports.http, Duration::from_millis(100)))
        {
            if Instant::now() >= deadline {
                panic!(
                    "rmqtt node {} did not serve within {BOOT_TIMEOUT:?}\n{}",
                    i + 1,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until node `i` accepts MQTT connections and reports `leader` as the raft leader.
    fn wait_leader(&mut self, i: usize, leader: u64) {
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let ports = self.nodes[i].ports;
        loop {
            if let Some(Ok(Some(status))) = self.nodes[i].child.as_mut().map(Child::try_wait) {
                self.nodes[i].child = None;
                panic!(
                    "rmqtt node {} exited ({status}) while starting\n{}",
                    i + 1,
                    self.logs()
                );
            }
            let ready = wait_for_port(ports.mqtt, Duration::from_millis(100))
                && wait_for_port(ports.http, Duration::from_millis(100))
                && self
                    .raft_status(i)
                    .is_some_and(|s| s["leader_id"].as_u64() == Some(leader));
            if ready {
                return;
            }
            if Instant::now() >= deadline {
                let status = self.raft_status(i);
                panic!(
                    "rmqtt node {} did not report node {leader} as its raft leader within \
                     {BOOT_TIMEOUT:?} (status {status:?})\n{}",
                    i + 1,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for RmqttCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
