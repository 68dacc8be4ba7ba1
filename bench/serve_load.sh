#!/usr/bin/env bash
# Single-row V2 JSON requests on the XGBoost fixture through `berth serve`, against a bare hyper
# "hello" server on the same machine in the same run: req/s, p50/p99 latency, and RSS.
# Loopback only; each wrk run is bounded by its duration. Usage: bench/serve_load.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
seconds="${1:-15}"
connections=64

cargo build --release --locked -p berth -p berth-serve --example hello --bin berth 2>&1 | tail -n 1
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

body="$(v2_body)"
infer_lua "$work/infer.lua" "$body"

measure() { # name url [lua]
    local name="$1" url="$2" lua="${3:-}"
    local args=(-t1 -c"$connections" -d"${seconds}s" --latency)
    [[ -n "$lua" ]] && args+=(-s "$lua")
    wrk "${args[@]}" "$url" > "$work/$name.txt"
    echo "$name $(wrk_figures "$work/$name.txt")"
}

hello_port="$(free_port)"
target/release/examples/hello "127.0.0.1:$hello_port" 2> /dev/null &
hello_pid=$!
berth_port="$(free_port)"
target/release/berth serve fixtures/models/xgb_classifier.json --listen "127.0.0.1:$berth_port" 2> /dev/null &
berth_pid=$!
sleep 1
curl -fs -o /dev/null -X POST -H 'content-type: application/json' \
    -d "$body" \
    "http://127.0.0.1:$berth_port/v2/models/xgb_classifier/infer"

echo "server req/s p50 p99 non-2xx  (wrk -t1 -c$connections -d${seconds}s, 127.0.0.1)"
measure hello "http://127.0.0.1:$hello_port/"
echo "hello RSS $(rss_kb $hello_pid) kB"
measure berth "http://127.0.0.1:$berth_port/v2/models/xgb_classifier/infer" "$work/infer.lua"
echo "berth RSS $(rss_kb $berth_pid) kB (peak $(hwm_kb $berth_pid) kB)"
