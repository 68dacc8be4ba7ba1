//! Scheduled scoring jobs end to end, on SQLite and on PostgreSQL: a job added with `berth jobs
//! add` is run by the servers sharing the store, each tick exactly once even with two servers;
//! every run's status, summary and log are stored and shown by `berth jobs show` and the API;
//! a failing run is recorded with its error; a paused job does not run; bad jobs are refused
//! naming each problem.

mod common;

use std::time::{Duration, Instant};

use common::{TestStore, fixtures, path, read_csv};
use serde_json::Value;

/// `berth jobs show NAME --json` once `done(job)` holds, within 20 s.
fn wait_for(store: &TestStore, name: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let text = store.ok(&["--json", "jobs", "show", name]);
        let job: Value = serde_json::from_str(&text).expect("JSON");
        if done(&job) {
            return job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name}: {what} not within 20 s: {job}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn runs(job: &Value) -> &Vec<Value> {
    job["runs"].as_array().expect("runs")
}

#[test]
fn jobs_on_sqlite() {
    scheduled_jobs(TestStore::new());
}

#[test]
fn jobs_on_postgres() {
    if let Some(store) = TestStore::postgres("cli_jobs") {
        scheduled_jobs(store);
    }
}

/// Jobs run on their schedule, once per tick across two servers, and keep their history.
fn scheduled_jobs(test_store: TestStore) {
    let test_store = test_store.with_churn();
    let (dir, store) = (&test_store.dir, &test_store);
    let (cli, cli_ok) = (
        |a: &[&str]| test_store.run(a),
        |a: &[&str]| test_store.ok(a),
    );
    cli_ok(&["endpoints", "set", "churn-api", "churn/1"]);
    let eval = fixtures().join("data/eval_features.csv");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("dir");
    let output = format!("{}/scored-{{run}}.csv", path(&out));

    // Refused, naming every problem; nothing is added.
    for (name, says) in [
        ("bad job", &["name: expected"][..]),
        ("bad", &["cron: ", "61 * * * *", "output: expected"]),
    ] {
        let refused = cli(&[
            "jobs",
            "add",
            name,
            "--cron",
            "61 * * * *",
            "--score",
            "churn-api",
            "--input",
            path(&eval),
        ]);
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{err}");
        for s in says {
            assert!(err.contains(s), "{name}: should say {s:?}: {err}");
        }
    }
    assert!(cli_ok(&["jobs", "list"]).contains("no jobs yet"));

    // Every second, on two servers sharing the store.
    let nightly = [
        "jobs",
        "add",
        "nightly",
        "--cron",
        "* * * * * *",
        "--score",
        "churn-api",
        "--input",
        path(&eval),
        "--output",
        &output,
    ];
    let added = cli_ok(&nightly);
    assert!(added.contains("job nightly added"), "{added}");
    let again = cli(&nightly);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a second job of the same name"
    );
    let servers = [
        store.server(&["up", "--no-example", "--no-records"]),
        store.server(&["up", "--no-example", "--no-records"]),
    ];
    let job = wait_for(store, "nightly", "three succeeded runs", |job| {
        runs(job)
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .count()
            >= 3
    });
    cli_ok(&["jobs", "pause", "nightly"]);
    // Runs already claimed finish; then nothing new.
    let settled = wait_for(store, "nightly", "no run in progress", |job| {
        runs(job).iter().all(|r| r["status"] != "running")
    });
    std::thread::sleep(Duration::from_millis(2500));
    let paused = wait_for(store, "nightly", "the history", |_| true);
    assert_eq!(
        runs(&paused).len(),
        runs(&settled).len(),
        "a paused job does not run: {paused}"
    );
    assert!(cli_ok(&["jobs", "list"]).contains("paused"));

    // Each tick once, though two servers looked at it; each run wrote its own file.
    let history = runs(&paused);
    let mut ticks: Vec<&str> = history
        .iter()
        .map(|r| r["scheduled_for"].as_str().expect("tick"))
        .collect();
    ticks.sort_unstable();
    ticks.dedup();
    assert_eq!(ticks.len(), history.len(), "one run per tick: {paused}");
    let runners: std::collections::HashSet<&str> = history
        .iter()
        .map(|r| r["runner"].as_str().expect("runner"))
        .collect();
    assert!(!runners.is_empty());
    let files = std::fs::read_dir(&out).expect("out").count();
    assert_eq!(files, history.len(), "one output per run");
    let (_, expected) = read_csv(&fixtures().join("models/xgb_classifier.json.expected.csv"));
    let first = &job["runs"][0];
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["summary"]["rows"], 1000, "{first}");
    assert_eq!(first["summary"]["version"], "churn/1", "{first}");
    let log = first["log"].as_str().expect("log");
    assert!(log.contains("scored 1000 rows"), "{log}");
    let id = first["id"].as_str().expect("id");
    let (header, rows) = read_csv(&out.join(format!("scored-{id}.csv")));
    let p1 = header.iter().position(|h| h == "p_1").expect("p_1");
    assert_eq!(rows.len(), expected.len());
    for (r, (row, want)) in rows.iter().zip(&expected).enumerate() {
        let (got, want): (f64, f64) = (row[p1].parse().expect("p1"), want[2].parse().expect("p1"));
        assert!((got - want).abs() < 1e-6, "row {r}: {got} vs {want}");
    }

    // A run that fails is recorded as failed, with why.
    cli_ok(&[
        "jobs",
        "add",
        "broken",
        "--cron",
        "* * * * * *",
        "--score",
        "churn-api",
        "--input",
        "no/such/file.csv",
        "--output",
        &output,
    ]);
    let broken = wait_for(store, "broken", "a failed run", |job| {
        runs(job).iter().any(|r| r["status"] == "failed")
    });
    let failed = runs(&broken)
        .iter()
        .find(|r| r["status"] == "failed")
        .expect("failed run");
    let log = failed["log"].as_str().expect("log");
    assert!(
        log.contains("failed: ") && log.contains("no/such/file.csv"),
        "{log}"
    );
    cli_ok(&["jobs", "remove", "broken"]);

    // The API: list, show, refuse, add, remove.
    let server = &servers[0];
    let (status, _, text) = server.request("GET", "/api/v1/jobs", None);
    assert_eq!(status, 200, "{text}");
    let listed: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["jobs"][0]["enabled"], false);
    let (status, _, text) = server.request(
        "POST",
        "/api/v1/jobs",
        Some(r#"{"name": "api-job", "schedule": "0 2 * * *", "spec": {"target": "churn-api", "input": "x.csv"}}"#),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("output: expected"), "{text}");
    let (status, _, text) = server.request(
        "POST",
        "/api/v1/jobs",
        Some(r#"{"name": "api-job", "schedule": "0 2 * * *", "spec": {"target": "churn-api", "input": "x.csv", "output": "y.csv"}}"#),
    );
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        created["next_tick"]
            .as_str()
            .is_some_and(|t| t.contains("T02:00:00")),
        "{created}"
    );
    let (status, _, _) = common::http(
        &server.address,
        "DELETE",
        "/api/v1/jobs/api-job",
        &[("x-berth-actor", "ops-bot")],
        None,
    )
    .expect("request");
    assert_eq!(status, 204);
    let (status, _, text) = server.request("GET", "/api/v1/jobs/api-job", None);
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no job named 'api-job'"), "{text}");
    for server in servers {
        let (status, _) = server.stop();
        assert!(status.success());
    }

    // Run now, by hand, in this process: recorded like the others.
    let now = cli_ok(&["jobs", "run", "nightly"]);
    assert!(now.contains("scored 1000 rows"), "{now}");
    let shown = cli_ok(&["jobs", "show", "nightly"]);
    assert!(
        shown.contains("succeeded") && shown.contains("cli-"),
        "{shown}"
    );
    let audit = cli_ok(&["audit"]);
    assert!(
        audit.contains("job.add") && audit.contains("job.remove"),
        "{audit}"
    );
    let audit: Value = serde_json::from_str(&cli_ok(&["--json", "audit"])).expect("JSON");
    assert!(
        audit
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["action"] == "job.remove"
                && e["subject"] == "api-job"
                && e["actor"] == "ops-bot"),
        "the API's x-berth-actor is who removed it: {audit}"
    );
}
