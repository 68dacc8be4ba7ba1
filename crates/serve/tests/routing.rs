//! An endpoint's traffic policy on the serving path, over every protocol: a canary takes its
//! weight of requests within ±2 percentage points over 10k requests, a sticky key (header or
//! input field) keeps an entity on one version, the answering version is in every response,
//! shadows get a copy of each answered request and are compared row by row, and a shadow that
//! cannot keep up sheds copies without touching the primary's answers.

mod serving;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::Method;
use berth_registry::StickyKey;
use berth_rollout::Weight;
use berth_serve::deployment::{Router, Watchers};
use berth_serve::route::{Route, RoutePlan};
use serde_json::json;
use serving::{eval_rows, send};

const PRIMARY: &str = "xgb_classifier.json";
const CANDIDATE: &str = "lgbm_classifier.txt";

/// The endpoint `churn-api` with churn/1 as primary and churn/2 as canary at `weight`
/// percent and/or as a shadow.
fn endpoint(
    weight: Option<f64>,
    shadow: bool,
    sticky: Option<StickyKey>,
) -> (Arc<Router>, axum::Router) {
    endpoint_watched(CANDIDATE, weight, shadow, sticky, Watchers::default())
}

/// [`endpoint`] with `candidate` (a fixture file) as churn/2, watched by `watchers`.
fn endpoint_watched(
    candidate: &str,
    weight: Option<f64>,
    shadow: bool,
    sticky: Option<StickyKey>,
    watchers: Watchers,
) -> (Arc<Router>, axum::Router) {
    let router = Arc::new(Router::new(watchers));
    let primary = serving::deployment(&router, PRIMARY, "churn", 1, |_| {});
    let candidate = serving::deployment(&router, candidate, "churn", 2, |_| {});
    let plan = RoutePlan {
        primary,
        canary: weight.map(|w| {
            (
                candidate.clone(),
                Weight::from_percent(w).expect("weight"),
                "rollout-1".to_string(),
            )
        }),
        shadows: if shadow { vec![candidate] } else { Vec::new() },
        sticky,
    };
    let route = Route::endpoint("churn-api", plan, &router.windows(), &router.metrics());
    router.replace(HashMap::from([("churn-api".to_string(), Arc::new(route))]));
    let app = berth_serve::inference_router(router.clone());
    (router, app)
}

fn v2_body(row: &[serde_json::Value]) -> String {
    json!({"inputs": [{"name": "input", "shape": [1, 23], "datatype": "FP32", "data": row}]})
        .to_string()
}

/// One V2 request for `row` to the endpoint; must be answered 200. Returns headers and body.
async fn infer(app: &axum::Router, row: &[serde_json::Value]) -> (axum::http::HeaderMap, String) {
    let (status, headers, text) = send(
        app,
        Method::POST,
        "/v2/models/churn-api/infer",
        "application/json",
        v2_body(row),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    (headers, text)
}

fn version_of(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-berth-version")
        .and_then(|v| v.to_str().ok())
        .expect("x-berth-version")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_takes_its_weight_within_two_points_over_10k_requests() {
    for weight in [5.0, 30.0] {
        let (router, app) = endpoint(Some(weight), false, None);
        let (_, rows) = eval_rows(50);
        let mut canary = 0;
        for i in 0..10_000 {
            let (headers, text) = infer(&app, &rows[i % rows.len()]).await;
            let version = version_of(&headers);
            let body: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            // The body names the version that answered too.
            assert_eq!(
                format!("churn/{}", body["model_version"].as_str().expect("version")),
                version
            );
            canary += usize::from(version == "churn/2");
        }
        let share = canary as f64 / 100.0;
        assert!(
            (share - weight).abs() <= 2.0,
            "canary at {weight}% answered {share}% of 10k requests"
        );
        // The windows a rollout analyses saw the same split.
        let windows = router.windows();
        let (p, c) = (
            windows.stats("churn-api", "churn", 1),
            windows.stats("churn-api", "churn", 2),
        );
        assert_eq!(
            (p.requests + c.requests, c.requests),
            (10_000, canary as u64)
        );
        assert!(c.p99_latency_ms.is_some_and(|ms| ms > 0.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_header_keeps_each_key_on_one_version() {
    let (_, app) = endpoint(
        Some(50.0),
        false,
        Some(StickyKey::Header("x-customer".into())),
    );
    let (_, rows) = eval_rows(1);
    let body = v2_body(&rows[0]);
    let mut seen: HashMap<String, String> = HashMap::new();
    for round in 0..4 {
        for key in 0..300 {
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/v2/models/churn-api/infer")
                .header("content-type", "application/json")
                .header("x-customer", format!("customer-{key}"))
                .body(axum::body::Body::from(body.clone()))
                .expect("request");
            let response = tower::ServiceExt::oneshot(app.clone(), request)
                .await
                .expect("infallible");
            assert_eq!(response.status(), 200);
            let version = version_of(response.headers());
            let first = seen
                .entry(format!("customer-{key}"))
                .or_insert(version.clone());
            assert_eq!(
                *first, version,
                "customer-{key} changed version in round {round}"
            );
        }
    }
    let canary = seen.values().filter(|v| *v == "churn/2").count();
    // 300 keys at 50 %: far from all on one side (binomial sd ≈ 8.7).
    assert!(
        (100..=200).contains(&canary),
        "{canary} of 300 keys on the canary"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_field_keeps_each_entity_on_one_version_over_every_protocol() {
    let (names, rows) = eval_rows(200);
    let field = names[0].clone(); // tenure_months
    let (_, app) = endpoint(Some(50.0), false, Some(StickyKey::Field(field.clone())));
    let mut by_value: HashMap<String, String> = HashMap::new();
    let mut versions = std::collections::HashSet::new();
    // A row without the field has no sticky key (it is split like unkeyed traffic).
    for row in rows.iter().filter(|r| !r[0].is_null()) {
        let record: serde_json::Map<String, serde_json::Value> =
            names.iter().cloned().zip(row.iter().cloned()).collect();
        let calls = [
            ("/v2/models/churn-api/infer", v2_body(row)),
            (
                "/v1/models/churn-api:predict",
                json!({"instances": [row]}).to_string(),
            ),
            (
                "/invocations",
                json!({"dataframe_records": [record]}).to_string(),
            ),
        ];
        for (uri, body) in calls {
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header("content-type", "application/json")
                .header("x-berth-model", "churn-api")
                .body(axum::body::Body::from(body))
                .expect("request");
            let response = tower::ServiceExt::oneshot(app.clone(), request)
                .await
                .expect("infallible");
            assert_eq!(response.status(), 200, "{uri}");
            let version = version_of(response.headers());
            versions.insert(version.clone());
            let key = row[0].to_string();
            let first = by_value.entry(key.clone()).or_insert(version.clone());
            assert_eq!(*first, version, "{field}={key} changed version on {uri}");
        }
    }
    assert_eq!(versions.len(), 2, "both versions answer some entities");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_get_every_answered_request_and_are_compared_row_by_row() {
    let (router, app) = endpoint(None, true, None);
    let (_, rows) = eval_rows(100);
    for row in &rows {
        let (headers, _) = infer(&app, row).await;
        // A shadow never answers.
        assert_eq!(version_of(&headers), "churn/1");
    }
    let windows = router.windows();
    let started = Instant::now();
    let comparison = loop {
        let c = windows.shadow_comparison("churn-api", "churn", 2);
        if c.as_ref().is_some_and(|c| c.requests() == 100) {
            break c.expect("comparison");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shadow copies not all compared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Both fixtures' reference outputs, compared the way the router compares them.
    let p = serving::expected(PRIMARY, 2, 100);
    let s = serving::expected(CANDIDATE, 2, 100);
    let agree = p
        .iter()
        .zip(&s)
        .filter(|(p, s)| (**p >= 0.5) == (**s >= 0.5))
        .count();
    let agreement = comparison.agreement_rate().expect("classes compared");
    assert!(
        (agreement - agree as f64 / 100.0).abs() < 1e-9,
        "agreement {agreement}, expected {agree}/100"
    );
    let mean: f64 = p.iter().zip(&s).map(|(p, s)| (p - s).abs()).sum::<f64>() / 100.0;
    let measured = comparison.mean_abs_delta().expect("deltas");
    assert!(
        (measured - mean).abs() < 1e-5,
        "mean |Δ| {measured}, expected {mean}"
    );
    assert!(!comparison.worst().is_empty());
    assert_eq!(windows.stats("churn-api", "churn", 2).requests, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_name_the_version_and_role_that_answered_and_the_shadows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("berth.db").display()
    );
    let store = berth_store::MetadataStore::connect(&url)
        .await
        .expect("store");
    let config = berth_records::RecorderConfig {
        spool_dir: dir.path().join("spool"),
        flush_interval_ms: 20,
        ..berth_records::RecorderConfig::default()
    };
    let recorder = berth_records::Recorder::open(config, store.clone())
        .await
        .expect("recorder");
    let watchers = Watchers {
        recorder: Some((recorder.clone(), berth_records::Durability::Group)),
        ..Watchers::default()
    };
    let (router, app) = endpoint_watched(CANDIDATE, Some(50.0), true, None, watchers);
    let (_, rows) = eval_rows(40);
    let mut answered = HashMap::new();
    for row in &rows {
        let (headers, _) = infer(&app, row).await;
        let id = headers
            .get("x-berth-prediction-id")
            .and_then(|v| v.to_str().ok())
            .expect("prediction id")
            .to_string();
        answered.insert(id, version_of(&headers));
    }
    // Every answered request also went to the shadow.
    let started = Instant::now();
    while router.windows().stats("churn-api", "churn", 2).requests
        < 40 + answered.values().filter(|v| *v == "churn/2").count() as u64
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "shadow copies not scored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(app);
    drop(router);
    recorder.shutdown().await.expect("shutdown");
    for (id, version) in &answered {
        let row = store
            .get_prediction(id)
            .await
            .expect("read")
            .expect("recorded");
        let role = if version == "churn/2" {
            "canary"
        } else {
            "primary"
        };
        assert_eq!(
            (format!("churn/{}", row.version), row.role.as_str()),
            (version.clone(), role)
        );
    }
    let shadows = store
        .list_predictions("churn-api", 0, i64::MAX, 1000)
        .await
        .expect("records")
        .into_iter()
        .filter(|r| r.role == "shadow")
        .collect::<Vec<_>>();
    assert_eq!(shadows.len(), 40, "one shadow record per answered request");
    assert!(shadows.iter().all(|r| r.version == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_shadow_sheds_copies_and_never_fails_the_primary() {
    // About 10 ms of extra work per row: the shadow keeps up with a few dozen rows a second.
    let (router, app) = endpoint_watched(
        "xgb_classifier_slow.onnx",
        None,
        true,
        None,
        Watchers::default(),
    );
    let (_, rows) = eval_rows(100);
    for wave in 0..25 {
        let answers = futures::future::join_all(
            (0..64).map(|i| infer(&app, &rows[(wave * 64 + i) % rows.len()])),
        )
        .await;
        for (headers, _) in answers {
            assert_eq!(version_of(&headers), "churn/1");
        }
    }
    let metrics = router.metrics().render();
    let shed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("berth_shadow_shed_total{") && l.contains("churn/2"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no shed counter in {metrics}"));
    // 1600 copies for a queue of 1024 and 32 in flight on a shadow this slow: some were shed.
    assert!(shed > 0.0, "nothing shed: {metrics}");
    let windows = router.windows();
    assert_eq!(windows.stats("churn-api", "churn", 1).errors, 0);
    assert_eq!(windows.stats("churn-api", "churn", 1).requests, 1600);
}
