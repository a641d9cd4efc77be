//! Loading the plugin and a safe wrapper over its C function table.
//!
//! Only the C ABI is used, as a foreign SCADA kernel would: one exported entry point, a function
//! table whose `size` says which functions exist, and plain C structs.

use std::cell::Cell;
use std::ffi::{c_void, CStr};
use std::fmt;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;

use libloading::Library;
use mqtt_line_abi::*;

use crate::event::{copy_str, RawEvent};
use crate::stats::{ConnectionStats, LineStats, StationStats};
use crate::wake::Waker;

/// Reads one function pointer from the table when the plugin's `size` covers it; `None` when it
/// does not, or when the plugin left the field NULL. Only the field is read (through a raw
/// pointer), never the table as a whole, because a smaller table from an older plugin is not a
/// valid `MqlPluginApi`.
macro_rules! table_fn {
    ($api:expr, $size:expr, $field:ident: $ty:ty) => {{
        let end = offset_of!(MqlPluginApi, $field) + size_of::<$ty>();
        if $size >= end {
            // SAFETY: the plugin's table is at least `$size` bytes long and this field lies
            // within it. `Option<fn>` has the layout of a nullable C function pointer, so a
            // NULL field reads as `None` instead of an invalid `fn`.
            let f: Option<$ty> =
                unsafe { ptr::addr_of!((*$api).$field).cast::<Option<$ty>>().read() };
            f
        } else {
            None
        }
    }};
}

/// Failure loading or negotiating with the plugin (always fatal).
#[derive(Debug)]
pub struct LoadError(pub String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A call the plugin refused: its status and its message.
#[derive(Debug, Clone)]
pub struct CallError {
    pub status: MqlStatus,
    pub message: String,
}

impl CallError {
    /// Whether the configuration was at fault (exit code 2) rather than the plugin or host.
    pub fn is_config(&self) -> bool {
        matches!(
            self.status,
            MQL_ERR_CONFIG | MQL_ERR_DUPLICATE_ID | MQL_ERR_INVALID_ARGUMENT
        )
    }

    fn missing(function: &str) -> CallError {
        CallError {
            status: MQL_ERR_VERSION,
            message: format!("the plugin's function table does not provide {function}"),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub fn status_name(status: MqlStatus) -> &'static str {
    match status {
        MQL_OK => "MQL_OK",
        MQL_ERR_INVALID_ARGUMENT => "MQL_ERR_INVALID_ARGUMENT",
        MQL_ERR_CONFIG => "MQL_ERR_CONFIG",
        MQL_ERR_UNKNOWN_ID => "MQL_ERR_UNKNOWN_ID",
        MQL_ERR_DUPLICATE_ID => "MQL_ERR_DUPLICATE_ID",
        MQL_ERR_STATE => "MQL_ERR_STATE",
        MQL_ERR_VERSION => "MQL_ERR_VERSION",
        MQL_ERR_INTERNAL => "MQL_ERR_INTERNAL",
        _ => "unknown status",
    }
}

/// The functions sim-host uses, copied out of the table. Those every command needs are required
/// at load time; the others are checked when called.
struct Functions {
    line_create: MqlLineCreateFn,
    line_add_station: MqlLineAddStationFn,
    line_add_tag: MqlLineAddTagFn,
    line_poll_events: MqlLinePollEventsFn,
    line_destroy: MqlLineDestroyFn,
    line_start: Option<MqlLineStartFn>,
    line_station_command: Option<MqlLineStationCommandFn>,
    line_write: Option<MqlLineWriteFn>,
    line_set_parameters: Option<MqlLineSetParametersFn>,
    /// ABI 1.1; older plugins check only when started.
    line_check: Option<MqlLineCheckFn>,
    /// ABI 1.2.
    line_stats: Option<MqlLineStatsFn>,
    line_station_stats: Option<MqlLineStationStatsFn>,
}

/// A loaded plugin. The library stays loaded as long as this value lives.
pub struct Plugin {
    fns: Functions,
    pub version: String,
    pub abi_minor: u32,
    pub path: PathBuf,
    // Declared last so the code the function pointers point into is unloaded last.
    _library: Library,
}

impl Plugin {
    /// The default location: `libmqtt_line.so` next to the running executable.
    pub fn default_path() -> Result<PathBuf, LoadError> {
        let exe = std::env::current_exe().map_err(|e| {
            LoadError(format!(
                "cannot find the running program's own executable: {e}"
            ))
        })?;
        let dir = exe.parent().unwrap_or_else(|| Path::new("."));
        Ok(dir.join(format!(
            "{}mqtt_line{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )))
    }

    /// Loads the library at `path` and negotiates the ABI version.
    pub fn load(path: &Path) -> Result<Plugin, LoadError> {
        // An absolute path keeps dlopen from searching the library path for a bare file name.
        let path = std::fs::canonicalize(path)
            .map_err(|e| LoadError(format!("plugin not found at {}: {e}", path.display())))?;
        // SAFETY: loading runs the library's initialisers; the plugin is trusted code, which is
        // the premise of any plugin host.
        let library = unsafe { Library::new(&path) }
            .map_err(|e| LoadError(format!("cannot load plugin {}: {e}", path.display())))?;
        let symbol = CStr::from_bytes_with_nul(MQL_ENTRY_SYMBOL)
            .map_err(|e| LoadError(format!("bad entry symbol name in the ABI crate: {e}")))?;
        // SAFETY: the symbol has the signature `MqlEntryFn` by the ABI contract.
        let entry: MqlEntryFn = *unsafe { library.get::<MqlEntryFn>(symbol) }.map_err(|e| {
            LoadError(format!(
                "{} is not an mqtt-line plugin (no {}): {e}",
                path.display(),
                symbol.to_string_lossy()
            ))
        })?;
        // SAFETY: a plain call through the C ABI.
        let api = unsafe { entry(MQL_ABI_MAJOR, MQL_ABI_MINOR) };
        if api.is_null() {
            return Err(LoadError(format!(
                "the plugin {} does not support ABI major {MQL_ABI_MAJOR}",
                path.display()
            )));
        }
        // SAFETY: a non-null table starts with its size (a `usize`) by the ABI contract.
        let size = unsafe { ptr::addr_of!((*api).size).read() };
        let header_end = offset_of!(MqlPluginApi, plugin_version) + size_of::<MqlStr>();
        if size < header_end {
            return Err(LoadError(format!(
                "the plugin's function table is too small ({size} bytes)"
            )));
        }
        // SAFETY: the header fields lie within `size`, checked above.
        let (major, minor, version) = unsafe {
            (
                ptr::addr_of!((*api).abi_major).read(),
                ptr::addr_of!((*api).abi_minor).read(),
                ptr::addr_of!((*api).plugin_version).read(),
            )
        };
        if major != MQL_ABI_MAJOR {
            return Err(LoadError(format!(
                "the plugin answered with ABI {major}.{minor}, sim-host needs major {MQL_ABI_MAJOR}"
            )));
        }
        // The functions every host needs; the rest may be missing from an older plugin's table.
        macro_rules! required_fn {
            ($field:ident: $ty:ty) => {
                table_fn!(api, size, $field: $ty).ok_or_else(|| {
                    LoadError(format!(
                        "the plugin's function table ({size} bytes) does not provide {}",
                        stringify!($field)
                    ))
                })?
            };
        }
        let fns = Functions {
            line_create: required_fn!(line_create: MqlLineCreateFn),
            line_add_station: required_fn!(line_add_station: MqlLineAddStationFn),
            line_add_tag: required_fn!(line_add_tag: MqlLineAddTagFn),
            line_poll_events: required_fn!(line_poll_events: MqlLinePollEventsFn),
            line_destroy: required_fn!(line_destroy: MqlLineDestroyFn),
            line_start: table_fn!(api, size, line_start: MqlLineStartFn),
            line_station_command: table_fn!(api, size, line_station_command: MqlLineStationCommandFn),
            line_write: table_fn!(api, size, line_write: MqlLineWriteFn),
            line_set_parameters: table_fn!(api, size, line_set_parameters: MqlLineSetParametersFn),
            line_check: table_fn!(api, size, line_check: MqlLineCheckFn),
            line_stats: table_fn!(api, size, line_stats: MqlLineStatsFn),
            line_station_stats: table_fn!(api, size, line_station_stats: MqlLineStationStatsFn),
        };
        // SAFETY: `plugin_version` is static text by the ABI contract.
        let version = unsafe { copy_str(&version) };
        Ok(Plugin {
            fns,
            version,
            abi_minor: minor,
            path,
            _library: library,
        })
    }
}

/// Collects the plugin's error message for one call.
struct ErrorBuffer {
    buf: Box<[u8]>,
    err: MqlError,
}

thread_local! {
    /// The buffer of the thread's last call, lent to its next one: allocating and zeroing 2 KB
    /// for every call was a fifth of configuring 10,000 stations, and a part of every poll.
    static SPARE_ERROR_BUFFER: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

impl ErrorBuffer {
    fn new() -> ErrorBuffer {
        let mut buf = SPARE_ERROR_BUFFER
            .with(Cell::take)
            .unwrap_or_else(|| vec![0u8; 2048].into_boxed_slice());
        let err = MqlError {
            buf: buf.as_mut_ptr(),
            cap: buf.len(),
            len: 0,
        };
        ErrorBuffer { buf, err }
    }

    fn ptr(&mut self) -> *mut MqlError {
        &mut self.err
    }

    /// `Ok` for `MQL_OK`, else the status with the message (or a generic one when empty).
    fn check(self, status: MqlStatus, function: &str) -> Result<(), CallError> {
        if status == MQL_OK {
            return Ok(());
        }
        let len = self.err.len.min(self.buf.len());
        let mut message = String::from_utf8_lossy(&self.buf[..len]).into_owned();
        if message.is_empty() {
            message = format!("{function} failed with {}", status_name(status));
        }
        Err(CallError { status, message })
    }
}

impl Drop for ErrorBuffer {
    fn drop(&mut self) {
        // Only the first `len` bytes a call reports are ever read, so stale bytes do no harm.
        let buf = std::mem::take(&mut self.buf);
        SPARE_ERROR_BUFFER.with(|spare| spare.set(Some(buf)));
    }
}

/// Borrowed C views of (key, value) pairs; valid while `pairs` is.
fn c_params(pairs: &[(String, String)]) -> Vec<MqlParam> {
    pairs
        .iter()
        .map(|(k, v)| MqlParam {
            key: MqlStr::from_str(k),
            value: MqlStr::from_str(v),
        })
        .collect()
}

unsafe extern "C" fn notify_trampoline(user_data: *mut c_void) {
    if user_data.is_null() {
        return;
    }
    // SAFETY: `user_data` is the `Waker` of an `Arc` the `Line` keeps alive until after
    // `line_destroy`, so no call can outlive it.
    let waker = unsafe { &*(user_data as *const Waker) };
    waker.wake();
}

/// One line of the plugin; destroyed (clean MQTT DISCONNECT) on drop.
pub struct Line<'p> {
    plugin: &'p Plugin,
    handle: *mut MqlLine,
    /// Events are polled into this buffer and copied out at once.
    batch: Vec<MqlEvent>,
    // Dropped after `line_destroy` in `Drop`, so the notify callback never sees a dangling pointer.
    _waker: Option<Arc<Waker>>,
}

/// How many events one `line_poll_events` call may return.
const POLL_BATCH: usize = 256;

/// How a line is created besides its parameters.
#[derive(Default)]
pub struct LineOptions {
    /// The most detailed `MQL_LOG_*` level delivered (0 = INFO).
    pub log_level: u32,
    /// Called when events wait; `None` to poll without being woken.
    pub waker: Option<Arc<Waker>>,
    /// One `MQL_EVENT_ROUTE` per received message (ABI 1.2; an older plugin ignores it).
    pub trace_routing: bool,
}

impl<'p> Line<'p> {
    /// Creates a stopped line with `params` (host, port and protocol parameters).
    pub fn create(
        plugin: &'p Plugin,
        name: &str,
        params: &[(String, String)],
        log_level: u32,
        waker: Option<Arc<Waker>>,
    ) -> Result<Line<'p>, CallError> {
        let options = LineOptions {
            log_level,
            waker,
            trace_routing: false,
        };
        Line::create_with(plugin, name, params, options)
    }

    /// Creates a stopped line with `params` and `options`.
    pub fn create_with(
        plugin: &'p Plugin,
        name: &str,
        params: &[(String, String)],
        options: LineOptions,
    ) -> Result<Line<'p>, CallError> {
        let LineOptions {
            log_level,
            waker,
            trace_routing,
        } = options;
        let c_params = c_params(params);
        let (notify, user_data): (MqlNotifyFn, *mut c_void) = match &waker {
            Some(w) => (
                Some(notify_trampoline),
                Arc::as_ptr(w) as *const c_void as *mut c_void,
            ),
            None => (None, ptr::null_mut()),
        };
        let config = MqlLineConfig {
            size: size_of::<MqlLineConfig>(),
            name: MqlStr::from_str(name),
            params: c_params.as_ptr(),
            param_count: c_params.len(),
            notify,
            notify_user_data: user_data,
            event_queue_capacity: 0,
            log_level,
            trace_routing: u32::from(trace_routing),
        };
        let mut handle = ptr::null_mut();
        let mut err = ErrorBuffer::new();
        // SAFETY: every pointer is valid for the call; strings are borrowed for its duration.
        let status = unsafe { (plugin.fns.line_create)(&config, &mut handle, err.ptr()) };
        err.check(status, "line_create")?;
        if handle.is_null() {
            return Err(CallError {
                status: MQL_ERR_INTERNAL,
                message: "line_create succeeded but returned no line".into(),
            });
        }
        Ok(Line {
            plugin,
            handle,
            batch: vec![MqlEvent::empty(); POLL_BATCH],
            _waker: waker,
        })
    }

    pub fn add_station(
        &mut self,
        id: u64,
        name: &str,
        address: &str,
        params: &[(String, String)],
    ) -> Result<(), CallError> {
        let c_params = c_params(params);
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle; borrowed strings and parameters outlive the call.
        let status = unsafe {
            (self.plugin.fns.line_add_station)(
                self.handle,
                id,
                MqlStr::from_str(name),
                MqlStr::from_str(address),
                c_params.as_ptr(),
                c_params.len(),
                err.ptr(),
            )
        };
        err.check(status, "line_add_station")
    }

    /// Adds a tag; `default` is handed over as text for the plugin to convert.
    pub fn add_tag(
        &mut self,
        station_id: u64,
        id: u64,
        name: &str,
        address: &str,
        value_type: MqlValueType,
        default: Option<&str>,
    ) -> Result<(), CallError> {
        let default = default.map(MqlValue::text);
        let default_ptr = default
            .as_ref()
            .map_or(ptr::null(), |v| v as *const MqlValue);
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle; borrowed strings and the default value outlive the call.
        let status = unsafe {
            (self.plugin.fns.line_add_tag)(
                self.handle,
                station_id,
                id,
                MqlStr::from_str(name),
                MqlStr::from_str(address),
                value_type,
                default_ptr,
                err.ptr(),
            )
        };
        err.check(status, "line_add_tag")
    }

    pub fn start(&mut self) -> Result<(), CallError> {
        let f = self
            .plugin
            .fns
            .line_start
            .ok_or_else(|| CallError::missing("line_start"))?;
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle.
        let status = unsafe { f(self.handle, err.ptr()) };
        err.check(status, "line_start")
    }

    /// Runs the plugin's start-time checks without starting; its warnings arrive as log events.
    /// `Ok(false)` when the plugin predates `line_check` (ABI 1.0).
    pub fn check(&mut self) -> Result<bool, CallError> {
        let Some(f) = self.plugin.fns.line_check else {
            return Ok(false);
        };
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle.
        let status = unsafe { f(self.handle, err.ptr()) };
        err.check(status, "line_check").map(|()| true)
    }

    /// Sends an `MQL_STATION_CMD_*` to a station.
    pub fn station_command(&mut self, station_id: u64, command: u32) -> Result<(), CallError> {
        let f = self
            .plugin
            .fns
            .line_station_command
            .ok_or_else(|| CallError::missing("line_station_command"))?;
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle.
        let status = unsafe { f(self.handle, station_id, command, err.ptr()) };
        err.check(status, "line_station_command")
    }

    /// Asks for a write of `text` (converted by the plugin to the tag's type).
    pub fn write(&mut self, tag_id: u64, request_id: u64, text: &str) -> Result<(), CallError> {
        let f = self
            .plugin
            .fns
            .line_write
            .ok_or_else(|| CallError::missing("line_write"))?;
        let value = MqlValue::text(text);
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle; `value` borrows `text`, both outlive the call.
        let status = unsafe { f(self.handle, tag_id, request_id, &value, err.ptr()) };
        err.check(status, "line_write")
    }

    /// Changes line parameters of the running line (the plugin reconnects with them).
    pub fn set_parameters(&mut self, params: &[(String, String)]) -> Result<(), CallError> {
        let f = self
            .plugin
            .fns
            .line_set_parameters
            .ok_or_else(|| CallError::missing("line_set_parameters"))?;
        let c_params = c_params(params);
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle; the borrowed parameters outlive the call.
        let status = unsafe { f(self.handle, c_params.as_ptr(), c_params.len(), err.ptr()) };
        err.check(status, "line_set_parameters")
    }

    /// The line's counters and state (ABI 1.2; a clear `MQL_ERR_VERSION` error from an older
    /// plugin).
    pub fn stats(&self) -> Result<LineStats, CallError> {
        self.raw_stats().map(|s| LineStats::from_abi(&s))
    }

    /// The state and counters of a redundant line's connections A and B (ABI 1.3).
    pub fn connection_stats(&self) -> Result<[ConnectionStats; 2], CallError> {
        self.raw_stats().map(|s| ConnectionStats::from_abi(&s))
    }

    fn raw_stats(&self) -> Result<MqlLineStats, CallError> {
        let f = self
            .plugin
            .fns
            .line_stats
            .ok_or_else(|| CallError::missing("line_stats (ABI 1.2)"))?;
        let mut out = MqlLineStats {
            size: size_of::<MqlLineStats>(),
            ..MqlLineStats::default()
        };
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle; `out` is a whole `MqlLineStats` with its size set.
        let status = unsafe { f(self.handle, &mut out, err.ptr()) };
        err.check(status, "line_stats")?;
        Ok(out)
    }

    /// One station's counters and state (ABI 1.2, as [`Line::stats`]).
    pub fn station_stats(&self, station_id: u64) -> Result<StationStats, CallError> {
        let f = self
            .plugin
            .fns
            .line_station_stats
            .ok_or_else(|| CallError::missing("line_station_stats (ABI 1.2)"))?;
        let mut out = MqlStationStats {
            size: size_of::<MqlStationStats>(),
            ..MqlStationStats::default()
        };
        let mut err = ErrorBuffer::new();
        // SAFETY: a live handle; `out` is a whole `MqlStationStats` with its size set.
        let status = unsafe { f(self.handle, station_id, &mut out, err.ptr()) };
        err.check(status, "line_station_stats")?;
        Ok(StationStats::from_abi(&out))
    }

    /// Moves up to one batch of waiting events out of the plugin, strings copied. Returns
    /// whether the batch was full (more may wait).
    pub fn poll(&mut self, out: &mut Vec<RawEvent>) -> Result<bool, CallError> {
        let mut count = 0usize;
        let mut err = ErrorBuffer::new();
        // SAFETY: `batch` holds `POLL_BATCH` events of our `MqlEvent` layout.
        let status = unsafe {
            (self.plugin.fns.line_poll_events)(
                self.handle,
                self.batch.as_mut_ptr(),
                size_of::<MqlEvent>(),
                self.batch.len(),
                &mut count,
                err.ptr(),
            )
        };
        err.check(status, "line_poll_events")?;
        let count = count.min(self.batch.len());
        for ev in &self.batch[..count] {
            // SAFETY: the strings of polled events are valid until the next call on this line,
            // and we copy them now.
            out.push(unsafe { RawEvent::copy_from(ev) });
        }
        Ok(count == self.batch.len())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from `line_create` and is destroyed exactly once.
        unsafe { (self.plugin.fns.line_destroy)(self.handle) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn fake_stats(
        _: *mut MqlLine,
        _: *mut MqlLineStats,
        _: *mut MqlError,
    ) -> MqlStatus {
        MQL_OK
    }

    /// A plugin of ABI 1.1 has a table that ends before `line_stats`: the host reads the field as
    /// missing, never past the table; a NULL field within the table is missing too.
    #[test]
    fn functions_past_the_table_size_or_null_are_missing() {
        let mut table = std::mem::MaybeUninit::<MqlPluginApi>::zeroed();
        let api = table.as_mut_ptr();
        // SAFETY: the field lies within the zeroed table; `Option<fn>` has the layout of a
        // nullable function pointer.
        unsafe {
            ptr::addr_of_mut!((*api).line_stats)
                .cast::<Option<MqlLineStatsFn>>()
                .write(Some(fake_stats));
        }
        let api = api as *const MqlPluginApi;
        let abi_1_1 = offset_of!(MqlPluginApi, line_stats);
        assert!(table_fn!(api, abi_1_1, line_stats: MqlLineStatsFn).is_none());
        let whole = size_of::<MqlPluginApi>();
        assert!(table_fn!(api, whole, line_stats: MqlLineStatsFn).is_some());
        assert!(table_fn!(api, whole, line_station_stats: MqlLineStationStatsFn).is_none());
        let e = CallError::missing("line_stats (ABI 1.2)");
        assert_eq!(e.status, MQL_ERR_VERSION);
        assert_eq!(
            e.message,
            "the plugin's function table does not provide line_stats (ABI 1.2)"
        );
    }
}
