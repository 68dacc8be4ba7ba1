"""Batch scoring at scale, for bench/score_scale.sh: makes the data sets, then times
onnxruntime and xgboost on the same 1M rows at the same thread count as berth.

    python bench/score_scale.py make OUT_DIR        # data_1m.parquet, data_10m.parquet
    python bench/score_scale.py reference DATA THREADS
"""
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent


def make(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    base = pq.read_table(ROOT / "fixtures/data/eval_features.parquet")
    for rows, name in [(1_000_000, "data_1m.parquet"), (10_000_000, "data_10m.parquet")]:
        path = out / name
        if path.exists():
            continue
        with pq.ParquetWriter(path, base.schema, compression="snappy") as writer:
            written = 0
            block = pa.concat_tables([base] * 100)  # 100k rows
            while written < rows:
                take = min(block.num_rows, rows - written)
                chunk = block.slice(0, take)
                ids = pa.array(np.arange(written, written + take, dtype=np.int64))
                chunk = chunk.set_column(chunk.schema.get_field_index("id"), "id", ids)
                writer.write_table(chunk, row_group_size=100_000)
                written += take
        print(f"wrote {path} ({rows} rows)")


def reference(data: Path, threads: int) -> None:
    import onnxruntime as ort
    import xgboost as xgb

    start = time.perf_counter()
    table = pq.read_table(data)
    X = np.column_stack([table.column(i).to_numpy(zero_copy_only=False) for i in range(1, table.num_columns)]).astype(np.float32)
    read = time.perf_counter() - start
    rows = X.shape[0]

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    session = ort.InferenceSession(str(ROOT / "fixtures/models/xgb_classifier.onnx"), so, providers=["CPUExecutionProvider"])
    start = time.perf_counter()
    for i in range(0, rows, 16_384):
        session.run(None, {"input": X[i:i + 16_384]})
    ort_s = time.perf_counter() - start

    booster = xgb.Booster(model_file=str(ROOT / "fixtures/models/xgb_classifier.json"))
    booster.set_param({"nthread": threads})
    start = time.perf_counter()
    names = [table.schema.field(i).name for i in range(1, table.num_columns)]
    booster.predict(xgb.DMatrix(X, missing=np.nan, nthread=threads, feature_names=names))
    xgb_s = time.perf_counter() - start

    print(f"read (pyarrow to numpy, not in the figures below): {read:.2f} s")
    print(f"onnxruntime {ort.__version__}, {threads} threads, 16384-row batches: {ort_s:.2f} s = {rows / ort_s:,.0f} rows/s")
    print(f"xgboost {xgb.__version__}, {threads} threads, one DMatrix: {xgb_s:.2f} s = {rows / xgb_s:,.0f} rows/s")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        reference(Path(sys.argv[2]), int(sys.argv[3]))
