//! Dynamic batching: many concurrent callers of different sizes each get exactly their own
//! rows back; a full queue refuses at once; a slow model times callers out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_core::{FeatureMatrix, ModelInfo, NamedTensor};
use berth_runtime::{LoadOptions, Model, PredictError};
use berth_serve::batcher::{BatchConfig, BatchError, Batcher};
use proptest::prelude::*;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn eval_rows() -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(fixtures().join("data/eval_features.csv")).expect("rows");
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .skip(1)
                .map(|v| v.parse().unwrap_or(f32::NAN))
                .collect()
        })
        .collect()
}

fn model() -> Arc<dyn Model> {
    berth_runtime::load(
        &fixtures().join("models/xgb_classifier.json"),
        &LoadOptions::default(),
    )
    .expect("fixture")
    .into()
}

fn matrix(rows: &[Vec<f32>]) -> FeatureMatrix {
    FeatureMatrix::from_rows(23, rows).expect("rows")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_caller_gets_exactly_its_own_rows(
        requests in prop::collection::vec((0usize..1000, 1usize..40), 1..40),
        max_batch_size in 1usize..80,
        waits in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let rows = eval_rows();
        let model = model();
        runtime.block_on(async {
            // Without a queue delay, cheap requests run inline once measured: a mix of both.
            let max_queue_delay = if waits { Duration::from_millis(2) } else { Duration::ZERO };
            let config = BatchConfig { max_batch_size, max_queue_delay, ..BatchConfig::default() };
            let batcher = Batcher::spawn(model.clone(), config);
            let calls = requests.iter().map(|&(start, n)| {
                let mine: Vec<Vec<f32>> = rows.iter().cycle().skip(start).take(n).cloned().collect();
                let batcher = batcher.clone();
                let model = model.clone();
                tokio::spawn(async move {
                    let expected = model.predict(&matrix(&mine)).expect("direct");
                    let got = batcher.predict(matrix(&mine)).await.expect("batched");
                    (expected, got)
                })
            });
            let mut merged = false;
            for call in futures::future::join_all(calls).await {
                let (expected, got) = call.expect("task");
                assert_eq!(got.outputs[..], expected[..], "a caller got rows that are not its own");
                merged |= got.batch_rows > got.outputs[0].tensor.shape()[0];
            }
            // With many callers some must have shared a model run (the point of batching).
            if waits && requests.len() > 8 && max_batch_size > 40 {
                assert!(merged, "no request was batched with another");
            }
        });
    }
}

/// A model that takes its time, to fill queues and run out clocks.
struct Slow(Duration);

impl Model for Slow {
    fn info(&self) -> &ModelInfo {
        unreachable!("not asked in these tests")
    }

    fn predict(&self, batch: &FeatureMatrix) -> Result<Vec<NamedTensor>, PredictError> {
        std::thread::sleep(self.0);
        Ok(vec![NamedTensor {
            name: "value".into(),
            role: berth_core::OutputRole::Score,
            tensor: berth_core::Tensor::new(
                vec![batch.rows()],
                berth_core::TensorData::Fp32(vec![1.0; batch.rows()]),
            )
            .expect("tensor"),
        }])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once() {
    let config = BatchConfig {
        max_batch_size: 1,
        queue_capacity: 2,
        ..BatchConfig::default()
    };
    let batcher = Batcher::spawn(Arc::new(Slow(Duration::from_millis(300))), config);
    let row = || FeatureMatrix::new(1, 1, vec![0.0]).expect("row");
    // One running, two queued: the fourth finds the queue full.
    let mut running = Vec::new();
    for _ in 0..3 {
        let b = batcher.clone();
        running.push(tokio::spawn(async move { b.predict(row()).await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = tokio::time::timeout(Duration::from_millis(100), batcher.predict(row()))
        .await
        .expect("answers at once");
    assert!(
        matches!(refused, Err(BatchError::QueueFull { capacity: 2 })),
        "{refused:?}"
    );
    for r in running {
        assert!(
            r.await.expect("task").is_ok(),
            "the queued requests are still answered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_model_times_out_the_caller() {
    let config = BatchConfig {
        timeout: Duration::from_millis(50),
        ..BatchConfig::default()
    };
    let batcher = Batcher::spawn(Arc::new(Slow(Duration::from_millis(400))), config);
    let result = batcher
        .predict(FeatureMatrix::new(1, 1, vec![0.0]).expect("row"))
        .await;
    assert!(matches!(result, Err(BatchError::Timeout(_))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cheap_requests_run_inline_once_measured() {
    let rows = eval_rows();
    let one = || matrix(&rows[..1]);
    // A limit far above any run of this model (debug builds are slow), so this is no timing test.
    let generous = BatchConfig {
        max_inline_compute: Duration::from_secs(1),
        ..BatchConfig::default()
    };
    let batcher = Batcher::spawn(model(), generous);
    // Nothing measured yet: the first run goes through the queue.
    let first = batcher.predict(one()).await.expect("first");
    assert!(!first.inline);
    let second = batcher.predict(one()).await.expect("second");
    assert!(second.inline, "a cheap run goes inline");
    assert_eq!(
        second.outputs[..],
        model().predict(&one()).expect("direct")[..]
    );
    assert_eq!(second.queued, Duration::ZERO);

    // A model run dearer than the limit, or a configured queue delay, keeps the queue.
    for config in [
        BatchConfig {
            max_inline_compute: Duration::ZERO,
            ..BatchConfig::default()
        },
        BatchConfig {
            max_queue_delay: Duration::from_micros(200),
            ..generous
        },
    ] {
        let batcher = Batcher::spawn(model(), config);
        for _ in 0..3 {
            assert!(!batcher.predict(one()).await.expect("queued").inline);
        }
    }
    let slow = BatchConfig {
        max_inline_compute: Duration::from_millis(1),
        ..BatchConfig::default()
    };
    let slow = Batcher::spawn(Arc::new(Slow(Duration::from_millis(20))), slow);
    for _ in 0..3 {
        let row = FeatureMatrix::new(1, 1, vec![0.0]).expect("row");
        assert!(!slow.predict(row).await.expect("slow").inline);
    }
}

#[test]
fn batching_policy_layers_default_model_and_version() {
    let policy: berth_serve::batcher::BatchPolicy = serde_json::from_value(serde_json::json!({
        "default": {"max_batch_size": 128, "timeout_ms": 2000},
        "models": {
            "churn": {"max_queue_delay_us": 500, "max_batch_size": 64},
            "churn/3": {"max_batch_size": 8}
        }
    }))
    .expect("policy");
    let base = BatchConfig::default();
    let other = policy.for_version("fraud", 1);
    assert_eq!(other.max_batch_size, 128);
    assert_eq!(other.timeout, Duration::from_secs(2));
    assert_eq!(other.max_queue_delay, base.max_queue_delay);
    let churn = policy.for_version("churn", 2);
    assert_eq!(churn.max_batch_size, 64);
    assert_eq!(churn.max_queue_delay, Duration::from_micros(500));
    assert_eq!(churn.timeout, Duration::from_secs(2));
    let pinned = policy.for_version("churn", 3);
    assert_eq!(pinned.max_batch_size, 8);
    assert_eq!(pinned.max_queue_delay, Duration::from_micros(500));

    let typo = serde_json::from_value::<berth_serve::batcher::BatchPolicy>(
        serde_json::json!({"default": {"max_batch": 1}}),
    );
    assert!(typo.is_err_and(|e| e.to_string().contains("max_batch")));
}
