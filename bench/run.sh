#!/usr/bin/env bash
# rginx against nginx, HAProxy and Caddy on this machine, in one run
# (bench/README.md). Usage:
#
#   bench/run.sh                 # 3 rounds of 3 s per figure
#   ROUNDS=5 SECS=5 bench/run.sh
#
# Needs the Debian packages nginx, haproxy, caddy and wrk (installed with
# apt-get when missing and running as root). Results: one JSON line per
# figure in bench/results/raw.jsonl, the medians and ratios in
# bench/results/summary.md (printed too).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
IDLE=${IDLE:-2000}
CONNS=${CONNS:-50}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/results
WORK=$(mktemp -d /tmp/rginx-bench.XXXXXX)
BACKEND=127.0.0.1:19001
PORT=18080
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

need() {
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            if [ "$(id -u)" = 0 ]; then
                apt-get install -y nginx haproxy caddy wrk >/dev/null
            else
                echo "bench: $tool is missing (apt-get install nginx haproxy caddy wrk)" >&2
                exit 2
            fi
        fi
    done
}
need nginx haproxy caddy wrk
PATH=$PATH:/usr/sbin

cd "$ROOT"
cargo build --release -p rginx -p rginx-loadgen >/dev/null 2>&1 || cargo build --release -p rginx -p rginx-loadgen
RGINX=$ROOT/target/release/rginx
LOADGEN=$ROOT/target/release/loadgen
CORES=$(nproc)
mkdir -p "$OUT" "$WORK/logs"
: > "$OUT/raw.jsonl"

# rginx and nginx read the same nginx.conf
sed -e "s#@PORT@#$PORT#g" -e "s#@BACKEND@#$BACKEND#g" -e "s#@WORK@#$WORK#g" \
    "$ROOT/bench/nginx.conf" > "$WORK/nginx.conf"
sed -e "s#@PORT@#$PORT#g" -e "s#@BACKEND@#$BACKEND#g" -e "s#@CORES@#$CORES#g" \
    "$ROOT/bench/haproxy.cfg" > "$WORK/haproxy.cfg"
sed -e "s#@PORT@#$PORT#g" -e "s#@BACKEND@#$BACKEND#g" \
    "$ROOT/bench/Caddyfile" > "$WORK/Caddyfile"

start_proxy() {
    case $1 in
        rginx) "$RGINX" -c "$WORK/nginx.conf" 2>"$WORK/logs/rginx.err" & ;;
        nginx) nginx -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/logs/error.log" \
                   -g "daemon off;" 2>"$WORK/logs/nginx.err" & ;;
        haproxy) haproxy -f "$WORK/haproxy.cfg" 2>"$WORK/logs/haproxy.err" & ;;
        caddy) XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK \
                   caddy run --config "$WORK/Caddyfile" --adapter caddyfile \
                   >"$WORK/logs/caddy.out" 2>&1 & ;;
    esac
    PROXY_PID=$!
}

# milliseconds until the port accepts a connection
wait_port() {
    local start=$(date +%s%N)
    for _ in $(seq 1 2000); do
        if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
            echo $(( ($(date +%s%N) - start) / 1000000 ))
            return 0
        fi
        sleep 0.005
    done
    echo "bench: port $PORT never opened" >&2
    cat "$WORK"/logs/*.err "$WORK"/logs/*.out 2>/dev/null | tail -5 >&2
    return 1
}

# KiB of resident memory of a process and its children
rss_tree() { tree_sum "$1" status '/^VmRSS:/ {print $2}'; }

# CPU time (user + system, clock ticks) of a process and its children: the
# proxy's own cost per operation, which is what a proxy controls on a box it
# shares with the load generator and the backend
cpu_tree() { tree_sum "$1" stat '{print $14 + $15}'; }

# the sum over a process and its children of what an awk program prints
# from each one's /proc/PID/FILE
tree_sum() { # pid file program
    local total=0 pid
    for pid in $1 $(pgrep -P "$1" || true); do
        total=$(( total + $(awk "$3" /proc/$pid/$2 2>/dev/null || echo 0) ))
    done
    echo $total
}

# nanoseconds of CPU per operation: ticks before, ticks after, operations
cpu_per_op() {
    local hz
    hz=$(getconf CLK_TCK)
    echo $(( ($2 - $1) * 1000000000 / hz / ($3 > 0 ? $3 : 1) ))
}

record() { # proxy metric value
    echo "{\"round\":$ROUND,\"proxy\":\"$1\",\"metric\":\"$2\",\"value\":$3}" >> "$OUT/raw.jsonl"
}

"$LOADGEN" backend $BACKEND &
sleep 0.3

for ROUND in $(seq 1 "$ROUNDS"); do
    for proxy in rginx nginx haproxy caddy; do
        start_proxy $proxy
        record $proxy start_ms "$(wait_port)"
        sleep 0.3
        for size in 64 4096; do
            cpu0=$(cpu_tree $PROXY_PID)
            line=$("$LOADGEN" ws 127.0.0.1:$PORT /ws/ "$CONNS" $size "$SECS")
            cpu1=$(cpu_tree $PROXY_PID)
            rps=$(echo "$line" | sed 's/.*"round_trips_per_s":\([0-9]*\).*/\1/')
            p50=$(echo "$line" | sed 's/.*"p50_us":\([0-9]*\).*/\1/')
            p99=$(echo "$line" | sed 's/.*"p99_us":\([0-9]*\).*/\1/')
            count=$(echo "$line" | sed 's/.*"count":\([0-9]*\).*/\1/')
            record $proxy "ws${size}_rps" "$rps"
            record $proxy "ws${size}_p50_us" "$p50"
            record $proxy "ws${size}_p99_us" "$p99"
            record $proxy "ws${size}_cpu_ns" "$(cpu_per_op "$cpu0" "$cpu1" "$count")"
        done
        for path in / /close/; do
            cpu0=$(cpu_tree $PROXY_PID)
            out=$(wrk -c"$CONNS" -t2 -d"${SECS}s" "http://127.0.0.1:$PORT$path")
            cpu1=$(cpu_tree $PROXY_PID)
            rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
            count=$(echo "$out" | awk '/requests in/ {print $1}')
            name=http_keepalive
            [ "$path" = /close/ ] && name=http_close
            record $proxy ${name}_rps "${rps:-0}"
            record $proxy ${name}_cpu_ns "$(cpu_per_op "$cpu0" "$cpu1" "${count:-0}")"
        done
        before=$(rss_tree $PROXY_PID)
        mkfifo "$WORK/hold"
        "$LOADGEN" idle 127.0.0.1:$PORT /ws/ "$IDLE" < "$WORK/hold" > "$WORK/idle.out" &
        HOLDER=$!
        exec 4>"$WORK/hold"
        for _ in $(seq 1 600); do
            grep -q ready "$WORK/idle.out" 2>/dev/null && break
            sleep 0.05
        done
        sleep 0.5
        after=$(rss_tree $PROXY_PID)
        exec 4>&-
        wait $HOLDER 2>/dev/null || true
        rm -f "$WORK/hold"
        record $proxy idle_tunnel_bytes $(( (after - before) * 1024 / IDLE ))
        kill $PROXY_PID 2>/dev/null || true
        wait $PROXY_PID 2>/dev/null || true
        pkill -f "$WORK/" 2>/dev/null || true
        # the next proxy needs the port: wait until nothing answers there
        for _ in $(seq 1 200); do
            (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || break
            sleep 0.05
        done
        sleep 0.3
    done
done

# config load: 10,000 locations, read by `rginx check` and `nginx -t` (the
# two that read nginx.conf), wall time of the whole command
python3 - "$WORK/big.conf" <<'PY'
import sys
out = ["events {}", "http {", "  upstream u { server 127.0.0.1:19001; }"]
for s in range(10):
    out.append(f"  server {{ listen 127.0.0.1:{20000 + s};")
    for l in range(1000):
        out.append(f"    location /s{s}/l{l}/ {{ proxy_pass http://u; proxy_set_header X-L {l}; }}")
    out.append("  }")
out.append("}")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
for ROUND in $(seq 1 "$ROUNDS"); do
    start=$(date +%s%N)
    "$RGINX" check -q --no-lint -c "$WORK/big.conf" 2>/dev/null || true
    record rginx config_load_10k_ms $(( ($(date +%s%N) - start) / 1000000 ))
    start=$(date +%s%N)
    nginx -t -q -p "$WORK/" -c "$WORK/big.conf" -e "$WORK/logs/t.log" 2>/dev/null || true
    record nginx config_load_10k_ms $(( ($(date +%s%N) - start) / 1000000 ))
done

python3 "$ROOT/bench/summarize.py" "$OUT/raw.jsonl" | tee "$OUT/summary.md"
# the plot needs matplotlib (Debian: python3-matplotlib, for /usr/bin/python3)
plotter=""
for py in python3 /usr/bin/python3; do
    if "$py" -c "import matplotlib" 2>/dev/null; then plotter=$py; break; fi
done
if [ -z "$plotter" ] && [ "$(id -u)" = 0 ]; then
    apt-get install -y python3-matplotlib >/dev/null 2>&1 && plotter=/usr/bin/python3
fi
if [ -n "$plotter" ]; then
    "$plotter" "$ROOT/bench/plot.py" "$OUT/raw.jsonl" "$OUT/benchmarks.png"
    echo "plot: $OUT/benchmarks.png"
fi
