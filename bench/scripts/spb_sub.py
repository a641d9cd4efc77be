#!/usr/bin/env python3
"""The Sparkplug B job of an mqtt-line line done with pysparkplug (Python).

Started by `mqtt-line-bench` with a job file (JSON), like paho_sub.py: subscribes with paho-mqtt,
decodes NBIRTH with pysparkplug and every NDATA against that birth (which resolves the aliases to
names), checks each node's seq, routes the node's identity (group/node) to a station by the line's
rule, sets every metric's value by name, and measures latency from the payload's time stamp (ms).
Prints "ready" once subscribed and one JSON report at the end (bench_job.py).
Install: pip install pysparkplug
"""
import pysparkplug

from bench_job import Job


def main():
    job = Job()
    nodes = {}  # identity -> [birth, last seq]
    tags = {}

    def on_message(msg):
        level = msg.topic.split("/")
        if level[0] != "spBv1.0" or len(level) < 4 or level[2] not in ("NBIRTH", "NDATA"):
            return
        identity = level[1] + "/" + level[3]
        if level[2] == "NBIRTH":
            payload = pysparkplug.NBirth.decode(msg.payload)
            nodes[identity] = [payload, payload.seq]
        else:
            node = nodes.get(identity)
            if node is None:
                return
            payload = pysparkplug.NData.decode(msg.payload, birth=node[0])
            if payload.seq != (node[1] + 1) % 256:
                job.extra["gaps"] = job.extra.get("gaps", 0) + 1
            node[1] = payload.seq
        st = job.route(identity)
        if st is None:
            return
        values = tags.setdefault(st, {})
        for m in payload.metrics:
            values[m.name] = m.value
        if level[2] == "NDATA":
            job.seen(payload.timestamp * 1_000_000)

    job.run(on_message)


if __name__ == "__main__":
    main()
