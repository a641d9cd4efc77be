#!/usr/bin/env python3
"""Publishes scenario 3's load for a sim-host measurement: COUNT small JSON messages (QoS 0),
round-robin over the topics of bench/scripts/stations_toml.py's STATIONS stations.

Usage: python3 bench/scripts/flood_pub.py PORT STATIONS COUNT

A plain MQTT 3.1.1 client on a socket (CONNECT, PUBLISH QoS 0, DISCONNECT), so nothing needs
installing.
"""
import socket
import sys


def remaining_length(n):
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + remaining_length(len(body)) + body


def utf8(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def main():
    port, stations, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port))
    connect = utf8("MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + utf8("flood-pub")
    sock.sendall(packet(0x10, connect))
    if sock.recv(4)[:1] != b"\x20":
        sys.exit("no CONNACK")
    topics = [utf8(f"site/e/{i}/up" if i % 2 == 0 else f"site/r/{i}/x") for i in range(stations)]
    batch = bytearray()
    for n in range(count):
        payload = ('{"v0":%d,"v1":%d.5,"v2":%d,"v3":1,"v4":2,"v5":3,"v6":4}' % (n, n % 100, n % 7)).encode()
        batch += packet(0x30, topics[n % stations] + payload)
        if len(batch) > 65536:
            sock.sendall(batch)
            batch = bytearray()
    sock.sendall(bytes(batch) + b"\xe0\x00")
    sock.close()


main()
