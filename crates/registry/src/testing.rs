//! Test support (feature `testing`): a registry on a fresh store of either backend, and a
//! clock the test moves by hand.
//!
//! SQLite gets a new file in a temporary folder; PostgreSQL (127.0.0.1:5432, database `test`)
//! a new schema. When PostgreSQL is not there the helper returns `None` after printing that
//! the test is skipped — unless `BERTH_REQUIRE_SERVICES=1` (as in CI), where it panics.

use std::sync::{Arc, Mutex};

use berth_store::{ArtifactLocation, ArtifactStore, MetadataStore};
use chrono::{DateTime, Utc};

use crate::{Clock, Registry};

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

pub use berth_store::testing::services_required;

/// A registry on a store of its own; keeps its temporary folder alive.
pub struct TestRegistry {
    pub registry: Registry,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
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
        Backend::Postgres => {
            let schema = berth_store::testing::fresh_postgres_schema("test").await?;
            berth_store::testing::postgres_url(berth_store::testing::PG_HOST_PORT, &schema)
        }
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
