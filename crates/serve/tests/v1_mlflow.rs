//! The V1 (TF Serving / KServe) and MLflow protocols over the LightGBM fixture: answers equal
//! the reference outputs; errors have each protocol's shape.

mod serving;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use serving::{deployed, eval_rows, expected, send};

const FILE: &str = "lgbm_regressor.txt";

fn values_of(predictions: &Value) -> Vec<f64> {
    predictions
        .as_array()
        .expect("predictions")
        .iter()
        .map(|p| p["value"].as_f64().expect("value"))
        .collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
    }
}

fn v1() -> axum::Router {
    berth_serve::v1::router(deployed(FILE, "ltv"))
}

fn mlflow() -> axum::Router {
    berth_serve::mlflow::router(deployed(FILE, "ltv"))
}

#[tokio::test]
async fn v1_instances_as_objects_and_as_arrays() {
    let (names, rows) = eval_rows(20);
    let objects: Vec<Value> = rows
        .iter()
        .map(|r| Value::Object(names.iter().cloned().zip(r.iter().cloned()).collect()))
        .collect();
    for (uri, body) in [
        ("/v1/models/ltv:predict", json!({"instances": objects})),
        (
            "/v1/models/ltv/versions/1:predict",
            json!({"instances": rows}),
        ),
    ] {
        let (status, headers, text) = send(
            &v1(),
            Method::POST,
            uri,
            "application/json",
            body.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{uri}: {text}");
        assert_eq!(headers["x-berth-version"], "ltv/1");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert_close(&values_of(&answer["predictions"]), &expected(FILE, 0, 20));
    }
}

#[tokio::test]
async fn v1_columnar_inputs_answer_with_outputs() {
    let (names, rows) = eval_rows(3);
    let columns: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(c, n)| {
            (
                n.clone(),
                Value::Array(rows.iter().map(|r| r[c].clone()).collect()),
            )
        })
        .collect();
    let body = json!({"inputs": columns}).to_string();
    let (status, _, text) = send(
        &v1(),
        Method::POST,
        "/v1/models/ltv:predict",
        "application/json",
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    let values: Vec<f64> = answer["outputs"]["value"]
        .as_array()
        .expect("column")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_close(&values, &expected(FILE, 0, 3));
}

#[tokio::test]
async fn v1_errors_name_the_problem() {
    let (status, _, text) = send(
        &v1(),
        Method::POST,
        "/v1/models/ltv:predict",
        "application/json",
        r#"{"instances": [{"tenure_months": "long"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("field 'tenure_months' row 0: expected a number")
            && text.contains("\"error\""),
        "{text}"
    );
    let (status, _, text) = send(
        &v1(),
        Method::POST,
        "/v1/models/nope:predict",
        "application/json",
        r#"{"instances": []}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    let (status, _, text) = send(
        &v1(),
        Method::POST,
        "/v1/models/ltv:predict",
        "application/json",
        r#"{"rows": []}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("exactly one of \\\"instances\\\""), "{text}");
    let (status, _, _) = send(
        &v1(),
        Method::POST,
        "/v1/models/ltv:explain",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mlflow_json_formats_and_csv() {
    let (names, rows) = eval_rows(10);
    let records: Vec<Value> = rows
        .iter()
        .map(|r| Value::Object(names.iter().cloned().zip(r.iter().cloned()).collect()))
        .collect();
    let csv = std::iter::once(names.join(","))
        .chain(rows.iter().map(|r| {
            r.iter()
                .map(|v| {
                    if v.is_null() {
                        String::new()
                    } else {
                        v.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        }))
        .collect::<Vec<_>>()
        .join("\n");
    let bodies = [
        (
            "application/json",
            json!({"dataframe_split": {"columns": names, "data": rows}}).to_string(),
        ),
        (
            "application/json",
            json!({"dataframe_records": records}).to_string(),
        ),
        ("application/json", json!({"instances": rows}).to_string()),
        ("application/json", json!({"inputs": records}).to_string()),
        ("text/csv", csv),
    ];
    for (content_type, body) in bodies {
        let (status, headers, text) = send(
            &mlflow(),
            Method::POST,
            "/invocations",
            content_type,
            body.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{content_type}: {text}");
        assert_eq!(headers["x-berth-version"], "ltv/1");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert_close(&values_of(&answer["predictions"]), &expected(FILE, 0, 10));
    }
    for uri in ["/ping", "/health", "/version"] {
        assert_eq!(
            send(&mlflow(), Method::GET, uri, "text/plain", "").await.0,
            StatusCode::OK,
            "{uri}"
        );
    }
}

#[tokio::test]
async fn mlflow_errors_have_mlflows_shape() {
    let cases = [
        (
            "application/json",
            r#"{"instances": [], "inputs": []}"#.to_string(),
            StatusCode::BAD_REQUEST,
            "expected exactly one of",
        ),
        (
            "application/json",
            r#"{"dataframe_records": [{"tenure_months": true, "x": 1}]}"#.to_string(),
            StatusCode::BAD_REQUEST,
            "field 'x'",
        ),
        (
            "application/json",
            "{not json".to_string(),
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            "application/xml",
            "<a/>".to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "application/xml is not supported",
        ),
    ];
    for (content_type, body, status, message) in cases {
        let (got, _, text) = send(
            &mlflow(),
            Method::POST,
            "/invocations",
            content_type,
            body.clone(),
        )
        .await;
        assert_eq!(got, status, "{body}: {text}");
        let answer: Value = serde_json::from_str(&text).expect("JSON");
        assert!(answer["error_code"].is_string(), "{text}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(message)),
            "{text}"
        );
    }
    let (status, _, text) = send(
        &mlflow(),
        Method::POST,
        "/invocations",
        "text/csv",
        vec![0xff, 0xfe, b'a'],
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert!(text.contains("not UTF-8"), "{text}");
}
