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

/// splitmix64, seeded: the same files every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

const BATCH: usize = 100_000;

fn write(
    path: &Path,
    rows: usize,
    seed: u64,
    shifted: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(seed);
    let mut writer: Option<ArrowWriter<File>> = None;
    let categories = ["a", "b", "c", "d"];
    let mut done = 0;
    while done < rows {
        let n = BATCH.min(rows - done);
        let mut columns: Vec<(String, ArrayRef)> = Vec::new();
        for j in 0..16 {
            let (shift, scale) = match (shifted, j) {
                (true, 0) => (0.5, 1.0),
                (true, 1) => (0.0, 1.6),
                _ => (0.0, 1.0),
            };
            let values: Float64Array = (0..n)
                .map(|_| {
                    let z = rng.normal() * scale + shift;
                    match j % 3 {
                        0 => z,
                        1 => z.exp(),
                        _ => (z * 2.0).round(),
                    }
                })
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
                .map(|_| {
                    let u = rng.uniform();
                    let mut acc = 0.0;
                    let mut pick = categories[3];
                    for (c, s) in categories.iter().zip(shares) {
                        acc += s;
                        if u < acc {
                            pick = c;
                            break;
                        }
                    }
                    Some(pick)
                })
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
