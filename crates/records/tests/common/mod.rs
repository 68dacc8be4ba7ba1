//! Test support: stores on SQLite and PostgreSQL, a TCP proxy in front of PostgreSQL that a test
//! can cut and restore, and records to submit.
//!
//! PostgreSQL is 127.0.0.1:5432, database `test`, one fresh schema per store. When it is not
//! reachable the helpers return `None` after printing that the test is skipped, unless
//! `BERTH_REQUIRE_SERVICES=1`, where they panic.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use berth_records::{PredictionRecord, RecorderConfig, Role};
use berth_store::MetadataStore;
use serde_json::json;

pub use berth_store::testing::{PG_HOST_PORT, TcpProxy, postgres_url};

pub async fn sqlite_store(dir: &Path) -> MetadataStore {
    let url = format!("sqlite://{}?mode=rwc", dir.join("berth.db").display());
    MetadataStore::connect(&url).await.expect("sqlite store")
}

/// A store of `backend` ("sqlite" or "postgres") of its own.
pub async fn store(backend: &str, dir: &Path) -> Option<MetadataStore> {
    match backend {
        "sqlite" => Some(sqlite_store(dir).await),
        _ => {
            let schema = berth_store::testing::fresh_postgres_schema("records").await?;
            Some(
                MetadataStore::connect(&postgres_url(PG_HOST_PORT, &schema))
                    .await
                    .expect("postgres store"),
            )
        }
    }
}

/// A config for tests: spool in `dir`, short intervals.
pub fn config(dir: &Path) -> RecorderConfig {
    RecorderConfig {
        spool_dir: dir.join("spool"),
        flush_interval_ms: 20,
        store_timeout_ms: 1_000,
        retry_interval_ms: 100,
        ..RecorderConfig::default()
    }
}

/// A config whose writer never runs on its own (an hour between flushes, batches too large
/// to wake it): what is submitted stays where `submit` put it.
pub fn idle_config(dir: &Path) -> RecorderConfig {
    RecorderConfig {
        flush_interval_ms: 3_600_000,
        batch_size: 100_000,
        ..config(dir)
    }
}

pub fn record(endpoint: &str, n: u64) -> PredictionRecord {
    PredictionRecord {
        id: PredictionRecord::new_id(),
        time: chrono::Utc::now(),
        endpoint: endpoint.to_string(),
        model: "churn".into(),
        version: 2,
        role: if n.is_multiple_of(10) {
            Role::Canary
        } else {
            Role::Primary
        },
        protocol: "v2",
        rows: 1,
        latency: Duration::from_micros(800 + n),
        inputs: BTreeMap::from([
            ("tenure".to_string(), vec![json!(n)]),
            (
                "email".to_string(),
                vec![json!(format!("user{n}@example.com"))],
            ),
        ])
        .into(),
        outputs: BTreeMap::from([("probability".to_string(), vec![json!(0.5)])]).into(),
    }
}

/// Ids of the stored predictions of `endpoint`.
pub async fn stored_ids(store: &MetadataStore, endpoint: &str) -> Vec<String> {
    store
        .list_prediction_ids(endpoint, 0, i64::MAX)
        .await
        .expect("list ids")
}

/// Segment files in a spool folder, oldest first.
pub fn segments(spool: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(spool)
        .expect("spool folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}
