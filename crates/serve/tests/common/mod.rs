//! The admin router over a fresh registry (a new SQLite file, or a new schema in the PostgreSQL
//! on 127.0.0.1:5432, database `test`), and a way to call it without a network. PostgreSQL
//! tests skip with a message when the server is not there, unless `BERTH_REQUIRE_SERVICES=1`
//! (as in CI), where they fail.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use berth_registry::Registry;
pub use berth_registry::testing::Backend;
use berth_registry::testing::{ManualClock, TestRegistry, test_registry};
use serde_json::Value;
use tower::ServiceExt;

/// The admin router over a registry of its own.
pub struct Api {
    pub router: Router,
    pub registry: Registry,
    pub clock: Arc<ManualClock>,
    _store: TestRegistry,
}

/// The router on a fresh store; `None` when the backend is unavailable and not required.
pub async fn api(backend: Backend) -> Option<Api> {
    let store = test_registry(backend).await?;
    Some(Api {
        router: berth_serve::admin_router(store.registry.clone()),
        registry: store.registry.clone(),
        clock: store.clock.clone(),
        _store: store,
    })
}

/// The fixture model file's bytes in base64.
pub fn fixture_base64(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(file);
    let bytes = std::fs::read(&path).expect("fixture");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Api {
    /// Sends a request with an optional JSON body and actor; returns the status and the JSON
    /// body (every response of the API is JSON).
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        actor: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(actor) = actor {
            request = request.header("x-berth-actor", actor);
        }
        let request = match body {
            Some(json) => request
                .header("content-type", "application/json")
                .body(Body::from(json.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.expect("request")).await
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.call(Method::GET, uri, None, None).await
    }

    /// Sends a request as built; returns the status and the JSON body.
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{status}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }

    /// Registers a fixture model file as the next version of `model`.
    pub async fn register(&self, model: &str, file: &str) -> (StatusCode, Value) {
        let body = serde_json::json!({"file_name": file, "artifact_base64": fixture_base64(file)});
        self.call(
            Method::POST,
            &format!("/api/v1/models/{model}/versions"),
            Some(&body),
            None,
        )
        .await
    }
}

/// The `error` message of an error body.
pub fn error(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}
