//! Dynamic batching for one loaded model version.
//!
//! Callers hand in validated batches; one worker task gathers them until it has
//! `max_batch_size` rows or the oldest has waited `max_queue_delay` (by default it does not
//! wait: a batch is what queued while the model last ran), runs the model once on the stacked
//! rows (on a blocking thread), and hands every caller exactly its own rows of each output.
//! The queue is bounded: when it is full a caller is refused at once
//! ([`BatchError::QueueFull`], a 503 with `Retry-After`), and a caller that waits longer than
//! `timeout` gets [`BatchError::Timeout`]. A batch larger than `max_batch_size` runs alone.
//!
//! A cheap request skips the queue: when batching is not asked to wait (`max_queue_delay`
//! zero) and the model's measured cost for that many rows is below `max_inline_compute`, the
//! caller runs the model itself, on its own task. Handing a 5 µs tree walk to another thread
//! and back costs more than the walk, and batching it saves less than the hand-over costs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_core::{FeatureMatrix, NamedTensor};
use berth_runtime::{Model, PredictError};
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// Batching knobs of one model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Rows gathered into one model run at most (a bigger request runs alone).
    pub max_batch_size: usize,
    /// How long the first request of a batch may wait for company.
    pub max_queue_delay: Duration,
    /// Requests waiting at most; more are refused.
    pub queue_capacity: usize,
    /// How long a caller waits for its answer, queueing included.
    pub timeout: Duration,
    /// A request whose model run is expected to take less than this runs on the caller's task
    /// (when `max_queue_delay` is zero); zero sends everything through the queue.
    pub max_inline_compute: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 256,
            // Like Triton's default: no waiting; a batch is whatever queued while the model ran.
            max_queue_delay: Duration::ZERO,
            queue_capacity: 1024,
            timeout: Duration::from_secs(10),
            // A tree model's single row takes a few µs; an ONNX pipeline tens. Runs this short
            // cannot hold up the async workers.
            max_inline_compute: Duration::from_micros(100),
        }
    }
}

/// Batching knobs as a person writes them (flags, a YAML file): each one optional, laid over
/// a [`BatchConfig`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSettings {
    pub max_batch_size: Option<usize>,
    pub max_queue_delay_us: Option<u64>,
    pub queue_capacity: Option<usize>,
    pub timeout_ms: Option<u64>,
    pub max_inline_compute_us: Option<u64>,
}

impl BatchSettings {
    /// These knobs with every one `top` gives replaced.
    pub fn merged_with(self, top: &BatchSettings) -> BatchSettings {
        BatchSettings {
            max_batch_size: top.max_batch_size.or(self.max_batch_size),
            max_queue_delay_us: top.max_queue_delay_us.or(self.max_queue_delay_us),
            queue_capacity: top.queue_capacity.or(self.queue_capacity),
            timeout_ms: top.timeout_ms.or(self.timeout_ms),
            max_inline_compute_us: top.max_inline_compute_us.or(self.max_inline_compute_us),
        }
    }

    /// `base` with every knob given here replaced (sizes of zero count as one).
    pub fn over(&self, base: BatchConfig) -> BatchConfig {
        BatchConfig {
            max_batch_size: self
                .max_batch_size
                .map_or(base.max_batch_size, |n| n.max(1)),
            max_queue_delay: self
                .max_queue_delay_us
                .map_or(base.max_queue_delay, Duration::from_micros),
            queue_capacity: self
                .queue_capacity
                .map_or(base.queue_capacity, |n| n.max(1)),
            timeout: self.timeout_ms.map_or(base.timeout, Duration::from_millis),
            max_inline_compute: self
                .max_inline_compute_us
                .map_or(base.max_inline_compute, Duration::from_micros),
        }
    }
}

/// The batching of every version a server loads: one default, and overrides per model
/// (`churn`) or per version (`churn/3`, which wins), e.g. in YAML
///
/// ```yaml
/// default: {max_batch_size: 128}
/// models:
///   churn: {max_queue_delay_us: 500}
///   churn/3: {max_batch_size: 64}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPolicy {
    #[serde(default)]
    pub default: BatchSettings,
    #[serde(default)]
    pub models: HashMap<String, BatchSettings>,
}

impl BatchPolicy {
    /// The knobs of `model`'s `version`.
    pub fn for_version(&self, model: &str, version: i64) -> BatchConfig {
        let mut config = self.default.over(BatchConfig::default());
        if let Some(s) = self.models.get(model) {
            config = s.over(config);
        }
        if let Some(s) = self.models.get(&format!("{model}/{version}")) {
            config = s.over(config);
        }
        config
    }
}

/// Why a batched prediction did not come back.
#[derive(Debug, Error)]
pub enum BatchError {
    #[error("the model's queue is full ({capacity} requests waiting); retry shortly")]
    QueueFull { capacity: usize },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the model version is being unloaded")]
    Closed,
    #[error(transparent)]
    Predict(#[from] PredictError),
}

/// What a caller gets: its outputs, and how long it queued and the model computed.
#[derive(Debug)]
pub struct Batched {
    pub outputs: Arc<[NamedTensor]>,
    pub queued: Duration,
    pub compute: Duration,
    /// Rows in the model run this request was part of.
    pub batch_rows: usize,
    /// Whether the caller ran the model itself (skipping the queue).
    pub inline: bool,
}

struct Job {
    rows: FeatureMatrix,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Batched, BatchError>>,
}

/// The queue in front of one model version; cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Job>,
    config: BatchConfig,
    model: Arc<dyn Model>,
    cost: Arc<RowCost>,
}

/// A running estimate of the model's compute time per row (nanoseconds; 0 until measured),
/// from every run, batched or inline.
#[derive(Default)]
struct RowCost(AtomicU64);

impl RowCost {
    fn observe(&self, rows: usize, took: Duration) {
        let Some(sample) = u64::try_from(took.as_nanos() / rows.max(1) as u128).ok() else {
            return;
        };
        let old = self.0.load(Ordering::Relaxed);
        // An exponential average (weight 1/8) of samples capped at twice the estimate: a run
        // whose thread was preempted (wall time, on a busy machine) must not shut the inline
        // path for hundreds of requests. A lost update between racing runs is harmless.
        let new = if old == 0 {
            sample
        } else {
            (old * 7 + sample.min(old.saturating_mul(2))) / 8
        };
        self.0.store(new.max(1), Ordering::Relaxed);
    }

    /// The expected compute time for `rows`, once any run was measured.
    fn estimate(&self, rows: usize) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns.saturating_mul(rows as u64))),
        }
    }
}

impl Batcher {
    /// Starts the worker for `model` on the current tokio runtime. The worker stops when every
    /// `Batcher` clone is dropped, after answering what is queued.
    pub fn spawn(model: Arc<dyn Model>, config: BatchConfig) -> Self {
        let (queue, jobs) = mpsc::channel(config.queue_capacity.max(1));
        let cost = Arc::new(RowCost::default());
        tokio::spawn(worker(model.clone(), config, jobs, cost.clone()));
        Self {
            queue,
            config,
            model,
            cost,
        }
    }

    /// Whether `rows` is cheap enough to score on the caller's task (see the module doc).
    fn runs_inline(&self, rows: usize) -> bool {
        self.config.max_queue_delay.is_zero()
            && rows <= self.config.max_batch_size
            && self
                .cost
                .estimate(rows)
                .is_some_and(|d| d < self.config.max_inline_compute)
    }

    /// Scores `rows` as part of a batch (or at once, when that is cheaper).
    pub async fn predict(&self, rows: FeatureMatrix) -> Result<Batched, BatchError> {
        if self.runs_inline(rows.rows()) {
            let started = Instant::now();
            let outputs = self.model.predict(&rows)?;
            let compute = started.elapsed();
            self.cost.observe(rows.rows(), compute);
            return Ok(Batched {
                outputs: outputs.into(),
                queued: Duration::ZERO,
                compute,
                batch_rows: rows.rows(),
                inline: true,
            });
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            rows,
            enqueued: Instant::now(),
            reply,
        };
        self.queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => BatchError::QueueFull {
                capacity: self.config.queue_capacity,
            },
            mpsc::error::TrySendError::Closed(_) => BatchError::Closed,
        })?;
        match tokio::time::timeout(self.config.timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(BatchError::Closed),
            Err(_) => Err(BatchError::Timeout(self.config.timeout)),
        }
    }
}

async fn worker(
    model: Arc<dyn Model>,
    config: BatchConfig,
    mut jobs: mpsc::Receiver<Job>,
    cost: Arc<RowCost>,
) {
    let mut held: Option<Job> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match jobs.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let deadline = first.enqueued + config.max_queue_delay;
        let mut rows = first.rows.rows();
        let mut batch = vec![first];
        while rows < config.max_batch_size {
            let next = match jobs.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Past the deadline: the batch goes as it is.
                    tokio::time::timeout_at(deadline.into(), jobs.recv())
                        .await
                        .unwrap_or_default()
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            };
            let Some(job) = next else { break };
            if rows + job.rows.rows() > config.max_batch_size {
                // It would overflow this batch: it starts the next one.
                held = Some(job);
                break;
            }
            rows += job.rows.rows();
            batch.push(job);
        }
        run(&model, batch, &cost).await;
    }
}

/// Runs one batch and answers each of its jobs with its own rows.
async fn run(model: &Arc<dyn Model>, batch: Vec<Job>, cost: &RowCost) {
    let started = Instant::now();
    let stacked = {
        let parts: Vec<&FeatureMatrix> = batch.iter().map(|j| &j.rows).collect();
        FeatureMatrix::concat(&parts)
    };
    let Some(stacked) = stacked else {
        for job in batch {
            let _ = job
                .reply
                .send(Err(BatchError::Predict(PredictError::Backend(
                    "requests of different widths were batched together".into(),
                ))));
        }
        return;
    };
    let batch_rows = stacked.rows();
    // On a blocking thread: a model run, however long, never stalls the async workers (and
    // the callers' timeouts keep ticking).
    let model = model.clone();
    let result = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = model.predict(&stacked);
        (result, started.elapsed())
    })
    .await;
    let compute = started.elapsed();
    let result = result.map(|(result, took)| {
        cost.observe(batch_rows, took);
        result
    });
    let outputs = match result {
        Ok(Ok(outputs)) => outputs,
        Ok(Err(e)) => {
            let message = e.to_string();
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(BatchError::Predict(PredictError::Backend(
                        message.clone(),
                    ))));
            }
            return;
        }
        Err(join) => {
            for job in batch {
                let _ = job
                    .reply
                    .send(Err(BatchError::Predict(PredictError::Backend(format!(
                        "the model run failed: {join}"
                    )))));
            }
            return;
        }
    };
    let mut start = 0;
    for job in batch {
        let end = start + job.rows.rows();
        let mine: Option<Vec<NamedTensor>> = outputs
            .iter()
            .map(|o| {
                o.tensor.slice_rows(start, end).map(|tensor| NamedTensor {
                    name: o.name.clone(),
                    role: o.role,
                    tensor,
                })
            })
            .collect();
        let answer = mine
            .map(|outputs| Batched {
                outputs: outputs.into(),
                queued: started.saturating_duration_since(job.enqueued),
                compute,
                batch_rows,
                inline: false,
            })
            .ok_or_else(|| {
                BatchError::Predict(PredictError::Backend(
                    "the model returned fewer rows than it was given".into(),
                ))
            });
        // A caller that gave up (timed out) is simply not answered.
        let _ = job.reply.send(answer);
        start = end;
    }
}
