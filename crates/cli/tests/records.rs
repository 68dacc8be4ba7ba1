//! Prediction records end to end, against the `berth up` binary under load:
//!
//! - the store (PostgreSQL behind a proxy the test cuts) unavailable for 30 s, then restored:
//!   every prediction id answered 200 is in the store exactly once;
//! - `kill -9` under load (once 200 requests were answered) in `group` durability loses at
//!   most the records of the last flush window (the figure is printed), and in `sync`
//!   durability loses nothing that was answered.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_store::MetadataStore;
use berth_store::testing::{PG_HOST_PORT, TcpProxy, fresh_postgres_schema, postgres_url};
use common::Server;

fn infer_body(n: usize) -> String {
    let row: Vec<String> = (0..23).map(|c| format!("{}", (n + c) % 17)).collect();
    format!(
        r#"{{"inputs":[{{"name":"input","shape":[1,23],"datatype":"FP32","data":[{}]}}]}}"#,
        row.join(",")
    )
}

/// Requests from `clients` threads until `stop` is set; the prediction ids answered 200, and
/// how many requests failed otherwise.
fn load(server: &Arc<Server>, clients: usize, stop: &Arc<AtomicBool>) -> LoadHandle {
    let answered = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0usize));
    let threads = (0..clients)
        .map(|t| {
            let (server, stop) = (server.clone(), stop.clone());
            let (answered, failed) = (answered.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut n = t;
                while !stop.load(Ordering::Relaxed) {
                    n += clients;
                    match server.try_request("POST", "/v2/models/churn/infer", Some(&infer_body(n)))
                    {
                        Ok((200, head, _)) => {
                            let id = head.lines().find_map(|l| {
                                l.strip_prefix("x-berth-prediction-id: ")
                                    .map(|v| v.trim().to_string())
                            });
                            if let (Some(id), Ok(mut list)) = (id, answered.lock()) {
                                list.push(id);
                            }
                        }
                        _ => {
                            if let Ok(mut f) = failed.lock() {
                                *f += 1;
                            }
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            })
        })
        .collect();
    LoadHandle {
        threads,
        answered,
        failed,
    }
}

struct LoadHandle {
    threads: Vec<std::thread::JoinHandle<()>>,
    answered: Arc<Mutex<Vec<String>>>,
    failed: Arc<Mutex<usize>>,
}

impl LoadHandle {
    /// Requests answered 200 until now.
    fn answered_so_far(&self) -> usize {
        self.answered.lock().map_or(0, |ids| ids.len())
    }

    /// Waits for the clients; the ids answered 200 and the count of other outcomes.
    fn finish(self) -> (Vec<String>, usize) {
        for t in self.threads {
            t.join().expect("client thread");
        }
        let answered = std::mem::take(&mut *self.answered.lock().expect("ids"));
        let failed = *self.failed.lock().expect("count");
        (answered, failed)
    }
}

/// Each answered id's number of rows in the store; checks none is missing or doubled.
fn check_exactly_once(answered: &[String], stored: &[String]) -> Vec<String> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for id in stored {
        *count.entry(id.as_str()).or_default() += 1;
    }
    assert!(
        count.values().all(|&n| n == 1),
        "a prediction is stored twice"
    );
    answered
        .iter()
        .filter(|id| !count.contains_key(id.as_str()))
        .cloned()
        .collect()
}

/// `berth_records_<name>_total` from the server's metrics.
fn records_counter(server: &Server, name: &str) -> f64 {
    let (_, _, text) = server.request("GET", "/metrics", None);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("berth_records_{name}_total ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_second_store_outage_under_load_loses_no_answered_prediction() {
    let Some(schema) = fresh_postgres_schema("outage").await else {
        return;
    };
    let proxy = TcpProxy::start(PG_HOST_PORT).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let records = dir.path().join("records.yaml");
    std::fs::write(
        &records,
        format!(
            "spool_dir: {}\nflush_interval_ms: 50\nstore_timeout_ms: 1000\nretry_interval_ms: 500\n",
            dir.path().join("spool").display()
        ),
    )
    .expect("records file");
    let url = postgres_url(&proxy.addr.to_string(), &schema);
    let artifacts = dir.path().join("artifacts");
    let args = [
        "--store",
        &url,
        "--artifacts",
        artifacts.to_str().expect("utf-8"),
        "up",
        "--poll-ms",
        "200",
        "--records",
        records.to_str().expect("utf-8"),
    ];
    let server = Arc::new(tokio::task::block_in_place(|| Server::start(&args)));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&server, 4, &stop);

    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.cut();
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let spooled_during_outage = tokio::task::block_in_place(|| records_counter(&server, "spooled"));
    proxy.restore();
    eprintln!("store unavailable for {:?}", cut.elapsed());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failed) = tokio::task::block_in_place(|| clients.finish());
    let server = Arc::into_inner(server).expect("clients are done");
    let (status, log) = tokio::task::block_in_place(|| server.stop());
    assert!(status.success(), "graceful stop: {log}");

    let store = MetadataStore::connect(&postgres_url(PG_HOST_PORT, &schema))
        .await
        .expect("store, directly");
    let stored = store
        .list_prediction_ids("churn", 0, i64::MAX)
        .await
        .expect("ids");
    eprintln!(
        "{} answered 200, {failed} not answered, {} stored, {spooled_during_outage} spooled during the outage",
        answered.len(),
        stored.len()
    );
    assert!(answered.len() > 1000, "the load ran: {}", answered.len());
    assert_eq!(failed, 0, "serving went on while the store was down");
    assert!(
        spooled_during_outage > 0.0,
        "records went to the spool while the store was down"
    );
    let missing = check_exactly_once(&answered, &stored);
    assert!(
        missing.is_empty(),
        "{} answered predictions are not in the store, e.g. {:?}",
        missing.len(),
        missing.first()
    );
}

/// The prediction ids stored in the SQLite store of the data folder `data`.
async fn stored_in(data: &Path) -> Vec<String> {
    let url = format!("sqlite://{}?mode=rw", data.join("berth.db").display());
    let store = MetadataStore::connect(&url).await.expect("store");
    store
        .list_prediction_ids("churn", 0, i64::MAX)
        .await
        .expect("ids")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_at_most_a_flush_window_in_group_mode_and_nothing_in_sync_mode() {
    for durability in ["group", "sync"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let args = [
            "--store",
            data.to_str().expect("utf-8"),
            "up",
            "--durability",
            durability,
        ];
        let server = Arc::new(tokio::task::block_in_place(|| Server::start(&args)));
        let stop = Arc::new(AtomicBool::new(false));
        let clients = load(&server, 4, &stop);
        // However slow the machine (sync mode waits on fsync), kill once enough was answered.
        let started = Instant::now();
        while clients.answered_so_far() < 200 && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Killed under load: answers in flight are cut off with it.
        // SAFETY: a signal to our own child process.
        unsafe {
            libc::kill(server.pid(), libc::SIGKILL);
        }
        stop.store(true, Ordering::Relaxed);
        let (answered, _) = tokio::task::block_in_place(|| clients.finish());
        let killed = Arc::into_inner(server).expect("clients are done");
        let (status, _) = tokio::task::block_in_place(|| killed.stop());
        assert!(!status.success(), "it was killed");

        // The next start replays what the spool holds; a graceful stop drains the queue.
        let again = tokio::task::block_in_place(|| Server::start(&args));
        let (status, log) = tokio::task::block_in_place(|| again.stop());
        assert!(status.success(), "{log}");
        let stored = stored_in(&data).await;
        let missing = check_exactly_once(&answered, &stored);
        eprintln!(
            "kill -9 in {durability} mode: {} answered 200, {} of them lost",
            answered.len(),
            missing.len()
        );
        assert!(answered.len() >= 200, "the load ran: {}", answered.len());
        match durability {
            "sync" => assert!(
                missing.is_empty(),
                "sync mode lost {} answered predictions",
                missing.len()
            ),
            // At most the in-memory queue: queue_capacity (10,000) + batch_size (500).
            _ => assert!(missing.len() <= 10_500, "{}", missing.len()),
        }
    }
}
