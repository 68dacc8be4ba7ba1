#!/usr/bin/env bash
# berth's test command: everything, from a clean clone.
#
# Creates ./.venv with the Python packages the tests need (requirements-test.txt: the ONNX
# Runtime library that berth loads at run time), then runs the whole Rust test suite.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p berth-runtime`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python="${PYTHON:-python3}"
stamp=.venv/.requirements-test.sha256
want="$(sha256sum requirements-test.txt | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "==> preparing .venv (requirements-test.txt)"
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
    echo "$want" > "$stamp"
fi

lib="$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* 2>/dev/null | sort | tail -n 1 || true)"
if [[ -z "$lib" ]]; then
    echo "error: onnxruntime did not install into .venv; ONNX tests cannot run" >&2
    exit 1
fi
export ORT_DYLIB_PATH="$PWD/$lib"

echo "==> cargo test (ORT_DYLIB_PATH=$ORT_DYLIB_PATH)"
cargo test --workspace --locked "$@"
