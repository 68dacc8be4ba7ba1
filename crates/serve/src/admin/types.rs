//! The admin API's own request and response bodies, with their OpenAPI schemas.
//!
//! The models, versions, aliases, endpoints, audit events and live state the API returns are
//! the store's records and the registry's types themselves (their `openapi` feature derives
//! the schemas), so the API's JSON is the CLI's JSON by construction. What is here has no twin
//! there: request bodies, query strings, and the small answers to changes.

use std::collections::BTreeMap;

use berth_core::Signature;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
    /// How drift is decided for this version: `method`, `threshold`, per-column `columns`
    /// and `dataset_share` (docs/MONITORING.md); the sample-size aware default when absent.
    #[schema(value_type = Option<Object>, example = json!({"method": "psi", "threshold": 0.2}))]
    pub drift: Option<berth_monitor::DriftConfig>,
    /// A fitted feature spec (the YAML `berth features fit` writes): the version then takes
    /// the spec's input fields and serving runs the spec before the model.
    pub features: Option<String>,
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
    /// The primary: `model/version` or `model@alias`.
    #[schema(example = "churn@champion")]
    pub target: String,
    /// A canary answering `canary_weight` percent of requests: `model/version` or `model@alias`.
    #[schema(example = "churn/2")]
    pub canary: Option<String>,
    /// The canary's share of requests, in percent (0, 100].
    #[schema(example = 10.0)]
    pub canary_weight: Option<f64>,
    /// Versions that get a mirrored copy of every request and never answer.
    #[serde(default)]
    pub shadows: Vec<String>,
    /// A header whose value keeps one entity on one version (e.g. `x-customer-id`).
    pub sticky_header: Option<String>,
    /// An input field whose value keeps one entity on one version.
    pub sticky_field: Option<String>,
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
