#!/usr/bin/env bash
# What a running `sim-host --http` page costs at scenario 3's 10,000 stations (docs/benchmarks.md,
# "The live page at 10,000 stations"): sim-host's CPU time and peak memory for COUNT messages
# with and without `--http` (with one client on the page's event stream), and idle with the page.
#
# Usage: bench/scripts/http_page_cost.sh [STATIONS] [COUNT]   (defaults 10000 100000)
# Needs mosquitto, curl and python3; run after `cargo build --release`.
# SIM_HOST=PATH runs another sim-host (with target/release/libmqtt_line.so); RUNS chooses the
# runs (default "plain http"; "server" is --http without a page connected).
set -euo pipefail
cd "$(dirname "$0")/../.."
stations="${1:-10000}"
count="${2:-100000}"
sim_host="${SIM_HOST:-target/release/sim-host}"
plugin=target/release/libmqtt_line.so
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\n' "$port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
pids+=($!)
# JSON payloads, as in scenario 3: the 7 JA= tags of every station are filled.
python3 bench/scripts/stations_toml.py "$stations" "$port" \
    | sed 's/^topic_filter = "site\/#"$/&\npayload_type = "JSON"/' > "$work/line.toml"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

# One run: $1 = label, the rest = extra sim-host options.
run() {
    local label="$1"; shift
    local out="$work/$label.out" err="$work/$label.err" fifo="$work/$label.in"
    mkfifo "$fifo"
    RUST_LOG=warn,sim_host=debug "$sim_host" run "$work/line.toml" --plugin "$plugin" --json --log-level warn "$@" < "$fifo" > "$out" 2> "$err" &
    local sim=$!
    pids+=($sim)
    exec 3> "$fifo"
    until grep -q '"state":"connected"' "$out" 2>/dev/null; do sleep 0.2; done
    local curl_pid=""
    if [ "$label" = http ]; then
        local addr
        addr=$(grep -o 'http://[0-9.:]*' "$err" | head -n 1)
        curl -sN "$addr/events" > "$work/$label.sse" &
        curl_pid=$!
        pids+=($curl_pid)
        until [ -s "$work/$label.sse" ]; do sleep 0.1; done
        sleep 1
    fi
    local rss_before cpu0 t0
    rss_before=$(rss_kb "$sim")
    cpu0=$(cpu_ticks "$sim")
    t0=$(date +%s.%N)
    python3 bench/scripts/flood_pub.py "$port" "$stations" "$count"
    # Wait until sim-host has shown the last message (its JA=v0 value is COUNT-1; one publisher
    # at QoS 0 keeps the order), at most 3 minutes.
    local deadline=$((SECONDS + ${WAIT_SECONDS:-180})) last="\"value\":$((count - 1))"
    until tail -c 20000 "$out" | grep -q "$last"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "$label: the last message did not arrive within 3 minutes"; tail -c 3000 "$out"
            break
        fi
        sleep 0.1
    done
    local t1 cpu1
    t1=$(date +%s.%N)
    cpu1=$(cpu_ticks "$sim")
    echo "$label: $count messages, sim-host CPU $(echo "scale=2; ($cpu1 - $cpu0) / $hz" | bc) s, wall $(echo "$t1 - $t0" | bc | cut -c1-5) s (polled every 0.1 s), RSS before load $((rss_before / 1024)) MB, after $(( $(rss_kb "$sim") / 1024 )) MB, peak $(( $(hwm_kb "$sim") / 1024 )) MB"
    local idle0 idle1
    idle0=$(cpu_ticks "$sim")
    sleep 10
    idle1=$(cpu_ticks "$sim")
    echo "$label: idle afterwards: $(echo "scale=3; ($idle1 - $idle0) / $hz / 10 * 100" | bc) % of a core over 10 s"
    if [ -n "$curl_pid" ]; then
        echo "$label: event stream: snapshot $(head -c 100000000 "$work/$label.sse" | awk '/^event: snapshot/{getline; print length($0); exit}') bytes, $(grep -c '^event: delta' "$work/$label.sse") deltas, $(( $(stat -c %s "$work/$label.sse") / 1024 )) KB in all"
        echo "$label: deltas built: $(grep -o 'a delta of [0-9]* bytes built in [0-9.]*[a-zµ]*' "$err" | sed 's/a delta of //; s/ bytes built in /:/' | tr '\n' ' ')"
        kill "$curl_pid" 2>/dev/null || true
    fi
    echo quit >&3
    exec 3>&-
    wait "$sim" || true
}

for mode in ${RUNS:-plain http}; do
    case "$mode" in
    plain) run plain ;;
    http) run http --http 127.0.0.1:0 ;;
    server) run server --http 127.0.0.1:0 ;; # the server without a page connected
    esac
done
