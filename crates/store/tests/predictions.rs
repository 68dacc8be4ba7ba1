//! The serving-side tables on SQLite and on PostgreSQL: prediction segments (a writer's records
//! stored once whatever the batches that carry them, counts, reads by id and by endpoint and
//! time range), `profile_windows` (a replica's rewrite of a window replaces its row; readers
//! get every replica's rows of a range) and
//! `rollouts` (one unfinished per endpoint, optimistic revisions, saved with the endpoint's
//! policy and the audit event in one transaction).
//!
//! PostgreSQL (127.0.0.1:5432, database `test`, a schema of its own per test) is skipped with a
//! message when it is not reachable, unless `BERTH_REQUIRE_SERVICES=1`.

use berth_store::testing::fresh_store;
use berth_store::{
    AuditFilter, Change, PredictionBatch, PredictionRow, ProfileWindowRow, RolloutSave, StoreError,
};
use serde_json::json;

fn window(start: i64, replica: &str, rows: i64) -> ProfileWindowRow {
    ProfileWindowRow {
        endpoint: "churn".into(),
        model: "churn".into(),
        version: 2,
        window_start_ms: start,
        replica: replica.into(),
        rows,
        profile: json!({"inputs": {"rows": rows}}),
    }
}

fn row(n: i64, endpoint: &str) -> PredictionRow {
    PredictionRow {
        id: format!("0190a3c4-0000-7000-8000-{n:012}"),
        time_ms: 1_700_000_000_000 + n,
        endpoint: endpoint.to_string(),
        model: "churn".into(),
        version: 3,
        role: "primary".into(),
        protocol: "v2".into(),
        rows: 2,
        latency_us: 1500 + n,
        inputs: json!({"tenure": [n, n + 1], "plan": ["a", "b"]}),
        outputs: json!({"probability": [0.25, 0.5]}),
    }
}

/// `rows` as a writer hands them over, numbered from `first_seq`.
fn encoded(rows: &[PredictionRow], first_seq: u64) -> PredictionBatch {
    let mut batch = PredictionBatch::new();
    for (i, r) in rows.iter().enumerate() {
        batch.push_row(first_seq + i as u64, r).expect("encode");
    }
    batch
}

/// Every record of `endpoint`, read in pages of `size`.
async fn paged(
    store: &berth_store::MetadataStore,
    endpoint: &str,
    size: i64,
) -> Vec<PredictionRow> {
    let mut paged = Vec::new();
    let mut after: Option<(i64, String)> = None;
    loop {
        let page = store
            .page_predictions(
                endpoint,
                0,
                i64::MAX,
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
                size,
            )
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.time_ms, last.id.clone()));
        paged.extend(page);
    }
    paged
}

fn save<'a>(
    id: &'a str,
    state: &'a str,
    finished: bool,
    read_revision: Option<i64>,
    body: &'a serde_json::Value,
    policy: Option<&'a serde_json::Value>,
) -> RolloutSave<'a> {
    RolloutSave {
        id,
        endpoint: "churn-api",
        model: "churn",
        state,
        finished,
        body,
        read_revision,
        action: "rollout.test",
        event: body,
        policy,
        alias: None,
    }
}

fn change() -> Change {
    Change {
        actor: "tester".into(),
        reason: Some("test".into()),
        at: chrono::Utc::now(),
    }
}

macro_rules! on_both_backends {
    ($($name:ident($store:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let Some($store) = fresh_store("sqlite", dir.path(), "predictions").await else { return };
                    $body
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let Some($store) = fresh_store("postgres", dir.path(), "predictions").await else { return };
                    $body
                }
            )*
        }
    };
}

on_both_backends! {
    a_batch_round_trips(store) {
        let batch: Vec<_> = (0..5).map(|n| row(n, "churn")).collect();
        assert_eq!(store.insert_predictions("w1", &encoded(&batch, 0)).await.expect("insert"), 5);
        assert_eq!(store.count_predictions().await.expect("count"), 5);
        let read = store.get_prediction(&batch[3].id).await.expect("get").expect("stored");
        assert_eq!(read, batch[3]);
        assert!(store.get_prediction("no-such-id").await.expect("get").is_none());
    }

    the_same_records_twice_are_stored_once_whatever_the_batches(store) {
        let batch: Vec<_> = (0..10).map(|n| row(n, "churn")).collect();
        let first = encoded(&batch[..6], 100);
        assert_eq!(store.insert_predictions("w1", &first).await.expect("insert"), 6);
        // Overlaps the first write, with other boundaries.
        let again = encoded(&batch[4..], 104);
        assert_eq!(store.insert_predictions("w1", &again).await.expect("insert again"), 4);
        let once_more = encoded(&batch[2..7], 102);
        assert_eq!(store.insert_predictions("w1", &once_more).await.expect("once more"), 0);
        assert_eq!(store.count_predictions().await.expect("count"), 10);
        let ids = store.list_prediction_ids("churn", 0, i64::MAX).await.expect("ids");
        assert_eq!(ids, batch.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        assert_eq!(store.insert_predictions("w1", &PredictionBatch::new()).await.expect("empty"), 0);
        // Another writer's numbers are its own.
        let other = row(20, "churn");
        assert_eq!(store.insert_predictions("w2", &encoded(&[other], 0)).await.expect("w2"), 1);
        // Out of order is refused, naming the numbers.
        let mut backwards = PredictionBatch::new();
        backwards.push_row(201, &batch[1]).expect("encode");
        backwards.push_row(200, &batch[0]).expect("encode");
        let refused = store.insert_predictions("w1", &backwards).await.expect_err("refused");
        assert!(refused.to_string().contains("200 after 201"), "{refused}");
        assert_eq!(store.count_predictions().await.expect("count"), 11);
    }

    a_batch_of_several_endpoints_is_one_transaction(store) {
        let batch: Vec<_> = (0..450).map(|n| row(n, if n % 3 == 0 { "big" } else { "other" })).collect();
        assert_eq!(store.insert_predictions("w1", &encoded(&batch, 0)).await.expect("insert"), 450);
        assert_eq!(store.count_predictions().await.expect("count"), 450);
        assert_eq!(store.list_prediction_ids("big", 0, i64::MAX).await.expect("ids").len(), 150);
        let read = store.get_prediction(&batch[301].id).await.expect("get").expect("stored");
        assert_eq!(read, batch[301]);
    }

    listing_by_endpoint_and_time_range(store) {
        let mut batch: Vec<_> = (0..6).map(|n| row(n, "churn")).collect();
        batch.extend((6..9).map(|n| row(n, "fraud")));
        store.insert_predictions("w1", &encoded(&batch, 0)).await.expect("insert");
        let base = 1_700_000_000_000;
        let ids = store.list_prediction_ids("churn", base + 1, base + 4).await.expect("ids");
        assert_eq!(ids, vec![batch[1].id.clone(), batch[2].id.clone(), batch[3].id.clone()]);
        let all = store.list_prediction_ids("fraud", 0, i64::MAX).await.expect("ids");
        assert_eq!(all.len(), 3);
        let limited = store.list_predictions("churn", 0, i64::MAX, 2).await.expect("records");
        assert_eq!(limited, batch[..2].to_vec());
        assert!(store.list_predictions("none", 0, i64::MAX, 10).await.expect("records").is_empty());
        assert_eq!(paged(&store, "churn", 4).await, batch[..6].to_vec());
    }

    pages_read_interleaved_segments_in_time_order(store) {
        // Two writers (replicas) whose batches overlap in time, each batch a segment.
        let rows: Vec<_> = (0..40).map(|n| row(n, "churn")).collect();
        let (even, odd): (Vec<_>, Vec<_>) = rows.iter().cloned().partition(|r| r.latency_us % 2 == 0);
        for (writer, part) in [("a", &even), ("b", &odd)] {
            for (i, chunk) in part.chunks(3).enumerate() {
                store.insert_predictions(writer, &encoded(chunk, 3 * i as u64)).await.expect("insert");
            }
        }
        for page in [1, 3, 7, 40] {
            assert_eq!(paged(&store, "churn", page).await, rows, "pages of {page}");
        }
    }

    profile_windows_are_rewritten_per_replica_and_read_across_replicas(store) {
        store
            .upsert_profile_windows(&[window(60_000, "a", 5), window(60_000, "b", 7)])
            .await
            .expect("write");
        // Replica a's window filled further: its row is replaced, not added to.
        store
            .upsert_profile_windows(&[window(60_000, "a", 9), window(120_000, "a", 1)])
            .await
            .expect("rewrite");
        let read = store.list_profile_windows("churn", 0, i64::MAX).await.expect("read");
        assert_eq!(read, vec![window(60_000, "a", 9), window(60_000, "b", 7), window(120_000, "a", 1)]);
        let later = store.list_profile_windows("churn", 61_000, i64::MAX).await.expect("read");
        assert_eq!(later, vec![window(120_000, "a", 1)]);
        assert!(store.list_profile_windows("other", 0, i64::MAX).await.expect("read").is_empty());
        assert_eq!(store.delete_profile_windows_before(120_000).await.expect("delete"), 2);
        assert_eq!(store.list_profile_windows("churn", 0, i64::MAX).await.expect("read").len(), 1);
    }

    rollouts_are_saved_with_their_policy_one_unfinished_per_endpoint(store) {
        let body = json!({"step": 0});
        let policy = json!({"primary": {"model": "churn", "version": 1}, "shadows": [{"model": "churn", "version": 2}]});
        let revision = store
            .save_rollout(&save("r1", "shadowing", false, None, &body, Some(&policy)), &change())
            .await
            .expect("create");
        assert_eq!(revision, 1);
        // The endpoint's policy and the audit event were written with it.
        assert_eq!(store.get_endpoint("churn-api").await.expect("read").expect("endpoint").policy, policy);
        let events = store
            .audit(&AuditFilter { subject_kind: Some("rollout".into()), ..AuditFilter::default() })
            .await
            .expect("audit");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].after, Some(body.clone()));
        // A second unfinished rollout on the endpoint is refused.
        let err = store
            .save_rollout(&save("r2", "canary", false, None, &body, None), &change())
            .await
            .expect_err("one unfinished rollout per endpoint");
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("r1")), "{err}");
        // A save over a revision someone else moved on from is refused; the right one passes.
        let step = json!({"step": 1});
        assert_eq!(
            store.save_rollout(&save("r1", "canary", false, Some(1), &step, None), &change()).await.expect("step"),
            2
        );
        let err = store
            .save_rollout(&save("r1", "paused", false, Some(1), &step, None), &change())
            .await
            .expect_err("stale revision");
        assert!(matches!(&err, StoreError::Conflict(m) if m.contains("revision 1")), "{err}");
        let done = json!({"done": true});
        store.save_rollout(&save("r1", "promoted", true, Some(2), &done, None), &change()).await.expect("finish");
        let read = store.get_rollout("r1").await.expect("read").expect("stored");
        assert_eq!((read.state.as_str(), read.finished, read.revision, &read.body), ("promoted", true, 3, &done));
        assert!(store.list_rollouts(Some("churn-api"), true, 10).await.expect("list").is_empty());
        // Finished, the endpoint takes a new rollout; listings are newest first.
        store.save_rollout(&save("r2", "canary", false, None, &body, None), &change()).await.expect("second");
        let all = store.list_rollouts(Some("churn-api"), false, 10).await.expect("list");
        assert_eq!(all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r2", "r1"]);
        assert_eq!(store.list_rollouts(None, true, 10).await.expect("list").len(), 1);
        assert!(store.list_rollouts(Some("other"), false, 10).await.expect("list").is_empty());
        assert!(store.get_rollout("nope").await.expect("read").is_none());
    }
}

/// Records kept one per row before migration 7 are still there after it (as a segment of JSON
/// lines), read back as they were written, beside the binary segments written after it.
async fn records_of_migration_2_survive_the_upgrade(url: &str) {
    use sqlx::AssertSqlSafe;
    let old = berth_store::testing::store_at_migration(url, 6)
        .await
        .expect("old store");
    drop(old);
    let stored = row(7, "churn");
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect");
    let insert = "INSERT INTO predictions (id, time_ms, endpoint, model, version, role, protocol, \
                  rows, latency_us, inputs, outputs) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    sqlx::query(AssertSqlSafe(insert))
        .bind(stored.id.clone())
        .bind(stored.time_ms)
        .bind(stored.endpoint.clone())
        .bind(stored.model.clone())
        .bind(stored.version)
        .bind(stored.role.clone())
        .bind(stored.protocol.clone())
        .bind(stored.rows)
        .bind(stored.latency_us)
        .bind(stored.inputs.to_string())
        .bind(stored.outputs.to_string())
        .execute(&mut db)
        .await
        .expect("old row");
    let store = berth_store::MetadataStore::connect(url)
        .await
        .expect("upgrade");
    assert_eq!(store.count_predictions().await.expect("count"), 1);
    assert_eq!(
        store.get_prediction(&stored.id).await.expect("get"),
        Some(stored.clone())
    );
    let newer = row(8, "churn");
    store
        .insert_predictions("w1", &encoded(std::slice::from_ref(&newer), 0))
        .await
        .expect("insert after the upgrade");
    assert_eq!(
        store
            .list_predictions("churn", 0, i64::MAX, 10)
            .await
            .expect("list"),
        vec![stored, newer]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_records_survive_the_upgrade_to_segments() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    records_of_migration_2_survive_the_upgrade(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_records_survive_the_upgrade_to_segments() {
    let Some(schema) = berth_store::testing::fresh_postgres_schema("upgrade").await else {
        return;
    };
    let url = berth_store::testing::postgres_url(berth_store::testing::PG_HOST_PORT, &schema);
    records_of_migration_2_survive_the_upgrade(&url).await;
}
