//! Scheduled batch scoring: `berth jobs add|list|show|run|pause|resume|remove`, the scheduler
//! `berth up` runs, and the jobs API (`/api/v1/jobs`).
//!
//! A job is a [`ScoreJob`] on a cron [`Schedule`], kept in the store. Every server runs the
//! scheduler: each second it looks for jobs with a tick due (the latest tick after the last one
//! run, or after the job was added or resumed), claims the tick's run in the store — so of many
//! servers sharing a store exactly one runs it — and runs it as `berth score` would, one run at
//! a time per server. A run's status, summary (version, rows, files, seconds) and log are
//! stored; a run whose server stops reporting for a minute (killed mid-run) is marked failed.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use berth_batch::{Schedule, ScoreJob};
use berth_registry::Registry;
use berth_serve::{Actor, json_error as error};
use berth_store::{JobRow, JobRunRow, RunStatus, StoreError};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::registry_args::{StoreArgs, print_json, when};
use crate::score::{RunArgs, execute};
use crate::table::Table;

/// A run's log is cut to its last this many bytes.
const MAX_LOG: usize = 64 * 1024;
/// How often a running run says it is alive, and after how long without that it is abandoned.
const HEARTBEAT: Duration = Duration::from_secs(10);
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// Runs `berth jobs show` and the API list.
const RUNS_SHOWN: i64 = 20;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Add a scheduled scoring job (run by the `berth up` servers sharing the store, each tick
    /// once). Its paths may hold {date} and {time} (the tick's, UTC) and {run} (the run's id).
    Add(AddArgs),
    /// List the jobs, with their last run and next tick.
    List,
    /// A job and its latest runs, with the last run's log.
    Show { name: String },
    /// Run a job now, in this process, and record the run.
    Run { name: String },
    /// Stop running a job on its schedule (kept, with its history).
    Pause { name: String },
    /// Run a paused job on its schedule again (from the next tick).
    Resume { name: String },
    /// Remove a job (its runs stay in the history).
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The job's name.
    name: String,
    /// When to run, a cron expression in UTC: "0 2 * * *" (02:00 daily); six fields for
    /// seconds; @hourly, @daily, ...
    #[arg(long)]
    cron: String,
    /// What scores: an endpoint (its primary version), NAME@ALIAS or NAME/VERSION.
    #[arg(long = "score", value_name = "TARGET")]
    target: String,
    /// Replace a job of the same name.
    #[arg(long)]
    replace: bool,
    #[command(flatten)]
    run: RunArgs,
}

/// A job as the API and `--json` show it.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobView {
    pub name: String,
    pub schedule: String,
    pub spec: serde_json::Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub next_tick: Option<DateTime<Utc>>,
    pub runs: Vec<JobRunRow>,
}

async fn view(registry: &Registry, job: JobRow, runs: i64) -> Result<JobView, StoreError> {
    let runs = registry.metadata().list_job_runs(&job.name, runs).await?;
    let next_tick = Schedule::parse(&job.schedule)
        .ok()
        .filter(|_| job.enabled)
        .and_then(|s| s.next_tick(Utc::now()));
    Ok(JobView {
        name: job.name,
        schedule: job.schedule,
        spec: job.spec,
        enabled: job.enabled,
        created_at: job.created_at,
        created_by: job.created_by,
        next_tick,
        runs,
    })
}

/// A new job's schedule and spec, checked: every problem named.
fn checked(schedule: &str, spec: &ScoreJob) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Err(e) = Schedule::parse(schedule) {
        problems.push(format!("cron: {e}"));
    }
    if let Err(e) = spec.check_scheduled() {
        problems.push(e);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn valid_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name: expected letters, digits, '-', '_' or '.' (at most 128), got {name:?}"
        ))
    }
}

pub async fn run(command: JobsCommand, store: &StoreArgs, threads: usize) -> anyhow::Result<()> {
    let registry = store.open().await?;
    let metadata = registry.metadata();
    let change = |reason: &str| registry.change(&store.actor(), Some(reason.to_string()));
    let missing = |name: &str| crate::UsageError(format!("no job named '{name}'"));
    match command {
        JobsCommand::Add(args) => {
            let spec = args.run.job(&args.target);
            valid_name(&args.name)
                .and_then(|()| checked(&args.cron, &spec))
                .map_err(crate::UsageError)?;
            let row = metadata
                .put_job(
                    &args.name,
                    args.cron.trim(),
                    &serde_json::to_value(&spec)?,
                    args.replace,
                    &change("jobs add"),
                )
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(m) => anyhow::Error::new(crate::UsageError(m)),
                    e => e.into(),
                })?;
            let job = view(&registry, row, 0).await?;
            if store.json {
                return print_json(&job);
            }
            println!(
                "job {} added: {} on \"{}\"; next run {}",
                job.name,
                spec.target,
                job.schedule,
                job.next_tick.map_or("never".into(), |t| when(&t))
            );
        }
        JobsCommand::List => {
            let mut jobs = Vec::new();
            for row in metadata.list_jobs().await? {
                jobs.push(view(&registry, row, 1).await?);
            }
            if store.json {
                return print_json(&jobs);
            }
            let mut table = Table::new(&["JOB", "SCHEDULE", "SCORES", "LAST RUN", "NEXT RUN"]);
            for job in &jobs {
                let last = job.runs.first().map_or("-".to_string(), |r| {
                    format!("{} {}", r.status.name(), when(&r.scheduled_for))
                });
                let next = match (job.enabled, job.next_tick) {
                    (false, _) => "paused".to_string(),
                    (true, Some(t)) => when(&t),
                    (true, None) => "never".to_string(),
                };
                table.row(vec![
                    job.name.clone(),
                    job.schedule.clone(),
                    job.spec["target"].as_str().unwrap_or("?").to_string(),
                    last,
                    next,
                ]);
            }
            if table.is_empty() {
                println!("no jobs yet; add one with `berth jobs add NAME --cron ... --score ...`");
            } else {
                print!("{}", table.render());
            }
        }
        JobsCommand::Show { name } => {
            let row = metadata
                .get_job(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            let job = view(&registry, row, RUNS_SHOWN).await?;
            if store.json {
                return print_json(&job);
            }
            println!("job {}", job.name);
            println!("  schedule:  {} (UTC)", job.schedule);
            println!("  spec:      {}", job.spec);
            println!(
                "  added:     {} by {}",
                when(&job.created_at),
                job.created_by
            );
            println!(
                "  next run:  {}",
                match (job.enabled, job.next_tick) {
                    (false, _) => "paused".to_string(),
                    (_, Some(t)) => when(&t),
                    (_, None) => "never".to_string(),
                }
            );
            let mut table = Table::new(&["RUN", "TICK", "STATUS", "ROWS", "SECONDS", "RUNNER"]);
            for r in &job.runs {
                let summary = r.summary.as_ref();
                table.row(vec![
                    r.id.clone(),
                    when(&r.scheduled_for),
                    r.status.name().to_string(),
                    summary
                        .and_then(|s| s["rows"].as_u64())
                        .map_or("-".into(), |n| n.to_string()),
                    r.finished_at.map_or("-".into(), |f| {
                        format!(
                            "{:.1}",
                            (f - r.started_at).num_milliseconds() as f64 / 1000.0
                        )
                    }),
                    r.runner.clone(),
                ]);
            }
            if table.is_empty() {
                println!("no runs yet");
            } else {
                print!("{}", table.render());
            }
            if let Some(last) = job.runs.first() {
                println!("log of {}:\n{}", last.id, last.log.trim_end());
            }
        }
        JobsCommand::Run { name } => {
            let row = metadata
                .get_job(&name)
                .await?
                .ok_or_else(|| missing(&name))?;
            let runner = format!("cli-{}", std::process::id());
            let Some(done) =
                run_tick(&registry, &row, Tick::ByHand(Utc::now()), &runner, threads).await?
            else {
                anyhow::bail!("the run of job {name} for this moment was claimed elsewhere");
            };
            if store.json {
                return print_json(&done);
            }
            println!("{}", done.log.trim_end());
            if done.status == RunStatus::Failed {
                anyhow::bail!("job {name}: run {} failed", done.id);
            }
        }
        JobsCommand::Pause { name } => {
            if !metadata
                .set_job_enabled(&name, false, &change("jobs pause"))
                .await?
            {
                return Err(missing(&name).into());
            }
            println!("job {name} paused");
        }
        JobsCommand::Resume { name } => {
            if !metadata
                .set_job_enabled(&name, true, &change("jobs resume"))
                .await?
            {
                return Err(missing(&name).into());
            }
            println!("job {name} resumed");
        }
        JobsCommand::Remove { name } => {
            if !metadata.delete_job(&name, &change("jobs remove")).await? {
                return Err(missing(&name).into());
            }
            println!("job {name} removed");
        }
    }
    Ok(())
}

/// Which run: a tick of the schedule (not run once the job is paused or gone), or one asked
/// for by hand at that time.
#[derive(Debug, Clone, Copy)]
enum Tick {
    Scheduled(DateTime<Utc>),
    ByHand(DateTime<Utc>),
}

/// Claims the run of `job` for `tick` and runs it; `None` when another process has the tick
/// (or, for a scheduled tick, the job was paused or removed meanwhile).
/// A run that fails is recorded as failed (the error in its log), not returned as an error.
async fn run_tick(
    registry: &Registry,
    job: &JobRow,
    tick: Tick,
    runner: &str,
    threads: usize,
) -> Result<Option<JobRunRow>, StoreError> {
    let metadata = registry.metadata();
    let id = uuid::Uuid::now_v7().to_string();
    let (tick, scheduled) = match tick {
        Tick::Scheduled(t) => (t, true),
        Tick::ByHand(t) => (t, false),
    };
    let claimed = metadata
        .claim_job_run(&id, &job.name, tick, runner, scheduled)
        .await?;
    let Some(mut run) = claimed else {
        return Ok(None);
    };
    let heartbeat = {
        let metadata = metadata.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            loop {
                ticks.tick().await;
                if let Err(e) = metadata.heartbeat_job_run(&id).await {
                    tracing::warn!("job run {id}: heartbeat not written: {e}");
                }
            }
        })
    };
    let mut log = Log::default();
    log.say(format!("run {id} of job {} for {}", job.name, when(&tick)));
    let outcome = match serde_json::from_value::<ScoreJob>(job.spec.clone()) {
        Ok(spec) => {
            let spec = spec.for_run(tick, &id);
            execute(
                &spec,
                registry,
                threads,
                &ProgressBar::hidden(),
                &mut |line| log.say(line),
            )
            .await
        }
        Err(e) => Err(anyhow::anyhow!("the stored job spec is unreadable: {e}")),
    };
    heartbeat.abort();
    let (status, summary) = match outcome {
        Ok(report) => {
            log.say(format!(
                "scored {} rows from {} file(s) in {:.2} s with {} -> {}",
                report.rows, report.files, report.seconds, report.version, report.output
            ));
            (RunStatus::Succeeded, serde_json::to_value(&report).ok())
        }
        Err(e) => {
            log.say(format!("failed: {e:#}"));
            (RunStatus::Failed, None)
        }
    };
    metadata
        .finish_job_run(&id, status, summary.as_ref(), &log.text)
        .await?;
    run.status = status;
    run.summary = summary;
    run.log = log.text;
    run.finished_at = Some(Utc::now());
    Ok(Some(run))
}

/// A run's log: timestamped lines, keeping the last [`MAX_LOG`] bytes.
#[derive(Default)]
struct Log {
    text: String,
}

impl Log {
    fn say(&mut self, line: String) {
        self.text
            .push_str(&format!("{} {line}\n", Utc::now().format("%H:%M:%S%.3f")));
        if self.text.len() > MAX_LOG {
            let mut cut = self.text.len() - MAX_LOG;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
    }
}

/// Starts the scheduler on the current runtime: every `poll` it runs the jobs with a tick
/// due, one at a time.
pub fn start_scheduler(registry: Registry, threads: usize, poll: Duration) {
    let runner = format!("up-{}", uuid::Uuid::now_v7());
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = schedule_once(&registry, &runner, threads).await {
                tracing::warn!("scheduled jobs not looked at: {e}");
            }
        }
    });
}

/// One look at the jobs: close abandoned runs, then run every due tick.
async fn schedule_once(
    registry: &Registry,
    runner: &str,
    threads: usize,
) -> Result<(), StoreError> {
    let metadata = registry.metadata();
    let silent_since = Utc::now()
        - chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or(chrono::Duration::minutes(1));
    let closed = metadata.fail_abandoned_runs(silent_since).await?;
    if closed > 0 {
        tracing::warn!("{closed} job run(s) abandoned by their runner marked failed");
    }
    let last = metadata.last_job_ticks().await?;
    for job in metadata.list_jobs().await? {
        if !job.enabled {
            continue;
        }
        let schedule = match Schedule::parse(&job.schedule) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("job {}: {e}", job.name);
                continue;
            }
        };
        // Ticks from when the job was added, changed or resumed; not again once run.
        let since = last
            .get(&job.name)
            .map_or(job.updated_at, |t| (*t).max(job.updated_at));
        let Some(tick) = schedule.due(since, Utc::now()) else {
            continue;
        };
        if let Some(run) = run_tick(registry, &job, Tick::Scheduled(tick), runner, threads).await? {
            tracing::info!(
                "job {} run {} for {}: {}",
                job.name,
                run.id,
                tick,
                run.status.name()
            );
        }
    }
    Ok(())
}

/// What `POST /api/v1/jobs` takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewJob {
    name: String,
    schedule: String,
    spec: ScoreJob,
    #[serde(default)]
    replace: bool,
    reason: Option<String>,
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::Conflict(m) => error(StatusCode::CONFLICT, m),
        e => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `GET|POST /api/v1/jobs`, `GET|DELETE /api/v1/jobs/{name}`.
pub fn jobs_router(registry: Registry) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/jobs", get(list_jobs).post(add_job))
        .route("/api/v1/jobs/{name}", get(show_job).delete(remove_job))
        .with_state(Arc::new(registry))
}

async fn list_jobs(State(registry): State<Arc<Registry>>) -> Response {
    let rows = match registry.metadata().list_jobs().await {
        Ok(rows) => rows,
        Err(e) => return store_error(e),
    };
    let mut jobs = Vec::new();
    for row in rows {
        match view(&registry, row, 1).await {
            Ok(job) => jobs.push(job),
            Err(e) => return store_error(e),
        }
    }
    Json(json!({"jobs": jobs})).into_response()
}

async fn show_job(State(registry): State<Arc<Registry>>, Path(name): Path<String>) -> Response {
    match registry.metadata().get_job(&name).await {
        Ok(Some(row)) => match view(&registry, row, RUNS_SHOWN).await {
            Ok(job) => Json(job).into_response(),
            Err(e) => store_error(e),
        },
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no job named '{name}'")),
        Err(e) => store_error(e),
    }
}

async fn add_job(
    State(registry): State<Arc<Registry>>,
    Actor(actor): Actor,
    body: Result<Json<NewJob>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(new) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(problems) = valid_name(&new.name).and_then(|()| checked(&new.schedule, &new.spec)) {
        return error(StatusCode::BAD_REQUEST, problems);
    }
    let spec = match serde_json::to_value(&new.spec) {
        Ok(spec) => spec,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let change = registry.change(&actor, new.reason);
    match registry
        .metadata()
        .put_job(&new.name, new.schedule.trim(), &spec, new.replace, &change)
        .await
    {
        Ok(row) => match view(&registry, row, 0).await {
            Ok(job) => (StatusCode::CREATED, Json(job)).into_response(),
            Err(e) => store_error(e),
        },
        Err(e) => store_error(e),
    }
}

async fn remove_job(
    State(registry): State<Arc<Registry>>,
    Actor(actor): Actor,
    Path(name): Path<String>,
) -> Response {
    let change = registry.change(&actor, Some("DELETE /api/v1/jobs".into()));
    match registry.metadata().delete_job(&name, &change).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no job named '{name}'")),
        Err(e) => store_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_its_last_bytes_on_a_character_boundary() {
        let mut log = Log::default();
        for i in 0..10_000 {
            log.say(format!("line {i} ✓"));
        }
        assert!(log.text.len() <= MAX_LOG);
        assert!(log.text.ends_with("line 9999 ✓\n"));
    }

    #[test]
    fn names_and_specs_are_checked() {
        assert!(valid_name("nightly-churn_1.v2").is_ok());
        assert!(valid_name("a b").is_err());
        assert!(valid_name("").is_err());
        let spec: ScoreJob =
            serde_json::from_str(r#"{"target": "churn", "input": "in.csv"}"#).expect("spec");
        let e = checked("61 * * * *", &spec).expect_err("two problems");
        assert!(
            e.contains("cron: ") && e.contains("output: expected"),
            "{e}"
        );
    }
}
