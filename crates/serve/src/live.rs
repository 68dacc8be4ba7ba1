//! Keeps the router in step with the registry, so a moved alias or a changed endpoint is
//! served within a second, on every replica.
//!
//! [`LiveRoutes::sync`] reads what is live (endpoints, aliases, each model's newest version),
//! loads any version not loaded yet, and swaps the router's whole table at once: requests in
//! flight finish on the deployment they hold, new ones see the new table. Versions no longer
//! named anywhere are dropped from the table; their batcher stops, and the model's memory is
//! returned, when the last request holding them is done. [`LiveRoutes::watch`] polls the audit
//! log's newest id and syncs when it moves.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_core::Signature;
use berth_features::{FeatureSpec, Pipeline};
use berth_registry::{
    ModelRef, Registry, RegistryError, Selector, StickyKey, Target, TrafficPolicy,
};
use berth_rollout::Weight;
use berth_runtime::{LoadOptions, Model};
use berth_store::AuditFilter;
use berth_store::VersionRecord;
use tokio::sync::Mutex;

use crate::batcher::BatchPolicy;
use crate::deployment::{Deployment, Router, Watchers};
use crate::route::{Route, RoutePlan};

/// A loaded version: (model, version).
type VersionKey = (String, i64);

/// A registered version, loaded and ready to score.
pub struct LoadedVersion {
    pub record: VersionRecord,
    pub model: Arc<dyn Model>,
    pub signature: Signature,
    /// The version's feature spec, compiled, when it has one.
    pub features: Option<Arc<Pipeline>>,
}

/// Loads `model/version` from the registry: its artifact through the runtime (off the async
/// threads) and its stored signature.
pub async fn load_version(
    registry: &Registry,
    model: &str,
    version: i64,
    options: &LoadOptions,
) -> Result<LoadedVersion, RegistryError> {
    let record = registry
        .resolve(&ModelRef {
            model: model.to_string(),
            selector: Selector::Version(version),
        })
        .await?;
    let bytes = registry.artifact(&record).await?;
    let signature: Signature = serde_json::from_value(record.signature.clone()).map_err(|e| {
        RegistryError::Invalid(format!(
            "{model}/{version}: stored signature unreadable: {e}"
        ))
    })?;
    let name = format!("{model}-{version}.{}", record.format);
    let options = options.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        berth_runtime::load_bytes(Path::new(&name), &bytes, &options)
    })
    .await
    .map_err(|e| RegistryError::Invalid(format!("{model}/{version}: loading failed: {e}")))?
    .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let features = match &record.feature_spec {
        Some(text) => {
            let spec = FeatureSpec::from_yaml(text).map_err(|e| {
                RegistryError::Invalid(format!("{model}/{version}: stored feature spec: {e}"))
            })?;
            Some(Arc::new(Pipeline::compile(&spec).map_err(|e| {
                RegistryError::Invalid(format!("{model}/{version}: stored feature spec: {e}"))
            })?))
        }
        None => None,
    };
    Ok(LoadedVersion {
        record,
        model: loaded.into(),
        signature,
        features,
    })
}

/// What a served name is answered by, before loading.
enum Plan {
    Single(VersionKey),
    Endpoint {
        primary: VersionKey,
        canary: Option<(VersionKey, Weight, String)>,
        shadows: Vec<VersionKey>,
        sticky: Option<StickyKey>,
    },
}

impl Plan {
    fn versions(&self) -> Vec<VersionKey> {
        match self {
            Plan::Single(key) => vec![key.clone()],
            Plan::Endpoint {
                primary,
                canary,
                shadows,
                ..
            } => std::iter::once(primary)
                .chain(canary.as_ref().map(|(key, ..)| key))
                .chain(shadows)
                .cloned()
                .collect(),
        }
    }
}

/// The router, fed from the registry.
pub struct LiveRoutes {
    registry: Registry,
    router: Arc<Router>,
    loaded: Mutex<HashMap<VersionKey, Arc<Deployment>>>,
    batching: BatchPolicy,
    load_options: LoadOptions,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub names: usize,
    pub loaded: Vec<String>,
    pub unloaded: Vec<String>,
}

impl LiveRoutes {
    pub fn new(
        registry: Registry,
        batching: BatchPolicy,
        load_options: LoadOptions,
        watchers: Watchers,
    ) -> Self {
        Self {
            registry,
            router: Arc::new(Router::new(watchers)),
            loaded: Mutex::new(HashMap::new()),
            batching,
            load_options,
        }
    }

    pub fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// What every served name points to now.
    async fn desired(&self) -> Result<HashMap<String, Plan>, RegistryError> {
        let mut names = HashMap::new();
        let single = |names: &mut HashMap<String, Plan>, name: String, key: &VersionKey| {
            names.insert(name, Plan::Single(key.clone()));
        };
        for model in self.registry.models().await? {
            let detail = self.registry.model(&model.name).await?;
            if let Some(latest) = detail.model.latest_version {
                let key = (model.name.clone(), latest);
                single(&mut names, model.name.clone(), &key);
                single(&mut names, format!("{}/{latest}", model.name), &key);
            }
            for alias in &detail.aliases {
                let key = (model.name.clone(), alias.version);
                single(&mut names, format!("{}@{}", model.name, alias.alias), &key);
                single(
                    &mut names,
                    format!("{}/{}", model.name, alias.version),
                    &key,
                );
            }
        }
        for endpoint in self.registry.endpoints().await? {
            let Ok(policy) = serde_json::from_value::<TrafficPolicy>(endpoint.policy.clone())
            else {
                tracing::warn!(endpoint = %endpoint.name, "unreadable traffic policy; not served");
                continue;
            };
            let primary = match self.version_of(&policy.primary).await {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(endpoint = %endpoint.name, "target does not resolve: {e}");
                    continue;
                }
            };
            let mut canary = None;
            if let Some(c) = &policy.canary {
                match (
                    self.version_of(&c.target).await,
                    Weight::from_percent(c.weight),
                ) {
                    (Ok(key), Some(weight)) => {
                        let seed = c.seed.clone().unwrap_or_else(|| endpoint.name.clone());
                        canary = Some((key, weight, seed));
                    }
                    (Err(e), _) => {
                        tracing::warn!(endpoint = %endpoint.name, "canary does not resolve: {e}");
                    }
                    (_, None) => {
                        tracing::warn!(endpoint = %endpoint.name, weight = c.weight, "canary weight out of range");
                    }
                }
            }
            let mut shadows = Vec::new();
            for target in &policy.shadows {
                match self.version_of(target).await {
                    Ok(key) => shadows.push(key),
                    Err(e) => {
                        tracing::warn!(endpoint = %endpoint.name, "shadow does not resolve: {e}");
                    }
                }
            }
            for key in std::iter::once(&primary)
                .chain(canary.as_ref().map(|(key, ..)| key))
                .chain(&shadows)
            {
                single(&mut names, format!("{}/{}", key.0, key.1), key);
            }
            names.insert(
                endpoint.name.clone(),
                Plan::Endpoint {
                    primary,
                    canary,
                    shadows,
                    sticky: policy.sticky,
                },
            );
        }
        Ok(names)
    }

    async fn version_of(&self, target: &Target) -> Result<VersionKey, RegistryError> {
        let v = self.registry.resolve(&target.to_model_ref()).await?;
        Ok((v.model, v.version))
    }

    async fn load(&self, model: &str, version: i64) -> Result<Arc<Deployment>, RegistryError> {
        let loaded = load_version(&self.registry, model, version, &self.load_options).await?;
        Ok(Arc::new(
            Deployment::start(
                model,
                version,
                loaded.model,
                loaded.signature,
                self.batching.for_version(model, version),
                self.router.watchers(),
                crate::monitoring::VersionMonitor::of(&loaded.record),
            )
            .with_features(loaded.features),
        ))
    }

    /// Brings the router in line with the registry.
    pub async fn sync(&self) -> Result<SyncReport, RegistryError> {
        let desired = self.desired().await?;
        let mut loaded = self.loaded.lock().await;
        let mut report = SyncReport {
            names: desired.len(),
            ..SyncReport::default()
        };
        let wanted: HashSet<VersionKey> = desired.values().flat_map(Plan::versions).collect();
        for key in &wanted {
            if !loaded.contains_key(key) {
                match self.load(&key.0, key.1).await {
                    Ok(d) => {
                        report.loaded.push(d.label().to_string());
                        loaded.insert(key.clone(), d);
                    }
                    Err(e) => tracing::error!("cannot load {}/{}: {e}", key.0, key.1),
                }
            }
        }
        let windows = self.router.windows();
        let metrics = self.router.metrics();
        let table = desired
            .into_iter()
            .filter_map(|(name, plan)| {
                let route = match plan {
                    Plan::Single(key) => Route::single(loaded.get(&key)?.clone()),
                    Plan::Endpoint {
                        primary,
                        canary,
                        shadows,
                        sticky,
                    } => {
                        let plan = RoutePlan {
                            primary: loaded.get(&primary)?.clone(),
                            canary: canary.and_then(|(key, weight, seed)| {
                                Some((loaded.get(&key)?.clone(), weight, seed))
                            }),
                            shadows: shadows
                                .iter()
                                .filter_map(|key| loaded.get(key).cloned())
                                .collect(),
                            sticky,
                        };
                        Route::endpoint(&name, plan, &windows, &metrics)
                    }
                };
                Some((name, Arc::new(route)))
            })
            .collect();
        self.router.replace(table);
        let gone: Vec<VersionKey> = loaded
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(d) = loaded.remove(&key) {
                report.unloaded.push(d.label().to_string());
            }
        }
        Ok(report)
    }

    /// Syncs now, then whenever the audit log moves (checked every `every`), until the process
    /// ends. Errors are logged and retried at the next tick.
    pub fn watch(self: Arc<Self>, every: Duration) {
        tokio::spawn(async move {
            let mut seen: Option<i64> = None;
            loop {
                let newest = self
                    .registry
                    .audit(&AuditFilter {
                        limit: Some(1),
                        ..AuditFilter::default()
                    })
                    .await
                    .map(|events| events.last().map_or(0, |e| e.id));
                match newest {
                    Ok(id) if Some(id) != seen => match self.sync().await {
                        Ok(report) => {
                            seen = Some(id);
                            if !report.loaded.is_empty() || !report.unloaded.is_empty() {
                                tracing::info!(loaded = ?report.loaded, unloaded = ?report.unloaded, "routes updated");
                            }
                        }
                        Err(e) => tracing::warn!("cannot sync routes: {e}"),
                    },
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cannot read the registry: {e}"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }
}
