#!/usr/bin/env python3
"""Medians per proxy and figure from bench/results/raw.jsonl, and the first
proxy's (rginx's) ratio to the best of the others (bench/README.md). The
columns are the proxies in the order the run measured them (PROXIES of
bench/run.sh: rginx, nginx, haproxy, caddy, or rginx+jemalloc and the like)."""

import json
import statistics
import sys

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
    ("tls_full_per_s", "TLS 1.3 full handshakes/s, ECDSA P-256 (s_time, 1 at a time)", True, ""),
    ("tls_resumed_per_s", "TLS 1.3 resumed handshakes/s (s_time -reuse)", True, ""),
    ("https_keepalive_rps", "HTTPS req/s, keep-alive (wrk -c50)", True, ""),
    ("tls_full_cpu_ns", "proxy CPU per full TLS handshake (ns)", False, ""),
    ("tls_resumed_cpu_ns", "proxy CPU per resumed TLS handshake (ns)", False, ""),
    ("https_keepalive_cpu_ns", "proxy CPU per HTTPS request, keep-alive (ns)", False, ""),
    ("idle_tunnel_bytes", "RSS per idle tunnel (bytes)", False, ""),
    ("idle_http_bytes", "RSS per idle keep-alive client connection (bytes)", False, ""),
    ("burst_conn_per_s", "burst: new connections/s, one request each", True, ""),
    ("burst_conns", "burst: connections served", True, ""),
    ("burst_errors", "burst: failed connections", False, ""),
    ("burst_rss_before_kb", "RSS before the burst (KiB)", False, ""),
    ("burst_rss_peak_kb", "RSS peak during the burst (KiB)", False, ""),
    ("burst_rss_after_kb", "RSS after the burst, settled (KiB)", False, ""),
    ("start_ms", "start-up to first accepted connection (ms)", False, ""),
    ("config_load_10k_ms", "check a 10,000-location config (ms)", False, ""),
    ("config_load_map100k_ms", "check a config with a 100,000-entry map (ms)", False, ""),
    ("config_load_names10k_ms", "check a config of 10,000 servers, 20,000 names (ms)", False, ""),
]


def main(path):
    values = {}
    rounds = set()
    proxies = []
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            rounds.add(row["round"])
            if row["proxy"] not in proxies:
                proxies.append(row["proxy"])
            values.setdefault((row["proxy"], row["metric"]), []).append(row["value"])
    med = {k: statistics.median(v) for k, v in values.items()}
    print(f"Medians of {len(rounds)} rounds, all proxies in the same run.\n")
    first = proxies[0] if proxies else "rginx"
    print("| figure | " + " | ".join(proxies) + f" | {first} / best other |")
    print("|---|" + "---|" * (len(proxies) + 1))
    for metric, label, higher, unit in METRICS:
        if not any((p, metric) in med for p in proxies):
            continue
        cells = []
        for p in proxies:
            v = med.get((p, metric))
            cells.append("-" if v is None else f"{v:,.0f}{unit}")
        peers = [med[(p, metric)] for p in proxies[1:] if (p, metric) in med]
        ours = med.get((first, metric))
        ratio = "-"
        if peers and ours:
            best = max(peers) if higher else min(peers)
            if best:
                ratio = f"{ours / best:.2f}"
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/raw.jsonl")
