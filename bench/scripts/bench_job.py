"""What every Python comparison client of mqtt-line-bench shares: the job file, the line's routing
rule (exact address first, then regular expressions in descending order of the address, whole
match), the paho-mqtt connection, "ready" once subscribed, and the one JSON report at the end."""
import json
import re
import sys
import threading
import time

import paho.mqtt.client as mqtt


class Job:
    """The job of the file named on the command line."""

    def __init__(self):
        self.spec = json.load(open(sys.argv[1]))
        self._exact = {}
        self._regexes = []
        for i, st in enumerate(self.spec["stations"]):
            self._exact[st["address"]] = i
            if st["regex"]:
                self._regexes.append((st["address"], re.compile(st["address"]), i))
        self._regexes.sort(key=lambda r: r[0], reverse=True)
        self.count = 0
        self.extra = {}
        self._last_ns = 0
        self._lat = []
        self._done = threading.Event()

    def route(self, name):
        st = self._exact.get(name)
        if st is not None:
            return st
        for _, rx, i in self._regexes:
            if rx.fullmatch(name):
                return i
        return None

    def seen(self, sent_ns=None):
        """One message that counts; `sent_ns` is its send time when known."""
        now = time.time_ns()
        if sent_ns is not None:
            self._lat.append(now - sent_ns)
        self.count += 1
        self._last_ns = now
        if self.count >= self.spec["count"]:
            self._done.set()

    def run(self, on_message):
        """Connects, subscribes, hands each message to `on_message(msg)`, reports at the end."""
        job = self.spec
        subscribed = threading.Event()

        def on_connect(client, userdata, flags, rc, *args):
            client.subscribe(job["filter"], qos=job["qos"])

        def on_subscribe(client, userdata, mid, *args):
            subscribed.set()

        try:
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=job["client_id"],
                                 clean_session=job["clean"])
        except AttributeError:  # paho-mqtt 1.x
            client = mqtt.Client(client_id=job["client_id"], clean_session=job["clean"])
        client.max_queued_messages_set(0)
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = lambda client, userdata, msg: on_message(msg)
        connect_ns = time.time_ns()
        client.connect(job["host"], job["port"], keepalive=60)
        client.loop_start()
        if not subscribed.wait(20):
            print(json.dumps({"count": 0, "error": "not subscribed"}), flush=True)
            return
        print("ready", flush=True)
        if not job["session_only"]:
            self._done.wait(job["limit_s"])
        client.disconnect()
        client.loop_stop()
        lat = sorted(self._lat)
        pick = (lambda q: lat[min(len(lat) - 1, round((len(lat) - 1) * q))]) if lat else None
        print(json.dumps({
            **self.extra,
            "count": self.count,
            "connect_ns": connect_ns,
            "last_ns": self._last_ns or time.time_ns(),
            "lat_ns": [pick(0.5), pick(0.99), lat[-1]] if lat else None,
        }), flush=True)
