//! The `berth` command line: the binary's edge, where errors become messages and exit codes.

mod inspect;
mod predict;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// berth takes trained ML models into production and keeps them right.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Worker threads for scoring (default: all cores).
    #[arg(long, global = true, env = "BERTH_THREADS")]
    threads: Option<usize>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score a file of rows (CSV, JSON lines or Parquet) with a model file.
    Predict(predict::PredictArgs),
    /// Show what a model file takes and gives: format, task, inputs, outputs, feature names.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        tracing::warn!("could not size the thread pool: {e}");
    }
    let result = match cli.command {
        Command::Predict(args) => predict::run(args, threads),
        Command::Inspect(args) => inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
