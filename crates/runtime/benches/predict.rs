//! Rows per second of each backend on the fixture models: one row at a time, and 10k-row
//! batches, with one and two threads (ONNX Runtime intra-op threads; rayon threads for trees).
//!
//! Run: `cargo bench -p berth-runtime --bench predict` (ONNX Runtime found as in `onnx`).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use berth_core::FeatureMatrix;
use berth_runtime::{LoadOptions, Model};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn eval_rows(n: usize) -> FeatureMatrix {
    let mut reader =
        csv::Reader::from_path(fixtures().join("data/eval_features.csv")).expect("eval rows");
    let rows: Vec<Vec<f32>> = reader
        .records()
        .map(|r| {
            r.expect("record")
                .iter()
                .skip(1)
                .map(|v| v.parse().unwrap_or(f32::NAN))
                .collect()
        })
        .collect();
    let tiled: Vec<&Vec<f32>> = rows.iter().cycle().take(n).collect();
    FeatureMatrix::from_rows(rows[0].len(), &tiled).expect("rectangular")
}

fn load(file: &str, threads: usize) -> Box<dyn Model> {
    let options = LoadOptions {
        onnx_intra_threads: threads,
    };
    berth_runtime::load(&fixtures().join("models").join(file), &options).expect("fixture loads")
}

const MODELS: [(&str, &str); 4] = [
    ("xgboost-native", "xgb_classifier.json"),
    ("xgboost-onnx", "xgb_classifier.onnx"),
    ("lightgbm-native", "lgbm_classifier.txt"),
    ("lightgbm-onnx", "lgbm_classifier.onnx"),
];

fn single_row(c: &mut Criterion) {
    let row = eval_rows(1);
    let mut group = c.benchmark_group("single_row");
    group.throughput(Throughput::Elements(1));
    for (name, file) in MODELS {
        let model = load(file, 1);
        group.bench_function(name, |b| {
            b.iter(|| black_box(model.predict(black_box(&row)).expect("predict")))
        });
    }
    group.finish();
}

fn batch_10k(c: &mut Criterion) {
    let rows = eval_rows(10_000);
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let mut group = c.benchmark_group(format!("batch_10k_{threads}_threads"));
        group.throughput(Throughput::Elements(10_000));
        group.sample_size(20);
        for (name, file) in MODELS {
            let model = load(file, threads);
            group.bench_function(name, |b| {
                pool.install(|| {
                    b.iter(|| black_box(model.predict(black_box(&rows)).expect("predict")))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, single_row, batch_10k);
criterion_main!(benches);
