//! The `berth` command line: the binary's edge, where errors become messages and exit codes
//! (2 for what the user can fix — bad input, unknown names —, 1 for everything else).

mod api;
mod batching_args;
mod drift;
mod features;
mod inspect;
mod jobs;
mod live;
mod models;
mod predict;
mod registry_args;
mod replay;
mod rollout;
mod score;
mod serve;
mod server;
mod table;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use registry_args::StoreArgs;

/// mimalloc instead of the system allocator: a server allocating per request from many threads
/// spent a third of its time in glibc malloc and its arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// berth takes trained ML models into production and keeps them right.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Worker threads for scoring (default: all cores).
    #[arg(
        long,
        global = true,
        env = "BERTH_THREADS",
        help_heading = "Global Options"
    )]
    threads: Option<usize>,

    #[command(flatten)]
    store: StoreArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score a file of rows (CSV, JSON lines or Parquet) with a model file.
    Predict(predict::PredictArgs),
    /// Score a data set with a registered version (an endpoint's, NAME@ALIAS or NAME/VERSION).
    Score(score::ScoreArgs),
    /// Scheduled scoring jobs: add, list, show (runs and logs), run now, pause, resume, remove.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Show what a model file takes and gives: format, task, inputs, outputs, feature names.
    Inspect(inspect::InspectArgs),
    /// Register, list and show models and their versions.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Move or remove an alias (NAME@ALIAS -> a version).
    #[command(subcommand)]
    Alias(live::AliasCommand),
    /// Point endpoints at a version or an alias; list them.
    #[command(subcommand)]
    Endpoints(live::EndpointsCommand),
    /// Roll a new version out on an endpoint safely: shadow, canary steps, analysis.
    #[command(subcommand)]
    Rollout(rollout::RolloutCommand),
    /// Return all of an endpoint's traffic to the version it served before, at once.
    Rollback(rollout::RollbackArgs),
    /// Rescore an endpoint's logged inputs with any version and compare with what was served.
    #[command(disable_version_flag = true)]
    Replay(replay::ReplayArgs),
    /// What every alias and endpoint pointed to at a moment (default: now), and who set it.
    History(live::HistoryArgs),
    /// The audit log: every change, who made it, when, why, before and after.
    Audit(live::AuditArgs),
    /// Serve the admin REST API (/api/v1, OpenAPI at /api/v1/openapi.json).
    Api(api::ApiArgs),
    /// Start berth: serve every endpoint, alias and model of the registry, and the admin API.
    Up(up::UpArgs),
    /// Serve one model file at once (V2 REST, V1 :predict, MLflow /invocations).
    Serve(serve::ServeArgs),
    /// Feature specs: fit one on data, apply a fitted one to data.
    #[command(subcommand)]
    Features(features::FeaturesCommand),
    /// Data drift: between files (`berth drift compare REFERENCE CURRENT`), or of a running
    /// server's traffic (`berth drift ENDPOINT --since 1h`, also `berth drift live ENDPOINT`).
    #[command(subcommand)]
    Drift(drift::DriftCommand),
}

/// A mistake in what the user typed or pointed at, outside any library's own errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A YAML settings file (`what` names its kind in errors, e.g. "batching").
pub fn read_yaml_file<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
) -> Result<T, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    serde_yaml::from_str(&text)
        .map_err(|e| UsageError(format!("{}: not a {what} file: {e}", path.display())))
}

/// 2 when the user can fix the problem by changing their input, else 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    let user_error = e.chain().any(|cause| {
        cause.is::<UsageError>()
            || cause
                .downcast_ref::<berth_registry::RegistryError>()
                .is_some_and(berth_registry::RegistryError::is_user_error)
            || cause.downcast_ref::<berth_runtime::LoadError>().is_some()
            || cause.downcast_ref::<berth_batch::BatchError>().is_some()
            || cause.downcast_ref::<berth_tables::TableError>().is_some()
            || cause
                .downcast_ref::<berth_monitor::MonitorError>()
                .is_some_and(berth_monitor::MonitorError::is_user_error)
            || matches!(
                cause.downcast_ref::<berth_store::StoreError>(),
                Some(berth_store::StoreError::Location { .. })
            )
    });
    if user_error { 2 } else { 1 }
}

/// Lets a closed pipe (`berth audit | head`) end the process quietly, as Unix tools do,
/// instead of making every `println!` panic.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default at startup, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    restore_default_sigpipe();
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
    let store = &cli.store;
    let result = match cli.command {
        Command::Predict(args) => predict::run(args, threads),
        Command::Inspect(args) => inspect::run(args),
        Command::Score(args) => block_on(score::run(args, store, threads)),
        Command::Jobs(c) => block_on(jobs::run(c, store, threads)),
        Command::Models(c) => block_on(models::run(c, store)),
        Command::Alias(c) => block_on(live::alias(c, store)),
        Command::Endpoints(c) => block_on(live::endpoints(c, store)),
        Command::Rollout(c) => block_on(rollout::run(c, store)),
        Command::Rollback(args) => block_on(rollout::rollback(args, store)),
        Command::Replay(args) => block_on(replay::run(args, store)),
        Command::History(args) => block_on(live::history(args, store)),
        Command::Audit(args) => block_on(live::audit(args, store)),
        Command::Api(args) => block_on(api::run(args, store)),
        Command::Up(args) => block_on(up::run(args, store, threads)),
        Command::Serve(args) => block_on(serve::run(args, threads)),
        Command::Drift(c) => drift::run(c),
        Command::Features(c) => features::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Runs an async command on a fresh tokio runtime.
pub fn block_on(
    command: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(command)
}
