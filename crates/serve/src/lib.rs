//! berth's HTTP surface.
//!
//! Today it holds the admin REST API under `/api/v1/` ([`admin_router`]): models, versions,
//! aliases, endpoints, "what was live at T" and the audit log, over a
//! [`Registry`](berth_registry::Registry), with its OpenAPI document generated from the code.
//! The serving protocols (Open Inference Protocol V2, the V1 `instances` body, MLflow's
//! `/invocations`) will join it here, as routers of their own merged next to this one.

pub mod admin;
mod error;
mod extract;

pub use admin::{AdminApi, MAX_REQUEST_BYTES, admin_router};
