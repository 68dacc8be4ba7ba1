//! `berth replay`: an endpoint's logged inputs rescored with another version and compared with
//! what was served. Replaying with the served version reproduces every answer; replaying with
//! another gives the agreement and |Δ score| that the two fixtures' reference outputs give for
//! the same rows.

mod common;

use common::{Server, berth, fixtures, path};
use serde_json::Value;

/// Evaluation rows (0-based, after the header) sent one per request.
const ROWS: std::ops::Range<usize> = 100..130;

fn csv(file: &str) -> Vec<Vec<String>> {
    std::fs::read_to_string(fixtures().join(file))
        .expect("fixture")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn replay_compares_a_version_with_what_was_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let store = path(&store);
    let server = Server::start(&["--store", store, "up", "--no-profiles"]);
    let rows = csv("data/eval_features.csv");
    for r in ROWS {
        let data: Vec<String> = rows[r][1..]
            .iter()
            .map(|v| {
                if v.is_empty() {
                    "null".into()
                } else {
                    v.clone()
                }
            })
            .collect();
        let body = format!(
            r#"{{"inputs":[{{"name":"input","shape":[1,23],"datatype":"FP32","data":[{}]}}]}}"#,
            data.join(",")
        );
        let (status, _, text) = server.request("POST", "/v2/models/churn/infer", Some(&body));
        assert_eq!(status, 200, "{text}");
    }
    // Stopping flushes the records.
    let (status, _) = server.stop();
    assert!(status.success());
    let cli = |args: &[&str]| berth(&[&["--store", store], args].concat());
    let model = fixtures().join("models/lgbm_classifier.txt");
    assert!(
        cli(&["models", "register", "churn", path(&model)])
            .status
            .success()
    );

    let replay = |version: &str| -> Value {
        let out = cli(&[
            "--json",
            "replay",
            "churn",
            "--from",
            "1h",
            "--version",
            version,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let n = ROWS.len() as u64;
    let same = replay("1");
    assert_eq!(same["records"], n);
    assert_eq!(same["reproduced"], n, "{same}");
    assert_eq!(same["served_by"]["churn/1"], n);
    assert_eq!(same["agreement"], 1.0);
    assert_eq!(same["mean_abs_delta"], 0.0);

    let other = replay("churn/2");
    assert_eq!(
        (other["records"].as_u64(), other["skipped"].as_u64()),
        (Some(n), Some(0))
    );
    let (served, replayed) = (
        csv("models/xgb_classifier.json.expected.csv"),
        csv("models/lgbm_classifier.txt.expected.csv"),
    );
    let value = |row: &[String], c: usize| row[c].parse::<f64>().expect("number");
    let agree = ROWS.filter(|&r| served[r][0] == replayed[r][0]).count();
    let deltas: Vec<f64> = ROWS
        .map(|r| {
            (1..3)
                .map(|c| (value(&served[r], c) - value(&replayed[r], c)).abs())
                .fold(0.0, f64::max)
        })
        .collect();
    let mean = deltas.iter().sum::<f64>() / n as f64;
    let agreement = other["agreement"].as_f64().expect("agreement");
    assert!(
        (agreement - agree as f64 / n as f64).abs() < 1e-12,
        "{other}"
    );
    let measured = other["mean_abs_delta"].as_f64().expect("mean");
    assert!(
        (measured - mean).abs() < 1e-6,
        "mean |Δ| {measured}, expected {mean}"
    );
    let worst = deltas.iter().copied().fold(0.0, f64::max);
    let reported = other["comparison"]["worst"][0]["abs_delta"]
        .as_f64()
        .expect("worst");
    assert!(
        (reported - worst).abs() < 1e-6,
        "worst |Δ| {reported}, expected {worst}"
    );

    // The readable report says the same.
    let out = cli(&["replay", "churn", "--from", "1h", "--version", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("replayed {n} records")), "{text}");
    assert!(text.contains("with churn/2"), "{text}");

    // Mistakes are named, with exit code 2.
    for (args, says) in [
        (
            vec!["replay", "churn", "--from", "1h", "--version", "9"],
            "churn/9",
        ),
        (
            vec!["replay", "nope", "--from", "1h", "--version", "1"],
            "nope",
        ),
        (
            vec!["replay", "churn", "--from", "yesterday", "--version", "1"],
            "--from",
        ),
        (
            vec![
                "replay",
                "churn",
                "--from",
                "99999999999999d",
                "--version",
                "1",
            ],
            "too long ago",
        ),
        (
            vec![
                "replay",
                "churn",
                "--from",
                "2020-01-01T00:00:00Z",
                "--to",
                "2020-01-02T00:00:00Z",
                "--version",
                "1",
            ],
            "no served predictions",
        ),
    ] {
        let out = cli(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?} should say {says:?}: {err}");
    }
}
