#!/usr/bin/env bash
# Batch scoring at scale (issue 7): `berth score` of 1M rows of the XGBoost fixture, timed
# beside onnxruntime and native xgboost predict on the same rows at the same thread count, and
# the peak memory of scoring 10M rows. Data sets (from the evaluation rows, tiled) go to
# target/score-bench; outputs are deleted after. Usage: bench/score_scale.sh [THREADS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads="${1:-2}"
venv=fixtures/.venv
[[ -x "$venv/bin/python" ]] || bash fixtures/make_fixtures.sh > /dev/null
cargo build --release --locked -p berth --bin berth 2>&1 | tail -n 1
out=target/score-bench
"$venv/bin/python" bench/score_scale.py make "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
berth() { target/release/berth --store "$work/data" --threads "$threads" "$@"; }
berth models register churn fixtures/models/xgb_classifier.json > /dev/null

echo "== 1M rows, $threads threads"
berth score churn/1 --input "$out/data_1m.parquet" --output "$work/scored.csv" 2>&1 | tail -n 1
berth score churn/1 --input "$out/data_1m.parquet" --output "$work/scored.csv" 2>&1 | tail -n 1
"$venv/bin/python" bench/score_scale.py reference "$out/data_1m.parquet" "$threads"

echo "== 10M rows, $threads threads: peak memory"
/usr/bin/time -f "peak RSS %M kB, %e s wall" target/release/berth --store "$work/data" --threads "$threads" \
    score churn/1 --input "$out/data_10m.parquet" --output "$work/scored.csv" 2>&1 | tail -n 2
