//! sim-host's command-line contract: how a run ends and with which exit code.

use std::fs::File;
use std::process::{Child, Command, Stdio};

use mqtt_line_e2e::{
    free_port, plugin_path, publish, run_to_exit, sim_host_path, wait_with_deadline, LineConfig,
    Mosquitto, SimHost, StationConfig, TIMEOUT,
};

fn config(port: u16) -> String {
    LineConfig::new(port)
        .station(StationConfig::new("battery", "status/battery").inputs())
        .to_toml()
}

#[test]
fn duration_ends_the_run_with_exit_code_0() {
    // Nothing listens on the port: the run keeps retrying until its time is up.
    let plugin = plugin_path();
    let args = [
        "run",
        "{config}",
        "--plugin",
        plugin.to_str().unwrap(),
        "--json",
        "--duration",
        "1",
    ];
    let done = run_to_exit(&config(free_port()), &args, TIMEOUT);
    assert_eq!(done.code, Some(0), "{done}");
    assert!(done.stdout.contains("\"comm_error\""), "{done}");
}

#[test]
fn sigterm_and_sigint_end_the_run_with_exit_code_0() {
    let broker = Mosquitto::start();
    for signal in ["TERM", "INT"] {
        let mut host = SimHost::start(&config(broker.port()));
        host.attach_broker(&broker);
        host.wait_connected();
        host.signal(signal);
        let code = host.wait_exit();
        let report = host.report();
        assert_eq!(code, Some(0), "after SIG{signal}\n{report}");
    }
}

#[test]
fn end_of_stdin_does_not_end_the_run() {
    let broker = Mosquitto::start();
    let mut host = SimHost::start(&config(broker.port()));
    host.attach_broker(&broker);
    host.close_stdin();
    host.wait_connected();
    publish(broker.port(), "status/battery", b"still here", 1, false);
    host.expect_value_eq("battery", "data", "still here");
    host.signal("TERM");
    let code = host.wait_exit();
    let report = host.report();
    assert_eq!(code, Some(0), "{report}");
}

/// Kills and reaps the child when the test ends, whichever way.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn closed_stdout_ends_the_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("line.toml");
    // Nothing listens: sim-host reports states and failed attempts, and so writes soon.
    std::fs::write(&path, config(free_port())).unwrap();
    let stderr_path = dir.path().join("stderr.txt");
    let child = Command::new(sim_host_path())
        .arg("run")
        .arg(&path)
        .arg("--plugin")
        .arg(plugin_path())
        .arg("--json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut host = KillOnDrop(child);
    // Close the reading end: sim-host's next write to stdout fails with EPIPE.
    drop(host.0.stdout.take());
    let status = wait_with_deadline(&mut host.0, TIMEOUT).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "sim-host still runs {TIMEOUT:?} after its stdout was closed\n-- stderr --\n{stderr}"
        );
    };
    assert_eq!(status.code(), Some(0), "{status}\n-- stderr --\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `sim-host bench` is kept for compatibility (docs/sim-host.md): it hands every argument to
/// mqtt-line-bench, so the help it prints is the benchmark's own.
#[test]
fn bench_subcommand_runs_the_benchmark_program() {
    let out = Command::new(sim_host_path())
        .args(["bench", "--help"])
        .stdin(Stdio::null())
        .output()
        .expect("sim-host starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sim-host bench --help failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Usage: mqtt-line-bench") && stdout.contains("--scenarios"),
        "not the benchmark's help:\n{stdout}"
    );
}
