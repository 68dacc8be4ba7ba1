//! What every protocol adapter shares: how a failure maps to a status, the headers that say
//! which version answered, and outputs as JSON.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{NamedTensor, json_at};
use serde_json::{Value, json};

use crate::batcher::BatchError;
use crate::deployment::{Deployment, ServeError};

/// The status a failure is reported with, and whether the client should retry later.
pub fn status_of(e: &ServeError) -> (StatusCode, bool) {
    match e {
        ServeError::NotFound(_) => (StatusCode::NOT_FOUND, false),
        ServeError::Invalid(_) | ServeError::BadRequest(_) => (StatusCode::BAD_REQUEST, false),
        ServeError::Batch(BatchError::QueueFull { .. } | BatchError::Closed)
        | ServeError::NotRecorded(_) => (StatusCode::SERVICE_UNAVAILABLE, true),
        ServeError::Batch(BatchError::Timeout(_)) => (StatusCode::GATEWAY_TIMEOUT, false),
        ServeError::Batch(BatchError::Predict(_)) => (StatusCode::INTERNAL_SERVER_ERROR, false),
    }
}

/// A failure as `{"error": "..."}` with its status (V1 and V2 shape).
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// A serving failure as `{"error": "..."}`, with its status and `Retry-After` when worth it.
pub fn json_serve_error(e: ServeError) -> Response {
    let (status, retry) = status_of(&e);
    (
        status,
        retry_headers(retry),
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

/// Middleware: a 413 (body over the limit) answered in the protocol's error shape — MLflow's
/// for `/invocations`, `{"error"}` elsewhere — instead of axum's plain text.
pub async fn too_large_in_protocol_shape(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mlflow = request.uri().path() == "/invocations";
    let response = next.run(request).await;
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let message = format!(
        "the request body is larger than the limit of {} MiB; send fewer rows per request",
        crate::MAX_INFERENCE_BYTES / (1024 * 1024)
    );
    if mlflow {
        let body = Json(json!({"error_code": "BAD_REQUEST", "message": message}));
        (StatusCode::PAYLOAD_TOO_LARGE, body).into_response()
    } else {
        json_error(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
}

/// `Retry-After` for a failure worth retrying.
pub fn retry_headers(retry: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if retry {
        headers.insert("retry-after", HeaderValue::from_static("1"));
    }
    headers
}

/// `x-berth-version` (which version answered) and `x-berth-prediction-id`.
pub fn answer_headers(deployment: &Deployment, prediction_id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(deployment.label()) {
        headers.insert("x-berth-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(prediction_id) {
        headers.insert("x-berth-prediction-id", v);
    }
    headers
}

/// Row `r` of an output: a scalar when each row has one value, else an array.
pub fn row_value(t: &NamedTensor, r: usize) -> Value {
    let w = t.tensor.row_width();
    if w == 1 && t.tensor.shape().len() <= 2 {
        json_at(t.tensor.data(), r)
    } else {
        Value::Array(
            (r * w..(r + 1) * w)
                .map(|i| json_at(t.tensor.data(), i))
                .collect(),
        )
    }
}

/// One JSON object per row with every output, for the row-oriented protocols.
pub fn rows_json(outputs: &[NamedTensor], rows: usize) -> Vec<Value> {
    (0..rows)
        .map(|r| {
            Value::Object(
                outputs
                    .iter()
                    .map(|o| (o.name.clone(), row_value(o, r)))
                    .collect(),
            )
        })
        .collect()
}

/// Python's `json.dumps` (used by tritonclient and `requests`) writes a missing float as a bare
/// `NaN`, which is not JSON. Outside strings, `NaN` becomes `null` — a missing value — before
/// parsing; everything else is left as it is.
pub fn nan_as_null(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memmem::find(body, b"NaN").is_none() {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    let (mut in_string, mut escaped, mut i) = (false, false, 0);
    while i < body.len() {
        let b = body[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if body[i..].starts_with(b"NaN") {
            out.extend_from_slice(b"null");
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_nan_becomes_null_but_not_inside_strings() {
        let body = br#"{"data": [1.0, NaN, -2], "name": "NaN \"NaN\""}"#;
        let fixed = nan_as_null(body);
        let v: Value = serde_json::from_slice(&fixed).expect("JSON now");
        assert_eq!(v["data"], json!([1.0, null, -2]));
        assert_eq!(v["name"], "NaN \"NaN\"");
        assert!(matches!(
            nan_as_null(b"{\"a\": 1}"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
