//! The recorder end to end: records into SQLite and PostgreSQL, the spool across a crash, torn
//! and corrupt spool tails, sync-mode durability, overflow policies, metrics, and records kept
//! exactly once through a PostgreSQL outage.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_records::{
    Accepted, Durability, FieldAction, OverflowPolicy, Recorder, RecordsError, RedactionPolicy,
    SecretKey,
};
use common::*;

macro_rules! on_both_backends {
    ($($name:ident($backend:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $backend = "sqlite";
                    $body
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let $backend = "postgres";
                    $body
                }
            )*
        }
    };
}

on_both_backends! {
    records_round_trip_redacted(backend) {
        let dir = tempfile::tempdir().expect("dir");
        let Some(store) = common::store(backend, dir.path()).await else { return };
        let mut config = config(dir.path());
        config.redaction = RedactionPolicy {
            fields: [("email".to_string(), FieldAction::Hash)].into(),
            key: Some(SecretKey::new("test-key")),
            ..RedactionPolicy::default()
        };
        let recorder = Recorder::open(config, store.clone()).await.expect("recorder");
        let records: Vec<_> = (0..50).map(|n| record("churn", n)).collect();
        for r in &records {
            assert_eq!(recorder.submit(r.clone()).expect("submit"), Accepted::Queued);
        }
        let stats = recorder.shutdown().await.expect("shutdown");
        assert_eq!((stats.queued, stats.written, stats.spooled, stats.dropped), (50, 50, 0, 0));
        assert_eq!(store.count_predictions().await.expect("count"), 50);

        let stored = store.get_prediction(&records[7].id).await.expect("get").expect("stored");
        assert_eq!(stored.endpoint, "churn");
        assert_eq!((stored.model.as_str(), stored.version, stored.role.as_str()), ("churn", 2, "primary"));
        assert_eq!(stored.latency_us, 807);
        assert_eq!(stored.time_ms, records[7].time.timestamp_millis());
        assert_eq!(stored.inputs["tenure"], serde_json::json!([7]));
        let email = stored.inputs["email"][0].as_str().expect("hashed email");
        assert!(email.starts_with("hmac-sha256:"), "{email}");
        assert!(!stored.inputs.to_string().contains("example.com"), "the address is never stored");
        assert_eq!(stored.outputs, serde_json::json!({"probability": [0.5]}));
        let canary = store.get_prediction(&records[10].id).await.expect("get").expect("stored");
        assert_eq!(canary.role, "canary");

        let err = recorder.submit(record("churn", 99)).expect_err("closed");
        assert!(matches!(err, RecordsError::Closed { .. }), "{err}");
        assert_eq!(recorder.stats().dropped, 1, "a refused record is counted");
    }

    sync_mode_writes_every_durable_record(backend) {
        let dir = tempfile::tempdir().expect("dir");
        let Some(store) = common::store(backend, dir.path()).await else { return };
        let config = berth_records::RecorderConfig { durability: Durability::Sync, ..config(dir.path()) };
        let recorder = Recorder::open(config, store.clone()).await.expect("recorder");
        let tasks: Vec<_> = (0..8u64)
            .map(|t| {
                let recorder = recorder.clone();
                tokio::spawn(async move {
                    for n in 0..25 {
                        recorder.submit_durable(record("sync", t * 100 + n)).await.expect("durable");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        let stats = recorder.shutdown().await.expect("shutdown");
        assert_eq!((stats.queued, stats.spooled, stats.written), (200, 200, 200));
        assert!(stats.fsyncs > 0, "durable submits fsync the spool");
        assert_eq!(stored_ids(&store, "sync").await.len(), 200);
        assert!(segments(&dir.path().join("spool")).is_empty(), "replayed segments are removed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_is_replayed_once_after_a_crash() {
    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite_store(dir.path()).await;
    let config = berth_records::RecorderConfig {
        queue_capacity: 5,
        ..idle_config(dir.path())
    };
    let first = Recorder::open(config.clone(), store.clone())
        .await
        .expect("recorder");
    let mut spooled = BTreeSet::new();
    for n in 0..20 {
        let r = record("crash", n);
        match first.submit(r.clone()).expect("submit") {
            Accepted::Queued => assert!(n < 5, "the queue holds 5"),
            Accepted::Spooled => {
                spooled.insert(r.id);
            }
        }
    }
    assert_eq!(spooled.len(), 15);
    assert_eq!(first.stats().spooled, 15);
    first.simulate_crash().await;
    assert_eq!(store.count_predictions().await.expect("count"), 0);

    // What a kill -9 loses in group mode is the queue; the spool comes back, once.
    let second = Recorder::open(
        berth_records::RecorderConfig {
            flush_interval_ms: 20,
            ..config
        },
        store.clone(),
    )
    .await
    .expect("recorder after the crash");
    let stats = second.shutdown().await.expect("shutdown");
    assert_eq!(stats.written, 15);
    let stored: BTreeSet<String> = stored_ids(&store, "crash").await.into_iter().collect();
    assert_eq!(stored, spooled);
    assert!(segments(&dir.path().join("spool")).is_empty());

    // A third start finds nothing to do.
    let third = Recorder::open(
        berth_records::RecorderConfig {
            spool_dir: dir.path().join("spool"),
            ..Default::default()
        },
        store.clone(),
    )
    .await
    .expect("third");
    assert_eq!(third.shutdown().await.expect("shutdown").written, 0);
    assert_eq!(store.count_predictions().await.expect("count"), 15);
}

/// Spools 10 records in one segment and crashes; returns the segment's path and the ids in order.
async fn crash_with_a_spooled_segment(dir: &std::path::Path) -> (std::path::PathBuf, Vec<String>) {
    let store = sqlite_store(dir).await;
    let config = berth_records::RecorderConfig {
        durability: Durability::Sync,
        ..idle_config(dir)
    };
    let recorder = Recorder::open(config, store).await.expect("recorder");
    let mut ids = Vec::new();
    for n in 0..10 {
        let r = record("torn", n);
        ids.push(r.id.clone());
        recorder.submit_durable(r).await.expect("durable");
    }
    recorder.simulate_crash().await;
    let segments = segments(&dir.join("spool"));
    assert_eq!(segments.len(), 1);
    (segments[0].clone(), ids)
}

/// Reopens the recorder on the damaged spool: one corrupt frame is counted and cut, and the
/// first 9 of the 10 records `ids` are replayed into the store.
async fn replays_all_but_the_damaged_last_record(dir: &std::path::Path, ids: &[String]) {
    let store = sqlite_store(dir).await;
    let recorder = Recorder::open(config(dir), store.clone())
        .await
        .expect("recorder");
    assert_eq!(recorder.stats().corrupt_frames, 1);
    let stats = recorder.shutdown().await.expect("shutdown");
    assert_eq!(stats.written, 9);
    let stored: BTreeSet<String> = stored_ids(&store, "torn").await.into_iter().collect();
    assert_eq!(stored, ids[..9].iter().cloned().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_is_cut_and_the_rest_replayed() {
    let dir = tempfile::tempdir().expect("dir");
    let (segment, ids) = crash_with_a_spooled_segment(dir.path()).await;
    let whole = std::fs::metadata(&segment).expect("segment").len();
    // The last write was cut short: its last 7 bytes never reached the disk.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(whole - 7).expect("truncate");
    drop(file);

    replays_all_but_the_damaged_last_record(dir.path(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_tail_is_cut_and_the_rest_replayed() {
    let dir = tempfile::tempdir().expect("dir");
    let (segment, ids) = crash_with_a_spooled_segment(dir.path()).await;
    let mut bytes = std::fs::read(&segment).expect("segment");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x40; // a flipped bit inside the last frame's payload
    bytes.extend_from_slice(b"\x05\x00\x00\x00garbage after the end");
    std::fs::write(&segment, &bytes).expect("write");

    replays_all_but_the_damaged_last_record(dir.path(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_record_survives_an_abrupt_stop() {
    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite_store(dir.path()).await;
    let config = berth_records::RecorderConfig {
        durability: Durability::Sync,
        ..idle_config(dir.path())
    };
    let recorder = Recorder::open(config.clone(), store.clone())
        .await
        .expect("recorder");
    let tasks: Vec<_> = (0..3u64)
        .map(|t| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..10 {
                    let r = record("durable", t * 100 + n);
                    ids.push(r.id.clone());
                    recorder.submit_durable(r).await.expect("durable");
                }
                ids
            })
        })
        .collect();
    let mut answered = BTreeSet::new();
    for task in tasks {
        answered.extend(task.await.expect("task"));
    }
    // Every returned submit_durable is on disk: stop without any flush.
    recorder.simulate_crash().await;
    drop(recorder);
    assert_eq!(store.count_predictions().await.expect("count"), 0);
    assert!(!segments(&dir.path().join("spool")).is_empty());

    let again = Recorder::open(
        berth_records::RecorderConfig {
            flush_interval_ms: 20,
            ..config
        },
        store.clone(),
    )
    .await
    .expect("reopen");
    let stats = again.shutdown().await.expect("shutdown");
    assert_eq!(stats.written, 30);
    let stored: BTreeSet<String> = stored_ids(&store, "durable").await.into_iter().collect();
    assert_eq!(stored, answered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_spools_in_order_or_drops_and_counts() {
    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite_store(dir.path()).await;
    let drop_config = berth_records::RecorderConfig {
        queue_capacity: 3,
        overflow: OverflowPolicy::Drop,
        spool_dir: dir.path().join("drop-spool"),
        ..idle_config(dir.path())
    };
    let dropping = Recorder::open(drop_config, store.clone())
        .await
        .expect("recorder");
    let mut results = Vec::new();
    for n in 0..10 {
        results.push(dropping.submit(record("drop", n)));
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(
        results[3..]
            .iter()
            .all(|r| matches!(r, Err(RecordsError::Dropped { .. })))
    );
    let stats = dropping.shutdown().await.expect("shutdown");
    assert_eq!(
        (stats.queued, stats.dropped, stats.written, stats.spooled),
        (3, 7, 3, 0)
    );

    // With `spool`, nothing is dropped: 3 queued, 7 spooled, all 10 written.
    let spool_config = berth_records::RecorderConfig {
        queue_capacity: 3,
        spool_dir: dir.path().join("spool"),
        ..idle_config(dir.path())
    };
    let spooling = Recorder::open(spool_config, store.clone())
        .await
        .expect("recorder");
    let records: Vec<_> = (0..10).map(|n| record("overflow", n)).collect();
    for r in &records {
        spooling.submit(r.clone()).expect("submit");
    }
    let stats = spooling.shutdown().await.expect("shutdown");
    assert_eq!(
        (stats.queued, stats.spooled, stats.written, stats.dropped),
        (10, 7, 10, 0)
    );
    assert_eq!(stored_ids(&store, "overflow").await.len(), 10);
}

/// Records reach the store in submission order even when store writes fail (their batches go
/// to the spool) while the queue overflows (later records go to the spool first), with durable
/// submits mixed in. SQLite's rowid gives the order in which segments were inserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_stored_in_submission_order_through_failures_and_overflow() {
    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite_store(dir.path()).await;
    let config = berth_records::RecorderConfig {
        queue_capacity: 20,
        batch_size: 10,
        flush_interval_ms: 5,
        retry_interval_ms: 15,
        ..config(dir.path())
    };
    let recorder = Recorder::open(config, store.clone())
        .await
        .expect("recorder");
    let mut submitted = Vec::new();
    let mut paths = (0, 0);
    for n in 0..3000 {
        if n % 400 == 0 {
            // The next two writes of this endpoint fail.
            berth_store::failpoint::arm("predictions.before_commit", "order");
            berth_store::failpoint::arm("predictions.before_commit", "order");
        }
        let r = record("order", n);
        submitted.push(r.id.clone());
        if n % 50 == 25 {
            // A durable submit goes to the spool behind everything queued before it.
            recorder.submit_durable(r).await.expect("durable");
            continue;
        }
        match recorder.submit(r).expect("submit") {
            Accepted::Queued => paths.0 += 1,
            Accepted::Spooled => paths.1 += 1,
        }
        if n % 7 == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let stats = recorder.shutdown().await.expect("shutdown");
    assert!(paths.1 > 0, "the queue never overflowed: {paths:?}");
    assert!(
        stats.spooled > paths.1,
        "no failed batch reached the spool: {stats:?}"
    );
    assert_eq!(stats.written, 3000);

    // Segments in the order they were inserted, each with its records in order.
    let in_insert_order = berth_store::testing::record_ids_in_insert_order(&store, "order")
        .await
        .expect("segments");
    assert_eq!(in_insert_order.len(), submitted.len());
    let first_difference = in_insert_order
        .iter()
        .zip(&submitted)
        .position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "stored out of submission order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exported_under_berth_records() {
    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite_store(dir.path()).await;
    let recorder = Recorder::open(config(dir.path()), store)
        .await
        .expect("recorder");
    let mut registry = prometheus_client::registry::Registry::with_prefix("berth");
    recorder.register_metrics(&mut registry);
    recorder.submit(record("m", 1)).expect("submit");
    recorder.submit(record("m", 2)).expect("submit");
    recorder.shutdown().await.expect("shutdown");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    for line in [
        "berth_records_queued_total 2",
        "berth_records_written_total 2",
        "berth_records_spooled_total 0",
        "berth_records_dropped_total 0",
        "berth_records_spool_corrupt_total 0",
        "berth_records_spool_fsyncs_total 0",
        "berth_records_spool_pending_bytes 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_without_a_key_is_refused_at_open() {
    let dir = tempfile::tempdir().expect("dir");
    let store = sqlite_store(dir.path()).await;
    let mut config = config(dir.path());
    config
        .redaction
        .fields
        .insert("email".into(), FieldAction::Hash);
    let err = Recorder::open(config, store).await.expect_err("no key");
    assert!(matches!(err, RecordsError::Config(_)), "{err}");
}

/// The failure test: PostgreSQL behind a proxy that is cut for 5 s under load, then restored.
/// Every record whose submit returned `Ok` ends up in the table exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_store_outage_exactly_once() {
    store_failure_under_load(Failure::Refused, Duration::from_secs(5)).await;
}

/// The same with a store that hangs (connections accepted, never answered) for 3 s: store
/// writes time out instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_a_hung_store_exactly_once() {
    store_failure_under_load(Failure::Hung, Duration::from_secs(3)).await;
}

#[derive(Debug, Clone, Copy)]
enum Failure {
    Refused,
    Hung,
}

async fn store_failure_under_load(failure: Failure, outage: Duration) {
    let Some(schema) = berth_store::testing::fresh_postgres_schema("records").await else {
        return;
    };
    let proxy = TcpProxy::start(PG_HOST_PORT).await;
    let url = postgres_url(&proxy.addr.to_string(), &schema);
    let store = berth_store::MetadataStore::connect(&url)
        .await
        .expect("store through the proxy");
    let dir = tempfile::tempdir().expect("dir");
    let config = berth_records::RecorderConfig {
        flush_interval_ms: 50,
        queue_capacity: 500,
        batch_size: 200,
        store_timeout_ms: 500,
        retry_interval_ms: 200,
        ..config(dir.path())
    };
    let recorder = Recorder::open(config, store).await.expect("recorder");

    let stop = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..4u64)
        .map(|t| {
            let (recorder, stop) = (recorder.clone(), stop.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = record("outage", t * 1_000_000 + n);
                    let id = r.id.clone();
                    recorder
                        .submit(r)
                        .expect("submit never fails with overflow: spool");
                    ids.push(id);
                    n += 1;
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                ids
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    match failure {
        Failure::Refused => proxy.cut(),
        Failure::Hung => proxy.stall(),
    }
    tokio::time::sleep(outage).await;
    let during_outage = recorder.stats();
    proxy.restore();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let mut submitted = Vec::new();
    for s in submitters {
        submitted.extend(s.await.expect("submitter"));
    }
    let stats = recorder.shutdown().await.expect("shutdown");
    drop(proxy);

    // Read back directly, not through the proxy.
    let direct = berth_store::MetadataStore::connect(&postgres_url(PG_HOST_PORT, &schema))
        .await
        .expect("direct store");
    let stored = stored_ids(&direct, "outage").await;
    let unique: BTreeSet<&String> = stored.iter().collect();
    let expected: BTreeSet<&String> = submitted.iter().collect();
    eprintln!(
        "{failure:?}: submitted {}, stored {}, spooled {} ({} during the outage)",
        submitted.len(),
        stored.len(),
        stats.spooled,
        during_outage.spooled
    );
    assert!(
        submitted.len() > 1000,
        "too little load: {}",
        submitted.len()
    );
    assert_eq!(unique.len(), stored.len(), "an id stored twice");
    assert_eq!(
        unique, expected,
        "stored ids differ from the submitted ones"
    );
    assert!(
        during_outage.spooled > 0,
        "the outage did not reach the spool"
    );
    assert_eq!(stats.queued, submitted.len() as u64);
    assert_eq!(stats.written, stats.queued);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.spool_pending_bytes, 0);
    assert!(segments(&dir.path().join("spool")).is_empty());
}
