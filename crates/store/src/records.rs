//! The rows the metadata store keeps, as plain serde structs (the JSON of the CLI and API).
//!
//! With the `openapi` feature they also derive `utoipa::ToSchema`, under the names the admin
//! API documents them by (`Model`, `Version`, `Alias`, `Endpoint`, `AuditEvent`); their doc
//! comments become the schemas' descriptions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A model: a name that versions are registered under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Model))]
pub struct ModelRecord {
    #[cfg_attr(feature = "openapi", schema(example = "churn"))]
    pub name: String,
    pub description: String,
    /// The signature of the newest version (each version keeps its own).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub signature: Option<Value>,
    /// Tags of the model, `{"key": "value"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub tags: Value,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// Number of the newest version, if any.
    pub latest_version: Option<i64>,
}

/// Where a version came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lineage {
    pub parent_version: Option<i64>,
    pub training_data_uri: Option<String>,
    pub training_data_sha256: Option<String>,
    /// What caused this version: `manual`, `schedule`, `drift`, ...
    pub triggered_by: Option<String>,
    /// The code that trained it, e.g. a git commit.
    pub code_ref: Option<String>,
}

/// An immutable, content-addressed version of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Version))]
pub struct VersionRecord {
    #[cfg_attr(feature = "openapi", schema(example = "churn"))]
    pub model: String,
    #[cfg_attr(feature = "openapi", schema(example = 3))]
    pub version: i64,
    pub artifact_uri: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// `onnx`, `xgboost_json` or `lightgbm_text`.
    #[cfg_attr(feature = "openapi", schema(example = "xgboost_json"))]
    pub format: String,
    /// Typed inputs and outputs, the same shape as the signature YAML.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub signature: Value,
    pub feature_spec_sha256: Option<String>,
    pub reference_uri: Option<String>,
    pub reference_sha256: Option<String>,
    /// Summary of the reference data; filled by monitoring.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub reference_profile: Option<Value>,
    /// Summary of the model's outputs on the reference data; filled by monitoring.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub output_profile: Option<Value>,
    /// How drift is decided for this version (berth-monitor's `DriftConfig`); `None`: the
    /// default.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub drift_config: Option<Value>,
    /// The fitted feature spec (berth-features YAML) the serving path runs before the model;
    /// its sha256 is `feature_spec_sha256`.
    pub feature_spec: Option<String>,
    /// Offline metrics, `{"name": number}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metrics: Value,
    pub lineage: Lineage,
    /// Tags, `{"key": "value"}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub tags: Value,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
    pub status: String,
}

/// What a new version brings; the store assigns its number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVersion {
    pub model: String,
    pub description: Option<String>,
    pub artifact_uri: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub format: String,
    pub signature: Value,
    pub feature_spec_sha256: Option<String>,
    pub reference_uri: Option<String>,
    pub reference_sha256: Option<String>,
    /// The reference data's profile (berth-monitor's `ReferenceProfile`, as JSON).
    pub reference_profile: Option<Value>,
    /// The profile of the model's outputs on the reference data (also a `ReferenceProfile`).
    pub output_profile: Option<Value>,
    /// berth-monitor's `DriftConfig` as JSON; `None`: the default.
    pub drift_config: Option<Value>,
    /// The fitted feature spec (YAML), with `feature_spec_sha256`.
    pub feature_spec: Option<String>,
    pub metrics: Value,
    pub lineage: Lineage,
    pub tags: Value,
}

/// A movable name for a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Alias))]
pub struct AliasRecord {
    pub model: String,
    #[cfg_attr(feature = "openapi", schema(example = "champion"))]
    pub alias: String,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// What clients call, and its traffic policy.
// The policy is JSON whose shape the registry owns (`berth_registry::TrafficPolicy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Endpoint))]
pub struct EndpointRecord {
    #[cfg_attr(feature = "openapi", schema(example = "churn-api"))]
    pub name: String,
    /// How the endpoint routes its traffic, e.g. `{"primary": {"model": "churn", "alias":
    /// "champion"}}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub policy: Value,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// One change to what exists or is live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = AuditEvent))]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// e.g. `model.create`, `version.register`, `alias.set`, `alias.delete`, `endpoint.set`.
    pub action: String,
    /// `model`, `version`, `alias` or `endpoint`.
    pub subject_kind: String,
    /// e.g. `churn`, `churn/3`, `churn@champion`, `churn-api`.
    pub subject: String,
    pub model: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub before: Option<Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub after: Option<Value>,
    pub reason: Option<String>,
}

/// Who makes a change, why, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub actor: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// Which audit events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub model: Option<String>,
    pub subject_kind: Option<String>,
    pub subject: Option<String>,
    /// Only events at or before this time.
    pub until: Option<DateTime<Utc>>,
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}
