//! Live monitoring of what is served: the inputs and outputs of every prediction, summed off the
//! hot path into one-minute profile windows per endpoint and version, kept in the store, and
//! compared with the version's reference profiles (stored with the version when it was
//! registered with reference data).
//!
//! Serving hands each answered batch to [`LiveProfiles::observe`], which never waits: the rows
//! go through a bounded channel (a full channel drops the observation and counts it in
//! `berth_monitor_dropped_rows_total`) to one task that profiles them in groups and merges the
//! result into its window. Every [`LiveProfilesConfig::flush_interval`] the windows that
//! changed are written to the store under this process's replica id, replacing what it wrote
//! for them before; a store that is down only delays this (windows stay in memory until
//! written). Merging profiles is adding, so readers combine the windows of every replica and of
//! earlier runs of this one into any time range.
//!
//! `GET /api/v1/endpoints/{e}/drift?from=&to=` answers per version: input drift (`report`) and
//! prediction drift (`outputs`) against the references, each decided by the version's drift
//! settings. After each flush the gauges `berth_feature_drift`, `berth_prediction_drift` and
//! `berth_data_quality` are refreshed over the last hour for the endpoints this process served.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::RecordBatch;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_core::{FeatureMatrix, FieldType, NamedTensor, Signature, concat_outputs};
use berth_monitor::{
    ColumnKind, DriftConfig, DriftReport, Profile, ProfileBuilder, ReferenceProfile, drift_profiles,
};
use berth_store::{MetadataStore, ProfileWindowRow, VersionRecord};
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
/// Observations waiting for the profiling task at most: a [`GATHER`] of 300k requests a second.
const QUEUE: usize = 32_768;
/// How long observations are gathered before they are profiled together.
const GATHER: Duration = Duration::from_millis(100);
/// How far back the gauges look.
const GAUGE_SPAN: Duration = Duration::from_secs(3600);

/// How live profiles are kept.
#[derive(Debug, Clone)]
pub struct LiveProfilesConfig {
    /// How often changed windows are written to the store (and the gauges refreshed).
    pub flush_interval: Duration,
    /// How long windows are kept in the store.
    pub retention: Duration,
}

impl Default for LiveProfilesConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What a version is monitored against: its reference profiles (inputs, and outputs when the
/// model was scored on the reference data), its drift settings, and the signature that says
/// how to read its input rows.
#[derive(Debug)]
pub struct VersionMonitor {
    pub inputs: ReferenceProfile,
    pub outputs: Option<ReferenceProfile>,
    pub drift: DriftConfig,
    pub signature: Signature,
}

impl VersionMonitor {
    /// The monitor of a stored version; `None` when it has no reference profile (or an
    /// unreadable one, which is logged).
    pub fn of(record: &VersionRecord) -> Option<VersionMonitor> {
        let label = format!("{}/{}", record.model, record.version);
        let read = |what: &str, value: Option<&serde_json::Value>| {
            let value = value?;
            serde_json::from_value::<ReferenceProfile>(value.clone())
                .map_err(|e| tracing::warn!("{label}: stored {what} unreadable ({e})"))
                .ok()
        };
        let inputs = read("reference profile", record.reference_profile.as_ref())?;
        let outputs = read("output profile", record.output_profile.as_ref());
        let drift = match &record.drift_config {
            Some(v) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
                tracing::warn!("{label}: stored drift settings unreadable ({e}); using defaults");
                DriftConfig::default()
            }),
            None => DriftConfig::default(),
        };
        let signature = serde_json::from_value(record.signature.clone())
            .map_err(|e| tracing::warn!("{label}: stored signature unreadable ({e})"))
            .ok()?;
        Some(VersionMonitor {
            inputs,
            outputs,
            drift,
            signature,
        })
    }
}

/// What identifies a window's traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    endpoint: String,
    model: String,
    version: i64,
}

/// The rows a prediction scored, as profiles read them.
pub enum ScoredRows {
    /// Validated rows in signature order (a version without a feature spec), shared with the
    /// prediction record.
    Matrix(Arc<FeatureMatrix>),
    /// The raw fields a version's feature spec read (its signature's fields).
    Raw(RecordBatch),
}

/// [`ScoredRows`] borrowed.
#[derive(Clone, Copy)]
pub enum RowsRef<'a> {
    Matrix(&'a FeatureMatrix),
    Raw(&'a RecordBatch),
}

impl ScoredRows {
    fn as_ref(&self) -> RowsRef<'_> {
        match self {
            ScoredRows::Matrix(m) => RowsRef::Matrix(m),
            ScoredRows::Raw(b) => RowsRef::Raw(b),
        }
    }

    pub fn rows(&self) -> usize {
        match self {
            ScoredRows::Matrix(m) => m.rows(),
            ScoredRows::Raw(b) => b.num_rows(),
        }
    }
}

/// One answered batch, as serving hands it over.
struct Observation {
    key: Key,
    at: DateTime<Utc>,
    monitor: Arc<VersionMonitor>,
    rows: ScoredRows,
    outputs: Arc<[NamedTensor]>,
}

/// A window's profiles, as stored (JSON) and merged.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WindowProfiles {
    inputs: Profile,
    outputs: Option<Profile>,
}

impl WindowProfiles {
    fn rows(&self) -> u64 {
        self.inputs.rows()
    }

    fn merge(&mut self, other: &WindowProfiles) -> Result<(), berth_monitor::MonitorError> {
        self.inputs.merge(&other.inputs)?;
        match (&mut self.outputs, &other.outputs) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => {
                self.outputs = Some(theirs.clone());
                Ok(())
            }
            (_, None) => Ok(()),
        }
    }
}

struct Window {
    profiles: WindowProfiles,
    /// Changed since last written to the store.
    dirty: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    endpoint: String,
    version: String,
    feature: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutputDriftLabels {
    endpoint: String,
    version: String,
    output: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QualityLabels {
    endpoint: String,
    version: String,
    feature: String,
    check: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Default)]
struct LiveState {
    /// This process's windows not yet known to be in the store, or still filling: window
    /// start (ms since the epoch) → profiles, per endpoint and version.
    windows: HashMap<Key, BTreeMap<i64, Window>>,
    monitors: HashMap<(String, i64), Arc<VersionMonitor>>,
    /// Endpoint → start of the last window this process profiled traffic of (the gauges cover
    /// the endpoints served within [`GAUGE_SPAN`]).
    served: HashMap<String, i64>,
}

/// The live profiles of every endpoint this process serves; cheap to clone.
#[derive(Clone)]
pub struct LiveProfiles {
    queue: mpsc::Sender<Observation>,
    state: Arc<Mutex<LiveState>>,
    store: MetadataStore,
    /// This process's id in the store's windows.
    replica: Arc<str>,
    config: LiveProfilesConfig,
    dropped_rows: Counter,
    feature_drift: Family<DriftLabels, FloatGauge>,
    prediction_drift: Family<OutputDriftLabels, FloatGauge>,
    quality: Family<QualityLabels, FloatGauge>,
}

/// The drift of one version's traffic in a time range.
#[derive(Debug, Serialize, Deserialize)]
pub struct VersionDrift {
    pub model: String,
    pub version: i64,
    /// One-minute windows merged (a window served by two replicas counts twice).
    pub windows: usize,
    /// Input drift and data quality against the reference data.
    pub report: DriftReport,
    /// Prediction drift against the model's outputs on the reference data; absent when the
    /// version has no output profile.
    pub outputs: Option<DriftReport>,
}

impl LiveProfiles {
    /// Starts the profiling and flushing tasks on the current runtime; windows go to `store`,
    /// metrics into `registry`.
    pub fn start(
        registry: &mut Registry,
        store: MetadataStore,
        config: LiveProfilesConfig,
    ) -> Self {
        let (queue, observations) = mpsc::channel(QUEUE);
        let profiles = Self {
            queue,
            state: Arc::default(),
            store,
            replica: uuid::Uuid::now_v7().to_string().into(),
            config,
            dropped_rows: Counter::default(),
            feature_drift: Family::default(),
            prediction_drift: Family::default(),
            quality: Family::default(),
        };
        registry.register(
            "monitor_dropped_rows",
            "Rows not profiled because the profiling queue was full",
            profiles.dropped_rows.clone(),
        );
        registry.register(
            "feature_drift",
            "Drift score of each input feature over the last hour against the reference",
            profiles.feature_drift.clone(),
        );
        registry.register(
            "prediction_drift",
            "Drift score of each output over the last hour against the model's outputs on the reference",
            profiles.prediction_drift.clone(),
        );
        registry.register(
            "data_quality",
            "Data quality of each input feature over the last hour: missing_share, out_of_range_share, unseen_share, non_finite and rejected",
            profiles.quality.clone(),
        );
        tokio::spawn(profiles.clone().profile(observations));
        tokio::spawn(profiles.clone().flush_periodically());
        profiles
    }

    /// Hands an answered batch over; never waits.
    pub fn observe(
        &self,
        endpoint: &str,
        model: &str,
        version: i64,
        monitor: &Arc<VersionMonitor>,
        rows: ScoredRows,
        outputs: Arc<[NamedTensor]>,
    ) {
        let n = rows.rows() as u64;
        let observation = Observation {
            key: Key {
                endpoint: endpoint.to_string(),
                model: model.to_string(),
                version,
            },
            at: Utc::now(),
            monitor: monitor.clone(),
            rows,
            outputs,
        };
        if self.queue.try_send(observation).is_err() {
            self.dropped_rows.inc_by(n);
        }
    }

    async fn profile(self, mut observations: mpsc::Receiver<Observation>) {
        let mut open = true;
        while open && let Some(first) = observations.recv().await {
            // What arrives within GATHER is profiled together: one builder per window for many
            // requests, rather than one per request. The task sleeps meanwhile and then takes
            // what is queued, rather than waking for every observation.
            tokio::time::sleep(GATHER).await;
            let mut batch = Vec::with_capacity(observations.len() + 1);
            batch.push(first);
            loop {
                match observations.try_recv() {
                    Ok(o) => batch.push(o),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let this = self.clone();
            // Profiling is CPU work: off the async workers.
            let _ = tokio::task::spawn_blocking(move || this.absorb(batch)).await;
        }
    }

    /// Profiles a group of observations into their windows.
    fn absorb(&self, batch: Vec<Observation>) {
        // A gather holds a few groups at most: found by comparison, no key cloned per request.
        let mut groups: Vec<(i64, Vec<Observation>)> = Vec::new();
        for o in batch {
            let start = window_start(o.at);
            match groups
                .iter_mut()
                .find(|(s, g)| *s == start && g[0].key == o.key)
            {
                Some((_, group)) => group.push(o),
                None => groups.push((start, vec![o])),
            }
        }
        for (start, group) in groups {
            let key = group[0].key.clone();
            let monitor = group[0].monitor.clone();
            let parts: Vec<RowsRef<'_>> = group.iter().map(|o| o.rows.as_ref()).collect();
            let profiles = profile_rows(&monitor, &parts, group.iter().map(|o| &o.outputs[..]));
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            state
                .monitors
                .insert((key.model.clone(), key.version), monitor.clone());
            state.served.insert(key.endpoint.clone(), start);
            let series = state.windows.entry(key.clone()).or_default();
            match series.get_mut(&start) {
                Some(window) => {
                    if let Err(e) = window.profiles.merge(&profiles) {
                        tracing::warn!("profile window of {}: {e}", key.endpoint);
                    }
                    window.dirty = true;
                }
                None => {
                    series.insert(
                        start,
                        Window {
                            profiles,
                            dirty: true,
                        },
                    );
                }
            }
        }
    }

    async fn flush_periodically(self) {
        let mut ticks = tokio::time::interval(self.config.flush_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_cleanup = None::<tokio::time::Instant>;
        loop {
            ticks.tick().await;
            if let Err(e) = self.flush().await {
                tracing::warn!("profile windows not written yet (kept in memory): {e}");
            }
            if last_cleanup.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                let before = Utc::now() - self.config.retention;
                match self
                    .store
                    .delete_profile_windows_before(before.timestamp_millis())
                    .await
                {
                    Ok(_) => last_cleanup = Some(tokio::time::Instant::now()),
                    Err(e) => tracing::warn!("old profile windows not deleted: {e}"),
                }
            }
            self.refresh_gauges().await;
        }
    }

    /// Writes the windows that changed since they were last written, and forgets the written
    /// ones that can no longer change. Call it once more at shutdown.
    pub async fn flush(&self) -> Result<(), berth_store::StoreError> {
        let current = window_start(Utc::now());
        let rows: Vec<ProfileWindowRow> = {
            let Ok(state) = self.state.lock() else {
                return Ok(());
            };
            state
                .windows
                .iter()
                .flat_map(|(key, series)| {
                    series
                        .iter()
                        .filter(|(_, w)| w.dirty)
                        .map(move |(start, w)| (key, *start, w))
                })
                .filter_map(|(key, start, w)| {
                    let profile = serde_json::to_value(&w.profiles).ok()?;
                    Some(ProfileWindowRow {
                        endpoint: key.endpoint.clone(),
                        model: key.model.clone(),
                        version: key.version,
                        window_start_ms: start,
                        replica: self.replica.to_string(),
                        rows: w.profiles.rows() as i64,
                        profile,
                    })
                })
                .collect()
        };
        self.store.upsert_profile_windows(&rows).await?;
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        for row in &rows {
            let key = Key {
                endpoint: row.endpoint.clone(),
                model: row.model.clone(),
                version: row.version,
            };
            if let Some(series) = state.windows.get_mut(&key) {
                // Only what was written is clean: the window may have changed meanwhile, and
                // its new rows would be written next time.
                if let Some(w) = series.get_mut(&row.window_start_ms)
                    && w.profiles.rows() as i64 == row.rows
                {
                    w.dirty = false;
                }
            }
        }
        // Past windows that are written will not change again: the store has them.
        for series in state.windows.values_mut() {
            series.retain(|&start, w| w.dirty || start >= current - WINDOW.as_millis() as i64);
        }
        state.windows.retain(|_, series| !series.is_empty());
        Ok(())
    }

    /// Drift of `endpoint`'s traffic between `from` and `to`, per version that served it: every
    /// replica's windows from the store, with this process's own windows from memory (fresher).
    pub async fn reports(
        &self,
        endpoint: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<VersionDrift>, berth_store::StoreError> {
        let (from_ms, to_ms) = (window_start(from), to.timestamp_millis());
        let stored = self
            .store
            .list_profile_windows(endpoint, from_ms, to_ms)
            .await?;
        let mut merged: BTreeMap<(String, i64), (WindowProfiles, usize)> = BTreeMap::new();
        let mut add = |model: &str, version: i64, profiles: WindowProfiles| match merged
            .get_mut(&(model.to_string(), version))
        {
            Some((m, count)) => {
                if let Err(e) = m.merge(&profiles) {
                    tracing::warn!("profile window of {endpoint} not merged: {e}");
                }
                *count += 1;
            }
            None => {
                merged.insert((model.to_string(), version), (profiles, 1));
            }
        };
        let mine: Vec<(Key, i64, WindowProfiles)> = {
            let Ok(state) = self.state.lock() else {
                return Ok(Vec::new());
            };
            state
                .windows
                .iter()
                .filter(|(k, _)| k.endpoint == endpoint)
                .flat_map(|(k, series)| {
                    series
                        .range(from_ms..=to_ms)
                        .map(move |(start, w)| (k.clone(), *start, w.profiles.clone()))
                })
                .collect()
        };
        let in_memory: HashSet<(String, i64, i64)> = mine
            .iter()
            .map(|(k, start, _)| (k.model.clone(), k.version, *start))
            .collect();
        for row in stored {
            let own = *row.replica == *self.replica;
            if own && in_memory.contains(&(row.model.clone(), row.version, row.window_start_ms)) {
                continue;
            }
            match serde_json::from_value::<WindowProfiles>(row.profile) {
                Ok(profiles) => add(&row.model, row.version, profiles),
                Err(e) => {
                    tracing::warn!("a stored profile window of {endpoint} is unreadable: {e}")
                }
            }
        }
        for (key, _, profiles) in mine {
            add(&key.model, key.version, profiles);
        }
        let mut out = Vec::new();
        for ((model, version), (profiles, windows)) in merged {
            let Some(monitor) = self.monitor(&model, version).await? else {
                continue;
            };
            let report = drift_profiles(&monitor.inputs, &profiles.inputs, &monitor.drift);
            let outputs = match (&monitor.outputs, &profiles.outputs) {
                (Some(reference), Some(current)) => {
                    Some(drift_profiles(reference, current, &monitor.drift))
                }
                _ => None,
            };
            out.push(VersionDrift {
                model,
                version,
                windows,
                report,
                outputs,
            });
        }
        Ok(out)
    }

    /// The monitor of a version: the one serving handed over, else read from the store.
    async fn monitor(
        &self,
        model: &str,
        version: i64,
    ) -> Result<Option<Arc<VersionMonitor>>, berth_store::StoreError> {
        let known = self
            .state
            .lock()
            .ok()
            .and_then(|s| s.monitors.get(&(model.to_string(), version)).cloned());
        if known.is_some() {
            return Ok(known);
        }
        let Some(record) = self.store.get_version(model, version).await? else {
            return Ok(None);
        };
        let monitor = VersionMonitor::of(&record).map(Arc::new);
        if let (Some(m), Ok(mut state)) = (&monitor, self.state.lock()) {
            state
                .monitors
                .insert((model.to_string(), version), m.clone());
        }
        Ok(monitor)
    }

    /// Sets the gauges from the last hour of every endpoint this process served in that hour.
    async fn refresh_gauges(&self) {
        let now = Utc::now();
        let from = now - GAUGE_SPAN;
        let endpoints: Vec<String> = match self.state.lock() {
            Ok(mut state) => {
                state
                    .served
                    .retain(|_, &mut last| last >= window_start(from));
                state.served.keys().cloned().collect()
            }
            Err(_) => return,
        };
        let mut all = Vec::new();
        for endpoint in endpoints {
            match self.reports(&endpoint, from, now).await {
                Ok(reports) => all.push((endpoint, reports)),
                Err(e) => {
                    tracing::warn!("drift gauges of {endpoint} not refreshed: {e}");
                    return;
                }
            }
        }
        self.feature_drift.clear();
        self.prediction_drift.clear();
        self.quality.clear();
        for (endpoint, reports) in all {
            for v in reports {
                let version = format!("{}/{}", v.model, v.version);
                for column in &v.report.columns {
                    let feature = column.column.clone();
                    self.feature_drift
                        .get_or_create(&DriftLabels {
                            endpoint: endpoint.clone(),
                            version: version.clone(),
                            feature: feature.clone(),
                            method: column.method.name().to_string(),
                        })
                        .set(column.score.unwrap_or(0.0));
                    let q = &column.quality;
                    let checks = [
                        ("missing_share", q.missing_current),
                        ("out_of_range_share", q.out_of_range_current),
                        ("unseen_share", q.unseen_current),
                        ("non_finite", q.non_finite_current as f64),
                        ("rejected", q.rejected_current as f64),
                    ];
                    for (check, value) in checks {
                        self.quality
                            .get_or_create(&QualityLabels {
                                endpoint: endpoint.clone(),
                                version: version.clone(),
                                feature: feature.clone(),
                                check: check.to_string(),
                            })
                            .set(value);
                    }
                }
                for column in v.outputs.iter().flat_map(|o| &o.columns) {
                    self.prediction_drift
                        .get_or_create(&OutputDriftLabels {
                            endpoint: endpoint.clone(),
                            version: version.clone(),
                            output: column.column.clone(),
                            method: column.method.name().to_string(),
                        })
                        .set(column.score.unwrap_or(0.0));
                }
            }
        }
    }
}

/// The profiles of some answered rows and their outputs against `monitor`'s references.
fn profile_rows<'o>(
    monitor: &VersionMonitor,
    parts: &[RowsRef<'_>],
    outputs: impl Iterator<Item = &'o [NamedTensor]>,
) -> WindowProfiles {
    let mut inputs = ProfileBuilder::new(&monitor.inputs);
    // The matrices of all the group's requests at once: a column is read once per group.
    let matrices: Vec<&FeatureMatrix> = parts
        .iter()
        .filter_map(|p| match p {
            RowsRef::Matrix(m) => Some(*m),
            RowsRef::Raw(_) => None,
        })
        .collect();
    if matrices.iter().any(|m| m.rows() > 0) {
        observe_rows(&mut inputs, &monitor.inputs, &monitor.signature, &matrices);
    }
    for part in parts {
        if let RowsRef::Raw(batch) = part {
            observe_raw(&mut inputs, &monitor.signature, batch);
        }
    }
    let outputs = monitor.outputs.as_ref().map(|reference| {
        let mut builder = ProfileBuilder::new(reference);
        // All the group's outputs at once when they line up (they do for one version).
        let parts: Vec<&[NamedTensor]> = outputs.collect();
        match concat_outputs(&parts) {
            Some(joined) => builder.observe_outputs(&joined),
            None => parts.iter().for_each(|o| builder.observe_outputs(o)),
        }
        builder.finish()
    });
    WindowProfiles {
        inputs: inputs.finish(),
        outputs,
    }
}

/// The profiles of predictions made outside the server — batch scoring, and any other path
/// that scores rows itself — in the same one-minute windows as served traffic, so they show
/// in the same drift reports and gauges. Built where the rows are scored (nothing is queued,
/// so nothing is dropped), then written to the store under a replica id of their own.
pub struct ScoredProfiles {
    key: Key,
    monitor: Arc<VersionMonitor>,
    windows: BTreeMap<i64, WindowProfiles>,
    replica: String,
}

impl ScoredProfiles {
    /// Profiles for `model/version` scored under the name `endpoint` (what the caller named:
    /// an endpoint, `NAME@ALIAS` or `NAME/VERSION`, as in serving).
    pub fn new(endpoint: &str, model: &str, version: i64, monitor: Arc<VersionMonitor>) -> Self {
        Self {
            key: Key {
                endpoint: endpoint.to_string(),
                model: model.to_string(),
                version,
            },
            monitor,
            windows: BTreeMap::new(),
            replica: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// Adds scored rows and their outputs to the current window.
    pub fn observe(&mut self, rows: RowsRef<'_>, outputs: &[NamedTensor]) {
        let profiles = profile_rows(&self.monitor, &[rows], std::iter::once(outputs));
        let label = &self.key.endpoint;
        match self.windows.entry(window_start(Utc::now())) {
            std::collections::btree_map::Entry::Occupied(mut window) => {
                if let Err(e) = window.get_mut().merge(&profiles) {
                    tracing::warn!("profile window of {label}: {e}");
                }
            }
            std::collections::btree_map::Entry::Vacant(window) => {
                window.insert(profiles);
            }
        }
    }

    /// Rows profiled so far.
    pub fn rows(&self) -> u64 {
        self.windows.values().map(WindowProfiles::rows).sum()
    }

    /// Writes the windows to the store (again: a later call replaces what an earlier one
    /// wrote, so it can be called as scoring goes on).
    pub async fn write(&self, store: &MetadataStore) -> Result<(), berth_store::StoreError> {
        let rows: Vec<ProfileWindowRow> = self
            .windows
            .iter()
            .filter_map(|(start, profiles)| {
                Some(ProfileWindowRow {
                    endpoint: self.key.endpoint.clone(),
                    model: self.key.model.clone(),
                    version: self.key.version,
                    window_start_ms: *start,
                    replica: self.replica.clone(),
                    rows: profiles.rows() as i64,
                    profile: serde_json::to_value(profiles).ok()?,
                })
            })
            .collect();
        store.upsert_profile_windows(&rows).await
    }
}

/// Feeds the signature's fields of a raw batch to `builder` (other columns of the batch, such
/// as a row id, are not the version's inputs).
fn observe_raw(builder: &mut ProfileBuilder<'_>, signature: &Signature, batch: &RecordBatch) {
    let schema = batch.schema();
    let fields: Vec<usize> = signature
        .inputs
        .iter()
        .filter_map(|f| schema.index_of(&f.name).ok())
        .collect();
    match batch.project(&fields) {
        Ok(inputs) => builder.observe_batch(&inputs),
        Err(e) => tracing::warn!("raw inputs not profiled: {e}"),
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
    parts: &[&FeatureMatrix],
) {
    for (c, field) in signature.inputs.iter().enumerate() {
        // Column `c` of every part in turn, read in place (no matrix of the whole group).
        let column = parts.iter().flat_map(|rows| {
            rows.iter_rows()
                .map(move |row| row.get(c).copied().unwrap_or(f32::NAN))
        });
        let kind = reference.column(&field.name).map(|rc| rc.layout.kind());
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

/// The answer of the drift API: an endpoint's drift per version over a time range.
#[derive(Debug, Serialize, Deserialize)]
pub struct EndpointDrift {
    pub endpoint: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub versions: Vec<VersionDrift>,
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
            StatusCode::BAD_REQUEST,
            "from and to must be RFC 3339 times, e.g. 2026-11-22T10:00:00Z",
        );
    };
    let to = range.to.unwrap_or_else(Utc::now);
    let from = range.from.unwrap_or(to - chrono::Duration::hours(1));
    if from > to {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("from ({from}) is after to ({to})"),
        );
    }
    let store_down = |e: berth_store::StoreError| {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store cannot be read: {e}"),
        )
    };
    let versions = match profiles.reports(&endpoint, from, to).await {
        Ok(v) => v,
        Err(e) => return store_down(e),
    };
    if versions.is_empty() {
        match profiles.store.get_endpoint(&endpoint).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return json_error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no endpoint named {endpoint:?}, and no traffic profiled under that name"
                    ),
                );
            }
            Err(e) => return store_down(e),
        }
    }
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
