//! The jobs API: `GET|POST /api/v1/jobs`, `GET|DELETE /api/v1/jobs/{name}`. Who changes a job
//! comes from the `x-berth-actor` header, as in the rest of the admin API.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_batch::ScoreJob;
use berth_registry::Registry;
use berth_serve::{Actor, json_error as error};
use berth_store::StoreError;
use serde::Deserialize;
use serde_json::json;

use super::{RUNS_SHOWN, checked, valid_name, view};

/// What `POST /api/v1/jobs` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJob {
    name: String,
    schedule: String,
    spec: ScoreJob,
    #[serde(default)]
    replace: bool,
    reason: Option<String>,
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Conflict(m) => error(StatusCode::CONFLICT, m),
        e => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `GET|POST /api/v1/jobs`, `GET|DELETE /api/v1/jobs/{name}`.
pub fn jobs_router(registry: Registry) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/jobs", get(list_jobs).post(add_job))
        .route("/api/v1/jobs/{name}", get(show_job).delete(remove_job))
        .with_state(Arc::new(registry))
}

async fn list_jobs(State(registry): State<Arc<Registry>>) -> Response {
    let rows = match registry.metadata().list_jobs().await {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    let mut jobs = Vec::new();
    for row in rows {
        match view(&registry, row, 1).await {
            Ok(job) => jobs.push(job),
            Err(e) => return store_error(e),
        }
    }
    Json(json!({"jobs": jobs})).into_response()
}

async fn show_job(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    match registry.metadata().get_job(&name).await {
        Ok(Some(row)) => match view(&registry, row, RUNS_SHOWN).await {
            Ok(job) => Json(job).into_response(),
            Err(e) => store_error(e),
        },
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job named '{name}'")),
        Err(e) => store_error(e),
    }
}

async fn add_job(
    State(registry): State<Arc<Registry>>,
    Actor(actor): Actor,
    body: Result<Json<NewJob>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(problems) = valid_name(&new.name).and_then(|()| checked(&new.schedule, &new.spec)) {
        return error(StatusCode::BAD_REQUEST, problems);
    }
    let spec = match serde_json::to_value(&new.spec) {
        Ok(spec) => spec,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let change = registry.change(&actor, new.reason);
    match registry
        .metadata()
        .put_job(&new.name, new.schedule.trim(), &spec, new.replace, &change)
        .await
    {
        Ok(row) => match view(&registry, row, 0).await {
            Ok(job) => (StatusCode::CREATED, Json(job)).into_response(),
            Err(e) => store_error(e),
        },
        Err(e) => store_error(e),
    }
}

async fn remove_job(
    State(registry): State<Arc<Registry>>,
    Actor(actor): Actor,
    Path(name): Path<String>,
) -> Response {
    let change = registry.change(&actor, Some("DELETE /api/v1/jobs".into()));
    match registry.metadata().delete_job(&name, &change).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no job named '{name}'")),
        Err(e) => store_error(e),
    }
}
