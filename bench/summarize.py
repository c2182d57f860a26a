#!/usr/bin/env python3
"""Medians per proxy and figure from bench/results/raw.jsonl, and rginx's
ratio to each peer and to the best of them (bench/README.md)."""

import json
import statistics
import sys

PROXIES = ["rginx", "nginx", "haproxy", "caddy"]
# (metric, label, higher is better, unit)
METRICS = [
    ("ws64_rps", "WebSocket round trips/s, 64 B", True, ""),
    ("ws64_p50_us", "WebSocket p50, 64 B", False, "µs"),
    ("ws64_p99_us", "WebSocket p99, 64 B", False, "µs"),
    ("ws4096_rps", "WebSocket round trips/s, 4 KiB", True, ""),
    ("ws4096_p99_us", "WebSocket p99, 4 KiB", False, "µs"),
    ("http_keepalive_rps", "HTTP req/s, keep-alive upstream (wrk -c50)", True, ""),
    ("http_close_rps", "HTTP req/s, new upstream connection per request", True, ""),
    ("ws64_cpu_ns", "proxy CPU per WebSocket round trip, 64 B (ns)", False, ""),
    ("http_keepalive_cpu_ns", "proxy CPU per HTTP request, keep-alive (ns)", False, ""),
    ("http_close_cpu_ns", "proxy CPU per HTTP request, new connection (ns)", False, ""),
    ("idle_tunnel_bytes", "RSS per idle tunnel (bytes)", False, ""),
    ("start_ms", "start-up to first accepted connection (ms)", False, ""),
    ("config_load_10k_ms", "check a 10,000-location config (ms)", False, ""),
]


def main(path):
    values = {}
    rounds = set()
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            rounds.add(row["round"])
            values.setdefault((row["proxy"], row["metric"]), []).append(row["value"])
    med = {k: statistics.median(v) for k, v in values.items()}
    print(f"Medians of {len(rounds)} rounds, all proxies in the same run.\n")
    print("| figure | " + " | ".join(PROXIES) + " | rginx / best peer |")
    print("|---|" + "---|" * (len(PROXIES) + 1))
    for metric, label, higher, unit in METRICS:
        cells = []
        for p in PROXIES:
            v = med.get((p, metric))
            cells.append("-" if v is None else f"{v:,.0f}{unit}")
        peers = [med[(p, metric)] for p in PROXIES[1:] if (p, metric) in med]
        ours = med.get(("rginx", metric))
        ratio = "-"
        if peers and ours:
            best = max(peers) if higher else min(peers)
            if best:
                ratio = f"{ours / best:.2f}"
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/raw.jsonl")
