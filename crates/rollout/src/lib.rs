//! Safe rollouts of a new model version, as pure logic: no I/O, no async, no clock. Time comes
//! in as `DateTime<Utc>`; everything to persist is serde and round-trips exactly, so a restarted
//! server resumes a rollout at the same step from its stored JSON.
//!
//! # The model of a rollout
//! A [`Rollout`] moves an endpoint from `from_version` (the primary) to `to_version` (the
//! candidate) following a [`RolloutSpec`]:
//!
//! ```text
//! Pending ─start─▶ Shadowing ─pass─▶ Canary{0} ─pass─▶ … Canary{last} ─pass─▶ Promoted
//!                      │                 │                   │
//!                      └─────── fail beyond failure_limit, or abort ──────────▶ RolledBack
//!        inconclusive (too few requests, missing metric) or pause ─▶ Paused ─resume─▶ same stage
//! ```
//!
//! - **Shadowing** (skipped when `shadow` is 0): the candidate gets a mirrored copy of requests
//!   and its answers are compared with the primary's ([`ShadowComparison`]), never returned.
//! - **Canary step** `i`: the candidate answers `steps[i]` percent of requests.
//! - Each stage *bakes* (`shadow`, then `bake` per step); the first [`Rollout::tick`] after that
//!   analyses the stage's window ([`analyse`]): every [`Check`] bound is evaluated on the
//!   candidate's [`WindowStats`], absolutely or relative to the primary's. Pass → next step, or
//!   promotion after the last. Fail → counted; once failures exceed `failure_limit` (over the
//!   whole rollout) it rolls back, before that the same stage bakes again. Inconclusive →
//!   paused, holding the stage's traffic, until someone resumes it.
//! - Starting a rollout to a version that was live within `rollback_window` promotes at once:
//!   rolling back to a known version does not wait for analysis.
//! - Every change returns a [`Transition`] (when, who, from, to, why, and the [`Analysis`] that
//!   decided it): the audit event. Operations that make no sense in the current state return a
//!   [`RolloutError`] naming it; so does a time earlier than the last transition.
//!
//! # Plugging it into a router
//! 1. **Create**: [`RolloutSpec::from_yaml`] (or fill a spec from CLI flags and
//!    [`RolloutSpec::validate`] it; every problem has field, expected and got), then
//!    [`Rollout::new`]. Persist `serde_json::to_string(&rollout)`.
//! 2. **Start**: [`Rollout::start`] with the time the candidate was last live on this endpoint,
//!    if ever (from the audit log).
//! 3. **Route**: keep one [`Splitter`] per rollout (`Splitter::new(rollout.id())`; it is not
//!    persisted, it holds only a counter) next to the endpoint's traffic policy, and the policy's
//!    current [`Rollout::canary_weight`] and [`Rollout::shadowing`], refreshed after every
//!    transition. Per request: [`Splitter::route`] with the weight and the sticky key's bytes
//!    (if the endpoint has one) gives [`Route::Primary`] or [`Route::Canary`]. No allocation, no
//!    lock. While shadowing, mirror the request to the candidate off the hot path and feed both
//!    outputs to a [`ShadowComparison`] (per window; merge the replicas' comparisons).
//! 4. **Drive**: every few seconds, for each unfinished rollout whose
//!    [`Rollout::analysis_due_at`] has come, compute both sides' [`WindowStats`] over
//!    `[window_start(), now)` ([`Rollout::window_start`]; a new window starts at every
//!    transition) and call [`Rollout::tick`]. While shadowing, set the
//!    candidate's `shadow_agreement` from [`ShadowComparison::agreement_rate`]. On
//!    `Some(transition)`: in one store transaction, save the rollout's JSON and the transition
//!    as an audit row; then apply the new weight, or, on `Promoted`/`RolledBack`, swap the
//!    endpoint's primary atomically (that swap is the router's job, not this crate's).
//! 5. **Operate**: [`Rollout::operate`] with a [`Command`] (pause, resume, abort,
//!    force-promote) from the API; map [`RolloutError::IllegalOperation`] to
//!    409 and [`InvalidSpec`] to 400.
//!
//! ```
//! use berth_rollout::{Rollout, RolloutSpec, Route, Splitter, VersionRef, WindowStats};
//! use chrono::{DateTime, Utc};
//!
//! let spec = RolloutSpec::from_yaml(
//!     "steps: [10, 100]\nbake: 5m\nchecks: [{metric: error_rate, max_increase: 0.01}]",
//! )?;
//! let version = |version| VersionRef { model: "churn".into(), version };
//! let mut rollout = Rollout::new("r-1", "churn-api", version(3), version(4), spec)?;
//! rollout.start(DateTime::<Utc>::UNIX_EPOCH, None)?;
//!
//! // Hot path: one splitter per rollout; the weight is refreshed after each transition.
//! let splitter = Splitter::new(rollout.id());
//! let route = splitter.route(rollout.canary_weight(), Some(b"customer-17".as_slice()));
//! assert!(matches!(route, Route::Primary | Route::Canary));
//!
//! // Driver: once the bake is over, analyse the window, then persist and apply the change.
//! let now = rollout.analysis_due_at().expect("the canary is running");
//! let primary = WindowStats { requests: 900, errors: 9, ..WindowStats::default() };
//! let candidate = WindowStats { requests: 100, errors: 1, ..WindowStats::default() };
//! let transition = rollout.tick(now, &primary, &candidate)?.expect("the bake is over");
//! let audit_event = serde_json::to_string(&transition)?;
//! let stored = serde_json::to_string(&rollout)?;
//! assert_eq!(serde_json::from_str::<Rollout>(&stored)?, rollout);
//! assert_eq!(rollout.canary_weight().percent(), 100.0);
//! # let _ = audit_event;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What to persist: the [`Rollout`] (its spec, state, failure count and history) and each
//! [`Transition`]. Deserializing a rollout re-checks its spec and step index, so a stored
//! rollout either resumes exactly or fails to load with a reason.

pub mod analysis;
pub mod controller;
pub mod shadow;
pub mod spec;
pub mod split;

pub use analysis::{Analysis, CheckResult, Outcome, Phase, Verdict, WindowStats, analyse};
pub use controller::{
    Actor, Command, Operation, Rollout, RolloutError, Stage, State, Transition, VersionRef,
};
pub use shadow::{ShadowComparison, ShadowExample};
pub use spec::{
    Bound, Check, DurationError, During, HumanDuration, InvalidSpec, Metric, RolloutSpec,
    SpecError, SpecProblem,
};
pub use split::{Route, Splitter, Weight};
