//! `berth api`: serve the admin REST API (`/api/v1/...`, OpenAPI at `/api/v1/openapi.json`)
//! over the registry, until SIGTERM or Ctrl-C.

use std::net::SocketAddr;

use clap::Args;

use crate::registry_args::StoreArgs;
use crate::server;

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "BERTH_LISTEN")]
    listen: SocketAddr,
}

pub async fn run(args: ApiArgs, store: &StoreArgs) -> anyhow::Result<()> {
    let registry = store.open().await?;
    let bound = server::bind(args.listen).await?;
    let address = bound.address;
    eprintln!(
        "berth admin API on http://{address}/api/v1 (OpenAPI: http://{address}/api/v1/openapi.json)"
    );
    server::serve_until_signal(bound, berth_serve::admin_router(registry)).await
}
