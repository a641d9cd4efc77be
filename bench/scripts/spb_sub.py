#!/usr/bin/env python3
"""The Sparkplug B job of an mqtt-line line done with pysparkplug (Python).

Started by `mqtt-line-bench` with a job file (JSON), like paho_sub.py: subscribes with paho-mqtt,
decodes NBIRTH with pysparkplug and every NDATA against that birth (which resolves the aliases to
names), checks each node's seq, routes the node's identity (group/node) to a station by the line's
rule, sets every metric's value by name, and measures latency from the payload's time stamp (ms).
Prints "ready" once subscribed and one JSON report at the end. Install: pip install pysparkplug
"""
import json
import re
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pysparkplug


def main():
    job = json.load(open(sys.argv[1]))
    exact = {}
    regexes = []
    for i, st in enumerate(job["stations"]):
        exact[st["address"]] = i
        if st["regex"]:
            regexes.append((st["address"], re.compile(st["address"]), i))
    regexes.sort(key=lambda r: r[0], reverse=True)
    want = job["count"]
    state = {"count": 0, "gaps": 0, "last_ns": 0, "lat": [], "tags": {}, "nodes": {}}
    done = threading.Event()
    subscribed = threading.Event()

    def route(identity):
        st = exact.get(identity)
        if st is not None:
            return st
        for _, rx, i in regexes:
            if rx.fullmatch(identity):
                return i
        return None

    def on_connect(client, userdata, flags, rc, *args):
        client.subscribe(job["filter"], qos=job["qos"])

    def on_subscribe(client, userdata, mid, *args):
        subscribed.set()

    def on_message(client, userdata, msg):
        level = msg.topic.split("/")
        if level[0] != "spBv1.0" or len(level) < 4 or level[2] not in ("NBIRTH", "NDATA"):
            return
        identity = level[1] + "/" + level[3]
        if level[2] == "NBIRTH":
            birth = pysparkplug.NBirth.decode(msg.payload)
            state["nodes"][identity] = [birth, birth.seq]
            payload = birth
        else:
            node = state["nodes"].get(identity)
            if node is None:
                return
            payload = pysparkplug.NData.decode(msg.payload, birth=node[0])
            if payload.seq != (node[1] + 1) % 256:
                state["gaps"] += 1
            node[1] = payload.seq
        st = route(identity)
        if st is None:
            return
        values = state["tags"].setdefault(st, {})
        for m in payload.metrics:
            values[m.name] = m.value
        if level[2] != "NDATA":
            return
        now = time.time_ns()
        state["lat"].append(now - payload.timestamp * 1_000_000)
        state["count"] += 1
        state["last_ns"] = now
        if state["count"] >= want:
            done.set()

    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=job["client_id"],
                             clean_session=job["clean"])
    except AttributeError:  # paho-mqtt 1.x
        client = mqtt.Client(client_id=job["client_id"], clean_session=job["clean"])
    client.max_queued_messages_set(0)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    connect_ns = time.time_ns()
    client.connect(job["host"], job["port"], keepalive=60)
    client.loop_start()
    if not subscribed.wait(20):
        print(json.dumps({"count": 0, "error": "not subscribed"}), flush=True)
        return
    print("ready", flush=True)
    if not job["session_only"]:
        done.wait(job["limit_s"])
    client.disconnect()
    client.loop_stop()
    lat = sorted(state["lat"])
    pick = (lambda q: lat[min(len(lat) - 1, round((len(lat) - 1) * q))]) if lat else None
    print(json.dumps({
        "count": state["count"],
        "gaps": state["gaps"],
        "connect_ns": connect_ns,
        "last_ns": state["last_ns"] or time.time_ns(),
        "lat_ns": [pick(0.5), pick(0.99), lat[-1]] if lat else None,
    }), flush=True)


if __name__ == "__main__":
    main()
