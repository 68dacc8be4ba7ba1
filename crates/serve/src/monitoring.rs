//! Live drift: the inputs of every prediction, summed off the hot path into one-minute profile
//! windows per endpoint and version, against the version's reference profile (stored with the
//! version when it was registered with reference data).
//!
//! Serving hands each answered batch to [`LiveProfiles::observe`], which never waits: the rows
//! go through a bounded channel (a full channel drops the observation and counts it in
//! `berth_monitor_dropped_rows_total`) to one task that profiles them in groups and merges the
//! result into its window — merging is adding, so windows combine exactly into any range.
//! `GET /api/v1/endpoints/{e}/drift?from=&to=` merges the windows of a range and compares them
//! with the reference ([`berth_monitor::drift_profiles`], the default sample-size aware
//! method); the gauges `berth_feature_drift{endpoint,version,feature,method}` hold each
//! feature's score over the last hour, refreshed as observations arrive.
//!
//! Windows live in this process's memory for [`RETENTION`]; they are not yet written to the
//! store, so each replica answers for its own traffic.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_core::{FeatureMatrix, FieldType, Signature};
use berth_monitor::{
    ColumnKind, DriftConfig, DriftReport, Profile, ProfileBuilder, ReferenceProfile, drift_profiles,
};
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::protocol::json_error;

/// How long one window lasts.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long windows are kept.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Observations waiting for the profiling task at most.
const QUEUE: usize = 4096;

/// What identifies a window's traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    endpoint: String,
    model: String,
    version: i64,
}

/// One answered batch, as serving hands it over.
struct Observation {
    key: Key,
    at: DateTime<Utc>,
    reference: Arc<ReferenceProfile>,
    signature: Arc<Signature>,
    rows: FeatureMatrix,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    endpoint: String,
    version: String,
    feature: String,
    method: String,
}

#[derive(Default)]
struct Windows {
    /// Window start (ms since the epoch) → profile, per endpoint and version.
    by_key: HashMap<Key, BTreeMap<i64, Profile>>,
    references: HashMap<Key, Arc<ReferenceProfile>>,
}

/// The live profiles of every endpoint this process serves; cheap to clone.
#[derive(Clone)]
pub struct LiveProfiles {
    queue: mpsc::Sender<Observation>,
    windows: Arc<Mutex<Windows>>,
    dropped_rows: Counter,
    drift: Family<DriftLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl LiveProfiles {
    /// Starts the profiling task on the current runtime; its metrics go into `registry`.
    pub fn start(registry: &mut Registry) -> Self {
        let (queue, observations) = mpsc::channel(QUEUE);
        let profiles = Self {
            queue,
            windows: Arc::default(),
            dropped_rows: Counter::default(),
            drift: Family::default(),
        };
        registry.register(
            "monitor_dropped_rows",
            "Rows not profiled because the profiling queue was full",
            profiles.dropped_rows.clone(),
        );
        registry.register(
            "feature_drift",
            "Drift score of each feature over the last hour against the reference",
            profiles.drift.clone(),
        );
        tokio::spawn(profiles.clone().run(observations));
        profiles
    }

    /// Hands an answered batch over; never waits.
    pub fn observe(
        &self,
        endpoint: &str,
        model: &str,
        version: i64,
        reference: &Arc<ReferenceProfile>,
        signature: &Arc<Signature>,
        rows: FeatureMatrix,
    ) {
        let n = rows.rows() as u64;
        let observation = Observation {
            key: Key {
                endpoint: endpoint.to_string(),
                model: model.to_string(),
                version,
            },
            at: Utc::now(),
            reference: reference.clone(),
            signature: signature.clone(),
            rows,
        };
        if self.queue.try_send(observation).is_err() {
            self.dropped_rows.inc_by(n);
        }
    }

    async fn run(self, mut observations: mpsc::Receiver<Observation>) {
        let mut pending: Vec<Observation> = Vec::new();
        loop {
            // Whatever arrived within a short while is profiled together.
            let next = tokio::time::timeout(Duration::from_millis(200), observations.recv()).await;
            match next {
                Ok(Some(o)) => {
                    pending.push(o);
                    while let Ok(o) = observations.try_recv() {
                        pending.push(o);
                    }
                }
                Ok(None) => return,
                Err(_) => {}
            }
            if !pending.is_empty() {
                let batch = std::mem::take(&mut pending);
                let this = self.clone();
                // Profiling is CPU work: off the async workers.
                let _ = tokio::task::spawn_blocking(move || this.absorb(batch)).await;
            }
        }
    }

    /// Profiles a group of observations into their windows and refreshes the gauges.
    fn absorb(&self, batch: Vec<Observation>) {
        let mut groups: HashMap<(Key, i64), Vec<Observation>> = HashMap::new();
        for o in batch {
            let start = window_start(o.at);
            groups.entry((o.key.clone(), start)).or_default().push(o);
        }
        let mut touched = Vec::new();
        for ((key, start), group) in groups {
            let reference = group[0].reference.clone();
            let mut builder = ProfileBuilder::new(&reference);
            for o in &group {
                observe_rows(&mut builder, &reference, &o.signature, &o.rows);
            }
            let profile = builder.finish();
            let Ok(mut windows) = self.windows.lock() else {
                return;
            };
            windows.references.insert(key.clone(), reference.clone());
            let series = windows.by_key.entry(key.clone()).or_default();
            match series.get_mut(&start) {
                Some(window) => {
                    if let Err(e) = window.merge(&profile) {
                        tracing::warn!("profile window of {}: {e}", key.endpoint);
                    }
                }
                None => {
                    series.insert(start, profile);
                }
            }
            let oldest = start - RETENTION.as_millis() as i64;
            series.retain(|&s, _| s >= oldest);
            touched.push(key);
        }
        let now = Utc::now();
        let hour_ago = now - chrono::Duration::hours(1);
        for key in touched {
            for (_, report) in self.reports(&key.endpoint, hour_ago, now) {
                for column in &report.columns {
                    let labels = DriftLabels {
                        endpoint: key.endpoint.clone(),
                        version: format!("{}/{}", key.model, key.version),
                        feature: column.column.clone(),
                        method: column.method.name().to_string(),
                    };
                    self.drift
                        .get_or_create(&labels)
                        .set(column.score.unwrap_or(0.0));
                }
            }
        }
    }

    /// Drift of `endpoint`'s traffic between `from` and `to`, per version that served it.
    fn reports(
        &self,
        endpoint: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<(VersionWindow, DriftReport)> {
        let Ok(windows) = self.windows.lock() else {
            return Vec::new();
        };
        let (from_ms, to_ms) = (window_start(from), to.timestamp_millis());
        let mut out = Vec::new();
        for (key, series) in windows
            .by_key
            .iter()
            .filter(|(k, _)| k.endpoint == endpoint)
        {
            let Some(reference) = windows.references.get(key) else {
                continue;
            };
            let mut merged: Option<Profile> = None;
            let mut count = 0;
            for (_, p) in series.range(from_ms..=to_ms) {
                count += 1;
                match &mut merged {
                    Some(m) => {
                        if m.merge(p).is_err() {
                            continue;
                        }
                    }
                    None => merged = Some(p.clone()),
                }
            }
            if let Some(merged) = merged {
                let report = drift_profiles(reference, &merged, &DriftConfig::default());
                let window = VersionWindow {
                    model: key.model.clone(),
                    version: key.version,
                    windows: count,
                };
                out.push((window, report));
            }
        }
        out.sort_by(|a, b| (&a.0.model, a.0.version).cmp(&(&b.0.model, b.0.version)));
        out
    }
}

fn window_start(at: DateTime<Utc>) -> i64 {
    let ms = at.timestamp_millis();
    ms - ms.rem_euclid(WINDOW.as_millis() as i64)
}

/// Feeds the model's input rows to `builder`, each column as the reference profiles it:
/// numbers as numbers (missing as NaN), categories by name (a category field's code becomes
/// its value; any other field's number its text).
fn observe_rows(
    builder: &mut ProfileBuilder<'_>,
    reference: &ReferenceProfile,
    signature: &Signature,
    rows: &FeatureMatrix,
) {
    for (c, field) in signature.inputs.iter().enumerate() {
        let column = (0..rows.rows()).map(|r| rows.row(r)[c]);
        let kind = reference
            .columns
            .iter()
            .find(|rc| rc.name == field.name)
            .map(|rc| rc.layout.kind());
        match (kind, &field.field_type) {
            (Some(ColumnKind::Categorical), FieldType::Category { values }) => {
                let names: Vec<Option<&str>> = column
                    .map(|x| {
                        (!x.is_nan())
                            .then(|| values.get(x as usize).map(String::as_str))
                            .flatten()
                    })
                    .collect();
                builder.observe_categories(&field.name, names);
            }
            (Some(ColumnKind::Categorical), _) => {
                let texts: Vec<Option<String>> = column
                    .map(|x| (!x.is_nan()).then(|| x.to_string()))
                    .collect();
                builder.observe_categories(&field.name, texts.iter().map(|t| t.as_deref()));
            }
            _ => {
                let numbers: Vec<f64> = column.map(f64::from).collect();
                builder.observe_numeric(&field.name, &numbers);
            }
        }
    }
}

/// The window range of one version in a drift answer.
#[derive(Debug, Serialize)]
pub struct VersionWindow {
    pub model: String,
    pub version: i64,
    /// One-minute windows merged.
    pub windows: usize,
}

#[derive(Debug, Serialize)]
struct VersionDrift {
    #[serde(flatten)]
    window: VersionWindow,
    report: DriftReport,
}

#[derive(Debug, Serialize)]
struct EndpointDrift {
    endpoint: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    versions: Vec<VersionDrift>,
}

#[derive(Debug, Deserialize)]
struct Range {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// `GET /api/v1/endpoints/{e}/drift?from=RFC3339&to=RFC3339` (default: the last hour).
async fn endpoint_drift(
    State(profiles): State<LiveProfiles>,
    Path(endpoint): Path<String>,
    range: Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(range)) = range else {
        return json_error(
            axum::http::StatusCode::BAD_REQUEST,
            "from and to must be RFC 3339 times, e.g. 2026-11-22T10:00:00Z",
        );
    };
    let to = range.to.unwrap_or_else(Utc::now);
    let from = range.from.unwrap_or(to - chrono::Duration::hours(1));
    if from > to {
        return json_error(
            axum::http::StatusCode::BAD_REQUEST,
            format!("from ({from}) is after to ({to})"),
        );
    }
    let versions = tokio::task::spawn_blocking({
        let (profiles, endpoint) = (profiles.clone(), endpoint.clone());
        move || profiles.reports(&endpoint, from, to)
    })
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|(window, report)| VersionDrift { window, report })
    .collect();
    Json(EndpointDrift {
        endpoint,
        from,
        to,
        versions,
    })
    .into_response()
}

/// The live drift API over `profiles`.
pub fn drift_router(profiles: LiveProfiles) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/endpoints/{e}/drift", get(endpoint_drift))
        .with_state(profiles)
}

/// A version's reference profile as stored with it, if it has one that reads.
pub fn reference_of(stored: Option<&serde_json::Value>, label: &str) -> Option<ReferenceProfile> {
    let value = stored?;
    match serde_json::from_value::<ReferenceProfile>(value.clone()) {
        Ok(profile) => Some(profile),
        Err(e) => {
            tracing::warn!("{label}: stored reference profile unreadable ({e}); no live drift");
            None
        }
    }
}
