//! Counting instructions: the test binary that calls this runs again under valgrind's
//! callgrind, its ignored test `measured_run` feeding one workload a given number of messages;
//! callgrind's total of executed instructions (Ir) is read from its output file.
//!
//! Two runs, of n and 2n messages, differ only in the n messages more, so their difference is
//! the cost of n messages without the process, the test harness and the line's setup. The
//! count is exact and the same on every run of the same binary (callgrind counts, it does not
//! sample) once std's random hash seeds are fixed (fixed_random.c, preloaded); it changes with
//! the compiler and the CPU features the libraries detect.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment of the measured run: which workload, how many messages.
pub const WORKLOAD_VAR: &str = "MQTT_LINE_COST_WORKLOAD";
pub const MESSAGES_VAR: &str = "MQTT_LINE_COST_MESSAGES";

/// The workload and message count a measured run was started with, read from its environment;
/// `Err` when the harness did not start it.
pub fn requested() -> Result<(String, u64), String> {
    let workload = std::env::var(WORKLOAD_VAR).map_err(|e| format!("{WORKLOAD_VAR}: {e}"))?;
    let messages = std::env::var(MESSAGES_VAR).map_err(|e| format!("{MESSAGES_VAR}: {e}"))?;
    let messages = messages
        .parse()
        .map_err(|e| format!("{MESSAGES_VAR}={messages}: {e}"))?;
    Ok((workload, messages))
}

/// Whether valgrind can be run, or why not.
pub fn available() -> Result<String, String> {
    match Command::new("valgrind").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => Err(format!(
            "`valgrind --version` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("valgrind cannot be run: {e}")),
    }
}

/// A scratch directory for callgrind's output files, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new() -> Scratch {
        // The same length every run: the preloaded library's path is in the measured run's
        // environment, and a longer one shifts its stack, which moves the count a little.
        let dir = std::env::temp_dir().join(format!("mqtt-line-cost-{:010}", std::process::id()));
        // A directory that cannot be made shows as the measured runs' error.
        let _ = std::fs::create_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// fixed_random.c built into the scratch directory with the C compiler (`$CC`, else `cc`), for
/// `LD_PRELOAD`; `Err` says why it could not be.
pub(crate) fn fixed_random(scratch: &Scratch) -> Result<PathBuf, String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixed_random.c");
    let library = scratch.0.join("fixed_random.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .output()
        .map_err(|e| format!("`{cc}` cannot be run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{cc}` could not build {}: {}",
            source.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(library)
}

/// Instructions executed by the measured run of `workload` over `messages` messages, with
/// `preload` (the fixed random bytes) when there is one.
/// `measured_test` is the test the measured run executes (its full path in the test binary):
/// each cost test defines it, ignored, reading the two variables above.
pub(crate) fn instructions(
    scratch: &Scratch,
    preload: Option<&Path>,
    measured_test: &str,
    workload: &str,
    messages: u64,
) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("the test binary: {e}"))?;
    let out_file = scratch.0.join(format!("{workload}-{messages}.out"));
    let mut valgrind = Command::new("valgrind");
    if let Some(library) = preload {
        valgrind.env("LD_PRELOAD", library);
    }
    let out = valgrind
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .args([measured_test, "--exact", "--ignored", "--test-threads=1"])
        .env(WORKLOAD_VAR, workload)
        .env(MESSAGES_VAR, messages.to_string())
        .output()
        .map_err(|e| format!("valgrind cannot be run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the measured run of {workload} ({messages} messages) failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The measured test ends the process before the harness reports it; a report means the
    // name matched no test, and only the harness was counted.
    if String::from_utf8_lossy(&out.stdout).contains("test result:") {
        return Err(format!(
            "the measured run of {workload} ran no test named `{measured_test}`"
        ));
    }
    total(&out_file)
}

/// The `totals:` line of a callgrind output file (its first event, Ir, the only one counted).
fn total(file: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{}: no `totals:` line", file.display()))
}
