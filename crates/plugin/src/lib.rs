//! mqtt-line: the plugin a SCADA host loads. It exports one function, `mql_plugin_entry`, that
//! hands out the function table of the C ABI (see the `mqtt-line-abi` crate and docs/abi.md).
//!
//! This crate is only the shell: the FFI in `ffi.rs` and the tokio IO thread in `driver.rs`
//! around the IO-free core of `mqtt-line-core`.

mod convert;
mod deadline;
mod driver;
mod edge_files;
mod ffi;
mod logging;
mod proxy;
mod psk;
mod queue;
mod stream;
mod transport;

use mqtt_line_abi::{MqlPluginApi, MqlStr, MQL_ABI_MAJOR, MQL_ABI_MINOR};

const VERSION: &str = concat!("mqtt-line ", env!("CARGO_PKG_VERSION"));

static API: SyncApi = SyncApi(MqlPluginApi {
    size: std::mem::size_of::<MqlPluginApi>(),
    abi_major: MQL_ABI_MAJOR,
    abi_minor: MQL_ABI_MINOR,
    plugin_version: MqlStr {
        ptr: VERSION.as_ptr(),
        len: VERSION.len(),
    },
    line_create: ffi::line_create,
    line_add_station: ffi::line_add_station,
    line_add_tag: ffi::line_add_tag,
    line_start: ffi::line_start,
    line_station_command: ffi::line_station_command,
    line_write: ffi::line_write,
    line_set_parameters: ffi::line_set_parameters,
    line_poll_events: ffi::line_poll_events,
    line_destroy: ffi::line_destroy,
    line_check: ffi::line_check,
    line_stats: ffi::line_stats,
    line_station_stats: ffi::line_station_stats,
});

struct SyncApi(MqlPluginApi);
// SAFETY: the table is immutable; its string points to static text.
unsafe impl Sync for SyncApi {}

/// The plugin's only export. Returns NULL for a host built against another major version.
#[no_mangle]
pub extern "C" fn mql_plugin_entry(
    host_abi_major: u32,
    _host_abi_minor: u32,
) -> *const MqlPluginApi {
    if host_abi_major != MQL_ABI_MAJOR {
        return std::ptr::null();
    }
    &API.0
}

/// Wall-clock time in nanoseconds since the Unix epoch: the shell reads the clock once per call
/// into the core and passes it in (the core has no clock).
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
