#!/usr/bin/env bash
# Single-row V2 JSON requests on the XGBoost fixture through `berth serve`, against a bare hyper
# "hello" server on the same machine in the same run: req/s, p50/p99 latency, and RSS.
# Loopback only; each wrk run is bounded by its duration. Usage: bench/serve_load.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-15}"
connections=64
command -v wrk > /dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

cargo build --release --locked -p berth -p berth-serve --example hello --bin berth 2>&1 | tail -n 1
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# An ordinary row (row 100 of the evaluation set), missing values as null.
row="$(python3 -c 'import csv; r = list(csv.reader(open("fixtures/data/eval_features.csv")))[101][1:]; print(",".join(v or "null" for v in r))')"
cat > "$work/infer.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"input","shape":[1,23],"datatype":"FP32","data":[$row]}]}'
LUA

measure() { # name url [lua]
    local name="$1" url="$2" lua="${3:-}"
    local args=(-t1 -c"$connections" -d"${seconds}s" --latency)
    [[ -n "$lua" ]] && args+=(-s "$lua")
    wrk "${args[@]}" "$url" > "$work/$name.txt"
    local rps p50 p99 errors
    rps="$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")"
    p50="$(awk '$1 == "50%" {print $2}' "$work/$name.txt")"
    p99="$(awk '$1 == "99%" {print $2}' "$work/$name.txt")"
    errors="$(awk '/Non-2xx/ {print $5}' "$work/$name.txt")"
    echo "$name $rps $p50 $p99 ${errors:-0}"
}

hello_port="$(port)"
target/release/examples/hello "127.0.0.1:$hello_port" 2> /dev/null &
hello_pid=$!
berth_port="$(port)"
target/release/berth serve fixtures/models/xgb_classifier.json --listen "127.0.0.1:$berth_port" 2> /dev/null &
berth_pid=$!
sleep 1
curl -fs -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,23],\"datatype\":\"FP32\",\"data\":[$row]}]}" \
    "http://127.0.0.1:$berth_port/v2/models/xgb_classifier/infer"

echo "server req/s p50 p99 non-2xx  (wrk -t1 -c$connections -d${seconds}s, 127.0.0.1)"
measure hello "http://127.0.0.1:$hello_port/"
echo "hello RSS $(rss_kb $hello_pid) kB"
measure berth "http://127.0.0.1:$berth_port/v2/models/xgb_classifier/infer" "$work/infer.lua"
echo "berth RSS $(rss_kb $berth_pid) kB (peak $(hwm_kb $berth_pid) kB)"
