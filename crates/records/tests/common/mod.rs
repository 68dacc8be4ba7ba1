//! Test support: stores on SQLite and PostgreSQL, a TCP proxy in front of PostgreSQL that a test
//! can cut and restore, and records to submit.
//!
//! PostgreSQL is 127.0.0.1:5432, database `test`, one fresh schema per store. When it is not
//! reachable the helpers return `None` after printing that the test is skipped, unless
//! `BERTH_REQUIRE_SERVICES=1`, where they panic.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_records::{PredictionRecord, RecorderConfig, Role};
use berth_store::MetadataStore;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub const PG_HOST_PORT: &str = "127.0.0.1:5432";

static SCHEMAS: AtomicU64 = AtomicU64::new(0);

pub fn services_required() -> bool {
    std::env::var("BERTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

pub async fn sqlite_store(dir: &Path) -> MetadataStore {
    let url = format!("sqlite://{}?mode=rwc", dir.join("berth.db").display());
    MetadataStore::connect(&url).await.expect("sqlite store")
}

/// Creates a fresh schema; returns its name, or `None` (skip) when PostgreSQL is missing.
pub async fn fresh_postgres_schema() -> Option<String> {
    use sqlx::{Connection, Executor};
    let admin_url = format!("postgres://postgres@{PG_HOST_PORT}/test");
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) if services_required() => {
            panic!("PostgreSQL at {PG_HOST_PORT} is required (BERTH_REQUIRE_SERVICES=1): {e}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL at {PG_HOST_PORT} is not reachable ({e})");
            return None;
        }
    };
    let schema = format!(
        "berth_records_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("create schema");
    Some(schema)
}

pub fn postgres_url(host_port: &str, schema: &str) -> String {
    format!("postgres://postgres@{host_port}/test?options%5Bsearch_path%5D={schema}")
}

/// A store of `backend` ("sqlite" or "postgres") of its own.
pub async fn store(backend: &str, dir: &Path) -> Option<MetadataStore> {
    match backend {
        "sqlite" => Some(sqlite_store(dir).await),
        _ => {
            let schema = fresh_postgres_schema().await?;
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
        protocol: "v2".into(),
        rows: 1,
        latency: Duration::from_micros(800 + n),
        inputs: BTreeMap::from([
            ("tenure".to_string(), vec![json!(n)]),
            (
                "email".to_string(),
                vec![json!(format!("user{n}@example.com"))],
            ),
        ]),
        outputs: BTreeMap::from([("probability".to_string(), vec![json!(0.5)])]),
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

/// A TCP proxy on 127.0.0.1 in front of `target`. Cut, it closes every connection and
/// refuses new ones (accepts and closes them at once); stalled, it closes every connection and
/// holds new ones open without an answer (a hung server); restored, it forwards again.
pub struct TcpProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl TcpProxy {
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let stalled = Arc::new(AtomicBool::new(false));
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let target = target.to_string();
        let accept = {
            let (up, stalled, held, connections) = (
                up.clone(),
                stalled.clone(),
                held.clone(),
                connections.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        continue;
                    };
                    if stalled.load(Ordering::SeqCst) {
                        if let Ok(mut list) = held.lock() {
                            list.push(inbound);
                        }
                        continue;
                    }
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let target = target.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(&target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    if let Ok(mut list) = connections.lock() {
                        list.push(task.abort_handle());
                    }
                }
            })
            .abort_handle()
        };
        Self {
            addr,
            up,
            stalled,
            held,
            connections,
            accept,
        }
    }

    fn close_all(&self) {
        if let Ok(mut list) = self.connections.lock() {
            for connection in list.drain(..) {
                connection.abort();
            }
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.close_all();
    }

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
        self.close_all();
    }

    pub fn restore(&self) {
        self.stalled.store(false, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
        // Connections held while stalled are closed: their clients see an error and retry.
        if let Ok(mut list) = self.held.lock() {
            list.clear();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}
