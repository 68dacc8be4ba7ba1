//! The admin REST API through its router (no network): statuses, bodies, errors, and the
//! OpenAPI document. On SQLite, plus one walk through the API on PostgreSQL.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use berth_registry::{ModelRef, Registry};
use chrono::{DateTime, Utc};
use common::{Api, Backend, error, fixture_base64};
use serde_json::{Value, json};

const PUT: Method = Method::PUT;
const POST: Method = Method::POST;
const DELETE: Method = Method::DELETE;

async fn sqlite() -> Api {
    common::api(Backend::Sqlite).await.expect("SQLite store")
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

/// The registry's own JSON for a version, to compare the API's with.
async fn version_json(registry: &Registry, reference: &str) -> Value {
    let r: ModelRef = reference.parse().expect("reference");
    serde_json::to_value(registry.resolve(&r).await.expect("resolves")).expect("json")
}

fn actions(events: &Value) -> Vec<(String, String, String)> {
    events
        .as_array()
        .expect("a list of events")
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (text("action"), text("subject"), text("actor"))
        })
        .collect()
}

#[tokio::test]
async fn registering_returns_201_with_version_1_and_what_was_given() {
    let api = sqlite().await;
    let (status, body) = api.get("/api/v1/models").await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));

    let (status, v1) = api.register("churn", "xgb_classifier.json").await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["model"], "churn");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["format"], "xgboost_json");
    assert_eq!(v1["registered_by"], "api");
    assert_eq!(v1["signature"]["inputs"][0]["name"], "tenure_months");
    assert_eq!(v1["signature"]["inputs"].as_array().map(Vec::len), Some(23));

    let reference = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/data/eval_features.csv"),
    )
    .expect("reference data");
    let body = json!({
        "file_name": "lgbm_classifier.txt",
        "artifact_base64": fixture_base64("lgbm_classifier.txt"),
        "description": "LightGBM challenger",
        "tags": {"team": "growth"},
        "metrics": {"auc": 0.81},
        "parent_version": 1,
        "triggered_by": "manual",
        "code_ref": "abc123",
        "reason": "retrained on November",
        "reference_file_name": "eval_features.csv",
        "reference_base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, reference),
    });
    let (status, v2) = api
        .call(
            POST,
            "/api/v1/models/churn/versions",
            Some(&body),
            Some("alice"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["format"], "lightgbm_text");
    assert_eq!(v2["registered_by"], "alice");
    assert_eq!(v2["tags"], json!({"team": "growth"}));
    assert_eq!(v2["metrics"], json!({"auc": 0.81}));
    assert_eq!(v2["lineage"]["parent_version"], 1);
    assert_eq!(v2["lineage"]["code_ref"], "abc123");
    assert!(v2["reference_sha256"].is_string(), "{v2}");

    // The API's JSON is the registry's, field for field.
    let (status, shown) = api.get("/api/v1/models/churn/versions/2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, version_json(&api.registry, "churn/2").await);
    assert_eq!(shown, v2);

    let (status, detail) = api.get("/api/v1/models/churn").await;
    assert_eq!(status, StatusCode::OK);
    let expected =
        serde_json::to_value(api.registry.model("churn").await.expect("model")).expect("json");
    assert_eq!(detail, expected);
    assert_eq!(detail["model"]["description"], "LightGBM challenger");
    assert_eq!(detail["model"]["latest_version"], 2);
    assert_eq!(detail["versions"].as_array().map(Vec::len), Some(2));

    let (status, models) = api.get("/api/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(models.as_array().map(Vec::len), Some(1));
    assert_eq!(models[0]["name"], "churn");
    assert_eq!(models[0]["latest_version"], 2);
}

#[tokio::test]
async fn registering_the_same_bytes_again_is_409_naming_the_version() {
    let api = sqlite().await;
    assert_eq!(
        api.register("churn", "xgb_classifier.json").await.0,
        StatusCode::CREATED
    );
    let (status, body) = api.register("churn", "xgb_classifier.json").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        error(&body).contains("churn/1 already has these exact bytes"),
        "{body}"
    );
    let (_, detail) = api.get("/api/v1/models/churn").await;
    assert_eq!(detail["versions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn unknown_models_versions_and_aliases_are_404_naming_them() {
    let api = sqlite().await;
    for uri in [
        "/api/v1/models/ghost",
        "/api/v1/models/ghost/versions/1",
        "/api/v1/history?model=ghost",
    ] {
        let (status, body) = api.get(uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
        assert_eq!(error(&body), "model 'ghost' does not exist", "{uri}");
    }
    let (status, body) = api.get("/api/v1/models/ghost/aliases/champion").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "alias 'ghost@champion' does not exist");
    let (status, body) = api
        .call(
            PUT,
            "/api/v1/models/ghost/aliases/champion",
            Some(&json!({"version": 1})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "model 'ghost' does not exist");

    api.register("churn", "xgb_classifier.json").await;
    let (status, body) = api.get("/api/v1/models/churn/versions/3").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "version 'churn/3' does not exist");
}

#[tokio::test]
async fn bad_names_and_numbers_are_400_saying_why() {
    let api = sqlite().await;
    let (status, body) = api.get("/api/v1/models/-churn").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body)
            .contains("invalid model name \"-churn\": it must start with a letter or digit"),
        "{body}"
    );

    let (status, body) = api.register("ch%20urn", "xgb_classifier.json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("' ' is not allowed"), "{body}");

    for version in ["x", "0", "-1"] {
        let (status, body) = api
            .get(&format!("/api/v1/models/churn/versions/{version}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{version}");
        assert_eq!(
            error(&body),
            format!("invalid version {version:?}: expected a number from 1")
        );
    }

    let (status, body) = api.get("/api/v1/models/churn/aliases/7").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("cannot be a number"), "{body}");

    let (status, body) = api
        .call(
            PUT,
            "/api/v1/endpoints/-api",
            Some(&json!({"target": "churn/1"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).contains("invalid endpoint name \"-api\""),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_bodies_are_400_json_errors_naming_the_field() {
    let api = sqlite().await;
    let uri = "/api/v1/models/churn/versions";
    let send_raw = |body: &'static str| {
        Request::builder()
            .method(POST)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request")
    };

    let (status, body) = api.send(send_raw(r#"{"file_name": "m.json", "#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).contains("Failed to parse the request body as JSON"),
        "{body}"
    );

    let xgb = fixture_base64("xgb_classifier.json");
    for (request, field) in [
        (json!({"file_name": "m.json"}), "artifact_base64"),
        (
            json!({"file_name": "m.json", "artifact": xgb}),
            "unknown field `artifact`",
        ),
        (
            json!({"file_name": "m.json", "artifact_base64": xgb, "metrics": {"auc": "high"}}),
            "metrics.auc",
        ),
        (
            json!({"file_name": "m.json", "artifact_base64": xgb, "signature": {"inputs": [{"nam": "x"}]}}),
            "signature.inputs[0]",
        ),
        (
            json!({"file_name": "m.json", "artifact_base64": "not base64!"}),
            "artifact_base64 is not valid base64",
        ),
        (
            json!({"file_name": "m.json", "artifact_base64": ""}),
            "artifact_base64 is empty",
        ),
        (
            json!({"file_name": "m.json", "artifact_base64": xgb, "reference_file_name": "ref.csv"}),
            "reference_file_name is given without reference_base64",
        ),
    ] {
        let (status, body) = api.call(POST, uri, Some(&request), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert!(error(&body).contains(field), "{field}: {body}");
    }

    // Valid base64 of a file that is no model: the registry refuses it.
    let garbage = json!({"file_name": "m.json", "artifact_base64": "bm90IGEgbW9kZWw="});
    let (status, body) = api.call(POST, uri, Some(&garbage), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error(&body).contains("m.json"), "{body}");

    // A body that is not declared JSON.
    let request = Request::builder()
        .method(POST)
        .uri(uri)
        .body(Body::from(garbage.to_string()))
        .expect("request");
    let (status, body) = api.send(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        error(&body).contains("Content-Type: application/json"),
        "{body}"
    );

    // An actor header that is not text.
    let request = Request::builder()
        .method(POST)
        .uri(uri)
        .header("content-type", "application/json")
        .header(
            "x-berth-actor",
            axum::http::HeaderValue::from_bytes(b"caf\xe9").expect("header"),
        )
        .body(Body::from(garbage.to_string()))
        .expect("request");
    let (status, body) = api.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body),
        "header x-berth-actor must be visible ASCII text"
    );

    let (status, body) = api
        .call(
            PUT,
            "/api/v1/models/churn/aliases/champion",
            Some(&json!({"version": "two"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("version"), "{body}");

    let request = Request::builder()
        .method(DELETE)
        .uri("/api/v1/models/churn/aliases/champion")
        .body(Body::from("{reason"))
        .expect("request");
    let (status, body) = api.send(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error(&body).starts_with("invalid JSON body"), "{body}");

    assert_eq!(api.get("/api/v1/models").await.1, json!([]));
}

#[tokio::test]
async fn aliases_are_set_read_moved_and_deleted() {
    let api = sqlite().await;
    api.register("churn", "xgb_classifier.json").await;
    api.register("churn", "lgbm_classifier.txt").await;
    let alias = "/api/v1/models/churn/aliases/champion";

    let (status, body) = api
        .call(PUT, alias, Some(&json!({"version": 1})), Some("bob"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"model": "churn", "alias": "champion", "version": 1, "previous_version": null})
    );
    let (status, body) = api
        .call(
            PUT,
            alias,
            Some(&json!({"version": 2, "reason": "better auc"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["previous_version"], 1);

    let (status, body) = api.get(alias).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, version_json(&api.registry, "churn/2").await);

    let (_, detail) = api.get("/api/v1/models/churn").await;
    assert_eq!(detail["aliases"][0]["alias"], "champion");
    assert_eq!(detail["aliases"][0]["version"], 2);

    let (status, body) = api
        .call(PUT, alias, Some(&json!({"version": 9})), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "version churn/9 does not exist");

    let (status, body) = api.call(DELETE, alias, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"model": "churn", "alias": "champion", "previous_version": 2})
    );
    let (status, body) = api.get(alias).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "alias 'churn@champion' does not exist");
    let (status, body) = api
        .call(DELETE, alias, Some(&json!({"reason": "again"})), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "alias 'churn@champion' does not exist");
}

#[tokio::test]
async fn endpoints_point_at_versions_or_existing_aliases() {
    let api = sqlite().await;
    api.register("churn", "xgb_classifier.json").await;
    let endpoint = "/api/v1/endpoints/churn-api";

    let (status, body) = api
        .call(
            PUT,
            endpoint,
            Some(&json!({"target": "churn@champion"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "alias 'churn@champion' does not exist");

    let (status, body) = api
        .call(PUT, endpoint, Some(&json!({"target": "ghost/1"})), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error(&body), "model 'ghost' does not exist");

    let (status, body) = api
        .call(PUT, endpoint, Some(&json!({"target": "churn"})), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).contains("must name a version or an alias"),
        "{body}"
    );
    assert_eq!(api.get("/api/v1/endpoints").await.1, json!([]));

    let (status, body) = api
        .call(
            PUT,
            endpoint,
            Some(&json!({"target": "churn/1", "reason": "launch"})),
            Some("ops"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "churn-api");
    assert_eq!(
        body["policy"],
        json!({"primary": {"model": "churn", "version": 1}})
    );
    assert_eq!(body["updated_by"], "ops");

    let (status, list) = api.get("/api/v1/endpoints").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([body]));
}

#[tokio::test]
async fn history_answers_what_was_live_at_a_time() {
    let api = sqlite().await;
    api.clock.set(t("2025-06-01T09:00:00Z"));
    api.register("churn", "xgb_classifier.json").await;
    api.register("churn", "lgbm_classifier.txt").await;
    api.clock.set(t("2025-06-01T10:00:00Z"));
    let alias = "/api/v1/models/churn/aliases/champion";
    api.call(PUT, alias, Some(&json!({"version": 1})), Some("bob"))
        .await;
    let (status, _) = api
        .call(
            PUT,
            "/api/v1/endpoints/churn-api",
            Some(&json!({"target": "churn@champion"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.clock.set(t("2025-06-01T11:00:00Z"));
    api.call(
        PUT,
        alias,
        Some(&json!({"version": 2, "reason": "better auc"})),
        Some("carol"),
    )
    .await;

    let (status, live) = api
        .get("/api/v1/history?model=churn&at=2025-06-01T10:30:00Z")
        .await;
    assert_eq!(status, StatusCode::OK, "{live}");
    assert_eq!(live["at"], "2025-06-01T10:30:00Z");
    assert_eq!(
        live["aliases"],
        json!([{"model": "churn", "alias": "champion", "version": 1,
                "changed_at": "2025-06-01T10:00:00Z", "changed_by": "bob", "reason": null}])
    );
    assert_eq!(live["endpoints"][0]["endpoint"], "churn-api");
    assert_eq!(live["endpoints"][0]["target"], "churn@champion");
    assert_eq!(live["endpoints"][0]["version"], 1);

    // The same instant written with an offset ('+' encoded in the query string).
    let (status, same) = api
        .get("/api/v1/history?model=churn&at=2025-06-01T11:30:00%2B01:00")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same, live);

    // Without `at`: now.
    let (status, now) = api.get("/api/v1/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(now["aliases"][0]["version"], 2);
    assert_eq!(now["aliases"][0]["reason"], "better auc");
    assert_eq!(now["endpoints"][0]["version"], 2);

    let (status, before) = api.get("/api/v1/history?at=2025-06-01T08:00:00Z").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&before["aliases"], &before["endpoints"]),
        (&json!([]), &json!([]))
    );

    let (status, body) = api.get("/api/v1/history?at=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error(&body).starts_with("invalid at \"yesterday\":"),
        "{body}"
    );
    assert!(error(&body).contains("RFC 3339"), "{body}");
}

#[tokio::test]
async fn the_audit_log_lists_who_changed_what_filtered() {
    let api = sqlite().await;
    api.clock.set(t("2025-06-01T09:00:00Z"));
    let body = json!({"file_name": "m.json", "artifact_base64": fixture_base64("xgb_classifier.json"), "reason": "first"});
    api.call(
        POST,
        "/api/v1/models/churn/versions",
        Some(&body),
        Some("alice"),
    )
    .await;
    api.clock.set(t("2025-06-01T10:00:00Z"));
    let alias = "/api/v1/models/churn/aliases/champion";
    api.call(
        PUT,
        alias,
        Some(&json!({"version": 1, "reason": "launch"})),
        Some("bob"),
    )
    .await;
    api.clock.set(t("2025-06-01T11:00:00Z"));
    api.call(
        DELETE,
        alias,
        Some(&json!({"reason": "incident"})),
        Some("carol"),
    )
    .await;

    let (status, events) = api.get("/api/v1/audit?model=churn").await;
    assert_eq!(status, StatusCode::OK);
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        actions(&events),
        [
            s("model.create", "churn", "alice"),
            s("version.register", "churn/1", "alice"),
            s("alias.set", "churn@champion", "bob"),
            s("alias.delete", "churn@champion", "carol"),
        ]
    );
    assert_eq!(events[2]["reason"], "launch");
    assert_eq!(events[2]["after"], json!({"version": 1}));
    assert_eq!(events[3]["reason"], "incident");

    let (_, events) = api
        .get("/api/v1/audit?subject=churn@champion&limit=1")
        .await;
    assert_eq!(
        actions(&events),
        [s("alias.delete", "churn@champion", "carol")]
    );
    let (_, events) = api
        .get("/api/v1/audit?since=2025-06-01T09:30:00Z&until=2025-06-01T10:30:00Z")
        .await;
    assert_eq!(actions(&events), [s("alias.set", "churn@champion", "bob")]);
    let (_, events) = api.get("/api/v1/audit?model=other").await;
    assert_eq!(events, json!([]));

    for (query, message) in [
        ("limit=0", "invalid limit \"0\": expected a number from 1"),
        (
            "limit=ten",
            "invalid limit \"ten\": expected a number from 1",
        ),
        ("since=monday", "invalid since \"monday\""),
        ("until=2025-13-01T00:00:00Z", "invalid until"),
        ("model=-x", "invalid model name"),
    ] {
        let (status, body) = api.get(&format!("/api/v1/audit?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(error(&body).starts_with(message), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_store_failure_is_a_500_json_error_and_changes_nothing() {
    let api = sqlite().await;
    // A model of its own: failpoints are shared by the tests running in this process.
    api.register("fragile", "xgb_classifier.json").await;
    berth_store::failpoint::arm("alias.before_audit", "fragile");
    let alias = "/api/v1/models/fragile/aliases/champion";
    let (status, body) = api
        .call(PUT, alias, Some(&json!({"version": 1})), None)
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        error(&body).contains("injected failure at alias.before_audit"),
        "{body}"
    );
    assert_eq!(api.get(alias).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn openapi_json_is_generated_and_documents_every_route() {
    let api = sqlite().await;
    let (status, doc) = api.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    assert_eq!(doc["info"]["title"], "berth admin API");
    for (path, methods) in [
        ("/api/v1/models", &["get"][..]),
        ("/api/v1/models/{name}", &["get"]),
        ("/api/v1/models/{name}/versions", &["post"]),
        ("/api/v1/models/{name}/versions/{version}", &["get"]),
        (
            "/api/v1/models/{name}/aliases/{alias}",
            &["get", "put", "delete"],
        ),
        ("/api/v1/endpoints", &["get"]),
        ("/api/v1/endpoints/{name}", &["put"]),
        ("/api/v1/history", &["get"]),
        ("/api/v1/audit", &["get"]),
        ("/api/v1/openapi.json", &["get"]),
    ] {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    assert_eq!(doc["paths"].as_object().map(|p| p.len()), Some(10));

    let register = &doc["paths"]["/api/v1/models/{name}/versions"]["post"];
    assert_eq!(
        register["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RegisterVersion"
    );
    assert_eq!(
        register["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Version"
    );
    assert_eq!(
        register["responses"]["409"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    let history_params: Vec<&str> = doc["paths"]["/api/v1/history"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(history_params, ["model", "at"]);

    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Version",
        "RegisterVersion",
        "ModelDetail",
        "LiveState",
        "AuditEvent",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is missing");
    }
    let required = schemas["RegisterVersion"]["required"]
        .as_array()
        .expect("required");
    assert!(required.contains(&json!("file_name")) && required.contains(&json!("artifact_base64")));
    assert!(schemas["Version"]["properties"]["registered_at"]["format"] == "date-time");
}

#[tokio::test]
async fn the_api_works_on_postgresql() {
    let Some(api) = common::api(Backend::Postgres).await else {
        return;
    };
    let (status, v1) = api.register("churn", "xgb_classifier.json").await;
    assert_eq!((status, &v1["version"]), (StatusCode::CREATED, &json!(1)));
    let (status, body) = api.register("churn", "xgb_classifier.json").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error(&body).contains("churn/1 already has these exact bytes"));
    let (status, body) = api.get("/api/v1/models/ghost").await;
    assert_eq!(
        (status, error(&body)),
        (StatusCode::NOT_FOUND, "model 'ghost' does not exist")
    );

    let alias = "/api/v1/models/churn/aliases/champion";
    let (status, body) = api
        .call(PUT, alias, Some(&json!({"version": 1})), Some("bob"))
        .await;
    assert_eq!(
        (status, &body["previous_version"]),
        (StatusCode::OK, &Value::Null)
    );
    let (status, body) = api
        .call(
            PUT,
            "/api/v1/endpoints/churn-api",
            Some(&json!({"target": "churn@champion"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, live) = api.get("/api/v1/history?model=churn").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(live["aliases"][0]["version"], 1);
    assert_eq!(live["endpoints"][0]["version"], 1);
    let (_, events) = api.get("/api/v1/audit?model=churn").await;
    let alias_set = (
        "alias.set".to_string(),
        "churn@champion".to_string(),
        "bob".to_string(),
    );
    assert!(actions(&events).contains(&alias_set), "{events}");
    let (status, body) = api.call(DELETE, alias, None, None).await;
    assert_eq!(
        (status, &body["previous_version"]),
        (StatusCode::OK, &json!(1))
    );
}
