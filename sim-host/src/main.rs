//! sim-host: loads the mqtt-line plugin through its C ABI, as a SCADA kernel would, runs one line
//! configured from a TOML file and prints what the plugin reports.

mod answers;
mod commands;
mod config;
mod counters;
mod demo;
mod http;
mod live;
mod metrics;
mod output;
mod record;
mod record_transport;
mod recording;
mod replay;
mod runner;
mod slow_client;
mod spb_birth;
mod suggest;
mod summary;
mod view;

use mqtt_line_host::{event, plugin, wake};

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mqtt_line_abi::{MQL_LOG_DEBUG, MQL_LOG_ERROR, MQL_LOG_INFO, MQL_LOG_TRACE, MQL_LOG_WARN};
use signal_hook::consts::{SIGINT, SIGTERM};

use config::LineSpec;
use output::stderr_line;
use plugin::Plugin;
use runner::{AppError, RunOptions};

#[derive(Parser)]
#[command(
    name = "sim-host",
    version,
    about = "Runs the mqtt-line plugin as a SCADA host would"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the line of CONFIG and prints its events until quit, --duration or a signal.
    Run {
        /// The line's TOML configuration.
        config: PathBuf,
        #[command(flatten)]
        plugin: PluginArg,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Configures the line of CONFIG without connecting and reports problems.
    Check {
        /// The line's TOML configuration.
        config: PathBuf,
        #[command(flatten)]
        plugin: PluginArg,
    },
    /// Runs mqtt-line-bench (next to sim-host) with ARGS: throughput, latency, CPU and memory
    /// against a private mosquitto (see docs/benchmarks.md).
    #[command(disable_help_flag = true)]
    Bench {
        /// The options of mqtt-line-bench (`--help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Runs an embedded broker, simulated devices and a line listening to them.
    Demo {
        #[command(flatten)]
        plugin: PluginArg,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Subscribes to a broker as a line would and writes every message into a recording
    /// (docs/commissioning.md).
    Record(RecordArgs),
    /// Runs the line of CONFIG against a recording on an embedded broker, then prints a summary.
    Replay {
        /// The line's TOML configuration.
        config: PathBuf,
        /// The recording (`record -o FILE`; `.gz` accepted).
        file: PathBuf,
        /// Replay at X times the recorded pace [default: 1].
        #[arg(long, value_name = "X", conflicts_with = "as_fast_as_possible")]
        speed: Option<f64>,
        /// Replay without pauses between messages.
        #[arg(long)]
        as_fast_as_possible: bool,
        /// Also replay with OTHER.toml and print which messages and tag values change.
        #[arg(long, value_name = "OTHER.toml")]
        diff: Option<PathBuf>,
        #[command(flatten)]
        plugin: PluginArg,
        #[command(flatten)]
        live: LiveArgs,
    },
    /// Proposes a line configuration (TOML) for a recording, on stdout.
    Suggest {
        /// The recording.
        file: PathBuf,
        /// The output format (only toml so far).
        #[arg(long, value_enum, default_value_t = SuggestFormat::Toml)]
        format: SuggestFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum SuggestFormat {
    Toml,
}

#[derive(Args)]
struct RecordArgs {
    /// Take the broker settings (host, port, topic_filter, protocol_version, subscribe_qos,
    /// user_name, password) from this line configuration; options given override them.
    config: Option<PathBuf>,
    /// The broker's host name or address.
    #[arg(long, required_unless_present = "config")]
    host: Option<String>,
    /// The broker's port [default: 1883].
    #[arg(long)]
    port: Option<u16>,
    /// The topic filter to subscribe to [default: #].
    #[arg(long, value_name = "F")]
    topic_filter: Option<String>,
    /// 4 (MQTT 3.1.1, the default) or 5 (records MQTT 5 properties).
    #[arg(long, value_name = "4|5", value_parser = clap::value_parser!(u8).range(4..=5))]
    protocol_version: Option<u8>,
    /// The user name in CONNECT.
    #[arg(long)]
    user_name: Option<String>,
    /// The password in CONNECT (prefer --password-env: command lines are visible to others).
    #[arg(long)]
    password: Option<String>,
    /// Take the password from this environment variable.
    #[arg(long, value_name = "NAME")]
    password_env: Option<String>,
    /// Connect with TLS (the port then defaults to 8883), as the line's `tls` = YES.
    #[arg(long)]
    tls: bool,
    /// The CA certificates (PEM) the broker's certificate must chain up to [default: the
    /// system's roots]; implies --tls.
    #[arg(long, value_name = "PEM")]
    tls_ca_file: Option<PathBuf>,
    /// The recorder's own certificate (PEM), for brokers that ask for one; implies --tls.
    #[arg(long, value_name = "PEM", requires = "tls_client_key_file")]
    tls_client_cert_file: Option<PathBuf>,
    /// The unencrypted private key of that certificate (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_client_cert_file")]
    tls_client_key_file: Option<PathBuf>,
    /// tcp or websocket (ws); websocket over TLS with --tls.
    #[arg(long, value_name = "tcp|websocket")]
    transport: Option<String>,
    /// The HTTP path of the WebSocket upgrade [default: /mqtt].
    #[arg(long, value_name = "PATH")]
    ws_path: Option<String>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S", value_parser = parse_seconds, conflicts_with = "count")]
    duration: Option<Duration>,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// The recording to write (`.gz`: gzip-compressed).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
struct PluginArg {
    /// The plugin library [default: libmqtt_line.so next to sim-host]
    #[arg(long, value_name = "PATH")]
    plugin: Option<PathBuf>,
}

#[derive(Args)]
struct LiveArgs {
    /// Print one JSON object per line instead of readable lines.
    #[arg(long)]
    json: bool,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    duration: Option<Duration>,
    /// The most detailed plugin log level printed on stderr.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    log_level: LogLevel,
    /// Print, for every received message, which station took it or why none did.
    #[arg(long)]
    trace_routing: bool,
    /// Plugin log messages and command errors as JSON `log` events on stdout (needs --json).
    #[arg(long, requires = "json")]
    json_logs: bool,
    /// Serve the live page, /metrics and /api/* at ADDRESS:PORT (port 0: a free one)
    /// [demo default: a free port on 127.0.0.1].
    #[arg(long, value_name = "ADDRESS:PORT")]
    http: Option<SocketAddr>,
    /// Allow --http on an address that is not loopback: the page, /metrics and /api/* have no
    /// authentication, so everyone who reaches the address sees every value.
    #[arg(long)]
    http_public: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn abi(self) -> u32 {
        match self {
            LogLevel::Error => MQL_LOG_ERROR,
            LogLevel::Warn => MQL_LOG_WARN,
            LogLevel::Info => MQL_LOG_INFO,
            LogLevel::Debug => MQL_LOG_DEBUG,
            LogLevel::Trace => MQL_LOG_TRACE,
        }
    }

    fn filter(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{s}' is not a usable duration"))
}

/// sim-host's own diagnostics go to stderr; RUST_LOG overrides the filter. The embedded demo
/// broker is silenced: it logs ordinary disconnections as errors, and a broker that does not
/// start is reported by the demo itself.
fn init_tracing(level: LogLevel) {
    let default = format!("warn,rumqttd=off,sim_host={}", level.filter());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}

/// SIGINT and SIGTERM set one flag the main loop polls; a second one exits at once in case the
/// clean shutdown hangs.
fn register_signals() -> Result<Arc<AtomicBool>, AppError> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, flag.clone())
            .and_then(|_| signal_hook::flag::register(sig, flag.clone()))
            .map_err(|e| AppError::Fatal(format!("cannot handle signal {sig}: {e}")))?;
    }
    Ok(flag)
}

fn load_plugin(arg: &PluginArg) -> Result<Plugin, AppError> {
    let path = match &arg.plugin {
        Some(p) => p.clone(),
        None => Plugin::default_path().map_err(|e| AppError::Fatal(e.0))?,
    };
    let plugin = Plugin::load(&path).map_err(|e| AppError::Fatal(e.0))?;
    tracing::info!(
        "loaded {} (ABI {}.{}) from {}",
        plugin.version,
        mqtt_line_abi::MQL_ABI_MAJOR,
        plugin.abi_minor,
        plugin.path.display()
    );
    Ok(plugin)
}

/// `sim-host bench` predates the benchmark's own program; it stays as a shortcut that replaces
/// this process with mqtt-line-bench, so options, output and exit code are the benchmark's.
/// Returns only when the program cannot be started.
fn exec_bench(args: &[OsString]) -> AppError {
    use std::os::unix::process::CommandExt;
    let program = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("mqtt-line-bench"),
        Err(e) => return AppError::Fatal(format!("cannot find sim-host's own executable: {e}")),
    };
    let e = std::process::Command::new(&program).args(args).exec();
    AppError::Fatal(format!(
        "cannot run {}: {e}; build it with `cargo build --release -p mqtt-line-bench`",
        program.display()
    ))
}

fn load_config(path: &Path) -> Result<LineSpec, AppError> {
    LineSpec::load(path).map_err(AppError::Config)
}

/// The live page and `/api/*` have no authentication: serving them beyond this host must be
/// asked for (`--http-public`). Checked before anything is bound or loaded.
fn check_http_address(live: &LiveArgs) -> Result<(), AppError> {
    match live.http {
        Some(address) if !address.ip().is_loopback() && !live.http_public => {
            Err(AppError::Config(format!(
                "--http {address}: {} is not a loopback address, and the live page, /metrics \
                 and /api/* serve every value without authentication; add --http-public to \
                 serve them on the network, or use 127.0.0.1 (behind a reverse proxy that \
                 authenticates)",
                address.ip()
            )))
        }
        _ => Ok(()),
    }
}

fn live_options(live: &LiveArgs) -> RunOptions {
    RunOptions {
        json: live.json,
        duration: live.duration,
        log_level: live.log_level.abi(),
        trace_routing: live.trace_routing,
        json_logs: live.json_logs,
        http: live.http,
        http_public: live.http_public,
    }
}

fn execute(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Cmd::Run {
            config,
            plugin,
            live,
        } => {
            check_http_address(&live)?;
            init_tracing(live.log_level);
            let stop = register_signals()?;
            // The configuration is checked first: its errors do not depend on the plugin.
            let spec = load_config(&config)?;
            let plugin = load_plugin(&plugin)?;
            runner::run(&plugin, &spec, &live_options(&live), &stop)
        }
        Cmd::Check { config, plugin } => {
            init_tracing(LogLevel::Warn);
            let spec = load_config(&config)?;
            let plugin = load_plugin(&plugin)?;
            let summary = runner::check(&plugin, &spec)?;
            let mut out = std::io::stdout().lock();
            // A reader that went away misses only the summary; the exit code still tells.
            let _ = writeln!(out, "{summary}").and_then(|_| out.flush());
            Ok(())
        }
        Cmd::Bench { args } => Err(exec_bench(&args)),
        Cmd::Demo { plugin, live } => {
            check_http_address(&live)?;
            init_tracing(live.log_level);
            let stop = register_signals()?;
            let plugin = load_plugin(&plugin)?;
            let port = demo::start_broker().map_err(AppError::Fatal)?;
            stderr_line(&format!(
                "INFO demo: embedded MQTT broker on 127.0.0.1:{port}; simulated devices publish \
                 every second; type 'quit' or press Ctrl-C to stop"
            ));
            let spec = demo::demo_spec(port).map_err(AppError::Config)?;
            demo::start_devices(port).map_err(AppError::Fatal)?;
            // The demo always serves its page; --http only chooses where.
            let mut options = live_options(&live);
            options.http = Some(
                live.http
                    .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            );
            runner::run(&plugin, &spec, &options, &stop)
        }
        Cmd::Record(args) => {
            init_tracing(LogLevel::Info);
            let stop = register_signals()?;
            let options = record_options(args)?;
            record::record(&options, &stop)
        }
        Cmd::Replay {
            config,
            file,
            speed,
            as_fast_as_possible,
            diff,
            plugin,
            live,
        } => {
            check_http_address(&live)?;
            init_tracing(live.log_level);
            let stop = register_signals()?;
            let spec = load_config(&config)?;
            let other = diff.as_deref().map(load_config).transpose()?;
            let plugin = load_plugin(&plugin)?;
            let pace = match (as_fast_as_possible, speed) {
                (true, _) => replay::Pace::AsFastAsPossible,
                (false, Some(x)) if x.is_finite() && x > 0.0 => replay::Pace::Speed(x),
                (false, Some(x)) => {
                    return Err(AppError::Config(format!(
                        "--speed {x}: must be a positive number"
                    )))
                }
                (false, None) => replay::Pace::Speed(1.0),
            };
            let replay_options = replay::ReplayOptions {
                file,
                pace,
                run: live_options(&live),
            };
            replay::replay(&plugin, &spec, other.as_ref(), &replay_options, &stop)
        }
        Cmd::Suggest { file, format } => {
            init_tracing(LogLevel::Warn);
            let SuggestFormat::Toml = format;
            let text = suggest::suggest_file(&file)?;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
            Ok(())
        }
    }
}

/// The recorder's settings: the configuration's, then the options given.
fn record_options(a: RecordArgs) -> Result<record::RecordOptions, AppError> {
    let mut o = match &a.config {
        Some(path) => record::options_from_line(&load_config(path)?, a.output.clone())?,
        None => record::RecordOptions::defaults(a.output.clone()),
    };
    let tls_before = o.security.tls;
    if a.tls || a.tls_ca_file.is_some() || a.tls_client_cert_file.is_some() {
        o.security.tls = true;
    }
    if let Some(f) = a.tls_ca_file {
        o.security.ca_file = Some(f);
    }
    if let Some(f) = a.tls_client_cert_file {
        o.security.client_cert_file = Some(f);
    }
    if let Some(f) = a.tls_client_key_file {
        o.security.client_key_file = Some(f);
    }
    if let Some(t) = a.transport {
        o.security.websocket = record_transport::parse_transport(&t).ok_or_else(|| {
            AppError::Config(format!(
                "--transport '{}': tcp or websocket",
                t.escape_debug()
            ))
        })?;
    }
    if let Some(p) = a.ws_path {
        o.security.ws_path = p;
    }
    if let Some(h) = a.host {
        o.host = h;
    }
    match a.port {
        Some(p) => o.port = p,
        // TLS asked for on the command line: the TLS port, as a line's default.
        None if o.security.tls && !tls_before && a.config.is_none() => o.port = 8883,
        None => {}
    }
    if let Some(f) = a.topic_filter {
        o.topic_filter = f;
    }
    if let Some(v) = a.protocol_version {
        o.protocol_version = v;
    }
    if let Some(u) = a.user_name {
        o.user_name = Some(u);
    }
    if let Some(p) = a.password {
        o.password = Some(p);
    }
    if let Some(name) = a.password_env {
        let p = std::env::var(&name).map_err(|_| {
            AppError::Config(format!("--password-env: the variable '{name}' is not set"))
        })?;
        o.password = Some(p);
    }
    o.duration = a.duration;
    o.count = a.count;
    Ok(o)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            stderr_line(&format!("error: {e}"));
            ExitCode::from(e.exit_code())
        }
    }
}
