//! `berth serve FILE`: serve one model file at once, for whoever just wants an endpoint.
//!
//! The model is loaded, its signature inferred, and it answers under its file name (without
//! extension) as version 1 over V2 REST, V1 `:predict` and MLflow `/invocations`, until SIGTERM
//! or Ctrl-C, after which requests in flight are finished.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use berth_core::Signature;
use berth_registry::RegistryError;
use berth_runtime::LoadOptions;
use berth_serve::deployment::{Deployment, Router};
use berth_serve::route::Route;
use clap::Args;

use crate::batching_args::BatchArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Model file: ONNX (.onnx), XGBoost JSON (.json) or LightGBM text (.txt).
    model: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BERTH_LISTEN")]
    listen: SocketAddr,
    /// Name to serve it under [default: the file name without extension].
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    batching: BatchArgs,
}

pub async fn run(args: ServeArgs, threads: usize) -> anyhow::Result<()> {
    let name = match args.name {
        Some(n) => n,
        None => args
            .model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    berth_registry::check_name("model", &name)?;
    let path = args.model.clone();
    let model = tokio::task::spawn_blocking(move || {
        berth_runtime::load(
            &path,
            &LoadOptions {
                onnx_intra_threads: threads,
            },
        )
    })
    .await
    .context("loading the model")?
    .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let model: Arc<dyn berth_runtime::Model> = model.into();
    let signature = Signature::infer(model.info());
    let config = args.batching.policy()?.for_version(&name, 1);
    let routes = Arc::new(Router::default());
    let route = Arc::new(Route::single(Arc::new(Deployment::start(
        &name,
        1,
        model,
        signature,
        config,
        routes.watchers(),
        None,
    ))));
    routes.replace(HashMap::from([
        (name.clone(), route.clone()),
        (format!("{name}/1"), route),
    ]));
    let app = berth_serve::inference_router(routes);
    let bound = crate::server::bind(args.listen).await?;
    let address = bound.address;
    eprintln!(
        "berth serving {name} from {} on http://{address}/v2/models/{name} (infer: POST /v2/models/{name}/infer)",
        args.model.display()
    );
    crate::server::serve_until_signal(bound, app).await
}
