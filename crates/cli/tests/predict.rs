//! `berth predict` end to end: the real binary on fixture models and rows.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{berth, fixtures, path, read_csv};

fn check_against_reference(model: &str, input: &Path) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.csv");
    let model_path = fixtures().join("models").join(model);
    let result = berth(&[
        "predict",
        "--model",
        path(&model_path),
        "--input",
        path(input),
        "--output",
        path(&out),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(String::from_utf8_lossy(&result.stderr).contains("scored 1000 rows"));
    let (header, rows) = read_csv(&out);
    let (want_header, want) = read_csv(
        &fixtures()
            .join("models")
            .join(format!("{model}.expected.csv")),
    );
    assert_eq!(rows.len(), want.len());
    assert_eq!(header[0], "id");
    for (i, (row, want)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(row[0], i.to_string(), "ids are carried through in order");
        for (k, name) in want_header.iter().enumerate() {
            let col = match name.as_str() {
                "label" => "label".to_string(),
                "value" => "value".to_string(),
                p => format!("p_{}", &p[1..]),
            };
            let c = header
                .iter()
                .position(|h| *h == col)
                .unwrap_or_else(|| panic!("column {col} in {header:?}"));
            let (got, want): (f64, f64) = (
                row[c].parse().expect("number"),
                want[k].parse().expect("number"),
            );
            assert!(
                (got - want).abs() <= 1e-5,
                "{model} row {i} {col}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn scores_csv_with_a_native_xgboost_model() {
    check_against_reference(
        "xgb_classifier.json",
        &fixtures().join("data/eval_features.csv"),
    );
}

#[test]
fn scores_csv_with_a_lightgbm_model() {
    check_against_reference(
        "lgbm_multiclass.txt",
        &fixtures().join("data/eval_features.csv"),
    );
}

#[test]
fn scores_csv_with_an_onnx_model() {
    check_against_reference(
        "logreg_pipeline_zipmap.onnx",
        &fixtures().join("data/eval_features.csv"),
    );
}

#[test]
fn scores_json_lines() {
    // The same rows as JSON objects, keys in another order, nulls for missing values.
    let (header, rows) = read_csv(&fixtures().join("data/eval_features.csv"));
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("rows.jsonl");
    let mut text = String::new();
    for row in &rows {
        let fields: Vec<String> = header
            .iter()
            .zip(row)
            .rev()
            .map(|(h, v)| format!("\"{h}\": {}", if v.is_empty() { "null" } else { v }))
            .collect();
        text.push_str(&format!("{{{}}}\n", fields.join(", ")));
    }
    std::fs::write(&input, text).expect("write");
    check_against_reference("lgbm_regressor.txt", &input);
}

#[test]
fn bad_input_names_row_and_column_and_leaves_no_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("bad.csv");
    let (header, rows) = read_csv(&fixtures().join("data/eval_features.csv"));
    let mut text = header.join(",") + "\n";
    for (i, row) in rows.iter().take(5).enumerate() {
        let mut row = row.clone();
        if i == 3 {
            row[2] = "lots".into();
        }
        text.push_str(&(row.join(",") + "\n"));
    }
    std::fs::write(&input, text).expect("write");
    let out = dir.path().join("out.csv");
    let model = fixtures().join("models/xgb_classifier.json");
    let result = berth(&[
        "predict",
        "-m",
        path(&model),
        "-i",
        path(&input),
        "-o",
        path(&out),
    ]);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains(&format!(
            "row 4, column '{}': expected a number, got \"lots\"",
            header[2]
        )),
        "{stderr}"
    );
    assert!(!out.exists(), "no output file is left behind");
}

#[test]
fn text_columns_in_parquet_are_refused_clearly() {
    let model = fixtures().join("models/xgb_classifier.json");
    let input = fixtures().join("data/churn_eval.parquet");
    let result = berth(&["predict", "-m", path(&model), "-i", path(&input)]);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("column 'plan' has type Utf8")
            || stderr.contains("column 'plan' has type Utf8View"),
        "{stderr}"
    );
}

#[test]
fn a_missing_model_file_is_reported() {
    let result = berth(&["predict", "-m", "/nonexistent.onnx", "-i", "rows.csv"]);
    assert_eq!(result.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("cannot load model /nonexistent.onnx")
    );
}

#[test]
fn inspect_reports_inputs_outputs_and_names() {
    let model = fixtures().join("models/lgbm_classifier.txt");
    let result = berth(&["inspect", "--json", path(&model)]);
    assert!(result.status.success());
    let info: serde_json::Value = serde_json::from_slice(&result.stdout).expect("JSON");
    assert_eq!(info["format"], "lightgbm_text");
    assert_eq!(info["task"]["classes"], 2);
    assert_eq!(info["num_features"], 23);
    assert_eq!(info["feature_names"][0], "tenure_months");
    assert_eq!(info["outputs"][1]["name"], "probabilities");
}

#[test]
fn scores_parquet() {
    check_against_reference(
        "xgb_multiclass.json",
        &fixtures().join("data/eval_features.parquet"),
    );
}

/// Runs berth with no environment, from an empty folder: no virtualenv, no python3.
fn berth_without_onnxruntime(extra_env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = fixtures().join("models/rf_classifier.onnx");
    let rows = fixtures().join("data/eval_features.csv");
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["predict", "-m", path(&model), "-i", path(&rows)])
        .env_clear()
        .envs(extra_env.iter().copied())
        .current_dir(dir.path())
        .output()
        .expect("berth runs")
}

#[test]
fn missing_onnx_runtime_says_how_to_get_it() {
    let result = berth_without_onnxruntime(&[]);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("ONNX Runtime was not found"), "{stderr}");
    assert!(stderr.contains("pip install onnxruntime"), "{stderr}");
    assert!(stderr.contains("ORT_DYLIB_PATH"), "{stderr}");
}

#[test]
fn a_wrong_ort_dylib_path_is_named() {
    let result = berth_without_onnxruntime(&[("ORT_DYLIB_PATH", "/nowhere/libonnxruntime.so")]);
    assert_eq!(result.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("ORT_DYLIB_PATH points to /nowhere/libonnxruntime.so"),
        "{stderr}"
    );
}
