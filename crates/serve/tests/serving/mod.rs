//! Serving one fixture model for protocol tests, calling a router without a network, and
//! the fixtures' evaluation rows and reference outputs.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

/// The routes of one fixture model served as `name` (and `name/1`).
pub fn deployed(file: &str, name: &str) -> std::sync::Arc<berth_serve::deployment::Router> {
    deployed_with(
        file,
        name,
        berth_serve::deployment::Watchers::default(),
        |_| {},
    )
}

/// Like [`deployed`], watched by `watchers`, with the inferred signature edited by `edit`.
pub fn deployed_with(
    file: &str,
    name: &str,
    watchers: berth_serve::deployment::Watchers,
    edit: impl FnOnce(&mut berth_core::Signature),
) -> std::sync::Arc<berth_serve::deployment::Router> {
    let routes = Arc::new(berth_serve::deployment::Router::new(watchers));
    let d = Arc::new(berth_serve::route::Route::single(deployment(
        &routes, file, name, 1, edit,
    )));
    routes.replace(std::collections::HashMap::from([
        (name.to_string(), d.clone()),
        (format!("{name}/1"), d),
    ]));
    routes
}

/// A fixture model loaded as `name`/`version`, watched by `router`'s watchers, with the
/// inferred signature edited by `edit`.
pub fn deployment(
    router: &berth_serve::deployment::Router,
    file: &str,
    name: &str,
    version: i64,
    edit: impl FnOnce(&mut berth_core::Signature),
) -> Arc<berth_serve::deployment::Deployment> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(file);
    let model: Arc<dyn berth_runtime::Model> =
        berth_runtime::load(&path, &berth_runtime::LoadOptions::default())
            .expect("fixture")
            .into();
    let mut signature = berth_core::Signature::infer(model.info());
    edit(&mut signature);
    Arc::new(berth_serve::deployment::Deployment::start(
        name,
        version,
        model,
        signature,
        berth_serve::batcher::BatchConfig::default(),
        router.watchers(),
        None,
    ))
}

/// Sends `body` (with `content_type`) to `router` and returns the status, headers and body text.
pub async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Body::from(body.into()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The evaluation rows' feature names and the first `n` rows as JSON numbers (null = missing).
pub fn eval_rows(n: usize) -> (Vec<String>, Vec<Vec<Value>>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data/eval_features.csv"),
    )
    .expect("rows");
    let mut lines = text.lines();
    let names = lines
        .next()
        .expect("header")
        .split(',')
        .skip(1)
        .map(str::to_owned)
        .collect();
    let rows = lines
        .take(n)
        .map(|l| {
            l.split(',')
                .skip(1)
                .map(|v| {
                    v.parse::<f64>()
                        .map_or(Value::Null, |x| serde_json::json!(x))
                })
                .collect()
        })
        .collect();
    (names, rows)
}

/// Column `column` of the first `n` rows of a fixture's reference outputs.
pub fn expected(file: &str, column: usize, n: usize) -> Vec<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(format!("{file}.expected.csv"));
    let text = std::fs::read_to_string(path).expect("expected outputs");
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| {
            l.split(',')
                .nth(column)
                .and_then(|v| v.parse().ok())
                .expect("number")
        })
        .collect()
}
