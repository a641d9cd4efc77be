//! A scripted MQTT peer on loopback, for broker misbehaviour that mosquitto will not produce: a
//! SUBSCRIBE that is never answered, malformed or unexpected packets.
//!
//! The fake broker accepts connections one after another and runs one [`Script`] per connection:
//! expect a packet (by type or by exact bytes), send raw bytes, wait for the client to close, or
//! check that it stays connected. Every step has a deadline; the broker never panics in its own
//! thread but records what went wrong, and [`FakeBroker::wait_scripts`] fails the test with a
//! transcript of every byte exchanged. Connections beyond the scripts are accepted and closed at
//! once. Dropping the broker stops its thread and closes everything.
//!
//! ```no_run
//! use mqtt_line_e2e::fake_broker::{FakeBroker, PacketType, Script};
//! let broker = FakeBroker::start(vec![
//!     Script::new()
//!         .handshake()
//!         .send(&mqtt_line_e2e::wire::publish("a/b", b"hi", 0, 0))
//!         .read_until(PacketType::Disconnect),
//! ]);
//! // ... start sim-host against broker.port() ...
//! broker.wait_scripts();
//! ```
//!
//! The corpus in `../shared/corpora/mqtt-malformed-packets/` maps onto it directly: its
//! `connack: true` is [`Script::handshake`] (or [`Script::connack`] without the subscription), a
//! `send` message is [`Script::send_hex`], a `recv` message is [`Script::expect_hex`], and
//! `expect_disconnect` true / false is [`Script::expect_close`] / [`Script::expect_alive`].

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::process::tail;
use crate::wire;
use crate::TIMEOUT;

/// How long one step may wait unless the script says otherwise.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often blocked reads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// The packet id of [`Script::expect_alive`]'s PUBLISH.
const ALIVE_PKID: u16 = 0x7a7a;

/// MQTT control packet types (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
}

impl PacketType {
    fn matches(self, packet: &[u8]) -> bool {
        packet.first().is_some_and(|b| b >> 4 == self as u8)
    }
}

/// Bytes from hex text; spaces, tabs and newlines are ignored. Panics on anything else (a bug in
/// the test, not in the plugin).
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len() % 2 == 0,
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap_or("");
            u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex {s:?} in {text:?}"))
        })
        .collect()
}

/// Hex text of bytes, space separated.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[derive(Debug, Clone)]
enum Step {
    /// Read one packet; it must have this type.
    Expect(PacketType, Duration),
    /// Read one packet; it must be exactly these bytes.
    ExpectBytes(Vec<u8>, Duration),
    /// Read packets (answering PINGREQ) until one of this type.
    ReadUntil(PacketType, Duration),
    /// Write these bytes.
    Send(Vec<u8>),
    /// Answer the last SUBSCRIBE read with a SUBACK carrying its packet id and this return code.
    SubAck(u8),
    /// The client must close the connection (EOF or reset) in time; packets meanwhile are logged.
    ExpectClose(Duration),
    /// Send a QoS 1 PUBLISH and read (answering PINGREQ) until its PUBACK: the client is alive
    /// and still speaks MQTT. Mosquitto's own check for `expect_disconnect: false`.
    ExpectAlive(Duration),
    /// Keep the connection open this long whatever the client does (its bytes are discarded),
    /// as a broker that serves each socket on its own thread may, and fail if a new connection
    /// arrives meanwhile: such a broker would take that CONNECT for a session takeover.
    HoldOpen(Duration),
    /// Never close this connection: keep it open until a new connection arrives (which the next
    /// script serves), within the deadline.
    HoldUntilNextConnection(Duration),
}

/// What the fake broker does on one connection, step by step.
#[derive(Debug, Clone, Default)]
pub struct Script {
    steps: Vec<Step>,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Expects a packet of this type next.
    pub fn expect(self, ty: PacketType) -> Self {
        self.step(Step::Expect(ty, STEP_TIMEOUT))
    }

    /// Expects exactly these bytes (hex) as the next packet.
    pub fn expect_hex(self, bytes: &str) -> Self {
        self.step(Step::ExpectBytes(hex(bytes), STEP_TIMEOUT))
    }

    /// Skips packets until one of this type.
    pub fn read_until(self, ty: PacketType) -> Self {
        self.step(Step::ReadUntil(ty, STEP_TIMEOUT))
    }

    /// Sends raw bytes given as hex.
    pub fn send_hex(self, bytes: &str) -> Self {
        self.step(Step::Send(hex(bytes)))
    }

    /// Sends raw bytes.
    pub fn send(self, bytes: &[u8]) -> Self {
        self.step(Step::Send(bytes.to_vec()))
    }

    /// Expects CONNECT and answers with a successful CONNACK (session present 0).
    pub fn connack(self) -> Self {
        self.expect(PacketType::Connect).send(&wire::connack())
    }

    /// [`Script::connack`], then expects SUBSCRIBE and grants it at QoS 1: the line is connected.
    pub fn handshake(self) -> Self {
        self.connack().expect(PacketType::Subscribe).suback(0x01)
    }

    /// Answers the last SUBSCRIBE with a SUBACK of its packet id and `code` (0x80 refuses).
    pub fn suback(self, code: u8) -> Self {
        self.step(Step::SubAck(code))
    }

    /// The client must close the connection within `timeout`.
    pub fn expect_close(self, timeout: Duration) -> Self {
        self.step(Step::ExpectClose(timeout))
    }

    /// The client must still answer a QoS 1 PUBLISH with its PUBACK.
    pub fn expect_alive(self) -> Self {
        self.step(Step::ExpectAlive(STEP_TIMEOUT))
    }

    /// Keeps the connection open for `ms` milliseconds, even after the client closed its side;
    /// a new connection meanwhile fails the script (see [`Step::HoldOpen`]).
    pub fn hold_open_for_ms(self, ms: u64) -> Self {
        self.step(Step::HoldOpen(Duration::from_millis(ms)))
    }

    /// Keeps the connection open until the client connects again.
    pub fn hold_until_next_connection(self) -> Self {
        self.step(Step::HoldUntilNextConnection(STEP_TIMEOUT))
    }
}

/// How one script ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which connection (0 = the first accepted).
    pub connection: usize,
    /// `None` when every step passed.
    pub error: Option<String>,
}

#[derive(Default)]
struct State {
    transcript: String,
    outcomes: Vec<Outcome>,
    /// Connections accepted after the scripts ran out.
    extra_connections: usize,
    /// The user name and password of every MQTT 3.1.1 CONNECT received, in order.
    logins: Vec<(String, String)>,
}

/// A running fake broker on 127.0.0.1. Stopped on drop.
pub struct FakeBroker {
    port: u16,
    scripts: usize,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeBroker {
    /// Listens on a free loopback port and runs `scripts` on the connections it accepts, in order.
    pub fn start(scripts: Vec<Script>) -> FakeBroker {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, crate::free_port()))
            .or_else(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .unwrap_or_else(|e| panic!("fake broker: cannot listen on 127.0.0.1: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake broker: {e}"))
            .port();
        if let Err(e) = listener.set_nonblocking(true) {
            panic!("fake broker: {e}");
        }
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let count = scripts.len();
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("fake-broker-{port}"))
                .spawn(move || serve(listener, scripts, &state, &stop))
                .unwrap_or_else(|e| panic!("fake broker: cannot start its thread: {e}"))
        };
        FakeBroker {
            port,
            scripts: count,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything exchanged so far, one line per packet or event.
    pub fn transcript(&self) -> String {
        self.with_state(|s| s.transcript.clone())
    }

    /// Outcomes of the scripts that finished so far.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.with_state(|s| s.outcomes.clone())
    }

    /// The user name and password of each 3.1.1 CONNECT received so far (empty strings for a
    /// CONNECT without them).
    pub fn logins(&self) -> Vec<(String, String)> {
        self.with_state(|s| s.logins.clone())
    }

    /// Connections accepted after every script had run.
    pub fn extra_connections(&self) -> usize {
        self.with_state(|s| s.extra_connections)
    }

    fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.lock() {
            Ok(s) => f(&s),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Waits (at most [`TIMEOUT`]) until every script ran, and panics with the transcript unless
    /// each passed.
    pub fn wait_scripts(&self) -> Vec<Outcome> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let outcomes = self.outcomes();
            if let Some(failed) = outcomes.iter().find(|o| o.error.is_some()) {
                panic!(
                    "fake broker: script {} failed: {}\n-- fake broker transcript --\n{}",
                    failed.connection,
                    failed.error.as_deref().unwrap_or(""),
                    tail(&self.transcript(), 8000)
                );
            }
            if outcomes.len() >= self.scripts {
                return outcomes;
            }
            if Instant::now() >= deadline {
                panic!(
                    "fake broker: {} of {} scripts finished within {TIMEOUT:?}\n\
                     -- fake broker transcript --\n{}",
                    outcomes.len(),
                    self.scripts,
                    tail(&self.transcript(), 8000)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn note(state: &Mutex<State>, line: String) {
    let mut s = match state.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    s.transcript.push_str(&line);
    s.transcript.push('\n');
}

fn serve(listener: TcpListener, scripts: Vec<Script>, state: &Mutex<State>, stop: &AtomicBool) {
    let mut scripts = scripts.into_iter();
    let mut connection = 0usize;
    // A connection accepted while a script held the previous one open.
    let mut next: Option<TcpStream> = None;
    while !stop.load(Ordering::Acquire) {
        let accepted = match next.take() {
            Some(stream) => Ok((stream, None)),
            None => listener.accept().map(|(s, a)| (s, Some(a))),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => {
                note(state, format!("accept failed: {e}"));
                return;
            }
        };
        let Some(script) = scripts.next() else {
            note(state, "extra connection: closed at once".into());
            if let Ok(mut s) = state.lock() {
                s.extra_connections += 1;
            }
            continue;
        };
        note(state, format!("conn {connection}: accepted"));
        let mut conn = Conn {
            stream,
            buf: Vec::new(),
            index: connection,
            state,
            stop,
            last_subscribe: None,
            listener: &listener,
            next: None,
        };
        let error = conn.run(&script).err();
        next = conn.next.take();
        if let Some(e) = &error {
            note(state, format!("conn {connection}: FAILED: {e}"));
        } else {
            note(state, format!("conn {connection}: script done"));
        }
        let _ = conn.stream.shutdown(Shutdown::Both);
        if let Ok(mut s) = state.lock() {
            s.outcomes.push(Outcome { connection, error });
        }
        connection += 1;
    }
}

/// What a read gave.
enum Read1 {
    Packet(Vec<u8>),
    Closed(String),
    Timeout,
}

struct Conn<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    index: usize,
    state: &'a Mutex<State>,
    stop: &'a AtomicBool,
    last_subscribe: Option<u16>,
    listener: &'a TcpListener,
    /// A connection that arrived while this one was held open.
    next: Option<TcpStream>,
}

impl Conn<'_> {
    fn note(&self, what: String) {
        note(self.state, format!("conn {}: {what}", self.index));
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.note(format!("send {}", to_hex(bytes)));
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| format!("cannot send {}: {e}", to_hex(bytes)))
    }

    /// A whole packet from `buf`, when it holds one.
    fn take_packet(&mut self) -> Option<Vec<u8>> {
        take_packet(&mut self.buf)
    }

    fn read_packet(&mut self, deadline: Instant) -> Read1 {
        loop {
            if let Some(p) = self.take_packet() {
                self.note(format!("recv {}", to_hex(&p)));
                if PacketType::Connect.matches(&p) {
                    if let Some(login) = wire::connect_login(&p) {
                        if let Ok(mut s) = self.state.lock() {
                            s.logins.push(login);
                        }
                    }
                }
                if PacketType::Subscribe.matches(&p) && p.len() >= 4 {
                    let at = p.len() - self.remaining_len(&p);
                    self.last_subscribe = Some(u16::from_be_bytes([p[at], p[at + 1]]));
                }
                return Read1::Packet(p);
            }
            let now = Instant::now();
            if now >= deadline || self.stop.load(Ordering::Acquire) {
                return Read1::Timeout;
            }
            let wait = (deadline - now).min(POLL);
            let _ = self.stream.set_read_timeout(Some(wait));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    let why = if self.buf.is_empty() {
                        "EOF".to_string()
                    } else {
                        format!("EOF after a partial packet {}", to_hex(&self.buf))
                    };
                    self.note(format!("client closed ({why})"));
                    return Read1::Closed(why);
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.note(format!("client closed ({e})"));
                    return Read1::Closed(e.to_string());
                }
            }
        }
    }

    /// Length of the variable header and payload of a whole packet.
    fn remaining_len(&self, p: &[u8]) -> usize {
        let mut i = 1;
        while i < p.len() && p[i] & 0x80 != 0 {
            i += 1;
        }
        p.len().saturating_sub(i + 1)
    }

    /// Answers a PINGREQ; true when `p` was one.
    fn answer_ping(&mut self, p: &[u8]) -> Result<bool, String> {
        if PacketType::PingReq.matches(p) {
            self.send(&wire::pingresp())?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Holds the connection open for `d`, discarding what the client sends; returns how long
    /// into the hold a new connection arrived, if one did (it is kept for the next script).
    fn hold(&mut self, d: Duration) -> Result<Option<Duration>, String> {
        let start = Instant::now();
        let mut client_open = true;
        while !self.stop.load(Ordering::Acquire) {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let after = start.elapsed();
                    self.note(format!(
                        "new connection while held open ({after:?} into the hold)"
                    ));
                    self.next = Some(stream);
                    return Ok(Some(after));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("accept failed: {e}")),
            }
            if start.elapsed() >= d {
                break;
            }
            if !client_open {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            let _ = self.stream.set_read_timeout(Some(Duration::from_millis(5)));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.note("client closed its side (EOF); held open".into());
                    client_open = false;
                }
                Ok(n) => self.note(format!("discarded {}", to_hex(&chunk[..n]))),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.note(format!("client closed ({e}); held open"));
                    client_open = false;
                }
            }
        }
        self.note(format!("closing after a hold of {:?}", start.elapsed()));
        Ok(None)
    }

    fn run(&mut self, script: &Script) -> Result<(), String> {
        for (n, step) in script.steps.iter().enumerate() {
            self.note(format!("step {n}: {step:?}"));
            self.step(step)
                .map_err(|e| format!("step {n} ({step:?}): {e}"))?;
        }
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Expect(ty, t) => match self.read_packet(Instant::now() + *t) {
                Read1::Packet(p) if ty.matches(&p) => Ok(()),
                Read1::Packet(p) => Err(format!("got {} instead", to_hex(&p))),
                Read1::Closed(why) => Err(format!("the client closed the connection ({why})")),
                Read1::Timeout => Err(format!("nothing within {t:?}")),
            },
            Step::ExpectBytes(want, t) => match self.read_packet(Instant::now() + *t) {
                Read1::Packet(p) if &p == want => Ok(()),
                Read1::Packet(p) => Err(format!("got {} instead", to_hex(&p))),
                Read1::Closed(why) => Err(format!("the client closed the connection ({why})")),
                Read1::Timeout => Err(format!("nothing within {t:?}")),
            },
            Step::ReadUntil(ty, t) => {
                let deadline = Instant::now() + *t;
                loop {
                    match self.read_packet(deadline) {
                        Read1::Packet(p) if ty.matches(&p) => return Ok(()),
                        Read1::Packet(p) => {
                            self.answer_ping(&p)?;
                        }
                        Read1::Closed(why) => {
                            return Err(format!("the client closed the connection ({why})"))
                        }
                        Read1::Timeout => return Err(format!("none within {t:?}")),
                    }
                }
            }
            Step::Send(bytes) => self.send(bytes),
            Step::SubAck(code) => {
                let pkid = self
                    .last_subscribe
                    .ok_or("no SUBSCRIBE was read to answer")?;
                self.send(&wire::suback(pkid, *code))
            }
            Step::ExpectClose(t) => {
                let deadline = Instant::now() + *t;
                loop {
                    match self.read_packet(deadline) {
                        Read1::Packet(p) => {
                            self.answer_ping(&p)?;
                        }
                        Read1::Closed(_) => return Ok(()),
                        Read1::Timeout => {
                            return Err(format!("the client kept the connection for {t:?}"))
                        }
                    }
                }
            }
            Step::ExpectAlive(t) => {
                self.send(&wire::publish("fake/alive", b"ok", 1, ALIVE_PKID))?;
                let deadline = Instant::now() + *t;
                loop {
                    match self.read_packet(deadline) {
                        Read1::Packet(p) if p == wire::puback(ALIVE_PKID) => return Ok(()),
                        Read1::Packet(p) => {
                            self.answer_ping(&p)?;
                        }
                        Read1::Closed(why) => {
                            return Err(format!("the client closed the connection ({why})"))
                        }
                        Read1::Timeout => return Err(format!("no PUBACK within {t:?}")),
                    }
                }
            }
            Step::HoldOpen(d) => match self.hold(*d)? {
                None => Ok(()),
                Some(after) => Err(format!(
                    "a new connection arrived {after:?} into the hold, before this one was closed"
                )),
            },
            Step::HoldUntilNextConnection(t) => match self.hold(*t)? {
                Some(_) => Ok(()),
                None => Err(format!("no new connection within {t:?}")),
            },
        }
    }
}

/// Takes one whole MQTT packet off the front of `buf`, when it holds one. Bytes that cannot be
/// MQTT (a remaining length over four bytes) are all handed over, so the caller fails with them.
pub fn take_packet(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut len = 0usize;
    let mut shift = 0;
    let mut i = 1;
    loop {
        let b = *buf.get(i)?;
        len |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 21 {
            return Some(std::mem::take(buf));
        }
    }
    let end = i + len;
    if buf.len() < end {
        return None;
    }
    Some(buf.drain(..end).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(port: u16) -> TcpStream {
        let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    fn read_exact(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).unwrap();
        buf
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex("20 02\n00 0a"), [0x20, 0x02, 0x00, 0x0a]);
        assert_eq!(to_hex(&[0x20, 0x02]), "20 02");
    }

    #[test]
    fn scripts_pass_and_fail_as_the_client_behaves() {
        let broker = FakeBroker::start(vec![
            Script::new()
                .connack()
                .expect_hex("82 0a 0001 0005 612f2f2f23 01")
                .suback(0x01)
                .expect_alive()
                .expect_close(Duration::from_secs(5)),
            Script::new().expect(PacketType::Connect),
        ]);
        let mut c = client(broker.port());
        c.write_all(&hex("10 0c 0004 4d515454 04 02 0000 0000"))
            .unwrap();
        assert_eq!(read_exact(&mut c, 4), hex("20 02 00 00"));
        c.write_all(&hex("82 0a 0001 0005 612f2f2f23 01")).unwrap();
        assert_eq!(read_exact(&mut c, 5), hex("90 03 0001 01"));
        let publish = read_exact(&mut c, 18);
        assert_eq!(publish[0], 0x32);
        c.write_all(&hex("40 02 7a7a")).unwrap();
        drop(c);
        // The second connection sends a PINGREQ where CONNECT is expected: that script fails.
        let mut c = client(broker.port());
        c.write_all(&hex("c0 00")).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        while broker.outcomes().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let outcomes = broker.outcomes();
        assert_eq!(outcomes.len(), 2, "{}", broker.transcript());
        assert!(outcomes[0].error.is_none(), "{}", broker.transcript());
        assert!(
            outcomes[1]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("c0 00")),
            "{}",
            broker.transcript()
        );
    }
}
