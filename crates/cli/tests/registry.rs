//! The registry commands end to end: the real binary against a store in a temporary folder
//! (and one run against PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(file)
}

/// Runs berth with `--store STORE --actor tester`.
fn berth(store: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--store", store, "--actor", "tester"])
        .args(args)
        .env_remove("BERTH_STORE")
        .output()
        .expect("berth runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts exit code `code` and that stderr is one line containing `text`.
fn fails(out: &Output, code: i32, text: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(stderr.contains(text), "expected {text:?} in: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
}

/// Asserts that `models register churn MODEL FLAGS` fails with exit code 2 and `text`.
fn register_fails(store: &str, model: &Path, flags: &[&str], text: &str) {
    let mut args = vec!["models", "register", "churn", path(model)];
    args.extend_from_slice(flags);
    fails(&berth(store, &args), 2, text);
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON output")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The whole life of a model through the CLI, on the store `store`.
fn lifecycle(store: &str) {
    let xgb = fixture("xgb_classifier.json");
    let lgbm = fixture("lgbm_classifier.txt");
    let v1 = json(&berth(
        store,
        &[
            "--json",
            "models",
            "register",
            "churn",
            path(&xgb),
            "--tag",
            "team=growth",
            "--metric",
            "auc=0.79",
        ],
    ));
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["registered_by"], "tester");
    assert_eq!(v1["tags"]["team"], "growth");
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data/churn_train.parquet");
    let v2 = json(&berth(
        store,
        &[
            "--json",
            "models",
            "register",
            "churn",
            path(&lgbm),
            "--parent",
            "1",
            "--code-ref",
            "abc123",
            "--reference",
            path(&reference),
        ],
    ));
    assert_eq!(v2["lineage"]["code_ref"], "abc123");
    let reference_sha = berth_store::sha256_hex(&std::fs::read(&reference).expect("reference"));
    assert_eq!(
        v2["reference_sha256"],
        reference_sha.as_str(),
        "the reference data is stored by hash"
    );
    assert!(
        v2["reference_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with(&reference_sha))
    );
    // Its profile is stored with the version: the baseline drift is measured against.
    let profile: berth_monitor::ReferenceProfile =
        serde_json::from_value(v2["reference_profile"].clone()).expect("a reference profile");
    assert!(profile.columns.iter().any(|c| c.name == "tenure_months"));
    assert_eq!(
        profile,
        berth_monitor::ReferenceProfile::from_file(&reference).expect("profile"),
        "the stored profile is the reference file's"
    );
    assert!(
        v1["reference_profile"].is_null(),
        "no reference data, no profile"
    );
    // Reference data that cannot be read is refused, and nothing is registered.
    let broken = std::env::temp_dir().join(format!("berth-broken-{}.parquet", std::process::id()));
    std::fs::write(&broken, b"not a parquet file").expect("write");
    let xgb_regressor = fixture("xgb_regressor.json");
    register_fails(
        store,
        &xgb_regressor,
        &["--reference", path(&broken)],
        "reference data",
    );
    let _ = std::fs::remove_file(&broken);
    assert_eq!(
        (
            v2["version"].as_i64(),
            v2["lineage"]["parent_version"].as_i64()
        ),
        (Some(2), Some(1))
    );

    register_fails(store, &lgbm, &[], "churn/2 already has these exact bytes");

    let out = ok(&berth(
        store,
        &[
            "alias",
            "set",
            "churn@champion",
            "1",
            "--reason",
            "first release",
        ],
    ));
    assert_eq!(out.trim(), "churn@champion -> churn/1");
    let out = ok(&berth(store, &["alias", "set", "churn@champion", "2"]));
    assert_eq!(out.trim(), "churn@champion: churn/1 -> churn/2");
    ok(&berth(
        store,
        &["endpoints", "set", "churn-api", "churn@champion"],
    ));

    let shown = json(&berth(
        store,
        &["--json", "models", "show", "churn@champion"],
    ));
    assert_eq!(shown["version"], 2);
    let listing = ok(&berth(store, &["models", "list"]));
    assert!(
        listing
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("churn") && l.contains(" 2 ")),
        "{listing}"
    );

    let live = json(&berth(store, &["--json", "history", "churn"]));
    assert_eq!(live["aliases"][0]["version"], 2);
    assert_eq!(live["aliases"][0]["changed_by"], "tester");
    assert_eq!(live["endpoints"][0]["endpoint"], "churn-api");
    assert_eq!(live["endpoints"][0]["version"], 2);

    let audit = json(&berth(store, &["--json", "audit", "churn"]));
    let actions: Vec<&str> = audit
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "model.create",
            "version.register",
            "version.register",
            "alias.set",
            "alias.set",
            "endpoint.set"
        ]
    );

    fails(
        &berth(store, &["models", "show", "nope"]),
        2,
        "model 'nope' does not exist",
    );
    fails(
        &berth(store, &["models", "show", "churn/7"]),
        2,
        "version 'churn/7' does not exist",
    );
    fails(
        &berth(store, &["models", "show", "churn@staging"]),
        2,
        "alias 'churn@staging' does not exist",
    );
    fails(
        &berth(store, &["alias", "set", "churn@champion", "9"]),
        2,
        "churn/9 does not exist",
    );
    fails(
        &berth(store, &["endpoints", "set", "api", "churn"]),
        2,
        "must name a version or an alias",
    );
}

#[test]
fn lifecycle_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    lifecycle(path(&store));
    assert!(
        store.join("berth.db").exists(),
        "SQLite file in the data folder"
    );
    assert!(
        store.join("artifacts/sha256").is_dir(),
        "artifacts by hash in the data folder"
    );
}

#[test]
fn lifecycle_on_postgres() {
    let url = "postgres://postgres@127.0.0.1:5432/test";
    let schema = format!(
        "berth_cli_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let created = Command::new("psql")
        .args([url, "-qc", &format!("CREATE SCHEMA {schema}")])
        .output();
    match created {
        Ok(out) if out.status.success() => {}
        other => {
            if std::env::var("BERTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL at {url} is required (BERTH_REQUIRE_SERVICES=1): {other:?}");
            }
            eprintln!("skipped: PostgreSQL at {url} is not reachable");
            return;
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let artifacts = dir.path().join("artifacts");
    let store = format!("{url}?options%5Bsearch_path%5D={schema}");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "--store",
            &store,
            "--artifacts",
            path(&artifacts),
            "--actor",
            "tester",
            "--json",
            "models",
            "register",
            "churn",
        ])
        .arg(fixture("xgb_regressor.json"))
        .output()
        .expect("berth runs");
    assert_eq!(json(&out)["version"], 1);
    // The rest of the life on PostgreSQL, with artifacts in their own folder.
    let with_artifacts = |args: &[&str]| {
        let mut all = vec!["--artifacts", path(&artifacts)];
        all.extend_from_slice(args);
        berth(&store, &all)
    };
    ok(&with_artifacts(&["alias", "set", "churn@champion", "1"]));
    let live = json(&with_artifacts(&["--json", "history", "churn"]));
    assert_eq!(live["aliases"][0]["version"], 1);
}

#[test]
fn bad_input_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let store = path(&store);
    let xgb = fixture("xgb_classifier.json");
    fails(
        &berth(store, &["models", "register", "bad/name", path(&xgb)]),
        2,
        "invalid model name \"bad/name\"",
    );
    let sig = dir.path().join("sig.yaml");
    for (yaml, problem) in [
        ("inputs: [\n  - {name: a\n", "malformed YAML"),
        (
            "inputs:\n  - {name: a, type: number, reqired: true}\n",
            "unknown key 'reqired'",
        ),
    ] {
        std::fs::write(&sig, yaml).expect("write");
        register_fails(store, &xgb, &["--signature", path(&sig)], problem);
    }
    let garbage = dir.path().join("model.onnx");
    std::fs::write(&garbage, b"not a model").expect("write");
    register_fails(store, &garbage, &[], "cannot load model model.onnx");
    register_fails(
        store,
        &xgb,
        &["--metric", "auc=high"],
        "--metric auc=high: expected a number",
    );
    fails(
        &berth(store, &["history", "--at", "yesterday"]),
        2,
        "expected RFC 3339",
    );
    // Nothing above was written.
    assert_eq!(
        ok(&berth(store, &["--json", "models", "list"])).trim(),
        "[]"
    );
    fails(
        &berth("postgres://nobody@127.0.0.1:1/none", &["models", "list"]),
        1,
        "Connection refused",
    );
    fails(
        &berth("mysql://x", &["models", "list"]),
        2,
        "expected a folder, sqlite://FILE or postgres://",
    );
}

#[test]
fn artifacts_can_live_on_s3() {
    let Ok(bucket) = std::env::var("BERTH_TEST_S3_BUCKET") else {
        assert!(
            !std::env::var("BERTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1"),
            "the S3 emulator is required (BERTH_REQUIRE_SERVICES=1); run scripts/test.sh"
        );
        eprintln!("skipped: no S3 emulator (BERTH_TEST_S3_BUCKET unset)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("data");
    let artifacts = format!("s3://{bucket}/cli-{}", std::process::id());
    let model = fixture("lgbm_regressor.txt");
    let v = json(&berth(
        path(&store),
        &[
            "--artifacts",
            &artifacts,
            "--json",
            "models",
            "register",
            "ltv",
            path(&model),
        ],
    ));
    assert!(
        v["artifact_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{artifacts}/sha256/"))),
        "{v}"
    );
    assert!(
        !store.join("artifacts").exists(),
        "nothing went to the local folder"
    );
}
