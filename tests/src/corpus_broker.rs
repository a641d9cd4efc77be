//! A fake broker driven step by step from the test's own thread, for replaying the malformed-packet
//! corpus (`../shared/corpora/mqtt-malformed-packets/`) against the real plugin.
//!
//! [`crate::fake_broker`] runs scripts fixed in advance on its own thread. The corpus needs more
//! than that: some cases start with something the client must do first (publish at QoS 1 or 2,
//! unsubscribe), which the test triggers through sim-host in the middle of a connection, and
//! whose packet id the case's bytes must then carry; and the test wants to *observe* how the line
//! reacted to each case (closed the connection, or still answers) rather than fail at the first
//! difference, so that known exceptions can be listed. Hence this small synchronous peer: the
//! test accepts a connection, reads and sends packets, and asks [`Peer::probe`] whether the client
//! is still there. It shares the hex helpers and packet types of `fake_broker`.
//!
//! [`load_corpus`] reads the corpus files into [`Case`]s.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fake_broker::take_packet;
pub use crate::fake_broker::{hex, to_hex, PacketType};
use crate::process::tail;
use crate::wire;

/// A listening fake broker on 127.0.0.1.
pub struct CorpusBroker {
    listener: TcpListener,
    port: u16,
    /// Every packet and event of every connection, for failure messages.
    transcript: String,
    connections: usize,
    /// Speaks MQTT 5 in its own packets (CONNACK, SUBACK, UNSUBACK, the probe PUBLISH).
    v5: bool,
}

impl CorpusBroker {
    /// A broker for an MQTT 5 client: [`CorpusBroker::start`] with v5 packets of its own.
    pub fn start_v5() -> CorpusBroker {
        CorpusBroker {
            v5: true,
            ..CorpusBroker::start()
        }
    }

    pub fn start() -> CorpusBroker {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, crate::free_port()))
            .or_else(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .unwrap_or_else(|e| panic!("corpus broker: cannot listen on 127.0.0.1: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("corpus broker: {e}"))
            .port();
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("corpus broker: {e}"));
        CorpusBroker {
            listener,
            port,
            transcript: String::new(),
            connections: 0,
            v5: false,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// The end of the transcript (all connections), for failure messages.
    pub fn transcript_tail(&self) -> String {
        tail(&self.transcript, 8000)
    }

    /// The whole transcript.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Adds a line to the transcript (a test's own remark: which case starts, say).
    pub fn note(&mut self, line: &str) {
        self.transcript.push_str(line);
        self.transcript.push('\n');
    }

    /// The next connection, or `Err` after `timeout`.
    pub fn accept(&mut self, timeout: Duration) -> Result<Peer<'_>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_nodelay(true);
                    self.connections += 1;
                    let index = self.connections;
                    let _ = writeln!(self.transcript, "conn {index}: accepted");
                    return Ok(Peer {
                        stream,
                        buf: Vec::new(),
                        index,
                        transcript: &mut self.transcript,
                        closed: false,
                        subacked: false,
                        v5: self.v5,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(format!("no connection within {timeout:?}"));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(format!("accept failed: {e}")),
            }
        }
    }
}

/// One packet as it was on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw(pub Vec<u8>);

impl Raw {
    /// The packet type (high nibble of the first byte).
    pub fn kind(&self) -> u8 {
        self.0.first().map_or(0, |b| b >> 4)
    }

    pub fn is(&self, ty: PacketType) -> bool {
        self.kind() == ty as u8
    }

    /// The variable header and payload.
    pub fn body(&self) -> &[u8] {
        let mut i = 1;
        while i < self.0.len() && self.0[i] & 0x80 != 0 {
            i += 1;
        }
        self.0.get(i + 1..).unwrap_or(&[])
    }

    /// The packet id of a packet whose variable header starts with one (not PUBLISH).
    pub fn pkid(&self) -> Option<u16> {
        self.body()
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// The packet id of a PUBLISH at QoS 1 or 2.
    pub fn publish_pkid(&self) -> Option<u16> {
        let body = self.body();
        let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
        let at = 2 + topic_len;
        body.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// QoS bits of a PUBLISH.
    pub fn qos(&self) -> u8 {
        self.0.first().map_or(0, |b| (b >> 1) & 0x03)
    }
}

/// What a read gave.
#[derive(Debug)]
pub enum Read1 {
    Packet(Raw),
    /// EOF or a reset: the client closed the connection.
    Closed(String),
    Timeout,
}

/// How the client reacted to what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// It closed the connection.
    Disconnected,
    /// It answered the probe PUBLISH with its PUBACK.
    CarriedOn,
    /// Neither within the time limit.
    Hung,
}

/// One accepted connection.
pub struct Peer<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    index: usize,
    transcript: &'a mut String,
    closed: bool,
    /// A SUBACK was sent: the line counts this connection as one that was ready.
    subacked: bool,
    /// The client speaks MQTT 5: the broker's own packets carry a property length.
    v5: bool,
}

/// Packet id of the probe PUBLISH.
pub const PROBE_PKID: u16 = 0x7a7a;

impl Peer<'_> {
    fn note(&mut self, what: &str) {
        let _ = writeln!(self.transcript, "conn {}: {what}", self.index);
    }

    /// Whether a SUBACK was sent on this connection (the line became ready on it).
    pub fn subacked(&self) -> bool {
        self.subacked
    }

    /// Whether the client was seen closing the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Writes raw bytes. A write to a connection the client already closed is not an error here:
    /// the next read tells.
    pub fn send(&mut self, bytes: &[u8]) {
        self.note(&format!("send {}", to_hex(bytes)));
        if let Err(e) = self
            .stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
        {
            self.note(&format!("send failed: {e}"));
        }
    }

    fn take_packet(&mut self) -> Option<Raw> {
        take_packet(&mut self.buf).map(Raw)
    }

    /// The next packet from the client, at most until `deadline`.
    pub fn read(&mut self, deadline: Instant) -> Read1 {
        loop {
            if let Some(p) = self.take_packet() {
                self.note(&format!("recv {}", to_hex(&p.0)));
                return Read1::Packet(p);
            }
            if self.closed {
                return Read1::Closed("closed before".into());
            }
            let now = Instant::now();
            if now >= deadline {
                return Read1::Timeout;
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    self.note("client closed the connection (EOF)");
                    return Read1::Closed("EOF".into());
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.closed = true;
                    self.note(&format!("client closed the connection ({e})"));
                    return Read1::Closed(e.to_string());
                }
            }
        }
    }

    /// Answers what a broker must answer for the line to go on: SUBSCRIBE with a SUBACK granting
    /// QoS 1, UNSUBSCRIBE with an UNSUBACK, PINGREQ with a PINGRESP, a QoS 1 or 2 PUBLISH with
    /// its PUBACK or PUBREC, PUBREL with PUBCOMP. True when `p` was one of those.
    pub fn answer(&mut self, p: &Raw) -> bool {
        let pkid = p.pkid().unwrap_or(0);
        match p.kind() {
            8 if self.v5 => {
                let [hi, lo] = pkid.to_be_bytes();
                self.send(&wire::frame(0x90, &[hi, lo, 0, 1]));
                self.subacked = true;
            }
            8 => {
                self.send(&wire::suback(pkid, 1));
                self.subacked = true;
            }
            10 if self.v5 => {
                let [hi, lo] = pkid.to_be_bytes();
                self.send(&wire::frame(0xB0, &[hi, lo, 0, 0]));
            }
            10 => self.send(&wire::unsuback(pkid)),
            12 => self.send(&wire::pingresp()),
            3 if p.qos() > 0 => {
                let pkid = p.publish_pkid().unwrap_or(0);
                let ack = if p.qos() == 1 {
                    wire::puback(pkid)
                } else {
                    wire::pubrec(pkid)
                };
                self.send(&ack);
            }
            6 => self.send(&wire::pubcomp(pkid)),
            _ => return false,
        }
        true
    }

    /// Reads until a packet satisfying `want`, answering the others with [`Peer::answer`].
    pub fn read_until(
        &mut self,
        what: &str,
        timeout: Duration,
        want: impl Fn(&Raw) -> bool,
    ) -> Result<Raw, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read(deadline) {
                Read1::Packet(p) if want(&p) => return Ok(p),
                Read1::Packet(p) => {
                    self.answer(&p);
                }
                Read1::Closed(why) => {
                    return Err(format!(
                        "the client closed the connection ({why}) before {what}"
                    ))
                }
                Read1::Timeout => return Err(format!("no {what} within {timeout:?}")),
            }
        }
    }

    /// Expects CONNECT and answers it with a successful CONNACK (no session present).
    pub fn connack(&mut self, timeout: Duration) -> Result<(), String> {
        let p = self.read_until("CONNECT", timeout, |_| true)?;
        if !p.is(PacketType::Connect) {
            return Err(format!("expected CONNECT, got {}", to_hex(&p.0)));
        }
        let connack = self.connack_bytes();
        self.send(&connack);
        Ok(())
    }

    /// A successful CONNACK (no session present) of the client's protocol version.
    pub fn connack_bytes(&self) -> Vec<u8> {
        if self.v5 {
            wire::frame(0x20, &[0, 0, 0])
        } else {
            wire::connack()
        }
    }

    /// After CONNACK: answers UNSUBSCRIBE and SUBSCRIBE until the SUBACK went out, so that the
    /// line is connected. Returns the SUBSCRIBE.
    pub fn subscribe(&mut self, timeout: Duration) -> Result<Raw, String> {
        let p = self.read_until("SUBSCRIBE", timeout, |p| p.is(PacketType::Subscribe))?;
        self.answer(&p);
        Ok(p)
    }

    /// [`Peer::connack`] then [`Peer::subscribe`].
    pub fn handshake(&mut self, timeout: Duration) -> Result<(), String> {
        self.connack(timeout)?;
        self.subscribe(timeout).map(|_| ())
    }

    /// Sends a QoS 1 PUBLISH to `topic` and reads until its PUBACK (the client carried on) or
    /// the end of the connection (it disconnected), answering anything else a broker must.
    pub fn probe(&mut self, topic: &str, payload: &[u8], timeout: Duration) -> Reaction {
        if !self.closed {
            let publish = if self.v5 {
                // Topic, packet id, an empty property section, the payload.
                let mut body = (topic.len() as u16).to_be_bytes().to_vec();
                body.extend_from_slice(topic.as_bytes());
                body.extend_from_slice(&PROBE_PKID.to_be_bytes());
                body.push(0);
                body.extend_from_slice(payload);
                wire::frame(0x32, &body)
            } else {
                wire::publish(topic, payload, 1, PROBE_PKID)
            };
            self.send(&publish);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.read(deadline) {
                Read1::Packet(p) if p.is(PacketType::PubAck) && p.pkid() == Some(PROBE_PKID) => {
                    return Reaction::CarriedOn
                }
                Read1::Packet(p) => {
                    self.answer(&p);
                }
                Read1::Closed(_) => return Reaction::Disconnected,
                Read1::Timeout => return Reaction::Hung,
            }
        }
    }

    /// Waits until the client closes the connection (answering what a broker must meanwhile).
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read(deadline) {
                Read1::Packet(p) => {
                    self.answer(&p);
                }
                Read1::Closed(_) => return true,
                Read1::Timeout => return false,
            }
        }
    }

    /// Closes the connection from the broker's side.
    pub fn close(mut self) {
        self.note("broker closes the connection");
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// One message of a corpus case: what the broker sends, or what the client must send back.
#[derive(Debug, Clone)]
pub enum Msg {
    Send(Vec<u8>),
    Recv(Vec<u8>),
}

/// One case of the corpus, with the group's defaults applied.
#[derive(Debug, Clone)]
pub struct Case {
    /// File, group and test name.
    pub id: String,
    pub group: String,
    pub name: String,
    pub ver: u64,
    /// Whether the fake broker first answers CONNECT with a plain CONNACK.
    pub connack: bool,
    /// Whether the client must close the connection.
    pub expect_disconnect: bool,
    /// Something the client does first: `publish-1`, `publish-2`, `unsubscribe`.
    pub command: Option<String>,
    /// What the command makes the client send (Mosquitto's client's bytes).
    pub group_msgs: Vec<Msg>,
    pub msgs: Vec<Msg>,
}

/// Where the corpus is: `$MQTT_MALFORMED_CORPUS`, else `<workspace>/../shared/corpora/
/// mqtt-malformed-packets`.
pub fn corpus_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MQTT_MALFORMED_CORPUS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    crate::workspace_dir()
        .join("..")
        .join("shared")
        .join("corpora")
        .join("mqtt-malformed-packets")
}

fn msgs(v: Option<&Value>) -> Vec<Msg> {
    v.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| {
                    let bytes = hex(m.get("payload")?.as_str()?);
                    match m.get("type")?.as_str()? {
                        "send" => Some(Msg::Send(bytes)),
                        "recv" => Some(Msg::Recv(bytes)),
                        _ => None,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every case of protocol level `ver` in the corpus directory, file by file (sorted), in file
/// order.
pub fn load_corpus(dir: &Path, ver: u64) -> Result<Vec<Case>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let groups: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", file.display()))?;
        let fname = file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        for g in groups.as_array().into_iter().flatten() {
            let group = g["group"].as_str().unwrap_or("").to_string();
            let bool_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_bool);
            for t in g["tests"].as_array().into_iter().flatten() {
                let case_ver = t
                    .get("ver")
                    .or_else(|| g.get("ver"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if case_ver != ver {
                    continue;
                }
                let name = t["name"].as_str().unwrap_or("").to_string();
                cases.push(Case {
                    id: format!("{fname} / {group} / {name}"),
                    group: group.clone(),
                    name,
                    ver: case_ver,
                    connack: bool_of(t, "connack")
                        .or(bool_of(g, "connack"))
                        .unwrap_or(true),
                    expect_disconnect: bool_of(t, "expect_disconnect")
                        .or(bool_of(g, "expect_disconnect"))
                        .unwrap_or(true),
                    command: g.get("command").and_then(Value::as_str).map(str::to_string),
                    group_msgs: msgs(g.get("group_msgs")),
                    msgs: msgs(t.get("msgs")),
                });
            }
        }
    }
    Ok(cases)
}
