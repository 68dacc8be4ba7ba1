#!/usr/bin/env bash
# Serving throughput with monitoring on and off, in the same run: `berth up` serving the XGBoost
# fixture (registered with reference data, so its inputs and outputs are profiled) to single-row
# V2 JSON requests, once with prediction records (group durability, SQLite) and live profiles,
# once with `--no-records --no-profiles`; each twice, alternating, to even out machine noise.
# Loopback only; each wrk run is bounded by its duration. Usage: bench/monitoring_overhead.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
seconds="${1:-15}"
connections=64

cargo build --release --locked -p berth --bin berth 2>&1 | tail -n 1
berth=target/release/berth
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Reference data as the model takes it: the evaluation features without their id column.
cut -d, -f2- fixtures/data/eval_features.csv > "$work/reference.csv"
"$berth" --store "$work/data" models register churn fixtures/models/xgb_classifier.json \
    --reference "$work/reference.csv" > /dev/null
"$berth" --store "$work/data" endpoints set churn churn/1 > /dev/null

body="$(v2_body)"
infer_lua "$work/infer.lua" "$body"

run() { # name [up flags...]
    local name="$1"; shift
    local p; p="$(free_port)"
    "$berth" --store "$work/data" up --no-example --listen "127.0.0.1:$p" "$@" 2> "$work/$name.log" &
    local pid=$!
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null -X POST -H 'content-type: application/json' -d "$body" \
            "http://127.0.0.1:$p/v2/models/churn/infer" && break
        sleep 0.1
    done
    wrk -t1 -c"$connections" -d"${seconds}s" --latency -s "$work/infer.lua" \
        "http://127.0.0.1:$p/v2/models/churn/infer" > "$work/$name.txt"
    echo "$name $(wrk_figures "$work/$name.txt") $(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
    kill -TERM "$pid"; wait "$pid" || true
}

echo "monitoring req/s p50 p99 non-2xx RSS_kB  (wrk -t1 -c$connections -d${seconds}s, 127.0.0.1)"
for round in 1 2; do
    run "on-$round" ${ON_FLAGS:-}
    run "off-$round" --no-records --no-profiles
done
records="$(python3 -c "import sqlite3; print(sqlite3.connect('$work/data/berth.db').execute('select coalesce(sum(records), 0) from prediction_segments').fetchone()[0])")"
echo "prediction records stored by the 'on' runs: $records"
