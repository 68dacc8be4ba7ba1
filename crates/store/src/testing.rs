//! Test support shared by berth's crates (feature `testing`): the local PostgreSQL with a
//! fresh schema per test, the local S3 emulator's bucket, and a TCP proxy that a test can cut, stall and restore to make a
//! store unavailable for real.
//!
//! PostgreSQL is 127.0.0.1:5432, database `test`, trust auth. When it is not reachable the
//! helpers return `None` after printing that the test is skipped, unless
//! `BERTH_REQUIRE_SERVICES=1` (as in CI), where they panic.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

use crate::{MetadataStore, StoreError};
use tokio::task::AbortHandle;

/// The local PostgreSQL.
pub const PG_HOST_PORT: &str = "127.0.0.1:5432";

static SCHEMAS: AtomicU64 = AtomicU64::new(0);

/// Whether tests must fail, rather than skip, when a service is missing.
pub fn services_required() -> bool {
    std::env::var("BERTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The URL of `schema` in the test database, reached at `host_port`.
pub fn postgres_url(host_port: &str, schema: &str) -> String {
    format!("postgres://postgres@{host_port}/test?options%5Bsearch_path%5D={schema}")
}

/// A metadata store of its own for a test on `backend` (`"sqlite"`: a file in `dir`;
/// `"postgres"`: a fresh schema named after `prefix`); `None` (skip) when PostgreSQL is
/// missing and not required.
pub async fn fresh_store(
    backend: &str,
    dir: &std::path::Path,
    prefix: &str,
) -> Option<crate::MetadataStore> {
    let url = if backend == "sqlite" {
        format!("sqlite://{}?mode=rwc", dir.join("berth.db").display())
    } else {
        postgres_url(PG_HOST_PORT, &fresh_postgres_schema(prefix).await?)
    };
    Some(
        crate::MetadataStore::connect(&url)
            .await
            .expect("the test store opens"),
    )
}

/// The bucket of the local S3 emulator (moto) that `scripts/test.sh` starts, named in
/// `BERTH_TEST_S3_BUCKET` with the `AWS_*` variables pointing at it; `None` (skip) without it,
/// unless services are required.
pub fn s3_test_bucket() -> Option<String> {
    match std::env::var("BERTH_TEST_S3_BUCKET") {
        Ok(b) => Some(b),
        Err(_) if services_required() => {
            panic!(
                "the S3 emulator is required (BERTH_REQUIRE_SERVICES=1); run the tests with scripts/test.sh"
            )
        }
        Err(_) => {
            eprintln!(
                "skipped: no S3 emulator (BERTH_TEST_S3_BUCKET unset); scripts/test.sh starts one"
            );
            None
        }
    }
}

/// A store at `url` as berth left it before migration `version + 1` (for tests of upgrades).
pub async fn store_at_migration(url: &str, version: i64) -> Result<MetadataStore, StoreError> {
    MetadataStore::connect_migrated_to(url, version).await
}

/// Creates a fresh schema named after `prefix`; `None` (skip) when PostgreSQL is missing and
/// not required. `scripts/test.sh` drops the `berth_` schemas of earlier runs.
pub async fn fresh_postgres_schema(prefix: &str) -> Option<String> {
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
        "berth_{prefix}_{}_{}_{}",
        std::process::id(),
        SCHEMAS.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    );
    if let Err(e) = admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
    {
        panic!("cannot create test schema {schema}: {e}");
    }
    Some(schema)
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

/// The ids of the records of every segment of `endpoint`, segments in the order they were
/// inserted and records in their order within each (for tests of write order; SQLite only).
pub async fn record_ids_in_insert_order(
    store: &MetadataStore,
    endpoint: &str,
) -> Result<Vec<String>, StoreError> {
    crate::predictions::ids_in_insert_order(store, endpoint).await
}
