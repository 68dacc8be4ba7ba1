//! berth's HTTP surface.
//!
//! The path of a request: a protocol adapter ([`v2`], [`v1`], [`mlflow`]) turns the body into columns, the
//! [`deployment::Router`] picks the version, [`validate`] checks the columns against its
//! signature, and its [`batcher`] batches it with other requests and gives each caller its own
//! rows back.
//!
//! [`inference_router`] speaks the serving protocols (Open Inference Protocol V2 with the
//! binary tensor extension, TF Serving / KServe V1, MLflow's `/invocations`) and `/metrics`.
//! The admin REST API lives under `/api/v1/` ([`admin_router`]): models, versions,
//! aliases, endpoints, "what was live at T" and the audit log, over a
//! [`Registry`](berth_registry::Registry), with its OpenAPI document generated from the code.
//! The [`dashboard`] at `/` draws itself from those two.

pub mod admin;
pub mod batcher;
mod binary;
pub mod dashboard;
pub mod deployment;
mod error;
mod extract;
pub mod live;
pub mod metrics;
pub mod mlflow;
pub mod monitoring;
mod protocol;
pub mod rollout_api;
pub mod rollouts;
pub mod route;
pub mod v1;
pub mod v2;
pub mod validate;

pub use admin::{AdminApi, MAX_REQUEST_BYTES, admin_router};
pub use dashboard::dashboard_router;
pub use error::ApiError;
pub use extract::Actor;
pub use protocol::json_error;
pub use rollout_api::rollout_router;

/// The largest inference request body accepted (413 beyond it).
pub const MAX_INFERENCE_BYTES: usize = 64 * 1024 * 1024;

/// Every inference protocol (V2, V1, MLflow) over `routes`, counted and timed, plus
/// `GET /metrics`. Bodies over [`MAX_INFERENCE_BYTES`] get a 413 in the protocol's error shape.
pub fn inference_router(routes: std::sync::Arc<deployment::Router>) -> axum::Router {
    let metrics = routes.metrics();
    v2::router(routes.clone())
        .merge(v1::router(routes.clone()))
        .merge(mlflow::router(routes))
        .route_layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            metrics::track,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_INFERENCE_BYTES))
        .layer(axum::middleware::from_fn(
            protocol::too_large_in_protocol_shape,
        ))
        .merge(
            axum::Router::new()
                .route("/metrics", axum::routing::get(metrics::metrics_handler))
                .with_state(metrics),
        )
}
