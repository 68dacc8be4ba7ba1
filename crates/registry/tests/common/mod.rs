//! Test stores on both backends: a fresh SQLite file, or a fresh schema in the PostgreSQL on
//! 127.0.0.1:5432 (database `test`). PostgreSQL tests skip with a message when the server is
//! not there, unless `BERTH_REQUIRE_SERVICES=1` (as in CI), where they fail.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use berth_registry::{Clock, Registry};
use berth_store::{ArtifactLocation, ArtifactStore, MetadataStore};
use chrono::{DateTime, Utc};

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(at)))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock") = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

/// A registry on a fresh store; `None` when the backend is unavailable and not required.
pub struct TestRegistry {
    pub registry: Registry,
    _dir: tempfile::TempDir,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn services_required() -> bool {
    std::env::var("BERTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A metadata store URL of its own: a new SQLite file, or a new PostgreSQL schema.
pub async fn fresh_url(backend: Backend, dir: &Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!(
            "sqlite://{}?mode=rwc",
            dir.join("berth.db").display()
        )),
        Backend::Postgres => {
            let schema = format!(
                "berth_test_{}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed),
                Utc::now().timestamp_micros()
            );
            let admin = match MetadataStoreAdmin::connect().await {
                Ok(a) => a,
                Err(e) if services_required() => {
                    panic!("PostgreSQL at {PG_URL} is required (BERTH_REQUIRE_SERVICES=1): {e}")
                }
                Err(e) => {
                    eprintln!("skipped: PostgreSQL at {PG_URL} is not reachable ({e})");
                    return None;
                }
            };
            admin.create_schema(&schema).await;
            Some(format!("{PG_URL}?options%5Bsearch_path%5D={schema}"))
        }
    }
}

/// Just enough of a raw connection to create schemas.
struct MetadataStoreAdmin(sqlx::PgConnection);

impl MetadataStoreAdmin {
    async fn connect() -> Result<Self, sqlx::Error> {
        use sqlx::Connection;
        Ok(Self(sqlx::PgConnection::connect(PG_URL).await?))
    }

    async fn create_schema(mut self, schema: &str) {
        use sqlx::Executor;
        self.0
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await
            .expect("create schema");
    }
}

pub async fn registry(backend: Backend, clock: Arc<dyn Clock>) -> Option<TestRegistry> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_url(backend, dir.path()).await?;
    let meta = MetadataStore::connect(&url).await.expect("store opens");
    let artifacts = ArtifactStore::open(ArtifactLocation::Folder(dir.path().join("artifacts")))
        .expect("artifacts");
    Some(TestRegistry {
        registry: Registry::new(meta, artifacts, clock),
        _dir: dir,
    })
}

pub fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(file)
}

pub fn fixture_bytes(file: &str) -> bytes::Bytes {
    std::fs::read(fixture(file)).expect("fixture").into()
}

/// Runs each test body on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident($reg:ident, $clock:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $clock = common::ManualClock::new(chrono::Utc::now());
                    let Some(test) = common::registry(common::Backend::Sqlite, $clock.clone()).await else { return };
                    let $reg = &test.registry;
                    $body
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $clock = common::ManualClock::new(chrono::Utc::now());
                    let Some(test) = common::registry(common::Backend::Postgres, $clock.clone()).await else { return };
                    let $reg = &test.registry;
                    $body
                }
            )*
        }
    };
}
