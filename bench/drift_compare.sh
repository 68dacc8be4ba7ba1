#!/usr/bin/env bash
# Benchmark `berth drift compare` on 1M x 20 vs 1M x 20 Parquet files (16 numeric, 4
# categorical; 3 columns shifted). Files are generated under target/drift-bench (not committed).
# Reports wall time and peak RSS (/usr/bin/time -v). Goal: under 2 s and 200 MB.
#
#   bash bench/drift_compare.sh [ROWS]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rows="${1:-1000000}"
target="${CARGO_TARGET_DIR:-$root/target}"
data="$root/target/drift-bench"

cd "$root"
cargo build --release -q -p berth
cargo run --release -q -p berth-monitor --example make_drift_data -- "$data" "$rows"
ls -l "$data"

berth="$target/release/berth"
# One warm-up run so the files are in the page cache, then three measured ones.
"$berth" drift compare "$data/reference.parquet" "$data/current.parquet" >/dev/null
for i in 1 2 3; do
    /usr/bin/time -v "$berth" drift compare "$data/reference.parquet" "$data/current.parquet" \
        --html "$data/report.html" >"$data/table.txt" 2>"$data/time.txt"
    wall=$(grep "Elapsed (wall clock)" "$data/time.txt" | awk '{print $NF}')
    rss=$(grep "Maximum resident set size" "$data/time.txt" | awk '{print $NF}')
    echo "run $i: wall ${wall}, peak RSS $((rss / 1024)) MB"
done
tail -4 "$data/table.txt"
