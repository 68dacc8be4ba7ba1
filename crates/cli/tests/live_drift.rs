//! Live drift end to end: a version registered with reference data is profiled as it serves;
//! `GET /api/v1/endpoints/{e}/drift` compares an endpoint's traffic (inputs and the model's
//! outputs) with the reference, by the version's drift settings, and gauges show it. Traffic like
//! the training data shows the rows it received; traffic with one feature moved flags that
//! feature. The windows are in the store, so a restarted server still answers for them.

mod common;

use common::fixtures;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Evaluation rows the traffic is made of (after the 80 edge rows), sent in three requests of
/// 200; the rest are the reference.
const TRAFFIC_ROWS: usize = 600;

/// `n` evaluation rows from `first` after the 80 edge rows, as a V2 body; `shift` moves
/// `tenure_months` (column 0).
fn body(first: usize, n: usize, shift: f64) -> String {
    let text = std::fs::read_to_string(fixtures().join("data/eval_features.csv")).expect("rows");
    let mut data = Vec::new();
    for line in text.lines().skip(1 + 80 + first).take(n) {
        for (c, v) in line.split(',').skip(1).enumerate() {
            data.push(match v.parse::<f64>() {
                Ok(x) if c == 0 => format!("{}", x + shift),
                Ok(x) => format!("{x}"),
                Err(_) => "null".to_string(),
            });
        }
    }
    format!(
        r#"{{"inputs":[{{"name":"input","shape":[{n},23],"datatype":"FP32","data":[{}]}}]}}"#,
        data.join(",")
    )
}

fn drift(server: &common::Server, endpoint: &str, rows: u64) -> Value {
    let started = Instant::now();
    loop {
        let (status, _, text) =
            server.request("GET", &format!("/api/v1/endpoints/{endpoint}/drift"), None);
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        if v["versions"][0]["report"]["current_rows"].as_u64() == Some(rows) {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{rows} rows not profiled within 10 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn column<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["columns"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["column"] == name))
        .unwrap_or_else(|| panic!("no column {name} in {report}"))
}

#[test]
fn traffic_is_profiled_against_the_reference_and_a_moved_feature_drifts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let store = store.to_str().expect("utf-8");
    let server = common::Server::start(&["--store", store, "up", "--poll-ms", "100"]);
    let cli = |args: &[&str]| common::berth_ok(&[&["--store", store], args].concat());
    let model = fixtures().join("models/lgbm_classifier.txt");
    // Reference data as the model takes it (categories as codes), so that its outputs are
    // profiled too: the ordinary evaluation rows the traffic below does not use.
    let reference = dir.path().join("reference.csv");
    let rows = std::fs::read_to_string(fixtures().join("data/eval_features.csv")).expect("rows");
    let without_id: Vec<&str> = rows
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || *i > 1 + 80 + TRAFFIC_ROWS)
        .map(|(_, l)| l.split_once(',').map_or(l, |(_, rest)| rest))
        .collect();
    std::fs::write(&reference, without_id.join("\n")).expect("write");
    let model = model.to_str().expect("utf-8");
    let reference = reference.to_str().expect("utf-8");
    let register = |extra: &[&str]| {
        common::berth(
            &[
                &["--store", store, "models", "register", "churn", model],
                extra,
            ]
            .concat(),
        )
    };
    let drift_file = |name: &str, yaml: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).expect("write");
        path.to_str().expect("utf-8").to_string()
    };
    // Drift settings that cannot apply are refused, naming what is wrong.
    let bad = drift_file("bad.yaml", "threshold: -1\n");
    let unknown = drift_file(
        "unknown.yaml",
        "columns:\n  no_such_feature:\n    method: psi\n",
    );
    for (extra, expected) in [
        (
            vec!["--reference", reference, "--drift", &bad],
            "threshold: expected a number above 0, got -1",
        ),
        (
            vec!["--reference", reference, "--drift", &unknown],
            "got no_such_feature",
        ),
        (vec!["--drift", &unknown], "without reference data"),
    ] {
        let refused = register(&extra);
        let message = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{extra:?}: {message}");
        assert!(message.contains(expected), "{extra:?}: {message}");
    }
    let settings = drift_file(
        "drift.yaml",
        "columns:\n  monthly_charges:\n    method: psi\n",
    );
    assert!(
        register(&["--reference", reference, "--drift", &settings])
            .status
            .success()
    );
    cli(&["alias", "set", "churn@champion", "2"]);
    cli(&["endpoints", "set", "churn-moved", "churn@champion"]);
    // Both endpoints serve version 2 once the server has picked the changes up.
    let started = Instant::now();
    loop {
        let (status, head, _) = server.request(
            "POST",
            "/v2/models/churn-moved/infer",
            Some(&body(0, 1, 0.0)),
        );
        if status == 200 && head.contains("x-berth-version: churn/2") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not served: {status} {head}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    for first in [0, 200, 400] {
        let (status, _, text) = server.request(
            "POST",
            "/v2/models/churn/infer",
            Some(&body(first, 200, 0.0)),
        );
        assert_eq!(status, 200, "{text}");
        let (status, _, text) = server.request(
            "POST",
            "/v2/models/churn-moved/infer",
            Some(&body(first, 200, 120.0)),
        );
        assert_eq!(status, 200, "{text}");
    }

    let like = drift(&server, "churn", 600);
    assert_eq!(like["versions"][0]["version"], 2, "{like}");
    let tenure = column(&like["versions"][0]["report"], "tenure_months");
    assert_eq!(
        tenure["drift"], false,
        "traffic like the training data: {tenure}"
    );
    // Numbers with at most 5 distinct reference values (codes, small counts) are judged as
    // categories, as Evidently does: KS on them mostly measures ties.
    for discrete in ["plan", "region", "payment_method", "referrals"] {
        let c = column(&like["versions"][0]["report"], discrete);
        assert_eq!(c["method"], "chi_square", "{c}");
        assert_eq!(c["drift"], false, "traffic like the training data: {c}");
    }

    // The probe request above is in churn-moved's window too.
    let moved = drift(&server, "churn-moved", 601);
    let tenure = column(&moved["versions"][0]["report"], "tenure_months");
    assert_eq!(
        tenure["drift"], true,
        "tenure moved by 120 months: {tenure}"
    );
    let monthly = column(&moved["versions"][0]["report"], "monthly_charges");
    assert_eq!(monthly["drift"], false, "an unmoved feature: {monthly}");
    assert_eq!(
        monthly["method"], "psi",
        "the version's drift settings: {monthly}"
    );
    assert_eq!(
        tenure["method"], "ks",
        "the default below 1000 rows: {tenure}"
    );

    // Prediction drift: the model's outputs against its outputs on the reference data.
    let outputs = &like["versions"][0]["outputs"];
    assert_eq!(outputs["current_rows"], 600, "{outputs}");
    let p1 = column(outputs, "p_1");
    assert_eq!(
        p1["drift"], false,
        "outputs of traffic like the training data: {p1}"
    );
    column(outputs, "label");

    // The gauges are refreshed after each flush (every 5 s).
    let gauges = [
        ("berth_feature_drift{", "feature=\"tenure_months\""),
        ("berth_prediction_drift{", "output=\"p_1\""),
        ("berth_data_quality{", "check=\"out_of_range_share\""),
    ];
    let started = Instant::now();
    loop {
        let (_, _, metrics) = server.request("GET", "/metrics", None);
        let missing: Vec<_> = gauges
            .iter()
            .filter(|(name, label)| {
                !metrics.lines().any(|l| {
                    l.starts_with(name)
                        && l.contains("endpoint=\"churn-moved\"")
                        && l.contains(label)
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "gauges {missing:?} missing: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The same through the CLI, in its long and short forms.
    for command in [&["drift", "live"][..], &["drift"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(command)
            .args(["churn-moved", "--since", "30m", "--server"])
            .arg(format!("http://{}", server.address))
            .output()
            .expect("berth runs");
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tenure = table
            .lines()
            .find(|l| l.starts_with("tenure_months"))
            .unwrap_or_else(|| panic!("no tenure_months row: {table}"));
        assert!(tenure.contains(" yes "), "{tenure}");
        assert!(table.contains("reference data of churn/2"), "{table}");
        assert!(
            table.contains("Prediction drift") && table.lines().any(|l| l.starts_with("p_1")),
            "{table}"
        );
    }

    let (status, _, _) =
        server.request("GET", "/api/v1/endpoints/churn/drift?from=yesterday", None);
    assert_eq!(status, 400, "a bad time is refused");
    let (status, _, text) = server.request("GET", "/api/v1/endpoints/nope/drift", None);
    assert_eq!(status, 404, "{text}");
    assert!(
        text.contains("no endpoint named") && text.contains("nope"),
        "{text}"
    );

    // The windows are in the store: a restarted server (another replica id) still has them.
    let (status, _) = server.stop();
    assert!(status.success());
    let server = common::Server::start(&["--store", store, "up", "--poll-ms", "100"]);
    let again = drift(&server, "churn-moved", 601);
    let tenure = column(&again["versions"][0]["report"], "tenure_months");
    assert_eq!(tenure["drift"], true, "after a restart: {tenure}");

    // Batch scoring feeds the same profiles: 600 rows scored under the endpoint's name join
    // its served traffic; with --no-profiles they do not.
    let moved_rows = dir.path().join("moved.csv");
    let mut lines = vec![rows.lines().next().expect("header").to_string()];
    for line in rows.lines().skip(1 + 80).take(TRAFFIC_ROWS) {
        let cells: Vec<String> = line
            .split(',')
            .enumerate()
            .map(|(c, v)| match v.parse::<f64>() {
                Ok(x) if c == 1 => format!("{}", x + 120.0),
                _ => v.to_string(),
            })
            .collect();
        lines.push(cells.join(","));
    }
    std::fs::write(&moved_rows, lines.join("\n")).expect("write");
    let moved_rows = moved_rows.to_str().expect("utf-8");
    let scored = dir.path().join("scored.csv");
    let scored = scored.to_str().expect("utf-8");
    for extra in [&["--no-profiles"][..], &[]] {
        cli(&[
            &[
                "score",
                "churn-moved",
                "--input",
                moved_rows,
                "--output",
                scored,
            ],
            extra,
        ]
        .concat());
    }
    let with_batch = drift(&server, "churn-moved", 601 + TRAFFIC_ROWS as u64);
    let tenure = column(&with_batch["versions"][0]["report"], "tenure_months");
    assert_eq!(tenure["drift"], true, "served and batch rows: {tenure}");
    assert_eq!(
        with_batch["versions"][0]["outputs"]["current_rows"],
        601 + TRAFFIC_ROWS as u64,
        "batch outputs are profiled too"
    );
    let (status, _) = server.stop();
    assert!(status.success());
}
