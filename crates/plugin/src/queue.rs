//! The event queue between a line and its host.
//!
//! Overflow policy: tag values are never dropped. When `capacity` events wait (of any kind: most
//! are tag values), the driver stops reading from the socket until the host drains, so TCP
//! pushes back on the broker. Station and line states and write completions always enter the
//! queue. Log lines beyond the capacity are dropped and counted; the count is reported as a
//! warning once there is room again.
//!
//! The host is woken only from the line's own thread ([`EventQueue::notify_if_pending`]), so its
//! callback never runs inside one of its own calls into the plugin.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use mqtt_line_abi::{MqlNotifyFn, MQL_LOG_WARN};
use mqtt_line_core::Event;

/// An event as the queue holds it, owning its strings until the host has read them.
#[derive(Debug)]
pub enum HostEvent {
    Core(Event),
    Log {
        level: u32,
        text: String,
        time_ns: i64,
    },
}

impl HostEvent {
    /// Whether the host's view of this event points into its strings, so that it must live
    /// until the next poll. A tag value that is not text (most events) points into nothing.
    pub fn lends_text(&self) -> bool {
        match self {
            HostEvent::Core(Event::TagValue { value, .. }) => {
                matches!(value, Some(mqtt_line_core::Value::Text(_)))
            }
            _ => true,
        }
    }
}

/// The host's wake-up callback. The host promises it may be called from any thread.
struct Notify {
    callback: MqlNotifyFn,
    user_data: *mut c_void,
}

// SAFETY: the ABI requires the callback and its argument to be usable from the plugin's threads.
unsafe impl Send for Notify {}
unsafe impl Sync for Notify {}

#[derive(Default)]
struct Inner {
    events: VecDeque<HostEvent>,
    dropped_logs: u64,
}

pub struct EventQueue {
    inner: Mutex<Inner>,
    capacity: usize,
    notify: Notify,
    pending: AtomicBool,
    room: tokio::sync::Notify,
}

impl EventQueue {
    pub fn new(capacity: usize, callback: MqlNotifyFn, user_data: *mut c_void) -> EventQueue {
        EventQueue {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            notify: Notify {
                callback,
                user_data,
            },
            pending: AtomicBool::new(false),
            room: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The queue holds plain data: a panic elsewhere cannot leave it half-changed.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds core events in one batch.
    pub fn push_all(&self, events: impl IntoIterator<Item = Event>) {
        let mut inner = self.lock();
        let was_empty = inner.events.is_empty();
        // No look at each event: the room is the queue's length, whatever waits in it.
        inner.events.extend(events.into_iter().map(HostEvent::Core));
        if was_empty && !inner.events.is_empty() {
            self.pending.store(true, Ordering::Release);
        }
    }

    /// Adds a log line unless the queue is full.
    pub fn push_log(&self, level: u32, text: String, time_ns: i64) {
        let mut inner = self.lock();
        if inner.events.len() >= self.capacity {
            inner.dropped_logs += 1;
            return;
        }
        if inner.events.is_empty() {
            self.pending.store(true, Ordering::Release);
        }
        inner.events.push_back(HostEvent::Log {
            level,
            text,
            time_ns,
        });
    }

    /// Whether the driver may read more messages.
    pub fn has_room(&self) -> bool {
        self.lock().events.len() < self.capacity
    }

    /// Resolves once the host has drained some events.
    pub async fn room(&self) {
        self.room.notified().await
    }

    /// Calls the host's wake-up callback if events arrived since it was last called.
    pub fn notify_if_pending(&self) {
        if self.pending.swap(false, Ordering::AcqRel) {
            if let Some(callback) = self.notify.callback {
                // SAFETY: the host supplied the callback and its argument for this purpose.
                unsafe { callback(self.notify.user_data) };
            }
        }
    }

    /// Takes up to `max` events, oldest first (the FFI writes them out with `drain_each`).
    #[cfg(test)]
    pub fn drain(&self, max: usize, out: &mut Vec<HostEvent>) {
        self.drain_each(max, |_, e| out.push(e));
    }

    /// Takes up to `max` events, oldest first, and hands each to `each` with its position in
    /// the batch, so that the host's copy is written straight from the queue. Returns how many.
    pub fn drain_each(&self, max: usize, mut each: impl FnMut(usize, HostEvent)) -> usize {
        let mut inner = self.lock();
        let n = max.min(inner.events.len());
        let inner = &mut *inner;
        for (i, e) in inner.events.drain(..n).enumerate() {
            each(i, e);
        }
        if inner.dropped_logs > 0 && inner.events.len() < self.capacity {
            let text = format!(
                "{} log lines were dropped because the host did not drain the event queue",
                inner.dropped_logs
            );
            inner.dropped_logs = 0;
            inner.events.push_back(HostEvent::Log {
                level: MQL_LOG_WARN,
                text,
                time_ns: crate::now_ns(),
            });
            self.pending.store(true, Ordering::Release);
        }
        if n > 0 {
            // A redundant line has two connection loops that may both wait for room.
            self.room.notify_waiters();
            self.room.notify_one();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_line_core::LineEvent;

    fn value() -> Event {
        Event::TagValue {
            station: mqtt_line_core::StationId(1),
            tag: mqtt_line_core::TagId(1),
            value: None,
            time_ns: 0,
            flags: 0,
        }
    }

    #[test]
    fn values_are_never_dropped_but_fill_the_room() {
        let q = EventQueue::new(2, None, std::ptr::null_mut());
        q.push_all([value(), value()]);
        assert!(!q.has_room());
        q.push_all([value()]);
        let mut out = Vec::new();
        q.drain(10, &mut out);
        assert_eq!(out.len(), 3);
        assert!(q.has_room());
    }

    /// The room is the queue's length: a line event and a log line fill it as values do.
    #[test]
    fn every_waiting_event_takes_room() {
        let q = EventQueue::new(3, None, std::ptr::null_mut());
        q.push_all([value()]);
        q.push_log(3, "a".into(), 0);
        assert!(q.has_room());
        q.push_all([Event::Line(LineEvent::Disconnected {
            link: mqtt_line_core::LinkId::A,
            reason: "x".into(),
            time_ns: 0,
        })]);
        assert!(!q.has_room());
        let mut out = Vec::new();
        q.drain(1, &mut out);
        assert!(q.has_room());
    }

    #[test]
    fn logs_beyond_capacity_are_counted_and_reported() {
        let q = EventQueue::new(1, None, std::ptr::null_mut());
        q.push_all([Event::Line(LineEvent::Disconnected {
            link: mqtt_line_core::LinkId::A,
            reason: "x".into(),
            time_ns: 0,
        })]);
        q.push_log(3, "a".into(), 0);
        q.push_log(3, "b".into(), 0);
        let mut out = Vec::new();
        q.drain(10, &mut out);
        assert_eq!(out.len(), 1, "both logs were dropped: {out:?}");
        out.clear();
        q.drain(10, &mut out);
        match &out[..] {
            [HostEvent::Log { text, .. }] => assert!(text.starts_with("2 log lines"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn host_is_notified_once_per_empty_to_non_empty() {
        use std::sync::atomic::AtomicUsize;
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        unsafe extern "C" fn count(_: *mut c_void) {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }
        let q = EventQueue::new(8, Some(count), std::ptr::null_mut());
        q.push_all([value()]);
        q.push_all([value()]);
        q.notify_if_pending();
        q.notify_if_pending();
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    }
}
