#!/usr/bin/env python3
"""Draws docs/benchmarks-scaling.png: throughput and routing cost against station count.

Inputs, both written by the benchmarks themselves:
  - target/bench/results.json from `mqtt-line-bench` (the "sweep": scenario 3 at 10 .. 10,000
    stations, messages per second and CPU per message of our line);
  - target/criterion/routing/{exact,regex,miss}/<stations>/new/estimates.json from
    `cargo bench -p mqtt-line-core --bench core -- routing` (ns per route, 10 .. 100,000).

Usage: python3 bench/scripts/plot.py [--results FILE] [--criterion DIR] [--out PNG]
       python3 bench/scripts/plot.py --scale-out target/bench/scale_out.json
         [--out docs/benchmarks-scale-out.png]
  The second form draws the scale-out row (issue 23): messages per second and CPU per message
  with 1, 2 and 4 line processes on a 3-node rmqtt cluster against one process on one node, as
  written by `cargo test --release -p mqtt-line-e2e --test scale_out -- --ignored --nocapture
  benchmark`.
Install: pip install matplotlib
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def criterion_routing(root):
    series = {}
    for kind in ("exact", "regex", "miss"):
        base = os.path.join(root, "routing", kind)
        if not os.path.isdir(base):
            continue
        points = []
        for n in os.listdir(base):
            est = os.path.join(base, n, "new", "estimates.json")
            if n.isdigit() and os.path.exists(est):
                with open(est) as f:
                    points.append((int(n), json.load(f)["mean"]["point_estimate"]))
        series[kind] = sorted(points)
    return series


def scale_out(path, out):
    """Bars of messages/s per configuration, CPU µs per message (lines, broker) beside them."""
    with open(path) as f:
        rows = json.load(f)["scale_out"]
    labels = [r["label"] for r in rows]
    xs = range(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.bar(xs, [r["msg_per_s"] for r in rows], color="tab:blue")
    left.set_xticks(list(xs), labels, rotation=15, fontsize=8)
    left.set_ylabel("messages / s shown (all processes)")
    left.set_title("Throughput")
    width = 0.4
    right.bar([x - width / 2 for x in xs], [r["line_cpu_us_per_msg"] for r in rows], width,
              label="line processes (sim-host + plugin)")
    right.bar([x + width / 2 for x in xs], [r["broker_cpu_us_per_msg"] for r in rows], width,
              label="rmqtt nodes", color="tab:red")
    right.set_xticks(list(xs), labels, rotation=15, fontsize=8)
    right.set_ylabel("CPU µs per message")
    right.set_title("CPU per message")
    right.legend(loc="best")
    fig.suptitle("Lines sharing $share/scada/plant/# on rmqtt 0.24.0 (QoS 1, one publisher)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="target/bench/results.json")
    ap.add_argument("--criterion", default="target/criterion")
    ap.add_argument("--scale-out", help="draw the scale-out row from this JSON instead")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.scale_out:
        scale_out(a.scale_out, a.out or "docs/benchmarks-scale-out.png")
        return
    a.out = a.out or "docs/benchmarks-scaling.png"

    with open(a.results) as f:
        results = json.load(f)
    sweep = sorted(results.get("sweep", []), key=lambda p: p["stations"])
    routing = criterion_routing(a.criterion)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if sweep:
        xs = [p["stations"] for p in sweep]
        left.plot(xs, [p["msg_per_s"] / 1000 for p in sweep], "o-", label="mqtt-line, msg/s (k)")
        left.set_ylim(bottom=0)
        left.set_ylabel("thousand messages / s (broker-bound)")
        cpu = left.twinx()
        cpu.plot(xs, [p["cpu_us_per_msg"] for p in sweep], "s--", color="tab:red",
                 label="CPU µs / message")
        cpu.set_ylim(bottom=0)
        cpu.set_ylabel("CPU µs per message (plugin + host)")
        lines = left.get_legend_handles_labels()
        more = cpu.get_legend_handles_labels()
        left.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left")
    left.set_xscale("log")
    left.set_xlabel("stations (half exact, half regex; 10 tags each)")
    left.set_title("Scenario 3 through mosquitto, by station count")

    styles = {"exact": "o-", "regex": "s-", "miss": "^-"}
    for kind, points in routing.items():
        if points:
            right.plot([p[0] for p in points], [p[1] for p in points], styles[kind],
                       label=f"{kind} topic")
    right.set_xscale("log")
    right.set_ylim(bottom=0)
    right.set_xlabel("stations (half exact, half regex)")
    right.set_ylabel("ns per routed topic")
    right.set_title("Router::route (criterion)")
    right.legend(loc="upper left")

    machine = results.get("machine", {})
    fig.suptitle(f"mqtt-line scaling — {machine.get('cpus', '?')} × {machine.get('cpu_model', '?')}, "
                 f"{results.get('time', '')[:16]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
