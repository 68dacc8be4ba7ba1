//! The TF Serving / KServe V1 predict protocol.
//!
//! `POST /v1/models/{m}:predict`, `/v1/models/{m}/versions/{v}:predict` and
//! `/v1/models/{m}/labels/{alias}:predict` (the label is the registry alias: `{m}@{alias}`).
//! The body is `{"instances": [...]}` — rows, each an object of fields or an array in signature
//! order — answered with `{"predictions": [...]}`, one object of outputs per row; or
//! `{"inputs": {field: [values]}}` (columns) answered with `{"outputs": {name: [per row]}}`.
//! Errors are `{"error": "..."}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::deployment::{Caller, Router as Routes, ServeError};
use crate::protocol::{
    answer_headers, json_error, json_serve_error, nan_as_null, row_value, rows_json,
};
use crate::validate::Columns;

/// The V1 routes over `routes`.
pub fn router(routes: Arc<Routes>) -> Router {
    Router::new()
        .route("/v1/models/{target}", post(predict))
        .route("/v1/models/{m}/versions/{target}", post(predict_version))
        .route("/v1/models/{m}/labels/{target}", post(predict_label))
        .with_state(routes)
}

/// `name:predict` → `name`; anything else is not a V1 route (404).
fn strip_verb(target: &str) -> Result<&str, Box<Response>> {
    target.strip_suffix(":predict").ok_or_else(|| {
        Box::new(json_error(
            StatusCode::NOT_FOUND,
            format!("unknown V1 route '{target}': expected NAME:predict"),
        ))
    })
}

async fn predict(
    State(routes): State<Arc<Routes>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match strip_verb(&target) {
        Ok(m) => run(&routes, m, None, &headers, &body).await,
        Err(r) => *r,
    }
}

async fn predict_version(
    State(routes): State<Arc<Routes>>,
    Path((m, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match strip_verb(&target) {
        Ok(v) => run(&routes, &m, Some(v), &headers, &body).await,
        Err(r) => *r,
    }
}

async fn predict_label(
    State(routes): State<Arc<Routes>>,
    Path((m, target)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match strip_verb(&target) {
        Ok(alias) => run(&routes, &format!("{m}@{alias}"), None, &headers, &body).await,
        Err(r) => *r,
    }
}

async fn run(
    routes: &Routes,
    m: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let caller = Caller::new(m, "v1").with_headers(headers);
    let request: Map<String, Value> = match serde_json::from_slice(&nan_as_null(body)) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid predict request: {e}; expected {{\"instances\": [...]}} or {{\"inputs\": ...}}"
                ),
            );
        }
    };
    let route = match routes.resolve(m, version) {
        Ok(r) => r,
        Err(e) => return json_serve_error(e),
    };
    let signature = &route.primary().signature;
    let (columns, row_format) = match (request.get("instances"), request.get("inputs")) {
        (Some(Value::Array(rows)), None) => (
            Columns::from_instances(signature, rows).map_err(ServeError::from),
            true,
        ),
        (None, Some(Value::Object(columns))) => {
            let columns = columns
                .iter()
                .map(|(name, v)| match v {
                    Value::Array(values) => Ok((name.clone(), values.clone())),
                    other => Ok((name.clone(), vec![other.clone()])),
                })
                .collect::<Result<Vec<_>, ServeError>>()
                .and_then(|c| Ok(Columns::from_columns(c)?));
            (columns, false)
        }
        (None, Some(Value::Array(rows))) => (
            Columns::from_instances(signature, rows).map_err(ServeError::from),
            false,
        ),
        _ => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "expected exactly one of \"instances\" (a list of rows) or \"inputs\" (columns)",
            );
        }
    };
    let columns = match columns {
        Ok(c) => c,
        Err(e) => return json_serve_error(e),
    };
    let rows = columns.rows();
    let (deployment, prediction) = match route.predict(&columns, &caller).await {
        Ok(answer) => answer,
        Err(e) => return json_serve_error(e),
    };
    let headers = answer_headers(&deployment, &prediction.id);
    let batched = prediction.batched;
    let body = if row_format {
        json!({"predictions": rows_json(&batched.outputs, rows)})
    } else {
        let outputs: Map<String, Value> = batched
            .outputs
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    Value::Array((0..rows).map(|r| row_value(o, r)).collect()),
                )
            })
            .collect();
        json!({"outputs": outputs})
    };
    (headers, Json(body)).into_response()
}
