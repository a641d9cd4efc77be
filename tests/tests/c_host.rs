//! The plugin through its C ABI from a C program, and the header in C and C++ compilers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use mqtt_line_abi as abi;
use mqtt_line_e2e::{plugin_path, publish, workspace_dir, Mosquitto, Spawned, TIMEOUT};

/// Runs a compiler in the workspace directory; panics with its diagnostics when it fails.
fn compile(compiler: &str, args: &[&str]) {
    let out = Command::new(compiler)
        .args(args)
        .current_dir(workspace_dir())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {compiler}: {e} (install `build-essential`; .ci/run does)")
        });
    assert!(
        out.status.success(),
        "`{compiler} {}` failed ({})\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// Compiles tests/c-host/host.c into `dir` exactly as documented.
fn build_c_host(dir: &Path) -> PathBuf {
    build_c_program(dir, "host")
}

/// Compiles tests/c-host/`name`.c into `dir` as C99 without warnings; the executable's path.
fn build_c_program(dir: &Path, name: &str) -> PathBuf {
    let exe = dir.join(name);
    let source = format!("tests/c-host/{name}.c");
    compile(
        "gcc",
        &[
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            "plugin-abi/include",
            &source,
            "-o",
            path_str(&exe),
            "-ldl",
        ],
    );
    exe
}

#[test]
fn c_host_receives_a_published_value() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c_host(dir.path());
    let plugin = plugin_path();
    let broker = Mosquitto::start();
    let topic = "c-host/data";

    let mut cmd = Command::new(&exe);
    cmd.arg(&plugin)
        .arg(broker.port().to_string())
        .arg(topic)
        .stdin(std::process::Stdio::null());
    let mut host = Spawned::start("c-host", cmd);
    host.expect_line("`connected`", TIMEOUT, |l| l == "connected");

    publish(
        broker.port(),
        topic,
        "hello from C, ünïcödé".as_bytes(),
        1,
        false,
    );
    let line = host.expect_line("a `value` line", TIMEOUT, |l| l.starts_with("value "));
    assert_eq!(
        line,
        "value hello from C, ünïcödé",
        "{}\n-- mosquitto log --\n{}",
        host.report(),
        broker.log_tail()
    );
    host.expect_line("the counters", TIMEOUT, |l| l.starts_with("stats "));
    let status = host.wait_exit(TIMEOUT);
    assert!(
        status.success(),
        "c-host exited with {status}\n{}",
        host.report()
    );
}

/// The C host reads the counters (ABI 1.2) after the values it waited for: they match what was
/// published.
#[test]
fn c_host_reads_counters_that_match_what_was_published() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c_host(dir.path());
    let broker = Mosquitto::start();
    let topic = "c-host/counted";
    let payloads = ["1", "22", "333", "4444", "five5"];

    let mut cmd = Command::new(&exe);
    cmd.arg(plugin_path())
        .arg(broker.port().to_string())
        .arg(topic)
        .arg(payloads.len().to_string())
        .stdin(std::process::Stdio::null());
    let mut host = Spawned::start("c-host", cmd);
    host.expect_line("`connected`", TIMEOUT, |l| l == "connected");
    for p in payloads {
        publish(broker.port(), topic, p.as_bytes(), 1, false);
    }
    let stats = host.expect_line("the counters", TIMEOUT, |l| l.starts_with("stats "));
    let bytes: usize = payloads.iter().map(|p| p.len()).sum();
    let n = payloads.len();
    assert_eq!(
        stats,
        format!(
            "stats state={} received={n} bytes={bytes} unrouted=0 last_message=yes \
             station_state={} station_received={n} station_dropped=0 station_last_message=yes",
            abi::MQL_LINE_CONNECTED,
            abi::MQL_STATION_OK
        ),
        "{}",
        host.report()
    );
    let status = host.wait_exit(TIMEOUT);
    assert!(
        status.success(),
        "c-host exited with {status}\n{}",
        host.report()
    );
}

/// How many connected lines `destroy_lines.c` stops: a kernel's worth.
const LINES_TO_DESTROY: usize = 40;

/// A kernel that stops destroys its lines one after another: each one says goodbye with a
/// DISCONNECT. The time it takes is printed (`--nocapture`), not asserted: the decisions behind
/// it (no back-off after a stop) are tested in the plugin's own unit tests.
#[test]
fn c_host_destroys_connected_lines_with_a_disconnect_each() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_c_program(dir.path(), "destroy_lines");
    let broker = Mosquitto::start();
    let mut cmd = Command::new(&exe);
    cmd.arg(plugin_path())
        .arg(broker.port().to_string())
        .arg(LINES_TO_DESTROY.to_string())
        .stdin(std::process::Stdio::null());
    let mut host = Spawned::start("destroy_lines", cmd);
    let mut clients = Vec::new();
    for _ in 0..LINES_TO_DESTROY {
        let line = host.expect_line("a client id", TIMEOUT, |l| l.starts_with("client "));
        clients.push(line["client ".len()..].to_string());
    }
    let took = host.expect_line("the time", TIMEOUT, |l| l.starts_with("destroyed "));
    println!("{took}");
    let status = host.wait_exit(TIMEOUT);
    assert!(status.success(), "{status}\n{}", host.report());
    let log = broker.wait_log("a DISCONNECT from every line", |log| {
        clients
            .iter()
            .all(|c| log.contains(&format!("Received DISCONNECT from {c}\n")))
    });
    for c in &clients {
        assert!(
            log.contains(&format!("Client {c} disconnected.")),
            "{c} left with a DISCONNECT, not a dropped connection\n{log}"
        );
    }
}

/// A translation unit that includes the header twice and uses its types and constants.
const HEADER_USER: &str = r#"
#include "mqtt_line.h"
#include "mqtt_line.h"

int header_user(const MqlPluginApi *api, MqlEvent *events, MqlLine *line);

int header_user(const MqlPluginApi *api, MqlEvent *events, MqlLine *line)
{
    size_t count = 0;
    MqlError err = {0, 0, 0};
    MqlEntryFn entry = mql_plugin_entry;
    (void)entry;
    if (api->abi_major != MQL_ABI_MAJOR) {
        return MQL_ERR_VERSION;
    }
    return (int)api->line_poll_events(line, events, sizeof(MqlEvent), 1, &count, &err)
        + MQL_TYPE_TXTI + MQL_EVENT_TAG_VALUE + MQL_FLAG_VALID + MQL_LINE_CONNECTED;
}
"#;

fn compile_header_user(compiler: &str, file_name: &str, std: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join(file_name);
    std::fs::write(&src, HEADER_USER).unwrap();
    let obj = dir.path().join("header_user.o");
    compile(
        compiler,
        &[
            std,
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-I",
            "plugin-abi/include",
            "-c",
            path_str(&src),
            "-o",
            path_str(&obj),
        ],
    );
}

#[test]
fn header_compiles_twice_included_as_c99() {
    compile_header_user("gcc", "header_user.c", "-std=c99");
}

#[test]
fn header_compiles_twice_included_as_cxx() {
    compile_header_user("g++", "header_user.cpp", "-std=c++11");
}

/// Sizes and offsets as a C compiler lays out the header's structs, compared with the Rust
/// definitions the plugin is built from.
#[test]
fn header_layout_matches_rust() {
    let program = r#"
#include <stddef.h>
#include <stdio.h>
#include "mqtt_line.h"
#define SIZE(T) printf("%s %zu\n", #T, sizeof(T))
#define OFFSET(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(T, f))
int main(void)
{
    SIZE(MqlStr); SIZE(MqlParam); SIZE(MqlValue); SIZE(MqlEvent); SIZE(MqlLineConfig);
    SIZE(MqlError); SIZE(MqlPluginApi);
    OFFSET(MqlValue, int_value); OFFSET(MqlValue, float_value); OFFSET(MqlValue, text);
    OFFSET(MqlEvent, code); OFFSET(MqlEvent, flags); OFFSET(MqlEvent, station_id);
    OFFSET(MqlEvent, tag_id); OFFSET(MqlEvent, request_id); OFFSET(MqlEvent, time_ns);
    OFFSET(MqlEvent, value); OFFSET(MqlEvent, text);
    OFFSET(MqlLineConfig, name); OFFSET(MqlLineConfig, params);
    OFFSET(MqlLineConfig, param_count); OFFSET(MqlLineConfig, notify);
    OFFSET(MqlLineConfig, notify_user_data); OFFSET(MqlLineConfig, event_queue_capacity);
    OFFSET(MqlLineConfig, log_level);
    OFFSET(MqlError, cap); OFFSET(MqlError, len);
    OFFSET(MqlPluginApi, abi_major); OFFSET(MqlPluginApi, abi_minor);
    OFFSET(MqlPluginApi, plugin_version); OFFSET(MqlPluginApi, line_create);
    OFFSET(MqlPluginApi, line_add_station); OFFSET(MqlPluginApi, line_add_tag);
    OFFSET(MqlPluginApi, line_start); OFFSET(MqlPluginApi, line_station_command);
    OFFSET(MqlPluginApi, line_write); OFFSET(MqlPluginApi, line_set_parameters);
    OFFSET(MqlPluginApi, line_poll_events); OFFSET(MqlPluginApi, line_destroy);
    OFFSET(MqlPluginApi, line_check); OFFSET(MqlPluginApi, line_stats);
    OFFSET(MqlPluginApi, line_station_stats); OFFSET(MqlLineConfig, trace_routing);
    SIZE(MqlLineStats); SIZE(MqlStationStats);
    OFFSET(MqlLineStats, state); OFFSET(MqlLineStats, received);
    OFFSET(MqlLineStats, held); OFFSET(MqlLineStats, last_message_ns);
    OFFSET(MqlStationStats, state); OFFSET(MqlStationStats, received);
    OFFSET(MqlStationStats, last_message_ns);
    printf("MQL_ABI_MAJOR %u\nMQL_ABI_MINOR %u\n", (unsigned)MQL_ABI_MAJOR,
           (unsigned)MQL_ABI_MINOR);
    return 0;
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("layout.c");
    std::fs::write(&src, program).unwrap();
    let exe = dir.path().join("layout");
    compile(
        "gcc",
        &[
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            "plugin-abi/include",
            path_str(&src),
            "-o",
            path_str(&exe),
        ],
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let c: BTreeMap<String, usize> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect();

    use std::mem::{offset_of, size_of};
    let rust: BTreeMap<String, usize> = [
        ("MqlStr", size_of::<abi::MqlStr>()),
        ("MqlParam", size_of::<abi::MqlParam>()),
        ("MqlValue", size_of::<abi::MqlValue>()),
        ("MqlEvent", size_of::<abi::MqlEvent>()),
        ("MqlLineConfig", size_of::<abi::MqlLineConfig>()),
        ("MqlError", size_of::<abi::MqlError>()),
        ("MqlPluginApi", size_of::<abi::MqlPluginApi>()),
        ("MqlValue.int_value", offset_of!(abi::MqlValue, int_value)),
        (
            "MqlValue.float_value",
            offset_of!(abi::MqlValue, float_value),
        ),
        ("MqlValue.text", offset_of!(abi::MqlValue, text)),
        ("MqlEvent.code", offset_of!(abi::MqlEvent, code)),
        ("MqlEvent.flags", offset_of!(abi::MqlEvent, flags)),
        ("MqlEvent.station_id", offset_of!(abi::MqlEvent, station_id)),
        ("MqlEvent.tag_id", offset_of!(abi::MqlEvent, tag_id)),
        ("MqlEvent.request_id", offset_of!(abi::MqlEvent, request_id)),
        ("MqlEvent.time_ns", offset_of!(abi::MqlEvent, time_ns)),
        ("MqlEvent.value", offset_of!(abi::MqlEvent, value)),
        ("MqlEvent.text", offset_of!(abi::MqlEvent, text)),
        ("MqlLineConfig.name", offset_of!(abi::MqlLineConfig, name)),
        (
            "MqlLineConfig.params",
            offset_of!(abi::MqlLineConfig, params),
        ),
        (
            "MqlLineConfig.param_count",
            offset_of!(abi::MqlLineConfig, param_count),
        ),
        (
            "MqlLineConfig.notify",
            offset_of!(abi::MqlLineConfig, notify),
        ),
        (
            "MqlLineConfig.notify_user_data",
            offset_of!(abi::MqlLineConfig, notify_user_data),
        ),
        (
            "MqlLineConfig.event_queue_capacity",
            offset_of!(abi::MqlLineConfig, event_queue_capacity),
        ),
        (
            "MqlLineConfig.log_level",
            offset_of!(abi::MqlLineConfig, log_level),
        ),
        ("MqlError.cap", offset_of!(abi::MqlError, cap)),
        ("MqlError.len", offset_of!(abi::MqlError, len)),
        (
            "MqlPluginApi.abi_major",
            offset_of!(abi::MqlPluginApi, abi_major),
        ),
        (
            "MqlPluginApi.abi_minor",
            offset_of!(abi::MqlPluginApi, abi_minor),
        ),
        (
            "MqlPluginApi.plugin_version",
            offset_of!(abi::MqlPluginApi, plugin_version),
        ),
        (
            "MqlPluginApi.line_create",
            offset_of!(abi::MqlPluginApi, line_create),
        ),
        (
            "MqlPluginApi.line_add_station",
            offset_of!(abi::MqlPluginApi, line_add_station),
        ),
        (
            "MqlPluginApi.line_add_tag",
            offset_of!(abi::MqlPluginApi, line_add_tag),
        ),
        (
            "MqlPluginApi.line_start",
            offset_of!(abi::MqlPluginApi, line_start),
        ),
        (
            "MqlPluginApi.line_station_command",
            offset_of!(abi::MqlPluginApi, line_station_command),
        ),
        (
            "MqlPluginApi.line_write",
            offset_of!(abi::MqlPluginApi, line_write),
        ),
        (
            "MqlPluginApi.line_set_parameters",
            offset_of!(abi::MqlPluginApi, line_set_parameters),
        ),
        (
            "MqlPluginApi.line_poll_events",
            offset_of!(abi::MqlPluginApi, line_poll_events),
        ),
        (
            "MqlPluginApi.line_destroy",
            offset_of!(abi::MqlPluginApi, line_destroy),
        ),
        (
            "MqlPluginApi.line_check",
            offset_of!(abi::MqlPluginApi, line_check),
        ),
        (
            "MqlPluginApi.line_stats",
            offset_of!(abi::MqlPluginApi, line_stats),
        ),
        (
            "MqlPluginApi.line_station_stats",
            offset_of!(abi::MqlPluginApi, line_station_stats),
        ),
        (
            "MqlLineConfig.trace_routing",
            offset_of!(abi::MqlLineConfig, trace_routing),
        ),
        ("MqlLineStats", size_of::<abi::MqlLineStats>()),
        ("MqlStationStats", size_of::<abi::MqlStationStats>()),
        ("MqlLineStats.state", offset_of!(abi::MqlLineStats, state)),
        (
            "MqlLineStats.received",
            offset_of!(abi::MqlLineStats, received),
        ),
        ("MqlLineStats.held", offset_of!(abi::MqlLineStats, held)),
        (
            "MqlLineStats.last_message_ns",
            offset_of!(abi::MqlLineStats, last_message_ns),
        ),
        (
            "MqlStationStats.state",
            offset_of!(abi::MqlStationStats, state),
        ),
        (
            "MqlStationStats.received",
            offset_of!(abi::MqlStationStats, received),
        ),
        (
            "MqlStationStats.last_message_ns",
            offset_of!(abi::MqlStationStats, last_message_ns),
        ),
        ("MQL_ABI_MAJOR", abi::MQL_ABI_MAJOR as usize),
        ("MQL_ABI_MINOR", abi::MQL_ABI_MINOR as usize),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(c, rust, "C layout (left) differs from Rust (right)");
}
