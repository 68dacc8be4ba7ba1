//! `berth drift compare`: drift between two files (Parquet or CSV), as a table, JSON, and an
//! optional self-contained HTML report. Finding drift is a result, not a failure: the exit code
//! is 0 either way (2 for unreadable input, as every command).

use std::path::PathBuf;

use anyhow::Context;
use berth_monitor::{DriftConfig, DriftReport, Method, compare_files, report_html};
use clap::{Args, Subcommand, ValueEnum};

use crate::table::Table;

#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Compare a current data file with a reference file, column by column.
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Reference data (.parquet or .csv), e.g. the training set.
    reference: PathBuf,
    /// Current data (.parquet or .csv).
    current: PathBuf,
    /// Also write a self-contained HTML report with a histogram per column.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Output on standard output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Method for every column it applies to (ks, wasserstein, jensen_shannon, psi,
    /// chi_square, l_infinity); default: KS / χ² up to 1000 values, normed Wasserstein /
    /// Jensen-Shannon above.
    #[arg(long, value_parser = parse_method)]
    method: Option<Method>,
    /// Threshold for --method (a p-value for ks and chi_square, a distance otherwise).
    #[arg(long, requires = "method")]
    threshold: Option<f64>,
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        format!("unknown method '{s}'; expected one of {}", names.join(", "))
    })
}

pub fn run(command: DriftCommand) -> anyhow::Result<()> {
    match command {
        DriftCommand::Compare(args) => compare(args),
    }
}

fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let config = DriftConfig {
        method: args.method,
        threshold: args.threshold,
        ..DriftConfig::default()
    };
    let report = compare_files(&args.reference, &args.current, &config)?;
    let (reference, current) = (
        args.reference.display().to_string(),
        args.current.display().to_string(),
    );
    match args.format {
        Format::Table => print!("{}", render_table(&report, &reference, &current)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report_html::render(&report, &reference, &current))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn render_table(report: &DriftReport, reference: &str, current: &str) -> String {
    let mut out = format!(
        "reference: {reference} ({} rows)\ncurrent:   {current} ({} rows)\n\n",
        report.reference_rows, report.current_rows
    );
    let mut table = Table::new(&[
        "COLUMN",
        "TYPE",
        "METHOD",
        "SCORE",
        "THRESHOLD",
        "DRIFT",
        "MISSING REF",
        "MISSING CUR",
        "OUT OF RANGE/UNSEEN",
    ]);
    for c in &report.columns {
        let (score, threshold) = report_html::score_text(c);
        table.row(vec![
            c.column.clone(),
            c.kind.to_string(),
            c.method.to_string(),
            score,
            threshold,
            if c.drift { "yes" } else { "no" }.into(),
            pct(c.quality.missing_reference),
            pct(c.quality.missing_current),
            pct(c.quality.out_of_range_current + c.quality.unseen_current),
        ]);
    }
    if !table.is_empty() {
        out += &table.render();
    }
    out += &format!(
        "\ndata set: {} — {} of {} columns drifted ({})\n",
        if report.dataset_drift {
            "drift"
        } else {
            "no drift"
        },
        report.drifted_columns,
        report.columns.len(),
        pct(report.drifted_share),
    );
    let s = &report.schema;
    if !s.added.is_empty() {
        out += &format!("schema: added {}\n", s.added.join(", "));
    }
    if !s.removed.is_empty() {
        out += &format!("schema: gone {}\n", s.removed.join(", "));
    }
    for t in &s.type_changed {
        out += &format!("schema: type changed {t}\n");
    }
    if !s.unsupported.is_empty() {
        out += &format!("not profiled (type): {}\n", s.unsupported.join(", "));
    }
    out
}
