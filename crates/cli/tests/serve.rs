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
