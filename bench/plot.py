#!/usr/bin/env python3
"""Bar charts of the medians in bench/results/raw.jsonl (bench/README.md):
writes the PNG named on the command line (default docs/benchmarks.png).
Needs matplotlib (Debian: python3-matplotlib)."""

import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROXIES = ["rginx", "nginx", "haproxy", "caddy"]
COLORS = ["#c0392b", "#27ae60", "#2980b9", "#8e44ad"]
PANELS = [
    ("WebSocket round trips/s (higher is better)", [("ws64_rps", "64 B"), ("ws4096_rps", "4 KiB")]),
    ("WebSocket p99 latency, µs (lower is better)", [("ws64_p99_us", "64 B"), ("ws4096_p99_us", "4 KiB")]),
    ("HTTP requests/s (higher is better)", [("http_keepalive_rps", "keep-alive upstream"), ("http_close_rps", "new connection")]),
    ("proxy CPU per operation, ns (lower is better)", [("ws64_cpu_ns", "WS round trip"), ("http_keepalive_cpu_ns", "HTTP keep-alive"), ("http_close_cpu_ns", "HTTP new conn")]),
    ("RSS per idle tunnel, bytes (lower is better)", [("idle_tunnel_bytes", "2,000 tunnels")]),
]


def main(raw, out):
    values = {}
    with open(raw) as f:
        for line in f:
            row = json.loads(line)
            values.setdefault((row["proxy"], row["metric"]), []).append(row["value"])
    med = {k: statistics.median(v) for k, v in values.items()}
    fig, axes = plt.subplots(3, 2, figsize=(11, 10))
    for ax, (title, metrics) in zip(axes.flat, PANELS):
        width = 0.8 / len(PROXIES)
        for i, (proxy, color) in enumerate(zip(PROXIES, COLORS)):
            xs = [m + i * width for m in range(len(metrics))]
            ys = [med.get((proxy, metric), 0) for metric, _ in metrics]
            ax.bar(xs, ys, width, label=proxy, color=color)
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))])
        ax.set_xticklabels([label for _, label in metrics])
        ax.set_title(title, fontsize=10)
    axes.flat[0].legend(fontsize=8)
    for ax in list(axes.flat)[len(PANELS):]:
        ax.axis("off")
    fig.suptitle("rginx, nginx, HAProxy, Caddy: medians of one run (bench/run.sh)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "bench/results/raw.jsonl",
        sys.argv[2] if len(sys.argv) > 2 else "docs/benchmarks.png",
    )
