//! The line's IO thread: a single-threaded tokio runtime that connects to the broker, moves bytes
//! between the socket and the core, and fires the core's timers. A redundant line (issue 21) runs
//! one connection loop per connection on the same runtime, each moving the bytes of its own.
//!
//! The core is shared with host calls behind a mutex that is never held across an await, so a
//! write from the host waits at most for the packets of one read to be processed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mqtt_line_core::Line;
use mqtt_line_core::Secret;
use mqtt_line_core::{Attempt, Closing, Deliberate, Ended, Event, LineEvent, LinkId};

use crate::deadline::DeadlineTimer;
use crate::queue::EventQueue;
use crate::transport::{resolve_credentials, Transport};
use crate::{logging, now_ns};

/// What the host side and the line's thread share.
pub struct Shared {
    line: Mutex<Line>,
    pub queue: Arc<EventQueue>,
    /// One per connection loop (A, B): a wake-up is for both, and each keeps its own permit.
    wake: [tokio::sync::Notify; 2],
    shutdown: AtomicBool,
    /// New parameters, per connection loop: each takes its own.
    reconnect: [AtomicBool; 2],
    /// Whether the line has a connection B: without one, B's loop idles until new parameters or
    /// a stop, and a host request does not wake it.
    has_b: AtomicBool,
}

/// The core could not be used: a panic happened while it was locked.
#[derive(Debug)]
pub struct Poisoned;

impl Shared {
    pub fn new(line: Line, queue: Arc<EventQueue>) -> Shared {
        Shared {
            has_b: AtomicBool::new(line.has_link(LinkId::B)),
            line: Mutex::new(line),
            queue,
            wake: [tokio::sync::Notify::new(), tokio::sync::Notify::new()],
            shutdown: AtomicBool::new(false),
            reconnect: [AtomicBool::new(false), AtomicBool::new(false)],
        }
    }

    pub fn lock(&self) -> Result<MutexGuard<'_, Line>, Poisoned> {
        self.line.lock().map_err(|_| Poisoned)
    }

    /// Runs `f` on the core and moves the events it produced to the host's queue.
    pub fn with_line<T>(&self, f: impl FnOnce(&mut Line) -> T) -> Result<T, Poisoned> {
        let mut line = self.lock()?;
        let out = f(&mut line);
        // Core log lines go through the current dispatcher (the line's), the other events
        // straight to the queue, in the order the core reported them. A log line ends a run of
        // events: logging takes the queue's lock itself.
        loop {
            let mut log = None;
            self.queue
                .push_all(std::iter::from_fn(|| match line.poll_event()? {
                    Event::Log { level, text } => {
                        log = Some((level, text));
                        None
                    }
                    e => Some(e),
                }));
            match log {
                Some((level, text)) => logging::log_core(level, &text),
                None => break,
            }
        }
        Ok(out)
    }

    /// Asks the line's thread to look at the core again (a host request changed something).
    pub fn wake(&self) {
        self.wake[LinkId::A.index()].notify_one();
        if self.has_b.load(Ordering::Acquire) {
            self.wake[LinkId::B.index()].notify_one();
        }
    }

    /// Wakes both connection loops, B's even when it idles without a connection.
    fn wake_both(&self) {
        for w in &self.wake {
            w.notify_one();
        }
    }

    pub fn request_reconnect(&self) {
        for r in &self.reconnect {
            r.store(true, Ordering::Release);
        }
        self.wake_both();
    }

    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.wake_both();
    }

    fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// The least room a read is offered.
const READ_ROOM: usize = 32 * 1024;

/// Runs the line on the current thread until shutdown.
pub fn run(shared: Arc<Shared>) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build();
        match rt {
            Ok(rt) => rt.block_on(async {
                // Connection B's loop idles (waiting for a wake-up) while the line has none.
                tokio::join!(supervise(&shared, LinkId::A), supervise(&shared, LinkId::B));
            }),
            Err(e) => tracing::error!("cannot start the line's runtime: {e}"),
        }
    }));
    if outcome.is_err() {
        tracing::error!("internal error: the line's thread stopped after a panic");
        shared.queue.push_all([Event::Line(LineEvent::Disconnected {
            link: mqtt_line_core::LinkId::A,
            reason: "internal error in the plugin; the line has stopped".into(),
            time_ns: now_ns(),
        })]);
    }
    shared.queue.notify_if_pending();
}

/// How a connection ended, as the driver saw it.
struct Closed {
    reason: String,
    /// `Lost` for a lost connection or a failed attempt.
    ended: Ended,
}

/// Connects connection `id` where the core's connection policy says, and sleeps through its
/// back-off.
async fn supervise(shared: &Shared, id: LinkId) {
    let wake = &shared.wake[id.index()];
    let reconnect = &shared.reconnect[id.index()];
    loop {
        shared.queue.notify_if_pending();
        if shared.shutting_down() {
            return;
        }
        let Ok((wants, has)) = shared.with_line(|l| (l.wants_connection(), l.has_link(id))) else {
            return;
        };
        if id == LinkId::B {
            shared.has_b.store(has, Ordering::Release);
        }
        if !(wants && has) {
            reconnect.store(false, Ordering::Release);
            wake.notified().await;
            continue;
        }
        let restart = reconnect.swap(false, Ordering::AcqRel);
        let now = Instant::now();
        let Ok(next) = shared.with_line(|l| {
            if restart {
                l.restart_connection_on(id);
            }
            match l.next_attempt_on(id, now)? {
                Attempt::Connect {
                    host,
                    port,
                    timeout,
                } => Some(Ok((host.to_string(), port, timeout))),
                Attempt::Wait(until) => Some(Err(until)),
            }
        }) else {
            return;
        };
        let (host, port, timeout) = match next {
            None => return,
            Some(Err(until)) => {
                back_off(shared, id, until, now).await;
                continue;
            }
            Some(Ok(attempt)) => attempt,
        };
        let Ok(config) = shared.with_line(|l| l.config().clone()) else {
            return;
        };
        let addr = mqtt_line_core::host_port(&host, port);
        let failed = |reason: String| Closed {
            reason,
            ended: Ended::Lost,
        };
        let closed = match resolve_credentials(&config) {
            Err(e) => failed(e),
            Ok(password) => {
                // A stop must not wait for a connection attempt that hangs (a TLS or WebSocket
                // handshake nobody answers lasts up to the reply timeout).
                let attempt =
                    tokio::time::timeout(timeout, Transport::connect(&config, &host, port));
                tokio::select! {
                    connected = attempt => match connected {
                        Ok(Ok(transport)) => {
                            serve(shared, id, transport, &addr, &password).await
                        }
                        Ok(Err(e)) => failed(e),
                        Err(_) => failed(format!(
                            "cannot connect to {addr}: no answer within {timeout:?}"
                        )),
                    },
                    _ = stopped(shared, id) => Closed {
                        reason: Closing::STOP.reason.into(),
                        ended: Ended::Deliberate(Closing::STOP.how),
                    },
                }
            }
        };
        let now = Instant::now();
        let reported = shared.with_line(|l| {
            l.transport_closed_on(id, &closed.reason, now_ns());
            l.connection_ended_on(id, now, closed.ended);
            crate::edge_files::save(l);
        });
        if reported.is_err() {
            return;
        }
    }
}

/// Sleeps until `until`, the end of the core's back-off. Host writes wake this thread too; only a
/// stop or new parameters cut the back-off short (a write per wake-up would otherwise be a
/// connection attempt each).
async fn back_off(shared: &Shared, id: LinkId, until: Instant, now: Instant) {
    tracing::debug!(
        "waiting {:?} before the next connection attempt",
        until.saturating_duration_since(now)
    );
    shared.queue.notify_if_pending();
    let sleep = tokio::time::sleep_until(until.into());
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return,
            _ = shared.wake[id.index()].notified() => {
                if shared.shutting_down() || shared.reconnect[id.index()].load(Ordering::Acquire) {
                    return;
                }
            }
        }
    }
}

/// Returns once the line is being stopped. Other wake-ups are taken and ignored: `serve` looks at
/// the core from scratch when it starts, so nothing they announced is lost.
async fn stopped(shared: &Shared, id: LinkId) {
    while !shared.shutting_down() {
        shared.wake[id.index()].notified().await;
    }
}

/// Serves one open connection (`id`) until it ends.
async fn serve(
    shared: &Shared,
    id: LinkId,
    mut io: Transport,
    addr: &str,
    password: &Secret,
) -> Closed {
    let mut inbuf = BytesMut::with_capacity(64 * 1024);
    let mut outbuf = BytesMut::with_capacity(16 * 1024);
    let end = |reason: String| Closed {
        reason,
        ended: Ended::Lost,
    };
    match shared.with_line(|l| l.transport_open_at_on(id, addr, password, Instant::now(), now_ns()))
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return end(format!("auth = azure-sas: {e}")),
        Err(_) => return end("internal error".into()),
    }

    let mut timer = DeadlineTimer::new();
    // The core's pause before the next read (reads under load wait a moment: read_pace.rs):
    // reading waits while it is set.
    let mut pause = DeadlineTimer::new();
    loop {
        let now = Instant::now();
        let Ok((deadline, station_on, renew, unsendable)) = shared.with_line(|l| {
            let unsendable = l.poll_transmit_into_on(id, now, &mut outbuf, now_ns());
            if !outbuf.is_empty() {
                // The core's deadlines go on during the write; one of them is the broker
                // taking the bytes within the reply timeout.
                l.bytes_pending_on(id, now);
            }
            crate::edge_files::save(l);
            (
                l.poll_timeout_on(id),
                // A connection B the line no longer has (new parameters) closes like a line
                // whose stations are all off, and is not opened again.
                l.wants_connection() && l.has_link(id),
                id == LinkId::A && l.renewal_due(),
                unsendable,
            )
        }) else {
            return end("internal error".into());
        };
        if let Err(reason) = unsendable {
            return end(reason.to_string());
        }

        timer.set(deadline);
        if !outbuf.is_empty() {
            let written = {
                let write = io.write_all(&outbuf);
                tokio::pin!(write);
                loop {
                    // The write first: it usually completes at once, and the timer is then
                    // not even looked at.
                    tokio::select! {
                        biased;
                        written = &mut write => break written,
                        _ = timer.fired() => {
                            if let Err(reason) = fire_timers(shared, id) {
                                return end(reason);
                            }
                            let Ok(deadline) = shared.with_line(|l| l.poll_timeout_on(id)) else {
                                return end("internal error".into());
                            };
                            timer.set(deadline);
                        }
                    }
                }
            };
            if let Err(e) = written {
                return end(format!("sending to the broker failed: {e}"));
            }
            outbuf.clear();
            let Ok(deadline) = shared.with_line(|l| {
                l.flushed_on(id, now_ns());
                l.poll_timeout_on(id)
            }) else {
                return end("internal error".into());
            };
            timer.set(deadline);
        }
        shared.queue.notify_if_pending();

        // The core decides (`Line::closing`); the station state was read above, with the
        // transmit, so that this takes no second lock on the receive path.
        let stop = shared.shutting_down();
        let new_parameters = !stop && shared.reconnect[id.index()].swap(false, Ordering::AcqRel);
        if let Some(closing) = Closing::decide(stop, new_parameters, station_on, renew) {
            outbuf.clear();
            let goodbye = shared.with_line(|l| {
                l.close_deliberately_on(id, closing.how, &mut outbuf, Instant::now(), now_ns())
            });
            if let Ok(goodbye) = goodbye {
                send_disconnect(&mut io, &outbuf, goodbye.write_within).await;
                if let Some(within) = goodbye.await_eof {
                    let stop_cuts_short = closing.how == Deliberate::Restart;
                    await_broker_close(shared, id, &mut io, &mut inbuf, within, stop_cuts_short)
                        .await;
                }
            }
            return Closed {
                reason: closing.reason.into(),
                ended: Ended::Deliberate(closing.how),
            };
        }

        let can_read = shared.queue.has_room();
        // Room for a large read: once the packets before took most of the buffer, a read into
        // what is left would bring only a sliver of what waits (and the core would take its
        // few bytes for a slow broker: read_pace.rs).
        inbuf.reserve(READ_ROOM);

        tokio::select! {
            read = io.read(&mut inbuf), if can_read && !pause.is_set() => {
                let read = match read {
                    Ok(0) => return end("the broker closed the connection".into()),
                    Err(e) => return end(format!("reading from the broker failed: {e}")),
                    Ok(n) => n,
                };
                let now = Instant::now();
                let wall = now_ns();
                let handled = shared.with_line(|l| {
                    l.handle_input_on(id, &mut inbuf, now, wall)
                        .map(|()| l.read_again_at_on(id, now, read))
                });
                match handled {
                    Ok(Ok(until)) => pause.set(until),
                    Ok(Err(reason)) => return end(reason.to_string()),
                    Err(_) => return end("internal error".into()),
                }
                // A redundant line's two connections take turns read by read: left to run, one
                // loop reads until tokio's budget ends (some 128 reads), so the duplicate filter
                // would hold that many messages in transit and miss the cache on each.
                if shared.has_b.load(Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                }
            }
            _ = timer.fired(), if can_read => {
                if let Err(reason) = fire_timers(shared, id) {
                    return end(reason);
                }
            }
            _ = pause.fired() => {}
            _ = shared.wake[id.index()].notified() => {}
            _ = room_or_recheck(shared), if !can_read => {
                if let Err(reason) = resume_after_pause(shared, id, now) {
                    return end(reason);
                }
            }
        }
    }
}

/// Room in the host's queue, or a moment passed: two connection loops may wait for the same
/// room, and the queue's wake-up may come between one loop's look and its wait.
async fn room_or_recheck(shared: &Shared) {
    tokio::select! {
        _ = shared.queue.room() => {}
        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
    }
}

/// Lets the core handle what is due now; `Err` is the reason to close the connection.
fn fire_timers(shared: &Shared, id: LinkId) -> Result<(), String> {
    let now = Instant::now();
    match shared.with_line(|l| l.handle_timeout_on(id, now, now_ns())) {
        Ok(handled) => handled.map_err(|e| e.to_string()),
        Err(_) => Err("internal error".into()),
    }
}

/// The host drained its queue after reading was paused since `since`: move the deadlines.
fn resume_after_pause(shared: &Shared, id: LinkId, since: Instant) -> Result<(), String> {
    let paused = since.elapsed();
    shared
        .with_line(|l| l.postpone_on(id, paused))
        .map_err(|_| "internal error".to_string())
}

/// A clean goodbye: the DISCONNECT the core encoded, then the write side is shut down; bounded
/// (`within`) so a stuck broker cannot hold the host.
async fn send_disconnect(io: &mut Transport, buf: &[u8], within: Duration) {
    let _ = tokio::time::timeout(within, async {
        let _ = io.write_all(buf).await;
        io.close().await;
    })
    .await;
}

/// After a DISCONNECT: reads (and discards) until the broker has closed the connection, at most
/// `within` (the core's [`mqtt_line_core::Goodbye`] says why). A stop ends the wait at once when
/// it was for a reconnect (`stop_cuts_short`); a wait for a reply (the PUBACK of the Sparkplug
/// offline STATE) goes on, bounded, so that the socket is not reset before the DISCONNECT is read.
async fn await_broker_close(
    shared: &Shared,
    id: LinkId,
    io: &mut Transport,
    buf: &mut BytesMut,
    within: Duration,
    stop_cuts_short: bool,
) {
    let closed = tokio::time::timeout(within, async {
        loop {
            buf.clear();
            match io.read(buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    tokio::select! {
        _ = closed => {}
        _ = stopped(shared, id), if stop_cuts_short => {}
    }
    buf.clear();
}
