//! A private mosquitto for the benchmark: its own configuration on a free loopback port, stopped
//! by its pid when the benchmark ends.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Mosquitto {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

/// Messages the broker may queue per client: enough for the drain scenario and for a flood that
/// a slow subscriber takes minutes to work off (QoS 0 to online clients counts against it too).
const MAX_QUEUED: u64 = 5_000_000;

impl Mosquitto {
    /// `nodelay` sets TCP_NODELAY on client sockets (`set_tcp_nodelay`, off by default).
    pub fn start(binary: &Path, work: &Path, nodelay: bool) -> Result<Mosquitto, String> {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let dir = work.join(format!("mosquitto-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let conf = dir.join("mosquitto.conf");
        let text = format!(
            "# Written by mqtt-line-bench; removed when it ends.\n\
             listener {port} 127.0.0.1\n\
             allow_anonymous true\n\
             persistence false\n\
             max_queued_messages {MAX_QUEUED}\n\
             max_queued_bytes 0\n\
             log_dest none\n\
             set_tcp_nodelay {nodelay}\n"
        );
        std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut m = Mosquitto { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = m.child.try_wait() {
                return Err(format!("mosquitto exited at start ({status})"));
            }
            if Instant::now() > deadline {
                m.stop();
                return Err("mosquitto did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(m)
    }

    /// SIGTERM to our broker's pid, then SIGKILL if it lingers.
    pub fn stop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(3);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
