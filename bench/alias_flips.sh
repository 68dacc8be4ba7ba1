#!/usr/bin/env bash
# Load on `berth up` while the alias it serves is moved back and forth 50 times: every response
# must be 2xx. Loopback only; wrk stops after its duration. Usage: bench/alias_flips.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
seconds="${1:-20}"
cargo build --release --locked -p berth --bin berth 2>&1 | tail -n 1
start_up_with_two_versions "$(mktemp -d)"
infer_lua "$work/infer.lua" "$(v2_body)"
wrk -t1 -c16 -d"${seconds}s" -s "$work/infer.lua" "http://127.0.0.1:$port/v2/models/churn/infer" > "$work/wrk.txt" &
wrk_pid=$!
sleep 1
for i in $(seq 1 50); do
    berth alias set churn@champion $(( i % 2 + 1 )) > /dev/null
    sleep "$(python3 -c "print(($seconds - 3) / 50)")"
done
wait "$wrk_pid"
cat "$work/wrk.txt"
non2xx="$(awk '/Non-2xx/ {print $5}' "$work/wrk.txt")"
moves="$(berth --json audit churn --limit 1000 | python3 -c 'import json,sys; print(sum(e["action"] == "alias.set" for e in json.load(sys.stdin)))')"
echo "alias moves: $moves; non-2xx responses: ${non2xx:-0}"
[[ "${non2xx:-0}" == 0 ]]
