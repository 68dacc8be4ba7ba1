//! The serving-side tables on SQLite and on PostgreSQL: `predictions` (idempotent batch
//! inserts, counts, reads by id and by endpoint and time range), `profile_windows` (a replica's
//! rewrite of a window replaces its row; readers get every replica's rows of a range) and
//! `rollouts` (one unfinished per endpoint, optimistic revisions, saved with the endpoint's
//! policy and the audit event in one transaction).
//!
//! PostgreSQL (127.0.0.1:5432, database `test`, a schema of its own per test) is skipped with a
//! message when it is not reachable, unless `BERTH_REQUIRE_SERVICES=1`.

use berth_store::testing::fresh_store;
use berth_store::{AuditFilter, Change, PredictionRow, ProfileWindowRow, RolloutSave, StoreError};
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
        assert_eq!(store.insert_predictions(&batch).await.expect("insert"), 5);
        assert_eq!(store.count_predictions().await.expect("count"), 5);
        let read = store.get_prediction(&batch[3].id).await.expect("get").expect("stored");
        assert_eq!(read, batch[3]);
        assert!(store.get_prediction("no-such-id").await.expect("get").is_none());
    }

    the_same_records_twice_are_stored_once(store) {
        let batch: Vec<_> = (0..10).map(|n| row(n, "churn")).collect();
        assert_eq!(store.insert_predictions(&batch[..6]).await.expect("insert"), 6);
        // Overlaps the first write, and repeats one id inside the batch itself.
        let mut again = batch[4..].to_vec();
        again.push(batch[9].clone());
        assert_eq!(store.insert_predictions(&again).await.expect("insert again"), 4);
        assert_eq!(store.count_predictions().await.expect("count"), 10);
        assert_eq!(store.insert_predictions(&[]).await.expect("empty"), 0);
    }

    batches_larger_than_one_statement_are_one_transaction(store) {
        let batch: Vec<_> = (0..450).map(|n| row(n, "big")).collect();
        assert_eq!(store.insert_predictions(&batch).await.expect("insert"), 450);
        assert_eq!(store.count_predictions().await.expect("count"), 450);
    }

    listing_by_endpoint_and_time_range(store) {
        let mut batch: Vec<_> = (0..6).map(|n| row(n, "churn")).collect();
        batch.extend((6..9).map(|n| row(n, "fraud")));
        store.insert_predictions(&batch).await.expect("insert");
        let base = 1_700_000_000_000;
        let ids = store.list_prediction_ids("churn", base + 1, base + 4).await.expect("ids");
        assert_eq!(ids, vec![batch[1].id.clone(), batch[2].id.clone(), batch[3].id.clone()]);
        let all = store.list_prediction_ids("fraud", 0, i64::MAX).await.expect("ids");
        assert_eq!(all.len(), 3);
        let limited = store.list_predictions("churn", 0, i64::MAX, 2).await.expect("records");
        assert_eq!(limited, batch[..2].to_vec());
        assert!(store.list_predictions("none", 0, i64::MAX, 10).await.expect("records").is_empty());
        // Pages of 4 after the last row of the previous page read every row once, in order.
        let mut paged = Vec::new();
        let mut after: Option<(i64, String)> = None;
        loop {
            let page = store
                .page_predictions("churn", 0, i64::MAX, after.as_ref().map(|(t, id)| (*t, id.as_str())), 4)
                .await
                .expect("page");
            let Some(last) = page.last() else { break };
            after = Some((last.time_ms, last.id.clone()));
            paged.extend(page);
        }
        assert_eq!(paged, batch[..6].to_vec());
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
