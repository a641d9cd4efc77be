//! mqtt-line-bench: throughput, latency, CPU and memory of the plugin, driven through its C ABI
//! as a host drives it, next to the subscribers users run instead, in one run on one machine.
//!
//! A private mosquitto is started on a free loopback port. Load comes from an in-process
//! publisher writing pre-encoded PUBLISH packets (so that the broker, not the publisher, is the
//! limit) or, in scenario 6, from a raw source that plays the broker itself. Every payload
//! carries its send time, as text or as a JSON time field, so the host measures publish-to-value
//! latency.

//!
//! Run as `cargo run --release -p mqtt-line-bench -- [options]`; see docs/benchmarks.md.

mod broker;
mod external;
mod host;
mod run;
mod stats;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mqtt_line_host::text::escape_readable;
use mqtt_line_host::{event, plugin, wake};

use plugin::Plugin;

#[derive(Parser)]
#[command(
    name = "mqtt-line-bench",
    version,
    about = "Measures throughput, latency, CPU and memory of the mqtt-line plugin against a private \
             mosquitto, next to mosquitto_sub, paho-mqtt and mqtt.js (see docs/benchmarks.md)"
)]
struct Cli {
    /// The plugin library [default: libmqtt_line.so next to mqtt-line-bench]
    #[arg(long, value_name = "PATH")]
    plugin: Option<PathBuf>,
    #[command(flatten)]
    bench: run::BenchArgs,
}

fn load_plugin(path: Option<PathBuf>) -> Result<Plugin, String> {
    let path = match path {
        Some(p) => p,
        None => Plugin::default_path().map_err(|e| e.0)?,
    };
    Plugin::load(&path).map_err(|e| e.0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match load_plugin(cli.plugin).and_then(|plugin| run::run(&plugin, cli.bench)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Paths and mosquitto's output come from outside: escaped before the terminal.
            eprintln!("error: {}", escape_readable(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_readable;

    #[test]
    fn control_characters_in_errors_are_escaped() {
        for (raw, shown) in [
            ("plain /tmp/x.so", "plain /tmp/x.so"),
            ("a\u{1b}[31mred", "a\\u{1b}[31mred"),
            ("two\nlines", "two\\nlines"),
            ("ünïcode", "ünïcode"),
        ] {
            assert_eq!(escape_readable(raw), shown, "{raw:?}");
        }
    }
}
