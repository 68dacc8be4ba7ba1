//! `/metrics`: requests by endpoint, version, protocol and status; latency, queue, compute and
//! batch-size histograms; values refused per field; in-flight and loaded gauges — in the
//! OpenMetrics text format.

mod serving;

use axum::http::{Method, StatusCode};
use serde_json::json;
use serving::{deployed, send};

#[tokio::test]
async fn inference_is_counted_and_timed() {
    let app = berth_serve::inference_router(deployed("xgb_classifier.json", "xgb"));
    let good = json!({"inputs": [{"name": "input", "shape": [2, 23], "datatype": "FP32", "data": vec![1.0; 46]}]});
    for _ in 0..3 {
        let (status, _, _) = send(
            &app,
            Method::POST,
            "/v2/models/xgb/infer",
            "application/json",
            good.to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _, _) = send(
        &app,
        Method::POST,
        "/v2/models/xgb/infer",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(
        &app,
        Method::POST,
        "/v1/models/xgb:predict",
        "application/json",
        json!({"instances": [vec![1.0; 23]]}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Two rows whose first field is text: two values refused, counted under the field's name.
    let mut row = vec![json!(1.0); 23];
    row[0] = json!("x");
    let (status, _, _) = send(
        &app,
        Method::POST,
        "/v1/models/xgb:predict",
        "application/json",
        json!({"instances": [row, row]}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, headers, text) = send(&app, Method::GET, "/metrics", "text/plain", "").await;
    let rejected: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("berth_rejected_fields_total{"))
        .collect();
    assert_eq!(rejected.len(), 1, "{text}");
    assert!(
        rejected[0].starts_with(r#"berth_rejected_fields_total{version="xgb/1",field=""#)
            && rejected[0].ends_with("} 2")
            && !rejected[0].contains("(unknown)"),
        "{}",
        rejected[0]
    );
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("application/openmetrics-text"))
    );
    for line in [
        r#"berth_requests_total{endpoint="xgb",version="xgb/1",protocol="v2",status="200"} 3"#,
        r#"berth_requests_total{endpoint="xgb",version="-",protocol="v2",status="400"} 1"#,
        r#"berth_requests_total{endpoint="xgb",version="xgb/1",protocol="v1",status="200"} 1"#,
        r#"berth_request_seconds_count{endpoint="xgb",version="xgb/1",protocol="v2"} 3"#,
        r#"berth_batch_rows_count{version="xgb/1"} 4"#,
        r#"berth_batch_rows_sum{version="xgb/1"} 7.0"#,
        r#"berth_queue_seconds_count{version="xgb/1"} 4"#,
        r#"berth_compute_seconds_count{version="xgb/1"} 4"#,
        "berth_in_flight_requests 0",
        "berth_loaded_versions 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_in_each_protocols_shape() {
    let app = berth_serve::inference_router(deployed("xgb_classifier.json", "xgb"));
    let huge = vec![b' '; berth_serve::MAX_INFERENCE_BYTES + 1];
    for (uri, field) in [
        ("/v2/models/xgb/infer", "error"),
        ("/v1/models/xgb:predict", "error"),
        ("/invocations", "message"),
    ] {
        let (status, _, text) =
            send(&app, Method::POST, uri, "application/json", huge.clone()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        let body: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{uri}: not JSON ({e}): {text}"));
        assert!(
            body[field]
                .as_str()
                .is_some_and(|m| m.contains("larger than the limit of 64 MiB")),
            "{uri}: {text}"
        );
    }
}
