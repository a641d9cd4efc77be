#!/bin/bash
# Issue 22: `sim-host replay --as-fast-as-possible` of N messages against the line receiving the
# same N messages live, in one run, same configuration (examples/demo.toml), same output.
#
# The recording: N JSON uplinks (lorawan/devices/node-K/up, 50 devices, QoS 1), the last with a
# marker f_cnt. Live: a private mosquitto (bench settings: max_queued_messages 5000000,
# max_queued_bytes 0) holds the N messages for the line's persistent session (clean_session = NO,
# made by a first short run), published beforehand with pre-encoded QoS 1 packets; then
# `sim-host run` connects and the time from its start to the marker value on its stdout is the
# live receive time (the drain: mosquitto hands over as fast as the line takes them, so the
# publisher is out of the measurement). Replay: the wall time of the whole `sim-host replay`
# process (reading the file, embedded broker, publishing, the line, the summary), and the time to
# the marker value. Both print readable events into a pipe to grep (OUTPUT=json: --json).
# Also the CPU seconds of both (live: sim-host run up to the marker and mosquitto while it hands
# the messages over; replay: the whole process): on a loaded machine the rates also depend on
# how much of the machine each run gets.
# Usage: N=1000000 bench/scripts/replay_vs_live.sh [TARGET_DIR]
set -euo pipefail
N=${N:-1000000}
OUTPUT=${OUTPUT:-readable}
BIN=$(cd "${1:-$(dirname "$0")/../../target/release}" && pwd)
SH=$BIN/sim-host
PLUGIN=$BIN/libmqtt_line.so
EXAMPLES=$(cd "$(dirname "$0")/../../examples" && pwd)
WORK=$(mktemp -d)
MQ=
trap '[ -n "$MQ" ] && kill $MQ 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
JSON=(); [ "$OUTPUT" = json ] && JSON=(--json)
MARK=987654321
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf "listener $P 127.0.0.1\nallow_anonymous true\nmax_queued_messages 5000000\nmax_queued_bytes 0\n" > m.conf
mosquitto -c m.conf > mq.log 2>&1 & MQ=$!

# The recording and the same messages as pre-encoded MQTT 3.1.1 QoS 1 PUBLISH packets.
python3 - "$N" "$MARK" <<'PY'
import json, struct, sys
n, mark = int(sys.argv[1]), int(sys.argv[2])
rec = open("rec.jsonl", "w")
rec.write(json.dumps({"format": "mqtt-line-recording", "version": 1,
    "started": "2026-12-06T00:00:00Z", "source": {"host": "127.0.0.1", "port": 1883,
    "topic_filter": "#", "protocol_version": 4}}, separators=(",", ":")) + "\n")
pk = open("packets.bin", "wb")
def varlen(x):
    out = bytearray()
    while True:
        b = x % 128; x //= 128
        out.append(b | (128 if x else 0))
        if not x: return bytes(out)
for i in range(n):
    topic = "lorawan/devices/node-%d/up" % (i % 50)
    payload = json.dumps({"dev": "node-%d" % (i % 50), "f_cnt": mark if i == n - 1 else i,
        "rssi": -70 - i % 9, "data": {"temperature": 20 + i % 7 / 10, "humidity": 50 + i % 5}},
        separators=(",", ":"))
    t = "2026-12-06T00:00:%02d.%09dZ" % (i // 1000000 % 60, i % 1000000 * 1000)
    rec.write('{"time":"%s","topic":"%s","qos":1,"retain":false,"payload":%s}\n'
              % (t, topic, json.dumps(payload)))
    tb, pb = topic.encode(), payload.encode()
    body = struct.pack(">H", len(tb)) + tb + struct.pack(">H", i % 65535 + 1) + pb
    pk.write(b"\x32" + varlen(len(body)) + body)
PY

# The line: examples/demo.toml on this broker, with a persistent session.
sed -e "s/^port = .*/port = $P/" -e 's/^clean_session = .*/clean_session = false/' \
    -e 's/^client_id = .*/client_id = "bench-live"/' "$EXAMPLES/demo.toml" > live.toml
# First run: makes the session (and its subscription), then leaves.
(sleep 3; echo quit) | "$SH" run live.toml --plugin "$PLUGIN" > first.out 2> first.err
grep -qi "connected" first.out || { echo "the first run did not connect:"; cat first.out first.err; exit 1; }

# Publish the N messages into the broker, QoS 1, pipelined; wait for the last PUBACK.
python3 - "$P" "$N" <<'PY'
import socket, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
cid = b"bench-pub"
vh = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
s.sendall(bytes([0x10, len(vh)]) + vh)
assert s.recv(4)[:2] == b"\x20\x02"
acks = [0]
def read():
    buf = b""
    while acks[0] < n:
        d = s.recv(1 << 16)
        if not d: return
        buf += d
        k = len(buf) // 4
        acks[0] += k; buf = buf[k * 4:]
t = threading.Thread(target=read); t.start()
with open("packets.bin", "rb") as f:
    while True:
        chunk = f.read(1 << 16)
        if not chunk: break
        s.sendall(chunk)
t.join()
print(f"queued {acks[0]} messages for the line's session")
PY

now() { date +%s.%N; }
# CPU seconds (user + system) a process has used so far, from /proc.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); print ($12 + $13) / hz}' "/proc/$1/stat"; }
# Live: from the start of sim-host run to the marker value.
MQ_CPU0=$(cpu $MQ)
T0=$(now)
"$SH" run live.toml --plugin "$PLUGIN" "${JSON[@]}" 2> live.err \
    > >(grep -m1 -q "$MARK" && now > live.mark; cat > /dev/null) & LIVE=$!
for _ in $(seq 6000); do [ -s live.mark ] && break; sleep 0.05; done
LIVE_CPU=$(cpu $LIVE)
MQ_CPU=$(python3 -c "print(round($(cpu $MQ) - $MQ_CPU0, 2))")
kill $LIVE; wait $LIVE 2>/dev/null || true
[ -s live.mark ] || { echo "the live line never got the last message"; cat live.err; exit 1; }
T1=$(cat live.mark)
kill $MQ; MQ=

# Replay: the same messages from the recording.
sed -e 's/^clean_session = .*/clean_session = true/' live.toml > replay.toml
T2=$(now)
{ /usr/bin/time -f "%e s wall, %U s user + %S s system CPU, %M KB peak RSS" -o replay.time \
    "$SH" replay replay.toml rec.jsonl --as-fast-as-possible --plugin "$PLUGIN" "${JSON[@]}" \
    2> replay.err | tee >(grep -m1 -q "$MARK" && now > replay.mark; cat > /dev/null) > replay.out; }
T3=$(now)
sleep 0.2
TM=$(cat replay.mark)
python3 -c "
n,t0,t1,t2,t3,tm=$N,$T0,$T1,$T2,$T3,$TM
print(f'live   sim-host run    ({\"$OUTPUT\"}): {n} messages in {t1-t0:.2f}s to the last value: {n/(t1-t0):,.0f} msg/s')
print(f'replay --as-fast-as-possible     : last value after {tm-t2:.2f}s ({n/(tm-t2):,.0f} msg/s), whole run with summary {t3-t2:.2f}s ({n/(t3-t2):,.0f} msg/s)')
"
echo "live: sim-host run ${LIVE_CPU} s CPU to the last value, mosquitto ${MQ_CPU} s CPU"
echo "replay: $(cat replay.time)"
grep -E "messages|not_received" replay.out | tail -3
