//! What serves a request: a loaded model version with its signature and batcher, and the
//! router that maps the `{m}` of a URL to the [`Route`] that picks one.
//!
//! The router is the one place that decides which version answers a name: a model, an alias
//! or a pinned version is answered by one deployment; an endpoint by its traffic policy's
//! primary, canary and shadows (see [`crate::route`]).
//!
//! Every prediction is watched ([`Watchers`]): its batch goes into the metrics, and, when a
//! recorder is set, a prediction record (inputs as the signature names them, outputs, latency)
//! is handed to it. In `group` durability that hand-over never waits; in `sync` the answer
//! waits until the record is on disk, and a record that cannot be made durable fails the
//! request with a 503 rather than answering something that would not be on record.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use arrow_array::RecordBatch;
use axum::http::HeaderMap;
use berth_core::{FeatureMatrix, Field, ModelInfo, NamedTensor, Signature};
use berth_features::Pipeline;
use berth_records::{Durability, PredictionRecord, RecordColumns, Recorder, Role};
use berth_runtime::Model;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::batcher::{BatchConfig, BatchError, Batched, Batcher};
use crate::metrics::{BatchHistograms, ServeMetrics};
use crate::monitoring::{LiveProfiles, ScoredRows, VersionMonitor};
use crate::protocol::row_value;
use crate::route::{Route, TrafficWindows};
use crate::validate::{Columns, ValidationError, validate, validate_batch};

/// What watches every prediction a router's deployments make.
#[derive(Clone, Default)]
pub struct Watchers {
    pub metrics: Arc<ServeMetrics>,
    /// Where prediction records go; none keeps no records (`berth serve`).
    pub recorder: Option<(Recorder, Durability)>,
    /// Live profile windows, for versions that have a reference profile.
    pub profiles: Option<LiveProfiles>,
}

/// Who asked, as the prediction record tells it.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    /// The name the client called (endpoint, `model@alias`, `model`).
    pub endpoint: &'a str,
    /// `v2`, `v1`, `mlflow`.
    pub protocol: &'static str,
    pub arrived: Instant,
    pub time: DateTime<Utc>,
    /// The request's headers, where a sticky key may be read.
    pub headers: Option<&'a HeaderMap>,
}

impl<'a> Caller<'a> {
    /// A request to `endpoint` over `protocol`, arriving now.
    pub fn new(endpoint: &'a str, protocol: &'static str) -> Self {
        Self {
            endpoint,
            protocol,
            arrived: Instant::now(),
            time: Utc::now(),
            headers: None,
        }
    }

    /// The same caller, with the request's headers.
    pub fn with_headers(self, headers: &'a HeaderMap) -> Self {
        Self {
            headers: Some(headers),
            ..self
        }
    }
}

/// An answered prediction: its id (unique, time-ordered) and outputs.
#[derive(Debug)]
pub struct Prediction {
    pub id: String,
    pub batched: Batched,
}

/// A model version loaded and ready to score.
pub struct Deployment {
    pub model: String,
    pub version: i64,
    pub signature: Signature,
    pub info: ModelInfo,
    /// `model/version`, made once: metrics and the `x-berth-version` header name it per request.
    label: Arc<str>,
    batch_metrics: BatchHistograms,
    /// The signature's inputs, shared by the records of the predictions.
    input_fields: Arc<[Field]>,
    /// Their names, shared by requests that send the inputs in signature order.
    input_names: Arc<[String]>,
    batcher: Batcher,
    watchers: Watchers,
    /// What live drift is measured against; `None` when the version has no reference profile.
    monitor: Option<Arc<VersionMonitor>>,
    /// The version's fitted feature spec, compiled: run between validation and the model.
    features: Option<Arc<Pipeline>>,
}

/// Why a request was not answered, mapped to a status by each protocol.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A malformed request body (not about a field's value).
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// `sync` durability: the record of an answered prediction could not be made durable.
    #[error("the prediction could not be recorded durably ({0}); retry shortly")]
    NotRecorded(String),
}

impl ServeError {
    /// The version's fault rather than the client's: what a rollout counts as an error.
    pub fn is_server_error(&self) -> bool {
        matches!(self, ServeError::Batch(_) | ServeError::NotRecorded(_))
    }
}

impl Deployment {
    /// Starts serving `model` as `name`/`version` (spawns its batcher on the current runtime),
    /// watched by `watchers`; with a `monitor`, its inputs and outputs are profiled live.
    pub fn start(
        name: &str,
        version: i64,
        model: Arc<dyn Model>,
        signature: Signature,
        config: BatchConfig,
        watchers: &Watchers,
        monitor: Option<VersionMonitor>,
    ) -> Self {
        let label: Arc<str> = format!("{name}/{version}").into();
        Self {
            model: name.to_string(),
            version,
            batch_metrics: watchers.metrics.batch_histograms(&label),
            label,
            input_fields: signature.inputs.clone().into(),
            input_names: signature.inputs.iter().map(|f| f.name.clone()).collect(),
            signature,
            info: model.info().clone(),
            batcher: Batcher::spawn(model, config),
            watchers: watchers.clone(),
            monitor: monitor.map(Arc::new),
            features: None,
        }
    }

    /// The same deployment, turning requests into the model's columns with `features`.
    pub fn with_features(self, features: Option<Arc<Pipeline>>) -> Self {
        Self { features, ..self }
    }

    /// Validates `columns` against the signature, scores them in a batch and records the
    /// prediction as made in `role`.
    pub async fn predict(
        &self,
        columns: &Columns,
        caller: &Caller<'_>,
        role: Role,
    ) -> Result<Prediction, ServeError> {
        let observe_rejected = |e: &ValidationError| {
            self.watchers.metrics.observe_rejected(
                self.label(),
                e.problems.iter().map(|p| p.field.as_str()),
                |field| self.signature.inputs.iter().any(|f| f.name == field),
            );
        };
        let (rows, raw) = scored_rows(&self.signature, self.features.as_deref(), columns)
            .inspect_err(observe_rejected)?;
        let profiling = match (&self.watchers.profiles, &self.monitor) {
            (Some(profiles), Some(monitor)) => Some((profiles, monitor)),
            _ => None,
        };
        // What watchers read of the request (the record reads it, the profiler then takes it):
        // the raw fields a feature spec read, which are built already, or else one copy of the
        // validated rows, made only when someone watches.
        let watched = match raw {
            Some(batch) => Some(ScoredRows::Raw(batch)),
            None if profiling.is_some() || self.watchers.recorder.is_some() => {
                Some(ScoredRows::Matrix(Arc::new(rows.clone())))
            }
            None => None,
        };
        let batched = self.batcher.predict(rows).await?;
        self.batch_metrics
            .observe(batched.queued, batched.compute, batched.batch_rows);
        let id = PredictionRecord::new_id();
        // The outputs as the record and the profiler share them (the answer keeps its own).
        let outputs: Option<Arc<[NamedTensor]>> = watched.as_ref().map(|_| batched.outputs.clone());
        if let (Some((recorder, durability)), Some(watched), Some(outputs)) =
            (&self.watchers.recorder, &watched, &outputs)
        {
            let record = PredictionRecord {
                id: id.clone(),
                time: caller.time,
                endpoint: caller.endpoint.to_string(),
                model: self.model.clone(),
                version: self.version,
                role,
                protocol: caller.protocol,
                rows: watched.rows(),
                latency: caller.arrived.elapsed(),
                inputs: match watched {
                    ScoredRows::Matrix(rows) => RecordColumns::Matrix {
                        rows: rows.clone(),
                        fields: self.input_fields.clone(),
                    },
                    ScoredRows::Raw(_) => RecordColumns::Json(self.request_columns(columns)),
                },
                outputs: RecordColumns::Tensors(outputs.clone()),
            };
            match durability {
                Durability::Sync => recorder
                    .submit_durable(record)
                    .await
                    .map_err(|e| ServeError::NotRecorded(e.to_string()))?,
                // Never waits; a failure is counted by the recorder and logged here.
                Durability::Group => {
                    if let Err(e) = recorder.submit(record) {
                        tracing::error!("prediction {id} not recorded: {e}");
                    }
                }
            }
        }
        if let (Some((profiles, monitor)), Some(rows), Some(outputs)) =
            (profiling, watched, outputs)
        {
            profiles.observe(
                caller.endpoint,
                &self.model,
                self.version,
                monitor,
                rows,
                outputs,
            );
        }
        Ok(Prediction { id, batched })
    }

    /// The request's values of the signature's fields, as they came (a version with a feature
    /// spec records its raw inputs, not the spec's output).
    fn request_columns(&self, columns: &Columns) -> BTreeMap<String, Vec<Value>> {
        self.signature
            .inputs
            .iter()
            .map(|field| {
                let values = columns.column(&field.name).map_or_else(
                    || vec![Value::Null; columns.rows()],
                    |column| column.cloned().collect(),
                );
                (field.name.clone(), values)
            })
            .collect()
    }

    /// The names of the signature's inputs, in order.
    pub fn input_names(&self) -> Arc<[String]> {
        self.input_names.clone()
    }

    /// `model/version`, as the `x-berth-version` header says it.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// The matrix the model scores for `columns`: validated against the signature, then, for a
/// version with a feature spec, turned into the model's columns by it.
pub fn model_matrix(
    signature: &Signature,
    features: Option<&Pipeline>,
    columns: &Columns,
) -> Result<FeatureMatrix, ValidationError> {
    scored_rows(signature, features, columns).map(|(matrix, _)| matrix)
}

/// [`model_matrix`], and for a version with a feature spec the raw fields it read (what its
/// inputs are profiled on).
fn scored_rows(
    signature: &Signature,
    features: Option<&Pipeline>,
    columns: &Columns,
) -> Result<(FeatureMatrix, Option<RecordBatch>), ValidationError> {
    match features {
        None => Ok((validate(signature, columns)?, None)),
        Some(pipeline) => {
            let batch = validate_batch(signature, columns)?;
            let matrix = pipeline.apply(&batch).map_err(|e| {
                ValidationError::single(
                    "(features)",
                    "inputs the feature spec can turn into the model's columns",
                    e.to_string(),
                )
            })?;
            Ok((matrix, Some(batch)))
        }
    }
}

/// Each output as one value per row (`{name: [row values]}`), as prediction records hold them.
pub fn output_columns(outputs: &[NamedTensor]) -> BTreeMap<String, Vec<Value>> {
    outputs
        .iter()
        .map(|o| {
            let rows = o.tensor.shape().first().copied().unwrap_or(0);
            (o.name.clone(), (0..rows).map(|r| row_value(o, r)).collect())
        })
        .collect()
}

/// Names clients call (endpoints, `model@alias`, `model`) → the route that answers them.
#[derive(Default)]
pub struct Router {
    routes: RwLock<Arc<HashMap<String, Arc<Route>>>>,
    watchers: Watchers,
    windows: Arc<TrafficWindows>,
}

impl Router {
    /// A router whose deployments are watched by `watchers`.
    pub fn new(watchers: Watchers) -> Self {
        Self {
            routes: RwLock::default(),
            watchers,
            windows: Arc::default(),
        }
    }

    /// What watches the deployments of this router (give it to [`Deployment::start`]).
    pub fn watchers(&self) -> &Watchers {
        &self.watchers
    }

    /// The metrics of everything this router serves.
    pub fn metrics(&self) -> Arc<ServeMetrics> {
        self.watchers.metrics.clone()
    }

    /// The current window of every endpoint's versions, for rollout analysis.
    pub fn windows(&self) -> Arc<TrafficWindows> {
        self.windows.clone()
    }

    /// Replaces the whole table at once: requests already holding a route finish on it.
    pub fn replace(&self, routes: HashMap<String, Arc<Route>>) {
        self.watchers
            .metrics
            .set_loaded_versions(distinct(&routes).len());
        let table = Arc::new(routes);
        match self.routes.write() {
            Ok(mut guard) => *guard = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }

    fn table(&self) -> Arc<HashMap<String, Arc<Route>>> {
        match self.routes.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The route that answers `name`; pinned to `version`, the one deployment of that version.
    pub fn resolve(&self, name: &str, version: Option<&str>) -> Result<Arc<Route>, ServeError> {
        let table = self.table();
        let route = table
            .get(name)
            .ok_or_else(|| ServeError::NotFound(format!("model '{name}' is not served here")))?;
        let Some(v) = version else {
            return Ok(route.clone());
        };
        if let Some(d) = route.deployments().find(|d| d.version.to_string() == v) {
            return Ok(Arc::new(Route::single(d.clone())));
        }
        let pinned = format!("{}/{v}", route.primary().model);
        table.get(&pinned).cloned().ok_or_else(|| {
            ServeError::NotFound(format!(
                "version '{v}' of model '{name}' is not served here"
            ))
        })
    }

    /// The one deployment served, for protocols that name no model (MLflow's `/invocations`).
    pub fn only(&self) -> Result<Arc<Route>, ServeError> {
        let table = self.table();
        let distinct = distinct(&table);
        match distinct.as_slice() {
            [one] => Ok(Arc::new(Route::single((*one).clone()))),
            [] => Err(ServeError::NotFound("no model is served".into())),
            _ => Err(ServeError::BadRequest(format!(
                "{} model versions are served here: name one with the x-berth-model header (e.g. {})",
                distinct.len(),
                self.names().first().map_or("", String::as_str)
            ))),
        }
    }

    /// Every name served, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.table().keys().cloned().collect();
        names.sort();
        names
    }
}

/// The deployments of a table that answer, each once (many names can point to one).
fn distinct(table: &HashMap<String, Arc<Route>>) -> Vec<&Arc<Deployment>> {
    let mut distinct: Vec<&Arc<Deployment>> = Vec::new();
    for d in table.values().flat_map(|r| r.deployments()) {
        if !distinct.iter().any(|seen| Arc::ptr_eq(seen, d)) {
            distinct.push(d);
        }
    }
    distinct
}
