//! `berth score TARGET --input PATH --output PATH`: batch scoring with a registered version —
//! an endpoint's primary, `NAME@ALIAS` or `NAME/VERSION` — through its feature spec when it has
//! one, over a file, a folder or a `*` pattern, optionally one shard of it; local or at an
//! `s3://` URL (fetched one object at a time; outputs written locally, then uploaded).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_batch::{
    BadRows, BatchError, OnError, ScoreJob, ScoreOptions, ScoringVersion, Shard, count_rows,
    input_files, is_data, matches, score_files, shard_of,
};
use berth_registry::{ModelRef, Registry, RegistryError};
use berth_runtime::LoadOptions;
use berth_serve::live::load_version;
use berth_serve::monitoring::{RowsRef, ScoredProfiles, VersionMonitor};
use berth_store::remote::{Bucket, S3Url};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::registry_args::StoreArgs;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// What scores: an endpoint (its primary version), NAME@ALIAS or NAME/VERSION.
    target: String,
    #[command(flatten)]
    run: RunArgs,
}

/// What a scoring run reads and writes, and how; shared by `berth score` and `berth jobs add`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Rows to score: a .parquet, .csv or .jsonl file, a folder of them, or a pattern with `*`
    /// in its last part (quote it: 'data/part-*.parquet'); a local path or an s3:// URL
    /// (credentials and endpoint from the AWS_* variables).
    #[arg(long, short)]
    input: String,
    /// Where to write predictions (.csv or .jsonl), a local path or an s3:// URL; standard
    /// output (CSV) when absent.
    #[arg(long, short)]
    output: Option<String>,
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
    /// Where skipped rows go, a local path or an s3:// URL [default: OUTPUT.rejects.csv].
    #[arg(long, value_name = "FILE")]
    rejects: Option<String>,
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

/// Where rows are read from, or predictions written to.
enum Location {
    Local(PathBuf),
    S3(S3Url),
}

impl Location {
    fn parse(text: &str) -> Result<Location, berth_store::StoreError> {
        match S3Url::parse(text) {
            Some(url) => Ok(Location::S3(url?)),
            None => Ok(Location::Local(text.into())),
        }
    }
}

/// Input files: local paths, or objects fetched one at a time into a scratch folder (each
/// deleted when the next is fetched), so local disk holds one input object at a time.
enum Inputs {
    Local(Vec<PathBuf>),
    S3 { bucket: Bucket, keys: Vec<String> },
}

impl Inputs {
    async fn find(input: &str, shard: Option<Shard>) -> anyhow::Result<Inputs> {
        let url = match Location::parse(input)? {
            Location::Local(path) => return Ok(Inputs::Local(input_files(&path, shard)?)),
            Location::S3(url) => url,
        };
        let bucket = Bucket::open(&url.bucket)?;
        let (folder, last) = match url.key.rsplit_once('/') {
            Some((folder, last)) => (format!("{folder}/"), last),
            None => (String::new(), url.key.as_str()),
        };
        let file_name = |key: &str| key.rsplit('/').next().unwrap_or(key).to_string();
        let keys: Vec<String> = if last.contains('*') {
            let listed = bucket.list(&folder).await?;
            listed
                .into_iter()
                .filter(|k| matches(last, &file_name(k)))
                .collect()
        } else if !url.key.is_empty() && !url.key.ends_with('/') && bucket.exists(&url.key).await? {
            vec![url.key.clone()]
        } else {
            let listed = bucket.list(&url.key).await?;
            listed
                .into_iter()
                .filter(|k| is_data(Path::new(k)))
                .collect()
        };
        if keys.is_empty() {
            return Err(crate::UsageError(format!(
                "{url}: no data files there (an object, a folder of .parquet/.csv/.jsonl objects, or a pattern with * matching some)"
            ))
            .into());
        }
        Ok(Inputs::S3 {
            keys: shard_of(keys, shard),
            bucket,
        })
    }

    fn len(&self) -> usize {
        match self {
            Inputs::Local(files) => files.len(),
            Inputs::S3 { keys, .. } => keys.len(),
        }
    }

    /// The files, each fetched when it is due (call inside `block_in_place`).
    fn files<'a>(
        &'a self,
        scratch: &'a Path,
    ) -> Box<dyn Iterator<Item = Result<PathBuf, BatchError>> + Send + 'a> {
        match self {
            Inputs::Local(files) => Box::new(files.iter().cloned().map(Ok)),
            Inputs::S3 { bucket, keys } => {
                let runtime = tokio::runtime::Handle::current();
                let mut previous: Option<PathBuf> = None;
                Box::new(keys.iter().enumerate().map(move |(i, key)| {
                    if let Some(done) = previous.take() {
                        let _ = std::fs::remove_file(done);
                    }
                    let name = key.rsplit('/').next().unwrap_or(key);
                    let local = scratch.join(format!("{i}-{name}"));
                    runtime
                        .block_on(bucket.download(key, &local))
                        .map_err(|e| BatchError::Fetch {
                            name: bucket.url(key),
                            problem: e.to_string(),
                        })?;
                    previous = Some(local.clone());
                    Ok(local)
                }))
            }
        }
    }
}

/// A file written locally, then uploaded when the destination is an `s3://` URL.
struct Output {
    local: PathBuf,
    upload: Option<S3Url>,
    shown: String,
}

impl Output {
    fn new(destination: &str, scratch: &Path) -> anyhow::Result<Output> {
        Ok(match Location::parse(destination)? {
            Location::Local(local) => Output {
                local,
                upload: None,
                shown: destination.to_string(),
            },
            Location::S3(url) => Output {
                local: scratch.join(format!(
                    "out-{}",
                    url.key.rsplit('/').next().unwrap_or("output")
                )),
                shown: url.to_string(),
                upload: Some(url),
            },
        })
    }

    /// Uploads the file when its destination is remote; its size then.
    async fn upload(&self) -> anyhow::Result<Option<u64>> {
        match &self.upload {
            Some(url) => Ok(Some(
                Bucket::open(&url.bucket)?
                    .upload(&self.local, &url.key)
                    .await?,
            )),
            None => Ok(None),
        }
    }
}

/// What a scoring run did: a scheduled run's summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScoreReport {
    /// `model/version` that scored.
    pub version: String,
    pub files: usize,
    pub rows: usize,
    /// Rows skipped to the rejects file.
    pub rejected: usize,
    pub seconds: f64,
    pub output: String,
}

impl RunArgs {
    /// The run these arguments ask for, with `target`.
    pub fn job(&self, target: &str) -> ScoreJob {
        ScoreJob {
            target: target.to_string(),
            input: self.input.clone(),
            output: self.output.clone(),
            shard: self.shard,
            id_column: self.id_column.clone(),
            chunk_rows: self.chunk_rows,
            on_error: match self.on_error {
                OnErrorArg::Fail => BadRows::Fail,
                OnErrorArg::Skip => BadRows::Skip,
            },
            rejects: self.rejects.clone(),
            profiles: !self.no_profiles,
        }
    }
}

pub async fn run(args: ScoreArgs, store: &StoreArgs, threads: usize) -> anyhow::Result<()> {
    let registry = store.open().await?;
    let bar = ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(200));
    let report = execute(
        &args.run.job(&args.target),
        &registry,
        threads,
        &bar,
        &mut |line| bar.suspend(|| eprintln!("{line}")),
    )
    .await;
    bar.finish_and_clear();
    let report = report?;
    eprintln!(
        "scored {} rows from {} file(s) in {:.2} s ({:.0} rows/s) with {} -> {}",
        report.rows,
        report.files,
        report.seconds,
        report.rows as f64 / report.seconds.max(1e-9),
        report.version,
        report.output
    );
    Ok(())
}

/// Runs `job` with the version it names: `bar` shows progress (a hidden one for a scheduled
/// run), `say` gets what a person would want to read afterwards (the job's log).
pub async fn execute(
    job: &ScoreJob,
    registry: &Registry,
    threads: usize,
    bar: &ProgressBar,
    say: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<ScoreReport> {
    let started = Instant::now();
    job.check().map_err(crate::UsageError)?;
    let (model, version) = resolve(registry, &job.target).await?;
    let label = format!("{model}/{version}");
    let loaded = load_version(
        registry,
        &model,
        version,
        &LoadOptions {
            onnx_intra_threads: threads,
        },
    )
    .await?;
    let inputs = Inputs::find(&job.input, job.shard).await?;
    say(format!(
        "scoring {} file(s) from {} with {label}",
        inputs.len(),
        job.input
    ));
    let scratch = tempfile::Builder::new()
        .prefix("berth-score-")
        .tempdir()
        .context("making a scratch folder")?;
    let output = match &job.output {
        Some(destination) => Some(Output::new(destination, scratch.path())?),
        None => None,
    };
    let rejects = match (job.on_error, &job.rejects, &job.output) {
        (BadRows::Fail, _, _) => None,
        (BadRows::Skip, Some(rejects), _) => Some(Output::new(rejects, scratch.path())?),
        (BadRows::Skip, None, Some(output)) => Some(Output::new(
            &format!("{output}.rejects.csv"),
            scratch.path(),
        )?),
        (BadRows::Skip, None, None) => {
            return Err(crate::UsageError(
                "--on-error skip writing to standard output needs --rejects FILE".into(),
            )
            .into());
        }
    };
    let known_rows = match &inputs {
        Inputs::Local(files) => count_rows(files),
        Inputs::S3 { .. } => None,
    };
    let style = match known_rows {
        Some(total) => {
            bar.set_length(total);
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} rows, {per_sec}, ETA {eta} ({elapsed})",
            )
        }
        None => ProgressStyle::with_template("{spinner} {pos} rows, {per_sec} ({elapsed})"),
    };
    bar.set_style(style.context("progress bar")?);
    let scoring = ScoringVersion {
        model: loaded.model.as_ref(),
        features: loaded.features.as_deref(),
        label: label.clone(),
    };
    let options = ScoreOptions {
        chunk_rows: job.chunk_rows,
        id_column: job.id_column.clone(),
        on_error: match &rejects {
            Some(rejects) => OnError::Skip {
                rejects: rejects.local.clone(),
            },
            None => OnError::Fail,
        },
    };
    let mut profiles = VersionMonitor::of(&loaded.record)
        .filter(|_| job.profiles)
        .map(|monitor| ScoredProfiles::new(&job.target, &model, version, Arc::new(monitor)));
    // Scoring is CPU work on this thread; fetching an input blocks on the runtime's I/O.
    let scored = tokio::task::block_in_place(|| {
        score_files(
            &scoring,
            inputs.files(scratch.path()),
            output.as_ref().map(|o| o.local.as_path()),
            &options,
            |chunk| {
                bar.set_position(chunk.rows_done as u64);
                if let Some(profiles) = &mut profiles {
                    let rows = match chunk.raw {
                        Some(batch) => RowsRef::Raw(batch),
                        None => RowsRef::Matrix(chunk.inputs),
                    };
                    profiles.observe(rows, chunk.outputs);
                }
            },
        )
    });
    // What was scored is profiled, even when the run stopped part way.
    if let Some(profiles) = &profiles {
        match profiles.write(registry.metadata()).await {
            Ok(()) => say(format!(
                "{} row(s) added to the monitoring profiles of {label} under {}",
                profiles.rows(),
                job.target
            )),
            Err(e) => say(format!("warning: monitoring profiles not written: {e}")),
        }
    }
    let summary = scored.with_context(|| format!("scoring {} with {label}", job.input))?;
    for written in output.iter().chain(&rejects) {
        let size = written.upload().await?;
        if let Some(size) = size {
            say(format!("uploaded {size} bytes to {}", written.shown));
        }
    }
    if let Some(rejects) = &rejects {
        say(format!(
            "{} row(s) skipped, written to {}",
            summary.rejected, rejects.shown
        ));
    }
    Ok(ScoreReport {
        version: label,
        files: inputs.len(),
        rows: summary.rows,
        rejected: summary.rejected,
        seconds: started.elapsed().as_secs_f64(),
        output: output
            .as_ref()
            .map_or("standard output".to_string(), |o| o.shown.clone()),
    })
}
