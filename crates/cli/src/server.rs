//! Running an HTTP app until SIGTERM or Ctrl-C, for every command that serves.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

/// A listening socket, with SIGTERM already caught: a signal that comes as soon as the address
/// is announced still stops the server gracefully.
pub struct Bound {
    listener: TcpListener,
    pub address: SocketAddr,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

/// Binds `address` (port 0 picks a free one) and catches SIGTERM.
pub async fn bind(address: SocketAddr) -> anyhow::Result<Bound> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    Ok(Bound {
        address: listener.local_addr()?,
        listener,
        #[cfg(unix)]
        terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("catching SIGTERM")?,
    })
}

/// Serves `app` until SIGTERM or Ctrl-C, then finishes the requests in flight.
pub async fn serve_until_signal(bound: Bound, app: axum::Router) -> anyhow::Result<()> {
    #[cfg(unix)]
    let mut terminate = bound.terminate;
    let stop = async move {
        #[cfg(unix)]
        let terminate = terminate.recv();
        #[cfg(not(unix))]
        let terminate = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = terminate => {},
        }
    };
    axum::serve(bound.listener, app)
        .with_graceful_shutdown(stop)
        .await
        .context("serving")?;
    eprintln!("berth stopped");
    Ok(())
}
