//! `berth predict`: score a file of rows with a model file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use berth_batch::{ScoreOptions, score_file};
use berth_runtime::LoadOptions;
use clap::Args;

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model file: ONNX (.onnx), XGBoost JSON (.json) or LightGBM text (.txt).
    #[arg(long, short)]
    model: PathBuf,
    /// Rows to score: .csv, .jsonl or .parquet. Columns are matched to the model's features by name.
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write predictions (.csv or .jsonl); standard output (CSV) when absent.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Column carried from input to output as the row id.
    #[arg(long, default_value = "id")]
    id_column: String,
    /// Rows per batch handed to the model.
    #[arg(long, default_value_t = 16_384)]
    chunk_rows: usize,
}

pub fn run(args: PredictArgs, threads: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let options = LoadOptions {
        onnx_intra_threads: threads,
    };
    let model = berth_runtime::load(&args.model, &options)?;
    let score = ScoreOptions {
        chunk_rows: args.chunk_rows,
        id_column: args.id_column,
        ..ScoreOptions::default()
    };
    let summary = score_file(
        model.as_ref(),
        &args.input,
        args.output.as_deref(),
        &score,
        |_| {},
    )
    .with_context(|| {
        format!(
            "scoring {} with {}",
            args.input.display(),
            args.model.display()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let target = args
        .output
        .as_ref()
        .map_or("standard output".to_string(), |p| p.display().to_string());
    eprintln!(
        "scored {} rows in {:.3} s ({:.0} rows/s) with {} -> {target}",
        summary.rows,
        seconds,
        summary.rows as f64 / seconds.max(1e-9),
        args.model.display()
    );
    Ok(())
}
