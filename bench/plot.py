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

# colours in the order the run measured the proxies (rginx first)
COLORS = ["#c0392b", "#27ae60", "#2980b9", "#8e44ad", "#e67e22", "#16a085", "#7f8c8d"]
PANELS = [
    ("WebSocket round trips/s (higher is better)", [("ws64_rps", "64 B"), ("ws4096_rps", "4 KiB")]),
    ("WebSocket p99 latency, µs (lower is better)", [("ws64_p99_us", "64 B"), ("ws4096_p99_us", "4 KiB")]),
    ("HTTP requests/s (higher is better)", [("http_keepalive_rps", "keep-alive upstream"), ("http_close_rps", "new connection")]),
    ("proxy CPU per operation, ns (lower is better)", [("ws64_cpu_ns", "WS round trip"), ("http_keepalive_cpu_ns", "HTTP keep-alive"), ("http_close_cpu_ns", "HTTP new conn")]),
    ("RSS per idle connection, bytes (lower is better)", [("idle_tunnel_bytes", "WebSocket tunnel"), ("idle_http_bytes", "keep-alive client")]),
    ("RSS around a connection burst, KiB (lower is better)", [("burst_rss_before_kb", "before"), ("burst_rss_peak_kb", "peak"), ("burst_rss_after_kb", "after")]),
]


def main(raw, out):
    values = {}
    proxies = []
    with open(raw) as f:
        for line in f:
            row = json.loads(line)
            if row["proxy"] not in proxies:
                proxies.append(row["proxy"])
            values.setdefault((row["proxy"], row["metric"]), []).append(row["value"])
    med = {k: statistics.median(v) for k, v in values.items()}
    # the panels with data (a run with ONLY= measures some figures only)
    panels = [
        (title, metrics)
        for title, metrics in PANELS
        if any((p, m) in med for p in proxies for m, _ in metrics)
    ]
    rows = max((len(panels) + 1) // 2, 1)
    fig, axes = plt.subplots(rows, 2, figsize=(11, 10 * rows / 3), squeeze=False)
    for ax, (title, metrics) in zip(axes.flat, panels):
        width = 0.8 / max(len(proxies), 1)
        for i, (proxy, color) in enumerate(zip(proxies, COLORS)):
            xs = [m + i * width for m in range(len(metrics))]
            ys = [med.get((proxy, metric), 0) for metric, _ in metrics]
            ax.bar(xs, ys, width, label=proxy, color=color)
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))])
        ax.set_xticklabels([label for _, label in metrics])
        ax.set_title(title, fontsize=10)
    if panels:
        axes.flat[0].legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(", ".join(proxies) + ": medians of one run (bench/run.sh)")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "bench/results/raw.jsonl",
        sys.argv[2] if len(sys.argv) > 2 else "docs/benchmarks.png",
    )
