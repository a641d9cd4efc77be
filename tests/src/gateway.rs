//! A dual-homed gateway: publishes every numbered message of a stream to each of its brokers, as
//! a gateway feeding two independent brokers does, and keeps going when one of them is down.
//!
//! The redundant line's tests (tests/redundant.rs) need a publisher that outlives a SIGKILLed
//! broker without a pause: mosquitto_pub per message ([`crate::try_publish`]) costs a process
//! and a connection each, and a failed attempt would hold the other broker back. So each stream
//! keeps one MQTT 3.1.1 connection per broker (rumqttc's codec, as [`crate::wire`]), publishes
//! message `n` to every broker in turn, waits for the broker's acknowledgement at QoS 1 and 2
//! (PUBACK; PUBREC, PUBREL, PUBCOMP), and counts, per broker, which messages it accepted. A
//! broker that fails is left out until a reconnect succeeds (tried again at most every
//! [`RETRY`]); its messages meanwhile go to the other broker only, as they would from a real
//! gateway.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, Packet, PubRel, Publish};
use rumqttc::mqttbytes::QoS;

/// How long one broker may take for a connection, an acknowledgement or a write before the
/// gateway counts it as down for this message.
const REPLY: Duration = Duration::from_secs(3);

/// How often a broker that is down is tried again.
const RETRY: Duration = Duration::from_millis(100);

/// The pause between two messages of a stream: a steady stream, not a flood (a flood would only
/// measure the brokers' queues).
const PACE: Duration = Duration::from_millis(4);

/// The largest packet read from a broker (only acknowledgements and CONNACK come back).
const MAX_PACKET: usize = 1024;

/// What one stream did: for each broker (in the order given), which message numbers it accepted.
#[derive(Debug, Clone)]
pub struct StreamReport {
    pub topic: String,
    pub qos: u8,
    /// Messages numbered `0..sent` were offered to every broker.
    pub sent: u64,
    /// Per broker: accepted (QoS 0: written to the socket; QoS 1: PUBACK; QoS 2: PUBCOMP).
    pub accepted: Vec<Vec<u64>>,
    /// Per broker: the failures seen (connect refused, connection reset, no acknowledgement).
    pub failures: Vec<Vec<String>>,
    /// Per broker: whether it accepted the stream's last message, `end-{index}`, sent to that
    /// broker only once the numbered messages ended.
    pub end_accepted: Vec<bool>,
}

impl StreamReport {
    /// Message numbers no broker accepted.
    pub fn accepted_by_none(&self) -> Vec<u64> {
        (0..self.sent)
            .filter(|n| !self.accepted.iter().any(|a| a.binary_search(n).is_ok()))
            .collect()
    }
}

/// One broker connection of a stream.
struct Home {
    addr: SocketAddr,
    client_id: String,
    conn: Option<TcpStream>,
    buf: BytesMut,
    pkid: u16,
    retry_at: Option<Instant>,
    accepted: Vec<u64>,
    failures: Vec<String>,
}

impl Home {
    fn new(port: u16, client_id: String) -> Home {
        Home {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            client_id,
            conn: None,
            buf: BytesMut::new(),
            pkid: 0,
            retry_at: None,
            accepted: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Sends this broker's end marker `end-{index}`, reconnecting first if it is down.
    fn end(&mut self, index: usize, topic: &str, qos: QoS) -> bool {
        if self.conn.is_none() && self.connect().is_err() {
            return false;
        }
        self.publish(topic, format!("end-{index}").as_bytes(), qos)
            .is_ok()
    }

    fn fail(&mut self, n: u64, why: String) {
        self.conn = None;
        self.retry_at = Some(Instant::now() + RETRY);
        // One line per outage is enough for a failure message.
        if self.failures.len() < 50 {
            self.failures.push(format!("message {n}: {why}"));
        }
    }

    /// Publishes message `n`; on failure the broker is down until the next retry.
    fn offer(&mut self, n: u64, topic: &str, payload: &[u8], qos: QoS) {
        if self.conn.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() < t) {
                return;
            }
            if let Err(e) = self.connect() {
                self.fail(n, format!("connect: {e}"));
                return;
            }
        }
        match self.publish(topic, payload, qos) {
            Ok(()) => self.accepted.push(n),
            Err(e) => self.fail(n, e),
        }
    }

    fn connect(&mut self) -> Result<(), String> {
        let mut stream =
            TcpStream::connect_timeout(&self.addr, REPLY).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(REPLY))
            .and_then(|_| stream.set_write_timeout(Some(REPLY)))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| e.to_string())?;
        let mut connect = Connect::new(self.client_id.clone());
        // No keep-alive: a stream paused by its test must not be closed by the broker.
        connect.keep_alive = 0;
        self.buf.clear();
        send(&mut stream, &Packet::Connect(connect))?;
        self.conn = Some(stream);
        match self.read_packet()? {
            Packet::ConnAck(ack)
                if ack.code == rumqttc::mqttbytes::v4::ConnectReturnCode::Success =>
            {
                Ok(())
            }
            other => Err(format!("expected an accepting CONNACK, got {other:?}")),
        }
    }

    fn next_pkid(&mut self) -> u16 {
        self.pkid = if self.pkid == u16::MAX {
            1
        } else {
            self.pkid + 1
        };
        self.pkid
    }

    fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS) -> Result<(), String> {
        let mut publish = Publish::new(topic, qos, payload.to_vec());
        if qos != QoS::AtMostOnce {
            publish.pkid = self.next_pkid();
        }
        let pkid = publish.pkid;
        self.write(&Packet::Publish(publish))?;
        match qos {
            QoS::AtMostOnce => Ok(()),
            QoS::AtLeastOnce => match self.read_packet()? {
                Packet::PubAck(a) if a.pkid == pkid => Ok(()),
                other => Err(format!("expected PUBACK {pkid}, got {other:?}")),
            },
            QoS::ExactlyOnce => {
                match self.read_packet()? {
                    Packet::PubRec(r) if r.pkid == pkid => {}
                    other => return Err(format!("expected PUBREC {pkid}, got {other:?}")),
                }
                self.write(&Packet::PubRel(PubRel::new(pkid)))?;
                match self.read_packet()? {
                    Packet::PubComp(c) if c.pkid == pkid => Ok(()),
                    other => Err(format!("expected PUBCOMP {pkid}, got {other:?}")),
                }
            }
        }
    }

    fn write(&mut self, packet: &Packet) -> Result<(), String> {
        match self.conn.as_mut() {
            Some(stream) => send(stream, packet),
            None => Err("not connected".into()),
        }
    }

    /// The next whole packet from the broker, within [`REPLY`].
    fn read_packet(&mut self) -> Result<Packet, String> {
        let deadline = Instant::now() + REPLY;
        loop {
            match Packet::read(&mut self.buf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(format!("bad packet from the broker: {e:?}")),
            }
            if Instant::now() >= deadline {
                return Err(format!("no reply within {REPLY:?}"));
            }
            let Some(stream) = self.conn.as_mut() else {
                return Err("not connected".into());
            };
            let mut chunk = [0u8; 512];
            match stream.read(&mut chunk) {
                Ok(0) => return Err("the broker closed the connection".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted) => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

fn send(stream: &mut TcpStream, packet: &Packet) -> Result<(), String> {
    let mut out = BytesMut::new();
    packet
        .write(&mut out, usize::MAX)
        .map_err(|e| format!("cannot encode {packet:?}: {e:?}"))?;
    stream.write_all(&out).map_err(|e| format!("write: {e}"))
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// One numbered stream to every broker, on its own thread.
struct Stream {
    stop: Arc<AtomicBool>,
    /// How many messages were offered to every broker so far.
    sent: Arc<AtomicU64>,
    handle: Option<JoinHandle<StreamReport>>,
}

/// Streams of numbered messages (payload: the number in decimal), each published to every broker
/// of the gateway, until [`Gateway::finish`]; then each broker gets a last message of its own,
/// `end-{index}`, on the same connection: once a subscriber of that broker has it, it has had
/// every earlier message of the stream the broker accepted (a broker forwards one publisher's
/// messages of one topic and QoS in order).
pub struct Gateway {
    streams: Vec<(String, Stream)>,
}

impl Gateway {
    /// Starts one stream per `(topic, qos)`, each publishing to every port of `ports` (in that
    /// order) with client ids `{name}-{topic}-{broker index}`.
    pub fn start(name: &str, ports: &[u16], streams: &[(&str, u8)]) -> Gateway {
        let streams = streams
            .iter()
            .map(|&(topic, level)| {
                let stop = Arc::new(AtomicBool::new(false));
                let sent = Arc::new(AtomicU64::new(0));
                let homes: Vec<Home> = ports
                    .iter()
                    .enumerate()
                    .map(|(i, &port)| {
                        let id = format!("{name}-{}-{i}", topic.replace('/', "-"));
                        Home::new(port, id)
                    })
                    .collect();
                let (flag, count, topic_owned) = (stop.clone(), sent.clone(), topic.to_string());
                let handle =
                    std::thread::spawn(move || run(topic_owned, level, homes, flag, count));
                (
                    topic.to_string(),
                    Stream {
                        stop,
                        sent,
                        handle: Some(handle),
                    },
                )
            })
            .collect();
        Gateway { streams }
    }

    /// How many messages the stream on `topic` has offered to every broker so far.
    pub fn sent(&self, topic: &str) -> u64 {
        self.streams
            .iter()
            .find(|(t, _)| t == topic)
            .map_or(0, |(_, s)| s.sent.load(Ordering::Acquire))
    }

    /// Stops every stream after the message under way and returns what each did.
    pub fn finish(mut self) -> Vec<StreamReport> {
        for (_, s) in &self.streams {
            s.stop.store(true, Ordering::Release);
        }
        self.streams
            .iter_mut()
            .map(|(topic, s)| match s.handle.take().map(JoinHandle::join) {
                Some(Ok(report)) => report,
                _ => panic!("the gateway's stream {topic} panicked"),
            })
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        for (_, s) in &self.streams {
            s.stop.store(true, Ordering::Release);
        }
        for (_, s) in &mut self.streams {
            if let Some(h) = s.handle.take() {
                let _ = h.join();
            }
        }
    }
}

fn run(
    topic: String,
    level: u8,
    mut homes: Vec<Home>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> StreamReport {
    let q = qos(level);
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        let payload = n.to_string();
        for home in &mut homes {
            home.offer(n, &topic, payload.as_bytes(), q);
        }
        n += 1;
        sent.store(n, Ordering::Release);
        std::thread::sleep(PACE);
    }
    let end_accepted = homes
        .iter_mut()
        .enumerate()
        .map(|(i, home)| home.end(i, &topic, q))
        .collect();
    StreamReport {
        topic,
        qos: level,
        sent: n,
        accepted: homes.iter().map(|h| h.accepted.clone()).collect(),
        failures: homes.iter().map(|h| h.failures.clone()).collect(),
        end_accepted,
    }
}
