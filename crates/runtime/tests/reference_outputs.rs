//! Every fixture model, on every backend that reads it, gives the outputs of its reference
//! runtime (onnxruntime for ONNX files, xgboost and lightgbm for their native files) within
//! 1e-5 on all 1000 evaluation rows, missing-value rows included.
//!
//! The fixtures are made by `fixtures/make_fixtures.sh`; each model `F` has `F.expected.csv`
//! (`label,p0,p1,...` or `value`) beside it, and native models also `F.margin.csv`.

use std::path::{Path, PathBuf};

use berth_core::{FeatureMatrix, NamedTensor, OutputRole, TensorData};
use berth_runtime::LoadOptions;

const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A CSV of numbers with a header; empty fields are NaN.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            r.expect("record")
                .iter()
                .map(|v| {
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.parse().expect("number")
                    }
                })
                .collect()
        })
        .collect();
    (header, rows)
}

/// The evaluation rows, parsed as `f32` the way every runtime saw them.
fn eval_rows() -> FeatureMatrix {
    let path = fixtures().join("data/eval_features.csv");
    let mut reader = csv::Reader::from_path(&path).expect("eval_features.csv");
    let header = reader.headers().expect("header").clone();
    assert_eq!(&header[0], "id");
    let cols = header.len() - 1;
    let mut values = Vec::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("record");
        for v in record.iter().skip(1) {
            values.push(if v.is_empty() {
                f32::NAN
            } else {
                v.parse::<f32>().expect("number")
            });
        }
        rows += 1;
    }
    FeatureMatrix::new(rows, cols, values).expect("rectangular")
}

fn output(outputs: &[NamedTensor], role: OutputRole) -> &NamedTensor {
    outputs.iter().find(|o| o.role == role).unwrap_or_else(|| {
        panic!(
            "no {role:?} output among {:?}",
            outputs.iter().map(|o| &o.name).collect::<Vec<_>>()
        )
    })
}

fn as_f64(t: &NamedTensor) -> Vec<f64> {
    (0..t.tensor.data().len())
        .map(|i| t.tensor.data().get_f64(i).expect("numeric"))
        .collect()
}

fn assert_close(
    file: &str,
    what: &str,
    got: &[f64],
    want: &[Vec<f64>],
    column: usize,
    width: usize,
) {
    let mut worst = (0.0f64, 0usize);
    for (row, want_row) in want.iter().enumerate() {
        let (g, w) = (got[row * width + column], want_row[column]);
        let diff = if g.is_nan() && w.is_nan() {
            0.0
        } else {
            (g - w).abs()
        };
        assert!(
            !diff.is_nan(),
            "{file}: {what} row {row}: got {g}, want {w}"
        );
        if diff > worst.0 {
            worst = (diff, row);
        }
    }
    assert!(
        worst.0 <= TOLERANCE,
        "{file}: {what} differs by {:e} at row {} (got {}, want {})",
        worst.0,
        worst.1,
        got[worst.1 * width + column],
        want[worst.1][column]
    );
}

fn check(file: &str) {
    let path = fixtures().join("models").join(file);
    let model =
        berth_runtime::load(&path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let rows = eval_rows();
    assert_eq!(
        model.info().num_features,
        rows.cols(),
        "{file}: feature count"
    );
    let outputs = model
        .predict(&rows)
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let (header, want) = read_csv(
        &fixtures()
            .join("models")
            .join(format!("{file}.expected.csv")),
    );
    assert_eq!(want.len(), rows.rows(), "{file}: expected rows");
    if header[0] == "label" {
        let classes = header.len() - 1;
        let labels = output(&outputs, OutputRole::Label);
        let TensorData::Int64(labels) = labels.tensor.data() else {
            panic!("{file}: labels are {:?}", labels.tensor.element_type())
        };
        let probabilities = output(&outputs, OutputRole::Probabilities);
        assert_eq!(
            probabilities.tensor.shape(),
            &[rows.rows(), classes],
            "{file}: probability shape"
        );
        let p = as_f64(probabilities);
        for k in 0..classes {
            assert_close(
                file,
                &format!("p{k}"),
                &p,
                &want.iter().map(|r| r[1..].to_vec()).collect::<Vec<_>>(),
                k,
                classes,
            );
        }
        let mismatched: Vec<usize> = (0..rows.rows())
            .filter(|&r| labels[r] as f64 != want[r][0])
            .collect();
        assert!(
            mismatched.is_empty(),
            "{file}: labels differ in rows {mismatched:?}"
        );
    } else {
        assert_eq!(header, ["value"]);
        let value = output(&outputs, OutputRole::Score);
        assert_eq!(value.tensor.shape()[0], rows.rows());
        assert_close(file, "value", &as_f64(value), &want, 0, 1);
    }
    let margin_file = fixtures().join("models").join(format!("{file}.margin.csv"));
    if let Some(margin) = outputs.iter().find(|o| o.name == "margin")
        && margin_file.exists()
    {
        let (header, want) = read_csv(&margin_file);
        let got = as_f64(margin);
        for k in 0..header.len() {
            assert_close(file, &header[k], &got, &want, k, header.len());
        }
    }
}

macro_rules! reference_tests {
    ($($name:ident => $file:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($file);
            }
        )*
    };
}

reference_tests! {
    onnx_logreg_pipeline => "logreg_pipeline.onnx",
    onnx_logreg_pipeline_zipmap => "logreg_pipeline_zipmap.onnx",
    onnx_rf_classifier => "rf_classifier.onnx",
    onnx_rf_multiclass => "rf_multiclass.onnx",
    onnx_gb_classifier => "gb_classifier.onnx",
    onnx_rf_regressor => "rf_regressor.onnx",
    onnx_mlp_regressor => "mlp_regressor.onnx",
    onnx_xgb_classifier => "xgb_classifier.onnx",
    onnx_xgb_multiclass => "xgb_multiclass.onnx",
    onnx_xgb_regressor => "xgb_regressor.onnx",
    onnx_xgb_classifier_wrong => "xgb_classifier_wrong.onnx",
    onnx_xgb_classifier_slow => "xgb_classifier_slow.onnx",
    onnx_lgbm_classifier => "lgbm_classifier.onnx",
    onnx_lgbm_multiclass => "lgbm_multiclass.onnx",
    onnx_lgbm_regressor => "lgbm_regressor.onnx",
    native_xgb_classifier => "xgb_classifier.json",
    native_xgb_multiclass => "xgb_multiclass.json",
    native_xgb_regressor => "xgb_regressor.json",
    native_lgbm_classifier => "lgbm_classifier.txt",
    native_lgbm_multiclass => "lgbm_multiclass.txt",
    native_lgbm_regressor => "lgbm_regressor.txt",
}
