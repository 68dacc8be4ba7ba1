//! `berth score TARGET --input PATH --output PATH`: batch scoring with a registered version —
//! an endpoint's primary, `NAME@ALIAS` or `NAME/VERSION` — through its feature spec when it has
//! one, over a file, a folder or a `*` pattern, optionally one shard of it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_batch::{
    OnError, ScoreOptions, ScoringVersion, Shard, count_rows, input_files, score_files,
};
use berth_registry::{ModelRef, Registry, RegistryError};
use berth_runtime::LoadOptions;
use berth_serve::live::load_version;
use berth_serve::monitoring::{ScoredProfiles, VersionMonitor};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::registry_args::StoreArgs;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// What scores: an endpoint (its primary version), NAME@ALIAS or NAME/VERSION.
    target: String,
    /// Rows to score: a .parquet, .csv or .jsonl file, a folder of them, or a pattern with `*`
    /// in its last part (quote it: 'data/part-*.parquet').
    #[arg(long, short)]
    input: PathBuf,
    /// Where to write predictions (.csv or .jsonl); standard output (CSV) when absent.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Score only shard i of N (0-based) of the input files, e.g. 2/8.
    #[arg(long)]
    shard: Option<Shard>,
    /// Column carried from input to output as the row id.
    #[arg(long, default_value = "id")]
    id_column: String,
    /// Rows per batch handed to the model.
    #[arg(long, default_value_t = 16_384)]
    chunk_rows: usize,
    /// A row with a value that cannot be read: `fail` stops the run naming its row and column;
    /// `skip` leaves it out and writes it to the rejects file.
    #[arg(long, value_enum, default_value = "fail")]
    on_error: OnErrorArg,
    /// Where skipped rows go [default: OUTPUT.rejects.csv].
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Do not add the scored rows to the version's monitoring profiles (by default a version
    /// registered with reference data gets them, under TARGET, as served traffic does).
    #[arg(long)]
    no_profiles: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnErrorArg {
    Fail,
    Skip,
}

/// The version `target` names: an endpoint's primary, or a model reference.
async fn resolve(registry: &Registry, target: &str) -> Result<(String, i64), RegistryError> {
    let reference = match registry.endpoint_policy(target).await {
        Ok(policy) => policy.primary.to_model_ref(),
        Err(RegistryError::NotFound(_)) if target.contains(['@', '/']) => {
            target.parse::<ModelRef>()?
        }
        Err(RegistryError::NotFound(_)) => {
            return Err(RegistryError::NotFound(format!(
                "no endpoint named '{target}': name an endpoint, NAME@ALIAS or NAME/VERSION"
            )));
        }
        Err(e) => return Err(e),
    };
    let version = registry.resolve(&reference).await?;
    Ok((version.model, version.version))
}

pub async fn run(args: ScoreArgs, store: &StoreArgs, threads: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let registry = store.open().await?;
    let (model, version) = resolve(&registry, &args.target).await?;
    let loaded = load_version(
        &registry,
        &model,
        version,
        &LoadOptions {
            onnx_intra_threads: threads,
        },
    )
    .await?;
    let files = input_files(&args.input, args.shard)?;
    let bar = match count_rows(&files) {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} rows, {per_sec}, ETA {eta} ({elapsed})",
            )
            .context("progress bar")?,
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} rows, {per_sec} ({elapsed})")
                .context("progress bar")?,
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    let label = format!("{model}/{version}");
    let scoring = ScoringVersion {
        model: loaded.model.as_ref(),
        features: loaded.features.as_deref(),
        label: label.clone(),
    };
    let on_error = match (args.on_error, &args.rejects, &args.output) {
        (OnErrorArg::Fail, _, _) => OnError::Fail,
        (OnErrorArg::Skip, Some(rejects), _) => OnError::Skip {
            rejects: rejects.clone(),
        },
        (OnErrorArg::Skip, None, Some(output)) => {
            let mut rejects = output.as_os_str().to_owned();
            rejects.push(".rejects.csv");
            OnError::Skip {
                rejects: rejects.into(),
            }
        }
        (OnErrorArg::Skip, None, None) => {
            return Err(crate::UsageError(
                "--on-error skip writing to standard output needs --rejects FILE".into(),
            )
            .into());
        }
    };
    let rejects = match &on_error {
        OnError::Skip { rejects } => Some(rejects.clone()),
        OnError::Fail => None,
    };
    let options = ScoreOptions {
        chunk_rows: args.chunk_rows,
        id_column: args.id_column,
        on_error,
    };
    let mut profiles = VersionMonitor::of(&loaded.record)
        .filter(|_| !args.no_profiles)
        .map(|monitor| ScoredProfiles::new(&args.target, &model, version, Arc::new(monitor)));
    let scored = score_files(
        &scoring,
        &files,
        args.output.as_deref(),
        &options,
        |chunk| {
            bar.set_position(chunk.rows_done as u64);
            if let Some(profiles) = &mut profiles {
                profiles.observe(chunk.inputs, chunk.outputs);
            }
        },
    );
    bar.finish_and_clear();
    // What was scored is profiled, even when the run stopped part way.
    if let Some(profiles) = &profiles {
        match profiles.write(registry.metadata()).await {
            Ok(()) => eprintln!(
                "{} row(s) added to the monitoring profiles of {label} under {}",
                profiles.rows(),
                args.target
            ),
            Err(e) => eprintln!("warning: monitoring profiles not written: {e}"),
        }
    }
    let summary =
        scored.with_context(|| format!("scoring {} with {label}", args.input.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(rejects) = &rejects {
        eprintln!(
            "{} row(s) skipped, written to {}",
            summary.rejected,
            rejects.display()
        );
    }
    eprintln!(
        "scored {} rows from {} file(s) in {seconds:.2} s ({:.0} rows/s) with {label} -> {}",
        summary.rows,
        files.len(),
        summary.rows as f64 / seconds.max(1e-9),
        args.output
            .as_ref()
            .map_or("standard output".to_string(), |p| p.display().to_string())
    );
    Ok(())
}
