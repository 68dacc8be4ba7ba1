//! `compare_files` on two files, timed: the library half of `berth drift compare` without the
//! CLI (whose release build needs the whole server), for quick measurements.
//!
//! `cargo run --release -p berth-monitor --example compare_files -- REFERENCE CURRENT`

use std::path::Path;
use std::time::Instant;

use berth_monitor::{DriftConfig, compare_files};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [reference, current] = args.as_slice() else {
        return Err("usage: compare_files REFERENCE CURRENT".into());
    };
    let started = Instant::now();
    let report = compare_files(
        Path::new(reference),
        Path::new(current),
        &DriftConfig::default(),
    )?;
    let elapsed = started.elapsed();
    for c in &report.columns {
        println!(
            "{:<12} {:<16} {:>10.5} {}",
            c.column,
            c.method.name(),
            c.score.unwrap_or(f64::NAN),
            if c.drift { "DRIFT" } else { "" }
        );
    }
    println!(
        "{} of {} columns drifted; {} + {} rows in {:.3} s",
        report.drifted_columns,
        report.columns.len(),
        report.reference_rows,
        report.current_rows,
        elapsed.as_secs_f64()
    );
    Ok(())
}
