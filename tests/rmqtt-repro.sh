#!/usr/bin/env bash
# Reproduces, with plain mosquitto_pub and mosquitto_sub and no mqtt-line, what an rmqtt 0.24.0
# raft cluster loses when a node dies (docs/scale-out.md, "Reporting it to rmqtt").
#
# Three nodes on 127.0.0.1 (node 1 started alone, 2 and 3 once node 1 leads), every listener on
# loopback, configured as tests/src/rmqtt_cluster.rs does. Then:
#   A. two shared-subscription members ($share/g/plant/#) on nodes 2 and 3, numbered QoS 1
#      messages to node 1; node 3 is killed (SIGKILL) and its member does NOT come back: every
#      message after the kill should go to the member on node 2.
#   B. the member of node 3 comes back on node 2 under the same client id, at once.
#   C. one client id publishing 200 messages, each on a new connection, alternating nodes 1 and 2.
# Prints what each subscriber got and which numbers are missing. Stops every node it started.
#
# Usage: tests/rmqtt-repro.sh [RMQTTD]   (default: $MQTT_LINE_RMQTTD, else the tool directory)
set -uo pipefail

rmqttd="${1:-${MQTT_LINE_RMQTTD:-$HOME/.cache/mqtt-line-tools/rmqttd-0.24.0/bin/rmqttd}}"
[ -x "$rmqttd" ] || { echo "no rmqttd at $rmqttd (tests/run.sh installs it)" >&2; exit 2; }
for tool in mosquitto_pub mosquitto_sub curl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }
done

dir="$(mktemp -d /tmp/rmqtt-repro.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

base=$((20000 + RANDOM % 20000))
mqtt() { echo $((base + $1)); }        # node 1..3: MQTT
grpc() { echo $((base + 10 + $1)); }   # gRPC between nodes
raft() { echo $((base + 20 + $1)); }   # raft
http() { echo $((base + 30 + $1)); }   # HTTP API

node_pid=()
start_node() {
    local n=$1 d="$dir/node$1"
    mkdir -p "$d/plugins"
    cat >"$d/rmqtt.toml" <<EOF
node.id = $n
node.busy.check_enable = false
rpc.server_addr = "127.0.0.1:$(grpc "$n")"
log.to = "console"
log.level = "info"
plugins.dir = "$d/plugins"
plugins.default_startups = ["rmqtt-cluster-raft", "rmqtt-shared-subscription", "rmqtt-http-api"]
plugins.disabled_default_startups = ["rmqtt-acl"]
listener.tcp.external.addr = "127.0.0.1:$(mqtt "$n")"
listener.tcp.external.allow_anonymous = true
EOF
    cat >"$d/plugins/rmqtt-cluster-raft.toml" <<EOF
node_grpc_addrs = ["1@127.0.0.1:$(grpc 1)", "2@127.0.0.1:$(grpc 2)", "3@127.0.0.1:$(grpc 3)"]
raft_peer_addrs = ["1@127.0.0.1:$(raft 1)", "2@127.0.0.1:$(raft 2)", "3@127.0.0.1:$(raft 3)"]
laddr = "127.0.0.1:$(raft "$n")"
leader_id = 1
EOF
    echo "http_laddr = \"127.0.0.1:$(http "$n")\"" >"$d/plugins/rmqtt-http-api.toml"
    echo 'strategy = "round_robin"' >"$d/plugins/rmqtt-shared-subscription.toml"
    (cd "$d" && exec "$rmqttd" -f "$d/rmqtt.toml" >"$d/out.log" 2>&1) &
    node_pid[n]=$!
    pids+=($!)
}

# Waits (at most 60 s) until node $1 reports node 1 as its raft leader.
wait_leader() {
    local n=$1
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$(http "$n")/api/v1/plugins/$n/rmqtt-cluster-raft" 2>/dev/null |
            grep -q '"leader_id":1'; then
            return 0
        fi
        sleep 0.2
    done
    echo "node $n has no leader after 60 s; see $dir/node$n/out.log" >&2
    exit 1
}

# Publishes numbers $1..$2 as QoS 1 messages to node $3, about 100 a second, one connection.
publish_numbers() {
    for i in $(seq "$1" "$2"); do
        echo "$i"
        sleep 0.01
    done | mosquitto_pub -h 127.0.0.1 -p "$(mqtt "$3")" -i "repro-pub-$1" -q 1 -t plant/data -l
}

# A shared-subscription member: client id $1 on node $2, numbers to file $3; its pid in $last.
member() {
    mosquitto_sub -h 127.0.0.1 -p "$(mqtt "$2")" -i "$1" -q 1 -t '$share/g/plant/#' >"$3" &
    last=$!
    pids+=("$last")
}

# Which numbers of $1..$2 none of the files holds.
missing() {
    local lo=$1 hi=$2
    shift 2
    comm -23 <(seq "$lo" "$hi" | sort) <(cat "$@" | sort -u) | sort -n
}

start_node 1
wait_leader 1
start_node 2
start_node 3
wait_leader 2
wait_leader 3
echo "cluster up: MQTT 127.0.0.1:$(mqtt 1), :$(mqtt 2), :$(mqtt 3); logs in $dir"

echo "== A. node 3 dies, its member does not come back"
member sub-2 2 "$dir/a-sub-2.txt"
m2=$last
member sub-3 3 "$dir/a-sub-3.txt"
m3=$last
sleep 2
publish_numbers 1 1000 1
kill -KILL "${node_pid[3]}"
kill -KILL "$m3"
publish_numbers 1001 2000 1
sleep 3
echo "before the kill (1..1000): sub-2 $(awk '$1<=1000' "$dir/a-sub-2.txt" | wc -l), sub-3 $(wc -l <"$dir/a-sub-3.txt"), missing $(missing 1 1000 "$dir"/a-sub-*.txt | wc -l)"
lost=$(missing 1001 2000 "$dir"/a-sub-*.txt | wc -l)
echo "after the kill (1001..2000), only sub-2 left: sub-2 got $(awk '$1>1000' "$dir/a-sub-2.txt" | wc -l), missing $lost"
echo "   first missing: $(missing 1001 2000 "$dir"/a-sub-*.txt | head -n 10 | tr '\n' ' ')"

echo "== B. sub-3 comes back on node 2 under the same client id"
start=$(date +%s.%N)
member sub-3 2 "$dir/b-sub-3.txt"
m3b=$last
publish_numbers 2001 3000 1
sleep 3
echo "sub-3 on node 2 got $(wc -l <"$dir/b-sub-3.txt"), sub-2 $(awk '$1>2000' "$dir/a-sub-2.txt" | wc -l), missing $(missing 2001 3000 "$dir/a-sub-2.txt" "$dir/b-sub-3.txt" | wc -l)"
echo "   (sub-3 was started $(awk "BEGIN { print $(date +%s.%N) - $start }") s ago)"
kill -KILL "$m2" "$m3b" 2>/dev/null

echo "== C. one client id, a new connection per message, alternating nodes 1 and 2"
mosquitto_sub -h 127.0.0.1 -p "$(mqtt 1)" -i repro-c-sub -q 1 -t repro/c >"$dir/c.txt" &
pids+=($!)
sleep 1
refused=0
for i in $(seq 1 200); do
    node=$((1 + i % 2))
    mosquitto_pub -h 127.0.0.1 -p "$(mqtt "$node")" -i repro-same-id -q 1 -t repro/c -m "$i" 2>/dev/null ||
        refused=$((refused + 1))
done
sleep 3
echo "200 publishes, each a new connection of client id repro-same-id: $(wc -l <"$dir/c.txt") arrived, $refused refused"
echo "logs: $dir"
