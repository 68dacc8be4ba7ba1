//! An endpoint's traffic policy: the primary target (a pinned version or an alias), an optional
//! canary with a weight, shadows that are mirrored but never answer, and an optional sticky key
//! so one entity always sees the same version. The router reads it; a rollout writes it.

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficPolicy {
    /// Answers every request the canary does not take.
    pub primary: Target,
    /// Answers a share of the requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Get a copy of every request off the hot path; their answers are compared, never returned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<Target>,
    /// What identifies an entity, so that it always gets the same version within a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<StickyKey>,
}

/// The version that answers a share of an endpoint's requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    pub target: Target,
    /// Percent of requests, in (0, 100].
    pub weight: f64,
    /// Seeds the split (the rollout's id while a rollout runs): the same key and seed always
    /// land on the same side, and a rising weight only moves keys from primary to canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

/// Where a request's sticky key is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StickyKey {
    /// An HTTP header (its value's bytes).
    Header(String),
    /// An input field (its value in the request's first row).
    Field(String),
}

impl TrafficPolicy {
    /// Everything to the primary.
    pub fn primary(target: Target) -> Self {
        Self {
            primary: target,
            canary: None,
            shadows: Vec::new(),
            sticky: None,
        }
    }

    /// A policy from what people type: targets as `NAME/VERSION` or `NAME@ALIAS`, a canary with
    /// its weight in percent, shadows, and at most one sticky key (a header or an input field).
    pub fn from_text(
        target: &str,
        canary: Option<(&str, f64)>,
        shadows: &[String],
        sticky_header: Option<&str>,
        sticky_field: Option<&str>,
    ) -> Result<Self, RegistryError> {
        let sticky = match (sticky_header, sticky_field) {
            (Some(_), Some(_)) => {
                return Err(RegistryError::Invalid(
                    "sticky: expected a header or a field, got both".into(),
                ));
            }
            (Some(h), None) => Some(StickyKey::Header(h.to_ascii_lowercase())),
            (None, Some(f)) => Some(StickyKey::Field(f.to_string())),
            (None, None) => None,
        };
        let policy = Self {
            primary: Target::parse(target)?,
            canary: canary
                .map(|(target, weight)| {
                    Ok::<_, RegistryError>(Canary {
                        target: Target::parse(target)?,
                        weight,
                        seed: None,
                    })
                })
                .transpose()?,
            shadows: shadows
                .iter()
                .map(|s| Target::parse(s))
                .collect::<Result<_, _>>()?,
            sticky,
        };
        policy.validate()?;
        Ok(policy)
    }

    /// Every target the policy names: primary, canary, shadows.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        std::iter::once(&self.primary)
            .chain(self.canary.as_ref().map(|c| &c.target))
            .chain(&self.shadows)
    }

    /// Refuses what cannot be served: a weight outside (0, 100], a canary or shadow of another
    /// model, an empty sticky key name.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let model = self.primary.model();
        if let Some(canary) = &self.canary
            && !(canary.weight > 0.0 && canary.weight <= 100.0)
        {
            return Err(RegistryError::Invalid(format!(
                "canary.weight: expected a percent in (0, 100], got {}",
                canary.weight
            )));
        }
        if let Some(other) = self.targets().find(|t| t.model() != model) {
            return Err(RegistryError::Invalid(format!(
                "{other}: canary and shadows must be versions of the primary's model {model:?}"
            )));
        }
        match &self.sticky {
            Some(StickyKey::Header(name) | StickyKey::Field(name)) if name.trim().is_empty() => {
                Err(RegistryError::Invalid(
                    "sticky: expected a header or field name, got an empty one".into(),
                ))
            }
            Some(StickyKey::Header(name)) if header_name_invalid(name) => {
                Err(RegistryError::Invalid(format!(
                    "sticky.header: expected an HTTP header name (letters, digits, '-'), got {name:?}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Header names are ASCII tokens; anything else could never match a request's header.
fn header_name_invalid(name: &str) -> bool {
    !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b))
}
