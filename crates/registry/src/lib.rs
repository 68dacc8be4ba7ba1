//! berth's model registry: what exists, what is live, and how it got there.
//!
//! A [`Registry`] registers versions (loading each artifact with the runtime first, so a file
//! that does not load is refused and nothing is written), moves aliases, points endpoints at
//! versions or aliases, and answers "what was live at T" from the audit log, which the store
//! writes in the same transaction as every change.

mod error;
mod features;
pub mod names;
pub mod policy;
mod reference;
mod signature_file;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use berth_core::Signature;
use berth_monitor::DriftConfig;
use berth_runtime::{LoadOptions, Model};
use berth_store::{
    AliasRecord, ArtifactStore, AuditFilter, AuditRecord, Change, EndpointRecord, Lineage,
    MetadataStore, ModelRecord, NewVersion, StoreConfig, VersionRecord,
};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use error::RegistryError;
pub use names::{ModelRef, Selector, check_alias, check_name};
pub use policy::{Canary, StickyKey, Target, TrafficPolicy};
pub use signature_file::parse_signature_yaml;

/// Where the registry reads the time; tests replace it to place changes at known times.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Everything a registration may bring besides the artifact.
#[derive(Debug, Clone, Default)]
pub struct RegisterRequest {
    pub description: Option<String>,
    /// A hand-written signature; inferred from the artifact when absent.
    pub signature: Option<Signature>,
    /// Reference data (Parquet or CSV bytes) and its file name.
    pub reference: Option<(String, Bytes)>,
    /// How drift is decided for this version; the default when absent.
    pub drift: Option<DriftConfig>,
    /// A fitted feature spec (berth-features YAML): the version then takes the spec's input
    /// fields, and serving runs the spec before the model.
    pub features: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    pub lineage: Lineage,
    pub reason: Option<String>,
}

/// Which version each alias and endpoint pointed to at a time, and who changed it last.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveState {
    pub at: DateTime<Utc>,
    pub aliases: Vec<LiveAlias>,
    pub endpoints: Vec<LiveEndpoint>,
}

/// An alias as it was at the time asked about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveAlias {
    pub model: String,
    pub alias: String,
    pub version: i64,
    pub changed_at: DateTime<Utc>,
    pub changed_by: String,
    pub reason: Option<String>,
}

/// An endpoint as it was at the time asked about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveEndpoint {
    pub endpoint: String,
    /// `model/version` or `model@alias`.
    #[cfg_attr(feature = "openapi", schema(example = "churn@champion"))]
    pub target: String,
    /// The version the target resolved to at that time (through the alias, if any).
    pub version: Option<i64>,
    pub changed_at: DateTime<Utc>,
    pub changed_by: String,
    pub reason: Option<String>,
}

/// A model with its versions and aliases.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelDetail {
    pub model: ModelRecord,
    pub versions: Vec<VersionRecord>,
    pub aliases: Vec<AliasRecord>,
}

/// The registry over a metadata store and an artifact store.
#[derive(Clone)]
pub struct Registry {
    meta: MetadataStore,
    artifacts: ArtifactStore,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("metadata", &self.meta.location())
            .finish()
    }
}

fn not_found_model(name: &str) -> RegistryError {
    RegistryError::NotFound(format!("model '{name}' does not exist"))
}

impl Registry {
    /// Opens (creating and migrating as needed) the stores `config` names.
    pub async fn open(config: &StoreConfig) -> Result<Self, RegistryError> {
        let (meta, artifacts) = config.open().await?;
        Ok(Self::new(meta, artifacts, Arc::new(SystemClock)))
    }

    pub fn new(meta: MetadataStore, artifacts: ArtifactStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            meta,
            artifacts,
            clock,
        }
    }

    pub fn metadata(&self) -> &MetadataStore {
        &self.meta
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// A change by `actor`, now (by the registry's clock).
    pub fn change(&self, actor: &str, reason: Option<String>) -> Change {
        Change {
            actor: actor.to_string(),
            reason,
            at: self.clock.now(),
        }
    }

    /// Registers `artifact` (a model file's bytes; `file_name` for messages and format
    /// detection) as the next version of `model`. The artifact must load; the signature is
    /// checked against it (or inferred from it); the same bytes twice is refused, naming the
    /// version that has them.
    pub async fn register(
        &self,
        model: &str,
        file_name: &str,
        artifact: Bytes,
        request: RegisterRequest,
        actor: &str,
    ) -> Result<VersionRecord, RegistryError> {
        check_name("model", model)?;
        // Loading a large model takes a while: keep it off the async workers.
        let loaded = {
            let (name, bytes) = (file_name.to_string(), artifact.clone());
            tokio::task::spawn_blocking(move || load_model(&name, &bytes))
                .await
                .map_err(|e| {
                    RegistryError::Invalid(format!("{file_name}: loading failed: {e}"))
                })??
        };
        let info = loaded.info().clone();
        let (signature, pipeline) = match (request.signature, &request.features) {
            (Some(_), Some(_)) => {
                return Err(RegistryError::Invalid(
                    "a signature and a feature spec together: with a feature spec, the version's \
                     inputs are the spec's fields; leave the signature out"
                        .into(),
                ));
            }
            (Some(sig), None) => {
                sig.check(&info)
                    .map_err(|e| RegistryError::Invalid(format!("{file_name}: {e}")))?;
                (sig, None)
            }
            (None, Some(spec)) => {
                let (signature, pipeline) = features::signature(spec, &info, file_name)?;
                (signature, Some(pipeline))
            }
            (None, None) => (Signature::infer(&info), None),
        };
        let sha256 = berth_store::sha256_hex(&artifact);
        if let Some(existing) = self
            .meta
            .list_versions(model)
            .await?
            .into_iter()
            .find(|v| v.sha256 == sha256)
        {
            return Err(RegistryError::Duplicate(format!(
                "{model}/{} already has these exact bytes (sha256 {sha256}); not registered again",
                existing.version
            )));
        }
        if let Some(drift) = &request.drift {
            drift
                .validate()
                .map_err(|e| RegistryError::Invalid(format!("drift settings: {e}")))?;
        }
        let reference = match request.reference {
            Some((name, bytes)) => {
                let lower = name.to_ascii_lowercase();
                if !(lower.ends_with(".parquet") || lower.ends_with(".csv")) {
                    return Err(RegistryError::Invalid(format!(
                        "reference data {name}: expected a .parquet or .csv file"
                    )));
                }
                // Reading and scoring the data is CPU work: off the async workers.
                let profiles = {
                    let (bytes, signature) = (bytes.clone(), signature.clone());
                    tokio::task::spawn_blocking(move || {
                        reference::profile_reference(
                            &name,
                            &bytes,
                            loaded.as_ref(),
                            &signature,
                            pipeline.as_ref(),
                        )
                    })
                    .await
                    .map_err(|e| {
                        RegistryError::Invalid(format!("profiling the reference data failed: {e}"))
                    })??
                };
                Some((bytes, profiles))
            }
            None => None,
        };
        if let Some(drift) = &request.drift {
            reference::check_drift_columns(drift, reference.as_ref().map(|(_, p)| p))?;
        }
        let reference = match reference {
            Some((bytes, profiles)) => Some((self.artifacts.put(bytes).await?, profiles)),
            None => None,
        };
        let stored = self.artifacts.put(artifact).await?;
        let new = NewVersion {
            model: model.to_string(),
            description: request.description,
            artifact_uri: stored.uri,
            sha256: stored.sha256,
            size_bytes: stored.size as i64,
            format: info.format.to_string(),
            signature: serde_json::to_value(&signature)
                .map_err(|e| RegistryError::Invalid(e.to_string()))?,
            feature_spec_sha256: request
                .features
                .as_ref()
                .map(|spec| berth_store::sha256_hex(spec.as_bytes())),
            feature_spec: request.features.clone(),
            reference_uri: reference.as_ref().map(|(r, _)| r.uri.clone()),
            reference_sha256: reference.as_ref().map(|(r, _)| r.sha256.clone()),
            output_profile: reference.as_ref().and_then(|(_, p)| p.outputs.clone()),
            reference_profile: reference.map(|(_, p)| p.inputs),
            drift_config: request
                .drift
                .as_ref()
                .map(|d| serde_json::to_value(d).unwrap_or(Value::Null)),
            metrics: serde_json::to_value(&request.metrics).unwrap_or(Value::Null),
            lineage: request.lineage,
            tags: serde_json::to_value(&request.tags).unwrap_or(Value::Null),
        };
        Ok(self
            .meta
            .insert_version(&new, &self.change(actor, request.reason))
            .await?)
    }

    pub async fn models(&self) -> Result<Vec<ModelRecord>, RegistryError> {
        Ok(self.meta.list_models().await?)
    }

    pub async fn model(&self, name: &str) -> Result<ModelDetail, RegistryError> {
        check_name("model", name)?;
        let model = self
            .meta
            .get_model(name)
            .await?
            .ok_or_else(|| not_found_model(name))?;
        Ok(ModelDetail {
            versions: self.meta.list_versions(name).await?,
            aliases: self.meta.list_aliases(name).await?,
            model,
        })
    }

    /// The version a reference means now.
    pub async fn resolve(&self, r: &ModelRef) -> Result<VersionRecord, RegistryError> {
        let version = match &r.selector {
            Selector::Version(v) => *v,
            Selector::Alias(alias) => {
                self.meta
                    .get_alias(&r.model, alias)
                    .await?
                    .ok_or_else(|| {
                        RegistryError::NotFound(format!(
                            "alias '{}@{alias}' does not exist",
                            r.model
                        ))
                    })?
                    .version
            }
            Selector::Latest => self
                .meta
                .get_model(&r.model)
                .await?
                .ok_or_else(|| not_found_model(&r.model))?
                .latest_version
                .ok_or_else(|| {
                    RegistryError::NotFound(format!("model '{}' has no versions", r.model))
                })?,
        };
        if self.meta.get_model(&r.model).await?.is_none() {
            return Err(not_found_model(&r.model));
        }
        self.meta
            .get_version(&r.model, version)
            .await?
            .ok_or_else(|| {
                RegistryError::NotFound(format!("version '{}/{version}' does not exist", r.model))
            })
    }

    /// The artifact bytes of a version, verified against its hash.
    pub async fn artifact(&self, version: &VersionRecord) -> Result<Bytes, RegistryError> {
        Ok(self.artifacts.get(&version.sha256).await?)
    }

    /// Points `model@alias` at `version`; returns the version it pointed to before.
    pub async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: i64,
        actor: &str,
        reason: Option<String>,
    ) -> Result<Option<i64>, RegistryError> {
        check_name("model", model)?;
        check_alias(alias)?;
        if self.meta.get_model(model).await?.is_none() {
            return Err(not_found_model(model));
        }
        Ok(self
            .meta
            .set_alias(model, alias, version, &self.change(actor, reason))
            .await?)
    }

    /// Removes `model@alias`.
    pub async fn delete_alias(
        &self,
        model: &str,
        alias: &str,
        actor: &str,
        reason: Option<String>,
    ) -> Result<i64, RegistryError> {
        check_name("model", model)?;
        check_alias(alias)?;
        self.meta
            .delete_alias(model, alias, &self.change(actor, reason))
            .await?
            .ok_or_else(|| {
                RegistryError::NotFound(format!("alias '{model}@{alias}' does not exist"))
            })
    }

    /// Points `endpoint` at `target` (which must resolve now).
    pub async fn set_endpoint(
        &self,
        endpoint: &str,
        target: Target,
        actor: &str,
        reason: Option<String>,
    ) -> Result<EndpointRecord, RegistryError> {
        self.set_endpoint_policy(endpoint, &TrafficPolicy::primary(target), actor, reason)
            .await
    }

    /// Sets an endpoint's whole traffic policy, once every target in it resolves.
    pub async fn set_endpoint_policy(
        &self,
        endpoint: &str,
        policy: &TrafficPolicy,
        actor: &str,
        reason: Option<String>,
    ) -> Result<EndpointRecord, RegistryError> {
        check_name("endpoint", endpoint)?;
        policy.validate()?;
        for target in policy.targets() {
            self.resolve(&target.to_model_ref()).await?;
        }
        let model = policy.primary.model().to_string();
        let policy =
            serde_json::to_value(policy).map_err(|e| RegistryError::Invalid(e.to_string()))?;
        self.meta
            .set_endpoint(endpoint, &policy, Some(&model), &self.change(actor, reason))
            .await?;
        self.endpoint(endpoint).await
    }

    /// One endpoint.
    pub async fn endpoint(&self, endpoint: &str) -> Result<EndpointRecord, RegistryError> {
        self.meta
            .get_endpoint(endpoint)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("endpoint '{endpoint}' does not exist")))
    }

    /// An endpoint's traffic policy.
    pub async fn endpoint_policy(&self, endpoint: &str) -> Result<TrafficPolicy, RegistryError> {
        let record = self.endpoint(endpoint).await?;
        serde_json::from_value(record.policy.clone()).map_err(|e| {
            RegistryError::Invalid(format!(
                "endpoint '{endpoint}': stored policy unreadable: {e}"
            ))
        })
    }

    pub async fn endpoints(&self) -> Result<Vec<EndpointRecord>, RegistryError> {
        Ok(self.meta.list_endpoints().await?)
    }

    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, RegistryError> {
        if let Some(model) = &filter.model {
            check_name("model", model)?;
        }
        Ok(self.meta.audit(filter).await?)
    }

    /// What each alias (of `model`, or of every model) and each endpoint pointed to at `at`,
    /// replayed from the audit log.
    pub async fn live_at(
        &self,
        model: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<LiveState, RegistryError> {
        if let Some(m) = model {
            check_name("model", m)?;
            if self.meta.get_model(m).await?.is_none() {
                return Err(not_found_model(m));
            }
        }
        let events = self
            .meta
            .audit(&AuditFilter {
                until: Some(at),
                ..AuditFilter::default()
            })
            .await?;
        let mut aliases: BTreeMap<(String, String), LiveAlias> = BTreeMap::new();
        let mut endpoints: BTreeMap<String, (Target, &AuditRecord)> = BTreeMap::new();
        for e in &events {
            match e.action.as_str() {
                "alias.set" | "alias.delete" => {
                    let Some((m, a)) = e.subject.split_once('@') else {
                        continue;
                    };
                    let key = (m.to_string(), a.to_string());
                    match e
                        .after
                        .as_ref()
                        .and_then(|v| v.get("version"))
                        .and_then(Value::as_i64)
                    {
                        Some(version) => {
                            aliases.insert(
                                key,
                                LiveAlias {
                                    model: m.to_string(),
                                    alias: a.to_string(),
                                    version,
                                    changed_at: e.at,
                                    changed_by: e.actor.clone(),
                                    reason: e.reason.clone(),
                                },
                            );
                        }
                        None => {
                            aliases.remove(&key);
                        }
                    }
                }
                "endpoint.set" => {
                    let policy = e
                        .after
                        .clone()
                        .and_then(|p| serde_json::from_value::<TrafficPolicy>(p).ok());
                    match policy {
                        Some(p) => {
                            endpoints.insert(e.subject.clone(), (p.primary, e));
                        }
                        None => {
                            endpoints.remove(&e.subject);
                        }
                    }
                }
                _ => {}
            }
        }
        let endpoints = endpoints
            .into_iter()
            .filter(|(_, (target, _))| model.is_none_or(|m| target.model() == m))
            .map(|(name, (target, e))| {
                let version = match &target {
                    Target::Version { version, .. } => Some(*version),
                    Target::Alias { model, alias } => aliases
                        .get(&(model.clone(), alias.clone()))
                        .map(|a| a.version),
                };
                LiveEndpoint {
                    endpoint: name,
                    target: target.to_string(),
                    version,
                    changed_at: e.at,
                    changed_by: e.actor.clone(),
                    reason: e.reason.clone(),
                }
            })
            .collect();
        let aliases = aliases
            .into_values()
            .filter(|a| model.is_none_or(|m| a.model == m))
            .collect();
        Ok(LiveState {
            at,
            aliases,
            endpoints,
        })
    }
}

/// Loads a model file with the runtime, proving it loads and learning what it is.
fn load_model(file_name: &str, artifact: &[u8]) -> Result<Box<dyn Model>, RegistryError> {
    berth_runtime::load_bytes(Path::new(file_name), artifact, &LoadOptions::default())
        .map_err(|e| RegistryError::Invalid(e.to_string()))
}
