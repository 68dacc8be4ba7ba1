//! Rollouts end to end against the real binary: `berth up` drives a rollout started by
//! `berth rollout start` while clients keep calling the endpoint. A good challenger ends
//! promoted (the `champion` alias moves); a challenger whose outputs are wrong is rolled back
//! by its shadow agreement, a slow one by its p99 latency, each with the reason in the audit
//! log; forced promotions and rollbacks under traffic fail no request; a restart in the middle
//! of a canary step resumes the same rollout at the same step; bad requests are refused with
//! the field named.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Server, berth, fixtures, path};
use serde_json::Value;

/// A data folder with `berth up` serving the example (churn/1 = the XGBoost fixture, endpoint
/// `churn` following `churn@champion`) and `challenger` registered as churn/2.
struct Setup {
    _dir: tempfile::TempDir,
    store: String,
    server: Option<Server>,
}

impl Setup {
    fn new(challenger: &str) -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("data").to_str().expect("utf-8").to_string();
        let server = Server::start(&["--store", &store, "up", "--poll-ms", "100", "--no-profiles"]);
        let setup = Setup {
            _dir: dir,
            store,
            server: Some(server),
        };
        let model = fixtures().join("models").join(challenger);
        setup.cli(&["models", "register", "churn", path(&model)]);
        setup
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            let (status, _) = server.stop();
            assert!(status.success());
        }
        self.server = Some(Server::start(&[
            "--store",
            &self.store,
            "up",
            "--poll-ms",
            "100",
            "--no-profiles",
        ]));
    }

    /// `berth --store S ARGS`, which must succeed; its stdout.
    fn cli(&self, args: &[&str]) -> String {
        common::berth_ok(&[&["--store", self.store.as_str()], args].concat())
    }

    /// `berth rollout start churn --to 2 FLAGS` (space-separated), which must succeed.
    fn start_rollout(&self, flags: &str) {
        let flags: Vec<&str> = flags.split_whitespace().collect();
        self.cli(
            &[
                &["rollout", "start", "churn", "--to", "2"],
                flags.as_slice(),
            ]
            .concat(),
        );
    }

    fn json(&self, args: &[&str]) -> Value {
        let text = self.cli(&[&["--json"], args].concat());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    /// The endpoint's newest rollout, once `done(rollout)` holds (within `limit`).
    fn wait_for(&self, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let status = self.json(&["rollout", "status", "churn"]);
            if done(&status) {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "rollout did not get there within {limit:?}: {status:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn audit(&self) -> Vec<Value> {
        self.json(&["audit", "--limit", "200"])
            .as_array()
            .cloned()
            .expect("events")
    }
}

/// Clients calling the endpoint until stopped: every answer's status and version.
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<(u16, String)>>>,
}

/// The first `n` evaluation rows as single-row V2 bodies.
fn bodies(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("data/eval_features.csv")).expect("rows");
    text.lines()
        .skip(1)
        .take(n)
        .map(|line| {
            let data: Vec<String> = line
                .split(',')
                .skip(1)
                .map(|v| v.parse::<f64>().map_or("null".into(), |x| x.to_string()))
                .collect();
            format!(
                r#"{{"inputs":[{{"name":"input","shape":[1,23],"datatype":"FP32","data":[{}]}}]}}"#,
                data.join(",")
            )
        })
        .collect()
}

impl Traffic {
    fn start(address: &str, clients: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let bodies = Arc::new(bodies(200));
        let threads = (0..clients)
            .map(|c| {
                let (stop, bodies, address) = (stop.clone(), bodies.clone(), address.to_string());
                std::thread::spawn(move || {
                    let mut answers = Vec::new();
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        let body = &bodies[i % bodies.len()];
                        i += clients;
                        let answer = common::http(
                            &address,
                            "POST",
                            "/v2/models/churn/infer",
                            &[],
                            Some(body),
                        );
                        answers.push(match answer {
                            Ok((status, head, _)) => {
                                let version = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("x-berth-version: "))
                                    .unwrap_or("-")
                                    .trim()
                                    .to_string();
                                (status, version)
                            }
                            Err(e) => (0, e.to_string()),
                        });
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    answers
                })
            })
            .collect();
        Traffic { stop, threads }
    }

    fn finish(self) -> Vec<(u16, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().expect("client"))
            .collect()
    }
}

/// Rolls `challenger` out under traffic with `flags` until the rollout's state is `until`;
/// every request meanwhile must be answered. Returns the setup, the final rollout and the
/// answers.
fn roll_out(challenger: &str, flags: &str, until: &str) -> (Setup, Value, Vec<(u16, String)>) {
    let setup = Setup::new(challenger);
    let traffic = Traffic::start(&setup.server().address, 2);
    setup.start_rollout(flags);
    let done = setup.wait_for(Duration::from_secs(60), |r| r["state"]["state"] == until);
    let answers = traffic.finish();
    assert_all_answered(&answers);
    (setup, done, answers)
}

fn assert_all_answered(answers: &[(u16, String)]) {
    let failed = failed(answers);
    assert!(failed.is_empty(), "failed requests: {failed:?}");
}

fn failed(answers: &[(u16, String)]) -> Vec<&(u16, String)> {
    answers
        .iter()
        .filter(|(s, _)| !(200..300).contains(s))
        .collect()
}

fn answered_by(answers: &[(u16, String)], version: &str) -> usize {
    answers.iter().filter(|(_, v)| v == version).count()
}

fn champion(setup: &Setup) -> i64 {
    let model = setup.json(&["models", "show", "churn"]);
    model["aliases"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alias"] == "champion"))
        .and_then(|a| a["version"].as_i64())
        .expect("champion alias")
}

#[test]
fn a_good_challenger_is_shadowed_then_canaried_then_promoted() {
    let (setup, done, answers) = roll_out(
        "lgbm_classifier.txt",
        "--shadow 2s --steps 50,100 --bake 2s --min-requests 20 --check error_rate:max_increase=0.01 --check shadow_agreement:min=0.7 --check prediction_drift:max=1",
        "promoted",
    );
    assert!(
        answered_by(&answers, "churn/2") > 0,
        "the canary answered some requests"
    );
    assert_eq!(champion(&setup), 2);
    // shadowing -> canary 50 % -> canary 100 % -> promoted, each decided by an analysis.
    let history = done["history"].as_array().expect("history");
    let states: Vec<&str> = history
        .iter()
        .map(|t| t["to"]["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(states, ["shadowing", "canary", "canary", "promoted"]);
    let shadow = &history[1]["analysis"];
    assert_eq!(shadow["phase"], "shadow");
    let agreement = shadow["checks"][1]["observed"]
        .as_f64()
        .expect("agreement measured");
    assert!(agreement >= 0.7, "{shadow}");
    assert!(shadow["candidate"]["requests"].as_u64().expect("requests") >= 20);
    // Two models trained on the same data: their scores are close, not equal.
    let drift = shadow["checks"][2]["observed"]
        .as_f64()
        .expect("prediction drift measured");
    assert!(drift > 0.0 && drift < 0.5, "{shadow}");
    // Every transition is in the audit log, with the alias move of the promotion.
    let audit = setup.audit();
    let actions: Vec<&str> = audit.iter().filter_map(|e| e["action"].as_str()).collect();
    for action in [
        "rollout.shadowing",
        "rollout.canary",
        "rollout.promoted",
        "alias.set",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    // After the promotion the endpoint serves churn/2 only.
    let (status, head, _) =
        setup
            .server()
            .request("POST", "/v2/models/churn/infer", Some(&bodies(1)[0]));
    assert_eq!(status, 200);
    assert!(head.contains("x-berth-version: churn/2"), "{head}");
}

#[test]
fn a_challenger_with_wrong_outputs_is_rolled_back_by_shadow_agreement() {
    let (setup, done, answers) = roll_out(
        "xgb_classifier_wrong.onnx",
        "--shadow 2s --steps 50,100 --bake 2s --min-requests 20 --check shadow_agreement:min=0.9 --check prediction_drift:max=0.5",
        "rolled_back",
    );
    // A shadow never answers: no client saw the wrong model.
    assert_eq!(answered_by(&answers, "churn/2"), 0);
    assert_eq!(champion(&setup), 1);
    let reason = done["state"]["reason"].as_str().expect("reason");
    assert!(reason.contains("shadow_agreement"), "{reason}");
    let event = setup
        .audit()
        .into_iter()
        .find(|e| e["action"] == "rollout.rolled_back")
        .expect("rollback audited");
    let check = &event["after"]["transition"]["analysis"]["checks"][0];
    assert_eq!(check["metric"], "shadow_agreement");
    assert!(
        check["observed"].as_f64().expect("observed") < 0.9,
        "{event}"
    );
    // Its scores are far from the primary's too.
    let drift = &event["after"]["transition"]["analysis"]["checks"][1];
    assert_eq!(drift["metric"], "prediction_drift");
    assert!(
        drift["observed"].as_f64().expect("observed") > 0.5,
        "{event}"
    );
    // The shadow comparison is kept with the event, worst rows first.
    let shadow = &event["after"]["shadow"];
    assert!(
        shadow["agreement"].as_f64().expect("agreement") < 0.9,
        "{event}"
    );
    let worst = shadow["worst"].as_array().expect("worst examples");
    assert!(!worst.is_empty());
    assert!(worst[0]["abs_delta"].as_f64() >= worst[worst.len() - 1]["abs_delta"].as_f64());
    assert!(
        worst[0]["classes"][0] != worst[0]["classes"][1],
        "{}",
        worst[0]
    );
    // The endpoint is back to its primary alone.
    let endpoints = setup.json(&["endpoints", "list"]);
    assert_eq!(
        endpoints[0]["policy"],
        serde_json::json!({"primary": {"model": "churn", "alias": "champion"}})
    );
}

#[test]
fn a_slow_challenger_is_rolled_back_by_its_p99_latency() {
    let (setup, done, _) = roll_out(
        "xgb_classifier_slow.onnx",
        // Each of its answers takes hundreds of milliseconds (more while other tests load the
        // machine), so the bake is long enough for 10 of them even then.
        "--shadow 0 --steps 50,100 --bake 6s --min-requests 10 --check p99_latency_ms:max_ratio=3",
        "rolled_back",
    );
    assert_eq!(champion(&setup), 1);
    let analysis = done["history"]
        .as_array()
        .and_then(|h| h.last())
        .map(|t| t["analysis"].clone())
        .expect("analysis");
    let check = &analysis["checks"][0];
    assert_eq!(check["metric"], "p99_latency_ms");
    let (slow, fast) = (
        check["observed"].as_f64().expect("candidate p99"),
        check["primary"].as_f64().expect("primary p99"),
    );
    assert!(
        slow > 3.0 * fast,
        "candidate p99 {slow} ms vs primary {fast} ms"
    );
}

#[test]
fn forced_promotions_and_rollbacks_under_traffic_fail_no_request() {
    let setup = Setup::new("lgbm_classifier.txt");
    let traffic = Traffic::start(&setup.server().address, 3);
    for round in 0..5 {
        // No rollback window: every round goes through the canary, then is forced.
        setup.start_rollout("--steps 50,100 --bake 1h --rollback-window 0");
        std::thread::sleep(Duration::from_millis(300));
        let state = setup.json(&["rollout", "status", "churn"])["state"]["state"].clone();
        assert_eq!(state, "canary");
        setup.cli(&[
            "rollout",
            "promote",
            "churn",
            "--reason",
            &format!("round {round}"),
        ]);
        assert_eq!(champion(&setup), 2);
        std::thread::sleep(Duration::from_millis(300));
        setup.cli(&["rollback", "churn"]);
        assert_eq!(champion(&setup), 1);
        std::thread::sleep(Duration::from_millis(300));
    }
    let answers = traffic.finish();
    assert!(answers.len() > 100, "{} answers", answers.len());
    assert_all_answered(&answers);
    assert!(answered_by(&answers, "churn/2") > 0);
    assert!(answered_by(&answers, "churn/1") > 0);
}

#[test]
fn a_restart_mid_canary_resumes_the_same_rollout_at_the_same_step() {
    let mut setup = Setup::new("lgbm_classifier.txt");
    // Only the error rate is checked: latency on a loaded test machine is not what this is about.
    setup.start_rollout(
        "--shadow 0 --steps 25,50,100 --bake 3s --min-requests 10 --check error_rate:max_increase=0.05",
    );
    // Let it reach the second step, then restart.
    let traffic = Traffic::start(&setup.server().address, 2);
    let before = setup.wait_for(Duration::from_secs(30), |r| r["state"]["step"] == 1);
    traffic.finish();
    setup.restart();
    let after = setup.json(&["rollout", "status", "churn"]);
    assert_eq!(after["id"], before["id"]);
    assert_eq!(
        after["state"], before["state"],
        "same step, same window start"
    );
    // The restarted server serves the step's split and carries the rollout on to the end.
    let traffic = Traffic::start(&setup.server().address, 2);
    let done = setup.wait_for(Duration::from_secs(60), |r| {
        r["state"]["state"] == "promoted"
    });
    let answers = traffic.finish();
    assert_all_answered(&answers);
    let steps: Vec<Value> = done["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|t| t["to"]["step"].clone())
        .collect();
    // started at step 0, then step 1 (before the restart), step 2, promoted: nothing repeated.
    assert_eq!(
        steps,
        [Value::from(0), Value::from(1), Value::from(2), Value::Null]
    );
}

#[test]
fn bad_rollout_requests_are_refused_naming_what_is_wrong() {
    let setup = Setup::new("lgbm_classifier.txt");
    let store = setup.store.as_str();
    let refused = |args: &[&str], says: &str| {
        let out = berth(&[&["--store", store], args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "berth {args:?}: {err}");
        assert!(
            err.contains(says),
            "berth {args:?} should say {says:?}: {err}"
        );
    };
    refused(
        &["rollout", "start", "churn", "--to", "2", "--steps", "50,20"],
        "steps",
    );
    refused(&["rollout", "start", "churn", "--to", "9"], "churn/9");
    refused(
        &["rollout", "start", "churn", "--to", "1"],
        "already serves",
    );
    refused(&["rollout", "start", "nope", "--to", "2"], "nope");
    refused(
        &[
            "rollout",
            "start",
            "churn",
            "--to",
            "2",
            "--check",
            "error_rate",
        ],
        "METRIC:BOUND=VALUE",
    );
    refused(&["rollout", "pause", "churn"], "no unfinished rollout");
    refused(&["rollback", "churn"], "nothing to roll back to");
    // Over the API: an unknown command is a 400, an operation the state does not allow a 409.
    setup.cli(&["rollout", "start", "churn", "--to", "2", "--bake", "1h"]);
    refused(
        &["rollout", "start", "churn", "--to", "2"],
        "already has an unfinished rollout",
    );
    let server = setup.server();
    let (status, _, text) = server.request(
        "POST",
        "/api/v1/endpoints/churn/rollouts/current/jump",
        None,
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("pause, resume, abort or force-promote"),
        "{text}"
    );
    let (status, _, text) = server.request(
        "POST",
        "/api/v1/endpoints/churn/rollouts/current/resume",
        None,
    );
    assert_eq!(status, 409, "{text}");
    let (status, _, text) = server.request(
        "POST",
        "/api/v1/endpoints/churn/rollouts",
        Some(r#"{"to_version": 2, "spec": {"steps": [0]}}"#),
    );
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = server.request("GET", "/api/v1/endpoints/churn/rollouts", None);
    assert_eq!(status, 200, "{text}");
    let list: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(list[0]["state"]["state"], "canary");
    assert!(list[0]["live"]["candidate"].is_object(), "{list}");
}

#[test]
fn too_little_traffic_pauses_the_step_until_resumed() {
    let setup = Setup::new("lgbm_classifier.txt");
    // No traffic at all: the first analysis cannot judge the step.
    setup.start_rollout(
        "--shadow 0 --steps 50,100 --bake 1s --min-requests 50 --check error_rate:max_increase=0.05",
    );
    let paused = setup.wait_for(Duration::from_secs(30), |r| r["state"]["state"] == "paused");
    assert_eq!(
        paused["state"]["resume_to"],
        serde_json::json!({"canary": {"step": 0}})
    );
    assert_eq!(
        paused["canary_percent"], 50.0,
        "a paused step holds its traffic"
    );
    let reason = paused["history"][1]["reason"].as_str().expect("reason");
    assert!(reason.contains("inconclusive"), "{reason}");
    // The canary still answers its share while paused.
    let traffic = Traffic::start(&setup.server().address, 2);
    std::thread::sleep(Duration::from_millis(1500));
    setup.cli(&["rollout", "resume", "churn", "--reason", "traffic is back"]);
    let done = setup.wait_for(Duration::from_secs(60), |r| {
        r["state"]["state"] == "promoted"
    });
    let answers = traffic.finish();
    assert_all_answered(&answers);
    assert!(answered_by(&answers, "churn/2") > 0);
    let by: Vec<String> = done["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|t| t["by"].to_string())
        .collect();
    assert!(by.iter().any(|b| b.contains("operator")), "{by:?}");
}
