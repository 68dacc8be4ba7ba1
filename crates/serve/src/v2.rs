//! The Open Inference Protocol (KServe V2) over REST, JSON tensors.
//!
//! `GET /v2`, `/v2/health/live|ready`, `/v2/models/{m}[/versions/{v}][/ready]` and
//! `POST /v2/models/{m}[/versions/{v}]/infer`. An infer request's inputs are either one tensor
//! shaped like the model's input (`[N, features]`, columns in signature order) or one tensor
//! per field (`[N]` or `[N, 1]`), data flat or nested. Errors are `{"error": "..."}`: 400 for a
//! bad request or bad values (all listed), 404 for an unknown model or version, 503 when the
//! model's queue is full (with `Retry-After`), 504 when it did not answer in time. The binary
//! tensor extension (tritonclient's default) is spoken both ways; see [`crate::binary`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_core::{NamedTensor, TensorData, json_at};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::binary;
use crate::deployment::{Caller, Deployment, Router as Routes, ServeError};
use crate::protocol::{answer_headers, json_error, json_serve_error, nan_as_null};
use crate::validate::Columns;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InferRequest {
    id: Option<String>,
    /// `binary_data_output: true` asks for every output in binary.
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    /// `binary_data_size`: the input's raw bytes follow the JSON header.
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    data: Option<FlatData>,
}

/// A tensor's `data`, flattened as it is parsed: nested arrays become one run of values, in
/// order (no tree of arrays is built and then copied out).
#[derive(Debug, Default)]
struct FlatData(Vec<Value>);

impl<'de> Deserialize<'de> for FlatData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut values = Vec::new();
        serde::de::DeserializeSeed::deserialize(Flatten(&mut values), deserializer)?;
        Ok(FlatData(values))
    }
}

/// Appends a value, or the values of nested arrays, to `.0`.
struct Flatten<'a>(&'a mut Vec<Value>);

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Flatten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value or (nested) arrays of values")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some(n) = seq.size_hint() {
            self.0.reserve(n);
        }
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        self.0.push(value);
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.0.push(Value::Bool(v));
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push(Value::from(v));
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.0.push(Value::from(v));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push(Value::from(v));
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push(Value::String(v.to_string()));
        Ok(())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<(), E> {
        self.0.push(Value::String(v));
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.push(Value::Null);
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
}

#[derive(Debug, Deserialize)]
struct RequestedOutput {
    name: String,
    /// `binary_data: true` asks for this output in binary.
    #[serde(default)]
    parameters: Map<String, Value>,
}

fn flag(parameters: &Map<String, Value>, key: &str) -> bool {
    parameters
        .get(key)
        .and_then(Value::as_bool)
        .unwrap_or(false)
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

async fn server_metadata() -> Json<Value> {
    Json(
        json!({"name": "berth", "version": env!("CARGO_PKG_VERSION"), "extensions": ["binary_tensor_data"]}),
    )
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
        Ok(r) => Json(metadata(r.primary(), &m)).into_response(),
        Err(e) => json_serve_error(e),
    }
}

async fn version_metadata(
    State(routes): State<Arc<Routes>>,
    Path((m, v)): Path<(String, String)>,
) -> Response {
    match routes.resolve(&m, Some(&v)) {
        Ok(r) => Json(metadata(r.primary(), &m)).into_response(),
        Err(e) => json_serve_error(e),
    }
}

async fn model_ready(State(routes): State<Arc<Routes>>, Path(m): Path<String>) -> Response {
    routes
        .resolve(&m, None)
        .map_or_else(json_serve_error, |_| StatusCode::OK.into_response())
}

async fn version_ready(
    State(routes): State<Arc<Routes>>,
    Path((m, v)): Path<(String, String)>,
) -> Response {
    routes
        .resolve(&m, Some(&v))
        .map_or_else(json_serve_error, |_| StatusCode::OK.into_response())
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

/// Each input's values, flat: from its JSON `data`, or from the raw bytes after the header.
fn input_values(inputs: &mut [InputTensor], mut raw: &[u8]) -> Result<Vec<Vec<Value>>, ServeError> {
    let bad = |m: String| ServeError::BadRequest(m);
    let mut all = Vec::with_capacity(inputs.len());
    for t in inputs {
        let values = match (t.data.take(), t.parameters.get("binary_data_size")) {
            (None, Some(size)) => {
                let size = size
                    .as_u64()
                    .and_then(|s| usize::try_from(s).ok())
                    .ok_or_else(|| {
                        bad(format!(
                            "input '{}': binary_data_size must be a byte count, got {size}",
                            t.name
                        ))
                    })?;
                let (bytes, rest) = raw.split_at_checked(size).ok_or_else(|| {
                    bad(format!(
                        "input '{}': binary_data_size {size} but only {} bytes follow the header",
                        t.name,
                        raw.len()
                    ))
                })?;
                raw = rest;
                binary::decode(&t.datatype, bytes)
                    .map_err(|e| bad(format!("input '{}': {e}", t.name)))?
            }
            (Some(FlatData(values)), None) => values,
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "input '{}' has both data and binary_data_size",
                    t.name
                )));
            }
            (None, None) => return Err(bad(format!("input '{}' has no data", t.name))),
        };
        all.push(values);
    }
    if !raw.is_empty() {
        return Err(bad(format!(
            "{} bytes after the last binary input",
            raw.len()
        )));
    }
    Ok(all)
}

/// The request's tensors as columns for validation.
fn columns(
    d: &Deployment,
    inputs: &[InputTensor],
    values: Vec<Vec<Value>>,
) -> Result<Columns, ServeError> {
    let bad = |m: String| ServeError::BadRequest(m);
    let mut flat = Vec::with_capacity(inputs.len());
    for (t, values) in inputs.iter().zip(values) {
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
    // One tensor shaped like the model's input: its rows are the signature's fields in order,
    // taken as they came.
    if let [(t, dims, _)] = flat.as_slice()
        && !fields.iter().any(|f| f.name == t.name)
        && dims.len() == 2
        && dims[1] == fields.len()
        && let Some((_, dims, values)) = flat.pop()
    {
        return Ok(Columns::from_row_major(d.input_names(), dims[0], values)?);
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

/// The answer to an inference request, serialized straight from the outputs (no JSON tree
/// built per request). Keys are in alphabetical order, as a `serde_json` map writes them.
#[derive(Serialize)]
struct InferResponse<'a> {
    id: &'a str,
    model_name: &'a str,
    model_version: String,
    outputs: Vec<OutputTensor<'a>>,
}

/// One output: its values as JSON (`data`) or, in binary, only their size (`parameters`).
#[derive(Serialize)]
struct OutputTensor<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<TensorValues<'a>>,
    datatype: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    shape: &'a [usize],
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

/// A tensor's values, flat, as [`json_at`] writes each one (NaN and infinities as null).
struct TensorValues<'a>(&'a TensorData);

impl Serialize for TensorValues<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((0..self.0.len()).map(|i| json_at(self.0, i)))
    }
}

async fn run(
    routes: &Routes,
    m: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let caller = Caller::new(m, "v2").with_headers(headers);
    // The binary extension: a JSON header of the given length, then raw tensors.
    let (json_part, raw) = match headers.get(binary::HEADER_LENGTH) {
        Some(length) => {
            let length = length
                .to_str()
                .ok()
                .and_then(|l| l.trim().parse::<usize>().ok());
            match length.and_then(|n| body.split_at_checked(n)) {
                Some(parts) => parts,
                None => {
                    return json_error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "Inference-Header-Content-Length must be a byte count within the body ({} bytes)",
                            body.len()
                        ),
                    );
                }
            }
        }
        None => {
            if let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
                && !ct.starts_with("application/json")
            {
                return json_error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "content type {ct} is not supported: send JSON tensors as application/json, or \
                         binary tensors with an Inference-Header-Content-Length header"
                    ),
                );
            }
            (body, &[][..])
        }
    };
    let mut request: InferRequest = match serde_json::from_slice(&nan_as_null(json_part)) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("invalid inference request: {e}"),
            );
        }
    };
    let route = match routes.resolve(m, version) {
        Ok(r) => r,
        Err(e) => return json_serve_error(e),
    };
    let columns = match input_values(&mut request.inputs, raw)
        .and_then(|v| columns(route.primary(), &request.inputs, v))
    {
        Ok(c) => c,
        Err(e) => return json_serve_error(e),
    };
    let (deployment, prediction) = match route.predict(&columns, &caller).await {
        Ok(answer) => answer,
        Err(e) => return json_serve_error(e),
    };
    let batched = prediction.batched;
    // Which outputs, and which of them in binary.
    let all_binary = flag(&request.parameters, "binary_data_output");
    let chosen: Vec<(&NamedTensor, bool)> = match &request.outputs {
        Some(wanted) => {
            let mut chosen = Vec::with_capacity(wanted.len());
            for w in wanted {
                match batched.outputs.iter().find(|o| o.name == w.name) {
                    Some(o) => chosen.push((o, flag(&w.parameters, "binary_data") || all_binary)),
                    None => {
                        return json_error(
                            StatusCode::BAD_REQUEST,
                            format!("unknown output '{}'", w.name),
                        );
                    }
                }
            }
            chosen
        }
        None => batched.outputs.iter().map(|o| (o, all_binary)).collect(),
    };
    let mut raw_out = Vec::new();
    let outputs: Vec<OutputTensor<'_>> = chosen
        .iter()
        .map(|(o, binary)| {
            let (data, parameters) = if *binary {
                let bytes = binary::encode(o.tensor.data());
                let size = bytes.len();
                raw_out.extend(bytes);
                (
                    None,
                    Some(BinarySize {
                        binary_data_size: size,
                    }),
                )
            } else {
                (Some(TensorValues(o.tensor.data())), None)
            };
            OutputTensor {
                data,
                datatype: o.tensor.element_type().as_str(),
                name: &o.name,
                parameters,
                shape: o.tensor.shape(),
            }
        })
        .collect();
    let mut headers = answer_headers(&deployment, &prediction.id);
    // The V2 `id` echoes the request's (the spec's rule), else it is the prediction id.
    let id = request.id.as_deref().unwrap_or(&prediction.id);
    let body = InferResponse {
        id,
        model_name: m,
        model_version: deployment.version.to_string(),
        outputs,
    };
    let mut bytes = Vec::with_capacity(256 + raw_out.len());
    if let Err(e) = serde_json::to_writer(&mut bytes, &body) {
        return json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the answer could not be written: {e}"),
        );
    }
    if raw_out.is_empty() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return (headers, Body::from(bytes)).into_response();
    }
    if let Ok(v) = HeaderValue::from_str(&bytes.len().to_string()) {
        headers.insert(binary::HEADER_LENGTH, v);
    }
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    bytes.extend(raw_out);
    (headers, bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(data: &str) -> Vec<Value> {
        serde_json::from_str::<FlatData>(data).expect("data").0
    }

    #[test]
    fn data_is_flattened_as_it_is_parsed_in_row_major_order() {
        assert_eq!(
            flat("[[1, 2.5], [null, -3]]"),
            vec![json!(1), json!(2.5), Value::Null, json!(-3)]
        );
        assert_eq!(
            flat("[[[true]], [[false]]]"),
            vec![json!(true), json!(false)]
        );
        assert_eq!(flat(r#"["a", ["b"]]"#), vec![json!("a"), json!("b")]);
        assert_eq!(flat("7"), vec![json!(7)]);
        assert_eq!(flat("[]"), Vec::<Value>::new());
        // Objects are kept whole, for the datatype check to refuse by name.
        assert_eq!(flat(r#"[{"x": 1}]"#), vec![json!({"x": 1})]);
        assert_eq!(flat("[18446744073709551615]"), vec![json!(u64::MAX)]);
        assert!(serde_json::from_str::<FlatData>("[1, ").is_err());
    }
}
