//! `berth score TARGET --input PATH --output PATH`: batch scoring with a registered version —
//! an endpoint's primary, `NAME@ALIAS` or `NAME/VERSION` — through its feature spec when it has
//! one, over a file, a folder or a `*` pattern, optionally one shard of it; local or at an
//! `s3://` URL (fetched one object at a time; outputs written locally, then uploaded).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_batch::{
    BatchError, OnError, ScoreOptions, ScoringVersion, Shard, count_rows, input_files, is_data,
    matches, score_files, shard_of,
};
use berth_registry::{ModelRef, Registry, RegistryError};
use berth_runtime::LoadOptions;
use berth_serve::live::load_version;
use berth_serve::monitoring::{ScoredProfiles, VersionMonitor};
use berth_store::remote::{Bucket, S3Url};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::registry_args::StoreArgs;

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// What scores: an endpoint (its primary version), NAME@ALIAS or NAME/VERSION.
    target: String,
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
    ) -> Box<dyn Iterator<Item = Result<PathBuf, BatchError>> + 'a> {
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

    async fn upload(&self) -> anyhow::Result<()> {
        if let Some(url) = &self.upload {
            let size = Bucket::open(&url.bucket)?
                .upload(&self.local, &url.key)
                .await?;
            eprintln!("uploaded {size} bytes to {url}");
        }
        Ok(())
    }
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
    let inputs = Inputs::find(&args.input, args.shard).await?;
    let scratch = tempfile::Builder::new()
        .prefix("berth-score-")
        .tempdir()
        .context("making a scratch folder")?;
    let output = match &args.output {
        Some(destination) => Some(Output::new(destination, scratch.path())?),
        None => None,
    };
    let rejects = match (args.on_error, &args.rejects, &args.output) {
        (OnErrorArg::Fail, _, _) => None,
        (OnErrorArg::Skip, Some(rejects), _) => Some(Output::new(rejects, scratch.path())?),
        (OnErrorArg::Skip, None, Some(output)) => Some(Output::new(
            &format!("{output}.rejects.csv"),
            scratch.path(),
        )?),
        (OnErrorArg::Skip, None, None) => {
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
    let bar = match known_rows {
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
    let options = ScoreOptions {
        chunk_rows: args.chunk_rows,
        id_column: args.id_column,
        on_error: match &rejects {
            Some(rejects) => OnError::Skip {
                rejects: rejects.local.clone(),
            },
            None => OnError::Fail,
        },
    };
    let mut profiles = VersionMonitor::of(&loaded.record)
        .filter(|_| !args.no_profiles)
        .map(|monitor| ScoredProfiles::new(&args.target, &model, version, Arc::new(monitor)));
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
                    profiles.observe(chunk.inputs, chunk.outputs);
                }
            },
        )
    });
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
    let summary = scored.with_context(|| format!("scoring {} with {label}", args.input))?;
    for written in output.iter().chain(&rejects) {
        written.upload().await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(rejects) = &rejects {
        eprintln!(
            "{} row(s) skipped, written to {}",
            summary.rejected, rejects.shown
        );
    }
    eprintln!(
        "scored {} rows from {} file(s) in {seconds:.2} s ({:.0} rows/s) with {label} -> {}",
        summary.rows,
        inputs.len(),
        summary.rows as f64 / seconds.max(1e-9),
        output
            .as_ref()
            .map_or("standard output", |o| o.shown.as_str())
    );
    Ok(())
}
