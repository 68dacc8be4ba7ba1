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
use berth_registry::{ModelRef, Registry, RegistryError, Selector, TrafficPolicy};
use berth_runtime::LoadOptions;
use berth_store::AuditFilter;
use tokio::sync::Mutex;

use crate::batcher::BatchPolicy;
use crate::deployment::{Deployment, Router, Watchers};

/// The router, fed from the registry.
pub struct LiveRoutes {
    registry: Registry,
    router: Arc<Router>,
    loaded: Mutex<HashMap<(String, i64), Arc<Deployment>>>,
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

    /// Which version every served name points to now.
    async fn desired(&self) -> Result<HashMap<String, (String, i64)>, RegistryError> {
        let mut names = HashMap::new();
        for model in self.registry.models().await? {
            let detail = self.registry.model(&model.name).await?;
            if let Some(latest) = detail.model.latest_version {
                names.insert(model.name.clone(), (model.name.clone(), latest));
                names.insert(
                    format!("{}/{latest}", model.name),
                    (model.name.clone(), latest),
                );
            }
            for alias in &detail.aliases {
                let version = (model.name.clone(), alias.version);
                names.insert(format!("{}@{}", model.name, alias.alias), version.clone());
                names.insert(format!("{}/{}", model.name, alias.version), version);
            }
        }
        for endpoint in self.registry.endpoints().await? {
            let Ok(policy) = serde_json::from_value::<TrafficPolicy>(endpoint.policy.clone())
            else {
                tracing::warn!(endpoint = %endpoint.name, "unreadable traffic policy; not served");
                continue;
            };
            match self.registry.resolve(&policy.primary.to_model_ref()).await {
                Ok(v) => {
                    names.insert(
                        format!("{}/{}", v.model, v.version),
                        (v.model.clone(), v.version),
                    );
                    names.insert(endpoint.name.clone(), (v.model, v.version));
                }
                Err(e) => tracing::warn!(endpoint = %endpoint.name, "target does not resolve: {e}"),
            }
        }
        Ok(names)
    }

    async fn load(&self, model: &str, version: i64) -> Result<Arc<Deployment>, RegistryError> {
        let record = self
            .registry
            .resolve(&ModelRef {
                model: model.to_string(),
                selector: Selector::Version(version),
            })
            .await?;
        let bytes = self.registry.artifact(&record).await?;
        let signature: Signature =
            serde_json::from_value(record.signature.clone()).map_err(|e| {
                RegistryError::Invalid(format!(
                    "{model}/{version}: stored signature unreadable: {e}"
                ))
            })?;
        let name = format!("{model}-{version}.{}", record.format);
        let options = self.load_options.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            berth_runtime::load_bytes(Path::new(&name), &bytes, &options)
        })
        .await
        .map_err(|e| RegistryError::Invalid(format!("{model}/{version}: loading failed: {e}")))?
        .map_err(|e| RegistryError::Invalid(e.to_string()))?;
        Ok(Arc::new(Deployment::start(
            model,
            version,
            loaded.into(),
            signature,
            self.batching.for_version(model, version),
            self.router.watchers(),
            crate::monitoring::VersionMonitor::of(&record),
        )))
    }

    /// Brings the router in line with the registry.
    pub async fn sync(&self) -> Result<SyncReport, RegistryError> {
        let desired = self.desired().await?;
        let mut loaded = self.loaded.lock().await;
        let mut report = SyncReport {
            names: desired.len(),
            ..SyncReport::default()
        };
        let wanted: HashSet<(String, i64)> = desired.values().cloned().collect();
        for key in &wanted {
            if !loaded.contains_key(key) {
                match self.load(&key.0, key.1).await {
                    Ok(d) => {
                        report.loaded.push(d.label());
                        loaded.insert(key.clone(), d);
                    }
                    Err(e) => tracing::error!("cannot load {}/{}: {e}", key.0, key.1),
                }
            }
        }
        let table = desired
            .into_iter()
            .filter_map(|(name, key)| loaded.get(&key).map(|d| (name, d.clone())))
            .collect();
        self.router.replace(table);
        let gone: Vec<(String, i64)> = loaded
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(d) = loaded.remove(&key) {
                report.unloaded.push(d.label());
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
