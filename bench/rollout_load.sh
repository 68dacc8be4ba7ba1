#!/usr/bin/env bash
# Rollouts under load on `berth up` (loopback only; every phase stops by itself):
#  1. a full rollout of a good challenger (shadow, canary 10/50/100 %, each step analysed) while
#     wrk calls the endpoint: it must end promoted;
#  2. 50 forced promotions and 50 rollbacks (`berth rollout start` + `promote`, then `berth
#     rollback`) while wrk calls the endpoint.
# Every response of both phases must be 2xx. Usage: bench/rollout_load.sh [SECONDS per phase]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
seconds="${1:-30}"
cargo build --release --locked -p berth --bin berth 2>&1 | tail -n 1
start_up_with_two_versions "$(mktemp -d)"
infer_lua "$work/infer.lua" "$(v2_body)"
url="http://127.0.0.1:$port/v2/models/churn/infer"
state() { berth --json rollout status churn | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["state"])'; }

echo "phase 1: a full rollout under load (${seconds}s)"
wrk -t1 -c16 -d"${seconds}s" --latency -s "$work/infer.lua" "$url" > "$work/full.txt" &
wrk_pid=$!
sleep 1
bake=$(( (seconds - 4) / 4 ))
berth rollout start churn --to 2 --shadow "${bake}s" --steps 10,50,100 --bake "${bake}s" \
    --min-requests 100 --check error_rate:max_increase=0.01 --check p99_latency_ms:max_ratio=3 \
    --check shadow_agreement:min=0.7 > /dev/null
wait "$wrk_pid"
full_state="$(state)"
read -r rps p50 p99 errors <<< "$(wrk_figures "$work/full.txt")"
echo "  rollout ended $full_state; $rps req/s, p50 $p50, p99 $p99, non-2xx $errors"
berth rollout status churn | sed 's/^/  /'
full_errors="$errors"

echo "phase 2: 50 forced promotions and 50 rollbacks under load (${seconds}s)"
wrk -t1 -c16 -d"${seconds}s" --latency -s "$work/infer.lua" "$url" > "$work/forced.txt" &
wrk_pid=$!
sleep 1
pause="$(python3 -c "print(max(($seconds - 3) / 300, 0.02))")"
for i in $(seq 1 50); do
    berth rollout start churn --to 1 --steps 50,100 --bake 1h --rollback-window 0 > /dev/null
    sleep "$pause"
    berth rollout promote churn --reason "forced $i" > /dev/null
    sleep "$pause"
    berth rollback churn > /dev/null
    sleep "$pause"
done
wait "$wrk_pid"
read -r rps p50 p99 errors <<< "$(wrk_figures "$work/forced.txt")"
moves="$(berth --json audit churn --limit 10000 | python3 -c 'import json,sys; print(sum(e["action"] == "rollout.promoted" for e in json.load(sys.stdin)))')"
echo "  promotions (forced, rollbacks and the phase-1 one): $moves; $rps req/s, p50 $p50, p99 $p99, non-2xx $errors"
[[ "$full_state" == promoted && "$full_errors" == 0 && "$errors" == 0 ]]
