//! Writes a reference and a current Parquet file of generated data for benchmarking
//! `berth drift compare`: ROWS rows, 16 numeric (float64) and 4 categorical (string) columns;
//! in the current file x0 (mean + 0.5), x1 (sd x 1.6) and c0 (shares) are shifted.
//!
//! `cargo run --release -p berth-monitor --example make_drift_data -- DIR [ROWS]`

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;

#[path = "support/drift_data.rs"]
mod drift_data;

use drift_data::Rng;

const BATCH: usize = 100_000;

fn write(
    path: &Path,
    rows: usize,
    seed: u64,
    shifted: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng::new(seed);
    let mut writer: Option<ArrowWriter<File>> = None;
    let categories = ["a", "b", "c", "d"];
    let mut done = 0;
    while done < rows {
        let n = BATCH.min(rows - done);
        let mut columns: Vec<(String, ArrayRef)> = Vec::new();
        for j in 0..16 {
            let values: Float64Array = (0..n)
                .map(|_| rng.numeric(j, shifted))
                .collect::<Vec<f64>>()
                .into();
            columns.push((format!("x{j}"), Arc::new(values)));
        }
        for j in 0..4 {
            let shares = if shifted && j == 0 {
                [0.2, 0.3, 0.3, 0.2]
            } else {
                [0.4, 0.3, 0.2, 0.1]
            };
            let values: StringArray = (0..n)
                .map(|_| Some(rng.category(&categories, &shares)))
                .collect();
            columns.push((format!("c{j}"), Arc::new(values)));
        }
        let batch = RecordBatch::try_from_iter(columns)?;
        if writer.is_none() {
            writer = Some(ArrowWriter::try_new(
                File::create(path)?,
                batch.schema(),
                None,
            )?);
        }
        if let Some(w) = writer.as_mut() {
            w.write(&batch)?;
        }
        done += n;
    }
    if let Some(w) = writer {
        w.close()?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: make_drift_data DIR [ROWS]")?;
    let rows: usize = args.next().map_or(Ok(1_000_000), |r| r.parse())?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    write(&dir.join("reference.parquet"), rows, 1, false)?;
    write(&dir.join("current.parquet"), rows, 2, true)?;
    println!(
        "wrote {} and {} ({rows} rows x 20 columns)",
        dir.join("reference.parquet").display(),
        dir.join("current.parquet").display()
    );
    Ok(())
}
