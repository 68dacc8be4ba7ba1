//! Test support (feature `testing`): a registry on a fresh store of either backend, and a
//! clock the test moves by hand.
//!
//! SQLite gets a new file in a temporary folder; PostgreSQL (127.0.0.1:5432, database `test`)
//! a new schema. When PostgreSQL is not there the helper returns `None` after printing that
//! the test is skipped — unless `BERTH_REQUIRE_SERVICES=1` (as in CI), where it panics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use berth_store::{ArtifactLocation, ArtifactStore, MetadataStore};
use chrono::{DateTime, Utc};

use crate::{Clock, Registry};

/// The PostgreSQL the tests use.
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
    pub fn new(at: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(at)))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        if let Ok(mut now) = self.0.lock() {
            *now = at;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .map(|t| *t)
            .unwrap_or_else(|e| *e.into_inner())
    }
}

/// Whether tests must fail, rather than skip, when a service is missing.
pub fn services_required() -> bool {
    std::env::var("BERTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A registry on a store of its own; keeps its temporary folder alive.
pub struct TestRegistry {
    pub registry: Registry,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

static SCHEMAS: AtomicU64 = AtomicU64::new(0);

async fn fresh_postgres_schema() -> Option<String> {
    use sqlx::{Connection, Executor};
    let schema = format!(
        "berth_test_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed),
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
    if let Err(e) = admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
    {
        panic!("cannot create test schema {schema}: {e}");
    }
    Some(format!("{PG_URL}?options%5Bsearch_path%5D={schema}"))
}

/// A registry on a fresh store of `backend`; `None` when PostgreSQL is missing and not required.
pub async fn test_registry(backend: Backend) -> Option<TestRegistry> {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("temp dir: {e}"),
    };
    let url = match backend {
        Backend::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("berth.db").display()
        ),
        Backend::Postgres => fresh_postgres_schema().await?,
    };
    let meta = match MetadataStore::connect(&url).await {
        Ok(m) => m,
        Err(e) => panic!("test store {url}: {e}"),
    };
    let artifacts =
        match ArtifactStore::open(ArtifactLocation::Folder(dir.path().join("artifacts"))) {
            Ok(a) => a,
            Err(e) => panic!("test artifacts: {e}"),
        };
    let clock = ManualClock::new(Utc::now());
    Some(TestRegistry {
        registry: Registry::new(meta, artifacts, clock.clone()),
        clock,
        dir,
    })
}
