//! `berth rollout start|status|pause|resume|abort|promote` and `berth rollback`: safe rollouts
//! of a new version on an endpoint, written to the store; a running `berth up` drives them.

use std::path::PathBuf;

use berth_registry::RegistryError;
use berth_rollout::{Check, Command, HumanDuration, RolloutSpec, State, Transition};
use berth_serve::rollouts::{self, RolloutView, StartRequest};
use clap::{Args, Subcommand};

use crate::registry_args::{StoreArgs, print_json, when};
use crate::table::Table;

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start rolling VERSION out on ENDPOINT: shadow, then canary steps, each analysed.
    Start(StartArgs),
    /// The endpoint's current (or last) rollout: state, step, checks and history.
    Status {
        endpoint: String,
        /// Every rollout of the endpoint, newest first.
        #[arg(long)]
        all: bool,
    },
    /// Hold the current step's traffic until resumed.
    Pause(OperateArgs),
    /// Continue a paused rollout where it was held.
    Resume(OperateArgs),
    /// Stop the rollout and return all traffic to the primary.
    Abort(OperateArgs),
    /// Promote the candidate now, skipping the remaining analysis.
    Promote(OperateArgs),
}

#[derive(Debug, Args)]
pub struct StartArgs {
    endpoint: String,
    /// The candidate: a version number of the model the endpoint serves.
    #[arg(long, value_name = "VERSION")]
    to: i64,
    /// A rollout spec (YAML: shadow, steps, bake, min_requests, failure_limit,
    /// rollback_window, checks); the flags below override it.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// How long to shadow first (e.g. 10m; 0 skips shadowing).
    #[arg(long)]
    shadow: Option<HumanDuration>,
    /// Canary weights in percent, ending at 100 (e.g. 5,25,50,100).
    #[arg(long, value_delimiter = ',')]
    steps: Option<Vec<f64>>,
    /// How long each step bakes before its analysis (e.g. 5m).
    #[arg(long)]
    bake: Option<HumanDuration>,
    /// Fewer candidate requests than this in a window make it inconclusive (paused).
    #[arg(long)]
    min_requests: Option<u64>,
    /// Failed analyses tolerated; one more rolls back.
    #[arg(long)]
    failure_limit: Option<u32>,
    /// A candidate live on the endpoint within this window is promoted without analysis
    /// (e.g. 1d; 0 never skips analysis).
    #[arg(long)]
    rollback_window: Option<HumanDuration>,
    /// Analysis checks replacing the spec's, as METRIC:BOUND=VALUE (repeatable), e.g.
    /// error_rate:max_increase=0.01, p99_latency_ms:max_ratio=1.5, shadow_agreement:min=0.95.
    #[arg(long = "check", value_name = "METRIC:BOUND=VALUE")]
    checks: Vec<String>,
    /// Why, for the audit log.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct OperateArgs {
    endpoint: String,
    /// Why, for the audit log.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    endpoint: String,
    /// Why, for the audit log.
    #[arg(long)]
    reason: Option<String>,
}

/// `error_rate:max_increase=0.01` as a check (validated with the rest of the spec).
fn parse_check(text: &str) -> Result<Check, RegistryError> {
    let invalid = |why: String| {
        RegistryError::Invalid(format!(
            "--check {text:?}: {why}; expected METRIC:BOUND=VALUE, e.g. error_rate:max_increase=0.01"
        ))
    };
    let (metric, bound) = text
        .split_once(':')
        .ok_or_else(|| invalid("no ':'".into()))?;
    let (bound, value) = bound
        .split_once('=')
        .ok_or_else(|| invalid("no '='".into()))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|e| invalid(format!("value: {e}")))?;
    serde_json::from_value(serde_json::json!({ "metric": metric.trim(), bound.trim(): value }))
        .map_err(|e| invalid(e.to_string()))
}

fn spec_of(args: &StartArgs) -> anyhow::Result<RolloutSpec> {
    let mut spec = match &args.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                crate::UsageError(format!(
                    "cannot read the rollout spec {}: {e}",
                    path.display()
                ))
            })?;
            RolloutSpec::from_yaml(&text)
                .map_err(|e| RegistryError::Invalid(format!("{}: {e}", path.display())))?
        }
        None => RolloutSpec::default(),
    };
    if let Some(v) = args.shadow {
        spec.shadow = v;
    }
    if let Some(v) = &args.steps {
        spec.steps.clone_from(v);
    }
    if let Some(v) = args.bake {
        spec.bake = v;
    }
    if let Some(v) = args.min_requests {
        spec.min_requests = v;
    }
    if let Some(v) = args.failure_limit {
        spec.failure_limit = v;
    }
    if let Some(v) = args.rollback_window {
        spec.rollback_window = v;
    }
    if !args.checks.is_empty() {
        spec.checks = args
            .checks
            .iter()
            .map(|c| parse_check(c))
            .collect::<Result<_, _>>()?;
    }
    Ok(spec)
}

pub async fn run(command: RolloutCommand, store: &StoreArgs) -> anyhow::Result<()> {
    let registry = store.open().await?;
    let actor = store.actor();
    let (endpoint, command, reason) = match command {
        RolloutCommand::Start(args) => {
            let spec = spec_of(&args)?;
            let rollout = rollouts::start(
                &registry,
                StartRequest {
                    endpoint: args.endpoint.clone(),
                    to_version: args.to,
                    spec,
                    actor,
                    reason: args.reason,
                },
            )
            .await?;
            return show_latest(&registry, &args.endpoint, store, Some(rollout.id())).await;
        }
        RolloutCommand::Status { endpoint, all } => {
            if all {
                let views = rollouts::list(&registry, Some(&endpoint), 100).await?;
                if store.json {
                    return print_json(&views);
                }
                let mut table = Table::new(&["ROLLOUT", "FROM", "TO", "STATE", "CREATED"]);
                for v in &views {
                    table.row(vec![
                        v.id.clone(),
                        v.from.to_string(),
                        v.to.to_string(),
                        describe_state(&v.state, v),
                        when(&v.created_at),
                    ]);
                }
                print!("{}", table.render());
                return Ok(());
            }
            return show_latest(&registry, &endpoint, store, None).await;
        }
        RolloutCommand::Pause(a) => (a.endpoint, Command::Pause, a.reason),
        RolloutCommand::Resume(a) => (a.endpoint, Command::Resume, a.reason),
        RolloutCommand::Abort(a) => (a.endpoint, Command::Abort, a.reason),
        RolloutCommand::Promote(a) => (a.endpoint, Command::ForcePromote, a.reason),
    };
    let rollout =
        rollouts::operate(&registry, &endpoint, command, &actor, reason.as_deref()).await?;
    show_latest(&registry, &endpoint, store, Some(rollout.id())).await
}

pub async fn rollback(args: RollbackArgs, store: &StoreArgs) -> anyhow::Result<()> {
    let registry = store.open().await?;
    let rollout = rollouts::rollback(
        &registry,
        &args.endpoint,
        &store.actor(),
        args.reason.as_deref(),
    )
    .await?;
    show_latest(&registry, &args.endpoint, store, Some(rollout.id())).await
}

async fn show_latest(
    registry: &berth_registry::Registry,
    endpoint: &str,
    store: &StoreArgs,
    id: Option<&str>,
) -> anyhow::Result<()> {
    let views = rollouts::list(registry, Some(endpoint), 1).await?;
    let view = views
        .into_iter()
        .next()
        .filter(|v| id.is_none_or(|id| v.id == id))
        .ok_or_else(|| RegistryError::NotFound(format!("endpoint '{endpoint}' has no rollout")))?;
    if store.json {
        return print_json(&view);
    }
    print!("{}", render(&view));
    Ok(())
}

fn describe_state(state: &State, view: &RolloutView) -> String {
    match state {
        State::Shadowing { .. } => "shadowing".into(),
        State::Canary { step, .. } => format!(
            "canary step {}/{} ({}%)",
            step + 1,
            view.spec.steps.len(),
            view.canary_percent
        ),
        State::Paused { .. } => format!(
            "paused ({})",
            if view.shadowing {
                "holding shadow".to_string()
            } else {
                format!("holding {}%", view.canary_percent)
            }
        ),
        State::RolledBack { reason } => format!("rolled back: {reason}"),
        other => other.name().to_string(),
    }
}

/// The readable status: the rollout, its last analysis' checks, its history.
fn render(view: &RolloutView) -> String {
    let mut out = format!(
        "rollout {} on {}: {} -> {}\nstate:    {}\n",
        view.id,
        view.endpoint,
        view.from,
        view.to,
        describe_state(&view.state, view)
    );
    if let Some(start) = &view.window_start {
        out += &format!("window:   since {}\n", when(start));
    }
    if let Some(due) = &view.analysis_due_at {
        out += &format!("analysis: due {}\n", when(due));
    }
    out += &format!(
        "failures: {} of {} tolerated\n",
        view.failures, view.spec.failure_limit
    );
    if let Some(analysis) = view.history.iter().rev().find_map(|t| t.analysis.as_ref()) {
        out += &format!(
            "\nlast analysis ({:?} phase): {:?}; primary {} requests, candidate {}\n",
            analysis.phase,
            analysis.verdict,
            analysis.primary.requests,
            analysis.candidate.requests
        );
        let mut table = Table::new(&["CHECK", "BOUND", "CANDIDATE", "PRIMARY", "OUTCOME"]);
        let number = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.4}"));
        for c in &analysis.checks {
            table.row(vec![
                c.metric.to_string(),
                format!("{} {}", c.bound.field(), c.bound.threshold()),
                number(c.observed),
                number(c.primary),
                format!("{:?}", c.outcome),
            ]);
        }
        out += &table.render();
    }
    out += "\n";
    let mut table = Table::new(&["TIME", "BY", "FROM", "TO", "REASON"]);
    for t in &view.history {
        table.row(history_row(t));
    }
    out += &table.render();
    out
}

fn history_row(t: &Transition) -> Vec<String> {
    let by = match &t.by {
        berth_rollout::Actor::Controller => "controller".to_string(),
        berth_rollout::Actor::Operator(who) => who.clone(),
    };
    vec![
        when(&t.at),
        by,
        t.from.name().to_string(),
        t.to.name().to_string(),
        t.reason.clone(),
    ]
}
