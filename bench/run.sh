#!/usr/bin/env bash
# rginx against nginx, HAProxy and Caddy on this machine, in one run
# (bench/README.md). Usage:
#
#   bench/run.sh                 # 3 rounds of 3 s per figure
#   ROUNDS=5 SECS=5 bench/run.sh
#   ONLY=idle_http,burst bench/run.sh            # some figures only
#   PROXIES=rginx RGINX_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
#       RESULTS=bench/results/jemalloc bench/run.sh   # rginx on another malloc
#
# Figures (ONLY takes a comma-separated list of them; default all): start,
# ws, http, tls, idle, idle_http, burst, config. The other knobs are listed below
# and in bench/README.md.
#
# Needs the Debian packages nginx, haproxy, caddy and wrk (installed with
# apt-get when missing and running as root). Results: one JSON line per
# figure in bench/results/raw.jsonl, the medians and ratios in
# bench/results/summary.md (printed too).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-3}
IDLE=${IDLE:-2000}               # idle WebSocket tunnels
IDLE_HTTP=${IDLE_HTTP:-3000}     # idle keep-alive client connections
BURST=${BURST:-130000}           # at most this many new connections ...
BURST_SECS=${BURST_SECS:-20}     # ... in at most this many seconds
BURST_WAIT=${BURST_WAIT:-2}      # seconds between the burst and its RSS
CONNS=${CONNS:-50}
BURST_CONNS=${BURST_CONNS:-1000}  # connections at a time in the burst
PROXIES=${PROXIES:-rginx nginx haproxy caddy}
ONLY=${ONLY:-}
RGINX_PRELOAD=${RGINX_PRELOAD:-} # LD_PRELOAD for rginx (another malloc)
RGINX_ENV=${RGINX_ENV:-}         # more VAR=value words for rginx's environment
RGINX_BIN=${RGINX_BIN:-}         # a prebuilt rginx instead of building one
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${RESULTS:-$ROOT/bench/results}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
WORK=$(mktemp -d /tmp/rginx-bench.XXXXXX)
BACKEND=127.0.0.1:19001
PORT=18080
TLSPORT=18443
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

FIGURES=" start ws http tls idle idle_http burst config "
for f in ${ONLY//,/ }; do
    case $FIGURES in *" $f "*) ;; *) echo "bench: no figure $f (one of:$FIGURES)" >&2; exit 2 ;; esac
done
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
# the library LD_PRELOAD gets for a proxy: RGINX_PRELOAD for rginx, the
# system's libNAME.so for rginx+NAME (rginx+jemalloc, rginx+mimalloc)
preload_of() {
    case $1 in
        rginx) echo "$RGINX_PRELOAD" ;;
        # (awk reads to the end: an early exit would kill ldconfig with
        # SIGPIPE, and pipefail the script)
        rginx+*) ldconfig -p | awk -v lib="lib${1#rginx+}.so" \
                     'index($1, lib) == 1 && !found {print $NF; found = 1}' ;;
    esac
}

if [ -n "$RGINX_PRELOAD" ] && [ ! -e "$RGINX_PRELOAD" ]; then
    echo "bench: RGINX_PRELOAD=$RGINX_PRELOAD does not exist" >&2
    exit 2
fi
for proxy in $PROXIES; do
    case $proxy in
        rginx|nginx|haproxy|caddy) ;;
        rginx+*) if [ -z "$(preload_of "$proxy")" ]; then
                     echo "bench: no lib${proxy#rginx+}.so for $proxy (ldconfig -p)" >&2
                     exit 2
                 fi ;;
        *) echo "bench: no proxy $proxy (rginx, rginx+MALLOC, nginx, haproxy, caddy)" >&2
           exit 2 ;;
    esac
done

# descriptors: the proxy holds two per tunnel and one per idle client (and
# the load generator as many), which the default 1024 does not cover
nofile=$(( 2 * (IDLE > IDLE_HTTP ? IDLE : IDLE_HTTP) + 1024 ))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $nofile ]; then
    ulimit -n $nofile 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $nofile ]; then
        echo "bench: ulimit -n is $(ulimit -n), the idle figures want $nofile" >&2
    fi
fi

cd "$ROOT"
if [ -n "${RGINX_BIN:-}" ]; then
    # a binary built elsewhere (e.g. from a clean `git archive` while the
    # working tree is being edited): only the load generator is built here
    RGINX=$(readlink -f "$RGINX_BIN")
    cargo build --release -p rginx-loadgen >/dev/null 2>&1 || cargo build --release -p rginx-loadgen
else
    cargo build --release -p rginx -p rginx-loadgen >/dev/null 2>&1 || cargo build --release -p rginx -p rginx-loadgen
    RGINX=$ROOT/target/release/rginx
fi
LOADGEN=$ROOT/target/release/loadgen
CORES=$(nproc)
mkdir -p "$OUT" "$WORK/logs"
: > "$OUT/raw.jsonl"

# one self-signed ECDSA certificate for every proxy (HAProxy wants it and
# its key in one file)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=bench.test -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
cat "$WORK/tls.crt" "$WORK/tls.key" > "$WORK/tls.pem"
# rginx and nginx read the same nginx.conf
fill() { sed -e "s#@PORT@#$PORT#g" -e "s#@TLSPORT@#$TLSPORT#g" -e "s#@BACKEND@#$BACKEND#g" \
             -e "s#@WORK@#$WORK#g" -e "s#@CORES@#$CORES#g" "$1"; }
fill "$ROOT/bench/nginx.conf" > "$WORK/nginx.conf"
fill "$ROOT/bench/haproxy.cfg" > "$WORK/haproxy.cfg"
fill "$ROOT/bench/Caddyfile" > "$WORK/Caddyfile"

start_proxy() {
    case $1 in
        # shellcheck disable=SC2086 # RGINX_ENV is a list of words
        rginx|rginx+*)
            local preload
            preload=$(preload_of "$1")
            env ${preload:+LD_PRELOAD=$preload} $RGINX_ENV \
                "$RGINX" -c "$WORK/nginx.conf" -g "daemon off;" 2>"$WORK/logs/rginx.err" & ;;
        nginx) nginx -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/logs/error.log" \
                   -g "daemon off;" 2>"$WORK/logs/nginx.err" & ;;
        haproxy) haproxy -f "$WORK/haproxy.cfg" 2>"$WORK/logs/haproxy.err" & ;;
        caddy) XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK \
                   caddy run --config "$WORK/Caddyfile" --adapter caddyfile \
                   >"$WORK/logs/caddy.out" 2>&1 & ;;
    esac
    PROXY_PID=$!
}

# stops the proxy and its children (by process id) and waits until the
# port is free for the next one
stop_proxy() {
    local kids
    kids=$(pgrep -P $PROXY_PID || true)
    kill $PROXY_PID 2>/dev/null || true
    wait $PROXY_PID 2>/dev/null || true
    # shellcheck disable=SC2086
    [ -n "$kids" ] && kill $kids 2>/dev/null || true
    for _ in $(seq 1 200); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || break
        sleep 0.05
    done
    sleep 0.3
}

# for the figures that measure what memory the proxy keeps (idle_http,
# burst): a proxy started afresh unless nothing ran on this one yet, then
# warmed up with 100 connections (threads, allocator arenas, the upstream
# pool), so that "before" is its RSS at rest
fresh_proxy() { # proxy
    if [ "$USED" = 1 ]; then
        stop_proxy
        start_proxy "$1"
        wait_port >/dev/null
        sleep 0.3
    fi
    "$LOADGEN" burst 127.0.0.1:$PORT 10 100 5 >/dev/null
    sleep 0.5
    USED=1
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

# the number after "KEY": in a JSON line
json_field() { echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"; }

# RSS of the proxy tree (KiB) before and while a `loadgen` holder (idle or
# idle-http) keeps its connections open; prints "BEFORE AFTER", or nothing
# when the holder did not open them all
hold_rss() { # count loadgen-arguments...
    local count=$1 before after ready
    shift
    before=$(rss_tree $PROXY_PID)
    mkfifo "$WORK/hold"
    "$LOADGEN" "$@" < "$WORK/hold" > "$WORK/hold.out" 2>"$WORK/hold.err" &
    local holder=$!
    exec 4>"$WORK/hold"
    for _ in $(seq 1 1200); do
        grep -q ready "$WORK/hold.out" 2>/dev/null && break
        kill -0 $holder 2>/dev/null || break
        sleep 0.05
    done
    sleep 0.5
    after=$(rss_tree $PROXY_PID)
    ready=$(awk '/^ready/ {print $2}' "$WORK/hold.out")
    exec 4>&-
    wait $holder 2>/dev/null || true
    rm -f "$WORK/hold"
    if [ "${ready:-0}" = "$count" ]; then
        echo "$before $after"
    else
        echo "bench: loadgen $1 opened ${ready:-0} of $count: $(cat "$WORK/hold.err")" >&2
    fi
}

"$LOADGEN" backend $BACKEND &
sleep 0.3

for ROUND in $(seq 1 "$ROUNDS"); do
    for proxy in $PROXIES; do
        start_proxy $proxy
        ms=$(wait_port)
        want start && record $proxy start_ms "$ms"
        lib=$(preload_of $proxy)
        if [ -n "$lib" ] && ! grep -q "$(readlink -f "$lib")" /proc/$PROXY_PID/maps; then
            echo "bench: $proxy runs without $lib" >&2
            exit 1
        fi
        sleep 0.3
        USED=0
        want ws && USED=1 && for size in 64 4096; do
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
        want http && USED=1 && for path in / /close/; do
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
        # TLS: full handshakes and resumed ones (openssl s_time, one
        # connection at a time, TLS 1.3), and HTTPS keep-alive requests
        want tls && USED=1 && for mode in new reuse; do
            cpu0=$(cpu_tree $PROXY_PID)
            out=$(openssl s_time -connect 127.0.0.1:$TLSPORT -$mode -time "$SECS" 2>/dev/null || true)
            cpu1=$(cpu_tree $PROXY_PID)
            count=$(echo "$out" | awk '/connections in [0-9.]+ real/ {print $1; exit}')
            per_s=$(echo "$out" | awk '/connections in [0-9.]+ real/ {printf "%d", $1 / $4; exit}')
            name=tls_full
            [ $mode = reuse ] && name=tls_resumed
            record $proxy ${name}_per_s "${per_s:-0}"
            record $proxy ${name}_cpu_ns "$(cpu_per_op "$cpu0" "$cpu1" "${count:-0}")"
        done
        want tls && {
            cpu0=$(cpu_tree $PROXY_PID)
            out=$(wrk -c"$CONNS" -t2 -d"${SECS}s" "https://127.0.0.1:$TLSPORT/")
            cpu1=$(cpu_tree $PROXY_PID)
            rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
            count=$(echo "$out" | awk '/requests in/ {print $1}')
            record $proxy https_keepalive_rps "${rps:-0}"
            record $proxy https_keepalive_cpu_ns "$(cpu_per_op "$cpu0" "$cpu1" "${count:-0}")"
        }
        if want idle; then
            USED=1
            read -r before after < <(hold_rss "$IDLE" idle 127.0.0.1:$PORT /ws/ "$IDLE") &&
                record $proxy idle_tunnel_bytes $(( (after - before) * 1024 / IDLE ))
        fi
        # keep-alive clients: one GET / each, then idle
        if want idle_http; then
            fresh_proxy $proxy
            read -r before after < <(hold_rss "$IDLE_HTTP" idle-http 127.0.0.1:$PORT "$IDLE_HTTP") &&
                record $proxy idle_http_bytes $(( (after - before) * 1024 / IDLE_HTTP ))
        fi
        # churn: new connections with one request each, then the RSS the
        # proxy keeps BURST_WAIT seconds later (does it give memory back?)
        if want burst; then
            fresh_proxy $proxy
            before=$(rss_tree $PROXY_PID)
            peak=$before
            : > "$WORK/burst.out"
            "$LOADGEN" burst 127.0.0.1:$PORT "$BURST_CONNS" "$BURST" "$BURST_SECS" \
                > "$WORK/burst.out" &
            burster=$!
            while kill -0 $burster 2>/dev/null && [ ! -s "$WORK/burst.out" ]; do
                now=$(rss_tree $PROXY_PID)
                [ "$now" -gt "$peak" ] && peak=$now
                sleep 0.2
            done
            wait $burster || true
            now=$(rss_tree $PROXY_PID)
            [ "$now" -gt "$peak" ] && peak=$now
            sleep "$BURST_WAIT"
            after=$(rss_tree $PROXY_PID)
            line=$(cat "$WORK/burst.out")
            if [ -z "$line" ]; then
                echo "bench: loadgen burst through $proxy printed nothing" >&2
                line='{"connections":0,"errors":0,"per_s":0}'
            fi
            record $proxy burst_conns "$(json_field "$line" connections)"
            record $proxy burst_conn_per_s "$(json_field "$line" per_s)"
            record $proxy burst_errors "$(json_field "$line" errors)"
            record $proxy burst_rss_before_kb "$before"
            record $proxy burst_rss_peak_kb "$peak"
            record $proxy burst_rss_after_kb "$after"
        fi
        stop_proxy
    done
done

# config load: 10,000 locations, a 100,000-entry map and 10,000 servers,
# read by `rginx check` and `nginx -t` (the two that read nginx.conf), wall
# time of the whole command
python3 - "$WORK/big.conf" "$WORK/map.conf" "$WORK/names.conf" <<'PY'
import sys
out = ["events {}", "http {", "  upstream u { server 127.0.0.1:19001; }"]
for s in range(10):
    out.append(f"  server {{ listen 127.0.0.1:{20000 + s};")
    for l in range(1000):
        out.append(f"    location /s{s}/l{l}/ {{ proxy_pass http://u; proxy_set_header X-L {l}; }}")
    out.append("  }")
out.append("}")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
# a map of 100,000 host names, and 10,000 servers with two names each
out = ["events {}", "http {", "  map $host $m {", "    default 0;"]
out += [f"    host{i}.example.com {i};" for i in range(100000)]
out += ["  }", "  server { listen 127.0.0.1:20100; location / { proxy_pass http://127.0.0.1:19001; proxy_set_header X-M $m; } }", "}"]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
out = ["events {}", "http {", "  server_names_hash_max_size 65536;", "  server_names_hash_bucket_size 128;"]
out += [f"  server {{ listen 127.0.0.1:20101; server_name s{i}.example.com www.s{i}.example.com; location / {{ proxy_pass http://127.0.0.1:19001; }} }}" for i in range(10000)]
out += ["}"]
open(sys.argv[3], "w").write("\n".join(out) + "\n")
PY
# milliseconds `rginx check` and `nginx -t` take on a configuration
load_ms() { # proxy conf
    local start=$(date +%s%N)
    case $1 in
        rginx) "$RGINX" check -q --no-lint -c "$2" 2>/dev/null || true ;;
        nginx) nginx -t -q -p "$WORK/" -c "$2" -e "$WORK/logs/t.log" 2>/dev/null || true ;;
    esac
    echo $(( ($(date +%s%N) - start) / 1000000 ))
}
want config && for ROUND in $(seq 1 "$ROUNDS"); do
    for proxy in rginx nginx; do
        record $proxy config_load_10k_ms "$(load_ms $proxy "$WORK/big.conf")"
        record $proxy config_load_map100k_ms "$(load_ms $proxy "$WORK/map.conf")"
        record $proxy config_load_names10k_ms "$(load_ms $proxy "$WORK/names.conf")"
    done
done

{
    if [ -n "$RGINX_PRELOAD$RGINX_ENV" ]; then
        echo "rginx ran with: ${RGINX_PRELOAD:+LD_PRELOAD=$RGINX_PRELOAD }$RGINX_ENV"
        echo
    fi
    python3 "$ROOT/bench/summarize.py" "$OUT/raw.jsonl"
} | tee "$OUT/summary.md"
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
