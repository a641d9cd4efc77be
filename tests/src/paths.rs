//! Where the binaries under test are.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The directory holding `sim-host` and `libmqtt_line.so`: `$MQTT_LINE_BIN_DIR` when set, else
/// `$CARGO_TARGET_DIR/release` when set, else `<workspace>/target/release`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MQTT_LINE_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let dir = if dir.is_relative() {
            workspace_dir().join(dir)
        } else {
            dir
        };
        return dir.join("release");
    }
    workspace_dir().join("target").join("release")
}

fn required(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} not found: run `cargo build --release --workspace` first \
             (or point MQTT_LINE_BIN_DIR at the directory holding sim-host and libmqtt_line.so)",
            path.display()
        );
    }
    path
}

/// `sim-host`; panics with a hint when it was not built.
pub fn sim_host_path() -> PathBuf {
    required("sim-host")
}

/// `libmqtt_line.so`; panics with a hint when it was not built.
pub fn plugin_path() -> PathBuf {
    required("libmqtt_line.so")
}
