//! The registry's behaviour, each test run on SQLite and on PostgreSQL.

mod common;

use std::collections::BTreeSet;

use berth_registry::{ModelRef, RegisterRequest, RegistryError, Target};
use berth_store::AuditFilter;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::fixture_bytes;

const ACTOR: &str = "tester";

/// A valid XGBoost model whose bytes differ from the fixture's by trailing spaces.
fn variant(n: usize) -> Bytes {
    let mut bytes = fixture_bytes("xgb_regressor.json").to_vec();
    bytes.extend(std::iter::repeat_n(b' ', n));
    bytes.into()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

on_both_backends! {
    registration_infers_the_signature_and_numbers_versions(reg, _clock) {
        let v1 = reg
            .register("churn", "xgb_classifier.json", fixture_bytes("xgb_classifier.json"), RegisterRequest::default(), ACTOR)
            .await
            .expect("register");
        assert_eq!((v1.version, v1.format.as_str()), (1, "xgboost_json"));
        let inputs = v1.signature["inputs"].as_array().expect("inputs");
        assert_eq!(inputs.len(), 23);
        assert_eq!(inputs[0]["name"], "tenure_months");
        assert_eq!(inputs[0]["type"], "number");
        assert_eq!(v1.registered_by, ACTOR);

        let request = RegisterRequest {
            description: Some("LightGBM challenger".into()),
            tags: [("team".to_string(), "growth".to_string())].into(),
            metrics: [("auc".to_string(), 0.81)].into(),
            lineage: berth_store::Lineage { parent_version: Some(1), triggered_by: Some("manual".into()), code_ref: Some("abc123".into()), ..Default::default() },
            ..RegisterRequest::default()
        };
        let v2 = reg.register("churn", "lgbm_classifier.txt", fixture_bytes("lgbm_classifier.txt"), request, ACTOR).await.expect("register");
        assert_eq!(v2.version, 2);
        assert_eq!(v2.lineage.parent_version, Some(1));
        assert_eq!(v2.tags["team"], "growth");
        assert_eq!(v2.metrics["auc"], 0.81);

        let latest = reg.resolve(&"churn".parse().expect("ref")).await.expect("latest");
        assert_eq!(latest.version, 2);
        let bytes = reg.artifact(&latest).await.expect("artifact");
        assert_eq!(bytes, fixture_bytes("lgbm_classifier.txt"));
        let detail = reg.model("churn").await.expect("model");
        assert_eq!(detail.model.description, "LightGBM challenger");
        assert_eq!(detail.model.latest_version, Some(2));
        assert_eq!(detail.versions.len(), 2);
    }

    the_same_bytes_twice_are_reported_not_stored(reg, _clock) {
        reg.register("churn", "m.json", variant(0), RegisterRequest::default(), ACTOR).await.expect("first");
        let err = reg.register("churn", "m.json", variant(0), RegisterRequest::default(), ACTOR).await.unwrap_err();
        assert!(matches!(err, RegistryError::Duplicate(_)), "{err:?}");
        assert!(err.to_string().contains("churn/1 already has these exact bytes"), "{err}");
        assert_eq!(reg.model("churn").await.expect("model").versions.len(), 1);
        // Another model may hold the same bytes.
        let other = reg.register("churn-eu", "m.json", variant(0), RegisterRequest::default(), ACTOR).await.expect("other model");
        assert_eq!(other.version, 1);
    }

    concurrent_registrations_get_consecutive_numbers(reg, _clock) {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let reg = reg.clone();
                tokio::spawn(async move { reg.register("churn", "m.json", variant(i), RegisterRequest::default(), ACTOR).await })
            })
            .collect();
        let mut numbers = BTreeSet::new();
        for task in tasks {
            let v = task.await.expect("task").expect("register");
            assert!(numbers.insert(v.version), "version {} given twice", v.version);
        }
        assert_eq!(numbers, (1..=8).collect::<BTreeSet<i64>>());
        let audit = reg.audit(&AuditFilter { subject_kind: Some("version".into()), ..Default::default() }).await.expect("audit");
        assert_eq!(audit.len(), 8, "one audit row per registration");
    }

    an_unloadable_artifact_writes_nothing(reg, _clock) {
        let mut truncated = fixture_bytes("rf_classifier.onnx").to_vec();
        truncated.truncate(truncated.len() / 2);
        let err = reg.register("churn", "broken.onnx", truncated.into(), RegisterRequest::default(), ACTOR).await.unwrap_err();
        assert!(matches!(err, RegistryError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("cannot load model broken.onnx"), "{err}");
        assert!(reg.models().await.expect("models").is_empty());
        assert!(reg.audit(&AuditFilter::default()).await.expect("audit").is_empty());
    }

    a_failure_midway_leaves_no_half_written_version(reg, _clock) {
        // Failpoints are process-wide, keyed by model: a name of its own keeps the tests that
        // run alongside (on the other backend, or registering "churn") from tripping them.
        let model = format!("failing-{}", chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default());
        let model = model.as_str();
        for point in ["version.after_insert", "version.before_commit"] {
            berth_store::failpoint::arm(point, model);
            let err = reg.register(model, "m.json", variant(1), RegisterRequest::default(), ACTOR).await.unwrap_err();
            assert!(err.to_string().contains("injected failure"), "{err}");
            assert!(reg.models().await.expect("models").is_empty(), "{point}: the model row was rolled back");
            assert!(reg.audit(&AuditFilter::default()).await.expect("audit").is_empty(), "{point}: no audit row");
        }
        let v = reg.register(model, "m.json", variant(1), RegisterRequest::default(), ACTOR).await.expect("register");
        assert_eq!(v.version, 1, "the failed attempts used no number");

        berth_store::failpoint::arm("alias.before_audit", model);
        assert!(reg.set_alias(model, "champion", 1, ACTOR, None).await.is_err());
        assert!(reg.model(model).await.expect("model").aliases.is_empty(), "the alias move was rolled back");
    }

    unknown_names_are_named(reg, _clock) {
        reg.register("churn", "m.json", variant(0), RegisterRequest::default(), ACTOR).await.expect("register");
        let cases: [(&str, &str); 4] = [
            ("nope", "model 'nope' does not exist"),
            ("nope/1", "model 'nope' does not exist"),
            ("churn/9", "version 'churn/9' does not exist"),
            ("churn@champion", "alias 'churn@champion' does not exist"),
        ];
        for (r, msg) in cases {
            let err = reg.resolve(&r.parse::<ModelRef>().expect("ref")).await.unwrap_err();
            assert!(matches!(err, RegistryError::NotFound(_)), "{r}: {err:?}");
            assert!(err.to_string().contains(msg), "{r}: {err}");
        }
        let err = reg.set_alias("churn", "champion", 5, ACTOR, None).await.unwrap_err();
        assert!(matches!(err, RegistryError::NotFound(_)) && err.to_string().contains("churn/5"), "{err}");
        let err = reg.set_alias("nope", "champion", 1, ACTOR, None).await.unwrap_err();
        assert!(err.to_string().contains("model 'nope' does not exist"), "{err}");
        let err = reg.set_endpoint("api", Target::parse("churn@missing").expect("target"), ACTOR, None).await.unwrap_err();
        assert!(err.to_string().contains("alias 'churn@missing' does not exist"), "{err}");
        let err = reg.register("bad name", "m.json", variant(3), RegisterRequest::default(), ACTOR).await.unwrap_err();
        assert!(err.to_string().contains("invalid model name \"bad name\""), "{err}");
    }

    a_signature_that_does_not_fit_the_model_is_refused(reg, _clock) {
        let sig = berth_registry::parse_signature_yaml("sig.yaml", "inputs:\n  - {name: a, type: number}\n").expect("yaml");
        let request = RegisterRequest { signature: Some(sig), ..Default::default() };
        let err = reg.register("churn", "m.json", variant(0), request, ACTOR).await.unwrap_err();
        assert!(err.to_string().contains("1 inputs for a model of 23 feature columns"), "{err}");
        assert!(reg.models().await.expect("models").is_empty());
    }

    live_at_t_replays_alias_moves(reg, clock) {
        clock.set(t("2026-11-17T08:00:00Z"));
        for i in 0..3 {
            reg.register("churn", "m.json", variant(i), RegisterRequest::default(), ACTOR).await.expect("register");
        }
        clock.set(t("2026-11-17T09:00:00Z"));
        reg.set_alias("churn", "champion", 1, "alice", Some("first release".into())).await.expect("alias");
        reg.set_endpoint("churn-api", Target::parse("churn@champion").expect("target"), "alice", None).await.expect("endpoint");
        clock.set(t("2026-11-17T10:00:00Z"));
        let before = reg.set_alias("churn", "champion", 2, "bob", Some("better AUC".into())).await.expect("alias");
        assert_eq!(before, Some(1));
        clock.set(t("2026-11-17T11:00:00Z"));
        reg.set_alias("churn", "challenger", 3, "carol", None).await.expect("alias");
        reg.set_endpoint("churn-pinned", Target::parse("churn/1").expect("target"), "carol", None).await.expect("endpoint");
        clock.set(t("2026-11-17T12:00:00Z"));
        reg.set_alias("churn", "champion", 3, "carol", Some("promote".into())).await.expect("alias");
        reg.delete_alias("churn", "challenger", "carol", None).await.expect("delete");

        let at = |s: &str| {
            let reg = reg.clone();
            let when = t(s);
            async move { reg.live_at(Some("churn"), when).await.expect("live") }
        };
        let early = at("2026-11-17T08:30:00Z").await;
        assert!(early.aliases.is_empty() && early.endpoints.is_empty());

        let s = at("2026-11-17T09:30:00Z").await;
        assert_eq!(s.aliases.len(), 1);
        assert_eq!((s.aliases[0].alias.as_str(), s.aliases[0].version, s.aliases[0].changed_by.as_str()), ("champion", 1, "alice"));
        assert_eq!(s.endpoints[0].endpoint, "churn-api");
        assert_eq!((s.endpoints[0].target.as_str(), s.endpoints[0].version), ("churn@champion", Some(1)));

        // At the very moment of a change, the change has happened.
        let s = at("2026-11-17T10:00:00Z").await;
        assert_eq!((s.aliases[0].version, s.aliases[0].changed_by.as_str()), (2, "bob"));
        assert_eq!(s.aliases[0].reason.as_deref(), Some("better AUC"));
        assert_eq!(s.endpoints[0].version, Some(2), "the endpoint follows its alias");

        let s = at("2026-11-17T11:30:00Z").await;
        let names: Vec<_> = s.aliases.iter().map(|a| (a.alias.as_str(), a.version)).collect();
        assert_eq!(names, [("challenger", 3), ("champion", 2)]);
        let endpoints: Vec<_> = s.endpoints.iter().map(|e| (e.endpoint.as_str(), e.version)).collect();
        assert_eq!(endpoints, [("churn-api", Some(2)), ("churn-pinned", Some(1))]);

        let s = at("2026-11-18T00:00:00Z").await;
        let names: Vec<_> = s.aliases.iter().map(|a| (a.alias.as_str(), a.version, a.changed_by.as_str())).collect();
        assert_eq!(names, [("champion", 3, "carol")], "challenger was removed");

        let moves = reg
            .audit(&AuditFilter { subject: Some("churn@champion".into()), ..Default::default() })
            .await
            .expect("audit");
        let trail: Vec<_> = moves.iter().map(|e| (e.before.clone(), e.after.clone(), e.actor.as_str())).collect();
        assert_eq!(
            trail,
            [
                (None, Some(serde_json::json!({"version": 1})), "alice"),
                (Some(serde_json::json!({"version": 1})), Some(serde_json::json!({"version": 2})), "bob"),
                (Some(serde_json::json!({"version": 2})), Some(serde_json::json!({"version": 3})), "carol"),
            ]
        );
    }
}
