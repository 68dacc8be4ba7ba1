//! An endpoint's traffic policy. Today one primary target — a pinned version or an alias —;
//! canary weights, shadows and sticky keys will extend this type, and the router reads it.

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::names::{ModelRef, Selector};

/// What an endpoint serves: a version, or whatever an alias points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    Version { model: String, version: i64 },
    Alias { model: String, alias: String },
}

impl Target {
    pub fn model(&self) -> &str {
        match self {
            Target::Version { model, .. } | Target::Alias { model, .. } => model,
        }
    }

    /// The reference this target resolves through.
    pub fn to_model_ref(&self) -> ModelRef {
        match self {
            Target::Version { model, version } => ModelRef {
                model: model.clone(),
                selector: Selector::Version(*version),
            },
            Target::Alias { model, alias } => ModelRef {
                model: model.clone(),
                selector: Selector::Alias(alias.clone()),
            },
        }
    }

    /// From `NAME/VERSION` or `NAME@ALIAS` (a bare name is refused: an endpoint must say which).
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        let r: ModelRef = s.parse()?;
        match r.selector {
            Selector::Version(version) => Ok(Target::Version {
                model: r.model,
                version,
            }),
            Selector::Alias(alias) => Ok(Target::Alias {
                model: r.model,
                alias,
            }),
            Selector::Latest => Err(RegistryError::Invalid(format!(
                "endpoint target {s:?} must name a version or an alias: {s}/VERSION or {s}@ALIAS"
            ))),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Version { model, version } => write!(f, "{model}/{version}"),
            Target::Alias { model, alias } => write!(f, "{model}@{alias}"),
        }
    }
}

/// How an endpoint routes its traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficPolicy {
    pub primary: Target,
}
