//! Our plugin driven as a host drives it: configured through the C ABI, events drained in
//! batches after the wake-up callback, every value converted to the host's own type.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_line_abi::*;

use super::stats::wall_ns;
use crate::event::{RawEvent, Value};
use crate::plugin::{Line, Plugin};
use crate::wake::Waker;

#[derive(Clone)]
pub struct TagDef {
    pub id: u64,
    pub address: String,
    pub ty: MqlValueType,
    pub default: Option<String>,
}

#[derive(Clone)]
pub struct StationDef {
    pub id: u64,
    pub address: String,
    pub tags: Vec<TagDef>,
}

/// Tag ids are `station * 16 + slot`; the probe slot marks the one value per message that
/// counts the message and carries its send time.
pub const SLOTS: u64 = 16;

#[derive(Clone, Copy)]
pub enum ProbeKind {
    /// The value is text holding the send time in nanoseconds.
    TextNs,
    /// `time_ns` is the payload's time stamp, which is the send time.
    Stamp,
}

#[derive(Clone, Copy)]
pub struct Probe {
    pub kind: ProbeKind,
    pub slot: u64,
}

/// Writes issued while values flow in: one outstanding at a time, one every `every`.
pub struct WriteLoad {
    pub tag: u64,
    pub every: Duration,
    next_request: u64,
    outstanding: Option<(u64, Instant)>,
    last: Option<Instant>,
    pub lat_ns: Vec<i64>,
    pub failed: u64,
}

impl WriteLoad {
    pub fn new(tag: u64, every: Duration) -> WriteLoad {
        WriteLoad {
            tag,
            every,
            next_request: 1,
            outstanding: None,
            last: None,
            lat_ns: Vec::with_capacity(100_000),
            failed: 0,
        }
    }
}

#[derive(Default)]
pub struct Collected {
    pub count: u64,
    pub last_ns: i64,
    /// Publish-to-value latencies in microseconds (u32: half the memory in our own RSS).
    pub lat_us: Vec<u32>,
    pub events: u64,
}

pub struct HostLine<'p> {
    line: Line<'p>,
    waker: Arc<Waker>,
    buf: Vec<RawEvent>,
    connected: bool,
    /// Seconds spent in `line_create`, `line_add_station` and `line_add_tag`.
    pub configure_s: f64,
    /// Seconds spent in `line_start`.
    pub start_s: f64,
}

fn pairs(params: &[(&str, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

impl<'p> HostLine<'p> {
    pub fn build(
        plugin: &'p Plugin,
        params: &[(&str, String)],
        stations: &[StationDef],
    ) -> Result<HostLine<'p>, String> {
        let waker = Arc::new(Waker::default());
        let began = Instant::now();
        let mut line = Line::create(
            plugin,
            "bench",
            &pairs(params),
            MQL_LOG_WARN,
            Some(waker.clone()),
        )
        .map_err(|e| e.message)?;
        for s in stations {
            line.add_station(s.id, &format!("st{}", s.id), &s.address, &[])
                .map_err(|e| e.message)?;
            for t in &s.tags {
                line.add_tag(
                    s.id,
                    t.id,
                    &format!("t{}", t.id),
                    &t.address,
                    t.ty,
                    t.default.as_deref(),
                )
                .map_err(|e| e.message)?;
            }
        }
        let configure_s = began.elapsed().as_secs_f64();
        let started = Instant::now();
        line.start().map_err(|e| e.message)?;
        Ok(HostLine {
            line,
            waker,
            buf: Vec::with_capacity(512),
            connected: false,
            configure_s,
            start_s: started.elapsed().as_secs_f64(),
        })
    }

    /// Drains one batch; returns whether more may wait.
    fn drain(&mut self) -> Result<bool, String> {
        self.buf.clear();
        let full = self.line.poll(&mut self.buf).map_err(|e| e.message)?;
        for e in &self.buf {
            match e.kind {
                MQL_EVENT_LINE_STATE => self.connected = e.code == MQL_LINE_CONNECTED,
                MQL_EVENT_LOG if e.code <= MQL_LOG_WARN => {
                    eprintln!("bench: plugin log: {}", e.text)
                }
                _ => {}
            }
        }
        Ok(full)
    }

    /// Waits for the line to connect. Events drained meanwhile are dropped, so nothing may
    /// publish to the line before this returns.
    pub fn wait_connected(&mut self, limit: Duration) -> Result<(), String> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if !self.drain()? {
                if self.connected {
                    return Ok(());
                }
                self.waker.wait(Duration::from_millis(10));
            }
        }
        Err("the line did not connect".into())
    }

    /// The line's counters, as a host reads them through `line_stats`.
    pub fn stats(&self) -> Result<mqtt_line_host::stats::LineStats, String> {
        self.line.stats().map_err(|e| e.message)
    }

    /// Writes `count` values to `tags` in turn, at most `window` outstanding, until all are done
    /// or `limit` passed: (done ok, failed, wall time of the last done). Each write is its own
    /// request; the value is the request number.
    pub fn write_flood(
        &mut self,
        tags: &[u64],
        count: u64,
        window: u64,
        limit: Duration,
    ) -> Result<(u64, u64, i64), String> {
        let (mut issued, mut ok, mut failed, mut last_ns) = (0u64, 0u64, 0u64, 0i64);
        let end = Instant::now() + limit;
        while ok + failed < count && Instant::now() < end {
            while issued < count && issued - ok - failed < window {
                let tag = tags[(issued % tags.len() as u64) as usize];
                issued += 1;
                if self.line.write(tag, issued, &issued.to_string()).is_err() {
                    failed += 1;
                }
            }
            let full = self.drain()?;
            for e in &self.buf {
                if e.kind == MQL_EVENT_WRITE_DONE {
                    if e.code == MQL_WRITE_OK {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                    last_ns = wall_ns();
                }
            }
            if !full {
                self.waker.wait(Duration::from_micros(200));
            }
        }
        Ok((ok, failed, last_ns))
    }

    /// Takes events until `target` probe values arrived or `limit` passed. `seen` publishes the
    /// count for a closed-loop publisher; `writes` issues writes meanwhile.
    pub fn collect(
        &mut self,
        probe: Probe,
        target: u64,
        limit: Duration,
        seen: Option<&AtomicU64>,
        mut writes: Option<&mut WriteLoad>,
    ) -> Result<Collected, String> {
        let mut c = Collected {
            lat_us: Vec::with_capacity(target.min(2_000_000) as usize),
            ..Collected::default()
        };
        let end = Instant::now() + limit;
        while c.count < target && Instant::now() < end {
            if let Some(w) = writes.as_deref_mut() {
                let now = Instant::now();
                if w.outstanding.is_none() && w.last.is_none_or(|l| now >= l + w.every) {
                    let req = w.next_request;
                    w.next_request += 1;
                    match self.line.write(w.tag, req, "42") {
                        Ok(()) => w.outstanding = Some((req, now)),
                        Err(_) => w.failed += 1,
                    }
                    w.last = Some(now);
                }
            }
            let full = self.drain()?;
            let now = wall_ns();
            for e in &self.buf {
                c.events += 1;
                match e.kind {
                    MQL_EVENT_TAG_VALUE if e.tag_id % SLOTS == probe.slot => {
                        let sent = match (probe.kind, &e.value) {
                            (ProbeKind::TextNs, Value::Text(t)) => t.parse::<i64>().ok(),
                            (ProbeKind::Stamp, _) if e.flags & MQL_FLAG_TIME_FROM_PAYLOAD != 0 => {
                                Some(e.time_ns)
                            }
                            _ => None,
                        };
                        if let Some(sent) = sent {
                            c.lat_us
                                .push(((now - sent).max(0) / 1000).min(u32::MAX as i64) as u32);
                        }
                        c.count += 1;
                        c.last_ns = now;
                    }
                    MQL_EVENT_WRITE_DONE => {
                        if let Some(w) = writes.as_deref_mut() {
                            if let Some((req, at)) = w.outstanding {
                                if req == e.request_id {
                                    if e.code == MQL_WRITE_OK {
                                        w.lat_ns.push(at.elapsed().as_nanos() as i64);
                                    } else {
                                        w.failed += 1;
                                    }
                                    w.outstanding = None;
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let Some(s) = seen {
                s.store(c.count, Ordering::Release);
            }
            if !full {
                let wait = if writes.is_some() {
                    Duration::from_micros(500)
                } else {
                    Duration::from_millis(20)
                };
                self.waker.wait(wait);
            }
        }
        Ok(c)
    }
}
