//! The replay's publisher: writes the recorded messages to the embedded broker as MQTT PUBLISH
//! packets (rumqttc's codec, no client or event loop) straight onto one TCP connection, with
//! flow control of its own.
//!
//! Why not rumqttc's client: it handed every message through a channel to its event loop, which
//! encoded and wrote it, and that hop took more time than the line spent on the message, so
//! replay ran slower than the line receives live (docs/commissioning.md). Writing the encoded
//! packets ourselves removes the hop, and then nothing else holds the publisher back; so it keeps
//! two windows:
//! - towards the broker: at most [`BROKER_INFLIGHT`] QoS 1 and 2 messages without their
//!   acknowledgement (packet identifiers are 16 bits, and rumqttd keeps them until acknowledged);
//! - towards the line, end to end: at most [`LINE_WINDOW_MESSAGES`] messages and
//!   [`LINE_WINDOW_BYTES`] bytes published that the line has not yet received (route events
//!   counted by the main loop). The embedded broker's message log is bounded
//!   ([`crate::demo::REPLAY_SEGMENTS`] segments) and drops its oldest segment when full, so without this
//!   window a publisher faster than the line would overrun messages the line has not read yet;
//!   with it, the log never holds more unread messages than the window, and memory stays bounded
//!   whatever the length of the recording.

use std::collections::VecDeque;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::recording::Message;

/// QoS 1 and 2 messages the broker may hold unacknowledged from the publisher.
pub(crate) const BROKER_INFLIGHT: usize = 8192;
/// Messages published but not yet received by the line.
pub(crate) const LINE_WINDOW_MESSAGES: usize = 50_000;
/// Bytes (as the broker's log counts them: topic, payload and 4) published but not yet received
/// by the line; a single larger message is still published, alone.
pub(crate) const LINE_WINDOW_BYTES: u64 = 8 * 1024 * 1024;
// The broker's log keeps more than the window: at least REPLAY_SEGMENTS - 1 full segments, and
// the segment holding the oldest unread message is one of them.
const _: () = assert!(
    LINE_WINDOW_BYTES as usize + crate::demo::REPLAY_SEGMENT_BYTES
        <= (crate::demo::REPLAY_SEGMENTS - 2) * crate::demo::REPLAY_SEGMENT_BYTES
);
/// Keep-alive of the publisher's connection; rumqttd refuses 0.
const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// A PINGREQ is sent when nothing was written for this long (a publisher waiting on a slow line).
const PING_AFTER: Duration = Duration::from_secs(20);
/// How long to wait for the broker's CONNACK.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between attempts to reach a broker that is still starting.
const CONNECT_RETRY: Duration = Duration::from_millis(20);
/// How often a publisher waiting for the line looks at its progress again.
const WINDOW_POLL: Duration = Duration::from_millis(1);
/// A line that receives nothing for this long while the window is full has lost messages: the
/// publisher goes on (the summary counts them as not received) rather than wait for ever.
const LINE_STALL: Duration = Duration::from_secs(3);
/// Encoded packets are written in batches of about this size.
const WRITE_BATCH: usize = 64 * 1024;

/// Why the publisher stopped; each names what failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error("cannot connect to the embedded broker on 127.0.0.1:{port}: {source}")]
    Connect { port: u16, source: io::Error },
    #[error(
        "the embedded broker on 127.0.0.1:{port} did not accept the replay publisher: {reason}"
    )]
    Refused { port: u16, reason: String },
    #[error("the connection to the embedded broker failed: {0}")]
    Io(#[from] io::Error),
    #[error("the embedded broker closed the publisher's connection: {0}")]
    Closed(String),
    #[error("cannot encode the message on topic '{topic}': {reason}")]
    Encode { topic: String, reason: String },
}

/// What the ack reader tells the writer.
#[derive(Default)]
struct Acks {
    /// Packet identifiers in use (awaiting PUBACK or PUBCOMP), indexed by identifier.
    in_use: Vec<bool>,
    inflight: usize,
    /// PUBRECs received whose PUBREL is still to be sent.
    pubrel_due: Vec<u16>,
    /// Set when the reader stopped: the connection is gone.
    closed: Option<String>,
}

struct Shared {
    acks: Mutex<Acks>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Acks> {
        // A reader that panicked leaves consistent data (plain flags and counters).
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How far the line got, shared with the main loop.
#[derive(Default)]
pub(crate) struct LineProgress {
    /// Messages the line received (route events).
    pub received: AtomicU64,
    /// The run is over: stop publishing.
    pub cancelled: AtomicBool,
}

/// The publisher's connection to the embedded broker.
pub(crate) struct Publisher {
    v5: bool,
    out: BufWriter<TcpStream>,
    socket: TcpStream,
    encoded: BytesMut,
    shared: Arc<Shared>,
    next_id: u16,
    last_write: Instant,
    /// Sizes of the published messages the line has not received yet, oldest first.
    unread: VecDeque<u64>,
    unread_bytes: u64,
    /// Messages taken as gone (received, or lost after a stall) from the front of `unread`.
    consumed: u64,
    /// Messages given up as lost after a stall.
    forgiven: u64,
}

impl Publisher {
    /// Connects (MQTT 3.1.1, or 5 with `v5`) and waits for the CONNACK.
    pub fn connect(port: u16, v5: bool) -> Result<Publisher, PublishError> {
        let socket = connect_when_listening(port)?;
        socket.set_nodelay(true)?;
        let id = format!("sim-host-replay-{}", std::process::id());
        let mut encoded = BytesMut::with_capacity(WRITE_BATCH * 2);
        let keep_alive = KEEP_ALIVE.as_secs() as u16;
        let written = if v5 {
            use rumqttc::v5::mqttbytes::v5::{Connect, ConnectProperties, Packet};
            let mut props = ConnectProperties::new();
            props.max_packet_size = Some(u32::MAX);
            let connect = Connect {
                keep_alive,
                client_id: id,
                clean_start: true,
                properties: Some(props),
            };
            Packet::Connect(connect, None, None)
                .write(&mut encoded, None)
                .map_err(|e| e.to_string())
        } else {
            let mut connect = rumqttc::mqttbytes::v4::Connect::new(id);
            connect.keep_alive = keep_alive;
            rumqttc::mqttbytes::v4::Packet::Connect(connect)
                .write(&mut encoded, usize::MAX)
                .map_err(|e| e.to_string())
        };
        written.map_err(|reason| PublishError::Refused { port, reason })?;
        let mut writer = socket.try_clone()?;
        writer.write_all(&encoded)?;
        encoded.clear();
        socket.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        let mut reader = socket.try_clone()?;
        let mut input = BytesMut::with_capacity(64 * 1024);
        let connack =
            read_packet(&mut reader, &mut input, v5).map_err(|e| PublishError::Refused {
                port,
                reason: e.to_string(),
            })?;
        match connack {
            Incoming::ConnAck { accepted: true } => {}
            Incoming::ConnAck { accepted: false } => {
                return Err(PublishError::Refused {
                    port,
                    reason: "CONNACK refused the connection".into(),
                })
            }
            other => {
                return Err(PublishError::Refused {
                    port,
                    reason: format!("{other:?} instead of CONNACK"),
                })
            }
        }
        socket.set_read_timeout(None)?;
        let shared = Arc::new(Shared {
            acks: Mutex::new(Acks {
                in_use: vec![false; usize::from(u16::MAX) + 1],
                ..Acks::default()
            }),
            changed: Condvar::new(),
        });
        let for_reader = shared.clone();
        thread::Builder::new()
            .name("replay-acks".into())
            .spawn(move || read_acks(reader, input, v5, &for_reader))
            .map_err(PublishError::Io)?;
        Ok(Publisher {
            v5,
            out: BufWriter::with_capacity(WRITE_BATCH, writer),
            socket,
            encoded,
            shared,
            next_id: 0,
            last_write: Instant::now(),
            unread: VecDeque::new(),
            unread_bytes: 0,
            consumed: 0,
            forgiven: 0,
        })
    }

    /// Publishes `m`; `to_line`: the line's filter takes it, so it counts in the line's window.
    /// Waits first for room in both windows. Returns false when the run was cancelled.
    pub fn publish(
        &mut self,
        m: Message,
        to_line: bool,
        line: &LineProgress,
    ) -> Result<bool, PublishError> {
        let size = 4 + m.topic.len() as u64 + m.payload.len() as u64;
        if to_line && !self.wait_for_line(size, line)? {
            return Ok(false);
        }
        let pkid = if m.qos > 0 {
            match self.take_id(line)? {
                Some(id) => id,
                None => return Ok(false),
            }
        } else {
            0
        };
        let qos = m.qos;
        self.encode(m, pkid)?;
        if self.encoded.len() >= WRITE_BATCH {
            self.write_encoded()?;
        }
        if to_line {
            self.unread.push_back(size);
            self.unread_bytes += size;
        }
        if qos == 2 {
            // rumqttd stores a QoS 2 message only when its PUBREL arrives: the PUBREL goes out
            // before the next message, so the line gets the messages in the recorded order.
            return self.release(pkid, line);
        }
        Ok(true)
    }

    /// Writes what is buffered and waits until the broker acknowledged every message.
    pub fn finish(&mut self, line: &LineProgress) -> Result<(), PublishError> {
        self.write_encoded()?;
        self.out.flush()?;
        loop {
            let mut acks = self.shared.lock();
            if let Some(reason) = acks.closed.take() {
                return Err(PublishError::Closed(reason));
            }
            if acks.inflight == 0 || line.cancelled.load(Ordering::Relaxed) {
                return Ok(());
            }
            let due = std::mem::take(&mut acks.pubrel_due);
            if due.is_empty() {
                drop(
                    self.shared
                        .changed
                        .wait_timeout(acks, WINDOW_POLL * 100)
                        .map_err(|_| PublishError::Closed("ack state poisoned".into()))?,
                );
                self.ping_if_idle()?;
            } else {
                drop(acks);
                for id in due {
                    self.encode_pubrel(id)?;
                }
                self.write_encoded()?;
                self.out.flush()?;
            }
        }
    }

    fn encode(&mut self, m: Message, pkid: u16) -> Result<(), PublishError> {
        let encode_error = |topic: &[u8], e: String| PublishError::Encode {
            topic: String::from_utf8_lossy(&topic[..topic.len().min(200)]).into_owned(),
            reason: e,
        };
        if self.v5 {
            let properties = v5_properties(&m);
            let publish = rumqttc::v5::mqttbytes::v5::Publish {
                dup: false,
                qos: qos_v5(m.qos),
                retain: m.retain,
                topic: Bytes::from(m.topic.into_bytes()),
                pkid,
                payload: Bytes::from(m.payload),
                properties: Some(properties),
            };
            publish
                .write(&mut self.encoded)
                .map_err(|e| encode_error(&publish.topic, e.to_string()))?;
        } else {
            let publish = rumqttc::mqttbytes::v4::Publish {
                dup: false,
                qos: qos_v4(m.qos),
                retain: m.retain,
                topic: m.topic,
                pkid,
                payload: Bytes::from(m.payload),
            };
            publish
                .write(&mut self.encoded)
                .map_err(|e| encode_error(publish.topic.as_bytes(), e.to_string()))?;
        }
        Ok(())
    }

    fn encode_pubrel(&mut self, pkid: u16) -> Result<(), PublishError> {
        let written = if self.v5 {
            rumqttc::v5::mqttbytes::v5::PubRel::new(pkid, None)
                .write(&mut self.encoded)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            rumqttc::mqttbytes::v4::PubRel::new(pkid)
                .write(&mut self.encoded)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        written.map_err(|reason| PublishError::Encode {
            topic: format!("(PUBREL {pkid})"),
            reason,
        })
    }

    fn write_encoded(&mut self) -> Result<(), PublishError> {
        if !self.encoded.is_empty() {
            self.out.write_all(&self.encoded)?;
            self.encoded.clear();
            self.last_write = Instant::now();
        }
        Ok(())
    }

    /// Before waiting: what is encoded goes out, or the broker and the line wait for it.
    pub fn flush(&mut self) -> Result<(), PublishError> {
        self.write_encoded()?;
        self.out.flush()?;
        Ok(())
    }

    fn ping_if_idle(&mut self) -> Result<(), PublishError> {
        if self.last_write.elapsed() < PING_AFTER {
            return Ok(());
        }
        // PINGREQ is the same two bytes in MQTT 3.1.1 and 5.
        self.out.write_all(&[0xC0, 0x00])?;
        self.out.flush()?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Waits until the line's window has room for a message of `size` bytes; false when the
    /// run was cancelled.
    fn wait_for_line(&mut self, size: u64, line: &LineProgress) -> Result<bool, PublishError> {
        let mut flushed = false;
        let mut last_progress = (self.consumed, Instant::now());
        loop {
            let gone = line.received.load(Ordering::Acquire) + self.forgiven;
            while self.consumed < gone {
                match self.unread.pop_front() {
                    Some(s) => self.unread_bytes -= s,
                    None => break,
                }
                self.consumed += 1;
            }
            let room = self.unread.is_empty()
                || (self.unread.len() < LINE_WINDOW_MESSAGES
                    && self.unread_bytes + size <= LINE_WINDOW_BYTES);
            if room {
                return Ok(true);
            }
            if line.cancelled.load(Ordering::Relaxed) {
                return Ok(false);
            }
            if !flushed {
                self.flush()?;
                flushed = true;
            }
            self.check_connection()?;
            self.send_due_pubrels()?;
            if self.consumed != last_progress.0 {
                last_progress = (self.consumed, Instant::now());
            } else if last_progress.1.elapsed() >= LINE_STALL {
                // The line lost what it has not received (the summary says how many): the window
                // starts again from here.
                self.forgiven += self.unread.len() as u64;
                last_progress = (self.consumed, Instant::now());
                continue;
            }
            self.ping_if_idle()?;
            thread::sleep(WINDOW_POLL);
        }
    }

    fn check_connection(&self) -> Result<(), PublishError> {
        match self.shared.lock().closed.take() {
            Some(reason) => Err(PublishError::Closed(reason)),
            None => Ok(()),
        }
    }

    fn send_due_pubrels(&mut self) -> Result<(), PublishError> {
        let due = std::mem::take(&mut self.shared.lock().pubrel_due);
        if due.is_empty() {
            return Ok(());
        }
        for id in due {
            self.encode_pubrel(id)?;
        }
        self.flush()
    }

    /// A free packet identifier, once fewer than [`BROKER_INFLIGHT`] are in use; `None` when the
    /// run was cancelled.
    fn take_id(&mut self, line: &LineProgress) -> Result<Option<u16>, PublishError> {
        let mut flushed = false;
        loop {
            {
                let mut acks = self.shared.lock();
                if let Some(reason) = acks.closed.take() {
                    return Err(PublishError::Closed(reason));
                }
                if acks.inflight < BROKER_INFLIGHT {
                    // At most BROKER_INFLIGHT of the 65535 identifiers are in use: a free one
                    // is found within BROKER_INFLIGHT + 1 steps.
                    loop {
                        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
                        let slot = usize::from(self.next_id);
                        if !acks.in_use[slot] {
                            acks.in_use[slot] = true;
                            acks.inflight += 1;
                            return Ok(Some(self.next_id));
                        }
                    }
                }
                if line.cancelled.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                if flushed && acks.pubrel_due.is_empty() {
                    let _ = self
                        .shared
                        .changed
                        .wait_timeout(acks, WINDOW_POLL * 100)
                        .map_err(|_| PublishError::Closed("ack state poisoned".into()))?;
                }
            }
            if !flushed {
                self.flush()?;
                flushed = true;
            }
            self.send_due_pubrels()?;
            self.ping_if_idle()?;
        }
    }

    /// Waits for the PUBREC of `pkid` and sends its PUBREL.
    fn release(&mut self, pkid: u16, line: &LineProgress) -> Result<bool, PublishError> {
        self.flush()?;
        loop {
            {
                let mut acks = self.shared.lock();
                if let Some(reason) = acks.closed.take() {
                    return Err(PublishError::Closed(reason));
                }
                if acks.pubrel_due.contains(&pkid) {
                    drop(acks);
                    self.send_due_pubrels()?;
                    return Ok(true);
                }
                if line.cancelled.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                let _ = self
                    .shared
                    .changed
                    .wait_timeout(acks, WINDOW_POLL * 100)
                    .map_err(|_| PublishError::Closed("ack state poisoned".into()))?;
            }
            self.ping_if_idle()?;
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // A clean DISCONNECT (the same two bytes in 3.1.1 and 5: normal disconnection), then the
        // socket is closed, which also ends the ack reader.
        let _ = self.write_encoded();
        let _ = self.out.write_all(&[0xE0, 0x00]);
        let _ = self.out.flush();
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// The broker binds its port on its own thread, maybe after we start: tries again until
/// [`CONNECT_TIMEOUT`].
fn connect_when_listening(port: u16) -> Result<TcpStream, PublishError> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && Instant::now() < deadline => {
                thread::sleep(CONNECT_RETRY);
            }
            Err(source) => return Err(PublishError::Connect { port, source }),
        }
    }
}

fn qos_v4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos_v5(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// What the broker sends the publisher.
#[derive(Debug)]
enum Incoming {
    ConnAck { accepted: bool },
    PubAck(u16),
    PubRec(u16),
    PubComp(u16),
    Other,
}

/// The next whole packet of `input`, `None` when more bytes are needed.
fn parse_one(input: &mut BytesMut, v5: bool) -> Option<Result<Incoming, PublishError>> {
    let unreadable =
        |e: String| PublishError::Closed(format!("a packet from the broker cannot be read: {e}"));
    if v5 {
        use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
        use rumqttc::v5::mqttbytes::Error;
        match Packet::read(input, None) {
            Ok(Packet::ConnAck(c)) => Some(Ok(Incoming::ConnAck {
                accepted: c.code == ConnectReturnCode::Success,
            })),
            Ok(Packet::PubAck(a)) => Some(Ok(Incoming::PubAck(a.pkid))),
            Ok(Packet::PubRec(a)) => Some(Ok(Incoming::PubRec(a.pkid))),
            Ok(Packet::PubComp(a)) => Some(Ok(Incoming::PubComp(a.pkid))),
            Ok(Packet::Disconnect(d)) => Some(Err(PublishError::Closed(format!(
                "DISCONNECT {:?}",
                d.reason_code
            )))),
            Ok(_) => Some(Ok(Incoming::Other)),
            Err(Error::InsufficientBytes(_)) => None,
            Err(e) => Some(Err(unreadable(e.to_string()))),
        }
    } else {
        use rumqttc::mqttbytes::v4::{ConnectReturnCode, Packet};
        use rumqttc::mqttbytes::Error;
        match Packet::read(input, usize::MAX) {
            Ok(Packet::ConnAck(c)) => Some(Ok(Incoming::ConnAck {
                accepted: c.code == ConnectReturnCode::Success,
            })),
            Ok(Packet::PubAck(a)) => Some(Ok(Incoming::PubAck(a.pkid))),
            Ok(Packet::PubRec(a)) => Some(Ok(Incoming::PubRec(a.pkid))),
            Ok(Packet::PubComp(a)) => Some(Ok(Incoming::PubComp(a.pkid))),
            Ok(_) => Some(Ok(Incoming::Other)),
            Err(Error::InsufficientBytes(_)) => None,
            Err(e) => Some(Err(unreadable(e.to_string()))),
        }
    }
}

/// Reads more bytes from the broker into `input`.
fn read_more(socket: &mut TcpStream, input: &mut BytesMut) -> Result<(), PublishError> {
    let mut chunk = [0u8; 16 * 1024];
    let n = socket.read(&mut chunk)?;
    if n == 0 {
        return Err(PublishError::Closed("end of stream".into()));
    }
    input.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Reads one packet from the broker.
fn read_packet(
    socket: &mut TcpStream,
    input: &mut BytesMut,
    v5: bool,
) -> Result<Incoming, PublishError> {
    loop {
        if let Some(result) = parse_one(input, v5) {
            return result;
        }
        read_more(socket, input)?;
    }
}

/// The ack reader: frees packet identifiers on PUBACK and PUBCOMP, asks for PUBRELs on PUBREC;
/// runs until the connection ends. The packets of one read are applied under one lock.
fn read_acks(mut socket: TcpStream, mut input: BytesMut, v5: bool, shared: &Shared) {
    let stop = |shared: &Shared, e: PublishError| {
        shared.lock().closed = Some(e.to_string());
        shared.changed.notify_all();
    };
    loop {
        if let Err(e) = read_more(&mut socket, &mut input) {
            return stop(shared, e);
        }
        let mut acks = shared.lock();
        while let Some(packet) = parse_one(&mut input, v5) {
            match packet {
                Ok(Incoming::PubAck(id) | Incoming::PubComp(id)) => {
                    let slot = usize::from(id);
                    if acks.in_use[slot] {
                        acks.in_use[slot] = false;
                        acks.inflight -= 1;
                    }
                }
                Ok(Incoming::PubRec(id)) => acks.pubrel_due.push(id),
                Ok(Incoming::ConnAck { .. } | Incoming::Other) => {}
                Err(e) => {
                    drop(acks);
                    return stop(shared, e);
                }
            }
        }
        drop(acks);
        shared.changed.notify_all();
    }
}

/// The MQTT 5 properties a recorded message is published with.
fn v5_properties(m: &Message) -> rumqttc::v5::mqttbytes::v5::PublishProperties {
    use base64::Engine;
    let p = &m.properties;
    rumqttc::v5::mqttbytes::v5::PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        topic_alias: None,
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data_base64.as_ref().and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .ok()
                .map(Into::into)
        }),
        user_properties: p.user_properties.clone(),
        // The broker assigns these from the subscription; they are not the publisher's.
        subscription_identifiers: Vec::new(),
        content_type: p.content_type.clone(),
    }
}
