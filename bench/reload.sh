#!/usr/bin/env bash
# Reloads under load (bench/README.md): rginx on bench/nginx.conf, wrk
# -c50 on a keep-alive upstream for SECS seconds while 200 WebSocket tunnels
# stay open, and a reload (`rginx -s reload`, with a changed header) every
# second. Prints wrk's totals and errors, the reloads, and how many tunnels
# still carry a message at the end. Usage:
#
#   bench/reload.sh              # 10 s, 200 tunnels
#   SECS=30 TUNNELS=1000 bench/reload.sh
set -euo pipefail

SECS=${SECS:-10}
TUNNELS=${TUNNELS:-200}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/rginx-reload.XXXXXX)
BACKEND=127.0.0.1:19001
PORT=18080
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
command -v wrk >/dev/null || { echo "reload: wrk is missing (apt-get install wrk)" >&2; exit 2; }

cd "$ROOT"
cargo build --release -p rginx -p rginx-loadgen >/dev/null 2>&1 || cargo build --release -p rginx -p rginx-loadgen
RGINX=$ROOT/target/release/rginx
LOADGEN=$ROOT/target/release/loadgen
chmod 777 "$WORK"
mkdir -p "$WORK/logs" && chmod 777 "$WORK/logs"

write_conf() { # generation
    sed -e "s#@PORT@#$PORT#g" -e "s#@BACKEND@#$BACKEND#g" -e "s#@WORK@#$WORK#g" \
        -e "s#^error_log \(.*\);#error_log \1 notice;#" \
        -e "s#proxy_set_header Connection \"\";#proxy_set_header Connection \"\"; proxy_set_header X-Generation $1;#" \
        "$ROOT/bench/nginx.conf" > "$WORK/nginx.conf.new"
    mv "$WORK/nginx.conf.new" "$WORK/nginx.conf"
}

"$LOADGEN" backend $BACKEND &
write_conf 0
"$RGINX" -c "$WORK/nginx.conf" -g "daemon off;" 2>"$WORK/logs/rginx.err" &
for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.02; done

mkfifo "$WORK/hold"
"$LOADGEN" idle 127.0.0.1:$PORT /ws/ "$TUNNELS" < "$WORK/hold" > "$WORK/idle.out" &
HOLDER=$!
exec 4>"$WORK/hold"
for _ in $(seq 1 600); do grep -q ready "$WORK/idle.out" 2>/dev/null && break; sleep 0.05; done

wrk -c50 -t2 -d"${SECS}s" "http://127.0.0.1:$PORT/" > "$WORK/wrk.out" &
WRK=$!
reloads=0
failed=0
for i in $(seq 1 $((SECS - 1))); do
    sleep 1
    write_conf "$i"
    if "$RGINX" -s reload -c "$WORK/nginx.conf" 2>>"$WORK/logs/reload.err"; then
        reloads=$((reloads + 1))
    else
        failed=$((failed + 1))
    fi
done
wait $WRK
exec 4>&-
wait $HOLDER || true

echo "reloads: $reloads sent, $failed refused by rginx -s"
grep -c reconfigured "$WORK/logs/error.log" | sed 's/^/reconfigured (error log): /'
grep -E "requests in|Socket errors|Non-2xx" "$WORK/wrk.out" || true
grep -q "Socket errors\|Non-2xx" "$WORK/wrk.out" || echo "errors: none"
echo "tunnels: $(grep ready "$WORK/idle.out" | cut -d' ' -f2) opened, $(grep alive "$WORK/idle.out" | cut -d' ' -f2) still carrying messages after the reloads"
