#!/usr/bin/env bash
# Runs bench/compare_runtimes.py: berth vs onnxruntime, xgboost and lightgbm on the same rows.
# Uses the fixtures' virtualenv (fixtures/requirements.txt pins every runtime) and builds
# berth's `throughput` example in release mode. Arguments go to the Python script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=fixtures/.venv
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r fixtures/requirements.txt

lib="$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* | sort | tail -n 1)"
export ORT_DYLIB_PATH="$PWD/$lib"
cargo build --release --locked -p berth-runtime --example throughput
exec "$venv/bin/python" bench/compare_runtimes.py "$@"
