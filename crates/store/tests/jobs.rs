//! Scheduled jobs in the store, on SQLite and on PostgreSQL: adding (refused twice unless
//! replacing), pausing and removing are audited; a tick's run is claimed once however many
//! claim it, and not at all for a paused job unless run by hand; runs finish with their summary
//! and log; a run whose runner stopped reporting is marked failed.
//!
//! PostgreSQL (127.0.0.1:5432, database `test`, a schema of its own per test) is skipped with a
//! message when it is not reachable, unless `BERTH_REQUIRE_SERVICES=1`.

use berth_store::testing::fresh_store;
use berth_store::{AuditFilter, Change, RunStatus, StoreError};
use chrono::{TimeZone, Utc};
use serde_json::json;

fn change(reason: &str) -> Change {
    Change {
        actor: "tester".into(),
        reason: Some(reason.into()),
        at: Utc::now(),
    }
}

async fn jobs_and_runs(backend: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(store) = fresh_store(backend, dir.path(), "jobs").await else {
        return;
    };
    let spec = json!({"target": "churn", "input": "in.csv", "output": "out.csv"});
    let job = store
        .put_job("nightly", "0 2 * * *", &spec, false, &change("add"))
        .await
        .expect("add");
    assert!(job.enabled);
    assert_eq!(job.spec, spec);
    match store
        .put_job("nightly", "0 3 * * *", &spec, false, &change("again"))
        .await
    {
        Err(StoreError::Conflict(m)) => assert!(m.contains("nightly"), "{m}"),
        other => panic!("{backend}: expected a conflict, got {other:?}"),
    }
    let replaced = store
        .put_job("nightly", "0 3 * * *", &spec, true, &change("replace"))
        .await
        .expect("replace");
    assert_eq!(replaced.schedule, "0 3 * * *");

    // Eight claims of one tick: one wins.
    let tick = Utc
        .with_ymd_and_hms(2026, 12, 6, 3, 0, 0)
        .single()
        .expect("tick");
    let claims = (0..8).map(|i| {
        let store = store.clone();
        async move {
            store
                .claim_job_run(&format!("run-{i}"), "nightly", tick, &format!("r{i}"), true)
                .await
                .expect("claim")
        }
    });
    let won: Vec<_> = futures::future::join_all(claims)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(won.len(), 1, "{backend}: one claim of a tick wins");
    let run = &won[0];
    assert_eq!(run.status, RunStatus::Running);
    store
        .finish_job_run(
            &run.id,
            RunStatus::Succeeded,
            Some(&json!({"rows": 10})),
            "done\n",
        )
        .await
        .expect("finish");
    let runs = store.list_job_runs("nightly", 10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    assert_eq!(runs[0].summary, Some(json!({"rows": 10})));
    assert_eq!(runs[0].log, "done\n");
    assert_eq!(runs[0].scheduled_for, tick);
    assert_eq!(
        store.last_job_tick("nightly").await.expect("tick"),
        Some(tick)
    );
    assert_eq!(store.last_job_tick("other").await.expect("tick"), None);

    // Paused: the schedule's claims fail, a run by hand does not.
    assert!(
        store
            .set_job_enabled("nightly", false, &change("pause"))
            .await
            .expect("pause")
    );
    let next = tick + chrono::Duration::days(1);
    assert!(
        store
            .claim_job_run("sched", "nightly", next, "r", true)
            .await
            .expect("claim")
            .is_none(),
        "{backend}: a paused job's tick is not claimed"
    );
    let by_hand = store
        .claim_job_run("hand", "nightly", next, "r", false)
        .await
        .expect("claim")
        .expect("a run by hand");
    // Its runner dies without finishing: after a minute of silence it is failed.
    assert_eq!(
        store
            .fail_abandoned_runs(Utc::now() - chrono::Duration::minutes(1))
            .await
            .expect("sweep"),
        0,
        "{backend}: a fresh run is not abandoned"
    );
    store
        .heartbeat_job_run(&by_hand.id)
        .await
        .expect("heartbeat");
    assert_eq!(
        store
            .fail_abandoned_runs(Utc::now() + chrono::Duration::seconds(1))
            .await
            .expect("sweep"),
        1
    );
    let runs = store.list_job_runs("nightly", 10).await.expect("runs");
    assert_eq!(runs[0].id, "hand");
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(runs[0].log.contains("abandoned"), "{}", runs[0].log);

    // Removed: gone, its runs kept; a claim for it fails.
    assert!(
        store
            .delete_job("nightly", &change("remove"))
            .await
            .expect("remove")
    );
    assert!(
        !store
            .delete_job("nightly", &change("remove"))
            .await
            .expect("remove")
    );
    assert!(store.get_job("nightly").await.expect("get").is_none());
    assert_eq!(
        store
            .list_job_runs("nightly", 10)
            .await
            .expect("runs")
            .len(),
        2
    );
    assert!(
        store
            .claim_job_run(
                "late",
                "nightly",
                next + chrono::Duration::days(1),
                "r",
                false
            )
            .await
            .expect("claim")
            .is_none()
    );
    let audit = store
        .audit(&AuditFilter {
            subject_kind: Some("job".into()),
            ..AuditFilter::default()
        })
        .await
        .expect("audit");
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in ["job.add", "job.replace", "job.disable", "job.remove"] {
        assert!(
            actions.contains(&action),
            "{backend}: {action} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn jobs_on_sqlite() {
    jobs_and_runs("sqlite").await;
}

#[tokio::test]
async fn jobs_on_postgres() {
    jobs_and_runs("postgres").await;
}
