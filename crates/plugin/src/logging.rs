//! Turns `tracing` events of one line into log events for its host.
//!
//! Every line has its own dispatcher: the line's thread installs it as its default, and host
//! calls run under it, so log lines reach the queue of the line they are about.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use mqtt_line_abi::{MQL_LOG_DEBUG, MQL_LOG_ERROR, MQL_LOG_INFO, MQL_LOG_TRACE, MQL_LOG_WARN};
use mqtt_line_core::{escape, LogLevel as CoreLevel};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Level, Metadata};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::queue::EventQueue;

/// The most detailed level a line forwards; it can change at run time (Full Debug).
pub struct LogLevel(AtomicU32);

impl LogLevel {
    pub fn new(level: u32) -> Arc<LogLevel> {
        Arc::new(LogLevel(AtomicU32::new(level)))
    }
    pub fn set(&self, level: u32) {
        self.0.store(level, Ordering::Relaxed)
    }
    fn allows(&self, level: &Level) -> bool {
        abi_level(level) <= self.0.load(Ordering::Relaxed)
    }
}

/// The ABI level of a core [`Event::Log`](mqtt_line_core::Event::Log).
pub fn core_level(level: CoreLevel) -> u32 {
    match level {
        CoreLevel::Error => MQL_LOG_ERROR,
        CoreLevel::Warn => MQL_LOG_WARN,
        CoreLevel::Info => MQL_LOG_INFO,
        CoreLevel::Debug => MQL_LOG_DEBUG,
    }
}

/// Logs a core [`Event::Log`](mqtt_line_core::Event::Log) through the current dispatcher (the
/// line's), so the host's level filter, Full Debug and escaping apply to it as to the shell's own
/// lines.
pub fn log_core(level: CoreLevel, text: &str) {
    match level {
        CoreLevel::Error => tracing::error!("{text}"),
        CoreLevel::Warn => tracing::warn!("{text}"),
        CoreLevel::Info => tracing::info!("{text}"),
        CoreLevel::Debug => tracing::debug!("{text}"),
    }
}

fn abi_level(level: &Level) -> u32 {
    match *level {
        Level::ERROR => MQL_LOG_ERROR,
        Level::WARN => MQL_LOG_WARN,
        Level::INFO => MQL_LOG_INFO,
        Level::DEBUG => MQL_LOG_DEBUG,
        Level::TRACE => MQL_LOG_TRACE,
    }
}

struct QueueLayer {
    queue: Arc<EventQueue>,
    level: Arc<LogLevel>,
    prefix: String,
}

impl QueueLayer {
    /// The message named by its line exactly once. This dispatcher is the one place that names
    /// the line in its log lines; a message that already starts with the name (a configuration
    /// warning carries its object, `line 'L1': ...`, because the same text is also an error's)
    /// keeps it as it is instead of reading `line 'L1': line 'L1': ...`.
    fn named(&self, message: String) -> String {
        if message.starts_with(self.prefix.as_str()) {
            message
        } else {
            format!("{}{message}", self.prefix)
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for QueueLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Decided per event, because the level can change while the line runs.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        self.level.allows(metadata.level())
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut text = Text {
            message: String::new(),
            fields: String::new(),
        };
        event.record(&mut text);
        let mut line = self.named(text.message);
        line.push_str(&text.fields);
        // The core escapes outside text where it formats it; this catches whatever slipped past,
        // so no log line can carry a control character to the host's log or terminal.
        if let Cow::Owned(escaped) = escape(&line) {
            line = escaped;
        }
        self.queue
            .push_log(abi_level(event.metadata().level()), line, crate::now_ns());
    }
}

struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// A dispatcher that sends this line's log events to its queue.
pub fn dispatch(line_name: &str, queue: Arc<EventQueue>, level: Arc<LogLevel>) -> Dispatch {
    let prefix = format!("line '{line_name}': ");
    Dispatch::new(tracing_subscriber::registry().with(QueueLayer {
        queue,
        level,
        prefix,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::HostEvent;

    /// Whatever a log message carries, the host gets it without control characters.
    #[test]
    fn log_lines_reach_the_host_escaped() {
        let queue = Arc::new(EventQueue::new(16, None, std::ptr::null_mut()));
        let dispatch = dispatch("L\u{1b}", queue.clone(), LogLevel::new(MQL_LOG_DEBUG));
        tracing::dispatcher::with_default(&dispatch, || {
            let topic = "a\u{1b}[31m\u{7}b\r\nWARN forged\u{7f}\u{9b}";
            tracing::warn!("message on '{topic}'");
            tracing::debug!(topic = %topic, "unrouted");
        });
        let mut out = Vec::new();
        queue.drain(16, &mut out);
        let texts: Vec<&str> = out
            .iter()
            .filter_map(|e| match e {
                HostEvent::Log { text, .. } => Some(text.as_str()),
                HostEvent::Core(_) => None,
            })
            .collect();
        assert_eq!(
            texts,
            [
                r"line 'L\u{1b}': message on 'a\u{1b}[31m\u{7}b\r\nWARN forged\u{7f}\u{9b}'",
                r"line 'L\u{1b}': unrouted topic=a\u{1b}[31m\u{7}b\r\nWARN forged\u{7f}\u{9b}",
            ]
        );
    }
}
