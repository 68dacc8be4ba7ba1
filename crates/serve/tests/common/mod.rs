//! The admin router over a fresh registry (a new SQLite file, or a new schema in the PostgreSQL
//! on 127.0.0.1:5432, database `test`), and a way to call it without a network. PostgreSQL
//! tests skip with a message when the server is not there, unless `BERTH_REQUIRE_SERVICES=1`
//! (as in CI), where they fail.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use berth_registry::{Clock, Registry};
use berth_store::{ArtifactLocation, ArtifactStore, MetadataStore};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tower::ServiceExt;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A clock the test moves by hand, to place changes at known times.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock") = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

/// The admin router over a registry of its own.
pub struct Api {
    pub router: Router,
    pub registry: Registry,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn services_required() -> bool {
    std::env::var("BERTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

async fn fresh_url(backend: Backend, dir: &Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!(
            "sqlite://{}?mode=rwc",
            dir.join("berth.db").display()
        )),
        Backend::Postgres => {
            use sqlx::{Connection, Executor};
            let schema = format!(
                "berth_serve_test_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                Utc::now().timestamp_micros()
            );
            let mut admin = match sqlx::PgConnection::connect(PG_URL).await {
                Ok(c) => c,
                Err(e) if services_required() => {
                    panic!("PostgreSQL at {PG_URL} is required (BERTH_REQUIRE_SERVICES=1): {e}")
                }
                Err(e) => {
                    eprintln!("skipped: PostgreSQL at {PG_URL} is not reachable ({e})");
                    return None;
                }
            };
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .await
                .expect("create schema");
            Some(format!("{PG_URL}?options%5Bsearch_path%5D={schema}"))
        }
    }
}

/// The router on a fresh store; `None` when the backend is unavailable and not required.
pub async fn api(backend: Backend) -> Option<Api> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_url(backend, dir.path()).await?;
    let meta = MetadataStore::connect(&url).await.expect("store opens");
    let artifacts = ArtifactStore::open(ArtifactLocation::Folder(dir.path().join("artifacts")))
        .expect("artifacts");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    let registry = Registry::new(meta, artifacts, clock.clone());
    Some(Api {
        router: berth_serve::admin_router(registry.clone()),
        registry,
        clock,
        _dir: dir,
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
