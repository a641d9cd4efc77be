#!/usr/bin/env bash
# Memory of sim-host while a fast publisher floods a gated (ACK_ID) station whose host never
# confirms: 2,000,000 QoS 0 messages by default, from `mosquitto_pub -l`, into a private
# mosquitto on a free loopback port. Prints sim-host's peak resident memory (VmHWM), the drop
# warnings, and shows that the line carries on once the host confirms.
#
#   tests/ack_flood.sh                      # 2,000,000 messages, default max_held_messages
#   tests/ack_flood.sh 500000 100           # 500,000 messages, max_held_messages = 100
#
# Environment: BIN_DIR (default target/release) holds sim-host and libmqtt_line.so; build them
# first (cargo build --release --workspace). Needs mosquitto, mosquitto_pub and Linux /proc.
set -euo pipefail

cd "$(dirname "$0")/.."
COUNT="${1:-2000000}"
LIMIT="${2:-}"
BIN="${BIN_DIR:-target/release}"
DIR="$(mktemp -d /tmp/mqtt-line-ack-flood.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BROKER=""
HOST=""
cleanup() {
    [ -n "$HOST" ] && kill "$HOST" 2>/dev/null || true
    [ -n "$BROKER" ] && kill "$BROKER" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

# Waits (at most 10 minutes) until FILE has a line matching PATTERN.
wait_for() {
    local file="$1" pattern="$2" i
    for ((i = 0; i < 6000; i++)); do
        grep -q -- "$pattern" "$file" && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$pattern' in $file" >&2
    exit 1
}

printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_type none\n' "$PORT" >"$DIR/broker.conf"
mosquitto -c "$DIR/broker.conf" >"$DIR/broker.log" 2>&1 &
BROKER=$!

{
    printf '[line]\nhost = "127.0.0.1"\nport = %s\n' "$PORT"
    printf '[line.parameters]\nclient_id = "ack-flood"\nsubscribe_qos = "QoS_0"\n'
    printf '[[station]]\nname = "gate"\naddress = "gate/x"\n'
    [ -n "$LIMIT" ] && printf '[station.parameters]\nmax_held_messages = "%s"\n' "$LIMIT"
    for tag in "data IN_DATA TxtI" "id IN_ID Ci" "ack ACK_ID Co"; do
        set -- $tag
        printf '[[station.tag]]\nname = "%s"\naddress = "%s"\ntype = "%s"\n' "$1" "$2" "$3"
    done
    printf '[[station]]\nname = "marker"\naddress = "marker"\n'
    printf '[[station.tag]]\nname = "data"\naddress = "IN_DATA"\ntype = "TxtI"\n'
} >"$DIR/line.toml"

seq -f "m%07g" 1 "$COUNT" >"$DIR/messages"
: >"$DIR/out"
mkfifo "$DIR/stdin"
exec 3<>"$DIR/stdin"
"$BIN/sim-host" run "$DIR/line.toml" --plugin "$BIN/libmqtt_line.so" <"$DIR/stdin" \
    >"$DIR/out" 2>"$DIR/err" &
HOST=$!
wait_for "$DIR/out" "line connected"

start=$(date +%s.%N)
mosquitto_pub -p "$PORT" -t gate/x -q 0 -l <"$DIR/messages"
mosquitto_pub -p "$PORT" -t marker -q 1 -m done
wait_for "$DIR/out" 'marker.data = "done"'
end=$(date +%s.%N)
echo "$COUNT QoS 0 messages published and handled in $(echo "$end - $start" | bc) s"
grep VmHWM "/proc/$HOST/status" | sed 's/^/sim-host peak resident memory: /'
grep -E "are dropped" "$DIR/err" | tail -1 || echo "no drop warning"

echo "write gate ack 0" >&3
wait_for "$DIR/out" 'value gate.data = "m0000002"'
echo "confirmed: the next held message was shown"
echo quit >&3
wait "$HOST"
HOST=""
