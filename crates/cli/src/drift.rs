//! `berth drift compare`: drift between two files (Parquet or CSV), as a table, JSON, and an
//! optional self-contained HTML report; `berth drift [live] ENDPOINT --since 1h`: the drift of
//! a running server's traffic (its `/api/v1/endpoints/{e}/drift`). Finding drift is a result, not
//! a failure: the exit code is 0 either way (2 for unreadable input, as every command).

use std::path::PathBuf;

use anyhow::Context;
use berth_monitor::{DriftConfig, DriftReport, Method, compare_files, report_html};
use berth_serve::monitoring::EndpointDrift;
use clap::{Args, FromArgMatches, Subcommand, ValueEnum};

use crate::table::Table;

#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Compare a current data file with a reference file, column by column.
    Compare(CompareArgs),
    /// The drift of an endpoint's live traffic against its version's reference data, as a
    /// running `berth up` has profiled it.
    Live(LiveArgs),
    /// `berth drift ENDPOINT [--since 1h] ...`: `berth drift live ENDPOINT ...`, shorter.
    #[command(external_subcommand)]
    Endpoint(Vec<String>),
}

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// The endpoint (or `MODEL@ALIAS`, `MODEL`) clients call.
    endpoint: String,
    /// How far back: a number and a unit (s, m, h, d), e.g. 30m or 1h.
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    since: chrono::Duration,
    /// The running server.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "BERTH_SERVER")]
    server: String,
    /// Output on standard output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// An age: a number and a unit (`90s`, `30m`, `2h`, `7d`; no unit is hours).
pub(crate) fn parse_since(s: &str) -> Result<chrono::Duration, String> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(unit_at);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("expected a number and a unit (s, m, h, d), e.g. 1h; got '{s}'"))?;
    let age = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" | "" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{s}': expected s, m, h or d"
            ));
        }
    };
    age.ok_or_else(|| format!("'{s}' is too long ago to represent"))
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
        DriftCommand::Live(args) => crate::block_on(live(args)),
        DriftCommand::Endpoint(words) => {
            // Parsed as `live`'s arguments; a mistake is told as clap tells it (exit code 2).
            let args = LiveArgs::augment_args(clap::Command::new("berth drift"))
                .try_get_matches_from(std::iter::once("berth drift".to_string()).chain(words))
                .and_then(|m| LiveArgs::from_arg_matches(&m))
                .unwrap_or_else(|e| e.exit());
            crate::block_on(live(args))
        }
    }
}

async fn live(args: LiveArgs) -> anyhow::Result<()> {
    let to = chrono::Utc::now();
    let from = to - args.since;
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let url = format!(
        "{}/api/v1/endpoints/{}/drift",
        args.server.trim_end_matches('/'),
        args.endpoint
    );
    let response = reqwest::Client::new()
        .get(format!("{url}?from={}&to={}", time(from), time(to)))
        .send()
        .await
        .with_context(|| format!("asking the server at {}", args.server))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("{url}: {status}: {body}");
    }
    let drift: EndpointDrift = response
        .json()
        .await
        .with_context(|| format!("{url}: not a drift answer"))?;
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&drift)?);
        return Ok(());
    }
    if drift.versions.is_empty() {
        println!(
            "{}: no profiled traffic between {} and {} (only versions registered with reference \
             data are profiled)",
            drift.endpoint, drift.from, drift.to
        );
    }
    for v in &drift.versions {
        let reference = format!("reference data of {}/{}", v.model, v.version);
        let current = format!(
            "{} traffic, {} to {} ({} one-minute windows)",
            drift.endpoint, drift.from, drift.to, v.windows
        );
        print!("{}", render_table(&v.report, &reference, &current));
        if let Some(outputs) = &v.outputs {
            let reference = format!("outputs of {}/{} on its reference data", v.model, v.version);
            println!("\nPrediction drift");
            print!("{}", render_table(outputs, &reference, &current));
        }
    }
    Ok(())
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
