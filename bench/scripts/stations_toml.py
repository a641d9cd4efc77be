#!/usr/bin/env python3
"""Writes a sim-host line file with scenario 3's stations, for timing `sim-host check` at scale.

Usage: python3 bench/scripts/stations_toml.py [STATIONS] [PORT] > stations.toml

Even stations have exact topics (site/e/N/up), odd ones regular expressions (site/r/N/[^/]+);
each has IN_TOPIC, IN_DATA, IN_ID and 7 JA= tags, as in `mqtt-line-bench` scenario 3.
"""
import sys

stations = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
port = int(sys.argv[2]) if len(sys.argv) > 2 else 1883
out = ["[line]", 'host = "127.0.0.1"', f"port = {port}", "",
       "[line.parameters]", 'topic_filter = "site/#"', ""]
tags = [("topic", "IN_TOPIC", "TxtI"), ("data", "IN_DATA", "TxtI"), ("id", "IN_ID", "Ci")]
tags += [(f"j{k}", f"JA=v{k}", "Ai") for k in range(7)]
for i in range(stations):
    address = f"site/e/{i}/up" if i % 2 == 0 else f"site/r/{i}/[^/]+"
    out += ["[[station]]", f'name = "s{i}"', f"address = '{address}'", ""]
    for name, tag_address, value_type in tags:
        out += ["[[station.tag]]", f'name = "{name}"', f'address = "{tag_address}"',
                f'type = "{value_type}"', ""]
print("\n".join(out))
