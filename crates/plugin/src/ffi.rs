//! The exported C functions. Each one checks its arguments, catches panics, and turns the
//! core's errors into status codes and messages.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use mqtt_line_abi::*;
use mqtt_line_core::{ConfigError, Line, LineConfig, StationCommand, StationId, TagId};
use tracing::Dispatch;

use crate::convert::{
    fill_event, fill_event_into, line_stats_to_abi, station_stats_to_abi, value_from_abi,
    value_type_from_abi,
};
use crate::driver::{self, Shared};
use crate::logging::{self, LogLevel};
use crate::now_ns;
use crate::queue::{EventQueue, HostEvent};

const DEFAULT_QUEUE_CAPACITY: usize = 65536;

/// What an `MqlLine*` points to.
pub struct LineHandle {
    shared: Arc<Shared>,
    dispatch: Dispatch,
    level: Arc<LogLevel>,
    host_level: u32,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Events handed to the host by the last poll; their strings live here until the next one.
    borrowed: Mutex<Vec<HostEvent>>,
}

/// An error on its way to the host.
struct Failure(MqlStatus, String);

impl Failure {
    fn config(e: ConfigError) -> Failure {
        let code = match e {
            ConfigError::DuplicateId { .. } => MQL_ERR_DUPLICATE_ID,
            ConfigError::UnknownStation(_) | ConfigError::UnknownTag { .. } => MQL_ERR_UNKNOWN_ID,
            ConfigError::State(_) => MQL_ERR_STATE,
            _ => MQL_ERR_CONFIG,
        };
        Failure(code, e.to_string())
    }
    fn arg(msg: impl Into<String>) -> Failure {
        Failure(MQL_ERR_INVALID_ARGUMENT, msg.into())
    }
    fn internal() -> Failure {
        Failure(
            MQL_ERR_INTERNAL,
            "internal error: the line is unusable after a failure inside the plugin; destroy it"
                .into(),
        )
    }
}

impl From<driver::Poisoned> for Failure {
    fn from(_: driver::Poisoned) -> Self {
        Failure::internal()
    }
}

/// Runs an exported function body: panics become `MQL_ERR_INTERNAL`, failures are written to
/// `err`.
fn guard(err: *mut MqlError, f: impl FnOnce() -> Result<(), Failure>) -> MqlStatus {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(Failure::internal()));
    match result {
        Ok(()) => {
            // SAFETY: `err` is NULL or points to the host's MqlError, per the ABI.
            unsafe { write_error(err, "") };
            MQL_OK
        }
        Err(Failure(code, msg)) => {
            // SAFETY: as above.
            unsafe { write_error(err, &msg) };
            code
        }
    }
}

unsafe fn write_error(err: *mut MqlError, msg: &str) {
    let Some(err) = err.as_mut() else { return };
    err.len = 0;
    if err.buf.is_null() || err.cap == 0 {
        return;
    }
    let mut n = msg.len().min(err.cap);
    while !msg.is_char_boundary(n) {
        n -= 1;
    }
    std::ptr::copy_nonoverlapping(msg.as_ptr(), err.buf, n);
    err.len = n;
}

unsafe fn text<'a>(s: MqlStr, what: &str) -> Result<&'a str, Failure> {
    let bytes = s
        .as_bytes()
        .ok_or_else(|| Failure::arg(format!("{what}: NULL pointer with length {}", s.len)))?;
    std::str::from_utf8(bytes).map_err(|e| Failure::arg(format!("{what} is not UTF-8: {e}")))
}

unsafe fn params<'a>(ptr: *const MqlParam, n: usize) -> Result<Vec<(&'a str, &'a str)>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(Failure::arg(format!(
            "params is NULL but param_count is {n}"
        )));
    }
    std::slice::from_raw_parts(ptr, n)
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let key = text(p.key, &format!("parameter #{i} name"))?;
            let value = text(p.value, &format!("parameter '{key}' value"))?;
            Ok((key, value))
        })
        .collect()
}

unsafe fn handle<'a>(line: *mut MqlLine) -> Result<&'a LineHandle, Failure> {
    (line as *const LineHandle)
        .as_ref()
        .ok_or_else(|| Failure::arg("line is NULL"))
}

impl LineHandle {
    /// Runs `f` on the core under this line's log dispatcher and queues the events it made.
    fn with_line<T>(&self, f: impl FnOnce(&mut Line) -> T) -> Result<T, Failure> {
        let out = tracing::dispatcher::with_default(&self.dispatch, || self.shared.with_line(f))?;
        // The host is woken by the line's thread, never inside its own call.
        self.shared.wake();
        Ok(out)
    }

    /// Stops the line's thread (its last act is the DISCONNECT) and waits for it.
    fn stop(&self) {
        self.shared.request_shutdown();
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    fn effective_level(&self, full_debug: bool) -> u32 {
        if full_debug {
            self.host_level.max(MQL_LOG_DEBUG)
        } else {
            self.host_level
        }
    }
}

/// The smallest `MqlLineConfig.size` served: `size`, `name`, `params` and `param_count`. The
/// fields after them may be missing (they read as zero, which selects their defaults).
const MIN_CONFIG_SIZE: usize =
    std::mem::offset_of!(MqlLineConfig, param_count) + std::mem::size_of::<usize>();

/// Copies the host's `MqlLineConfig`, reading no byte past its `size`: a host built against an
/// older minor version passes a shorter struct, and the memory after it may not be readable.
///
/// # Safety
/// `config` is not NULL and points to at least `size` readable bytes (at least the `size` field).
unsafe fn read_config(config: *const MqlLineConfig) -> Result<MqlLineConfig, Failure> {
    // No reference to the whole struct: only the `size` field is known to be there.
    let size = std::ptr::addr_of!((*config).size).read_unaligned();
    if size < MIN_CONFIG_SIZE {
        return Err(Failure(
            MQL_ERR_VERSION,
            format!(
                "MqlLineConfig.size {size} is smaller than {MIN_CONFIG_SIZE} bytes (size, name, \
                 params and param_count of ABI {MQL_ABI_MAJOR}): set it to \
                 sizeof(MqlLineConfig) from the header"
            ),
        ));
    }
    let mut cfg: MqlLineConfig = std::mem::zeroed();
    let n = size.min(std::mem::size_of::<MqlLineConfig>());
    std::ptr::copy_nonoverlapping(config as *const u8, &mut cfg as *mut _ as *mut u8, n);
    Ok(cfg)
}

pub unsafe extern "C" fn line_create(
    config: *const MqlLineConfig,
    out_line: *mut *mut MqlLine,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        if config.is_null() {
            return Err(Failure::arg("config is NULL"));
        }
        if out_line.is_null() {
            return Err(Failure::arg("out_line is NULL"));
        }
        let cfg = read_config(config)?;
        let name = text(cfg.name, "line name")?;
        let name = if name.is_empty() { "line" } else { name };
        let params = params(cfg.params, cfg.param_count)?;
        let capacity = match cfg.event_queue_capacity {
            0 => DEFAULT_QUEUE_CAPACITY,
            n => n,
        };
        let host_level = match cfg.log_level {
            0 => MQL_LOG_INFO,
            l @ MQL_LOG_ERROR..=MQL_LOG_TRACE => l,
            l => {
                return Err(Failure::arg(format!(
                    "log_level {l} is not an MQL_LOG_* level: 0 (the default, INFO) or 1 \
                     (ERROR) to 5 (TRACE)"
                )))
            }
        };
        let queue = Arc::new(EventQueue::new(capacity, cfg.notify, cfg.notify_user_data));
        let level = LogLevel::new(host_level);
        let dispatch = logging::dispatch(name, queue.clone(), level.clone());

        let (config, warnings) =
            LineConfig::from_params(&format!("line '{name}'"), params).map_err(Failure::config)?;
        let full_debug = config.full_debug;
        let mut line = Line::new(name, config, std::time::Instant::now());
        line.set_trace_routing(cfg.trace_routing != 0);
        let handle = LineHandle {
            shared: Arc::new(Shared::new(line, queue)),
            dispatch,
            level,
            host_level,
            thread: Mutex::new(None),
            borrowed: Mutex::new(Vec::new()),
        };
        handle.level.set(handle.effective_level(full_debug));
        tracing::dispatcher::with_default(&handle.dispatch, || {
            for w in warnings {
                tracing::warn!("{w}");
            }
        });
        *out_line = Box::into_raw(Box::new(handle)) as *mut MqlLine;
        Ok(())
    })
}

pub unsafe extern "C" fn line_add_station(
    line: *mut MqlLine,
    station_id: u64,
    name: MqlStr,
    address: MqlStr,
    params_ptr: *const MqlParam,
    param_count: usize,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        let name = text(name, "station name")?;
        let address = text(address, &format!("station '{name}' address"))?;
        let params = params(params_ptr, param_count)?;
        h.with_line(|l| l.add_station(StationId(station_id), name, address, params))?
            .map_err(Failure::config)
    })
}

pub unsafe extern "C" fn line_add_tag(
    line: *mut MqlLine,
    station_id: u64,
    tag_id: u64,
    name: MqlStr,
    address: MqlStr,
    value_type: MqlValueType,
    default_value: *const MqlValue,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        let name = text(name, "tag name")?;
        let address = text(address, &format!("tag '{name}' address"))?;
        let ty = value_type_from_abi(value_type).ok_or_else(|| {
            Failure::arg(format!("tag '{name}': unknown value type {value_type}"))
        })?;
        let default = match default_value.as_ref() {
            None => None,
            Some(v) => value_from_abi(v)
                .map_err(|e| Failure::arg(format!("tag '{name}': default value: {e}")))?,
        };
        h.with_line(|l| {
            l.add_tag(
                StationId(station_id),
                TagId(tag_id),
                name,
                address,
                ty,
                default,
            )
        })?
        .map_err(Failure::config)
    })
}

pub unsafe extern "C" fn line_start(line: *mut MqlLine, err: *mut MqlError) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        h.with_line(|l| {
            let started = l.start(now_ns()).map(log_warnings);
            if started.is_ok() {
                crate::edge_files::load(l);
            }
            started
        })?
        .map_err(Failure::config)?;
        let shared = h.shared.clone();
        let dispatch = h.dispatch.clone();
        let name = h.shared.lock()?.name().to_string();
        let thread = std::thread::Builder::new()
            .name(format!("mqtt-line {name}"))
            .spawn(move || {
                let _guard = tracing::dispatcher::set_default(&dispatch);
                driver::run(shared);
            })
            .map_err(|e| {
                Failure(
                    MQL_ERR_INTERNAL,
                    format!("cannot start the line's thread: {e}"),
                )
            })?;
        *h.thread.lock().map_err(|_| Failure::internal())? = Some(thread);
        Ok(())
    })
}

pub unsafe extern "C" fn line_station_command(
    line: *mut MqlLine,
    station_id: u64,
    command: u32,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        let cmd = match command {
            MQL_STATION_CMD_ON => StationCommand::On,
            MQL_STATION_CMD_OFF => StationCommand::Off,
            MQL_STATION_CMD_SIMULATE => StationCommand::Simulate,
            other => return Err(Failure::arg(format!("unknown station command {other}"))),
        };
        h.with_line(|l| l.station_command(StationId(station_id), cmd, Instant::now(), now_ns()))?
            .map_err(Failure::config)
    })
}

pub unsafe extern "C" fn line_write(
    line: *mut MqlLine,
    tag_id: u64,
    request_id: u64,
    value: *const MqlValue,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        let value = value
            .as_ref()
            .ok_or_else(|| Failure::arg("value is NULL"))?;
        let value = value_from_abi(value)
            .map_err(|e| Failure::arg(format!("write to tag id {tag_id}: {e}")))?
            .ok_or_else(|| Failure::arg("a write needs a value (kind MQL_VALUE_NONE given)"))?;
        if h.thread.lock().map_err(|_| Failure::internal())?.is_none() {
            let name = h.shared.lock()?.name().to_string();
            return Err(Failure(
                MQL_ERR_STATE,
                format!("line '{name}' is not started: writes are accepted after line_start"),
            ));
        }
        h.with_line(|l| {
            let written = l.write(TagId(tag_id), request_id, value, Instant::now(), now_ns());
            crate::edge_files::save(l);
            written
        })?
        .map_err(Failure::config)
    })
}

pub unsafe extern "C" fn line_set_parameters(
    line: *mut MqlLine,
    params_ptr: *const MqlParam,
    param_count: usize,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        let params = params(params_ptr, param_count)?;
        let full_debug = h
            .with_line(|l| {
                l.reconfigure(params).map(|warnings| {
                    for w in warnings {
                        tracing::warn!("{w}");
                    }
                    l.config().full_debug
                })
            })?
            .map_err(Failure::config)?;
        h.level.set(h.effective_level(full_debug));
        h.shared.request_reconnect();
        Ok(())
    })
}

pub unsafe extern "C" fn line_poll_events(
    line: *mut MqlLine,
    events: *mut MqlEvent,
    event_size: usize,
    capacity: usize,
    out_count: *mut usize,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        if out_count.is_null() {
            return Err(Failure::arg("out_count is NULL"));
        }
        *out_count = 0;
        if capacity > 0 && events.is_null() {
            return Err(Failure::arg("events is NULL"));
        }
        if event_size < std::mem::offset_of!(MqlEvent, text) + std::mem::size_of::<MqlStr>()
            && capacity > 0
        {
            return Err(Failure::arg(format!(
                "event_size {event_size} is smaller than this ABI's MqlEvent"
            )));
        }
        let mut borrowed = h.borrowed.lock().map_err(|_| Failure::internal())?;
        borrowed.clear();
        let copy = event_size.min(std::mem::size_of::<MqlEvent>());
        // Each event is written to the host's array as it leaves the queue; only those whose
        // strings the host's copy points into are kept until the next poll (moving a `String`
        // keeps its bytes where they are).
        let in_place = event_size == std::mem::size_of::<MqlEvent>()
            && (events as usize) % std::mem::align_of::<MqlEvent>() == 0;
        let count = h.shared.queue.drain_each(capacity, |i, e| {
            let dst = (events as *mut u8).add(i * event_size);
            if in_place {
                // The host's layout is ours (the usual case): the view is written in its slot.
                // SAFETY: the slot is within the host's array, aligned, and initialised by the
                // write before it is borrowed.
                let slot = dst as *mut MqlEvent;
                slot.write(MqlEvent::empty());
                fill_event_into(&e, &mut *slot);
            } else if event_size == std::mem::size_of::<MqlEvent>() {
                // An array packed without MqlEvent's alignment: one unaligned store.
                (dst as *mut MqlEvent).write_unaligned(fill_event(&e));
            } else {
                let ev = fill_event(&e);
                std::ptr::copy_nonoverlapping(&ev as *const MqlEvent as *const u8, dst, copy);
                // A newer host's fields that this plugin does not know read as zero.
                std::ptr::write_bytes(dst.add(copy), 0, event_size - copy);
            }
            if e.lends_text() {
                borrowed.push(e);
            }
        });
        *out_count = count;
        Ok(())
    })
}

pub unsafe extern "C" fn line_destroy(line: *mut MqlLine) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if line.is_null() {
            return;
        }
        let h = Box::from_raw(line as *mut LineHandle);
        h.stop();
        drop(h);
    }));
}

pub unsafe extern "C" fn line_check(line: *mut MqlLine, err: *mut MqlError) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        h.with_line(|l| l.check().map(log_warnings))?
            .map_err(Failure::config)
    })
}

pub unsafe extern "C" fn line_stats(
    line: *mut MqlLine,
    out: *mut MqlLineStats,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        let size = stats_size(out as *const usize, "MqlLineStats", LINE_STATS_1_2)?;
        let stats = line_stats_to_abi(&h.shared.lock()?.stats());
        write_stats(out.cast(), &stats, size);
        Ok(())
    })
}

pub unsafe extern "C" fn line_station_stats(
    line: *mut MqlLine,
    station_id: u64,
    out: *mut MqlStationStats,
    err: *mut MqlError,
) -> MqlStatus {
    guard(err, || {
        let h = handle(line)?;
        let size = stats_size(out as *const usize, "MqlStationStats", STATION_STATS_1_2)?;
        let stats = h
            .shared
            .lock()?
            .station_stats(StationId(station_id))
            .map_err(Failure::config)?;
        write_stats(out.cast(), &station_stats_to_abi(&stats), size);
        Ok(())
    })
}

/// The sizes of the stats structs of ABI 1.2: a host passes at least these.
const LINE_STATS_1_2: usize =
    std::mem::offset_of!(MqlLineStats, last_message_ns) + std::mem::size_of::<i64>();
const STATION_STATS_1_2: usize =
    std::mem::offset_of!(MqlStationStats, last_message_ns) + std::mem::size_of::<i64>();

/// Reads the `size` the host set at the start of its stats struct; refuses NULL and a size
/// smaller than `min`.
///
/// # Safety
/// `out` is NULL or points to the host's struct, which starts with its `size`.
unsafe fn stats_size(out: *const usize, what: &str, min: usize) -> Result<usize, Failure> {
    if out.is_null() {
        return Err(Failure::arg("out is NULL"));
    }
    let size = out.read_unaligned();
    if size < min {
        return Err(Failure(
            MQL_ERR_VERSION,
            format!(
                "{what}.size {size} is smaller than {min} bytes (the struct of ABI 1.2): set it to \
                 sizeof({what}) from the header"
            ),
        ));
    }
    Ok(size)
}

/// Copies `stats` into the host's struct, no byte past its `size`; the `size` field is kept as
/// the host set it, and the bytes of a newer host's struct past ours are left untouched.
///
/// # Safety
/// `out` points to at least `size` writable bytes.
unsafe fn write_stats<T>(out: *mut u8, stats: &T, size: usize) {
    let field = std::mem::size_of::<usize>();
    let n = size.min(std::mem::size_of::<T>());
    std::ptr::copy_nonoverlapping(
        (stats as *const T as *const u8).add(field),
        out.add(field),
        n - field,
    );
}

/// Configuration warnings go to the host as log events; call it under the line's dispatcher
/// (inside `with_line`).
fn log_warnings(warnings: Vec<String>) {
    for w in warnings {
        tracing::warn!("{w}");
    }
}

#[cfg(test)]
#[path = "ffi_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "event_cost.rs"]
mod event_cost;
