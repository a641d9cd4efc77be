//! A mosquitto broker of one test: its own port, configuration, state directory and log.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::{free_port, wait_for_addr};
use crate::process::{kill_and_reap, send_signal, tail, wait_with_deadline};
use crate::TIMEOUT;

/// How a broker is configured before it starts.
///
/// Extra configuration lines and files may use `{dir}`, which is replaced by the broker's
/// temporary directory (where its configuration, log and any persistence files live).
#[derive(Debug, Default, Clone)]
pub struct MosquittoBuilder {
    lines: Vec<String>,
    files: Vec<(String, String)>,
    /// The main listener's address; 127.0.0.1 when not set.
    bind: Option<Ipv4Addr>,
    /// The main listener's port; a free one when not set.
    port: Option<u16>,
    /// More listeners: port and the configuration lines that follow their `listener` line.
    listeners: Vec<(u16, Vec<String>)>,
}

impl MosquittoBuilder {
    /// Appends a line to the generated `mosquitto.conf`.
    pub fn config_line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }

    /// Writes a file into the broker's directory before start (an ACL file, say).
    pub fn file(mut self, name: impl Into<String>, contents: impl Into<String>) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// `acl_file` with these contents.
    pub fn acl(self, contents: impl Into<String>) -> Self {
        self.file("acl", contents).config_line("acl_file {dir}/acl")
    }

    /// Keeps retained messages and persistent sessions in `{dir}/db/`: they survive
    /// [`Mosquitto::stop`] + [`Mosquitto::restart`] (mosquitto saves them when it is terminated).
    pub fn persistence(self) -> Self {
        self.config_line("persistence true")
            .config_line("persistence_location {dir}/db/")
    }

    /// Makes the broker refuse subscriptions matching `filter` (SUBACK return code 0x80) and
    /// allow everything else, with mosquitto's dynamic-security plugin.
    ///
    /// An `acl_file` does not do this: mosquitto 2.0 grants every MQTT 3.1.1 subscription and
    /// applies the ACL file only when it delivers messages.
    pub fn deny_subscribe(self, filter: &str) -> Self {
        let plugin = dynamic_security_plugin();
        let json = serde_json::json!({
            "defaultACLAccess": {
                "publishClientSend": true,
                "publishClientReceive": true,
                "subscribe": true,
                "unsubscribe": true
            },
            "clients": [],
            "groups": [{"groupname": "anonymous", "roles": [{"rolename": "limits"}]}],
            "roles": [{
                "rolename": "limits",
                "acls": [{
                    "acltype": "subscribePattern",
                    "topic": filter,
                    "priority": 0,
                    "allow": false
                }]
            }],
            "anonymousGroup": "anonymous"
        });
        self.file("dynamic-security.json", json.to_string())
            .config_line(format!("plugin {}", plugin.display()))
            .config_line("plugin_opt_config_file {dir}/dynamic-security.json")
    }

    /// Listens on another loopback address than 127.0.0.1 (127.0.0.2, say), so that two brokers
    /// can share a port, as the hosts of one line's `host` list do.
    pub fn bind_address(mut self, addr: Ipv4Addr) -> Self {
        self.bind = Some(addr);
        self
    }

    /// Listens on this port instead of a free one (with [`MosquittoBuilder::bind_address`]: the
    /// port of another broker on another loopback address).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Adds a listener on `port` at the broker's address, configured by the lines that follow its
    /// `listener` line (`protocol websockets`, `certfile ...`). Start and restart wait until it
    /// accepts connections too.
    ///
    /// mosquitto 2.0.11 binds a websockets listener to every address unless it also says
    /// `socket_domain ipv4`; add that line to keep it on loopback.
    pub fn listener<S: Into<String>>(
        mut self,
        port: u16,
        lines: impl IntoIterator<Item = S>,
    ) -> Self {
        self.listeners
            .push((port, lines.into_iter().map(Into::into).collect()));
        self
    }

    /// Writes the configuration and starts the broker on a free loopback port.
    pub fn start(self) -> Mosquitto {
        let dir = tempfile::Builder::new()
            .prefix("mqtt-line-broker-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let dir_text = dir.path().display().to_string();
        let port = self.port.unwrap_or_else(free_port);
        let bind = self.bind.unwrap_or(Ipv4Addr::LOCALHOST);
        let mut conf = format!(
            "# Generated by the mqtt-line end-to-end tests.\n\
             per_listener_settings false\n\
             listener {port} {bind}\n\
             allow_anonymous true\n\
             log_dest stderr\n\
             log_type all\n\
             connection_messages true\n"
        );
        for line in &self.lines {
            conf.push_str(&line.replace("{dir}", &dir_text));
            conf.push('\n');
        }
        // Listener-specific lines must follow their `listener` line, after the global ones.
        for (extra_port, lines) in &self.listeners {
            conf.push_str(&format!("listener {extra_port} {bind}\n"));
            for line in lines {
                conf.push_str(&line.replace("{dir}", &dir_text));
                conf.push('\n');
            }
        }
        for (name, contents) in &self.files {
            let path = dir.path().join(name);
            std::fs::write(&path, contents.replace("{dir}", &dir_text))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        // Started as root, mosquitto runs as the `mosquitto` user (or `nobody`): it must be able to
        // read this directory and to write its persistence files.
        let db = dir.path().join("db");
        let perms = std::fs::create_dir(&db)
            .and_then(|_| set_mode(&db, 0o777))
            .and_then(|_| set_mode(dir.path(), 0o755));
        if let Err(e) = perms {
            panic!("cannot prepare {}: {e}", db.display());
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", conf_path.display()));
        let log_path = dir.path().join("mosquitto.log");
        let mut broker = Mosquitto {
            port,
            bind,
            extra_ports: self.listeners.iter().map(|(p, _)| *p).collect(),
            conf_path,
            log_path,
            child: None,
            dir,
        };
        broker.spawn();
        broker
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The lines of a mosquitto WebSocket listener, for [`MosquittoBuilder::listener`]: mosquitto
/// 2.0.11 binds a websockets listener to every address unless it also says `socket_domain ipv4`,
/// which keeps it on loopback.
pub const WEBSOCKET_LISTENER: [&str; 2] = ["protocol websockets", "socket_domain ipv4"];

/// Where Debian (and most distributions) install mosquitto's dynamic-security plugin.
pub fn dynamic_security_plugin() -> PathBuf {
    const NAME: &str = "mosquitto_dynamic_security.so";
    let mut candidates = Vec::new();
    for lib in ["/usr/lib", "/usr/local/lib", "/usr/lib64"] {
        candidates.push(Path::new(lib).join(NAME));
        if let Ok(entries) = std::fs::read_dir(lib) {
            for entry in entries.flatten() {
                candidates.push(entry.path().join(NAME));
                candidates.push(entry.path().join("mosquitto").join(NAME));
            }
        }
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{NAME} not found under /usr/lib: is the `mosquitto` package installed?")
        })
}

/// A running (or stopped, or killed) mosquitto. Killed and reaped on drop.
pub struct Mosquitto {
    port: u16,
    bind: Ipv4Addr,
    extra_ports: Vec<u16>,
    conf_path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    // Last field: removed after the broker is gone.
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// A plain broker: anonymous clients, no persistence.
    pub fn start() -> Mosquitto {
        MosquittoBuilder::default().start()
    }

    pub fn builder() -> MosquittoBuilder {
        MosquittoBuilder::default()
    }

    /// The loopback port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The loopback address it listens on (127.0.0.1 unless the builder said otherwise).
    pub fn bind_address(&self) -> Ipv4Addr {
        self.bind
    }

    /// The broker's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the broker logged (all its runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The end of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log(), 6000)
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .and_then(|f| Ok((f.try_clone()?, f)));
        let (out, err): (File, File) = match log {
            Ok(pair) => pair,
            Err(e) => panic!("cannot open {}: {e}", self.log_path.display()),
        };
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start `mosquitto`: {e} (install the `mosquitto` package; .ci/run does)"
            ),
        };
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "mosquitto on port {} exited ({status}) before it accepted connections\n\
                         -- mosquitto log --\n{}",
                        self.port,
                        self.log_tail()
                    );
                }
            }
            let up = std::iter::once(self.port)
                .chain(self.extra_ports.iter().copied())
                .all(|p| wait_for_addr(self.bind, p, Duration::from_millis(100)));
            if up {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "mosquitto did not accept connections on {}:{} (and {:?}) within {TIMEOUT:?}\n\
                     -- mosquitto log --\n{}",
                    self.bind,
                    self.port,
                    self.extra_ports,
                    self.log_tail()
                );
            }
        }
    }

    fn signal(&self, signal: &str) {
        let Some(pid) = self.pid() else {
            panic!("mosquitto on port {} is not running", self.port);
        };
        if let Err(e) = send_signal(pid, signal) {
            panic!("{e}");
        }
    }

    /// Kills it at once (SIGKILL): connections drop without DISCONNECT; no state is saved.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Terminates it (SIGTERM) and waits until it exited; it saves persistent state first.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = send_signal(child.id(), "CONT");
        if let Err(e) = send_signal(child.id(), "TERM") {
            kill_and_reap(&mut child);
            panic!("{e}");
        }
        match wait_with_deadline(&mut child, TIMEOUT) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                kill_and_reap(&mut child);
                panic!(
                    "mosquitto did not exit within {TIMEOUT:?} of SIGTERM\n-- mosquitto log --\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// Starts it again with the same port and configuration (killing it first if it still runs)
    /// and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Suspends it (SIGSTOP): connections stay open but nothing is answered.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Resumes it after [`Mosquitto::freeze`] (SIGCONT).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// Waits until the broker log satisfies `pred`; panics with the log after [`TIMEOUT`].
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let log = self.log();
            if pred(&log) {
                return log;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {TIMEOUT:?} waiting for the broker log to show {what}\n\
                     -- mosquitto log --\n{}",
                    tail(&log, 6000)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}
