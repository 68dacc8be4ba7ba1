//! `berth serve FILE` end to end: one model file served over V2 REST on a free loopback port.

mod common;

use std::path::Path;

#[test]
fn serves_a_model_file_over_v2() {
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/lgbm_regressor.txt");
    let server = common::Server::start(&["serve", model.to_str().expect("utf-8")]);

    let (status, _, body) = server.request("GET", "/v2/models/lgbm_regressor", None);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"FP32\"") && body.contains("[-1,23]"),
        "{body}"
    );

    let row = vec!["1.5"; 23].join(",");
    let request = format!(
        r#"{{"inputs":[{{"name":"input","shape":[1,23],"datatype":"FP32","data":[{row}]}}]}}"#
    );
    let (status, head, body) =
        server.request("POST", "/v2/models/lgbm_regressor/infer", Some(&request));
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("x-berth-version: lgbm_regressor/1"), "{head}");
    assert!(head.contains("x-berth-prediction-id: "), "{head}");
    assert!(body.contains("\"name\":\"value\""), "{body}");

    let (status, _, body) = server.request("POST", "/v2/models/other/infer", Some(&request));
    assert_eq!(status, 404, "{body}");

    let (status, rest) = server.stop();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn a_batching_file_is_read_and_a_wrong_one_refused() {
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/xgb_classifier.json");
    let model = model.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("batching.yaml");
    std::fs::write(
        &good,
        "default: {max_batch_size: 32}\nmodels:\n  xgb_classifier: {max_queue_delay_us: 300}\n",
    )
    .expect("write");
    let server =
        common::Server::start(&["serve", model, "--batching", good.to_str().expect("utf-8")]);
    let (status, _, body) = server.request("GET", "/v2/models/xgb_classifier", None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.stop();
    assert!(status.success());

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "default: {max_batch: 32}\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["serve", model, "--batching", bad.to_str().expect("utf-8")])
        .output()
        .expect("berth runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("max_batch"),
        "the message names the file and the unknown key: {stderr}"
    );
}
