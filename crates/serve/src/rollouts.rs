//! Rollouts of an endpoint, kept in the store and driven inside the server.
//!
//! [`start`], [`operate`] and [`rollback`] are what the CLI and the admin API call: each reads
//! the endpoint's rollout, lets [`berth_rollout::Rollout`] decide, and saves the rollout, the
//! traffic policy of its new state, the alias move of a promotion and the audit event (with
//! the analysis that decided it) in one transaction. Serving replicas see the new policy at
//! their next sync, like any registry change.
//!
//! [`RolloutController`] runs in `berth up`: every tick it reads the unfinished rollouts, starts
//! a new window of [`TrafficWindows`] when a rollout's window moved, and once a stage has baked
//! analyses the window (the candidate's requests, errors, p99 latency and shadow agreement
//! against the primary's) and saves the transition. Everything it needs is in the store, so a
//! restarted server resumes every rollout at the step it was in; only the current window's
//! counts start again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_registry::{Canary, ModelRef, Registry, RegistryError, Selector, Target, TrafficPolicy};
use berth_rollout::{
    Command, Rollout, RolloutError, RolloutSpec, ShadowComparison, State, Transition, VersionRef,
    WindowStats,
};
use berth_store::{RolloutRow, RolloutSave};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::route::TrafficWindows;

/// The state's name in the store and in audit actions (`rollout.canary`, ...).
fn state_key(state: &State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Shadowing { .. } => "shadowing",
        State::Canary { .. } => "canary",
        State::Paused { .. } => "paused",
        State::Promoted => "promoted",
        State::RolledBack { .. } => "rolled_back",
    }
}

/// A stored rollout, read back.
struct Stored {
    rollout: Rollout,
    revision: i64,
}

fn parse(row: &RolloutRow) -> Result<Stored, RegistryError> {
    let rollout = serde_json::from_value(row.body.clone()).map_err(|e| {
        RegistryError::Invalid(format!("rollout {}: stored state unreadable: {e}", row.id))
    })?;
    Ok(Stored {
        rollout,
        revision: row.revision,
    })
}

fn rollout_error(e: RolloutError) -> RegistryError {
    RegistryError::Duplicate(e.to_string())
}

/// The endpoint's unfinished rollout, if any.
async fn active(registry: &Registry, endpoint: &str) -> Result<Option<Stored>, RegistryError> {
    let rows = registry
        .metadata()
        .list_rollouts(Some(endpoint), true, 1)
        .await?;
    rows.first().map(parse).transpose()
}

/// The traffic policy an endpoint has while `rollout` is in its current state (from `base`,
/// the policy without the rollout), and the alias a promotion moves.
fn policy_for(rollout: &Rollout, base: &TrafficPolicy) -> (TrafficPolicy, Option<String>) {
    let to = rollout.to_version();
    let candidate = Target::Version {
        model: to.model.clone(),
        version: to.version,
    };
    let mut policy = TrafficPolicy {
        canary: None,
        shadows: Vec::new(),
        ..base.clone()
    };
    let mut alias = None;
    match rollout.state() {
        State::Promoted => match &base.primary {
            Target::Alias { alias: name, .. } => alias = Some(name.clone()),
            Target::Version { .. } => policy.primary = candidate,
        },
        State::Pending | State::RolledBack { .. } => {}
        State::Shadowing { .. } | State::Canary { .. } | State::Paused { .. } => {
            if rollout.shadowing() {
                policy.shadows = vec![candidate];
            } else if rollout.canary_weight().basis_points() > 0 {
                policy.canary = Some(Canary {
                    target: candidate,
                    weight: rollout.canary_weight().percent(),
                    seed: Some(rollout.id().to_string()),
                });
            }
        }
    }
    (policy, alias)
}

/// Saves `rollout` after `transition`: its row, the endpoint's policy for the new state, a
/// promotion's alias move and the audit event, in one transaction. The event keeps the window's
/// shadow comparison, when there was one, with its worst examples, for inspection.
async fn save(
    registry: &Registry,
    rollout: &Rollout,
    read_revision: Option<i64>,
    transition: &Transition,
    actor: &str,
    shadow: Option<&ShadowComparison>,
) -> Result<(), RegistryError> {
    let base = registry.endpoint_policy(rollout.endpoint()).await?;
    let (policy, alias) = policy_for(rollout, &base);
    let policy_json = (policy != base)
        .then(|| serde_json::to_value(&policy))
        .transpose()
        .map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let body = serde_json::to_value(rollout).map_err(|e| RegistryError::Invalid(e.to_string()))?;
    let mut event = json!({
        "rollout": rollout.id(),
        "from": rollout.from_version(),
        "to": rollout.to_version(),
        "transition": transition,
    });
    if let Some(shadow) = shadow.filter(|c| c.requests() > 0) {
        event["shadow"] = json!({
            "requests": shadow.requests(),
            "agreement": shadow.agreement_rate(),
            "mean_abs_delta": shadow.mean_abs_delta(),
            "p99_abs_delta": shadow.p99_abs_delta(),
            "worst": shadow.worst(),
        });
    }
    let state = state_key(rollout.state());
    registry
        .metadata()
        .save_rollout(
            &RolloutSave {
                id: rollout.id(),
                endpoint: rollout.endpoint(),
                model: &rollout.to_version().model,
                state,
                finished: rollout.is_finished(),
                body: &body,
                read_revision,
                action: &format!("rollout.{state}"),
                event: &event,
                policy: policy_json.as_ref(),
                alias: alias
                    .as_deref()
                    .map(|name| (name, rollout.to_version().version)),
            },
            &registry.change(actor, Some(transition.reason.clone())),
        )
        .await?;
    Ok(())
}

/// When `version` last stopped serving `endpoint` as its primary: the promotion of the newest
/// rollout that replaced it.
async fn last_live(
    registry: &Registry,
    endpoint: &str,
    version: &VersionRef,
) -> Result<Option<(DateTime<Utc>, VersionRef)>, RegistryError> {
    let rows = registry
        .metadata()
        .list_rollouts(Some(endpoint), false, 1000)
        .await?;
    for row in &rows {
        let Ok(stored) = parse(row) else { continue };
        let r = &stored.rollout;
        if *r.state() == State::Promoted && (r.from_version() == version) {
            let at = r.history().last().map_or(row.updated_at, |t| t.at);
            return Ok(Some((at, r.from_version().clone())));
        }
    }
    Ok(None)
}

/// What a rollout start asks for.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub endpoint: String,
    /// The candidate: a version of the model the endpoint serves.
    pub to_version: i64,
    pub spec: RolloutSpec,
    pub actor: String,
    pub reason: Option<String>,
}

/// Starts a rollout of `to_version` on an endpoint: shadowing or the first canary step at once,
/// or promoted at once when the candidate was the endpoint's primary within the spec's
/// rollback window.
pub async fn start(registry: &Registry, request: StartRequest) -> Result<Rollout, RegistryError> {
    let endpoint = &request.endpoint;
    let policy = registry.endpoint_policy(endpoint).await?;
    let from = registry.resolve(&policy.primary.to_model_ref()).await?;
    let to = registry
        .resolve(&ModelRef {
            model: from.model.clone(),
            selector: Selector::Version(request.to_version),
        })
        .await?;
    if to.version == from.version {
        return Err(RegistryError::Invalid(format!(
            "endpoint '{endpoint}' already serves {}/{}: nothing to roll out",
            to.model, to.version
        )));
    }
    let version = |v: i64| VersionRef {
        model: from.model.clone(),
        version: v,
    };
    let id = format!("ro-{}", uuid::Uuid::now_v7());
    let mut rollout = Rollout::new(
        id,
        endpoint.clone(),
        version(from.version),
        version(to.version),
        request.spec,
    )
    .map_err(|e| RegistryError::Invalid(format!("rollout spec: {e}")))?;
    let was_live = last_live(registry, endpoint, rollout.to_version())
        .await?
        .map(|(at, _)| at);
    let mut transition = rollout
        .start(registry.change("", None).at, was_live)
        .map_err(rollout_error)?;
    if let Some(reason) = &request.reason {
        transition.reason = format!("{}: {reason}", transition.reason);
    }
    save(registry, &rollout, None, &transition, &request.actor, None).await?;
    Ok(rollout)
}

/// Pauses, resumes, aborts or force-promotes the endpoint's unfinished rollout.
pub async fn operate(
    registry: &Registry,
    endpoint: &str,
    command: Command,
    actor: &str,
    reason: Option<&str>,
) -> Result<Rollout, RegistryError> {
    let Some(Stored {
        mut rollout,
        revision,
    }) = active(registry, endpoint).await?
    else {
        return Err(RegistryError::NotFound(format!(
            "endpoint '{endpoint}' has no unfinished rollout"
        )));
    };
    let why = reason.unwrap_or("operator request");
    let transition = rollout
        .operate(registry.change(actor, None).at, command, actor, why)
        .map_err(rollout_error)?;
    save(registry, &rollout, Some(revision), &transition, actor, None).await?;
    Ok(rollout)
}

/// Returns all of an endpoint's traffic to the version it served before, at once: aborts an
/// unfinished rollout, or else rolls back the newest promotion (no analysis: an operator asked).
pub async fn rollback(
    registry: &Registry,
    endpoint: &str,
    actor: &str,
    reason: Option<&str>,
) -> Result<Rollout, RegistryError> {
    if active(registry, endpoint).await?.is_some() {
        return operate(registry, endpoint, Command::Abort, actor, reason).await;
    }
    let policy = registry.endpoint_policy(endpoint).await?;
    let current = registry.resolve(&policy.primary.to_model_ref()).await?;
    let current = VersionRef {
        model: current.model,
        version: current.version,
    };
    let rows = registry
        .metadata()
        .list_rollouts(Some(endpoint), false, 1000)
        .await?;
    let previous = rows
        .iter()
        .filter_map(|row| parse(row).ok())
        .find(|s| *s.rollout.state() == State::Promoted && *s.rollout.to_version() == current)
        .map(|s| s.rollout.from_version().clone())
        .ok_or_else(|| {
            RegistryError::NotFound(format!(
                "endpoint '{endpoint}' serves {current}, which no rollout promoted: nothing to roll back to"
            ))
        })?;
    let mut rollout = start(
        registry,
        StartRequest {
            endpoint: endpoint.to_string(),
            to_version: previous.version,
            spec: RolloutSpec::default(),
            actor: actor.to_string(),
            reason: Some(format!(
                "rollback: {}",
                reason.unwrap_or("operator request")
            )),
        },
    )
    .await?;
    if !rollout.is_finished() {
        // Live longer ago than the rollback window: still an operator's call, so promote now.
        rollout = operate(
            registry,
            endpoint,
            Command::ForcePromote,
            actor,
            Some("rollback"),
        )
        .await?;
    }
    Ok(rollout)
}

/// An endpoint's rollouts, newest first (at most `limit`).
pub async fn list(
    registry: &Registry,
    endpoint: Option<&str>,
    limit: i64,
) -> Result<Vec<RolloutView>, RegistryError> {
    registry
        .metadata()
        .list_rollouts(endpoint, false, limit)
        .await?
        .iter()
        .map(|row| Ok(RolloutView::of(row, parse(row)?.rollout)))
        .collect()
}

/// A rollout as the API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    pub id: String,
    pub endpoint: String,
    pub from: VersionRef,
    pub to: VersionRef,
    pub state: State,
    /// The candidate's share of answers now, in percent.
    pub canary_percent: f64,
    pub shadowing: bool,
    pub failures: u32,
    pub window_start: Option<DateTime<Utc>>,
    pub analysis_due_at: Option<DateTime<Utc>>,
    pub spec: RolloutSpec,
    pub history: Vec<Transition>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The current window as this server counts it (the admin API of a running server only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveWindow>,
}

/// The current window of a rollout, as one server counted it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveWindow {
    pub primary: WindowStats,
    pub candidate: WindowStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowComparison>,
}

impl RolloutView {
    fn of(row: &RolloutRow, rollout: Rollout) -> Self {
        Self {
            id: row.id.clone(),
            endpoint: row.endpoint.clone(),
            from: rollout.from_version().clone(),
            to: rollout.to_version().clone(),
            state: rollout.state().clone(),
            canary_percent: rollout.canary_weight().percent(),
            shadowing: rollout.shadowing(),
            failures: rollout.failures(),
            window_start: rollout.window_start(),
            analysis_due_at: rollout.analysis_due_at(),
            spec: rollout.spec().clone(),
            history: rollout.history().to_vec(),
            created_at: row.created_at,
            updated_at: row.updated_at,
            live: None,
        }
    }

    /// Adds the live window from `windows`.
    pub fn with_live(mut self, windows: &TrafficWindows) -> Self {
        let (primary, candidate) = windows.compare(
            &self.endpoint,
            (&self.from.model, self.from.version),
            (&self.to.model, self.to.version),
        );
        self.live = Some(LiveWindow {
            primary,
            candidate,
            shadow: windows.shadow_comparison(&self.endpoint, &self.to.model, self.to.version),
        });
        self
    }
}

/// Drives every unfinished rollout from inside the server.
pub struct RolloutController {
    registry: Registry,
    windows: Arc<TrafficWindows>,
    /// Per rollout: the window it was in at the last tick, and since when this process has
    /// counted it.
    seen: HashMap<String, (Option<DateTime<Utc>>, DateTime<Utc>)>,
}

impl RolloutController {
    pub fn new(registry: Registry, windows: Arc<TrafficWindows>) -> Self {
        Self {
            registry,
            windows,
            seen: HashMap::new(),
        }
    }

    /// One pass over the unfinished rollouts; returns the transitions it saved.
    pub async fn tick(&mut self) -> Result<Vec<Transition>, RegistryError> {
        let rows = self
            .registry
            .metadata()
            .list_rollouts(None, true, 1000)
            .await?;
        let mut saved = Vec::new();
        for row in &rows {
            let Stored {
                mut rollout,
                revision,
            } = match parse(row) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("{e}");
                    continue;
                }
            };
            let now = self.registry.change("", None).at;
            let window = rollout.window_start();
            let counting_since = match self.seen.get(rollout.id()) {
                Some((seen, since)) if *seen == window => *since,
                _ => {
                    // A new step, or a rollout this process has not counted yet (a restart):
                    // count its window from zero, from now.
                    self.windows.reset(rollout.endpoint());
                    self.seen.insert(rollout.id().to_string(), (window, now));
                    continue;
                }
            };
            let (Some(start), Some(due)) = (window, rollout.analysis_due_at()) else {
                continue;
            };
            // A stage bakes on counts this process saw for the whole bake: after a restart
            // the stage bakes again rather than being judged on a few seconds of traffic.
            if now < due || now < counting_since + (due - start) {
                continue;
            }
            let (from, to) = (rollout.from_version(), rollout.to_version());
            let (primary, candidate) = self.windows.compare(
                rollout.endpoint(),
                (&from.model, from.version),
                (&to.model, to.version),
            );
            let shadow = self
                .windows
                .shadow_comparison(rollout.endpoint(), &to.model, to.version);
            match rollout.tick(now, &primary, &candidate) {
                Ok(Some(transition)) => {
                    match save(
                        &self.registry,
                        &rollout,
                        Some(revision),
                        &transition,
                        "controller",
                        shadow.as_ref(),
                    )
                    .await
                    {
                        Ok(()) => {
                            self.windows.reset(rollout.endpoint());
                            self.seen
                                .insert(rollout.id().to_string(), (rollout.window_start(), now));
                            tracing::info!(
                                rollout = rollout.id(),
                                endpoint = rollout.endpoint(),
                                "{} -> {}: {}",
                                transition.from.name(),
                                transition.to.name(),
                                transition.reason
                            );
                            saved.push(transition);
                        }
                        // Someone else moved it meanwhile: decide again next tick.
                        Err(RegistryError::Duplicate(e)) => tracing::info!("{e}"),
                        Err(e) => return Err(e),
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(rollout = rollout.id(), "{e}"),
            }
        }
        self.seen
            .retain(|id, _| rows.iter().any(|row| row.id == *id));
        Ok(saved)
    }

    /// Ticks every `every` until the process ends; errors are logged and retried.
    pub fn run(mut self, every: Duration) {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.tick().await {
                    tracing::warn!("rollout controller: {e}");
                }
                tokio::time::sleep(every).await;
            }
        });
    }
}
