//! MQTT 3.1.1 packets for the load generators, and the two generators themselves: a
//! publisher that writes pre-encoded PUBLISH packets to the broker in large batches, and a raw
//! source that plays the broker's part (CONNACK, SUBACK) and then streams PUBLISH packets.
//!
//! Each packet is a template copied into the output buffer; only the send time stamp (and the
//! packet id at QoS 1) is patched in, so the generators cost little next to the client measured.
//! Packets are encoded by rumqttc's `mqttbytes::v4` codec, the one the plugin's core uses, so the
//! benchmark has no MQTT encoder of its own; only reading packets back is done here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Disconnect, Publish, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::QoS;

use super::stats::{thread_cpu_s, wall_ns};

/// How the send time is written into a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StampFormat {
    /// Nanoseconds since the epoch as 19 decimal digits (text payloads).
    Ns19,
    /// RFC 3339 with nanoseconds and `Z`: 30 characters (JSON time fields, mask ISO8601).
    Iso30,
    /// Milliseconds since the epoch as 13 digits (Kepware's item time, mask UNIXMS).
    Ms13,
    /// Milliseconds since the epoch as a protobuf varint padded to 10 bytes (the `timestamp` of
    /// a Sparkplug B payload; decoders accept the padding).
    VarintMs10,
}

impl StampFormat {
    pub fn placeholder(self) -> &'static str {
        match self {
            StampFormat::Ns19 => "0000000000000000000",
            StampFormat::Iso30 => "2026-01-01T00:00:00.000000000Z",
            StampFormat::Ms13 => "0000000000000",
            // Binary payloads place the stamp themselves (`Template::publish_bytes`).
            StampFormat::VarintMs10 => "",
        }
    }

    fn write(self, ns: i64, out: &mut Vec<u8>) {
        out.clear();
        match self {
            StampFormat::Ns19 => {
                let _ = write!(out, "{ns:019}");
            }
            StampFormat::Iso30 => {
                let t = chrono::DateTime::from_timestamp_nanos(ns);
                let _ = write!(out, "{}", t.format("%Y-%m-%dT%H:%M:%S%.9fZ"));
            }
            StampFormat::Ms13 => {
                let _ = write!(out, "{:013}", ns / 1_000_000);
            }
            StampFormat::VarintMs10 => {
                let mut ms = (ns / 1_000_000).max(0) as u64;
                for i in 0..10 {
                    let more = if i < 9 { 0x80 } else { 0 };
                    out.push((ms & 0x7f) as u8 | more);
                    ms >>= 7;
                }
            }
        }
    }
}

/// One pre-encoded PUBLISH packet.
#[derive(Clone)]
pub struct Template {
    bytes: Vec<u8>,
    /// Where the time stamp placeholder starts.
    stamp_at: usize,
    /// Where the packet id stands (QoS 1 only).
    pkid_at: Option<usize>,
    /// The payload ends the packet.
    payload_len: usize,
}

/// One packet through the codec. It refuses only fields over MQTT's size limits.
fn encode(
    write: impl FnOnce(&mut BytesMut) -> Result<usize, rumqttc::mqttbytes::Error>,
) -> std::io::Result<Vec<u8>> {
    let mut buf = BytesMut::new();
    write(&mut buf).map_err(|e| std::io::Error::other(format!("cannot encode: {e:?}")))?;
    Ok(buf.to_vec())
}

impl Template {
    /// A PUBLISH of `payload` (which contains `stamp`'s placeholder once) to `topic`.
    pub fn publish(topic: &str, payload: &str, stamp: StampFormat, qos: u8) -> Template {
        let ph = stamp.placeholder();
        let in_payload = payload
            .find(ph)
            .expect("payload template without a time stamp placeholder");
        Template::publish_bytes(topic, payload.as_bytes(), in_payload, qos)
    }

    /// A PUBLISH of a binary `payload` whose time stamp starts at byte `stamp_in_payload`.
    pub fn publish_bytes(topic: &str, payload: &[u8], in_payload: usize, qos: u8) -> Template {
        let mut packet = Publish::new(
            topic,
            if qos > 0 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            },
            payload.to_vec(),
        );
        packet.pkid = u16::from(qos > 0);
        // The scenarios' topics and payloads are small constants, far under MQTT's limits.
        let bytes = encode(|b| packet.write(b)).expect("a benchmark PUBLISH within MQTT's limits");
        // The payload ends the packet; at QoS 1 the packet id stands just before it.
        let payload_at = bytes.len() - payload.len();
        let pkid_at = (qos > 0).then(|| payload_at - 2);
        let stamp_at = payload_at + in_payload;
        Template {
            bytes,
            stamp_at,
            pkid_at,
            payload_len: payload.len(),
        }
    }

    /// The same PUBLISH as MQTT 5 carries it: an empty property section (one 0 byte) before the
    /// payload, so the remaining length is one more (and its encoding may take a byte more).
    fn to_v5(&self) -> Template {
        let header_len = fixed_header_len(&self.bytes);
        let payload_at = self.bytes.len() - self.payload_len;
        let mut body = self.bytes[header_len..payload_at].to_vec();
        body.push(0);
        body.extend_from_slice(&self.bytes[payload_at..]);
        let mut bytes = fixed_header(self.bytes[0], body.len());
        let shift = bytes.len() - header_len;
        bytes.extend_from_slice(&body);
        Template {
            bytes,
            stamp_at: self.stamp_at + shift + 1,
            pkid_at: self.pkid_at.map(|p| p + shift),
            payload_len: self.payload_len,
        }
    }
}

/// The first byte and the remaining length as MQTT encodes it.
fn fixed_header(first: u8, mut len: usize) -> Vec<u8> {
    let mut out = vec![first];
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        out.push(b);
        if len == 0 {
            return out;
        }
    }
}

/// How many bytes the fixed header of `packet` takes.
fn fixed_header_len(packet: &[u8]) -> usize {
    1 + packet[1..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .map_or(1, |i| i + 1)
}

/// The CONNACK and SUBACK the raw source answers a client of protocol `level` with (5: MQTT 5,
/// else 3.1.1).
fn handshake(level: u8, pkid: u16) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    if level == 5 {
        let [hi, lo] = pkid.to_be_bytes();
        return Ok((vec![0x20, 3, 0, 0, 0], vec![0x90, 4, hi, lo, 0, 0]));
    }
    let granted = vec![SubscribeReasonCode::Success(QoS::AtMostOnce)];
    Ok((
        encode(|b| ConnAck::new(ConnectReturnCode::Success, false).write(b))?,
        encode(|b| SubAck::new(pkid, granted).write(b))?,
    ))
}

/// Publishes one retained message at QoS 1 and waits for its PUBACK (the Sparkplug scenario's
/// NBIRTH, which every subscriber then gets first; an empty payload clears it).
pub fn publish_retained(
    port: u16,
    client_id: &str,
    topic: &str,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(&connect_packet(client_id, true)?)?;
    read_packet(&mut s)?;
    let mut packet = Publish::new(topic, QoS::AtLeastOnce, payload.to_vec());
    packet.pkid = 1;
    packet.retain = true;
    s.write_all(&encode(|b| packet.write(b))?)?;
    let ack = read_packet(&mut s)?;
    if ack.first() != Some(&0x40) {
        return Err(std::io::Error::other(format!(
            "no PUBACK for the retained message: {ack:?}"
        )));
    }
    s.write_all(&encode(|b| Disconnect.write(b))?)?;
    Ok(())
}

pub fn connect_packet(client_id: &str, clean: bool) -> std::io::Result<Vec<u8>> {
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 60;
    connect.clean_session = clean;
    encode(|b| connect.write(b))
}

/// Reads one whole packet (fixed header included) from a blocking stream.
fn read_packet(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut first = [0u8; 1];
    s.read_exact(&mut first)?;
    let mut len = 0usize;
    let mut mult = 1usize;
    let mut header = vec![first[0]];
    for _ in 0..4 {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        header.push(b[0]);
        len += (b[0] & 0x7f) as usize * mult;
        mult *= 128;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    header.extend_from_slice(&body);
    Ok(header)
}

/// What a generator did.
#[derive(Debug, Default, Clone)]
pub struct GenReport {
    pub sent: u64,
    /// Wall time of the first packet written.
    pub start_ns: i64,
    pub elapsed_s: f64,
    /// CPU seconds of the generator's thread.
    pub cpu_s: f64,
    pub error: Option<String>,
}

/// A publishing plan: `count` messages over `templates` in turn.
pub struct Plan {
    /// Shared with the load description: at 10,000 stations they are 1.5 MB.
    pub templates: Arc<[Template]>,
    pub stamp: StampFormat,
    pub count: u64,
    /// Closed-loop pacing: at most `window` messages ahead of what the host has seen.
    pub window: Option<(Arc<AtomicU64>, u64)>,
    /// Give up after this long.
    pub limit: Duration,
    /// How many messages in a row share one formatted time stamp: [`STAMP_EVERY`], or 1 where
    /// every payload must differ from the one before (scenario 10: two equal payloads in a row
    /// are a device repeating itself to the redundant line's duplicate rule, not the load meant).
    pub stamp_every: u64,
}

const BATCH_BYTES: usize = 32 * 1024;
/// Messages sharing one formatted time stamp, by default: formatting a stamp for each would cost
/// the generator more than the client measured.
pub const STAMP_EVERY: u64 = 16;

impl Plan {
    /// Writes the plan's packets to `w` in batches; returns the count written.
    fn stream(&self, w: &mut impl Write, start: Instant) -> std::io::Result<u64> {
        let mut buf = Vec::with_capacity(BATCH_BYTES + 4096);
        let mut stamp = Vec::with_capacity(32);
        let n = self.templates.len() as u64;
        let mut pkid: u16 = 0;
        for i in 0..self.count {
            if let Some((seen, window)) = &self.window {
                let mut spins = 0u32;
                while i.saturating_sub(seen.load(Ordering::Acquire)) >= *window {
                    if !buf.is_empty() {
                        w.write_all(&buf)?;
                        buf.clear();
                    }
                    spins += 1;
                    if spins > 50 {
                        thread::sleep(Duration::from_micros(50));
                    } else {
                        thread::yield_now();
                    }
                    if start.elapsed() > self.limit {
                        return Ok(i);
                    }
                }
            }
            if i % self.stamp_every.max(1) == 0 {
                self.stamp.write(wall_ns(), &mut stamp);
                if start.elapsed() > self.limit {
                    w.write_all(&buf)?;
                    return Ok(i);
                }
            }
            let t = &self.templates[(i % n) as usize];
            let at = buf.len();
            buf.extend_from_slice(&t.bytes);
            buf[at + t.stamp_at..at + t.stamp_at + stamp.len()].copy_from_slice(&stamp);
            if let Some(p) = t.pkid_at {
                pkid = if pkid == u16::MAX { 1 } else { pkid + 1 };
                buf[at + p..at + p + 2].copy_from_slice(&pkid.to_be_bytes());
            }
            if buf.len() >= BATCH_BYTES {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)?;
        Ok(self.count)
    }
}

/// Publishes `plan` to the broker at `port` on its own thread. QoS 1 plans wait for every
/// PUBACK before they report, so the broker has stored all messages when this returns.
pub fn publish(port: u16, client_id: String, plan: Plan) -> thread::JoinHandle<GenReport> {
    thread::spawn(move || {
        let mut report = GenReport::default();
        let cpu0 = thread_cpu_s();
        let result = (|| -> std::io::Result<u64> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_nodelay(true)?;
            s.write_all(&connect_packet(&client_id, true)?)?;
            let ack = read_packet(&mut s)?;
            if ack.len() < 4 || ack[0] != 0x20 || ack[3] != 0 {
                return Err(std::io::Error::other(format!("CONNACK refused: {ack:?}")));
            }
            let qos1 = plan.templates.iter().any(|t| t.pkid_at.is_some());
            // PUBACKs (4 bytes each) are read on a helper thread so neither side blocks.
            let acks = if qos1 {
                let mut r = s.try_clone()?;
                let want = plan.count;
                Some(thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut bytes = 0u64;
                    while bytes / 4 < want {
                        match r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => bytes += n as u64,
                        }
                    }
                    bytes / 4
                }))
            } else {
                None
            };
            report.start_ns = wall_ns();
            let start = Instant::now();
            let sent = plan.stream(&mut s, start)?;
            if let Some(h) = acks {
                let got = h.join().unwrap_or(0);
                if got < sent {
                    return Err(std::io::Error::other(format!(
                        "only {got} of {sent} PUBACKs arrived"
                    )));
                }
            }
            report.elapsed_s = start.elapsed().as_secs_f64();
            s.write_all(&encode(|b| Disconnect.write(b))?)?;
            Ok(sent)
        })();
        match result {
            Ok(n) => report.sent = n,
            Err(e) => report.error = Some(format!("publisher: {e}")),
        }
        report.cpu_s = thread_cpu_s() - cpu0;
        report
    })
}

/// A raw source on a free loopback port: it accepts its clients, answers each one's CONNECT and
/// SUBSCRIBE, streams the plan to all of them (the same bytes to each, in the order they
/// connected), and then waits (bounded) for them to close.
pub struct RawSource {
    pub port: u16,
    pub handle: thread::JoinHandle<GenReport>,
}

/// A raw source for one client (scenario 6).
pub fn raw_source(plan: Plan) -> std::io::Result<RawSource> {
    raw_source_for(plan, 1)
}

/// Every write goes to each stream in turn: the raw source of several clients, which plays two
/// brokers fed by one dual-homed publisher (scenario 10).
struct Fanout(Vec<TcpStream>);

impl Write for Fanout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for s in &mut self.0 {
            s.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.iter_mut().try_for_each(Write::flush)
    }
}

/// Accepts one client within the plan's limit and answers its CONNECT and SUBSCRIBE; returns the
/// stream and the client's protocol level.
fn accept_subscriber(listener: &TcpListener, limit: Duration) -> std::io::Result<(TcpStream, u8)> {
    let accept_by = Instant::now() + limit;
    let mut s = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > accept_by {
                    return Err(std::io::Error::other("no client connected"));
                }
                thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    };
    s.set_nonblocking(false)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(limit))?;
    let connect = read_packet(&mut s)?;
    if connect[0] != 0x10 {
        return Err(std::io::Error::other(
            "the client did not start with CONNECT",
        ));
    }
    // The protocol level follows the protocol name "MQTT" (2 + 4 bytes).
    let level = connect
        .get(fixed_header_len(&connect) + 6)
        .copied()
        .unwrap_or(4);
    let (connack, _) = handshake(level, 0)?;
    s.write_all(&connack)?;
    let sub = loop {
        let p = read_packet(&mut s)?;
        if p[0] == 0x82 {
            break p;
        }
    };
    // Packet id right after the fixed header (one length byte for a short SUBSCRIBE).
    let at = 1 + sub[1..].iter().position(|b| b & 0x80 == 0).unwrap_or(0) + 1;
    let pkid = u16::from_be_bytes([sub[at], sub[at + 1]]);
    let (_, suback) = handshake(level, pkid)?;
    s.write_all(&suback)?;
    Ok((s, level))
}

/// A raw source that streams only once `clients` clients have subscribed.
pub fn raw_source_for(plan: Plan, clients: usize) -> std::io::Result<RawSource> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    listener.set_nonblocking(true)?;
    let handle = thread::spawn(move || {
        let mut report = GenReport::default();
        let cpu0 = thread_cpu_s();
        let result = (|| -> std::io::Result<u64> {
            let mut streams = Vec::with_capacity(clients);
            let mut level = 4;
            for _ in 0..clients {
                let (s, l) = accept_subscriber(&listener, plan.limit)?;
                streams.push(s);
                level = l;
            }
            let mut plan = plan;
            if level == 5 {
                plan.templates = plan.templates.iter().map(Template::to_v5).collect();
            }
            report.start_ns = wall_ns();
            let start = Instant::now();
            let mut out = Fanout(streams);
            let sent = plan.stream(&mut out, start)?;
            report.elapsed_s = start.elapsed().as_secs_f64();
            // Drain until the clients hang up (they count the messages they need).
            let mut sink = vec![0u8; 4096];
            let end = Instant::now() + plan.limit;
            for s in &mut out.0 {
                s.set_read_timeout(Some(Duration::from_millis(200)))?;
                while Instant::now() < end {
                    match s.read(&mut sink) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => break,
                    }
                }
            }
            Ok(sent)
        })();
        match result {
            Ok(n) => report.sent = n,
            Err(e) => report.error = Some(format!("raw source: {e}")),
        }
        report.cpu_s = thread_cpu_s() - cpu0;
        report
    });
    Ok(RawSource { port, handle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_template_layout() {
        let t = Template::publish("a/b", "x=0000000000000000000", StampFormat::Ns19, 1);
        assert_eq!(t.bytes[0], 0x32);
        assert_eq!(t.bytes[1] as usize, t.bytes.len() - 2);
        assert_eq!(&t.bytes[4..7], b"a/b");
        assert_eq!(t.pkid_at, Some(7));
        assert_eq!(&t.bytes[t.stamp_at..t.stamp_at + 3], b"000");
        let mut s = Vec::new();
        StampFormat::Iso30.write(1_700_000_000_123_456_789, &mut s);
        assert_eq!(s, b"2023-11-14T22:13:20.123456789Z");
        StampFormat::Ns19.write(1_700_000_000_123_456_789, &mut s);
        assert_eq!(s.len(), 19);
        StampFormat::Ms13.write(1_700_000_000_123_456_789, &mut s);
        assert_eq!(s, b"1700000000123");
    }
}
