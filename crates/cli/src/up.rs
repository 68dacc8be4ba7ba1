//! `berth up`: berth's main job on one port — the registry in the store (`./berth-data` by
//! default), every endpoint, alias and newest version served over V2, V1 and MLflow and kept
//! in step with the registry, the admin API, `/metrics` and the dashboard at `/`. On first
//! start with an empty registry it registers the bundled example model as `churn`, points
//! `churn@champion` at it and serves it as endpoint `churn`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_records::{Durability, Recorder, RecorderConfig};

use berth_registry::{RegisterRequest, Registry, Target};
use berth_runtime::LoadOptions;
use berth_serve::deployment::Watchers;
use berth_serve::live::LiveRoutes;
use berth_serve::metrics::ServeMetrics;
use berth_serve::monitoring::{LiveProfiles, LiveProfilesConfig, drift_router};
use berth_serve::rollouts::RolloutController;
use clap::Args;

use crate::batching_args::BatchArgs;
use crate::read_yaml_file;
use crate::registry_args::StoreArgs;

/// The bundled example: the XGBoost churn classifier of the fixtures (23 features).
const EXAMPLE_MODEL: &[u8] = include_bytes!("../../../fixtures/models/xgb_classifier.json");
const EXAMPLE_NAME: &str = "churn";

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BERTH_LISTEN")]
    listen: SocketAddr,
    /// Do not register the example model into an empty registry.
    #[arg(long)]
    no_example: bool,
    /// How often to look for registry changes, in milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
    /// Keep no prediction records.
    #[arg(long)]
    no_records: bool,
    /// Profile no live traffic (no live drift, prediction drift or data-quality gauges).
    #[arg(long)]
    no_profiles: bool,
    /// Run no scheduled jobs here (another server sharing the store runs them).
    #[arg(long)]
    no_jobs: bool,
    /// When a prediction record is safe: `group` (written every flush interval; a kill -9 can
    /// lose that window) or `sync` (on disk before the answer is sent).
    #[arg(long, value_parser = ["group", "sync"])]
    durability: Option<String>,
    /// YAML file with the prediction recorder's settings (durability, flush_interval_ms,
    /// queue_capacity, spool_dir, redaction, ...; see docs/RECORDS.md).
    #[arg(long, value_name = "FILE")]
    records: Option<PathBuf>,
    #[command(flatten)]
    batching: BatchArgs,
}

async fn register_example(registry: &Registry, actor: &str) -> anyhow::Result<bool> {
    if !registry.models().await?.is_empty() {
        return Ok(false);
    }
    let request = RegisterRequest {
        description: Some("Example churn classifier (XGBoost), bundled with berth".into()),
        reason: Some("first start: bundled example".into()),
        ..RegisterRequest::default()
    };
    let version = registry
        .register(
            EXAMPLE_NAME,
            "churn.json",
            EXAMPLE_MODEL.into(),
            request,
            actor,
        )
        .await?;
    registry
        .set_alias(
            EXAMPLE_NAME,
            "champion",
            version.version,
            actor,
            Some("first start".into()),
        )
        .await?;
    let target = Target::Alias {
        model: EXAMPLE_NAME.into(),
        alias: "champion".into(),
    };
    registry
        .set_endpoint(EXAMPLE_NAME, target, actor, Some("first start".into()))
        .await?;
    Ok(true)
}

pub async fn run(args: UpArgs, store: &StoreArgs, threads: usize) -> anyhow::Result<()> {
    let registry = store.open().await?;
    if !args.no_example && register_example(&registry, &store.actor()).await? {
        eprintln!("registered the example model as churn/1 (churn@champion, endpoint churn)");
    }
    let recorder = if args.no_records {
        None
    } else {
        let config = recorder_config(&args, store)?;
        let durability = config.durability;
        let recorder = Recorder::open(config, registry.metadata().clone())
            .await
            .context("starting the prediction recorder")?;
        Some((recorder, durability))
    };
    let mut profiles = None;
    let metrics = ServeMetrics::with(|r| {
        if let Some((recorder, _)) = &recorder {
            recorder.register_metrics(r);
        }
        if !args.no_profiles {
            profiles = Some(LiveProfiles::start(
                r,
                registry.metadata().clone(),
                LiveProfilesConfig::default(),
            ));
        }
    });
    let watchers = Watchers {
        metrics: Arc::new(metrics),
        recorder: recorder.clone(),
        profiles: profiles.clone(),
    };
    let live = Arc::new(LiveRoutes::new(
        registry.clone(),
        args.batching.policy()?,
        LoadOptions {
            onnx_intra_threads: threads,
        },
        watchers,
    ));
    let report = live.sync().await?;
    let poll = Duration::from_millis(args.poll_ms.max(50));
    live.clone().watch(poll);
    let windows = live.router().windows();
    RolloutController::new(registry.clone(), windows.clone()).run(poll);
    if !args.no_jobs {
        crate::jobs::start_scheduler(registry.clone(), threads, Duration::from_secs(1));
    }
    let app = berth_serve::admin_router(registry.clone())
        .merge(crate::jobs::jobs_router(registry.clone()))
        .merge(berth_serve::rollout_router(registry, windows))
        .merge(berth_serve::inference_router(live.router()))
        .merge(berth_serve::dashboard_router());
    let app = match &profiles {
        Some(profiles) => app.merge(drift_router(profiles.clone())),
        None => app,
    };
    let bound = crate::server::bind(args.listen).await?;
    let address = bound.address;
    eprintln!(
        "berth up on http://{address}/v2 ({} names served; store {})",
        report.names, store.store
    );
    eprintln!("  dashboard:  http://{address}/");
    eprintln!("  inference:  POST http://{address}/v2/models/churn/infer");
    eprintln!("  models:     http://{address}/v2/models/churn");
    eprintln!("  admin API:  http://{address}/api/v1/models (OpenAPI: /api/v1/openapi.json)");
    crate::server::serve_until_signal(bound, app).await?;
    if let Some(profiles) = &profiles
        && let Err(e) = profiles.flush().await
    {
        eprintln!("warning: the last profile windows were not written: {e}");
    }
    if let Some((recorder, _)) = recorder {
        let stats = recorder
            .shutdown()
            .await
            .context("flushing the prediction records")?;
        eprintln!("prediction records flushed ({stats:?})");
    }
    Ok(())
}

/// The recorder's settings: the file's (if any), the spool in the data folder unless the file
/// says otherwise, and `--durability` over both.
fn recorder_config(args: &UpArgs, store: &StoreArgs) -> anyhow::Result<RecorderConfig> {
    let mut config = match &args.records {
        Some(path) => records_file(path, &store.store)?,
        None => RecorderConfig {
            spool_dir: spool_dir(&store.store),
            ..RecorderConfig::default()
        },
    };
    if let Some(d) = &args.durability {
        config.durability = if d == "sync" {
            Durability::Sync
        } else {
            Durability::Group
        };
    }
    Ok(config)
}

/// The recorder's settings from the YAML file at `path`; the spool in the data folder of
/// `store` unless the file names one (two servers on two stores never share a spool).
fn records_file(path: &Path, store: &str) -> anyhow::Result<RecorderConfig> {
    let file: serde_yaml::Value = read_yaml_file(path, "records")?;
    let names_spool = file.get("spool_dir").is_some();
    let mut config: RecorderConfig = serde_yaml::from_value(file)
        .map_err(|e| crate::UsageError(format!("{}: not a records file: {e}", path.display())))?;
    if !names_spool {
        config.spool_dir = spool_dir(store);
    }
    Ok(config)
}

/// `spool/` in the data folder, or `berth-spool` beside a database given by URL.
fn spool_dir(store: &str) -> PathBuf {
    if store.contains("://") {
        PathBuf::from("berth-spool")
    } else {
        Path::new(store).join("spool")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_file_keeps_the_spool_in_the_data_folder_unless_it_names_one() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("records.yaml");
        std::fs::write(&file, "batch_size: 2000\n").expect("write");
        let config = records_file(&file, "/srv/berth-data").expect("config");
        assert_eq!(config.batch_size, 2000);
        assert_eq!(config.spool_dir, Path::new("/srv/berth-data/spool"));
        std::fs::write(&file, "spool_dir: /var/spool/berth\n").expect("write");
        let config = records_file(&file, "/srv/berth-data").expect("config");
        assert_eq!(config.spool_dir, Path::new("/var/spool/berth"));
        // The example of docs/RECORDS.md is a file berth takes, with the defaults it states.
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/RECORDS.md"),
        )
        .expect("docs/RECORDS.md");
        let example = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a YAML example");
        std::fs::write(&file, example).expect("write");
        let config = records_file(&file, "/srv/berth-data").expect("the documented example");
        let defaults = RecorderConfig::default();
        assert_eq!(
            (
                config.batch_size,
                config.queue_capacity,
                config.flush_interval_ms
            ),
            (
                defaults.batch_size,
                defaults.queue_capacity,
                defaults.flush_interval_ms
            )
        );
        std::fs::write(&file, "batch_size: lots\n").expect("write");
        let err = records_file(&file, "/srv/berth-data").expect_err("not a number");
        assert!(err.to_string().contains("not a records file"), "{err}");
    }
}
