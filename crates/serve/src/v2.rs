//! The Open Inference Protocol (KServe V2) over REST, JSON tensors.
//!
//! `GET /v2`, `/v2/health/live|ready`, `/v2/models/{m}[/versions/{v}][/ready]` and
//! `POST /v2/models/{m}[/versions/{v}]/infer`. An infer request's inputs are either one tensor
//! shaped like the model's input (`[N, features]`, columns in signature order) or one tensor
//! per field (`[N]` or `[N, 1]`), data flat or nested. Errors are `{"error": "..."}`: 400 for a
//! bad request or bad values (all listed), 404 for an unknown model or version, 503 when the
//! model's queue is full (with `Retry-After`), 504 when it did not answer in time.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_core::NamedTensor;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::deployment::{Deployment, Router as Routes, ServeError};
use crate::protocol::{answer_headers, new_prediction_id, retry_headers, status_of, values};
use crate::validate::Columns;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InferRequest {
    id: Option<String>,
    /// Accepted and not used yet.
    #[serde(default, rename = "parameters")]
    _parameters: Option<serde::de::IgnoredAny>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    /// Accepted and not used yet (the binary extension's `binary_data_size` comes later).
    #[serde(default, rename = "parameters")]
    _parameters: Option<serde::de::IgnoredAny>,
    data: Value,
}

#[derive(Debug, Deserialize)]
struct RequestedOutput {
    name: String,
}

/// The V2 routes over `routes`.
pub fn router(routes: Arc<Routes>) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{m}", get(model_metadata))
        .route("/v2/models/{m}/ready", get(model_ready))
        .route("/v2/models/{m}/infer", post(infer))
        .route("/v2/models/{m}/versions/{v}", get(version_metadata))
        .route("/v2/models/{m}/versions/{v}/ready", get(version_ready))
        .route("/v2/models/{m}/versions/{v}/infer", post(infer_version))
        .with_state(routes)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn serve_error(e: ServeError) -> Response {
    let (status, retry) = status_of(&e);
    (
        status,
        retry_headers(retry),
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

async fn server_metadata() -> Json<Value> {
    Json(json!({"name": "berth", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
}

async fn ready(State(routes): State<Arc<Routes>>) -> StatusCode {
    if routes.names().is_empty() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

fn metadata(d: &Deployment, name: &str) -> Value {
    let tensor = |name: &str, datatype: &str, shape: Vec<i64>| json!({"name": name, "datatype": datatype, "shape": shape});
    json!({
        "name": name,
        "versions": [d.version.to_string()],
        "platform": d.info.format.as_str(),
        "inputs": d.info.inputs.iter().map(|t| tensor(&t.name, t.element_type.as_str(), t.shape.iter().map(|s| s.as_i64()).collect())).collect::<Vec<_>>(),
        "outputs": d.info.outputs.iter().map(|o| tensor(&o.tensor.name, o.tensor.element_type.as_str(), o.tensor.shape.iter().map(|s| s.as_i64()).collect())).collect::<Vec<_>>(),
    })
}

async fn model_metadata(State(routes): State<Arc<Routes>>, Path(m): Path<String>) -> Response {
    match routes.resolve(&m, None) {
        Ok(d) => Json(metadata(&d, &m)).into_response(),
        Err(e) => serve_error(e),
    }
}

async fn version_metadata(
    State(routes): State<Arc<Routes>>,
    Path((m, v)): Path<(String, String)>,
) -> Response {
    match routes.resolve(&m, Some(&v)) {
        Ok(d) => Json(metadata(&d, &m)).into_response(),
        Err(e) => serve_error(e),
    }
}

async fn model_ready(State(routes): State<Arc<Routes>>, Path(m): Path<String>) -> Response {
    routes
        .resolve(&m, None)
        .map_or_else(serve_error, |_| StatusCode::OK.into_response())
}

async fn version_ready(
    State(routes): State<Arc<Routes>>,
    Path((m, v)): Path<(String, String)>,
) -> Response {
    routes
        .resolve(&m, Some(&v))
        .map_or_else(serve_error, |_| StatusCode::OK.into_response())
}

async fn infer(
    State(routes): State<Arc<Routes>>,
    Path(m): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(&routes, &m, None, &headers, &body).await
}

async fn infer_version(
    State(routes): State<Arc<Routes>>,
    Path((m, v)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(&routes, &m, Some(&v), &headers, &body).await
}

/// Flattens nested arrays row-major.
fn flatten(data: &Value, out: &mut Vec<Value>) {
    match data {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other.clone()),
    }
}

/// Checks one value against the tensor's declared datatype.
fn fits(datatype: &str, v: &Value) -> bool {
    match datatype {
        "BOOL" => v.is_boolean(),
        "BYTES" => v.is_string(),
        "FP16" | "FP32" | "FP64" | "BF16" => v.is_number() || v.is_null(),
        "INT8" | "INT16" | "INT32" | "INT64" => v.is_i64(),
        "UINT8" | "UINT16" | "UINT32" | "UINT64" => v.is_u64(),
        _ => false,
    }
}

/// The request's tensors as columns for validation.
fn columns(d: &Deployment, inputs: &[InputTensor]) -> Result<Columns, ServeError> {
    let bad = |m: String| ServeError::BadRequest(m);
    let mut flat = Vec::with_capacity(inputs.len());
    for t in inputs {
        let mut values = Vec::new();
        flatten(&t.data, &mut values);
        let dims: Option<Vec<usize>> = t.shape.iter().map(|&d| usize::try_from(d).ok()).collect();
        let dims = dims.ok_or_else(|| {
            bad(format!(
                "input '{}': shape {:?} has a negative dimension",
                t.name, t.shape
            ))
        })?;
        let expected: usize = dims.iter().product();
        if dims.is_empty() || expected != values.len() {
            return Err(bad(format!(
                "input '{}': shape {:?} needs {expected} values, got {}",
                t.name,
                t.shape,
                values.len()
            )));
        }
        if let Some(v) = values.iter().find(|v| !fits(&t.datatype, v)) {
            return Err(bad(format!(
                "input '{}': datatype {} cannot hold {v}",
                t.name, t.datatype
            )));
        }
        flat.push((t, dims, values));
    }
    let fields = &d.signature.inputs;
    // One tensor shaped like the model's input: columns in signature order.
    if let [(t, dims, values)] = flat.as_slice()
        && !fields.iter().any(|f| f.name == t.name)
        && dims.len() == 2
        && dims[1] == fields.len()
    {
        let rows = dims[0];
        let columns = fields
            .iter()
            .enumerate()
            .map(|(c, f)| {
                (
                    f.name.clone(),
                    (0..rows)
                        .map(|r| values[r * fields.len() + c].clone())
                        .collect(),
                )
            })
            .collect();
        return Ok(Columns::from_columns(columns)?);
    }
    let mut columns = Vec::with_capacity(flat.len());
    for (t, dims, values) in flat {
        if dims.len() > 2 || (dims.len() == 2 && dims[1] != 1) {
            return Err(bad(format!(
                "input '{}': shape {:?}; send one tensor per field shaped [N] or [N, 1], or one tensor [N, {}] with the fields in order",
                t.name,
                t.shape,
                fields.len()
            )));
        }
        columns.push((t.name.clone(), values));
    }
    Ok(Columns::from_columns(columns)?)
}

fn tensor_json(t: &NamedTensor) -> Value {
    json!({"name": t.name, "datatype": t.tensor.element_type().as_str(), "shape": t.tensor.shape(), "data": values(t)})
}

async fn run(
    routes: &Routes,
    m: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && !ct.starts_with("application/json")
    {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {ct} is not supported: send JSON tensors as application/json \
                 (the binary tensor extension is not supported yet)"
            ),
        );
    }
    let request: InferRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid inference request: {e}"),
            );
        }
    };
    let deployment = match routes.resolve(m, version) {
        Ok(d) => d,
        Err(e) => return serve_error(e),
    };
    let columns = match columns(&deployment, &request.inputs) {
        Ok(c) => c,
        Err(e) => return serve_error(e),
    };
    let batched = match deployment.predict(&columns).await {
        Ok(b) => b,
        Err(e) => return serve_error(e),
    };
    let wanted: Option<Vec<&str>> = request
        .outputs
        .as_ref()
        .map(|o| o.iter().map(|o| o.name.as_str()).collect());
    if let Some(wanted) = &wanted
        && let Some(missing) = wanted
            .iter()
            .find(|w| !batched.outputs.iter().any(|o| &o.name == *w))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown output '{missing}'"),
        );
    }
    let outputs: Vec<Value> = batched
        .outputs
        .iter()
        .filter(|o| wanted.as_ref().is_none_or(|w| w.contains(&o.name.as_str())))
        .map(tensor_json)
        .collect();
    let id = request.id.unwrap_or_else(new_prediction_id);
    let headers = answer_headers(&deployment, &id);
    let body = json!({
        "model_name": m,
        "model_version": deployment.version.to_string(),
        "id": id,
        "outputs": outputs,
    });
    (headers, Json(body)).into_response()
}
