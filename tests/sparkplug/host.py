"""A Sparkplug host application made of pysparkplug (PyPI), for tests/tests/sparkplug_edge.rs:
`host.py PORT GROUP`. It prints every message of the group as one JSON line on stdout, decoded
by pysparkplug (aliases resolved from the births it saw), and publishes the NCMD and DCMD
commands it reads as JSON lines on stdin:
{"cmd": "ncmd" | "dcmd", "node": "...", "device": "...", "name": "...", "type": "Double",
 "value": ...}."""

import json
import sys
import threading

import pysparkplug as psp


def metric_json(m):
    value = m.value
    if isinstance(value, (bytes, bytearray)):
        value = value.hex()
    return {
        "name": m.name,
        "alias": m.alias,
        "type": m.datatype.name,
        "value": value,
        "timestamp": m.timestamp,
        "is_historical": m.is_historical,
        "is_null": m.is_null,
    }


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    port, group = int(sys.argv[1]), sys.argv[2]
    client = psp.Client(client_id="pysparkplug-host")
    ready = threading.Event()

    def on_message(_client, message):
        topic = message.topic
        payload = message.payload
        event = {
            "event": "message",
            "type": str(topic.message_type),
            "node": topic.edge_node_id,
            "device": topic.device_id,
            "seq": getattr(payload, "seq", None),
            "timestamp": getattr(payload, "timestamp", None),
        }
        metrics = getattr(payload, "metrics", None)
        if metrics is None and hasattr(payload, "bd_seq_metric"):
            metrics = [payload.bd_seq_metric]
        event["metrics"] = [metric_json(m) for m in metrics or []]
        say(event)

    client.connect("127.0.0.1", port=port, callback=lambda _c: ready.set())
    ready.wait(20)
    topic = psp.Topic(group_id=group, message_type=psp.MULTI_LEVEL_WILDCARD)
    client.subscribe(topic, psp.QoS.AT_LEAST_ONCE, on_message)
    say({"event": "ready"})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["cmd"] == "quit":
            break
        metric = psp.Metric(
            timestamp=psp.get_current_timestamp(),
            name=cmd["name"],
            datatype=psp.DataType[cmd["type"].upper()],
            value=cmd["value"],
        )
        if cmd["cmd"] == "ncmd":
            message = psp.Message(
                topic=psp.Topic(
                    group_id=group,
                    message_type=psp.MessageType.NCMD,
                    edge_node_id=cmd["node"],
                ),
                payload=psp.NCmd(timestamp=psp.get_current_timestamp(), metrics=(metric,)),
                qos=psp.QoS.AT_MOST_ONCE,
                retain=False,
            )
        else:
            message = psp.Message(
                topic=psp.Topic(
                    group_id=group,
                    message_type=psp.MessageType.DCMD,
                    edge_node_id=cmd["node"],
                    device_id=cmd["device"],
                ),
                payload=psp.DCmd(timestamp=psp.get_current_timestamp(), metrics=(metric,)),
                qos=psp.QoS.AT_MOST_ONCE,
                retain=False,
            )
        client.publish(message, include_dtypes=True)
        say({"event": "sent", "cmd": cmd["cmd"], "name": cmd["name"]})
    client.disconnect()


if __name__ == "__main__":
    main()
