#!/usr/bin/env bash
# User-space instructions per proxied keep-alive request, rginx against
# nginx, counted by callgrind (bench/README.md). Instruction counts do not
# depend on what else the machine is doing, so small changes show where
# bench/run.sh's timings are lost in the noise. Usage:
#
#   bench/instructions.sh              # N=2000 requests, both request kinds
#   N=5000 KINDS=browser PROXIES=rginx bench/instructions.sh
#
# Each figure is (instructions after 100+N requests - after 100) / N, so
# start-up and shutdown cancel out. One worker (worker_processes 1), the
# keep-alive location of bench/nginx.conf, one client sending requests one
# after another (bench/keepalive_client.py): every request costs a full
# turn of the event loop, for nginx as for rginx.
set -euo pipefail

N=${N:-2000}
KINDS=${KINDS:-wrk browser}
PROXIES=${PROXIES:-rginx nginx}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/rginx-instr.XXXXXX)
# rginx drops to `user` as root; callgrind must still write its file
chmod 1777 "$WORK"
mkdir -p "$WORK/logs"
BACKEND=127.0.0.1:19001
PORT=18090
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PATH=$PATH:/usr/sbin

for tool in valgrind nginx python3; do
    command -v "$tool" >/dev/null || { echo "instructions: $tool is missing" >&2; exit 2; }
done
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p rginx -p rginx-loadgen -q
RGINX=$ROOT/target/release/rginx
{
    [ "$(id -u)" = 0 ] && echo "user root;"
    sed -e "s#@PORT@#$PORT#g" -e "s#@BACKEND@#$BACKEND#g" -e "s#@WORK@#$WORK#g" \
        -e "s#^worker_processes auto;#worker_processes 1;#" "$ROOT/bench/nginx.conf"
} > "$WORK/nginx.conf"
"$ROOT/target/release/loadgen" backend $BACKEND &
sleep 0.3

# instructions of one run of PROXY serving COUNT requests of KIND
run() { # proxy count kind
    rm -f "$WORK"/callgrind.out.*
    local cmd
    case $1 in
        rginx) cmd=("$RGINX" -c "$WORK/nginx.conf" -g "daemon off; master_process off;") ;;
        nginx) cmd=(nginx -p "$WORK/" -c "$WORK/nginx.conf" -e "$WORK/logs/error.log"
                    -g "daemon off; master_process off;") ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p" \
        "${cmd[@]}" >"$WORK/logs/valgrind.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 300); do
        (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
        sleep 0.1
    done
    python3 "$ROOT/bench/keepalive_client.py" $PORT "$2" "$3"
    kill -TERM $pid
    wait $pid 2>/dev/null || true
    cat "$WORK"/callgrind.out.* | awk '/^summary:/ {s += $2} END {print s}'
}

printf '| request | %s |\n' "${PROXIES// / | }"
printf '|---|%s\n' "$(for _ in $PROXIES; do printf -- '---|'; done)"
for kind in $KINDS; do
    row="| $kind |"
    for proxy in $PROXIES; do
        a=$(run "$proxy" 100 "$kind")
        b=$(run "$proxy" $((100 + N)) "$kind")
        row="$row $(( (b - a) / N )) |"
    done
    echo "$row"
done
