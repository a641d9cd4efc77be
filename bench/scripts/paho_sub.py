#!/usr/bin/env python3
"""The job of an mqtt-line line done the way Python integrations do it (paho-mqtt).

Started by `mqtt-line-bench` with a job file (JSON): it routes every message to a station by the
same rule as the line (exact topic first, then regular expressions in descending order of the
address, whole-topic match), decodes the payload, extracts the JSON paths, reads the time stamp,
and measures latency from the send time in the payload. Prints "ready" once subscribed and one
JSON report at the end (bench_job.py). Install: pip install paho-mqtt
"""
import json
from datetime import datetime, timezone

from bench_job import Job


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
    job = Job()
    paths = job.spec["paths"]
    time_path = job.spec.get("time_path")
    mode = job.spec["latency"]
    tags = {}

    def on_message(msg):
        st = job.route(msg.topic)
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
        tags[st] = values
        job.seen(sent)

    job.run(on_message)


if __name__ == "__main__":
    main()
