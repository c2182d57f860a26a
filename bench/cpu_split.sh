#!/usr/bin/env bash
# Where a proxied keep-alive request's CPU goes: user and system time per
# request of each proxy's process tree, and of the backend, under
# `wrk -c50 -t2` on `/` of bench/nginx.conf (bench/README.md). Usage:
#
#   bench/cpu_split.sh                         # nginx rginx haproxy, 8 s each
#   SECS=15 PROXIES="rginx nginx" bench/cpu_split.sh
#
# On a machine whose cores the load generator and the backend share with the
# proxy, requests/s is set by the sum of all three: this shows how much of a
# proxy's cost is the kernel's (the same socket calls for every proxy) and
# how much is its own code.
set -euo pipefail

SECS=${SECS:-8}
PROXIES=${PROXIES:-nginx rginx haproxy}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/rginx-split.XXXXXX)
mkdir -p "$WORK/logs"
PORT=18091
BACKEND=127.0.0.1:19002
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PATH=$PATH:/usr/sbin

for tool in wrk $PROXIES; do
    [ "$tool" = rginx ] && continue
    command -v "$tool" >/dev/null || { echo "cpu_split: $tool is missing" >&2; exit 2; }
done
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p rginx -p rginx-loadgen -q
sed -e "s#@PORT@#$PORT#g" -e "s#@BACKEND@#$BACKEND#g" -e "s#@WORK@#$WORK#g" \
    "$ROOT/bench/nginx.conf" > "$WORK/nginx.conf"
sed -e "s#@PORT@#$PORT#g" -e "s#@BACKEND@#$BACKEND#g" -e "s#@CORES@#$(nproc)#g" \
    "$ROOT/bench/haproxy.cfg" > "$WORK/haproxy.cfg"
"$ROOT/target/release/loadgen" backend $BACKEND &
BACKEND_PID=$!
sleep 0.3
TICKS=$(getconf CLK_TCK)

# "user system" clock ticks of the given processes
ticks() { for pid in "$@"; do awk '{print $14, $15}' "/proc/$pid/stat"; done |
          awk '{u += $1; s += $2} END {print u, s}'; }

printf '| proxy | requests/s | user µs/request | system µs/request | total | backend user + system |\n'
printf '|---|---|---|---|---|---|\n'
for proxy in $PROXIES; do
    case $proxy in
        rginx) "$ROOT/target/release/rginx" -c "$WORK/nginx.conf" -g "daemon off;" 2>"$WORK/logs/rginx.err" & ;;
        nginx) nginx -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/logs/error.log" \
                   -g "daemon off;" 2>"$WORK/logs/nginx.err" & ;;
        haproxy) haproxy -f "$WORK/haproxy.cfg" 2>"$WORK/logs/haproxy.err" & ;;
        *) echo "cpu_split: no proxy $proxy (rginx, nginx, haproxy)" >&2; exit 2 ;;
    esac
    pid=$!
    sleep 1
    # shellcheck disable=SC2207 # process ids are words
    tree=($pid $(pgrep -P $pid || true))
    wrk -c50 -t2 -d2s "http://127.0.0.1:$PORT/" >/dev/null   # warm-up
    read -r u0 s0 < <(ticks "${tree[@]}")
    read -r bu0 bs0 < <(ticks $BACKEND_PID)
    out=$(wrk -c50 -t2 -d"${SECS}s" "http://127.0.0.1:$PORT/")
    read -r u1 s1 < <(ticks "${tree[@]}")
    read -r bu1 bs1 < <(ticks $BACKEND_PID)
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v p="$proxy" -v n="$n" -v secs="$SECS" -v tk="$TICKS" \
        -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v bu=$((bu1 - bu0)) -v bs=$((bs1 - bs0)) 'BEGIN {
        us = 1e6 / tk / n
        printf "| %s | %.0f | %.1f | %.1f | %.1f | %.1f |\n",
               p, n / secs, u * us, s * us, (u + s) * us, (bu + bs) * us }'
    kill $pid
    wait $pid 2>/dev/null || true
    sleep 0.5
done
