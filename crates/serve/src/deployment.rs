//! What serves a request: a loaded model version with its signature and batcher, and the
//! router that maps the `{m}` of a URL to one.
//!
//! The router is the one place that decides which version answers a name. Today a name maps
//! to one deployment (its primary); canary weights, shadows and sticky assignment plug in here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use berth_core::{ModelInfo, Signature};
use berth_runtime::Model;

use crate::batcher::{BatchConfig, BatchError, Batched, Batcher};
use crate::metrics::ServeMetrics;
use crate::validate::{Columns, ValidationError, validate};

/// A model version loaded and ready to score.
pub struct Deployment {
    pub model: String,
    pub version: i64,
    pub signature: Signature,
    pub info: ModelInfo,
    batcher: Batcher,
    metrics: Arc<ServeMetrics>,
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
}

impl Deployment {
    /// Starts serving `model` as `name`/`version` (spawns its batcher on the current runtime);
    /// its batches are recorded in `metrics`.
    pub fn start(
        name: &str,
        version: i64,
        model: Arc<dyn Model>,
        signature: Signature,
        config: BatchConfig,
        metrics: Arc<ServeMetrics>,
    ) -> Self {
        Self {
            model: name.to_string(),
            version,
            signature,
            info: model.info().clone(),
            batcher: Batcher::spawn(model, config),
            metrics,
        }
    }

    /// Validates `columns` against the signature and scores them in a batch.
    pub async fn predict(&self, columns: &Columns) -> Result<Batched, ServeError> {
        let rows = validate(&self.signature, columns)?;
        let batched = self.batcher.predict(rows).await?;
        self.metrics.observe_batch(
            &self.label(),
            batched.queued,
            batched.compute,
            batched.batch_rows,
        );
        Ok(batched)
    }

    /// `model/version`, as the `x-berth-version` header says it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.model, self.version)
    }
}

/// Names clients call (endpoints, `model@alias`, `model`) → the deployment that answers.
#[derive(Default)]
pub struct Router {
    routes: RwLock<Arc<HashMap<String, Arc<Deployment>>>>,
    metrics: Arc<ServeMetrics>,
}

impl Router {
    /// The metrics of everything this router serves.
    pub fn metrics(&self) -> Arc<ServeMetrics> {
        self.metrics.clone()
    }

    /// Replaces the whole table at once: requests already holding a deployment finish on it.
    pub fn replace(&self, routes: HashMap<String, Arc<Deployment>>) {
        self.metrics.set_loaded_versions(distinct(&routes).len());
        let table = Arc::new(routes);
        match self.routes.write() {
            Ok(mut guard) => *guard = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }

    fn table(&self) -> Arc<HashMap<String, Arc<Deployment>>> {
        match self.routes.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The deployment that answers `name`, optionally pinned to `version`.
    pub fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Arc<Deployment>, ServeError> {
        let table = self.table();
        let deployment = table
            .get(name)
            .ok_or_else(|| ServeError::NotFound(format!("model '{name}' is not served here")))?;
        match version {
            None => Ok(deployment.clone()),
            Some(v) => {
                let pinned = format!("{}/{v}", deployment.model);
                table
                    .get(&pinned)
                    .cloned()
                    .or_else(|| (v == deployment.version.to_string()).then(|| deployment.clone()))
                    .ok_or_else(|| {
                        ServeError::NotFound(format!(
                            "version '{v}' of model '{name}' is not served here"
                        ))
                    })
            }
        }
    }

    /// The one deployment served, for protocols that name no model (MLflow's `/invocations`).
    pub fn only(&self) -> Result<Arc<Deployment>, ServeError> {
        let table = self.table();
        let distinct = distinct(&table);
        match distinct.as_slice() {
            [one] => Ok((*one).clone()),
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

/// The deployments of a table, each once (many names can point to one deployment).
fn distinct(table: &HashMap<String, Arc<Deployment>>) -> Vec<&Arc<Deployment>> {
    let mut distinct: Vec<&Arc<Deployment>> = Vec::new();
    for d in table.values() {
        if !distinct.iter().any(|seen| Arc::ptr_eq(seen, d)) {
            distinct.push(d);
        }
    }
    distinct
}
