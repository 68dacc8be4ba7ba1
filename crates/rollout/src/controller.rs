//! The rollout state machine. [`Rollout`] holds one rollout's spec, state and history; every
//! operation takes the current time and returns the [`Transition`] it made, which is what the
//! caller persists and audits. Illegal operations return a [`RolloutError`] naming the state.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::analysis::{Analysis, Phase, Verdict, WindowStats, analyse};
use crate::spec::{InvalidSpec, RolloutSpec};
use crate::split::Weight;

/// A model version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VersionRef {
    pub model: String,
    pub version: i64,
}

impl fmt::Display for VersionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.model, self.version)
    }
}

/// A stage the candidate can be serving in: shadowing, or one canary step (an index into
/// `spec.steps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Shadow,
    Canary { step: usize },
}

impl Stage {
    fn running(self, since: DateTime<Utc>) -> State {
        match self {
            Self::Shadow => State::Shadowing { since },
            Self::Canary { step } => State::Canary { step, since },
        }
    }
}

/// Where a rollout is. `since` is when the current window (and its bake) began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Created, not started.
    Pending,
    /// The candidate receives mirrored traffic; its answers are compared, never returned.
    Shadowing { since: DateTime<Utc> },
    /// The candidate answers `spec.steps[step]` percent of the traffic.
    Canary { step: usize, since: DateTime<Utc> },
    /// Held at `resume_to`'s traffic until resumed: by an operator, or after an inconclusive
    /// analysis (too little traffic, a missing metric).
    Paused { resume_to: Stage },
    /// The candidate serves all traffic. Terminal.
    Promoted,
    /// The primary serves all traffic. Terminal.
    RolledBack { reason: String },
}

impl State {
    /// The state's name, as in errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Shadowing { .. } => "shadowing",
            Self::Canary { .. } => "canary",
            Self::Paused { .. } => "paused",
            Self::Promoted => "promoted",
            Self::RolledBack { .. } => "rolled back",
        }
    }

    /// Promoted or rolled back: no operation applies any more.
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Promoted | Self::RolledBack { .. })
    }

    /// The stage whose traffic is being served (running or held).
    fn stage(&self) -> Option<Stage> {
        match *self {
            Self::Shadowing { .. } => Some(Stage::Shadow),
            Self::Canary { step, .. } => Some(Stage::Canary { step }),
            Self::Paused { resume_to } => Some(resume_to),
            Self::Pending | Self::Promoted | Self::RolledBack { .. } => None,
        }
    }
}

/// Who made a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The controller itself, on a tick.
    Controller,
    /// A person or a system acting through the API.
    Operator(String),
}

/// One change of state: the audit event of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub by: Actor,
    pub from: State,
    pub to: State,
    pub reason: String,
    /// The analysis that decided an automatic transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

/// An operation on a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Start,
    Tick,
    Pause,
    Resume,
    Abort,
    ForcePromote,
}

/// What an operator can ask of a rollout ([`Rollout::operate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    Pause,
    Resume,
    Abort,
    ForcePromote,
}

impl From<Command> for Operation {
    fn from(command: Command) -> Self {
        match command {
            Command::Pause => Operation::Pause,
            Command::Resume => Operation::Resume,
            Command::Abort => Operation::Abort,
            Command::ForcePromote => Operation::ForcePromote,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::Tick => "tick",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Abort => "abort",
            Self::ForcePromote => "force-promote",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutError {
    #[error("cannot {operation} rollout {id}: it is {state}")]
    IllegalOperation {
        id: String,
        operation: Operation,
        state: &'static str,
    },
    #[error("rollout {id}: time {now} is before its last transition at {last}")]
    TimeWentBackwards {
        id: String,
        now: DateTime<Utc>,
        last: DateTime<Utc>,
    },
}

/// One rollout of `to_version` on an endpoint that serves `from_version`.
///
/// Deserializing checks what construction guarantees (a valid spec, step indices in range), so
/// a stored rollout either resumes exactly where it was or fails to load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredRollout")]
pub struct Rollout {
    id: String,
    endpoint: String,
    from_version: VersionRef,
    to_version: VersionRef,
    spec: RolloutSpec,
    state: State,
    /// Failed analyses so far; more than `spec.failure_limit` rolls back.
    failures: u32,
    history: Vec<Transition>,
}

/// [`Rollout`]'s fields as stored, before their check.
#[derive(Deserialize)]
struct StoredRollout {
    id: String,
    endpoint: String,
    from_version: VersionRef,
    to_version: VersionRef,
    spec: RolloutSpec,
    state: State,
    failures: u32,
    history: Vec<Transition>,
}

impl TryFrom<StoredRollout> for Rollout {
    type Error = String;

    fn try_from(stored: StoredRollout) -> Result<Self, Self::Error> {
        stored.spec.validate().map_err(|e| e.to_string())?;
        let steps = stored.spec.steps.len();
        if let Some(Stage::Canary { step }) = stored.state.stage()
            && step >= steps
        {
            return Err(format!("canary step {step} of a spec with {steps} steps"));
        }
        if stored.failures > stored.spec.failure_limit && !stored.state.is_finished() {
            return Err(format!(
                "{} failures over the limit, not rolled back",
                stored.failures
            ));
        }
        Ok(Self {
            id: stored.id,
            endpoint: stored.endpoint,
            from_version: stored.from_version,
            to_version: stored.to_version,
            spec: stored.spec,
            state: stored.state,
            failures: stored.failures,
            history: stored.history,
        })
    }
}

impl Rollout {
    /// A pending rollout; the spec must be valid.
    pub fn new(
        id: impl Into<String>,
        endpoint: impl Into<String>,
        from_version: VersionRef,
        to_version: VersionRef,
        spec: RolloutSpec,
    ) -> Result<Self, InvalidSpec> {
        spec.validate()?;
        Ok(Self {
            id: id.into(),
            endpoint: endpoint.into(),
            from_version,
            to_version,
            spec,
            state: State::Pending,
            failures: 0,
            history: Vec::new(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    pub fn from_version(&self) -> &VersionRef {
        &self.from_version
    }
    pub fn to_version(&self) -> &VersionRef {
        &self.to_version
    }
    pub fn spec(&self) -> &RolloutSpec {
        &self.spec
    }
    pub fn state(&self) -> &State {
        &self.state
    }
    pub fn failures(&self) -> u32 {
        self.failures
    }
    /// Every transition so far, oldest first.
    pub fn history(&self) -> &[Transition] {
        &self.history
    }

    /// Whether the rollout is promoted or rolled back.
    pub fn is_finished(&self) -> bool {
        self.state.is_finished()
    }

    /// When the current analysis window began: the stats passed to [`Rollout::tick`] must cover
    /// `[window_start, now)`. `None` when nothing is being analysed (pending, paused, finished).
    pub fn window_start(&self) -> Option<DateTime<Utc>> {
        match self.state {
            State::Shadowing { since } | State::Canary { since, .. } => Some(since),
            _ => None,
        }
    }

    /// When the current stage has baked: the first [`Rollout::tick`] from then on analyses it
    /// (ticks before need no stats; gather them only from then). `None` when nothing is running.
    pub fn analysis_due_at(&self) -> Option<DateTime<Utc>> {
        match self.state {
            State::Shadowing { since } => Some(self.bake_end(Stage::Shadow, since)),
            State::Canary { step, since } => Some(self.bake_end(Stage::Canary { step }, since)),
            _ => None,
        }
    }

    fn bake_end(&self, stage: Stage, since: DateTime<Utc>) -> DateTime<Utc> {
        let bake = match stage {
            Stage::Shadow => self.spec.shadow,
            Stage::Canary { .. } => self.spec.bake,
        };
        since
            .checked_add_signed(bake.as_time_delta())
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The share of live traffic the candidate answers now: 0 before the canary and after a
    /// rollback, the step's weight in canary (also while paused there), 100 % once promoted.
    pub fn canary_weight(&self) -> Weight {
        match (&self.state, self.state.stage()) {
            (State::Promoted, _) => Weight::FULL,
            (_, Some(Stage::Canary { step })) => self.step_weight(step),
            _ => Weight::ZERO,
        }
    }

    /// Whether the candidate should receive mirrored traffic now (shadowing, or paused there).
    pub fn shadowing(&self) -> bool {
        self.state.stage() == Some(Stage::Shadow)
    }

    /// Starts the rollout. When the candidate was live at `candidate_last_live` within the
    /// spec's rollback window, this is a rollback to a known version: promoted at once.
    pub fn start(
        &mut self,
        now: DateTime<Utc>,
        candidate_last_live: Option<DateTime<Utc>>,
    ) -> Result<Transition, RolloutError> {
        self.check_time(now)?;
        if self.state != State::Pending {
            return Err(self.illegal(Operation::Start));
        }
        let window = self.spec.rollback_window;
        let recent = candidate_last_live.filter(|&t| t <= now && now - t <= window.as_time_delta());
        let (to, reason) = match recent {
            Some(live) => (
                State::Promoted,
                format!(
                    "{} was live at {live}, within the rollback window of {window}: no analysis",
                    self.to_version
                ),
            ),
            None if self.spec.shadow.is_zero() => (
                Stage::Canary { step: 0 }.running(now),
                format!(
                    "started: canary of {} at {}",
                    self.to_version,
                    self.step_weight(0)
                ),
            ),
            None => (
                Stage::Shadow.running(now),
                format!(
                    "started: shadowing {} for {}",
                    self.to_version, self.spec.shadow
                ),
            ),
        };
        Ok(self.record(now, Actor::Controller, to, reason, None))
    }

    /// Advances the rollout once the current stage has baked (`spec.shadow` for shadowing,
    /// `spec.bake` for a canary step): the analysis of the window decides the next step,
    /// promotion after the last step, a rollback once failures exceed `spec.failure_limit`
    /// (below it the stage bakes again), or a pause when inconclusive. Before the bake is over,
    /// and while paused, nothing happens.
    pub fn tick(
        &mut self,
        now: DateTime<Utc>,
        primary: &WindowStats,
        candidate: &WindowStats,
    ) -> Result<Option<Transition>, RolloutError> {
        self.check_time(now)?;
        let (stage, since) = match self.state {
            State::Shadowing { since } => (Stage::Shadow, since),
            State::Canary { step, since } => (Stage::Canary { step }, since),
            State::Paused { .. } => return Ok(None),
            State::Pending | State::Promoted | State::RolledBack { .. } => {
                return Err(self.illegal(Operation::Tick));
            }
        };
        if now < self.bake_end(stage, since) {
            return Ok(None);
        }
        let phase = match stage {
            Stage::Shadow => Phase::Shadow,
            Stage::Canary { .. } => Phase::Canary,
        };
        let analysis = analyse(&self.spec, phase, primary, candidate);
        let summary = analysis.summary();
        let (to, reason) = match analysis.verdict {
            Verdict::Pass => {
                let next = match stage {
                    Stage::Shadow => 0,
                    Stage::Canary { step } => step + 1,
                };
                if next < self.spec.steps.len() {
                    let weight = self.step_weight(next);
                    let to = Stage::Canary { step: next }.running(now);
                    (to, format!("{summary}; canary at {weight}"))
                } else {
                    (
                        State::Promoted,
                        format!("{summary} on the last step; promoted"),
                    )
                }
            }
            Verdict::Fail => {
                self.failures += 1;
                let limit = self.spec.failure_limit;
                if self.failures > limit {
                    let reason = format!(
                        "analysis {summary} ({} > failure_limit {limit})",
                        self.failures
                    );
                    (
                        State::RolledBack {
                            reason: reason.clone(),
                        },
                        reason,
                    )
                } else {
                    let reason = format!(
                        "{summary}; failure {} of {limit} tolerated, baking again",
                        self.failures
                    );
                    (stage.running(now), reason)
                }
            }
            Verdict::Inconclusive => (
                State::Paused { resume_to: stage },
                format!("{summary}; paused"),
            ),
        };
        Ok(Some(self.record(
            now,
            Actor::Controller,
            to,
            reason,
            Some(analysis),
        )))
    }

    /// Carries out an operator's `command` (`who` asked, `why`):
    /// - `Pause` holds the rollout at its current traffic until `Resume`;
    /// - `Resume` continues a paused rollout where it was held, its bake starting again at `now`;
    /// - `Abort` rolls back: the primary serves everything again;
    /// - `ForcePromote` promotes now, skipping the remaining steps and their analyses.
    pub fn operate(
        &mut self,
        now: DateTime<Utc>,
        command: Command,
        who: &str,
        why: &str,
    ) -> Result<Transition, RolloutError> {
        self.check_time(now)?;
        let operation = Operation::from(command);
        let to = match (command, &self.state) {
            (Command::Pause, State::Shadowing { .. }) => State::Paused {
                resume_to: Stage::Shadow,
            },
            (Command::Pause, &State::Canary { step, .. }) => State::Paused {
                resume_to: Stage::Canary { step },
            },
            (Command::Resume, &State::Paused { resume_to }) => resume_to.running(now),
            (Command::Abort, state) if !state.is_finished() => State::RolledBack {
                reason: format!("aborted by {who}: {why}"),
            },
            (Command::ForcePromote, state) if !state.is_finished() => State::Promoted,
            _ => return Err(self.illegal(operation)),
        };
        let reason = format!("{operation}: {why}");
        Ok(self.record(now, Actor::Operator(who.into()), to, reason, None))
    }

    fn step_weight(&self, step: usize) -> Weight {
        self.spec
            .steps
            .get(step)
            .and_then(|&percent| Weight::from_percent(percent))
            .unwrap_or(Weight::ZERO)
    }

    fn illegal(&self, operation: Operation) -> RolloutError {
        RolloutError::IllegalOperation {
            id: self.id.clone(),
            operation,
            state: self.state.name(),
        }
    }

    fn check_time(&self, now: DateTime<Utc>) -> Result<(), RolloutError> {
        match self.history.last() {
            Some(last) if now < last.at => Err(RolloutError::TimeWentBackwards {
                id: self.id.clone(),
                now,
                last: last.at,
            }),
            _ => Ok(()),
        }
    }

    fn record(
        &mut self,
        at: DateTime<Utc>,
        by: Actor,
        to: State,
        reason: String,
        analysis: Option<Analysis>,
    ) -> Transition {
        let from = std::mem::replace(&mut self.state, to.clone());
        let transition = Transition {
            at,
            by,
            from,
            to,
            reason,
            analysis,
        };
        self.history.push(transition.clone());
        transition
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Bound, Check, HumanDuration, Metric};
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::minutes(minutes)
    }

    fn version(version: i64) -> VersionRef {
        VersionRef {
            model: "churn".into(),
            version,
        }
    }

    fn spec(shadow: &str, failure_limit: u32) -> RolloutSpec {
        RolloutSpec {
            shadow: shadow.parse().unwrap(),
            steps: vec![10.0, 50.0, 100.0],
            bake: "5m".parse().unwrap(),
            min_requests: 50,
            failure_limit,
            checks: vec![Check::new(Metric::ErrorRate, Bound::Max(0.05))],
            ..RolloutSpec::default()
        }
    }

    fn rollout(spec: RolloutSpec) -> Rollout {
        Rollout::new("r1", "churn-api", version(1), version(2), spec).unwrap()
    }

    fn window(requests: u64, errors: u64) -> WindowStats {
        WindowStats {
            requests,
            errors,
            ..WindowStats::default()
        }
    }

    const OK: WindowStats = WindowStats {
        requests: 100,
        errors: 0,
        p99_latency_ms: None,
        prediction_drift: None,
        shadow_agreement: None,
        realized_performance: None,
    };

    fn canary(step: usize, minute: i64) -> State {
        State::Canary {
            step,
            since: t(minute),
        }
    }

    fn percent(rollout: &Rollout) -> f64 {
        rollout.canary_weight().percent()
    }

    #[test]
    fn shadow_then_every_step_then_promoted() {
        let mut r = rollout(spec("10m", 0));
        assert_eq!(percent(&r), 0.0);
        r.start(t(0), None).unwrap();
        assert!(r.shadowing());
        assert_eq!((percent(&r), r.window_start()), (0.0, Some(t(0))));
        assert_eq!(r.analysis_due_at(), Some(t(10)));
        assert_eq!(r.tick(t(9), &OK, &OK).unwrap(), None, "shadow not over");
        let mut weights = Vec::new();
        for minute in [10, 15, 20, 25] {
            let transition = r.tick(t(minute), &OK, &OK).unwrap().unwrap();
            assert_eq!(transition.by, Actor::Controller);
            assert_eq!(transition.analysis.unwrap().verdict, Verdict::Pass);
            weights.push(percent(&r));
        }
        assert_eq!(weights, [10.0, 50.0, 100.0, 100.0]);
        assert!(!r.shadowing());
        assert_eq!(r.state(), &State::Promoted);
        assert_eq!(r.history().len(), 5);
        let err = r.tick(t(30), &OK, &OK).unwrap_err();
        assert_eq!(err.to_string(), "cannot tick rollout r1: it is promoted");
    }

    #[test]
    fn failures_beyond_the_limit_roll_back() {
        let mut r = rollout(spec("0", 1));
        r.start(t(0), None).unwrap();
        assert_eq!(r.state(), &canary(0, 0));
        let bad = window(100, 10);
        let first = r.tick(t(5), &OK, &bad).unwrap().unwrap();
        assert_eq!(r.state(), &canary(0, 5), "bakes again");
        assert!(
            first.reason.contains("failure 1 of 1 tolerated"),
            "{}",
            first.reason
        );
        assert_eq!(r.tick(t(9), &OK, &bad).unwrap(), None);
        let second = r.tick(t(10), &OK, &bad).unwrap().unwrap();
        let State::RolledBack { reason } = r.state() else {
            panic!("{:?}", r.state())
        };
        assert!(reason.contains("error_rate 0.1"), "{reason}");
        let analysis = second.analysis.unwrap();
        assert_eq!(analysis.checks[0].observed, Some(0.1));
        assert_eq!(analysis.candidate, bad);
        assert_eq!(percent(&r), 0.0);
        assert!(matches!(
            r.operate(t(11), Command::Abort, "ann", "again"),
            Err(RolloutError::IllegalOperation {
                operation: Operation::Abort,
                state: "rolled back",
                ..
            })
        ));
    }

    #[test]
    fn inconclusive_pauses_and_holds_traffic_until_resumed() {
        let mut r = rollout(spec("0", 0));
        r.start(t(0), None).unwrap();
        r.tick(t(5), &OK, &OK).unwrap();
        let paused = r.tick(t(10), &OK, &window(49, 0)).unwrap().unwrap();
        assert!(
            paused.reason.contains("fewer than min_requests 50"),
            "{}",
            paused.reason
        );
        let resume_to = Stage::Canary { step: 1 };
        assert_eq!(r.state(), &State::Paused { resume_to });
        assert_eq!((percent(&r), r.window_start()), (50.0, None));
        assert_eq!(r.tick(t(60), &OK, &OK).unwrap(), None);
        assert!(r.operate(t(60), Command::Pause, "ann", "again").is_err());
        r.operate(t(61), Command::Resume, "ann", "traffic is back")
            .unwrap();
        assert_eq!(r.state(), &canary(1, 61));
        let err = r
            .operate(t(62), Command::Resume, "ann", "again")
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot resume rollout r1: it is canary");
    }

    #[test]
    fn manual_hold_abort_and_force_promote() {
        let mut r = rollout(spec("10m", 0));
        assert!(
            r.operate(t(0), Command::Pause, "ann", "wait").is_err(),
            "pending"
        );
        r.start(t(0), None).unwrap();
        let hold = r.operate(t(1), Command::Pause, "ann", "load test").unwrap();
        assert_eq!(hold.by, Actor::Operator("ann".into()));
        assert!(r.shadowing(), "a held shadow keeps mirroring");
        r.operate(t(2), Command::Abort, "ann", "bad data").unwrap();
        assert_eq!(percent(&r), 0.0);
        assert!(r.is_finished());

        let mut r = rollout(spec("0", 0));
        r.start(t(0), None).unwrap();
        let promoted = r
            .operate(t(1), Command::ForcePromote, "bob", "hotfix")
            .unwrap();
        assert_eq!(promoted.from, canary(0, 0));
        assert_eq!(
            (percent(&r), promoted.reason.as_str()),
            (100.0, "force-promote: hotfix")
        );
    }

    #[test]
    fn rolling_back_to_a_recently_live_version_skips_analysis() {
        let mut r = rollout(spec("10m", 0));
        let transition = r.start(t(24 * 60), Some(t(1))).unwrap();
        assert_eq!(r.state(), &State::Promoted);
        assert!(
            transition
                .reason
                .contains("within the rollback window of 1d"),
            "{}",
            transition.reason
        );

        let mut stale = rollout(spec("10m", 0));
        stale.start(t(24 * 60 + 2), Some(t(1))).unwrap();
        assert!(stale.shadowing());
        assert!(stale.start(t(24 * 60 + 3), None).is_err(), "started twice");
    }

    #[test]
    fn time_never_goes_backwards() {
        let mut r = rollout(spec("0", 0));
        r.start(t(10), None).unwrap();
        let before = r.clone();
        assert!(matches!(
            r.tick(t(9), &OK, &OK),
            Err(RolloutError::TimeWentBackwards { .. })
        ));
        assert_eq!(r, before);
    }

    #[test]
    fn stored_rollouts_resume_or_fail_to_load() {
        let mut r = rollout(spec("0", 0));
        r.start(t(0), None).unwrap();
        r.tick(t(5), &OK, &OK).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let mut restored: Rollout = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, r);
        assert_eq!(
            restored.tick(t(10), &OK, &OK).unwrap(),
            r.tick(t(10), &OK, &OK).unwrap()
        );

        let out_of_range = json.replace("\"step\":1", "\"step\":3");
        let err = serde_json::from_str::<Rollout>(&out_of_range).unwrap_err();
        assert!(
            err.to_string()
                .contains("canary step 3 of a spec with 3 steps"),
            "{err}"
        );
        let bad_spec = json.replace("[10.0,50.0,100.0]", "[10.0,50.0]");
        assert!(serde_json::from_str::<Rollout>(&bad_spec).is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Start { last_live_minutes_ago: Option<i64> },
        Tick { requests: u64, errors: u64 },
        Pause,
        Resume,
        Abort,
        ForcePromote,
    }

    fn start() -> impl Strategy<Value = Op> {
        let last_live = prop_oneof![3 => Just(None), 1 => (0_i64..3000).prop_map(Some)];
        last_live.prop_map(|ago| Op::Start {
            last_live_minutes_ago: ago,
        })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => start(),
            16 => (0_u64..120, 0_u64..7).prop_map(|(requests, errors)| Op::Tick { requests, errors }),
            1 => Just(Op::Pause),
            2 => Just(Op::Resume),
            1 => Just(Op::Abort),
            1 => Just(Op::ForcePromote),
        ]
    }

    fn apply(
        r: &mut Rollout,
        now: DateTime<Utc>,
        op: &Op,
    ) -> Result<Option<Transition>, RolloutError> {
        match *op {
            Op::Start {
                last_live_minutes_ago,
            } => r
                .start(
                    now,
                    last_live_minutes_ago.map(|m| now - TimeDelta::minutes(m)),
                )
                .map(Some),
            Op::Tick { requests, errors } => r.tick(now, &OK, &window(requests, errors)),
            Op::Pause => r.operate(now, Command::Pause, "op", "hold").map(Some),
            Op::Resume => r.operate(now, Command::Resume, "op", "go").map(Some),
            Op::Abort => r.operate(now, Command::Abort, "op", "stop").map(Some),
            Op::ForcePromote => r
                .operate(now, Command::ForcePromote, "op", "ship")
                .map(Some),
        }
    }

    proptest! {
        #[test]
        fn any_sequence_keeps_the_invariants_and_survives_storage(
            shadow in prop_oneof![Just("0"), Just("3m")],
            steps in prop_oneof![Just(vec![100.0]), Just(vec![1.5, 20.0, 100.0]), Just(vec![5.0, 25.0, 50.0, 100.0])],
            failure_limit in 0_u32..3,
            first in start(),
            ops in proptest::collection::vec((-2_i64..8, op()), 0..60),
        ) {
            let spec = RolloutSpec {
                shadow: shadow.parse::<HumanDuration>().unwrap(),
                steps,
                failure_limit,
                ..spec("0", 0)
            };
            let mut direct = rollout(spec);
            let mut stored = direct.clone();
            let mut now = t(0);
            for (minutes, op) in std::iter::once(&(0, first)).chain(&ops) {
                now += TimeDelta::minutes(*minutes);
                let before = direct.clone();
                let result = apply(&mut direct, now, op);
                prop_assert_eq!(&result, &apply(&mut stored, now, op));
                match &result {
                    Err(_) => prop_assert_eq!(&direct, &before, "an error changes nothing"),
                    Ok(None) => {
                        prop_assert_eq!(&direct, &before);
                        prop_assert!(before.analysis_due_at().is_none_or(|due| now < due));
                    }
                    Ok(Some(transition)) => {
                        prop_assert!(!before.is_finished(), "finished states are terminal");
                        if transition.analysis.is_some() {
                            prop_assert!(before.analysis_due_at().is_some_and(|due| due <= now));
                        }
                        prop_assert_eq!(&transition.from, before.state());
                        prop_assert_eq!(&transition.to, direct.state());
                        prop_assert_eq!(direct.history().last(), Some(transition));
                    }
                }
                let weight = direct.canary_weight();
                prop_assert!(weight.basis_points() <= 10_000);
                if !matches!(direct.state(), State::RolledBack { .. }) {
                    prop_assert!(weight >= before.canary_weight(), "weights only grow");
                }
                if direct.shadowing() {
                    prop_assert_eq!(weight, Weight::ZERO);
                }
                if let Some(Stage::Canary { step }) = direct.state().stage() {
                    prop_assert!(step < direct.spec().steps.len());
                }
                prop_assert!(direct.failures() <= failure_limit || direct.is_finished());
                prop_assert!(direct.history().windows(2).all(|w| w[0].at <= w[1].at));
                let json = serde_json::to_string(&stored).unwrap();
                stored = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(&stored, &direct);
            }
        }
    }
}
