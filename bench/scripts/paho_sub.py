#!/usr/bin/env python3
"""The job of an mqtt-line line done the way Python integrations do it (paho-mqtt).

Started by `mqtt-line-bench` with a job file (JSON): it routes every message to a station by the
same rule as the line (exact topic first, then regular expressions in descending order of the
address, whole-topic match), decodes the payload, extracts the JSON paths, reads the time stamp,
and measures latency from the send time in the payload. Prints "ready" once subscribed and one
JSON report at the end. Install: pip install paho-mqtt
"""
import json
import re
import sys
import threading
import time
from datetime import datetime, timezone

import paho.mqtt.client as mqtt


def iso_ns(text):
    # 2026-11-24T00:00:00.123456789Z -> ns since the epoch
    base = datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    frac = text[20:-1] if len(text) > 20 and text[19] == "." else ""
    return int(base.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def extract(doc, path):
    for step in path:
        if isinstance(step, dict):
            # {"key": k, "value": v}: the last element of the array whose member k is v.
            if not isinstance(doc, list):
                return None
            found = None
            for item in doc:
                if isinstance(item, dict) and item.get(step["key"]) == step["value"]:
                    found = item
            if found is None:
                return None
            doc = found
            continue
        try:
            doc = doc[step]
        except (KeyError, IndexError, TypeError):
            return None
    return doc


def main():
    job = json.load(open(sys.argv[1]))
    exact = {}
    regexes = []
    for i, st in enumerate(job["stations"]):
        exact[st["address"]] = i
        if st["regex"]:
            regexes.append((st["address"], re.compile(st["address"]), i))
    regexes.sort(key=lambda r: r[0], reverse=True)
    paths = job["paths"]
    time_path = job.get("time_path")
    mode = job["latency"]
    want = job["count"]
    state = {"count": 0, "last_ns": 0, "lat": [], "tags": {}}
    done = threading.Event()
    subscribed = threading.Event()

    def route(topic):
        st = exact.get(topic)
        if st is not None:
            return st
        for _, rx, i in regexes:
            if rx.fullmatch(topic):
                return i
        return None

    def on_connect(client, userdata, flags, rc, *args):
        client.subscribe(job["filter"], qos=job["qos"])

    def on_subscribe(client, userdata, mid, *args):
        subscribed.set()

    def on_message(client, userdata, msg):
        st = route(msg.topic)
        if st is None:
            return
        text = msg.payload.decode("utf-8", "replace")
        values = [msg.topic, text, msg.mid]
        sent = None
        if paths or time_path:
            doc = json.loads(text)
            values.extend(extract(doc, p) for p in paths)
            if time_path:
                stamp = extract(doc, time_path)
                if isinstance(stamp, str):
                    sent = iso_ns(stamp)
                elif mode == "ms" and isinstance(stamp, int):
                    sent = stamp * 1_000_000
        elif mode == "text_ns":
            sent = int(text)
        state["tags"][st] = values
        now = time.time_ns()
        if sent is not None:
            state["lat"].append(now - sent)
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
        "connect_ns": connect_ns,
        "last_ns": state["last_ns"] or time.time_ns(),
        "lat_ns": [pick(0.5), pick(0.99), lat[-1]] if lat else None,
    }), flush=True)


if __name__ == "__main__":
    main()
