#!/usr/bin/env bash
# berth's test command: everything, from a clean clone.
#
# 1. Creates ./.venv with the Python packages the tests need (requirements-test.txt): the ONNX
#    Runtime library berth loads at run time, moto (a local S3 emulator), and the clients.
# 2. Starts moto on 127.0.0.1 (a free port) with a test bucket, for the S3 artifact tests; stops
#    it on exit.
# 3. Drops leftover test schemas from the local PostgreSQL, if there is one.
# 4. Runs the whole Rust test suite (extra arguments go to `cargo test`), then, when run without
#    arguments, the client tests in tests/clients: tritonclient and requests against the binary.
#
# Tests that need PostgreSQL or S3 skip with a message when those are missing, unless
# BERTH_REQUIRE_SERVICES=1 (as in CI), where they fail.
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

# A local S3 emulator for the artifact-store tests, on loopback only.
mkdir -p target
port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
.venv/bin/moto_server -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    if curl -fs -o /dev/null "http://127.0.0.1:$port/"; then break; fi
    sleep 0.1
done
if curl -fs -o /dev/null -X PUT "http://127.0.0.1:$port/berth-test"; then
    export BERTH_TEST_S3_BUCKET=berth-test
    # object_store reads the usual AWS variables; moto accepts any credentials.
    export AWS_ENDPOINT="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
        AWS_ACCESS_KEY_ID=berth-test AWS_SECRET_ACCESS_KEY=berth-test
    echo "==> S3 emulator (moto) on 127.0.0.1:$port, bucket berth-test"
else
    echo "warning: the S3 emulator did not start (target/moto.log); S3 tests will not run" >&2
fi

# Each PostgreSQL test makes its own schema; clear those of earlier runs.
if command -v psql > /dev/null && psql "postgres://postgres@127.0.0.1:5432/test" -qtAc "SELECT 1" > /dev/null 2>&1; then
    PGOPTIONS="-c client_min_messages=warning" psql "postgres://postgres@127.0.0.1:5432/test" -qtA -c \
        "SELECT 'DROP SCHEMA ' || quote_ident(nspname) || ' CASCADE;' FROM pg_namespace WHERE nspname LIKE 'berth\_%'" \
        | PGOPTIONS="-c client_min_messages=warning" psql "postgres://postgres@127.0.0.1:5432/test" -q > /dev/null
fi

echo "==> cargo test (ORT_DYLIB_PATH=$ORT_DYLIB_PATH)"
cargo test --workspace --locked "$@"

# Real clients (tritonclient, requests) against the berth binary the Rust tests just built.
if [[ $# -eq 0 ]]; then
    echo "==> client tests (tests/clients)"
    BERTH_BIN="$PWD/target/debug/berth" .venv/bin/python -m pytest tests/clients -q -p no:cacheprovider
fi
