# Shared by the load scripts (sourced): a free loopback port, one ordinary evaluation row as a
# single-row V2 JSON body, the wrk Lua script that posts it, and the figures of a wrk run.

command -v wrk > /dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Evaluation row 100 (after the header and 80 edge rows, an ordinary one), missing as null, as
# the body of a V2 request for the `[1, 23]` input tensor.
v2_body() {
    local row
    row="$(python3 -c 'import csv; r = list(csv.reader(open("fixtures/data/eval_features.csv")))[101][1:]; print(",".join(v or "null" for v in r))')"
    echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,23],\"datatype\":\"FP32\",\"data\":[$row]}]}"
}

# Writes the wrk script that posts BODY as JSON to FILE.
infer_lua() { # FILE BODY
    cat > "$1" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
LUA
}

# "req/s p50 p99 non-2xx" of a `wrk --latency` output file.
wrk_figures() { # FILE
    local rps p50 p99 errors
    rps="$(awk '/Requests\/sec/ {print $2}' "$1")"
    p50="$(awk '$1 == "50%" {print $2}' "$1")"
    p99="$(awk '$1 == "99%" {print $2}' "$1")"
    errors="$(awk '/Non-2xx/ {print $5}' "$1")"
    echo "$rps $p50 $p99 ${errors:-0}"
}

# Starts `berth up` on a fresh data folder in WORK on a free loopback port (polling the
# registry every 100 ms), with the example and churn/2 = the LightGBM fixture registered; sets
# `port`, defines `berth` (the CLI on that store) and stops the server and its load on exit.
start_up_with_two_versions() { # WORK
    work="$1"
    berth() { target/release/berth --store "$work/data" --actor load-test "$@"; }
    port="$(free_port)"
    target/release/berth --store "$work/data" --actor load-test up --listen "127.0.0.1:$port" \
        --poll-ms 100 > /dev/null 2> "$work/up.log" &
    server=$!
    trap 'kill "$server" 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
    sleep 2
    berth models register churn fixtures/models/lgbm_classifier.txt > /dev/null
}
