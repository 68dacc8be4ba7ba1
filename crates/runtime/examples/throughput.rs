//! Measures berth's scoring throughput on one model file, for `bench/compare_runtimes.py`.
//!
//! Usage: `throughput MODEL ROWS.csv BATCH_ROWS THREADS SECONDS` — the CSV's rows (first column
//! `id`, then the features in model order, empty = missing) are tiled up to `BATCH_ROWS`; the
//! batch is scored repeatedly for about `SECONDS`; one JSON line with rows/s is printed.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_core::FeatureMatrix;
use berth_runtime::LoadOptions;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i}: expected {what}; usage: throughput MODEL ROWS.csv BATCH_ROWS THREADS SECONDS"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model_path: String = arg(&args, 1, "a model file");
    let rows_path: String = arg(&args, 2, "a CSV of rows");
    let batch_rows: usize = arg(&args, 3, "a row count");
    let threads: usize = arg(&args, 4, "a thread count");
    let seconds: f64 = arg(&args, 5, "seconds");

    let mut reader = csv::Reader::from_path(&rows_path).expect("readable CSV");
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for record in reader.records() {
        let record = record.expect("CSV record");
        rows.push(
            record
                .iter()
                .skip(1)
                .map(|v| v.parse().unwrap_or(f32::NAN))
                .collect(),
        );
    }
    let cols = rows[0].len();
    let tiled: Vec<&Vec<f32>> = rows.iter().cycle().take(batch_rows).collect();
    let batch = FeatureMatrix::from_rows(cols, &tiled).expect("rectangular rows");

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let options = LoadOptions {
        onnx_intra_threads: threads,
    };
    let model = berth_runtime::load(Path::new(&model_path), &options).expect("model loads");
    pool.install(|| {
        model.predict(&batch).expect("warm-up");
        let budget = Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let mut calls = 0u64;
        while started.elapsed() < budget || calls < 3 {
            std::hint::black_box(model.predict(&batch).expect("prediction"));
            calls += 1;
        }
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "{{\"runtime\":\"berth\",\"model\":\"{model_path}\",\"batch_rows\":{batch_rows},\"threads\":{threads},\"calls\":{calls},\"rows_per_s\":{:.1},\"us_per_call\":{:.2}}}",
            (calls as f64 * batch_rows as f64) / elapsed,
            elapsed * 1e6 / calls as f64
        );
    });
}
