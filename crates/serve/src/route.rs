//! An endpoint's route: which deployment answers a request, which ones get a mirrored copy,
//! and what each side did in the current rollout window.
//!
//! A [`Route`] is built from an endpoint's traffic policy: the primary answers, unless the
//! canary takes the request (by its weight, or by the bucket of the request's sticky key, so an
//! entity keeps its version while the weight holds); each shadow gets a copy of the request on
//! a bounded queue after the answer is on its way, and its outputs are compared row by row with
//! the primary's ([`ShadowComparison`]). A shadow that is slow or failing costs the primary
//! nothing but the copy: when its queue is full the copy is dropped and counted
//! (`berth_shadow_shed_total`).
//!
//! [`TrafficWindows`] holds, per endpoint and version, the requests, server errors and latency
//! of the current window and the shadow comparison, outliving the routes (which are rebuilt
//! at every registry change). The rollout controller reads them as
//! [`WindowStats`](berth_rollout::WindowStats) and resets them when a rollout step starts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use berth_core::NamedTensor;
use berth_records::Role;
use berth_registry::StickyKey;
use berth_rollout::{Route as Side, ShadowComparison, Splitter, Weight, WindowStats};
use prometheus_client::metrics::counter::Counter;
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};

use crate::deployment::{Caller, Deployment, Prediction, ServeError};
use crate::metrics::ServeMetrics;
use crate::validate::Columns;

/// Mirrored requests waiting for one shadow before copies are shed.
pub const SHADOW_QUEUE: usize = 1024;
/// Mirrored requests one shadow scores at once.
pub const SHADOW_CONCURRENCY: usize = 32;
/// Worst examples a shadow comparison keeps.
pub const SHADOW_WORST: usize = 20;
/// Output rows per side and window kept to measure the candidate's prediction drift.
pub const DRIFT_SAMPLE_ROWS: usize = 20_000;
/// Primary output rows a window needs to be the baseline of prediction drift by itself.
pub const DRIFT_BASELINE_ROWS: usize = 50;

/// What answers one name: a primary, maybe a canary, maybe shadows.
pub struct Route {
    primary: Arc<Deployment>,
    canary: Option<CanaryRoute>,
    shadows: Vec<ShadowRoute>,
    sticky: Option<StickyKey>,
    /// The primary's window; `None` for names that are not endpoints.
    primary_window: Option<Arc<SideWindow>>,
}

struct CanaryRoute {
    deployment: Arc<Deployment>,
    weight: Weight,
    splitter: Splitter,
    window: Option<Arc<SideWindow>>,
}

struct ShadowRoute {
    queue: mpsc::Sender<ShadowJob>,
    /// Copies dropped because the queue was full.
    shed: Counter,
}

/// A copy of an answered request for a shadow.
struct ShadowJob {
    prediction_id: String,
    endpoint: String,
    protocol: &'static str,
    columns: Columns,
    primary: Arc<[NamedTensor]>,
}

/// How a route is made: the policy's pieces, resolved to loaded deployments.
pub struct RoutePlan {
    pub primary: Arc<Deployment>,
    pub canary: Option<(Arc<Deployment>, Weight, String)>,
    pub shadows: Vec<Arc<Deployment>>,
    pub sticky: Option<StickyKey>,
}

impl Route {
    /// A name that one deployment answers alone (a model, an alias, a pinned version).
    pub fn single(deployment: Arc<Deployment>) -> Self {
        Self {
            primary: deployment,
            canary: None,
            shadows: Vec::new(),
            sticky: None,
            primary_window: None,
        }
    }

    /// The route of `endpoint`; its sides count into `windows`, its shadows' copies are shed
    /// into `metrics`. Spawns one worker per shadow on the current runtime (it ends when the
    /// route is dropped and its queue is drained).
    pub fn endpoint(
        endpoint: &str,
        plan: RoutePlan,
        windows: &TrafficWindows,
        metrics: &Arc<ServeMetrics>,
    ) -> Self {
        let window = |d: &Deployment| windows.side(endpoint, &d.model, d.version);
        let shadows = plan
            .shadows
            .into_iter()
            .map(|d| ShadowRoute {
                shed: metrics.shadow_shed(endpoint, d.label()),
                queue: spawn_shadow(
                    window(&d),
                    windows.comparison(endpoint, &d.model, d.version),
                    d,
                ),
            })
            .collect();
        Self {
            primary_window: Some(window(&plan.primary)),
            canary: plan.canary.map(|(d, weight, seed)| CanaryRoute {
                window: Some(window(&d)),
                splitter: Splitter::new(&seed),
                weight,
                deployment: d,
            }),
            primary: plan.primary,
            shadows,
            sticky: plan.sticky,
        }
    }

    /// The deployment that answers when no canary takes a request: its signature reads the
    /// request.
    pub fn primary(&self) -> &Arc<Deployment> {
        &self.primary
    }

    /// Every deployment this route uses.
    pub fn deployments(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        std::iter::once(&self.primary).chain(self.canary.as_ref().map(|c| &c.deployment))
    }

    /// Answers a request: picks primary or canary, predicts, counts the side's window, and
    /// mirrors the answered request to the shadows. Returns the deployment that answered.
    pub async fn predict(
        &self,
        columns: &Columns,
        caller: &Caller<'_>,
    ) -> Result<(Arc<Deployment>, Prediction), ServeError> {
        let (deployment, role, window) = match &self.canary {
            Some(canary)
                if canary
                    .splitter
                    .route(canary.weight, self.sticky_key(columns, caller).as_deref())
                    == Side::Canary =>
            {
                (&canary.deployment, Role::Canary, canary.window.as_ref())
            }
            _ => (&self.primary, Role::Primary, self.primary_window.as_ref()),
        };
        let answer = deployment.predict(columns, caller, role).await;
        if let Some(window) = window {
            window.observe(&answer, caller.arrived.elapsed());
        }
        let prediction = answer?;
        if let Some(window) = window
            && (self.canary.is_some() || !self.shadows.is_empty())
        {
            window.keep_outputs(&prediction.batched.outputs);
        }
        for shadow in &self.shadows {
            let job = ShadowJob {
                prediction_id: prediction.id.clone(),
                endpoint: caller.endpoint.to_string(),
                protocol: caller.protocol,
                columns: columns.clone(),
                primary: prediction.batched.outputs.clone(),
            };
            if shadow.queue.try_send(job).is_err() {
                shadow.shed.inc();
            }
        }
        Ok((deployment.clone(), prediction))
    }

    /// The request's sticky key: the header's bytes, or the field's value in the first row
    /// (text as is, anything else as JSON).
    fn sticky_key<'k>(&self, columns: &'k Columns, caller: &Caller<'k>) -> Option<Cow<'k, [u8]>> {
        match self.sticky.as_ref()? {
            StickyKey::Header(name) => caller
                .headers
                .and_then(|h| h.get(name.as_str()))
                .map(|v| Cow::Borrowed(v.as_bytes())),
            StickyKey::Field(name) => match columns.first(name)? {
                Value::Null => None,
                Value::String(s) => Some(Cow::Borrowed(s.as_bytes())),
                other => Some(Cow::Owned(other.to_string().into_bytes())),
            },
        }
    }
}

/// Scores the copies of one shadow, at most [`SHADOW_CONCURRENCY`] at once, and compares each
/// with the primary's answer.
fn spawn_shadow(
    window: Arc<SideWindow>,
    comparison: Arc<Mutex<ShadowComparison>>,
    deployment: Arc<Deployment>,
) -> mpsc::Sender<ShadowJob> {
    let (queue, mut jobs) = mpsc::channel::<ShadowJob>(SHADOW_QUEUE);
    let permits = Arc::new(Semaphore::new(SHADOW_CONCURRENCY));
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let (deployment, window, comparison) =
                (deployment.clone(), window.clone(), comparison.clone());
            tokio::spawn(async move {
                let caller = Caller::new(&job.endpoint, job.protocol);
                let answer = deployment
                    .predict(&job.columns, &caller, Role::Shadow)
                    .await;
                window.observe(&answer, caller.arrived.elapsed());
                match answer {
                    Ok(shadow) => {
                        window.keep_outputs(&shadow.batched.outputs);
                        lock(&comparison).record_outputs(
                            &job.prediction_id,
                            &job.primary,
                            &shadow.batched.outputs,
                        );
                    }
                    Err(e) => tracing::debug!(
                        shadow = %deployment.label(),
                        "shadow of prediction {} failed: {e}",
                        job.prediction_id
                    ),
                }
                drop(permit);
            });
        }
    });
    queue
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Requests, server errors, latency and a sample of the outputs of one side of an endpoint in
/// the current window.
#[derive(Default)]
pub struct SideWindow {
    requests: AtomicU64,
    errors: AtomicU64,
    latency: LatencyHistogram,
    outputs: Mutex<OutputSample>,
}

/// The first [`DRIFT_SAMPLE_ROWS`] output rows of a window, and the last earlier window's
/// sample that had at least [`DRIFT_BASELINE_ROWS`] (a primary at a 100 % canary step answers
/// next to nothing; its outputs before are what the candidate is compared with).
#[derive(Default)]
struct OutputSample {
    rows: usize,
    batches: Vec<Vec<NamedTensor>>,
    previous: Vec<Vec<NamedTensor>>,
}

impl OutputSample {
    /// What this side's outputs are compared on: this window's, or when it has too few rows
    /// the last earlier window's that had enough.
    fn baseline(&self) -> Vec<Vec<NamedTensor>> {
        if self.rows >= DRIFT_BASELINE_ROWS || self.previous.is_empty() {
            self.batches.clone()
        } else {
            self.previous.clone()
        }
    }
}

impl SideWindow {
    /// Counts an answer: a client's mistake (a 4xx) is not the version's, so it is not counted.
    fn observe(&self, answer: &Result<Prediction, ServeError>, latency: Duration) {
        match answer {
            Ok(_) => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.latency.add(latency);
            }
            Err(e) if e.is_server_error() => {
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
    }

    /// Keeps an answer's outputs for the prediction drift, until the sample is full.
    fn keep_outputs(&self, outputs: &[NamedTensor]) {
        let mut sample = lock(&self.outputs);
        if sample.rows < DRIFT_SAMPLE_ROWS {
            sample.rows += outputs
                .first()
                .and_then(|o| o.tensor.shape().first().copied())
                .unwrap_or(0);
            sample.batches.push(outputs.to_vec());
        }
    }

    fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.latency.reset();
        let mut sample = lock(&self.outputs);
        let previous = if sample.rows >= DRIFT_BASELINE_ROWS {
            std::mem::take(&mut sample.batches)
        } else {
            std::mem::take(&mut sample.previous)
        };
        *sample = OutputSample {
            previous,
            ..OutputSample::default()
        };
    }
}

/// Latencies in buckets growing by 5 % from 1 µs (p99 within 2.5 %), lock-free.
struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

const LATENCY_GROWTH: f64 = 1.05;
const LATENCY_BUCKETS: usize = 500;

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LatencyHistogram {
    fn add(&self, latency: Duration) {
        let micros = latency.as_secs_f64() * 1e6;
        let index = if micros <= 1.0 {
            0
        } else {
            ((micros.ln() / LATENCY_GROWTH.ln()).ceil() as usize).min(LATENCY_BUCKETS - 1)
        };
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
    }

    fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }

    /// The `q` quantile in milliseconds (the middle of its bucket), or `None` when empty.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let index = counts.iter().position(|&c| {
            seen += c;
            seen >= rank
        })?;
        let upper = LATENCY_GROWTH.powi(index as i32);
        Some(upper * 2.0 / (1.0 + LATENCY_GROWTH) / 1000.0)
    }
}

type SideKey = (String, String, i64);

/// The current window of every endpoint's sides, and its shadow comparisons.
#[derive(Default)]
pub struct TrafficWindows {
    sides: Mutex<HashMap<SideKey, Arc<SideWindow>>>,
    comparisons: Mutex<HashMap<SideKey, Arc<Mutex<ShadowComparison>>>>,
}

fn key(endpoint: &str, model: &str, version: i64) -> SideKey {
    (endpoint.to_string(), model.to_string(), version)
}

impl TrafficWindows {
    fn side(&self, endpoint: &str, model: &str, version: i64) -> Arc<SideWindow> {
        lock(&self.sides)
            .entry(key(endpoint, model, version))
            .or_default()
            .clone()
    }

    fn comparison(
        &self,
        endpoint: &str,
        model: &str,
        version: i64,
    ) -> Arc<Mutex<ShadowComparison>> {
        lock(&self.comparisons)
            .entry(key(endpoint, model, version))
            .or_insert_with(|| Arc::new(Mutex::new(ShadowComparison::new(SHADOW_WORST))))
            .clone()
    }

    /// What `model/version` did on `endpoint` in the current window, with its agreement with
    /// the primary when it was shadowed.
    pub fn stats(&self, endpoint: &str, model: &str, version: i64) -> WindowStats {
        let k = key(endpoint, model, version);
        let side = lock(&self.sides).get(&k).cloned();
        let comparison = lock(&self.comparisons).get(&k).map(|c| lock(c).clone());
        WindowStats {
            requests: side
                .as_ref()
                .map_or(0, |s| s.requests.load(Ordering::Relaxed)),
            errors: side
                .as_ref()
                .map_or(0, |s| s.errors.load(Ordering::Relaxed)),
            p99_latency_ms: side.as_ref().and_then(|s| s.latency.quantile_ms(0.99)),
            shadow_agreement: comparison.and_then(|c| c.agreement_rate()),
            ..WindowStats::default()
        }
    }

    /// Both sides' stats for a rollout's analysis: the candidate's carries its prediction
    /// drift from the primary over the window's output samples.
    pub fn compare(
        &self,
        endpoint: &str,
        primary: (&str, i64),
        candidate: (&str, i64),
    ) -> (WindowStats, WindowStats) {
        let p = self.stats(endpoint, primary.0, primary.1);
        let mut c = self.stats(endpoint, candidate.0, candidate.1);
        let sample = |(model, version): (&str, i64), baseline: bool| {
            lock(&self.sides)
                .get(&key(endpoint, model, version))
                .map(|s| {
                    let sample = lock(&s.outputs);
                    if baseline {
                        sample.baseline()
                    } else {
                        sample.batches.clone()
                    }
                })
                .unwrap_or_default()
        };
        let (ps, cs) = (sample(primary, true), sample(candidate, false));
        if !ps.is_empty() && !cs.is_empty() {
            c.prediction_drift = berth_monitor::prediction_drift(&ps, &cs);
        }
        (p, c)
    }

    /// The comparison of `model/version`'s shadow answers on `endpoint` with the primary's.
    pub fn shadow_comparison(
        &self,
        endpoint: &str,
        model: &str,
        version: i64,
    ) -> Option<ShadowComparison> {
        lock(&self.comparisons)
            .get(&key(endpoint, model, version))
            .map(|c| lock(c).clone())
    }

    /// Starts a new window for every side of `endpoint`.
    pub fn reset(&self, endpoint: &str) {
        for (k, side) in lock(&self.sides).iter() {
            if k.0 == endpoint {
                side.reset();
            }
        }
        for (k, comparison) in lock(&self.comparisons).iter() {
            if k.0 == endpoint {
                *lock(comparison) = ShadowComparison::new(SHADOW_WORST);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::{OutputRole, Tensor, TensorData};

    fn scores(rows: usize) -> Vec<NamedTensor> {
        vec![NamedTensor {
            name: "p".into(),
            role: OutputRole::Probabilities,
            tensor: Tensor::new(vec![rows, 1], TensorData::Fp32(vec![0.5; rows])).expect("tensor"),
        }]
    }

    fn rows(batches: &[Vec<NamedTensor>]) -> usize {
        batches.iter().map(|b| b[0].tensor.shape()[0]).sum()
    }

    #[test]
    fn a_primary_with_too_few_answers_is_compared_on_its_last_full_window() {
        let side = SideWindow::default();
        side.keep_outputs(&scores(DRIFT_BASELINE_ROWS));
        assert_eq!(rows(&lock(&side.outputs).baseline()), DRIFT_BASELINE_ROWS);
        side.reset();
        // A 100 % canary step: the primary answers 3 rows; its last full window stands in.
        side.keep_outputs(&scores(3));
        assert_eq!(rows(&lock(&side.outputs).baseline()), DRIFT_BASELINE_ROWS);
        // Still so a window later (a thin window does not replace the baseline) ...
        side.reset();
        side.keep_outputs(&scores(2));
        assert_eq!(rows(&lock(&side.outputs).baseline()), DRIFT_BASELINE_ROWS);
        // ... until a full window comes.
        side.reset();
        side.keep_outputs(&scores(DRIFT_BASELINE_ROWS + 1));
        assert_eq!(
            rows(&lock(&side.outputs).baseline()),
            DRIFT_BASELINE_ROWS + 1
        );
    }
}
