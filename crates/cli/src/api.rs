//! `berth api`: serve the admin REST API (`/api/v1/...`, OpenAPI at `/api/v1/openapi.json`)
//! over the registry, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;

use crate::registry_args::StoreArgs;

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BERTH_LISTEN")]
    listen: SocketAddr,
}

pub async fn run(args: ApiArgs, store: &StoreArgs) -> anyhow::Result<()> {
    let registry = store.open().await?;
    let router = berth_serve::admin_router(registry);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    eprintln!(
        "berth admin API on http://{address}/api/v1 (OpenAPI: http://{address}/api/v1/openapi.json)"
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the admin API")?;
    eprintln!("berth admin API stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
