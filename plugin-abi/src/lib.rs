//! The C ABI between a SCADA host (the "kernel") and the mqtt-line plugin.
//!
//! Everything here is plain C: fixed-width integers, `double`, pointers and structs. Enumerations
//! cross the boundary as `uint32_t` constants and are checked on arrival, because an unknown
//! discriminant in a Rust `enum` would be undefined behaviour.
//!
//! The C header `include/mqtt_line.h` is generated from this file by cbindgen and committed; a test
//! fails when it is stale. `docs/abi.md` is the integrator's guide.
//!
//! # Versioning
//! The plugin exports exactly one symbol, [`MQL_ENTRY_SYMBOL`] (`mql_plugin_entry`). The host calls
//! it with the ABI major and minor version it was built against and receives a function table, or
//! NULL when the plugin cannot serve that major version. The table starts with its own size and only
//! ever grows at its end within a major version: a host must not call a function whose field lies
//! beyond `size`. Structs passed by the host that may grow ([`MqlLineConfig`]) and the event stride
//! ([`MqlPluginApi::line_poll_events`]) carry their size the same way.
//!
//! # Strings
//! [`MqlStr`] is a borrowed (pointer, length) UTF-8 string, not NUL-terminated. Strings the host
//! passes in are borrowed for the duration of the call only. Strings in events returned by
//! `line_poll_events` stay valid until the next `line_poll_events` or `line_destroy` on that line.
#![allow(clippy::missing_safety_doc)]

use std::ffi::c_void;

mod counters;

/// ABI major version: a change here is incompatible.
pub const MQL_ABI_MAJOR: u32 = 1;
/// ABI minor version: grows when functions or fields are appended.
pub const MQL_ABI_MINOR: u32 = 3;

/// Name of the one exported function, NUL-terminated, for `dlsym`.
pub const MQL_ENTRY_SYMBOL: &[u8] = b"mql_plugin_entry\0";

/// Result of every call that can fail.
pub type MqlStatus = i32;
/// Success.
pub const MQL_OK: MqlStatus = 0;
/// A null pointer, invalid UTF-8, or an unknown enumeration value.
pub const MQL_ERR_INVALID_ARGUMENT: MqlStatus = 1;
/// The configuration was refused; the message names the object, the parameter and the value.
pub const MQL_ERR_CONFIG: MqlStatus = 2;
/// No station or tag with that id on this line.
pub const MQL_ERR_UNKNOWN_ID: MqlStatus = 3;
/// A station or tag with that id already exists on this line.
pub const MQL_ERR_DUPLICATE_ID: MqlStatus = 4;
/// The call is not allowed in the line's present state (for example adding a tag after start).
pub const MQL_ERR_STATE: MqlStatus = 5;
/// The host's struct is too small for this major version (`MqlLineConfig.size`).
pub const MQL_ERR_VERSION: MqlStatus = 6;
/// The plugin failed internally (a caught panic); the line should be destroyed.
pub const MQL_ERR_INTERNAL: MqlStatus = 7;

/// D2000 I/O tag value types (`uint32_t`).
pub type MqlValueType = u32;
pub const MQL_TYPE_CI: MqlValueType = 1;
pub const MQL_TYPE_CO: MqlValueType = 2;
pub const MQL_TYPE_TXTI: MqlValueType = 3;
pub const MQL_TYPE_TXTO: MqlValueType = 4;
pub const MQL_TYPE_QI: MqlValueType = 5;
pub const MQL_TYPE_AI: MqlValueType = 6;
pub const MQL_TYPE_AO: MqlValueType = 7;
pub const MQL_TYPE_DI: MqlValueType = 8;
pub const MQL_TYPE_DO: MqlValueType = 9;
pub const MQL_TYPE_TIR: MqlValueType = 10;
pub const MQL_TYPE_TOR: MqlValueType = 11;
pub const MQL_TYPE_TIA: MqlValueType = 12;
pub const MQL_TYPE_TOA: MqlValueType = 13;

/// Which field of an [`MqlValue`] carries the value (`uint32_t`).
pub type MqlValueKind = u32;
/// No value (an invalid tag value carries this kind).
pub const MQL_VALUE_NONE: MqlValueKind = 0;
/// `int_value`: a signed 64-bit integer (Ci, Co).
pub const MQL_VALUE_INT: MqlValueKind = 1;
/// `float_value` (Ai, Ao); NaN and infinities are refused.
pub const MQL_VALUE_FLOAT: MqlValueKind = 2;
/// `int_value`: 0 or 1 (Di, Do); any other number is refused.
pub const MQL_VALUE_BOOL: MqlValueKind = 3;
/// `text` (TxtI, TxtO).
pub const MQL_VALUE_TEXT: MqlValueKind = 4;
/// `int_value`: 0..3, the D2000 quad states Off, False, True, Error (Qi).
pub const MQL_VALUE_QUAD: MqlValueKind = 5;
/// `int_value`: nanoseconds since 1970-01-01T00:00:00Z (TiA, ToA).
pub const MQL_VALUE_ABS_TIME: MqlValueKind = 6;
/// `float_value`: seconds (TiR, ToR); NaN and infinities are refused.
pub const MQL_VALUE_REL_TIME: MqlValueKind = 7;

/// Borrowed UTF-8 text: `len` bytes at `ptr`, not NUL-terminated. `ptr` may be NULL when `len` is 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MqlStr {
    pub ptr: *const u8,
    pub len: usize,
}

/// One configuration entry as an engineering tool stores it: a parameter name and its text.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MqlParam {
    pub key: MqlStr,
    pub value: MqlStr,
}

/// A tag value. `kind` says which one field is meaningful.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MqlValue {
    pub kind: MqlValueKind,
    pub reserved: u32,
    pub int_value: i64,
    pub float_value: f64,
    pub text: MqlStr,
}

/// Event kinds (`uint32_t`).
pub type MqlEventKind = u32;
/// A tag received a value: `station_id`, `tag_id`, `value`, `flags`, `time_ns`.
pub const MQL_EVENT_TAG_VALUE: MqlEventKind = 1;
/// A station changed state: `station_id`, `code` is an `MQL_STATION_*` state, `text` says why.
pub const MQL_EVENT_STATION_STATE: MqlEventKind = 2;
/// The line changed state: `code` is an `MQL_LINE_*` state, `text` is host:port or the reason.
pub const MQL_EVENT_LINE_STATE: MqlEventKind = 3;
/// A write finished: `request_id`, `station_id`, `tag_id`; `code` 0 = done, else `text` says why not.
pub const MQL_EVENT_WRITE_DONE: MqlEventKind = 4;
/// A log line: `code` is an `MQL_LOG_*` level, `text` the message.
pub const MQL_EVENT_LOG: MqlEventKind = 5;
/// Where one received PUBLISH went (ABI 1.2), only when [`MqlLineConfig::trace_routing`] is on:
/// `text` is the topic, `value` the payload as `MQL_VALUE_TEXT` (invalid UTF-8 replaced, cut to
/// [`MQL_ROUTE_PAYLOAD_MAX`] bytes), `code` an `MQL_ROUTE_*` outcome, `station_id` the station
/// that took it (codes TAKEN, STATION_OFF, SIMULATED and WILL), `time_ns` the time of reception.
pub const MQL_EVENT_ROUTE: MqlEventKind = 6;
/// One connection of a redundant line (`redundant_host`) changed state (ABI 1.3): `link` says
/// which (`MQL_LINK_A`, `MQL_LINK_B`), `code` is an `MQL_LINE_*` state of that connection, `text`
/// its host:port or the reason. The line's own state stays [`MQL_EVENT_LINE_STATE`], which
/// changes only with the first ready connection and the last lost one.
pub const MQL_EVENT_LINK_STATE: MqlEventKind = 7;

/// Connections of a line ([`MqlEvent::link`]): A to `host`, B to `redundant_host`; 0 in events
/// that are about no connection.
pub const MQL_LINK_A: u32 = 1;
pub const MQL_LINK_B: u32 = 2;

/// Routing outcomes (`code` of [`MQL_EVENT_ROUTE`]).
/// A station took the message (it fills its tags, or waits behind its ACK_ID gate).
pub const MQL_ROUTE_TAKEN: u32 = 1;
/// No station's topic rule matches the topic.
pub const MQL_ROUTE_UNROUTED: u32 = 2;
/// The station it belongs to is switched off: the message is dropped.
pub const MQL_ROUTE_STATION_OFF: u32 = 3;
/// The station it belongs to is in simulation: the message is dropped.
pub const MQL_ROUTE_SIMULATED: u32 = 4;
/// The message is a station's will message (the device is gone); it is not data. With several
/// stations sharing the will topic, `station_id` is the first of them.
pub const MQL_ROUTE_WILL: u32 = 5;
/// The most payload bytes an [`MQL_EVENT_ROUTE`] carries (cut on a character boundary).
pub const MQL_ROUTE_PAYLOAD_MAX: usize = 256;

/// Station states (`code` of [`MQL_EVENT_STATION_STATE`]).
pub const MQL_STATION_OK: u32 = 1;
pub const MQL_STATION_HARD_ERROR: u32 = 2;
pub const MQL_STATION_COMM_ERROR: u32 = 3;
pub const MQL_STATION_OFF: u32 = 4;
pub const MQL_STATION_SIMULATION: u32 = 5;

/// Line states (`code` of [`MQL_EVENT_LINE_STATE`]).
/// Connected and subscribed: ready to receive. `text` is the broker's host:port.
pub const MQL_LINE_CONNECTED: u32 = 1;
/// Not connected (a lost connection or a failed attempt). `text` is the reason.
pub const MQL_LINE_DISCONNECTED: u32 = 2;

/// Write results (`code` of [`MQL_EVENT_WRITE_DONE`]).
pub const MQL_WRITE_OK: u32 = 0;
pub const MQL_WRITE_FAILED: u32 = 1;

/// Log levels (`code` of [`MQL_EVENT_LOG`], and [`MqlLineConfig::log_level`]).
pub const MQL_LOG_ERROR: u32 = 1;
pub const MQL_LOG_WARN: u32 = 2;
pub const MQL_LOG_INFO: u32 = 3;
pub const MQL_LOG_DEBUG: u32 = 4;
pub const MQL_LOG_TRACE: u32 = 5;

/// Bits of [`MqlEvent::flags`] for tag values.
/// The value is valid; when clear, the tag is invalid and `value.kind` is `MQL_VALUE_NONE`.
pub const MQL_FLAG_VALID: u32 = 1;
/// `time_ns` was read from the payload, not the time of reception.
pub const MQL_FLAG_TIME_FROM_PAYLOAD: u32 = 2;
/// The message carried the DUP flag: the broker may have delivered it before (QoS 1).
pub const MQL_FLAG_DUPLICATE: u32 = 4;
/// The message carried the RETAIN flag: the broker kept it from an earlier publication.
pub const MQL_FLAG_RETAINED: u32 = 8;

/// Station commands for `line_station_command`.
pub const MQL_STATION_CMD_ON: u32 = 1;
pub const MQL_STATION_CMD_OFF: u32 = 2;
pub const MQL_STATION_CMD_SIMULATE: u32 = 3;

/// One event from the plugin. A flat struct (no unions) so any C host can read it directly.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MqlEvent {
    pub kind: MqlEventKind,
    /// State, level or result, depending on `kind`.
    pub code: u32,
    /// `MQL_FLAG_*` bits.
    pub flags: u32,
    pub reserved: u32,
    pub station_id: u64,
    pub tag_id: u64,
    /// The host's id of the write this event completes.
    pub request_id: u64,
    /// When it happened (or the payload's time stamp): nanoseconds since 1970-01-01T00:00:00Z.
    pub time_ns: i64,
    pub value: MqlValue,
    pub text: MqlStr,
    /// Appended in ABI 1.3: the connection an `MQL_EVENT_LINE_STATE` or `MQL_EVENT_LINK_STATE`
    /// is about (`MQL_LINK_A`, `MQL_LINK_B`); 0 in other events. A host that passes the older,
    /// shorter `event_size` never sees it.
    pub link: u32,
    pub reserved2: u32,
}

/// Opaque handle of one communication line.
pub struct MqlLine {
    _private: [u8; 0],
}

/// Called by a plugin thread when the event queue turns non-empty. It must return quickly and must
/// not call into the plugin; the host drains the queue later from its own thread.
pub type MqlNotifyFn = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// What a line is created from.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MqlLineConfig {
    /// `sizeof(MqlLineConfig)` as the host was compiled with. The plugin reads no byte past it
    /// and takes the fields there as zero. It must cover at least `param_count`, or
    /// `line_create` fails with `MQL_ERR_VERSION`.
    pub size: usize,
    /// A name for logs and messages (the line object's name in the host).
    pub name: MqlStr,
    /// Line parameters: `host`, `port` and the protocol parameters (see docs/parameters.md).
    pub params: *const MqlParam,
    pub param_count: usize,
    /// Optional wake-up callback and its argument.
    pub notify: MqlNotifyFn,
    pub notify_user_data: *mut c_void,
    /// How many tag values may wait in the queue before the line stops reading from the broker;
    /// 0 selects the default (65536). Status events and write completions are never dropped.
    pub event_queue_capacity: usize,
    /// The most detailed `MQL_LOG_*` level delivered as log events; 0 selects `MQL_LOG_INFO`,
    /// above `MQL_LOG_TRACE` is refused.
    pub log_level: u32,
    /// Since ABI 1.2: non-zero asks for one [`MQL_EVENT_ROUTE`] per received PUBLISH. An older
    /// host's smaller struct reads as 0 (off), so it never sees the new event kind.
    pub trace_routing: u32,
}

/// The counters and state of one line (ABI 1.2), filled by `line_stats`. Counters start at 0 when
/// the line is created and only grow (except the gauge `held`); they survive reconnects. A counter
/// appended here is also appended to `line_counters!` (counters.rs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MqlLineStats {
    /// `sizeof(MqlLineStats)` as the host was compiled with; the plugin writes no byte past it.
    pub size: usize,
    /// `MQL_LINE_CONNECTED` or `MQL_LINE_DISCONNECTED`; 0 before the first attempt ended or
    /// succeeded (the line is not started or still connecting the first time).
    pub state: u32,
    pub reserved: u32,
    /// Every PUBLISH the line took from the broker, routed or not (redeliveries the session
    /// already had are not counted again).
    pub received: u64,
    /// Payload bytes of those.
    pub bytes_received: u64,
    /// Messages no station's topic rule matched.
    pub unrouted: u64,
    /// Messages routed to a station that is switched off.
    pub dropped_off: u64,
    /// Messages routed to a station in simulation.
    pub dropped_simulated: u64,
    /// Payloads that could not be read as their payload type (a JSON payload that is not JSON).
    pub payload_errors: u64,
    /// Messages recognised as a station's will message.
    pub will_messages: u64,
    /// Messages held now by ACK_ID gates, waiting to be shown (a gauge, not a counter).
    pub held: u64,
    /// Accepted writes that ended done / failed (their `MQL_EVENT_WRITE_DONE`).
    pub writes_ok: u64,
    pub writes_failed: u64,
    /// Connections attempted (TCP/TLS/WebSocket), and connections to a broker that was ready
    /// before (each one after a lost or closed ready connection).
    pub connection_attempts: u64,
    pub reconnects: u64,
    /// Reception time of the last PUBLISH (ns since the Unix epoch); 0 = none yet.
    pub last_message_ns: i64,
    /// Appended after ABI 1.2's `last_message_ns`, so a host compiled with the shorter struct
    /// never sees them and a plugin that predates them leaves them 0. Sparkplug edge node
    /// store-and-forward (`payload_type = "Sparkplug Edge Node"`; 0 on every other line): writes
    /// stored while the node was not born, stored writes forwarded as historical NDATA/DDATA,
    /// stored writes dropped (beyond `store_max_messages`, or unreadable from `store_path`).
    pub edge_stored: u64,
    pub edge_forwarded: u64,
    pub edge_dropped: u64,
    /// Writes in the store now, waiting to be forwarded (a gauge, not a counter).
    pub edge_held: u64,
    /// Appended in ABI 1.3, a redundant line's connections (`redundant_host`): each one's
    /// `MQL_LINE_*` state (0 before its first attempt ended, and B's on a line without B), the
    /// PUBLISH messages it took (copies included), the copies of messages the other connection
    /// delivered first (not shown), and its reconnects. On a line with one connection, A's
    /// `received` and `reconnects` are the line's.
    pub link_a_state: u32,
    pub link_b_state: u32,
    pub link_a_received: u64,
    pub link_a_duplicates: u64,
    pub link_a_reconnects: u64,
    pub link_b_received: u64,
    pub link_b_duplicates: u64,
    pub link_b_reconnects: u64,
    /// Appended in ABI 1.3 with the above: connections to a broker each one attempted.
    pub link_a_connection_attempts: u64,
    pub link_b_connection_attempts: u64,
}

/// The counters and state of one station (ABI 1.2), filled by `line_station_stats`. A counter
/// appended here is also appended to `station_counters!` (counters.rs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MqlStationStats {
    /// `sizeof(MqlStationStats)` as the host was compiled with; the plugin writes no byte past it.
    pub size: usize,
    /// An `MQL_STATION_*` state; 0 while the station has reported none (before start).
    pub state: u32,
    pub reserved: u32,
    /// PUBLISHes routed to it, whatever became of them (including dropped and held ones).
    pub received: u64,
    /// Those dropped because it was off or in simulation, or by its full ACK_ID gate.
    pub dropped: u64,
    /// Messages held now by its ACK_ID gate (a gauge).
    pub held: u64,
    /// Reception time of the last PUBLISH routed to it (ns since the Unix epoch); 0 = none yet.
    pub last_message_ns: i64,
}

/// Where an error message is written: up to `cap` bytes of UTF-8 into `buf`, truncated on a
/// character boundary, with `len` set to the bytes written. The whole struct pointer may be NULL.
#[repr(C)]
#[derive(Debug)]
pub struct MqlError {
    pub buf: *mut u8,
    pub cap: usize,
    pub len: usize,
}

/// Creates a stopped line. On success `*out_line` receives the handle.
pub type MqlLineCreateFn = unsafe extern "C" fn(
    config: *const MqlLineConfig,
    out_line: *mut *mut MqlLine,
    err: *mut MqlError,
) -> MqlStatus;

/// Adds a station before start. `address` is the topic rule; `params` the station parameters.
pub type MqlLineAddStationFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    station_id: u64,
    name: MqlStr,
    address: MqlStr,
    params: *const MqlParam,
    param_count: usize,
    err: *mut MqlError,
) -> MqlStatus;

/// Adds an I/O tag to a station before start. `default_value` may be NULL.
pub type MqlLineAddTagFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    station_id: u64,
    tag_id: u64,
    name: MqlStr,
    address: MqlStr,
    value_type: MqlValueType,
    default_value: *const MqlValue,
    err: *mut MqlError,
) -> MqlStatus;

/// Ends configuration and starts communication on a plugin thread.
pub type MqlLineStartFn = unsafe extern "C" fn(line: *mut MqlLine, err: *mut MqlError) -> MqlStatus;

/// Switches a station on, off, or to simulation (`MQL_STATION_CMD_*`).
pub type MqlLineStationCommandFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    station_id: u64,
    command: u32,
    err: *mut MqlError,
) -> MqlStatus;

/// Writes a value to an output tag. Accepted writes always end in exactly one
/// `MQL_EVENT_WRITE_DONE` carrying `request_id`; a refused call returns an error instead.
pub type MqlLineWriteFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    tag_id: u64,
    request_id: u64,
    value: *const MqlValue,
    err: *mut MqlError,
) -> MqlStatus;

/// Changes line parameters at run time: the connection is closed and opened with them.
pub type MqlLineSetParametersFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    params: *const MqlParam,
    param_count: usize,
    err: *mut MqlError,
) -> MqlStatus;

/// Moves up to `capacity` events into `events`, laid out with a stride of `event_size` bytes
/// (the host's `sizeof(MqlEvent)`; bytes of a slot past this ABI's `MqlEvent` are set to zero);
/// `*out_count` receives how many. Never blocks. Strings of the
/// returned events stay valid until the next `line_poll_events` or `line_destroy` on this
/// line. Call again while `*out_count == capacity`: the wake-up comes only when the queue
/// turns non-empty.
pub type MqlLinePollEventsFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    events: *mut MqlEvent,
    event_size: usize,
    capacity: usize,
    out_count: *mut usize,
    err: *mut MqlError,
) -> MqlStatus;

/// Disconnects cleanly (MQTT DISCONNECT), joins the line's thread and frees the line.
pub type MqlLineDestroyFn = unsafe extern "C" fn(line: *mut MqlLine);

/// Runs the checks of `line_start` without starting (ABI 1.1): the routing table must build
/// (else `MQL_ERR_CONFIG` with the reason), and configurations that are accepted but cannot work
/// as meant (no stations, OUT_VALUE without OUT_TOPIC, stations behind a `#` station, wildcards in
/// a Station Will Topic) are reported as `MQL_LOG_WARN` log events. The line stays configurable.
pub type MqlLineCheckFn = unsafe extern "C" fn(line: *mut MqlLine, err: *mut MqlError) -> MqlStatus;

/// Fills the line's counters and state (ABI 1.2). The host sets `out->size` to
/// `sizeof(MqlLineStats)`; the plugin writes the fields that lie within it and no byte past it.
/// A size smaller than the ABI 1.2 struct (up to `last_message_ns`) is refused with
/// `MQL_ERR_VERSION`. Works before `line_start` (the counters are then 0).
pub type MqlLineStatsFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    out: *mut MqlLineStats,
    err: *mut MqlError,
) -> MqlStatus;

/// Fills one station's counters and state (ABI 1.2), with the size rule of `line_stats`. An
/// unknown `station_id` returns `MQL_ERR_UNKNOWN_ID`.
pub type MqlLineStationStatsFn = unsafe extern "C" fn(
    line: *mut MqlLine,
    station_id: u64,
    out: *mut MqlStationStats,
    err: *mut MqlError,
) -> MqlStatus;

/// The function table returned by `mql_plugin_entry`. Fields are only ever appended. The plugin
/// fills every field of its version; a host reads a field only when it lies within `size` (a Rust
/// host reads it as `Option<fn>`, so that a NULL from a faulty plugin is not undefined behaviour).
#[repr(C)]
pub struct MqlPluginApi {
    /// `sizeof(MqlPluginApi)` of the plugin: a function is present when its field ends within it.
    pub size: usize,
    pub abi_major: u32,
    pub abi_minor: u32,
    /// Static text such as "mqtt-line 0.1.0".
    pub plugin_version: MqlStr,
    pub line_create: MqlLineCreateFn,
    pub line_add_station: MqlLineAddStationFn,
    pub line_add_tag: MqlLineAddTagFn,
    pub line_start: MqlLineStartFn,
    pub line_station_command: MqlLineStationCommandFn,
    pub line_write: MqlLineWriteFn,
    pub line_set_parameters: MqlLineSetParametersFn,
    pub line_poll_events: MqlLinePollEventsFn,
    pub line_destroy: MqlLineDestroyFn,
    /// Since ABI 1.1.
    pub line_check: MqlLineCheckFn,
    /// Since ABI 1.2.
    pub line_stats: MqlLineStatsFn,
    /// Since ABI 1.2.
    pub line_station_stats: MqlLineStationStatsFn,
}

/// Signature of `mql_plugin_entry`: returns the table, or NULL when `host_abi_major` is unsupported.
pub type MqlEntryFn =
    unsafe extern "C" fn(host_abi_major: u32, host_abi_minor: u32) -> *const MqlPluginApi;

impl MqlStr {
    pub const fn empty() -> MqlStr {
        MqlStr {
            ptr: std::ptr::null(),
            len: 0,
        }
    }

    /// Borrows a Rust string; the result is valid while `s` is. (Not `FromStr`: it borrows.)
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(s: &str) -> MqlStr {
        MqlStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The bytes, or `None` for a NULL pointer with a non-zero length.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a`.
    pub unsafe fn as_bytes<'a>(&self) -> Option<&'a [u8]> {
        if self.len == 0 {
            Some(&[])
        } else if self.ptr.is_null() {
            None
        } else {
            Some(std::slice::from_raw_parts(self.ptr, self.len))
        }
    }
}

impl MqlValue {
    pub const fn none() -> MqlValue {
        MqlValue {
            kind: MQL_VALUE_NONE,
            reserved: 0,
            int_value: 0,
            float_value: 0.0,
            text: MqlStr::empty(),
        }
    }

    /// A text value borrowing `s`.
    pub fn text(s: &str) -> MqlValue {
        MqlValue {
            kind: MQL_VALUE_TEXT,
            text: MqlStr::from_str(s),
            ..MqlValue::none()
        }
    }
}

impl MqlEvent {
    pub const fn empty() -> MqlEvent {
        MqlEvent {
            kind: 0,
            code: 0,
            flags: 0,
            reserved: 0,
            station_id: 0,
            tag_id: 0,
            request_id: 0,
            time_ns: 0,
            value: MqlValue::none(),
            text: MqlStr::empty(),
            link: 0,
            reserved2: 0,
        }
    }
}

/// The D2000 name of a value type (`"Ci"`, `"TxtI"`...), or `None` for an unknown number.
pub fn value_type_name(t: MqlValueType) -> Option<&'static str> {
    VALUE_TYPE_NAMES
        .iter()
        .find(|(n, _)| *n == t)
        .map(|(_, name)| *name)
}

/// The number of a D2000 value type name, matched without regard to case.
pub fn value_type_from_name(name: &str) -> Option<MqlValueType> {
    VALUE_TYPE_NAMES
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(t, _)| *t)
}

const VALUE_TYPE_NAMES: [(MqlValueType, &str); 13] = [
    (MQL_TYPE_CI, "Ci"),
    (MQL_TYPE_CO, "Co"),
    (MQL_TYPE_TXTI, "TxtI"),
    (MQL_TYPE_TXTO, "TxtO"),
    (MQL_TYPE_QI, "Qi"),
    (MQL_TYPE_AI, "Ai"),
    (MQL_TYPE_AO, "Ao"),
    (MQL_TYPE_DI, "Di"),
    (MQL_TYPE_DO, "Do"),
    (MQL_TYPE_TIR, "TiR"),
    (MQL_TYPE_TOR, "ToR"),
    (MQL_TYPE_TIA, "TiA"),
    (MQL_TYPE_TOA, "ToA"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_type_names_round_trip() {
        for t in MQL_TYPE_CI..=MQL_TYPE_TOA {
            let name = value_type_name(t).expect("every type has a name");
            assert_eq!(value_type_from_name(name), Some(t));
            assert_eq!(value_type_from_name(&name.to_uppercase()), Some(t));
        }
        assert_eq!(value_type_name(0), None);
        assert_eq!(value_type_from_name("Float"), None);
    }

    #[test]
    fn null_string_with_length_is_refused() {
        let s = MqlStr {
            ptr: std::ptr::null(),
            len: 3,
        };
        assert!(unsafe { s.as_bytes() }.is_none());
        assert_eq!(unsafe { MqlStr::empty().as_bytes() }, Some(&[][..]));
    }
}
