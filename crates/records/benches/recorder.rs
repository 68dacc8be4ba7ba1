//! Submits per second and per-submit latency of the recorder, in group and in sync mode, on
//! this machine's disk, into SQLite. A plain program (`harness = false`): concurrency and the
//! latency distribution matter here, which criterion's one-closure loop does not show.
//!
//! ```text
//! cargo bench -p berth-records --bench recorder
//! BERTH_BENCH_DIR=/some/disk cargo bench -p berth-records --bench recorder   # another disk
//! ```
//!
//! - group: 4 tasks submit 50,000 records each as fast as they can (`submit`, never waits);
//!   then `shutdown` drains everything into the store. Reported: submit latency, submits/s,
//!   and end-to-end records/s into SQLite (submit start to shutdown end).
//! - group, paced: 4 tasks each submitting once a millisecond for 3 s (a rate the store keeps
//!   up with): submit latency when nothing overflows.
//! - sync: N tasks (1, 16, 128) call `submit_durable` in a loop for 3 s; each call returns
//!   after its record is fsynced. Reported: latency, durable submits/s, fsyncs (group commit
//!   shares one among concurrent callers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_records::{Durability, PredictionRecord, Recorder, RecorderConfig, RecorderStats, Role};
use berth_store::MetadataStore;
use serde_json::json;
use tokio::task::JoinHandle;

fn record(n: u64) -> PredictionRecord {
    PredictionRecord {
        id: PredictionRecord::new_id(),
        time: chrono::Utc::now(),
        endpoint: "bench".into(),
        model: "churn".into(),
        version: 1,
        role: Role::Primary,
        protocol: "v2",
        rows: 1,
        latency: Duration::from_micros(900),
        inputs: BTreeMap::from([
            ("tenure".to_string(), vec![json!(n % 72)]),
            ("monthly_charges".to_string(), vec![json!(70.35)]),
            ("contract".to_string(), vec![json!("month-to-month")]),
            (
                "payment_method".to_string(),
                vec![json!("electronic check")],
            ),
            ("senior".to_string(), vec![json!(false)]),
        ])
        .into(),
        outputs: BTreeMap::from([
            ("label".to_string(), vec![json!(1)]),
            ("probability".to_string(), vec![json!(0.731)]),
        ])
        .into(),
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn describe(latencies_ns: &mut [u64]) -> String {
    latencies_ns.sort_unstable();
    format!(
        "p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        percentile(latencies_ns, 0.5),
        percentile(latencies_ns, 0.99),
        percentile(latencies_ns, 0.999),
        percentile(latencies_ns, 1.0)
    )
}

/// A new SQLite store and a recorder on it, with `durability`, in the folder `dir/name`.
async fn fresh(
    dir: &std::path::Path,
    name: &str,
    durability: Durability,
) -> (MetadataStore, Recorder) {
    let root = dir.join(name);
    std::fs::create_dir_all(&root).expect("bench folder");
    let url = format!("sqlite://{}?mode=rwc", root.join("berth.db").display());
    let store = MetadataStore::connect(&url).await.expect("store");
    let config = RecorderConfig {
        durability,
        spool_dir: root.join("spool"),
        ..RecorderConfig::default()
    };
    let recorder = Recorder::open(config, store.clone())
        .await
        .expect("recorder");
    (store, recorder)
}

/// What a scenario measured, once its submitting tasks are done and the recorder shut down.
struct Run {
    /// Every submit's latency, in nanoseconds.
    latencies: Vec<u64>,
    /// From the start until the last task finished submitting.
    submitted: Duration,
    /// From the start until shutdown had drained everything into the store.
    total: Duration,
    stats: RecorderStats,
}

impl Run {
    /// "N SUBMITS in S s = R submits/s; LATENCIES", counted until the last task finished.
    fn rate(&mut self, submits: &str) -> String {
        let (n, elapsed) = (self.latencies.len(), self.submitted);
        format!(
            "{n} {submits} in {:.2} s = {:.0} submits/s; {}",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            describe(&mut self.latencies)
        )
    }
}

/// Joins the submitting tasks (each returns its latencies), shuts the recorder down and
/// asserts that every submitted record reached the store.
async fn finish(
    tasks: Vec<JoinHandle<Vec<u64>>>,
    started: Instant,
    recorder: &Recorder,
    store: &MetadataStore,
) -> Run {
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    let submitted = started.elapsed();
    let stats = recorder.shutdown().await.expect("shutdown");
    let total = started.elapsed();
    assert_eq!(
        store.count_predictions().await.expect("count"),
        latencies.len() as i64,
        "every record stored"
    );
    Run {
        latencies,
        submitted,
        total,
        stats,
    }
}

async fn group(dir: &std::path::Path) {
    const TASKS: u64 = 4;
    const PER_TASK: u64 = 50_000;
    let (store, recorder) = fresh(dir, "group", Durability::Group).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_TASK as usize);
                for n in 0..PER_TASK {
                    let r = record(t * PER_TASK + n);
                    let at = Instant::now();
                    recorder.submit(r).expect("submit");
                    latencies.push(at.elapsed().as_nanos() as u64);
                    if n % 256 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                latencies
            })
        })
        .collect();
    let mut run = finish(tasks, started, &recorder, &store).await;
    let n = TASKS * PER_TASK;
    assert_eq!(run.latencies.len() as u64, n);
    println!(
        "group: {n} submits from {TASKS} tasks in {:.2} s = {:.0} submits/s; {}; \
         all in SQLite after {:.2} s = {:.0} records/s end to end ({} went through the spool)",
        run.submitted.as_secs_f64(),
        n as f64 / run.submitted.as_secs_f64(),
        describe(&mut run.latencies),
        run.total.as_secs_f64(),
        n as f64 / run.total.as_secs_f64(),
        run.stats.spooled
    );
}

/// Spawns `tasks` tasks that submit records until `deadline`, one per `pace` tick if given,
/// with `submit_durable` if `durable` (else `submit`). Each task returns its latencies (ns).
fn submit_until(
    recorder: &Recorder,
    tasks: u64,
    deadline: Instant,
    pace: Option<Duration>,
    durable: bool,
) -> Vec<JoinHandle<Vec<u64>>> {
    (0..tasks)
        .map(|t| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                let mut tick = pace.map(tokio::time::interval);
                while Instant::now() < deadline {
                    if let Some(tick) = tick.as_mut() {
                        tick.tick().await;
                    }
                    let r = record(t * 1_000_000 + n);
                    let at = Instant::now();
                    if durable {
                        recorder.submit_durable(r).await.expect("durable");
                    } else {
                        recorder.submit(r).expect("submit");
                    }
                    latencies.push(at.elapsed().as_nanos() as u64);
                    n += 1;
                }
                latencies
            })
        })
        .collect()
}

/// Group mode at a pace the store keeps up with: 4 tasks, each a submit every millisecond.
async fn group_paced(dir: &std::path::Path) {
    const TASKS: u64 = 4;
    let (store, recorder) = fresh(dir, "group-paced", Durability::Group).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let started = Instant::now();
    let pace = Some(Duration::from_millis(1));
    let tasks = submit_until(&recorder, TASKS, deadline, pace, false);
    let mut run = finish(tasks, started, &recorder, &store).await;
    println!(
        "group, paced: {}; {} went through the spool",
        run.rate("submits"),
        run.stats.spooled
    );
}

async fn sync(dir: &std::path::Path, tasks: u64) {
    let (store, recorder) = fresh(dir, &format!("sync-{tasks}"), Durability::Sync).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let started = Instant::now();
    let handles = submit_until(&recorder, tasks, deadline, None, true);
    let mut run = finish(handles, started, &recorder, &store).await;
    println!(
        "sync, {tasks} concurrent: {}; {} fsyncs ({:.1} records per fsync)",
        run.rate("durable submits"),
        run.stats.fsyncs,
        run.latencies.len() as f64 / run.stats.fsyncs.max(1) as f64
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let base = std::env::var_os("BERTH_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).expect("bench folder");
    println!("spool and SQLite in {}", dir.path().display());
    if quick {
        println!("(not run with --bench: skipped)");
        return;
    }
    runtime.block_on(async {
        group(dir.path()).await;
        group_paced(dir.path()).await;
        for tasks in [1, 16, 128] {
            sync(dir.path(), tasks).await;
        }
    });
}
