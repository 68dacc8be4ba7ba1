//! `berth features fit` and `apply` on the raw churn training data: the fitted spec, applied,
//! gives the outputs numpy and pandas give for the same spec (fixtures/make_feature_fixtures.py)
//! to 1e-6; unfitted specs and missing fields are refused by name.

mod common;

use common::{berth, fixtures, path};

fn read_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

#[test]
fn fit_then_apply_matches_numpy_on_the_training_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = fixtures().join("features/spec.yaml");
    let data = fixtures().join("data/churn_train.parquet");
    let fitted = dir.path().join("fitted.yaml");
    let out = berth(&[
        "features",
        "fit",
        path(&spec),
        path(&data),
        "-o",
        path(&fitted),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&fitted).expect("fitted spec");
    assert!(text.contains("vocabulary"), "{text}");
    // Fitting is deterministic.
    let again = dir.path().join("again.yaml");
    assert!(
        berth(&[
            "features",
            "fit",
            path(&spec),
            path(&data),
            "-o",
            path(&again)
        ])
        .status
        .success()
    );
    assert_eq!(std::fs::read(&again).expect("again"), text.as_bytes());

    let matrix = dir.path().join("train.csv");
    let out = berth(&[
        "features",
        "apply",
        path(&fitted),
        path(&data),
        "-o",
        path(&matrix),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (header, rows) = read_csv(&std::fs::read_to_string(&matrix).expect("matrix"));
    let (want_header, want) = read_csv(
        &std::fs::read_to_string(fixtures().join("features/expected.csv")).expect("expected"),
    );
    assert_eq!(header, want_header);
    assert_eq!(rows.len(), 5000);
    for (r, expected) in want.iter().enumerate() {
        assert_eq!(rows[r][0], expected[0], "row {r} id");
        for c in 1..header.len() {
            let (got, exp): (f64, f64) = (
                rows[r][c].parse().expect("number"),
                expected[c].parse().expect("number"),
            );
            assert!(
                (got - exp).abs() <= 1e-6 * exp.abs().max(1.0),
                "row {r}, {}: berth {got}, numpy {exp}",
                header[c]
            );
        }
    }
    // The same matrix as Parquet.
    let parquet = dir.path().join("train.parquet");
    let out = berth(&[
        "features",
        "apply",
        path(&fitted),
        path(&data),
        "-o",
        path(&parquet),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = std::fs::File::open(&parquet).expect("parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet");
    assert_eq!(reader.metadata().file_metadata().num_rows(), 5000);
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, header);
}

#[test]
fn unfitted_specs_and_missing_fields_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = fixtures().join("features/spec.yaml");
    let data = fixtures().join("data/churn_train.parquet");
    let out_file = dir.path().join("x.csv");
    let refused = |args: &[&str], says: &[&str]| {
        let out = berth(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for s in says {
            assert!(err.contains(s), "{args:?} should say {s:?}: {err}");
        }
    };
    refused(
        &[
            "features",
            "apply",
            path(&spec),
            path(&data),
            "-o",
            path(&out_file),
        ],
        &[
            "not fitted",
            "tenure_months.impute",
            "payment_method.transform.vocabulary",
        ],
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "fields:\n  - {name: nope, type: number}\n  - {name: plan, type: category}\n  - {name: age, type: number, clip: {min: 5, max: 1}}\n",
    )
    .expect("write");
    refused(
        &[
            "features",
            "fit",
            path(&bad),
            path(&data),
            "-o",
            path(&out_file),
        ],
        &["plan", "one_hot, ordinal or hash", "age", "min at most max"],
    );
    let missing = dir.path().join("missing.yaml");
    std::fs::write(
        &missing,
        "fields:\n  - {name: nope, type: number, impute: {mean: {}}}\n",
    )
    .expect("write");
    refused(
        &[
            "features",
            "fit",
            path(&missing),
            path(&data),
            "-o",
            path(&out_file),
        ],
        &["nope", "not in the data"],
    );
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "fields:\n  - {name: age, type: number, transfrom: {log1p: {}}}\n",
    )
    .expect("write");
    refused(
        &[
            "features",
            "fit",
            path(&typo),
            path(&data),
            "-o",
            path(&out_file),
        ],
        &["transfrom"],
    );
}
