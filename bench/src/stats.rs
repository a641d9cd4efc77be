//! Clocks, CPU time, peak memory and latency percentiles.

use std::time::{Duration, Instant};

/// Wall-clock nanoseconds since the epoch: the clock both the generators and the hosts use, so
/// send and receive times compare directly (one machine).
pub fn wall_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn rusage_s(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we pass; a zeroed rusage is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    tv_s(ru.ru_utime) + tv_s(ru.ru_stime)
}

fn tv_s(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 * 1e-6
}

/// User + system CPU seconds of the calling thread.
pub fn thread_cpu_s() -> f64 {
    rusage_s(libc::RUSAGE_THREAD)
}

/// User + system CPU seconds of the whole process (all threads).
pub fn process_cpu_s() -> f64 {
    rusage_s(libc::RUSAGE_SELF)
}

/// Resets the process's peak RSS (VmHWM) to its present RSS (Linux 4.0+).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak RSS of this process in MB since the last reset.
pub fn peak_rss_mb() -> f64 {
    vm_hwm_mb("/proc/self/status")
}

fn vm_hwm_mb(path: &str) -> f64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// p50, p99 and max of latencies in microseconds, as milliseconds.
pub fn percentiles_us_ms(lat_us: &mut [u32]) -> Option<[f64; 3]> {
    if lat_us.is_empty() {
        return None;
    }
    lat_us.sort_unstable();
    let at = |q: f64| {
        let i = ((lat_us.len() as f64 - 1.0) * q).round() as usize;
        f64::from(lat_us[i.min(lat_us.len() - 1)]) / 1e3
    };
    Some([at(0.50), at(0.99), at(1.0)])
}

/// p50, p99 and max of latencies in nanoseconds, as milliseconds.
pub fn percentiles_ms(lat_ns: &mut [i64]) -> Option<[f64; 3]> {
    if lat_ns.is_empty() {
        return None;
    }
    lat_ns.sort_unstable();
    let at = |q: f64| {
        let i = ((lat_ns.len() as f64 - 1.0) * q).round() as usize;
        lat_ns[i.min(lat_ns.len() - 1)] as f64 / 1e6
    };
    Some([at(0.50), at(0.99), at(1.0)])
}

/// How a child process ended.
pub struct ChildEnd {
    pub exited: bool,
    pub end_ns: i64,
    pub cpu_s: f64,
    pub peak_rss_mb: f64,
}

/// Waits (polling, bounded by `limit`) for the child `pid` and collects its resource use; kills
/// it by pid when the limit passes. Peak RSS is sampled from the child's own VmHWM every
/// millisecond: wait4's `ru_maxrss` would include the RSS of sim-host that the child had between
/// fork and exec.
pub fn wait_child(pid: u32, limit: Duration) -> ChildEnd {
    let deadline = Instant::now() + limit;
    let pid = pid as libc::pid_t;
    let mut killed = false;
    let status_path = format!("/proc/{pid}/status");
    let mut hwm = 0f64;
    loop {
        hwm = hwm.max(vm_hwm_mb(&status_path));
        let mut status = 0;
        // SAFETY: zeroed rusage is valid; wait4 writes it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: plain system call on our own child.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid || r < 0 {
            return ChildEnd {
                exited: !killed && r == pid,
                end_ns: wall_ns(),
                cpu_s: tv_s(ru.ru_utime) + tv_s(ru.ru_stime),
                peak_rss_mb: if hwm > 0.0 {
                    hwm
                } else {
                    ru.ru_maxrss as f64 / 1024.0
                },
            };
        }
        if !killed && Instant::now() > deadline {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
