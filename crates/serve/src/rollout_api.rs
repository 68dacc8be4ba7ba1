//! The rollout routes of the admin API, served by `berth up` (they read the server's live
//! windows):
//!
//! - `GET  /api/v1/endpoints/{e}/rollouts`: the endpoint's rollouts, newest first; an
//!   unfinished one carries `live`, the current window as this server counts it (requests,
//!   errors, p99 latency of both sides, the shadow comparison with its worst examples).
//! - `POST /api/v1/endpoints/{e}/rollouts` `{"to_version": 2, "spec": {...}, "reason": ...}`:
//!   starts one (201); `spec` is a rollout spec as in YAML, the defaults when absent.
//! - `POST /api/v1/endpoints/{e}/rollouts/current/{pause|resume|abort|force-promote}`.
//! - `POST /api/v1/endpoints/{e}/rollback`: all traffic back to the previous version, at once.
//!
//! Errors as in the rest of the admin API: 400 a bad spec, 404 no such endpoint or rollout,
//! 409 an operation the rollout's state does not allow (or a rollout already running).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_registry::Registry;
use berth_rollout::{Command, RolloutSpec};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::{Actor, ApiJson, ApiPath, OptionalJson};
use crate::rollouts::{self, RolloutView, StartRequest};
use crate::route::TrafficWindows;

#[derive(Clone)]
struct RolloutState {
    registry: Registry,
    windows: Arc<TrafficWindows>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    to_version: i64,
    #[serde(default)]
    spec: Option<RolloutSpec>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    reason: Option<String>,
}

/// The rollout routes over `registry`, with live windows from the server's router.
pub fn rollout_router(registry: Registry, windows: Arc<TrafficWindows>) -> Router {
    Router::new()
        .route("/api/v1/endpoints/{e}/rollouts", get(list).post(start))
        .route(
            "/api/v1/endpoints/{e}/rollouts/current/{command}",
            post(operate),
        )
        .route("/api/v1/endpoints/{e}/rollback", post(rollback))
        .with_state(RolloutState { registry, windows })
}

async fn list(
    State(state): State<RolloutState>,
    ApiPath(endpoint): ApiPath<String>,
) -> Result<Json<Vec<RolloutView>>, ApiError> {
    state.registry.endpoint(&endpoint).await?;
    let views = rollouts::list(&state.registry, Some(&endpoint), 100)
        .await?
        .into_iter()
        .map(|v| {
            if v.state.is_finished() {
                v
            } else {
                v.with_live(&state.windows)
            }
        })
        .collect();
    Ok(Json(views))
}

async fn start(
    State(state): State<RolloutState>,
    ApiPath(endpoint): ApiPath<String>,
    Actor(actor): Actor,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    let rollout = rollouts::start(
        &state.registry,
        StartRequest {
            endpoint: endpoint.clone(),
            to_version: body.to_version,
            spec: body.spec.unwrap_or_default(),
            actor,
            reason: body.reason,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(latest(&state, &endpoint, rollout.id()).await?),
    ))
}

async fn operate(
    State(state): State<RolloutState>,
    ApiPath((endpoint, command)): ApiPath<(String, String)>,
    Actor(actor): Actor,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<Json<RolloutView>, ApiError> {
    let command: Command = serde_json::from_value(serde_json::Value::String(command.clone()))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "command: expected pause, resume, abort or force-promote, got {command:?}"
            ))
        })?;
    let reason = body.and_then(|b| b.reason);
    let rollout = rollouts::operate(
        &state.registry,
        &endpoint,
        command,
        &actor,
        reason.as_deref(),
    )
    .await?;
    Ok(Json(latest(&state, &endpoint, rollout.id()).await?))
}

async fn rollback(
    State(state): State<RolloutState>,
    ApiPath(endpoint): ApiPath<String>,
    Actor(actor): Actor,
    OptionalJson(body): OptionalJson<ReasonBody>,
) -> Result<Json<RolloutView>, ApiError> {
    let reason = body.and_then(|b| b.reason);
    let rollout = rollouts::rollback(&state.registry, &endpoint, &actor, reason.as_deref()).await?;
    Ok(Json(latest(&state, &endpoint, rollout.id()).await?))
}

/// The rollout just changed, as the API shows it.
async fn latest(state: &RolloutState, endpoint: &str, id: &str) -> Result<RolloutView, ApiError> {
    rollouts::list(&state.registry, Some(endpoint), 1)
        .await?
        .into_iter()
        .find(|v| v.id == id)
        .map(|v| v.with_live(&state.windows))
        .ok_or_else(|| {
            ApiError::from(berth_registry::RegistryError::NotFound(format!(
                "rollout {id} vanished"
            )))
        })
}
