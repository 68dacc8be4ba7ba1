//! Every answered prediction is on record exactly once: under the id the answer carries
//! (`x-berth-prediction-id`), with the endpoint called, the version and protocol that answered,
//! the inputs as the signature names them (a category by its value) and the outputs.

mod serving;

use std::collections::HashMap;

use axum::http::Method;
use berth_core::FieldType;
use berth_records::{Durability, Recorder, RecorderConfig};
use berth_serve::deployment::Watchers;
use berth_store::MetadataStore;
use serde_json::{Value, json};

use serving::{deployed_with, eval_rows, send};

async fn recorder(dir: &std::path::Path) -> (Recorder, MetadataStore) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("berth.db").display());
    let store = MetadataStore::connect(&url).await.expect("store");
    let config = RecorderConfig {
        spool_dir: dir.join("spool"),
        flush_interval_ms: 20,
        ..RecorderConfig::default()
    };
    let recorder = Recorder::open(config, store.clone())
        .await
        .expect("recorder");
    (recorder, store)
}

fn prediction_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-berth-prediction-id")
        .and_then(|v| v.to_str().ok())
        .expect("a prediction id")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_on_record_once_whatever_the_protocol() {
    for durability in [Durability::Group, Durability::Sync] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (recorder, store) = recorder(dir.path()).await;
        let watchers = Watchers {
            recorder: Some((recorder.clone(), durability)),
            ..Watchers::default()
        };
        // `plan` (codes 0..3 in the fixtures) is a category by name here.
        let plans = ["basic", "standard", "premium", "family"];
        let routes = deployed_with("xgb_classifier.json", "churn", watchers, |s| {
            let plan = s
                .inputs
                .iter_mut()
                .find(|f| f.name == "plan")
                .expect("plan");
            plan.field_type = FieldType::Category {
                values: plans.iter().map(|p| p.to_string()).collect(),
            };
        });
        let app = berth_serve::inference_router(routes);
        let (names, mut rows) = eval_rows(6);
        let plan = names.iter().position(|n| n == "plan").expect("plan");
        for (r, row) in rows.iter_mut().enumerate() {
            row[plan] = json!(plans[r % plans.len()]);
        }
        let records: Vec<Value> = rows
            .iter()
            .map(|row| Value::Object(names.iter().cloned().zip(row.iter().cloned()).collect()))
            .collect();

        let mut answered: HashMap<String, (&str, usize)> = HashMap::new();
        // V2 with one tensor per field (the category needs BYTES), two rows.
        let inputs: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(c, n)| {
                let datatype = if c == plan { "BYTES" } else { "FP64" };
                json!({"name": n, "shape": [2], "datatype": datatype, "data": [rows[0][c], rows[1][c]]})
            })
            .collect();
        let body = json!({"id": "client-chosen", "inputs": inputs}).to_string();
        let (status, headers, text) = send(
            &app,
            Method::POST,
            "/v2/models/churn/infer",
            "application/json",
            body,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let v2: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v2["id"], "client-chosen", "V2 echoes the request's id");
        answered.insert(prediction_id(&headers), ("v2", 2));
        // V1 rows.
        let body = json!({"instances": &records[2..4]}).to_string();
        let (status, headers, text) = send(
            &app,
            Method::POST,
            "/v1/models/churn:predict",
            "application/json",
            body,
        )
        .await;
        assert_eq!(status, 200, "{text}");
        answered.insert(prediction_id(&headers), ("v1", 2));
        // MLflow records.
        let body = json!({"dataframe_records": &records[4..6]}).to_string();
        let (status, headers, text) =
            send(&app, Method::POST, "/invocations", "application/json", body).await;
        assert_eq!(status, 200, "{text}");
        answered.insert(prediction_id(&headers), ("mlflow", 2));
        // A refused request leaves no record.
        let (status, _, _) = send(
            &app,
            Method::POST,
            "/v1/models/churn:predict",
            "application/json",
            r#"{"instances": [{"plan": "gold"}]}"#,
        )
        .await;
        assert_eq!(status, 400);

        let stats = recorder.shutdown().await.expect("shutdown");
        assert_eq!(stats.written, 3, "{durability:?}: {stats:?}");
        assert_eq!(store.count_predictions().await.expect("count"), 3);
        let mut first_row = 0;
        for (protocol, rows_sent) in ["v2", "v1", "mlflow"].map(|p| {
            let (_, (_, n)) = answered
                .iter()
                .find(|(_, (q, _))| *q == p)
                .expect("answered");
            (p, *n)
        }) {
            let (id, _) = answered
                .iter()
                .find(|(_, (q, _))| *q == protocol)
                .expect("id");
            let row = store
                .get_prediction(id)
                .await
                .expect("read")
                .unwrap_or_else(|| panic!("{protocol} prediction {id} is not on record"));
            assert_eq!(row.endpoint, "churn");
            assert_eq!((row.model.as_str(), row.version), ("churn", 1));
            assert_eq!(row.protocol, protocol);
            assert_eq!(row.rows, rows_sent as i64);
            let inputs = &row.inputs;
            let plans_seen: Vec<&str> = inputs["plan"]
                .as_array()
                .expect("plan column")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let plans_sent: Vec<&str> = (first_row..first_row + rows_sent)
                .map(|r| plans[r % plans.len()])
                .collect();
            assert_eq!(plans_seen, plans_sent, "the category is recorded by value");
            assert_eq!(
                inputs["tenure_months"][1],
                rows[first_row + 1][names
                    .iter()
                    .position(|n| n == "tenure_months")
                    .expect("column")]
            );
            let outputs = &row.outputs;
            assert_eq!(
                outputs["probabilities"].as_array().map(Vec::len),
                Some(rows_sent),
                "{outputs}"
            );
            first_row += rows_sent;
        }
    }
}
