//! The exported functions called the way a C host calls them: struct sizes, value checks, error
//! codes by cause, and how a connected line is destroyed.

use std::io::{Read, Write};
use std::mem::{offset_of, size_of};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::*;

const DEADLINE: Duration = Duration::from_secs(20);

fn s(text: &str) -> MqlStr {
    MqlStr::from_str(text)
}

/// Calls `f` with an error buffer; the status and the message.
fn call(f: impl FnOnce(*mut MqlError) -> MqlStatus) -> (MqlStatus, String) {
    let mut buf = vec![0u8; 1024];
    let mut err = MqlError {
        buf: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    let status = f(&mut err);
    let msg = String::from_utf8_lossy(&buf[..err.len]).into_owned();
    (status, msg)
}

fn params(list: &[(&'static str, &'static str)]) -> Vec<MqlParam> {
    list.iter()
        .map(|(k, v)| MqlParam {
            key: s(k),
            value: s(v),
        })
        .collect()
}

/// A port on 127.0.0.1 that refuses connections (nothing listens there any more).
fn refused_port() -> String {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port().to_string()
}

fn config(name: &str, list: &[MqlParam], log_level: u32) -> MqlLineConfig {
    MqlLineConfig {
        size: size_of::<MqlLineConfig>(),
        name: s(name),
        params: list.as_ptr(),
        param_count: list.len(),
        notify: None,
        notify_user_data: std::ptr::null_mut(),
        event_queue_capacity: 0,
        log_level,
        trace_routing: 0,
    }
}

fn create(port: &str, log_level: u32) -> *mut MqlLine {
    let port: &'static str = Box::leak(port.to_string().into_boxed_str());
    let list = params(&[("host", "127.0.0.1"), ("port", port)]);
    let cfg = config("L1", &list, log_level);
    let mut line = std::ptr::null_mut();
    let (status, msg) = call(|e| unsafe { line_create(&cfg, &mut line, e) });
    assert_eq!(status, MQL_OK, "line_create: {msg}");
    line
}

fn add_station(line: *mut MqlLine, id: u64, name: &str, address: &str) -> (MqlStatus, String) {
    call(|e| unsafe { line_add_station(line, id, s(name), s(address), std::ptr::null(), 0, e) })
}

fn add_tag(
    line: *mut MqlLine,
    station: u64,
    id: u64,
    name: &str,
    address: &str,
    ty: MqlValueType,
    default: Option<&MqlValue>,
) -> (MqlStatus, String) {
    let default = default.map_or(std::ptr::null(), |v| v as *const MqlValue);
    call(|e| unsafe { line_add_tag(line, station, id, s(name), s(address), ty, default, e) })
}

fn ok(what: &str, (status, msg): (MqlStatus, String)) {
    assert_eq!(status, MQL_OK, "{what}: {msg}");
}

const STATION: u64 = 1;
const TOPIC: u64 = 10;
const SETPOINT: u64 = 11;
const DELAY: u64 = 12;
const FLAG: u64 = 13;
const DATA: u64 = 14;

/// Station 1 "st" with an OUT_TOPIC, three OUT_VALUE tags (Ao, ToR, Do) and an IN_DATA tag.
fn configured(port: &str, log_level: u32) -> *mut MqlLine {
    let line = create(port, log_level);
    ok("station", add_station(line, STATION, "st", "st/x"));
    let topic = MqlValue::text("st/cmd");
    let tags: [(u64, &str, &str, MqlValueType, Option<&MqlValue>); 5] = [
        (TOPIC, "topic", "OUT_TOPIC", MQL_TYPE_TXTO, Some(&topic)),
        (SETPOINT, "sp", "OUT_VALUE", MQL_TYPE_AO, None),
        (DELAY, "delay", "OUT_VALUE", MQL_TYPE_TOR, None),
        (FLAG, "flag", "OUT_VALUE", MQL_TYPE_DO, None),
        (DATA, "data", "IN_DATA", MQL_TYPE_TXTI, None),
    ];
    for (id, name, address, ty, default) in tags {
        ok(name, add_tag(line, STATION, id, name, address, ty, default));
    }
    line
}

fn started(port: &str, log_level: u32) -> *mut MqlLine {
    let line = configured(port, log_level);
    ok("start", call(|e| unsafe { line_start(line, e) }));
    line
}

/// An event copied out of the plugin's borrowed strings.
#[derive(Debug, Clone)]
struct Ev {
    kind: u32,
    code: u32,
    request_id: u64,
    text: String,
}

fn poll(line: *mut MqlLine) -> Vec<Ev> {
    let mut buf = [MqlEvent::empty(); 64];
    let mut out = Vec::new();
    loop {
        let mut n = 0usize;
        let (status, msg) = call(|e| unsafe {
            line_poll_events(
                line,
                buf.as_mut_ptr(),
                size_of::<MqlEvent>(),
                buf.len(),
                &mut n,
                e,
            )
        });
        assert_eq!(status, MQL_OK, "poll: {msg}");
        for ev in &buf[..n] {
            let text = unsafe { ev.text.as_bytes() }.unwrap_or_default();
            out.push(Ev {
                kind: ev.kind,
                code: ev.code,
                request_id: ev.request_id,
                text: String::from_utf8_lossy(text).into_owned(),
            });
        }
        if n < buf.len() {
            return out;
        }
    }
}

/// Polls until an event matches; every event seen up to it.
fn wait_for(line: *mut MqlLine, what: &str, pred: impl Fn(&Ev) -> bool) -> Vec<Ev> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        seen.extend(poll(line));
        if seen.iter().any(&pred) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} within {DEADLINE:?}: {seen:#?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Struct sizes
// ---------------------------------------------------------------------------------------------

/// Two pages, the second one unreadable: a read past the end of the first one faults.
struct GuardedPage {
    base: *mut u8,
    page: usize,
}

impl GuardedPage {
    fn new() -> GuardedPage {
        unsafe {
            let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).expect("page size");
            let base = libc::mmap(
                std::ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(base, libc::MAP_FAILED, "mmap");
            let base = base as *mut u8;
            assert_eq!(
                libc::mprotect(base.add(page) as *mut _, page, libc::PROT_NONE),
                0,
                "mprotect"
            );
            GuardedPage { base, page }
        }
    }

    /// Copies the first `len` bytes of `value` so that they end exactly at the guard page.
    fn place_at_end<T>(&self, value: &T, len: usize) -> *const T {
        assert!(len <= size_of::<T>() && len <= self.page);
        unsafe {
            let at = self.base.add(self.page - len);
            std::ptr::copy_nonoverlapping(value as *const T as *const u8, at, len);
            at as *const T
        }
    }
}

impl Drop for GuardedPage {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.base as *mut _, 2 * self.page) };
    }
}

#[test]
fn line_create_reads_no_further_than_the_config_size() {
    let guarded = GuardedPage::new();
    let port = refused_port();
    let port: &'static str = Box::leak(port.into_boxed_str());
    let list = params(&[("host", "127.0.0.1"), ("port", port)]);
    let head = offset_of!(MqlLineConfig, notify);
    // (bytes the host's struct has, the size it declares, the status wanted, a message fragment)
    let cases: [(usize, usize, MqlStatus, &str); 5] = [
        // A host that knows only size, name, params and param_count: the rest reads as zero.
        (head, head, MQL_OK, ""),
        // Every field but the last one.
        (
            offset_of!(MqlLineConfig, log_level),
            offset_of!(MqlLineConfig, log_level),
            MQL_OK,
            "",
        ),
        (
            size_of::<MqlLineConfig>(),
            size_of::<MqlLineConfig>(),
            MQL_OK,
            "",
        ),
        // Too short to hold even the parameters.
        (
            size_of::<usize>(),
            size_of::<usize>(),
            MQL_ERR_VERSION,
            "MqlLineConfig.size 8",
        ),
        (
            size_of::<usize>(),
            0,
            MQL_ERR_VERSION,
            "MqlLineConfig.size 0",
        ),
    ];
    for (bytes, declared, want, fragment) in cases {
        let mut full = config("short", &list, 0);
        full.size = declared;
        if bytes < size_of::<MqlLineConfig>() {
            // Past `bytes`: refused if it were read (the guard page faults first).
            full.log_level = 77;
        }
        let cfg = guarded.place_at_end(&full, bytes);
        let mut line = std::ptr::null_mut();
        let (status, msg) = call(|e| unsafe { line_create(cfg, &mut line, e) });
        assert_eq!(status, want, "size {declared} in {bytes} bytes: {msg}");
        assert!(msg.contains(fragment), "size {declared}: {msg}");
        unsafe { line_destroy(line) };
    }
}

#[test]
fn larger_event_slots_get_a_zeroed_tail() {
    let line = started(&refused_port(), MQL_LOG_INFO);
    const EXTRA: usize = 24;
    const SLOTS: usize = 4;
    let stride = size_of::<MqlEvent>() + EXTRA;
    // u64 words keep the slots aligned as the host's larger struct would be.
    let mut buf = vec![0xa5a5_a5a5_a5a5_a5a5u64; stride * SLOTS / 8];
    let mut n = 0usize;
    let (status, msg) = call(|e| unsafe {
        line_poll_events(
            line,
            buf.as_mut_ptr() as *mut MqlEvent,
            stride,
            SLOTS,
            &mut n,
            e,
        )
    });
    assert_eq!(status, MQL_OK, "{msg}");
    assert!(n > 0, "line_start reports the station's state");
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, stride * SLOTS) };
    for (i, slot) in bytes.chunks(stride).enumerate() {
        let (event, tail) = slot.split_at(size_of::<MqlEvent>());
        if i < n {
            assert_ne!(event[0], 0xa5, "slot {i} holds an event");
            assert!(tail.iter().all(|&b| b == 0), "slot {i}: tail {tail:02x?}");
        } else {
            assert!(
                slot.iter().all(|&b| b == 0xa5),
                "slot {i} past the count is untouched"
            );
        }
    }
    unsafe { line_destroy(line) };
}

/// A host array that is not aligned for `MqlEvent` (a packed buffer) gets the events written
/// byte-wise, as an aligned one gets them in place.
#[test]
fn an_unaligned_event_array_gets_the_same_events() {
    const SLOTS: usize = 4;
    let size = size_of::<MqlEvent>();
    let mut polled = Vec::new();
    for offset in [0, 1] {
        let line = started(&refused_port(), MQL_LOG_INFO);
        // u64 words: offset 0 is aligned, offset 1 is not.
        let mut buf = vec![0u64; (size * SLOTS + 8) / 8 + 1];
        let at = unsafe { (buf.as_mut_ptr() as *mut u8).add(offset) } as *mut MqlEvent;
        let mut n = 0usize;
        let (status, msg) = call(|e| unsafe { line_poll_events(line, at, size, SLOTS, &mut n, e) });
        assert_eq!(status, MQL_OK, "{msg}");
        assert!(n > 0, "line_start reports the station's state");
        let events: Vec<(u32, u64, u32)> = (0..n)
            .map(|i| {
                let ev = unsafe { at.add(i).read_unaligned() };
                (ev.kind, ev.station_id, ev.code)
            })
            .collect();
        polled.push(events);
        unsafe { line_destroy(line) };
    }
    assert_eq!(polled[0], polled[1]);
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

fn float(kind: MqlValueKind, f: f64) -> MqlValue {
    MqlValue {
        kind,
        float_value: f,
        ..MqlValue::none()
    }
}

fn int(kind: MqlValueKind, i: i64) -> MqlValue {
    MqlValue {
        kind,
        int_value: i,
        ..MqlValue::none()
    }
}

/// How a refused value comes back.
#[derive(Debug)]
enum Refused {
    /// The call fails with this status.
    Call(MqlStatus),
    /// The write is accepted and ends in a failed MQL_EVENT_WRITE_DONE.
    WriteDone,
}

#[test]
fn non_finite_floats_and_bad_booleans_are_refused() {
    let line = started(&refused_port(), MQL_LOG_INFO);
    let cases: [(u64, MqlValue, Refused, &[&str]); 8] = [
        (
            SETPOINT,
            float(MQL_VALUE_FLOAT, f64::NAN),
            Refused::WriteDone,
            &["tag 'st.sp'", "'NaN'"],
        ),
        (
            SETPOINT,
            float(MQL_VALUE_FLOAT, f64::INFINITY),
            Refused::WriteDone,
            &["tag 'st.sp'", "'inf'"],
        ),
        (
            SETPOINT,
            float(MQL_VALUE_FLOAT, f64::NEG_INFINITY),
            Refused::WriteDone,
            &["tag 'st.sp'", "'-inf'"],
        ),
        (
            SETPOINT,
            MqlValue::text("nan"),
            Refused::WriteDone,
            &["tag 'st.sp'", "'nan'"],
        ),
        (
            DELAY,
            float(MQL_VALUE_REL_TIME, f64::INFINITY),
            Refused::WriteDone,
            &["tag 'st.delay'", "'inf'"],
        ),
        (
            DELAY,
            float(MQL_VALUE_FLOAT, f64::NAN),
            Refused::WriteDone,
            &["tag 'st.delay'", "'NaN'"],
        ),
        (
            FLAG,
            int(MQL_VALUE_BOOL, 2),
            Refused::Call(MQL_ERR_INVALID_ARGUMENT),
            &["boolean value 2"],
        ),
        (
            FLAG,
            int(MQL_VALUE_BOOL, -1),
            Refused::Call(MQL_ERR_INVALID_ARGUMENT),
            &["boolean value -1"],
        ),
    ];
    for (request, (tag, value, want, fragments)) in (100u64..).zip(cases) {
        let (status, msg) = call(|e| unsafe { line_write(line, tag, request, &value, e) });
        let text = match want {
            Refused::Call(code) => {
                assert_eq!(status, code, "tag {tag} {value:?}: {msg}");
                msg
            }
            Refused::WriteDone => {
                assert_eq!(status, MQL_OK, "tag {tag} {value:?}: {msg}");
                let seen = wait_for(line, "write completion", |e| {
                    e.kind == MQL_EVENT_WRITE_DONE && e.request_id == request
                });
                let done = seen
                    .into_iter()
                    .find(|e| e.kind == MQL_EVENT_WRITE_DONE && e.request_id == request)
                    .expect("found above");
                assert_eq!(done.code, MQL_WRITE_FAILED, "tag {tag} {value:?}: {done:?}");
                done.text
            }
        };
        for f in fragments {
            assert!(
                text.contains(f),
                "tag {tag} {value:?}: {text:?} lacks {f:?}"
            );
        }
        assert!(
            !text.contains("not connected"),
            "refused before publishing: {text}"
        );
    }
    unsafe { line_destroy(line) };
}

#[test]
fn non_finite_defaults_bad_booleans_and_log_levels_are_refused() {
    let line = create(&refused_port(), MQL_LOG_INFO);
    ok("station", add_station(line, STATION, "st", "st/x"));
    let cases: [(MqlValueType, MqlValue, MqlStatus, &str); 5] = [
        (
            MQL_TYPE_AO,
            float(MQL_VALUE_FLOAT, f64::NAN),
            MQL_ERR_CONFIG,
            "default value 'NaN'",
        ),
        (
            MQL_TYPE_AO,
            float(MQL_VALUE_FLOAT, f64::INFINITY),
            MQL_ERR_CONFIG,
            "default value 'inf'",
        ),
        (
            MQL_TYPE_TOR,
            float(MQL_VALUE_REL_TIME, f64::NEG_INFINITY),
            MQL_ERR_CONFIG,
            "default value '-inf'",
        ),
        (
            MQL_TYPE_AO,
            MqlValue::text("-inf"),
            MQL_ERR_CONFIG,
            "default value '-inf'",
        ),
        (
            MQL_TYPE_DO,
            int(MQL_VALUE_BOOL, 5),
            MQL_ERR_INVALID_ARGUMENT,
            "boolean value 5",
        ),
    ];
    for (id, (ty, value, want, fragment)) in (20u64..).zip(cases) {
        let (status, msg) = add_tag(line, STATION, id, "out", "OUT_VALUE", ty, Some(&value));
        assert_eq!(status, want, "{value:?}: {msg}");
        assert!(
            msg.contains(fragment),
            "{value:?}: {msg:?} lacks {fragment:?}"
        );
        assert!(
            msg.contains("'st.out'") || msg.contains("tag 'out'"),
            "{msg}"
        );
    }
    unsafe { line_destroy(line) };

    for level in [6u32, 99, u32::MAX] {
        let list = params(&[("host", "127.0.0.1")]);
        let cfg = config("L1", &list, level);
        let mut line = std::ptr::null_mut();
        let (status, msg) = call(|e| unsafe { line_create(&cfg, &mut line, e) });
        assert_eq!(status, MQL_ERR_INVALID_ARGUMENT, "log_level {level}: {msg}");
        assert!(msg.contains(&format!("log_level {level}")), "{msg}");
        assert!(line.is_null());
    }
}

// ---------------------------------------------------------------------------------------------
// Error codes by cause
// ---------------------------------------------------------------------------------------------

type Call = fn(*mut MqlLine, *mut MqlError) -> MqlStatus;

#[test]
fn error_codes_by_cause() {
    let cmd_on: Call = |l, e| unsafe { line_station_command(l, STATION, MQL_STATION_CMD_ON, e) };
    // (situation, call, status, message fragment)
    let before_start: [(&str, Call, MqlStatus, &str); 8] = [
        (
            "write before start",
            |l, e| unsafe { line_write(l, SETPOINT, 1, &MqlValue::text("1"), e) },
            MQL_ERR_STATE,
            "line 'L1' is not started",
        ),
        (
            "write to an unknown tag before start",
            |l, e| unsafe { line_write(l, 999, 1, &MqlValue::text("1"), e) },
            MQL_ERR_STATE,
            "line 'L1' is not started",
        ),
        (
            "tag of an unknown station",
            |l, e| unsafe {
                line_add_tag(
                    l,
                    77,
                    50,
                    s("t"),
                    s("IN_DATA"),
                    MQL_TYPE_TXTI,
                    std::ptr::null(),
                    e,
                )
            },
            MQL_ERR_UNKNOWN_ID,
            "no station with id 77",
        ),
        (
            "station id used twice",
            |l, e| unsafe {
                line_add_station(l, STATION, s("again"), s("again/x"), std::ptr::null(), 0, e)
            },
            MQL_ERR_DUPLICATE_ID,
            "station id 1 is already used",
        ),
        (
            "tag id used twice",
            |l, e| unsafe {
                line_add_tag(
                    l,
                    STATION,
                    DATA,
                    s("t"),
                    s("IN_DATA"),
                    MQL_TYPE_TXTI,
                    std::ptr::null(),
                    e,
                )
            },
            MQL_ERR_DUPLICATE_ID,
            "tag id 14 is already used",
        ),
        (
            "command to an unknown station",
            |l, e| unsafe { line_station_command(l, 77, MQL_STATION_CMD_OFF, e) },
            MQL_ERR_UNKNOWN_ID,
            "no station with id 77",
        ),
        (
            "unknown station command",
            |l, e| unsafe { line_station_command(l, STATION, 9, e) },
            MQL_ERR_INVALID_ARGUMENT,
            "unknown station command 9",
        ),
        ("station command before start", cmd_on, MQL_OK, ""),
    ];
    let after_start: [(&str, Call, MqlStatus, &str); 8] = [
        (
            "station after start",
            |l, e| unsafe {
                line_add_station(l, 2, s("late"), s("late/x"), std::ptr::null(), 0, e)
            },
            MQL_ERR_STATE,
            "line 'L1' is started: stations can only be added before line_start",
        ),
        (
            "tag after start",
            |l, e| unsafe {
                line_add_tag(
                    l,
                    STATION,
                    60,
                    s("late"),
                    s("IN_DATA"),
                    MQL_TYPE_TXTI,
                    std::ptr::null(),
                    e,
                )
            },
            MQL_ERR_STATE,
            "line 'L1' is started: tags can only be added before line_start",
        ),
        (
            "second start",
            |l, e| unsafe { line_start(l, e) },
            MQL_ERR_STATE,
            "line 'L1' is already started",
        ),
        (
            "write to an unknown tag",
            |l, e| unsafe { line_write(l, 999, 1, &MqlValue::text("1"), e) },
            MQL_ERR_UNKNOWN_ID,
            "line 'L1': no tag with id 999",
        ),
        (
            "write without a value",
            |l, e| unsafe { line_write(l, SETPOINT, 1, &MqlValue::none(), e) },
            MQL_ERR_INVALID_ARGUMENT,
            "MQL_VALUE_NONE",
        ),
        (
            "refused parameter",
            |l, e| unsafe {
                let p = [MqlParam {
                    key: s("subscribe_qos"),
                    value: s("QoS_7"),
                }];
                line_set_parameters(l, p.as_ptr(), 1, e)
            },
            MQL_ERR_CONFIG,
            "'QoS_7'",
        ),
        ("station command after start", cmd_on, MQL_OK, ""),
        (
            "NULL line",
            |_, e| unsafe { line_start(std::ptr::null_mut(), e) },
            MQL_ERR_INVALID_ARGUMENT,
            "line is NULL",
        ),
    ];
    let line = configured(&refused_port(), MQL_LOG_INFO);
    let check = |table: &[(&str, Call, MqlStatus, &str)]| {
        for (situation, f, want, fragment) in table {
            let (status, msg) = call(|e| f(line, e));
            assert_eq!(status, *want, "{situation}: {msg}");
            assert!(
                msg.contains(fragment),
                "{situation}: {msg:?} lacks {fragment:?}"
            );
        }
    };
    check(&before_start);
    ok("start", call(|e| unsafe { line_start(line, e) }));
    check(&after_start);
    unsafe { line_destroy(line) };
}

// ---------------------------------------------------------------------------------------------
// Destroying a connected line
// ---------------------------------------------------------------------------------------------

/// One MQTT packet: the first byte and the bytes after the remaining length.
fn read_packet(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).ok()?;
    let first = b[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        s.read_exact(&mut b).ok()?;
        len |= usize::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some((first, body))
}

/// A broker for one connection: CONNACK, SUBACK, then the packet types it receives until the
/// client closes.
fn one_connection_broker() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut seen = Vec::new();
        while let Some((first, body)) = read_packet(&mut s) {
            seen.push(first >> 4);
            let answer: Vec<u8> = match first >> 4 {
                1 => vec![0x20, 0x02, 0x00, 0x00],
                8 => vec![0x90, 0x03, body[0], body[1], 0x01],
                12 => vec![0xd0, 0x00],
                _ => continue,
            };
            s.write_all(&answer).expect("answer");
        }
        seen
    });
    (port, thread)
}

#[test]
fn destroying_a_connected_line_sends_disconnect_and_never_backs_off() {
    let (port, broker) = one_connection_broker();
    let line = started(&port, MQL_LOG_DEBUG);
    wait_for(line, "connection", |e| {
        e.kind == MQL_EVENT_LINE_STATE && e.code == MQL_LINE_CONNECTED
    });
    // What line_destroy does before it frees the line, so that the last events can be read.
    unsafe { (*(line as *const LineHandle)).stop() };
    let events = poll(line);
    unsafe { line_destroy(line) };
    let logs: Vec<&Ev> = events.iter().filter(|e| e.kind == MQL_EVENT_LOG).collect();
    assert!(
        !logs
            .iter()
            .any(|e| e.text.contains("before the next connection attempt")),
        "a stopped line waits for nothing: {logs:#?}"
    );
    let ended = logs
        .iter()
        .find(|e| e.text.contains("ended: the line was stopped"))
        .unwrap_or_else(|| panic!("the end of the connection is logged: {logs:#?}"));
    assert_eq!(
        ended.code, MQL_LOG_INFO,
        "a deliberate disconnect: {ended:?}"
    );
    let seen = broker.join().expect("broker thread");
    assert_eq!(
        seen.last(),
        Some(&14),
        "the last packet is DISCONNECT: {seen:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Counters (ABI 1.2)
// ---------------------------------------------------------------------------------------------

fn line_stats_of(line: *mut MqlLine, out: *mut MqlLineStats) -> (MqlStatus, String) {
    call(|e| unsafe { line_stats(line, out, e) })
}

fn station_stats_of(
    line: *mut MqlLine,
    station: u64,
    out: *mut MqlStationStats,
) -> (MqlStatus, String) {
    call(|e| unsafe { line_station_stats(line, station, out, e) })
}

fn sized<T: Default>(size: usize) -> T {
    let mut v = T::default();
    // Both stats structs start with their `size`.
    unsafe { (&mut v as *mut T as *mut usize).write(size) };
    v
}

#[test]
fn stats_calls_refuse_bad_arguments_with_clear_errors() {
    let line = configured(&refused_port(), MQL_LOG_INFO);
    let mut ls: MqlLineStats = sized(size_of::<MqlLineStats>());
    let mut ss: MqlStationStats = sized(size_of::<MqlStationStats>());
    let mut short_line: MqlLineStats = sized(LINE_STATS_1_2 - 1);
    let mut short_station: MqlStationStats = sized(size_of::<usize>());
    let null = std::ptr::null_mut();
    type Call<'a> = Box<dyn FnOnce() -> (MqlStatus, String) + 'a>;
    let cases: Vec<(&str, Call, MqlStatus, &str)> = vec![
        (
            "line NULL",
            Box::new(|| line_stats_of(null, &mut ls)),
            MQL_ERR_INVALID_ARGUMENT,
            "line is NULL",
        ),
        (
            "out NULL",
            Box::new(|| line_stats_of(line, std::ptr::null_mut())),
            MQL_ERR_INVALID_ARGUMENT,
            "out is NULL",
        ),
        (
            "line struct too small",
            Box::new(|| line_stats_of(line, &mut short_line)),
            MQL_ERR_VERSION,
            "MqlLineStats.size 119 is smaller than 120",
        ),
        (
            "station line NULL",
            Box::new(|| station_stats_of(null, STATION, &mut ss)),
            MQL_ERR_INVALID_ARGUMENT,
            "line is NULL",
        ),
        (
            "station out NULL",
            Box::new(|| station_stats_of(line, STATION, std::ptr::null_mut())),
            MQL_ERR_INVALID_ARGUMENT,
            "out is NULL",
        ),
        (
            "station struct too small",
            Box::new(|| station_stats_of(line, STATION, &mut short_station)),
            MQL_ERR_VERSION,
            "MqlStationStats.size 8 is smaller than 48",
        ),
        (
            "unknown station",
            Box::new(|| {
                let mut ss: MqlStationStats = sized(size_of::<MqlStationStats>());
                station_stats_of(line, 77, &mut ss)
            }),
            MQL_ERR_UNKNOWN_ID,
            "no station with id 77",
        ),
    ];
    for (what, f, status, needle) in cases {
        let (got, msg) = f();
        assert_eq!(got, status, "{what}: {msg}");
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    unsafe { line_destroy(line) };
}

#[test]
fn stats_before_start_are_zero_and_keep_the_host_size() {
    let line = configured(&refused_port(), MQL_LOG_INFO);
    let mut ls = MqlLineStats {
        received: 99,
        last_message_ns: 5,
        ..sized(size_of::<MqlLineStats>())
    };
    ok("line_stats", line_stats_of(line, &mut ls));
    assert_eq!(ls.size, size_of::<MqlLineStats>());
    assert_eq!(
        (
            ls.state,
            ls.received,
            ls.connection_attempts,
            ls.last_message_ns
        ),
        (0, 0, 0, 0)
    );
    let mut ss = MqlStationStats {
        received: 99,
        ..sized(size_of::<MqlStationStats>())
    };
    ok(
        "line_station_stats",
        station_stats_of(line, STATION, &mut ss),
    );
    assert_eq!((ss.state, ss.received, ss.last_message_ns), (0, 0, 0));
    unsafe { line_destroy(line) };
}

#[test]
fn stats_write_no_byte_past_the_host_size() {
    let line = configured(&refused_port(), MQL_LOG_INFO);
    // A struct that ends exactly at an unwritable page: a byte written past it faults.
    let guarded = GuardedPage::new();
    let exact: MqlLineStats = sized(LINE_STATS_1_2);
    let at = guarded.place_at_end(&exact, LINE_STATS_1_2) as *mut MqlLineStats;
    ok("line_stats", line_stats_of(line, at));
    let exact: MqlStationStats = sized(STATION_STATS_1_2);
    let at = guarded.place_at_end(&exact, STATION_STATS_1_2) as *mut MqlStationStats;
    ok("station_stats", station_stats_of(line, STATION, at));
    // A newer host's larger struct: its tail is not touched.
    #[repr(C)]
    struct Newer {
        stats: MqlLineStats,
        tail: [u8; 16],
    }
    let mut newer = Newer {
        stats: sized(size_of::<Newer>()),
        tail: [0xab; 16],
    };
    ok(
        "line_stats",
        line_stats_of(line, &mut newer.stats as *mut MqlLineStats),
    );
    assert_eq!(newer.tail, [0xab; 16]);
    assert_eq!(newer.stats.size, size_of::<Newer>());
    unsafe { line_destroy(line) };
}

#[test]
fn connection_attempts_are_counted_and_the_line_state_shows() {
    let line = started(&refused_port(), MQL_LOG_INFO);
    wait_for(line, "a failed attempt", |e| {
        e.kind == MQL_EVENT_LINE_STATE && e.code == MQL_LINE_DISCONNECTED
    });
    let mut ls: MqlLineStats = sized(size_of::<MqlLineStats>());
    ok("line_stats", line_stats_of(line, &mut ls));
    assert_eq!(ls.state, MQL_LINE_DISCONNECTED);
    assert!(ls.connection_attempts >= 1, "{ls:?}");
    assert_eq!((ls.received, ls.reconnects), (0, 0));
    let mut ss: MqlStationStats = sized(size_of::<MqlStationStats>());
    ok("station_stats", station_stats_of(line, STATION, &mut ss));
    assert_eq!(ss.state, MQL_STATION_COMM_ERROR);
    unsafe { line_destroy(line) };
}

// ---------------------------------------------------------------------------------------------
// Log lines
// ---------------------------------------------------------------------------------------------

/// Every configuration warning (line_create, line_check, line_set_parameters) names its line
/// once: the dispatcher's `line 'V5': ` prefix is never followed by the line's name again.
#[test]
fn no_warning_repeats_the_line_prefix() {
    let port = refused_port();
    let port: &'static str = Box::leak(port.into_boxed_str());
    // Each parameter below draws one configuration warning.
    let warned = [
        ("tls_ca_file", "/nonexistent/ca.pem"),
        ("client_id", ""),
        ("message_expiry_interval", "30"),
        ("sparkplug_host_id", "scada"),
    ];
    let mut list = vec![("host", "127.0.0.1"), ("port", port)];
    list.extend_from_slice(&warned);
    let list = params(&list);
    let cfg = config("V5", &list, MQL_LOG_DEBUG);
    let mut line = std::ptr::null_mut();
    ok(
        "line_create",
        call(|e| unsafe { line_create(&cfg, &mut line, e) }),
    );
    ok("line_check", call(|e| unsafe { line_check(line, e) }));
    let again = params(&[("tls_ca_file", "/nonexistent/other.pem")]);
    ok(
        "line_set_parameters",
        call(|e| unsafe { line_set_parameters(line, again.as_ptr(), again.len(), e) }),
    );
    let events = poll(line);
    unsafe { line_destroy(line) };
    let logs: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == MQL_EVENT_LOG)
        .map(|e| e.text.as_str())
        .collect();
    for warning in [
        "tls is NO",
        "forced to YES",
        "protocol_version is 3.1.1",
        "no STATE message",
    ] {
        assert!(
            logs.iter().any(|t| t.contains(warning)),
            "a warning with '{warning}': {logs:#?}"
        );
    }
    for text in &logs {
        let rest = text
            .strip_prefix("line 'V5': ")
            .unwrap_or_else(|| panic!("a log line names its line: {text}"));
        assert!(
            !rest.starts_with("line 'V5'"),
            "the line is named twice: {text}"
        );
    }
}
