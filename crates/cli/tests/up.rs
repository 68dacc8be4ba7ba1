//! `berth up` end to end: first start registers and serves the example model; moving an alias
//! with the CLI is served within a second; the version no longer named is unloaded.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn infer_body() -> String {
    let row = vec!["1.5"; 23].join(",");
    format!(r#"{{"inputs":[{{"name":"input","shape":[1,23],"datatype":"FP32","data":[{row}]}}]}}"#)
}

/// The `x-berth-version` of an answer to `POST /v2/models/{m}/infer`.
fn answered_by(server: &common::Server, m: &str) -> Option<String> {
    let (status, head, body) = server.request(
        "POST",
        &format!("/v2/models/{m}/infer"),
        Some(&infer_body()),
    );
    if status != 200 {
        return None;
    }
    assert!(body.contains("probabilities"), "{body}");
    head.lines().find_map(|l| {
        l.strip_prefix("x-berth-version: ")
            .map(|v| v.trim().to_string())
    })
}

#[test]
fn up_serves_the_example_and_follows_alias_moves() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let store = store.to_str().expect("utf-8");
    let server = common::Server::start(&[
        "--store",
        store,
        "--actor",
        "tester",
        "up",
        "--poll-ms",
        "100",
    ]);

    let (status, _, body) = server.request("GET", "/v2/models/churn", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        answered_by(&server, "churn").as_deref(),
        Some("churn/1"),
        "the example answers on endpoint churn"
    );
    assert_eq!(
        answered_by(&server, "churn@champion").as_deref(),
        Some("churn/1")
    );
    let (status, _, body) = server.request("GET", "/api/v1/models/churn", None);
    assert!(status == 200 && body.contains("\"champion\""), "{body}");

    // A new version and an alias move, through the CLI on the same store.
    let lgbm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/models/lgbm_classifier.txt");
    let cli = |args: &[&str]| {
        common::berth_ok(&[&["--store", store, "--actor", "tester"], args].concat());
    };
    cli(&["models", "register", "churn", lgbm.to_str().expect("utf-8")]);
    cli(&["alias", "set", "churn@champion", "2"]);
    let moved = Instant::now();
    while answered_by(&server, "churn").as_deref() != Some("churn/2") {
        assert!(
            moved.elapsed() < Duration::from_secs(3),
            "the alias move was not served within 3 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        moved.elapsed() < Duration::from_secs(1),
        "served after {:?}",
        moved.elapsed()
    );
    assert_eq!(
        answered_by(&server, "churn@champion").as_deref(),
        Some("churn/2")
    );
    // Nothing names version 1 any more: it is unloaded.
    let (status, _, body) = server.request(
        "POST",
        "/v2/models/churn/versions/1/infer",
        Some(&infer_body()),
    );
    assert_eq!(status, 404, "{body}");

    let (status, rest) = server.stop();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}: {rest}"
    );
}

/// The README's curl examples, run as written against a fresh `berth up` (only the port differs).
#[test]
fn the_readme_curl_examples_work() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README");
    let examples: Vec<&str> = readme
        .split("```sh")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter(|block| block.trim_start().starts_with("curl"))
        .collect();
    assert!(!examples.is_empty(), "the README has curl examples");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let server = common::Server::start(&["--store", store.to_str().expect("utf-8"), "up"]);
    for example in examples {
        let command = example.replace("localhost:8080", &server.address);
        let out = Command::new("sh")
            .args(["-c", &command])
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{command}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        assert_eq!(body["model_version"], "1", "{body}");
        assert!(
            body["outputs"]
                .as_array()
                .is_some_and(|o| o.iter().any(|t| t["name"] == "probabilities")),
            "{body}"
        );
    }

    // The dashboard the README promises, and every URL its script reads answers.
    let (status, head, page) = server.request("GET", "/", None);
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/html"),
        "{head}"
    );
    for (in_page, url) in [
        ("\"/api/v1/models\"", "/api/v1/models"),
        ("\"/api/v1/endpoints\"", "/api/v1/endpoints"),
        ("\"/api/v1/audit?limit=15\"", "/api/v1/audit?limit=15"),
        ("\"/metrics\"", "/metrics"),
        ("\"/api/v1/models/\" + ", "/api/v1/models/churn"),
        ("\"/v2/models/\" + ", "/v2/models/churn"),
        ("\"/api/v1/endpoints/\" + ", "/api/v1/endpoints/churn/drift"),
        ("\"/rollouts\"", "/api/v1/endpoints/churn/rollouts"),
        ("\"/api/v1/jobs\"", "/api/v1/jobs"),
    ] {
        assert!(page.contains(in_page), "the page reads {in_page}");
        let (status, _, body) = server.request("GET", url, None);
        assert_eq!(status, 200, "{url}: {body}");
    }
    let (status, _) = server.stop();
    assert!(status.success());
}
