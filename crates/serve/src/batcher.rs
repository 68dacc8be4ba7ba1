//! Dynamic batching for one loaded model version.
//!
//! Callers hand in validated batches; one worker task gathers them until it has
//! `max_batch_size` rows or the oldest has waited `max_queue_delay` (by default it does not
//! wait: a batch is what queued while the model last ran), runs the model once on the stacked
//! rows (on a blocking thread), and hands every caller exactly its own rows of each output. The queue is bounded: when it is full a caller is refused at once
//! ([`BatchError::QueueFull`], a 503 with `Retry-After`), and a caller that waits longer than
//! `timeout` gets [`BatchError::Timeout`]. A batch larger than `max_batch_size` runs alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_core::{FeatureMatrix, NamedTensor};
use berth_runtime::{Model, PredictError};
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
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 256,
            // Like Triton's default: no waiting; a batch is whatever queued while the model ran.
            max_queue_delay: Duration::ZERO,
            queue_capacity: 1024,
            timeout: Duration::from_secs(10),
        }
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
    pub outputs: Vec<NamedTensor>,
    pub queued: Duration,
    pub compute: Duration,
    /// Rows in the model run this request was part of.
    pub batch_rows: usize,
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
}

impl Batcher {
    /// Starts the worker for `model` on the current tokio runtime. The worker stops when every
    /// `Batcher` clone is dropped, after answering what is queued.
    pub fn spawn(model: Arc<dyn Model>, config: BatchConfig) -> Self {
        let (queue, jobs) = mpsc::channel(config.queue_capacity.max(1));
        tokio::spawn(worker(model, config, jobs));
        Self { queue, config }
    }

    /// Scores `rows` as part of a batch.
    pub async fn predict(&self, rows: FeatureMatrix) -> Result<Batched, BatchError> {
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

async fn worker(model: Arc<dyn Model>, config: BatchConfig, mut jobs: mpsc::Receiver<Job>) {
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
        run(&model, batch).await;
    }
}

/// Runs one batch and answers each of its jobs with its own rows.
async fn run(model: &Arc<dyn Model>, batch: Vec<Job>) {
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
    let result = tokio::task::spawn_blocking(move || model.predict(&stacked)).await;
    let compute = started.elapsed();
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
                outputs,
                queued: started.saturating_duration_since(job.enqueued),
                compute,
                batch_rows,
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
