//! `berth features fit` and `apply` on the raw churn training data: the fitted spec, applied,
//! gives the outputs numpy and pandas give for the same spec (fixtures/make_feature_fixtures.py)
//! to 1e-6; unfitted specs and missing fields are refused by name.

mod common;

use common::{TestStore, berth, berth_ok, fixtures, path, read_csv};

#[test]
fn fit_then_apply_matches_numpy_on_the_training_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = fixtures().join("features/spec.yaml");
    let data = fixtures().join("data/churn_train.parquet");
    let fitted = dir.path().join("fitted.yaml");
    berth_ok(&[
        "features",
        "fit",
        path(&spec),
        path(&data),
        "-o",
        path(&fitted),
    ]);
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
    berth_ok(&[
        "features",
        "apply",
        path(&fitted),
        path(&data),
        "-o",
        path(&matrix),
    ]);
    let (header, rows) = read_csv(&matrix);
    let (want_header, want) = read_csv(&fixtures().join("features/expected.csv"));
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
    berth_ok(&[
        "features",
        "apply",
        path(&fitted),
        path(&data),
        "-o",
        path(&parquet),
    ]);
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
    // Specs fitted on the data: each refused, naming what is wrong.
    let fit_refused = |yaml: &str, says: &[&str]| {
        let spec = dir.path().join("refused.yaml");
        std::fs::write(&spec, yaml).expect("write");
        refused(
            &[
                "features",
                "fit",
                path(&spec),
                path(&data),
                "-o",
                path(&out_file),
            ],
            says,
        );
    };
    fit_refused(
        "fields:\n  - {name: nope, type: number}\n  - {name: plan, type: category}\n  - {name: age, type: number, clip: {min: 5, max: 1}}\n",
        &["plan", "one_hot, ordinal or hash", "age", "min at most max"],
    );
    fit_refused(
        "fields:\n  - {name: nope, type: number, impute: {mean: {}}}\n",
        &["nope", "not in the data"],
    );
    fit_refused(
        "fields:\n  - {name: age, type: number, transfrom: {log1p: {}}}\n",
        &["transfrom"],
    );
    fit_refused(
        "fields:\n  - {name: x, type: number, expr: \"age\u{a0}+ (1\"}\n",
        &["(x).expr", "character 9: expected ')'"],
    );
}

/// Fits the fixtures' feature spec (`fixtures/features/spec.yaml`) on `data` into `DIR/NAME`.
fn fit_spec(dir: &std::path::Path, data: &std::path::Path, name: &str) -> std::path::PathBuf {
    let fitted = dir.join(name);
    let spec = fixtures().join("features/spec.yaml");
    berth_ok(&[
        "features",
        "fit",
        path(&spec),
        path(data),
        "-o",
        path(&fitted),
    ]);
    fitted
}

/// The raw fields the fixtures' feature spec reads.
const RAW_FIELDS: [&str; 8] = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "data_usage_gb",
    "support_calls",
    "payment_method",
    "region",
    "plan",
];

/// The rows of `data` as JSON records of the fields the fitted spec reads.
fn raw_records(
    data: &std::path::Path,
    fields: &[&str],
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    use arrow_array::{Array, Float64Array, StringArray};
    let file = std::fs::File::open(data).expect("data");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut records = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        for r in 0..batch.num_rows() {
            let mut record = serde_json::Map::new();
            for &name in fields {
                let column = batch.column_by_name(name).expect("column");
                let value = if column.is_null(r) {
                    serde_json::Value::Null
                } else if column.data_type().is_numeric() {
                    let x =
                        arrow_cast::cast(column, &arrow_schema::DataType::Float64).expect("cast");
                    let x = x.as_any().downcast_ref::<Float64Array>().expect("numbers");
                    serde_json::json!(x.value(r))
                } else {
                    let t = arrow_cast::cast(column, &arrow_schema::DataType::Utf8).expect("cast");
                    let t = t.as_any().downcast_ref::<StringArray>().expect("text");
                    serde_json::json!(t.value(r))
                };
                record.insert(name.to_string(), value);
            }
            records.push(record);
        }
    }
    records
}

#[test]
fn online_batch_and_apply_then_the_bare_model_agree_bit_for_bit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let store = path(&store);
    let data = fixtures().join("data/churn_train.parquet");
    // 10,000 raw rows: the training rows, the evaluation rows (edge cases, missing categories)
    // and moved rows with categories never seen in training.
    let parity = fixtures().join("features/parity_10k.parquet");
    let model = fixtures().join("features/churn_features_xgb.json");
    let fitted = fit_spec(dir.path(), &data, "fitted.yaml");
    let ok = berth_ok;
    // Offline: the training matrix, then the bare model on it.
    let matrix = dir.path().join("train.csv");
    ok(&[
        "features",
        "apply",
        path(&fitted),
        path(&parity),
        "-o",
        path(&matrix),
    ]);
    let offline = dir.path().join("offline.csv");
    ok(&[
        "predict",
        "-m",
        path(&model),
        "-i",
        path(&matrix),
        "-o",
        path(&offline),
    ]);
    let (header, offline) = read_csv(&offline);
    let p1 = header.iter().position(|h| h == "p_1").expect("p_1 column");

    // Online: the version registered with its fitted spec takes the raw fields.
    let registered = berth(&[
        "--store",
        store,
        "models",
        "register",
        "churnf",
        path(&model),
        "--features",
        path(&fitted),
    ]);
    assert!(
        registered.status.success(),
        "{}",
        String::from_utf8_lossy(&registered.stderr)
    );
    // Batch: the registered version scores the raw data through its spec.
    let scored = dir.path().join("batch.csv");
    berth_ok(&[
        "--store",
        store,
        "score",
        "churnf/1",
        "--input",
        path(&parity),
        "--output",
        path(&scored),
    ]);
    let (batch_header, batch) = read_csv(&scored);
    let batch_p1 = batch_header.iter().position(|h| h == "p_1").expect("p_1");
    let version = batch_header
        .iter()
        .position(|h| h == "version")
        .expect("version");
    let prediction_id = batch_header
        .iter()
        .position(|h| h == "prediction_id")
        .expect("prediction id");
    assert_eq!(batch.len(), offline.len());
    let mut ids = std::collections::HashSet::new();
    for (r, row) in batch.iter().enumerate() {
        assert_eq!(row[0], offline[r][0], "row {r}: the id is carried");
        assert_eq!(row[version], "churnf/1");
        assert!(
            ids.insert(row[prediction_id].clone()),
            "prediction ids are unique"
        );
        let (b, o): (f32, f32) = (
            row[batch_p1].parse().expect("number"),
            offline[r][p1].parse().expect("number"),
        );
        assert_eq!(b.to_bits(), o.to_bits(), "row {r}: batch {b}, offline {o}");
    }
    let server = common::Server::start(&["--store", store, "up", "--no-example", "--no-records"]);
    let records = raw_records(&parity, &RAW_FIELDS);
    assert_eq!(records.len(), offline.len());
    for (r, record) in records.iter().enumerate() {
        let body = serde_json::json!({"instances": [record]}).to_string();
        let (status, _, text) = server.request("POST", "/v1/models/churnf:predict", Some(&body));
        assert_eq!(status, 200, "row {r}: {text}");
        let answer: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let online = answer["predictions"][0]["probabilities"][1]
            .as_f64()
            .expect("p1") as f32;
        let batch: f32 = offline[r][p1].parse().expect("number");
        assert_eq!(
            online.to_bits(),
            batch.to_bits(),
            "row {r}: online {online}, offline {batch}"
        );
    }
    // And both equal xgboost's own predictions on numpy's features (first 300 rows).
    let (_, reference) =
        read_csv(&fixtures().join("features/churn_features_xgb.json.expected.csv"));
    for (r, want) in reference.iter().enumerate() {
        let (got, want): (f64, f64) = (
            offline[r][p1].parse().expect("number"),
            want[2].parse().expect("number"),
        );
        assert!(
            (got - want).abs() < 1e-5,
            "row {r}: berth {got}, xgboost {want}"
        );
    }
    // Raw fields are validated by the spec's types: text where a number belongs is a 400.
    let (status, _, text) = server.request(
        "POST",
        "/v1/models/churnf:predict",
        Some(r#"{"instances": [{"tenure_months": "long", "monthly_charges": 1, "total_charges": 1, "data_usage_gb": 1, "support_calls": 1, "payment_method": null, "region": "north", "plan": "basic"}]}"#),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("tenure_months"), "{text}");
}

/// `parquet` as CSV: every column as Arrow writes it as text (floats in their shortest exact
/// form), null as an empty field, every field quoted.
fn parquet_to_csv(parquet: &std::path::Path, csv: &std::path::Path) {
    use arrow_array::{Array, StringArray};
    let file = std::fs::File::open(parquet).expect("parquet");
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    let mut out = String::new();
    for (b, batch) in reader.enumerate() {
        let batch = batch.expect("batch");
        let schema = batch.schema();
        if b == 0 {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            out.push_str(&names.join(","));
            out.push('\n');
        }
        let texts: Vec<StringArray> = batch
            .columns()
            .iter()
            .map(|c| {
                let cast = arrow_cast::cast(c, &arrow_schema::DataType::Utf8).expect("text");
                cast.as_any()
                    .downcast_ref::<StringArray>()
                    .expect("strings")
                    .clone()
            })
            .collect();
        for r in 0..batch.num_rows() {
            let cells: Vec<String> = texts
                .iter()
                .map(|t| {
                    if t.is_null(r) {
                        String::new()
                    } else {
                        format!("\"{}\"", t.value(r).replace('"', "\"\""))
                    }
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    std::fs::write(csv, out).expect("write csv");
}

#[test]
fn csv_data_fits_applies_and_scores_as_parquet_does_and_bad_rows_are_named() {
    let test_store = TestStore::new();
    let dir = &test_store.dir;
    let run = |args: &[&str]| test_store.ok(args);
    let model = fixtures().join("features/churn_features_xgb.json");
    let train = fixtures().join("data/churn_train.parquet");
    let parity = fixtures().join("features/parity_10k.parquet");
    let (train_csv, parity_csv) = (dir.path().join("train.csv"), dir.path().join("parity.csv"));
    parquet_to_csv(&train, &train_csv);
    parquet_to_csv(&parity, &parity_csv);

    // Fitting on the CSV gives the same fitted spec, byte for byte.
    let fitted = fit_spec(dir.path(), &train, "fitted.yaml");
    let fitted_csv = fit_spec(dir.path(), &train_csv, "fitted_csv.yaml");
    assert_eq!(
        std::fs::read_to_string(&fitted_csv).expect("fitted"),
        std::fs::read_to_string(&fitted).expect("fitted")
    );
    // Applying and scoring the CSV give what the Parquet gives.
    run(&[
        "models",
        "register",
        "churnf",
        path(&model),
        "--features",
        path(&fitted),
    ]);
    for command in ["apply", "score"] {
        let mut outputs = Vec::new();
        for data in [&parity, &parity_csv] {
            let out = dir.path().join(format!("{command}-{}.csv", outputs.len()));
            match command {
                "apply" => run(&[
                    "features",
                    "apply",
                    path(&fitted),
                    path(data),
                    "-o",
                    path(&out),
                ]),
                _ => run(&[
                    "score",
                    "churnf/1",
                    "--input",
                    path(data),
                    "--output",
                    path(&out),
                ]),
            };
            let (header, rows) = read_csv(&out);
            // Prediction ids differ from run to run; everything else is the same.
            let keep: Vec<usize> = (0..header.len())
                .filter(|&c| header[c] != "prediction_id")
                .collect();
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|r| keep.iter().map(|&c| r[c].clone()).collect())
                .collect();
            outputs.push((header, rows));
        }
        assert_eq!(outputs[0].1.len(), 10_000, "{command}");
        assert!(
            outputs[0] == outputs[1],
            "{command}: CSV and Parquet differ"
        );
    }

    // A value that is not a number: named by row and field; skipped rows go to the rejects file.
    let text = std::fs::read_to_string(&parity_csv).expect("csv");
    let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
    let tenure = header
        .iter()
        .position(|h| *h == "tenure_months")
        .expect("tenure_months column");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for row in [7usize, 9_000] {
        let mut cells: Vec<String> = lines[row].split(',').map(str::to_string).collect();
        cells[tenure] = "\"long\"".into();
        lines[row] = cells.join(",");
    }
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).expect("write");
    let scored = dir.path().join("scored.csv");
    let failed = test_store.run(&[
        "score",
        "churnf/1",
        "--input",
        path(&bad),
        "--output",
        path(&scored),
    ]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{err}");
    assert!(
        err.contains("row 7, column 'tenure_months'") && err.contains("long"),
        "{err}"
    );
    let applied = berth(&[
        "features",
        "apply",
        path(&fitted),
        path(&bad),
        "-o",
        path(&scored),
    ]);
    let err = String::from_utf8_lossy(&applied.stderr);
    assert_eq!(applied.status.code(), Some(2), "{err}");
    assert!(err.contains("row 7, field tenure_months"), "{err}");
    let rejects = dir.path().join("rejects.csv");
    run(&[
        "score",
        "churnf/1",
        "--input",
        path(&bad),
        "--output",
        path(&scored),
        "--on-error",
        "skip",
        "--rejects",
        path(&rejects),
    ]);
    let (_, kept) = read_csv(&scored);
    assert_eq!(kept.len(), 9_998);
    let (_, rejected) = read_csv(&rejects);
    let rows: Vec<(&str, &str, &str)> = rejected
        .iter()
        .map(|r| (r[1].as_str(), r[2].as_str(), r[4].as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("7", "tenure_months", "long"),
            ("9000", "tenure_months", "long")
        ]
    );
}

#[test]
fn a_version_with_a_spec_is_monitored_on_its_raw_fields_online_and_in_batch() {
    let test_store = TestStore::new();
    let dir = &test_store.dir;
    let run = |args: &[&str]| test_store.ok(args);
    let train = fixtures().join("data/churn_train.parquet");
    let model = fixtures().join("features/churn_features_xgb.json");
    let fitted = fit_spec(dir.path(), &train, "fitted.yaml");
    // The raw training data is the reference: its fields as they come, and the model's outputs
    // on it through the spec.
    run(&[
        "models",
        "register",
        "churnf",
        path(&model),
        "--features",
        path(&fitted),
        "--reference",
        path(&train),
    ]);
    run(&["endpoints", "set", "churnf-moved", "churnf/1"]);
    let server = test_store.server(&["up", "--no-example", "--no-records"]);
    let records = raw_records(&train, &RAW_FIELDS);
    for (endpoint, shift) in [("churnf", 0.0), ("churnf-moved", 120.0)] {
        for chunk in records[..600].chunks(200) {
            let instances: Vec<serde_json::Value> = chunk
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if let Some(t) = r.get("tenure_months").and_then(serde_json::Value::as_f64) {
                        r.insert("tenure_months".into(), serde_json::json!(t + shift));
                    }
                    serde_json::Value::Object(r)
                })
                .collect();
            let body = serde_json::json!({ "instances": instances }).to_string();
            let (status, _, text) = server.request(
                "POST",
                &format!("/v1/models/{endpoint}:predict"),
                Some(&body),
            );
            assert_eq!(status, 200, "{text}");
        }
    }
    let drift = |endpoint: &str, rows: u64| {
        let started = std::time::Instant::now();
        loop {
            let (status, _, text) =
                server.request("GET", &format!("/api/v1/endpoints/{endpoint}/drift"), None);
            // A model name (no endpoint) is a 404 until its first traffic is profiled.
            assert!(status == 200 || status == 404, "{status}: {text}");
            let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            if v["versions"][0]["report"]["current_rows"].as_u64() == Some(rows) {
                return v["versions"][0].clone();
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "{endpoint}: {rows} rows not profiled: {v}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let column = |report: &serde_json::Value, name: &str| {
        report["columns"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["column"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no column {name} in {report}"))
    };
    let like = drift("churnf", 600);
    for name in ["tenure_months", "payment_method", "plan"] {
        let c = column(&like["report"], name);
        assert_eq!(c["drift"], false, "traffic from the training data: {c}");
    }
    assert_eq!(
        column(&like["report"], "payment_method")["kind"],
        "categorical",
        "raw categories are profiled as text"
    );
    assert_eq!(like["outputs"]["current_rows"], 600, "{like}");
    assert_eq!(column(&like["outputs"], "p_1")["drift"], false);
    let moved = drift("churnf-moved", 600);
    assert_eq!(
        column(&moved["report"], "tenure_months")["drift"],
        true,
        "{moved}"
    );
    assert_eq!(column(&moved["report"], "monthly_charges")["drift"], false);

    // Batch scoring of raw rows joins the same windows (the id column is not an input).
    let scored = dir.path().join("scored.csv");
    run(&[
        "score",
        "churnf-moved",
        "--input",
        path(&train),
        "--output",
        path(&scored),
    ]);
    let with_batch = drift("churnf-moved", 600 + 5000);
    let schema = &with_batch["report"]["schema"];
    assert_eq!(
        schema["added"],
        serde_json::json!([]),
        "the file's other columns are no added fields: {schema}"
    );
    assert_eq!(with_batch["outputs"]["current_rows"], 5600);
    let (status, _) = server.stop();
    assert!(status.success());
}
