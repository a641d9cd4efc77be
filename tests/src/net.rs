//! Loopback ports.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Ports handed out by this process so far; keeps parallel tests from picking the same port.
static HANDED_OUT: AtomicU32 = AtomicU32::new(0);

/// Where this process starts in the range: drawn once, so that successive ports step apart
/// from one start. (Drawn anew for every port, two draws could land on the same port: a
/// duplicate in one run of `free_ports_are_distinct_and_unused` in twenty ports.)
static START: OnceLock<u32> = OnceLock::new();

/// The lowest port of the kernel's ephemeral range (`ip_local_port_range`).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

fn can_bind(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
///
/// Ports are taken from below the kernel's ephemeral range, not from a bind to port 0: a broker
/// that a test kills and restarts must get its port back, and while it is down a client retrying
/// to connect to an ephemeral-range port can be given that very port as its own local port (a TCP
/// self-connect), which would then hold the port. Falls back to a bind to port 0.
pub fn free_port() -> u16 {
    let low = u32::from(ephemeral_low()).clamp(12000, 65535);
    let base = 10000u32;
    let span = low - base;
    let seed = *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id().wrapping_mul(7919)
    });
    for _ in 0..200 {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        // A stride coprime with most spans spreads successive ports apart.
        let port = base + (seed.wrapping_add(n.wrapping_mul(97))) % span;
        if let Ok(port) = u16::try_from(port) {
            if can_bind(port) {
                return port;
            }
        }
    }
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free TCP port on 127.0.0.1: {e}"),
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`; false after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    wait_for_addr(Ipv4Addr::LOCALHOST, port, timeout)
}

/// Waits until something accepts TCP connections on `ip`:`port` (any loopback address); false
/// after `timeout`.
pub fn wait_for_addr(ip: Ipv4Addr, port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from((ip, port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
