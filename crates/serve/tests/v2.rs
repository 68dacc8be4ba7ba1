//! The Open Inference Protocol (V2 REST) routes over a deployment of the XGBoost fixture:
//! answers equal the reference outputs, errors have the protocol's shape and say what is wrong.

mod serving;

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};
use serving::{deployed, eval_rows, expected, send};

const FILE: &str = "xgb_classifier.json";

fn app() -> axum::Router {
    berth_serve::v2::router(deployed(FILE, "xgb"))
}

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let (status, headers, text) = send(
        app,
        method,
        uri,
        "application/json",
        body.map_or_else(String::new, |b| b.to_string()),
    )
    .await;
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn probabilities(body: &Value) -> Vec<f64> {
    let out = body["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .find(|o| o["name"] == "probabilities")
        .expect("probabilities");
    assert_eq!(out["datatype"], "FP64");
    out["data"]
        .as_array()
        .expect("data")
        .chunks(2)
        .map(|p| p[1].as_f64().expect("p1"))
        .collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5, "{g} vs {w}");
    }
}

#[tokio::test]
async fn server_and_model_metadata() {
    let app = app();
    let (status, _, body) = call(&app, Method::GET, "/v2", None).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("berth"))
    );
    assert_eq!(
        call(&app, Method::GET, "/v2/health/live", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::GET, "/v2/health/ready", None).await.0,
        StatusCode::OK
    );
    let (status, _, body) = call(&app, Method::GET, "/v2/models/xgb", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["inputs"][0],
        json!({"name": "input", "datatype": "FP32", "shape": [-1, 23]})
    );
    assert_eq!(body["versions"], json!(["1"]));
    assert_eq!(
        call(&app, Method::GET, "/v2/models/xgb/versions/1/ready", None)
            .await
            .0,
        StatusCode::OK
    );
    let (status, _, body) = call(&app, Method::GET, "/v2/models/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("'nope'")),
        "{body}"
    );
    let (status, _, body) = call(&app, Method::GET, "/v2/models/xgb/versions/7/ready", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("version '7'")),
        "{body}"
    );
}

#[tokio::test]
async fn one_model_shaped_tensor_matches_the_reference() {
    let app = app();
    let (_, rows) = eval_rows(60);
    let request = json!({"id": "req-1", "inputs": [{"name": "input", "shape": [60, 23], "datatype": "FP32", "data": rows}]});
    let (status, headers, body) =
        call(&app, Method::POST, "/v2/models/xgb/infer", Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], "req-1");
    assert_eq!(body["model_version"], "1");
    assert_eq!(headers["x-berth-version"], "xgb/1");
    // The V2 `id` echoes the client's; the prediction id is berth's own (unique on record).
    let prediction_id = headers["x-berth-prediction-id"].to_str().expect("text");
    assert!(
        prediction_id.len() == 36 && prediction_id != "req-1",
        "{prediction_id}"
    );
    assert_close(&probabilities(&body), &expected(FILE, 2, 60));
}

#[tokio::test]
async fn one_tensor_per_field_matches_too_and_outputs_can_be_chosen() {
    let app = app();
    let (names, rows) = eval_rows(5);
    let inputs: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(c, name)| json!({"name": name, "shape": [5, 1], "datatype": "FP32", "data": rows.iter().map(|r| r[c].clone()).collect::<Vec<_>>()}))
        .collect();
    let request = json!({"inputs": inputs, "outputs": [{"name": "probabilities"}]});
    let (status, headers, body) = call(
        &app,
        Method::POST,
        "/v2/models/xgb/versions/1/infer",
        Some(request),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["outputs"].as_array().map(Vec::len),
        Some(1),
        "only the requested output"
    );
    assert_close(&probabilities(&body), &expected(FILE, 2, 5));
    assert!(headers.contains_key("x-berth-prediction-id"));
    assert!(
        body["id"].as_str().is_some_and(|id| !id.is_empty()),
        "an id is made up when none is given"
    );
}

#[tokio::test]
async fn bad_requests_say_what_is_wrong() {
    let app = app();
    let row = |v: Value| json!({"inputs": [{"name": "input", "shape": [1, 23], "datatype": "FP32", "data": v}]});
    let mut values = vec![json!(1.0); 23];
    values[3] = json!("three");
    let cases = [
        (row(json!(values)), "datatype FP32 cannot hold \"three\""),
        (row(json!(vec![1.0; 22])), "needs 23 values, got 22"),
        (
            json!({"inputs": [{"name": "tenure_monthz", "shape": [1], "datatype": "FP32", "data": [1.0]}]}),
            "field 'tenure_monthz': expected one of the model's inputs",
        ),
        (
            json!({"inputs": []}),
            "expected a value (the field is required)",
        ),
        (json!({"inputz": []}), "invalid inference request"),
        (
            json!({"inputs": [{"name": "input", "shape": [1, 23], "datatype": "FP32", "data": vec![1.0; 23]}], "outputs": [{"name": "nope"}]}),
            "unknown output 'nope'",
        ),
    ];
    for (request, message) in cases {
        let (status, _, body) = call(
            &app,
            Method::POST,
            "/v2/models/xgb/infer",
            Some(request.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(message),
            "{request}: expected {message:?} in {error:?}"
        );
    }
    let (status, _, body) = call(
        &app,
        Method::POST,
        "/v2/models/nope/infer",
        Some(row(json!(vec![1.0; 23]))),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, text) = send(
        &app,
        Method::POST,
        "/v2/models/xgb/infer",
        "application/octet-stream",
        "x",
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
}

/// The evaluation rows as raw little-endian FP32 (NaN where missing), as tritonclient sends them.
fn raw_rows(n: usize) -> Vec<u8> {
    let (_, rows) = eval_rows(n);
    rows.iter()
        .flatten()
        .flat_map(|v| (v.as_f64().map_or(f32::NAN, |x| x as f32)).to_le_bytes())
        .collect()
}

#[tokio::test]
async fn the_binary_tensor_extension_both_ways() {
    let app = app();
    let raw = raw_rows(40);
    let header = json!({
        "inputs": [{"name": "input", "shape": [40, 23], "datatype": "FP32", "parameters": {"binary_data_size": raw.len()}}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}, {"name": "label"}],
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(&raw);
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/v2/models/xgb/infer")
        .header("content-type", "application/octet-stream")
        .header("inference-header-content-length", header.len().to_string())
        .body(axum::body::Body::from(body))
        .expect("request");
    let response = tower::ServiceExt::oneshot(app, request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let json_length: usize = response.headers()["inference-header-content-length"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("length");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let answer: Value = serde_json::from_slice(&bytes[..json_length]).expect("JSON header");
    let probabilities = &answer["outputs"][0];
    assert_eq!(probabilities["parameters"]["binary_data_size"], 40 * 2 * 8);
    assert!(probabilities.get("data").is_none());
    let p1: Vec<f64> = bytes[json_length..]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .skip(1)
        .step_by(2)
        .collect();
    assert_close(&p1, &expected(FILE, 2, 40));
    assert_eq!(
        answer["outputs"][1]["data"].as_array().map(Vec::len),
        Some(40),
        "label stays JSON"
    );
}

#[tokio::test]
async fn damaged_binary_requests_are_refused_clearly() {
    let app = app();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        (
            "999",
            b"{}".to_vec(),
            "Inference-Header-Content-Length must be a byte count within the body",
        ),
        (
            "",
            b"{}".to_vec(),
            "Inference-Header-Content-Length must be a byte count",
        ),
        ("0", Vec::new(), "invalid inference request"),
    ];
    for (length, body, message) in cases {
        let request = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/v2/models/xgb/infer")
            .header("inference-header-content-length", length)
            .body(axum::body::Body::from(body))
            .expect("request");
        let response = tower::ServiceExt::oneshot(app.clone(), request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{length}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        assert!(
            String::from_utf8_lossy(&bytes).contains(message),
            "{length}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // A size that runs past the end of the body.
    let header = json!({"inputs": [{"name": "input", "shape": [1, 23], "datatype": "FP32", "parameters": {"binary_data_size": 92}}]}).to_string();
    let mut body = header.clone().into_bytes();
    body.extend([0u8; 10]);
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/v2/models/xgb/infer")
        .header("inference-header-content-length", header.len().to_string())
        .body(axum::body::Body::from(body))
        .expect("request");
    let response = tower::ServiceExt::oneshot(app, request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    assert!(
        String::from_utf8_lossy(&bytes).contains("binary_data_size 92 but only 10 bytes follow"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}
