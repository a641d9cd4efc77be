#!/bin/bash
# sim-host record against mosquitto_sub writing the same messages to a file, in one run
# (issue 22): both subscribe to one private mosquitto on a free loopback port, N JSON uplinks are
# published at QoS 1 with mosquitto_pub -l, and each reader's finishing time is taken from the
# start of publishing (mosquitto 2.0.11 drops mosquitto_pub -l after ~34,000 lines: "out of
# memory"; keep N below that). Usage: N=30000 bench/scripts/record_vs_mosquitto_sub.sh [TARGET_DIR]
set -euo pipefail
N=${N:-30000}
BIN=$(cd "${1:-$(dirname "$0")/../../target/release}" && pwd)
SH=$BIN/sim-host
WORK=$(mktemp -d)
trap 'kill $MQ 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
P=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf "listener $P 127.0.0.1\nallow_anonymous true\nmax_queued_messages 2000000\nmax_inflight_messages 0\n" > m.conf
mosquitto -c m.conf > mq.log 2>&1 & MQ=$!
python3 -c "
import json
for i in range($N):
    print(json.dumps({'dev':'node-%d'%(i%50),'f_cnt':i,'rssi':-70-i%9,'data':{'temperature':20+i%7/10,'humidity':50+i%5}}))
" > lines.txt
"$SH" record --host 127.0.0.1 --port "$P" --topic-filter 'bench/#' --count "$N" -o rec.jsonl </dev/null 2>rec.err & R=$!
mosquitto_sub -p "$P" -q 1 -t 'bench/#' -C "$N" -v > sub.txt & S=$!
# Both must be subscribed before the first message: the recorder says so, mosquitto_sub is given
# the same moment plus a margin (it has no such message).
for _ in $(seq 100); do grep -q subscribed rec.err && break; sleep 0.1; done
sleep 0.5
T0=$(date +%s.%N)
mosquitto_pub -p "$P" -q 1 -t bench/up -l < lines.txt
T1=$(date +%s.%N)
wait $S; TS=$(date +%s.%N)
wait $R; TR=$(date +%s.%N)
python3 -c "
t0,t1,ts,tr,n=$T0,$T1,$TS,$TR,$N
print(f'published {n} in {t1-t0:.2f}s ({n/(t1-t0):.0f}/s)')
print(f'mosquitto_sub -v > file: done after {ts-t0:.2f}s ({n/(ts-t0):.0f}/s)')
print(f'sim-host record -o FILE: done after {tr-t0:.2f}s ({n/(tr-t0):.0f}/s)')
"
echo "lines: record $(($(wc -l < rec.jsonl) - 1)), mosquitto_sub $(wc -l < sub.txt)"
