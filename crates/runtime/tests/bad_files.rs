//! Files that are not models, or damaged models, fail to load with a message that names the
//! file and the problem — never a panic.

use std::path::{Path, PathBuf};

use berth_core::FeatureMatrix;
use berth_runtime::{LoadOptions, PredictError};

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(file)
}

/// Loads `bytes` saved as `name` and returns the error message.
fn load_error(name: &str, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    let err = berth_runtime::load(&path, &LoadOptions::default())
        .err()
        .unwrap_or_else(|| panic!("{name} should not load"));
    let msg = err.to_string();
    assert!(msg.contains(name), "the message names the file: {msg}");
    msg
}

fn truncated(file: &str, keep: f64) -> Vec<u8> {
    let bytes = std::fs::read(fixture(file)).expect("fixture");
    bytes[..(bytes.len() as f64 * keep) as usize].to_vec()
}

#[test]
fn random_bytes_named_onnx() {
    let msg = load_error("model.onnx", b"\x13\x37 definitely not protobuf \xff\xfe");
    assert!(msg.contains("ONNX Runtime cannot load it"), "{msg}");
}

#[test]
fn truncated_onnx() {
    let msg = load_error("half.onnx", &truncated("rf_classifier.onnx", 0.5));
    assert!(msg.contains("ONNX Runtime cannot load it"), "{msg}");
}

#[test]
fn truncated_xgboost_json() {
    let msg = load_error("half.json", &truncated("xgb_classifier.json", 0.5));
    assert!(msg.contains("not a valid XGBoost JSON model"), "{msg}");
    assert!(msg.contains("EOF"), "serde says where it stopped: {msg}");
}

#[test]
fn truncated_lightgbm_text() {
    let msg = load_error("half.txt", &truncated("lgbm_classifier.txt", 0.5));
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn lightgbm_text_cut_inside_a_tree() {
    // Keep the trailer so only a tree's arrays are damaged.
    let text = String::from_utf8(std::fs::read(fixture("lgbm_regressor.txt")).expect("fixture"))
        .expect("utf-8");
    let damaged = text.replacen("leaf_value=", "leaf_value=1 ", 1);
    let msg = load_error("damaged.txt", damaged.as_bytes());
    assert!(
        msg.contains("tree 0") && msg.contains("leaf_value"),
        "{msg}"
    );
}

#[test]
fn xgboost_json_with_wrong_types() {
    let text = String::from_utf8(std::fs::read(fixture("xgb_regressor.json")).expect("fixture"))
        .expect("utf-8");
    let damaged = text.replacen("\"left_children\":[", "\"left_children\":[\"x\",", 1);
    let msg = load_error("damaged.json", damaged.as_bytes());
    assert!(msg.contains("not a valid XGBoost JSON model"), "{msg}");
}

#[test]
fn xgboost_json_pointing_outside_the_tree() {
    let text = String::from_utf8(std::fs::read(fixture("xgb_regressor.json")).expect("fixture"))
        .expect("utf-8");
    let damaged = text.replacen("\"left_children\":[1,", "\"left_children\":[100000,", 1);
    let msg = load_error("dangling.json", damaged.as_bytes());
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn a_csv_file_is_not_a_model() {
    let msg = load_error("rows.csv", b"id,a,b\n1,2,3\n");
    assert!(msg.contains("not a model file"), "{msg}");
}

#[test]
fn an_empty_file() {
    let msg = load_error("empty.onnx", b"");
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn format_is_detected_by_content_not_extension() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("model.bin");
    std::fs::copy(fixture("lgbm_regressor.txt"), &path).expect("copy");
    let model = berth_runtime::load(&path, &LoadOptions::default())
        .expect("LightGBM text loads from any name");
    assert_eq!(model.info().format, berth_core::ModelFormat::LightgbmText);
}

#[test]
fn wrong_number_of_features_is_an_error_not_a_panic() {
    for file in [
        "xgb_classifier.json",
        "lgbm_classifier.txt",
        "rf_classifier.onnx",
    ] {
        let model =
            berth_runtime::load(&fixture(file), &LoadOptions::default()).expect("fixture loads");
        let batch = FeatureMatrix::new(2, 3, vec![0.0; 6]).expect("matrix");
        match model.predict(&batch) {
            Err(PredictError::FeatureCount {
                expected: 23,
                got: 3,
            }) => {}
            other => panic!("{file}: expected a feature-count error, got {other:?}"),
        }
    }
}

#[test]
fn an_empty_batch_gives_empty_outputs() {
    for file in [
        "xgb_classifier.json",
        "lgbm_multiclass.txt",
        "rf_classifier.onnx",
    ] {
        let model =
            berth_runtime::load(&fixture(file), &LoadOptions::default()).expect("fixture loads");
        let batch = FeatureMatrix::new(0, 23, vec![]).expect("matrix");
        let outputs = model
            .predict(&batch)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            outputs.iter().all(|o| o.tensor.shape()[0] == 0),
            "{file}: {outputs:?}"
        );
    }
}

#[test]
fn an_operator_onnx_runtime_does_not_have() {
    let err = berth_runtime::load(&fixture("unsupported_op.onnx"), &LoadOptions::default())
        .err()
        .expect("a custom operator without its library cannot load");
    let msg = err.to_string();
    assert!(
        msg.contains("unsupported_op.onnx") && msg.contains("NoSuchOp"),
        "{msg}"
    );
}

#[test]
fn a_text_input_is_refused_by_name() {
    let err = berth_runtime::load(&fixture("string_input.onnx"), &LoadOptions::default())
        .err()
        .expect("a string input cannot be fed from a feature matrix");
    let msg = err.to_string();
    assert!(
        msg.contains("string_input.onnx") && msg.contains("input 'text'"),
        "{msg}"
    );
    assert!(msg.contains("numeric feature columns"), "{msg}");
}
