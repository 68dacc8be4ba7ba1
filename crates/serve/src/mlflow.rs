//! MLflow's scoring protocol: `POST /invocations`, `/ping`, `/health`, `/version`.
//!
//! JSON bodies carry exactly one of `dataframe_split` (`{"columns": [...], "data": [[...]]}`),
//! `dataframe_records` (`[{column: value}]`), `instances` (rows) or `inputs` (rows or columns);
//! `text/csv` bodies have a header row. The answer is `{"predictions": [...]}`, one object of
//! outputs per row. Errors are `{"error_code": "...", "message": "..."}`: 400 for a bad body or
//! bad values, 404 for an unknown model, 415 for another content type or a body that is not
//! UTF-8. The model is the one named by the `x-berth-model` header, or the only one served.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::deployment::{Caller, Deployment, Router as Routes, ServeError};
use crate::protocol::{answer_headers, nan_as_null, retry_headers, rows_json, status_of};
use crate::validate::Columns;

/// The MLflow routes over `routes`.
pub fn router(routes: Arc<Routes>) -> Router {
    Router::new()
        .route("/invocations", post(invocations))
        .route("/ping", get(|| async { StatusCode::OK }))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .with_state(routes)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error_code": code, "message": message.into()})),
    )
        .into_response()
}

fn serve_error(e: ServeError) -> Response {
    let (status, retry) = status_of(&e);
    let code = match status {
        StatusCode::NOT_FOUND => "RESOURCE_DOES_NOT_EXIST",
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::SERVICE_UNAVAILABLE => "TEMPORARILY_UNAVAILABLE",
        _ => "INTERNAL_ERROR",
    };
    let body = Json(json!({"error_code": code, "message": e.to_string()}));
    (status, retry_headers(retry), body).into_response()
}

fn bad(message: impl Into<String>) -> ServeError {
    ServeError::BadRequest(message.into())
}

fn columns_from_json(d: &Deployment, body: &Map<String, Value>) -> Result<Columns, ServeError> {
    const KEYS: [&str; 4] = [
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs",
    ];
    let given: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| body.contains_key(*k))
        .collect();
    let [key] = given.as_slice() else {
        return Err(bad(format!(
            "expected exactly one of {}; got {}",
            KEYS.join(", "),
            if given.is_empty() {
                "none".to_string()
            } else {
                given.join(", ")
            }
        )));
    };
    match (*key, &body[*key]) {
        ("dataframe_split", Value::Object(split)) => {
            let names: Vec<String> = match split.get("columns") {
                Some(Value::Array(c)) => c
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad("dataframe_split.columns: expected strings"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(bad(
                        "dataframe_split.columns: expected a list of column names",
                    ));
                }
            };
            match split.get("data") {
                Some(Value::Array(rows)) => Ok(Columns::from_rows(names.into(), rows)?),
                _ => Err(bad("dataframe_split.data: expected a list of rows")),
            }
        }
        ("dataframe_records", Value::Array(records)) => Ok(Columns::from_records(records)?),
        ("instances" | "inputs", Value::Array(rows)) => {
            Ok(Columns::from_instances(&d.signature, rows)?)
        }
        ("inputs", Value::Object(columns)) => Ok(Columns::from_columns(
            columns
                .iter()
                .map(|(n, v)| {
                    (
                        n.clone(),
                        v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]),
                    )
                })
                .collect(),
        )?),
        (key, other) => Err(bad(format!(
            "{key}: unexpected {}",
            if other.is_object() { "object" } else { "value" }
        ))),
    }
}

/// A CSV cell as JSON: empty is null, numbers and booleans as such, anything else text.
fn csv_cell(cell: &str) -> Value {
    let cell = cell.trim();
    if cell.is_empty() {
        return Value::Null;
    }
    if let Ok(x) = cell.parse::<f64>()
        && let Some(n) = serde_json::Number::from_f64(x)
    {
        return Value::Number(n);
    }
    match cell {
        "true" | "True" => Value::Bool(true),
        "false" | "False" => Value::Bool(false),
        _ => Value::String(cell.to_string()),
    }
}

fn columns_from_csv(text: &str) -> Result<Columns, ServeError> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .ok_or_else(|| bad("the CSV body is empty"))?
        .split(',')
        .map(|h| h.trim().to_string())
        .collect();
    let rows: Vec<Value> = lines
        .map(|l| Value::Array(l.split(',').map(csv_cell).collect()))
        .collect();
    Ok(Columns::from_rows(header.into(), &rows)?)
}

async fn invocations(
    State(routes): State<Arc<Routes>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let arrived = Caller::new("", "mlflow");
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let is_csv = content_type.starts_with("text/csv");
    if !is_csv && !content_type.starts_with("application/json") {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            format!(
                "content type {content_type} is not supported: use application/json or text/csv"
            ),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_REQUEST",
            "the body is not UTF-8",
        );
    };
    let name = headers.get("x-berth-model").and_then(|v| v.to_str().ok());
    let route = match name.map_or_else(|| routes.only(), |n| routes.resolve(n, None)) {
        Ok(r) => r,
        Err(e) => return serve_error(e),
    };
    let columns = if is_csv {
        columns_from_csv(text)
    } else {
        match serde_json::from_slice::<Map<String, Value>>(&nan_as_null(text.as_bytes())) {
            Ok(body) => columns_from_json(route.primary(), &body),
            Err(e) => Err(bad(format!("invalid JSON body: {e}"))),
        }
    };
    let columns = match columns {
        Ok(c) => c,
        Err(e) => return serve_error(e),
    };
    let rows = columns.rows();
    let caller = Caller {
        endpoint: name.unwrap_or(&route.primary().model),
        headers: Some(&headers),
        ..arrived
    };
    match route.predict(&columns, &caller).await {
        Ok((deployment, prediction)) => {
            let headers = answer_headers(&deployment, &prediction.id);
            (
                headers,
                Json(json!({"predictions": rows_json(&prediction.batched.outputs, rows)})),
            )
                .into_response()
        }
        Err(e) => serve_error(e),
    }
}
