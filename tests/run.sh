#!/usr/bin/env bash
# The test command of mqtt-line (README.md), and all that CI runs (.ci/run calls it).
#
# On a machine with only Rust installed (Debian 12, as root or with sudo) it first installs what the
# tests need, then runs the whole suite: formatting, lints, the release build, every test of the
# workspace, and a short fuzz run of every fuzz target. It ends with one line
# `tests: N passed, N failed` and exits non-zero when any step failed.
#
# MQTT_LINE_FUZZ_SECONDS: seconds per fuzz target (default 6).
set -uo pipefail

cd "$(dirname "$0")/.."

say() { echo "tests/run.sh: $*"; }

# Commands that need root: as root directly, else through sudo when there is one.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        say "need root (or sudo) for: $*" >&2
        return 1
    fi
}

# Debian installs daemons in /usr/sbin, which a non-root PATH may lack.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) export PATH="$PATH:/usr/sbin" ;;
esac

# ---- What the suite needs, one line each: "package...  -- the commands that show it is there".
# chromium (headless) is for the live page's browser test (tests/tests/live_page.rs).
# valgrind (callgrind) counts the instructions of the cost tests (crates/core/tests/cost,
# crates/plugin/src/event_cost.rs).
requirements=(
    "mosquitto mosquitto-clients -- mosquitto mosquitto_pub mosquitto_sub"
    "build-essential -- gcc g++ make"
    "openssl -- openssl"
    "nats-server -- nats-server"
    "rabbitmq-server -- rabbitmq-server"
    "chromium -- chromium"
    "nodejs npm -- node npm"
    "valgrind -- valgrind"
    # TLS-PSK lines build against the system's OpenSSL; proxies for tests/tests/connectivity.rs.
    "libssl-dev pkg-config -- pkg-config"
    "tinyproxy -- tinyproxy"
    "dante-server -- danted"
    # rmqttd, the clustered broker of tests/tests/scale_out.rs, is built from crates.io with these.
    "protobuf-compiler -- protoc"
    "cmake -- cmake"
)

missing_packages=()
for line in "${requirements[@]}"; do
    packages="${line%% -- *}"
    for program in ${line##* -- }; do
        if ! command -v "$program" >/dev/null 2>&1; then
            # shellcheck disable=SC2206 # word splitting of the package list is meant
            missing_packages+=($packages)
            break
        fi
    done
done

# libssl-dev has no command of its own: pkg-config knows whether its openssl.pc is there.
if command -v pkg-config >/dev/null 2>&1 && ! pkg-config --exists openssl; then
    missing_packages+=(libssl-dev)
fi

if [ "${#missing_packages[@]}" -gt 0 ]; then
    say "installing ${missing_packages[*]} (apt-get)"
    as_root apt-get update || exit 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing_packages[@]}" || exit 1
fi

# rustfmt and clippy come with rustup's default profile; a minimal one lacks them.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy || exit 1
fi

# cargo-fuzz (libFuzzer) for the fuzz run; it builds on stable Rust with RUSTC_BOOTSTRAP=1
# (docs/fuzzing.md). Installing it takes a few minutes, once.
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (cargo install)"
    cargo install --locked cargo-fuzz || exit 1
fi

# Project-local preparations (an `npm ci` of a web part, say) go here, one line each.
# Eclipse Tahu's Sparkplug edge node for tests/tests/sparkplug.rs and the benchmark's Sparkplug row.
(cd tests/sparkplug && npm ci --no-audit --no-fund --loglevel=error) || exit 1
# pysparkplug from PyPI, an independent Sparkplug host for tests/tests/sparkplug_edge.rs, in a
# virtual environment of its own (Debian's python3-venv makes it).
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv || exit 1
fi
(cd tests/sparkplug && { [ -x .venv/bin/python ] || python3 -m venv .venv; } &&
    .venv/bin/pip install --quiet --disable-pip-version-check pysparkplug==0.6.1) || exit 1

# rmqttd (rmqtt's broker, crates.io), the raft cluster of tests/tests/scale_out.rs: one pinned
# version, built once into a tool directory outside the tree and reused by every later run. The
# first build (about 25 minutes on a quiet 2-core machine) runs in the background beside the
# lint and build steps, and `cargo test` waits for it (docs/decisions.md, issue 23).
# MQTT_LINE_RMQTTD names another rmqttd 0.24.0 binary instead.
rmqttd_version=0.24.0
rmqttd_root="${HOME:-/root}/.cache/mqtt-line-tools/rmqttd-$rmqttd_version"
rmqttd_log="$(mktemp)"
rmqttd_pid=""
if [ -z "${MQTT_LINE_RMQTTD:-}" ] && [ ! -x "$rmqttd_root/bin/rmqttd" ]; then
    say "building rmqttd $rmqttd_version once into $rmqttd_root (cargo install, in the background)"
    cargo install --locked "rmqttd@$rmqttd_version" --root "$rmqttd_root" >"$rmqttd_log" 2>&1 &
    rmqttd_pid=$!
fi
# Waits for the background build of rmqttd, if one was started; its log when it failed.
rmqttd_ready() {
    [ -z "$rmqttd_pid" ] && return 0
    say "waiting for the rmqttd build"
    local status=0
    wait "$rmqttd_pid" || status=$?
    rmqttd_pid=""
    [ "$status" -eq 0 ] || tail -n 40 "$rmqttd_log"
    return "$status"
}

say "$(mosquitto -h 2>/dev/null | head -n 1)"
say "$(gcc --version | head -n 1); $(openssl version); $(nats-server --version 2>&1 | head -n 1)"
say "$(cargo --version); $(cargo fuzz --version); $(valgrind --version)"

# ---- The suite. Every step runs even when an earlier one failed, so one run shows everything;
# the exit code says whether any failed.
failed_steps=()
step() {
    local name="$1"
    shift
    say "== $name"
    if ! "$@"; then
        failed_steps+=("$name")
        say "FAILED: $name"
    fi
}

test_log="$(mktemp)"
fuzz_scratch="$(mktemp -d)"
# A run that ends early leaves no rmqttd build behind.
trap 'rm -rf "$test_log" "$fuzz_scratch" "$rmqttd_log"; [ -z "$rmqttd_pid" ] || kill "$rmqttd_pid" 2>/dev/null' EXIT

run_tests() {
    cargo test --release --workspace --no-fail-fast 2>&1 | tee "$test_log"
}

# Every target of crates/core/fuzz over its committed corpus; new inputs go to a scratch
# directory, so the committed corpus is only read. Without AddressSanitizer (`-s none`): the
# core has no unsafe code, and the build takes 2 min instead of 3.5 (docs/fuzzing.md); longer
# runs by hand keep it.
fuzz_targets() {
    local seconds="${MQTT_LINE_FUZZ_SECONDS:-6}"
    (
        status=0
        cd crates/core/fuzz || exit 1
        RUSTC_BOOTSTRAP=1 cargo fuzz build -O -s none || exit 1
        for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list); do
            say "fuzzing $target for ${seconds}s"
            mkdir -p "$fuzz_scratch/$target" "corpus/$target"
            RUSTC_BOOTSTRAP=1 cargo fuzz run -O -s none "$target" "$fuzz_scratch/$target" "corpus/$target" -- \
                -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
                || { say "fuzz target $target failed"; status=1; }
        done
        exit "$status"
    )
}

step "cargo fmt --check" cargo fmt --all -- --check
# The fuzz package is outside the workspace (docs/fuzzing.md): its own formatting check.
step "cargo fmt --check (fuzz)" bash -c 'cd crates/core/fuzz && cargo fmt -- --check'
step "cargo clippy" cargo clippy --release --workspace --all-targets -- -D warnings
# Every target, the tests included, built once here with the features `cargo test` unifies:
# without `--all-targets` the dependencies were built a second time for the tests, as
# dev-dependencies (tokio's test-util, criterion, cbindgen) widen their features
# (docs/decisions.md, "The test command: one build for the tests").
step "release build" cargo build --release --workspace --all-targets
step "rmqttd install" rmqttd_ready
step "cargo test" run_tests
step "fuzz run" fuzz_targets

# One closing line over every test binary of the run (cargo's own last line is often the
# "0 passed" of a crate without doc tests).
results=$(grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$test_log" || true)
passed=$(echo "$results" | awk '{s += $4} END {print s + 0}')
failed=$(echo "$results" | awk '{s += $6} END {print s + 0}')
if [ "${#failed_steps[@]}" -gt 0 ]; then
    say "failed steps: $(printf '%s; ' "${failed_steps[@]}")"
fi
echo "tests: ${passed} passed, ${failed} failed"
[ "${#failed_steps[@]}" -eq 0 ]
