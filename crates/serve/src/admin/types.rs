//! The admin API's request and response bodies, with their OpenAPI schemas.
//!
//! Responses serialize exactly like the store's records and the registry's types (the JSON the
//! CLI prints too); they are copied here, field by field, so that the schemas are generated
//! from the code. Each conversion destructures its source completely, so a field added to a
//! record does not compile until it is added here.

use std::collections::BTreeMap;

use berth_core::Signature;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// A model: a name that versions are registered under.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Model {
    #[schema(example = "churn")]
    name: String,
    description: String,
    /// The signature of the newest version (each version keeps its own).
    #[schema(value_type = Option<Object>)]
    signature: Option<Value>,
    /// Tags of the model, `{"key": "value"}`.
    #[schema(value_type = Object)]
    tags: Value,
    created_at: DateTime<Utc>,
    created_by: String,
    /// Number of the newest version, if any.
    latest_version: Option<i64>,
}

impl From<berth_store::ModelRecord> for Model {
    fn from(r: berth_store::ModelRecord) -> Self {
        let berth_store::ModelRecord {
            name,
            description,
            signature,
            tags,
            created_at,
            created_by,
            latest_version,
        } = r;
        Self {
            name,
            description,
            signature,
            tags,
            created_at,
            created_by,
            latest_version,
        }
    }
}

/// Where a version came from.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Lineage {
    parent_version: Option<i64>,
    training_data_uri: Option<String>,
    training_data_sha256: Option<String>,
    /// What caused this version: `manual`, `schedule`, `drift`, ...
    triggered_by: Option<String>,
    /// The code that trained it, e.g. a git commit.
    code_ref: Option<String>,
}

impl From<berth_store::Lineage> for Lineage {
    fn from(l: berth_store::Lineage) -> Self {
        let berth_store::Lineage {
            parent_version,
            training_data_uri,
            training_data_sha256,
            triggered_by,
            code_ref,
        } = l;
        Self {
            parent_version,
            training_data_uri,
            training_data_sha256,
            triggered_by,
            code_ref,
        }
    }
}

/// An immutable, content-addressed version of a model.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Version {
    #[schema(example = "churn")]
    model: String,
    #[schema(example = 3)]
    version: i64,
    artifact_uri: String,
    sha256: String,
    size_bytes: i64,
    /// `onnx`, `xgboost_json` or `lightgbm_text`.
    #[schema(example = "xgboost_json")]
    format: String,
    /// Typed inputs and outputs, the same shape as the signature YAML.
    #[schema(value_type = Object)]
    signature: Value,
    feature_spec_sha256: Option<String>,
    reference_uri: Option<String>,
    reference_sha256: Option<String>,
    /// Summary of the reference data; filled by monitoring.
    #[schema(value_type = Option<Object>)]
    reference_profile: Option<Value>,
    /// Offline metrics, `{"name": number}`.
    #[schema(value_type = Object)]
    metrics: Value,
    lineage: Lineage,
    /// Tags, `{"key": "value"}`.
    #[schema(value_type = Object)]
    tags: Value,
    registered_by: String,
    registered_at: DateTime<Utc>,
    status: String,
}

impl From<berth_store::VersionRecord> for Version {
    fn from(r: berth_store::VersionRecord) -> Self {
        let berth_store::VersionRecord {
            model,
            version,
            artifact_uri,
            sha256,
            size_bytes,
            format,
            signature,
            feature_spec_sha256,
            reference_uri,
            reference_sha256,
            reference_profile,
            metrics,
            lineage,
            tags,
            registered_by,
            registered_at,
            status,
        } = r;
        Self {
            model,
            version,
            artifact_uri,
            sha256,
            size_bytes,
            format,
            signature,
            feature_spec_sha256,
            reference_uri,
            reference_sha256,
            reference_profile,
            metrics,
            lineage: lineage.into(),
            tags,
            registered_by,
            registered_at,
            status,
        }
    }
}

/// A movable name for a version.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Alias {
    model: String,
    #[schema(example = "champion")]
    alias: String,
    version: i64,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

impl From<berth_store::AliasRecord> for Alias {
    fn from(r: berth_store::AliasRecord) -> Self {
        let berth_store::AliasRecord {
            model,
            alias,
            version,
            updated_at,
            updated_by,
        } = r;
        Self {
            model,
            alias,
            version,
            updated_at,
            updated_by,
        }
    }
}

/// A model with its versions and aliases.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ModelDetail {
    model: Model,
    versions: Vec<Version>,
    aliases: Vec<Alias>,
}

impl From<berth_registry::ModelDetail> for ModelDetail {
    fn from(d: berth_registry::ModelDetail) -> Self {
        let berth_registry::ModelDetail {
            model,
            versions,
            aliases,
        } = d;
        Self {
            model: model.into(),
            versions: versions.into_iter().map(Into::into).collect(),
            aliases: aliases.into_iter().map(Into::into).collect(),
        }
    }
}

/// What clients call, and its traffic policy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Endpoint {
    #[schema(example = "churn-api")]
    name: String,
    /// How the endpoint routes its traffic, e.g. `{"primary": {"model": "churn", "alias":
    /// "champion"}}`.
    #[schema(value_type = Object)]
    policy: Value,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

impl From<berth_store::EndpointRecord> for Endpoint {
    fn from(r: berth_store::EndpointRecord) -> Self {
        let berth_store::EndpointRecord {
            name,
            policy,
            updated_at,
            updated_by,
        } = r;
        Self {
            name,
            policy,
            updated_at,
            updated_by,
        }
    }
}

/// One change to what exists or is live.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEvent {
    id: i64,
    at: DateTime<Utc>,
    actor: String,
    /// e.g. `model.create`, `version.register`, `alias.set`, `alias.delete`, `endpoint.set`.
    action: String,
    /// `model`, `version`, `alias` or `endpoint`.
    subject_kind: String,
    /// e.g. `churn`, `churn/3`, `churn@champion`, `churn-api`.
    subject: String,
    model: Option<String>,
    #[schema(value_type = Option<Object>)]
    before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    after: Option<Value>,
    reason: Option<String>,
}

impl From<berth_store::AuditRecord> for AuditEvent {
    fn from(r: berth_store::AuditRecord) -> Self {
        let berth_store::AuditRecord {
            id,
            at,
            actor,
            action,
            subject_kind,
            subject,
            model,
            before,
            after,
            reason,
        } = r;
        Self {
            id,
            at,
            actor,
            action,
            subject_kind,
            subject,
            model,
            before,
            after,
            reason,
        }
    }
}

/// Which version each alias and endpoint pointed to at a time, and who changed it last.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LiveState {
    at: DateTime<Utc>,
    aliases: Vec<LiveAlias>,
    endpoints: Vec<LiveEndpoint>,
}

impl From<berth_registry::LiveState> for LiveState {
    fn from(s: berth_registry::LiveState) -> Self {
        let berth_registry::LiveState {
            at,
            aliases,
            endpoints,
        } = s;
        Self {
            at,
            aliases: aliases.into_iter().map(Into::into).collect(),
            endpoints: endpoints.into_iter().map(Into::into).collect(),
        }
    }
}

/// An alias as it was at the time asked about.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LiveAlias {
    model: String,
    alias: String,
    version: i64,
    changed_at: DateTime<Utc>,
    changed_by: String,
    reason: Option<String>,
}

impl From<berth_registry::LiveAlias> for LiveAlias {
    fn from(a: berth_registry::LiveAlias) -> Self {
        let berth_registry::LiveAlias {
            model,
            alias,
            version,
            changed_at,
            changed_by,
            reason,
        } = a;
        Self {
            model,
            alias,
            version,
            changed_at,
            changed_by,
            reason,
        }
    }
}

/// An endpoint as it was at the time asked about.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LiveEndpoint {
    endpoint: String,
    /// `model/version` or `model@alias`.
    #[schema(example = "churn@champion")]
    target: String,
    /// The version the target resolved to at that time (through the alias, if any).
    version: Option<i64>,
    changed_at: DateTime<Utc>,
    changed_by: String,
    reason: Option<String>,
}

impl From<berth_registry::LiveEndpoint> for LiveEndpoint {
    fn from(e: berth_registry::LiveEndpoint) -> Self {
        let berth_registry::LiveEndpoint {
            endpoint,
            target,
            version,
            changed_at,
            changed_by,
            reason,
        } = e;
        Self {
            endpoint,
            target,
            version,
            changed_at,
            changed_by,
            reason,
        }
    }
}

/// A new version: the model file's bytes in base64, and what the registry keeps with it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterVersion {
    /// The model file's name; its extension helps tell the format.
    #[schema(example = "model.json")]
    pub file_name: String,
    /// The model file's bytes, base64 (standard alphabet; line breaks are ignored).
    pub artifact_base64: String,
    pub description: Option<String>,
    /// A hand-written signature, the same shape as the signature YAML; inferred from the
    /// model file when absent.
    #[schema(value_type = Option<Object>)]
    pub signature: Option<Signature>,
    #[schema(example = json!({"team": "growth"}))]
    pub tags: Option<BTreeMap<String, String>>,
    #[schema(example = json!({"auc": 0.81}))]
    pub metrics: Option<BTreeMap<String, f64>>,
    pub parent_version: Option<i64>,
    pub training_data_uri: Option<String>,
    pub training_data_sha256: Option<String>,
    /// What caused this version: `manual`, `schedule`, `drift`, ...
    pub triggered_by: Option<String>,
    /// The code that trained it, e.g. a git commit.
    pub code_ref: Option<String>,
    /// Why, for the audit log.
    pub reason: Option<String>,
    /// Reference data (`.parquet` or `.csv`): its file name, given with `reference_base64`.
    pub reference_file_name: Option<String>,
    /// Reference data bytes, base64; given with `reference_file_name`.
    pub reference_base64: Option<String>,
}

/// Where to point an alias.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetAlias {
    #[schema(example = 3)]
    pub version: i64,
    /// Why, for the audit log.
    pub reason: Option<String>,
}

/// An alias moved.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AliasSet {
    pub model: String,
    pub alias: String,
    pub version: i64,
    /// The version the alias pointed to before, if it existed.
    pub previous_version: Option<i64>,
}

/// Why an alias is removed (the body is optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteAlias {
    /// Why, for the audit log.
    pub reason: Option<String>,
}

/// An alias removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AliasDeleted {
    pub model: String,
    pub alias: String,
    /// The version the alias pointed to.
    pub previous_version: i64,
}

/// What an endpoint serves.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetEndpoint {
    /// `model/version` or `model@alias`.
    #[schema(example = "churn@champion")]
    pub target: String,
    /// Why, for the audit log.
    pub reason: Option<String>,
}

/// The time to look at.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Only this model's aliases and the endpoints that serve it.
    pub model: Option<String>,
    /// An RFC 3339 time, e.g. `2026-11-17T10:00:00Z`; now when absent.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub at: Option<String>,
}

/// Which audit events to list (returned oldest first).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only events about this model.
    pub model: Option<String>,
    /// Only events about this subject, e.g. `churn@champion` or `churn-api`.
    pub subject: Option<String>,
    /// Only events at or after this RFC 3339 time.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// Only events at or before this RFC 3339 time.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
    /// Only the most recent this many events (a number from 1).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub limit: Option<String>,
}
