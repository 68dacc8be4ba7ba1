//! Scheduled batch scoring: `berth jobs add|list|show|run|pause|resume|remove`, the scheduler
//! `berth up` runs, and the jobs API (`/api/v1/jobs`).
//!
//! A job is a [`ScoreJob`] on a cron [`Schedule`], kept in the store. Every server runs the
//! scheduler: each second it looks for jobs with a tick due (the latest tick after the last one
//! run, or after the job was added or resumed), claims the tick's run in the store — so of many
//! servers sharing a store exactly one runs it — and runs it as `berth score` would, one run at
//! a time per server. A run's status, summary (version, rows, files, seconds) and log are
//! stored; a run whose server stops reporting for a minute (killed mid-run) is marked failed.

mod api;
mod scheduler;

use berth_batch::{Schedule, ScoreJob};
use berth_registry::Registry;
use berth_store::{JobRow, JobRunRow, RunStatus, StoreError};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::registry_args::{StoreArgs, print_json, when};
use crate::score::RunArgs;
use crate::table::Table;

pub use api::jobs_router;
pub use scheduler::start_scheduler;
use scheduler::{Tick, run_tick};

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

impl JobView {
    /// When it runs next, as the tables show it.
    fn next_run(&self) -> String {
        match (self.enabled, self.next_tick) {
            (false, _) => "paused".to_string(),
            (true, Some(t)) => when(&t),
            (true, None) => "never".to_string(),
        }
    }
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
    let resume = matches!(command, JobsCommand::Resume { .. });
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
                let next = job.next_run();
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
            println!("  next run:  {}", job.next_run());
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
        JobsCommand::Pause { name } | JobsCommand::Resume { name } => {
            let (reason, done) = if resume {
                ("jobs resume", "resumed")
            } else {
                ("jobs pause", "paused")
            };
            if !metadata
                .set_job_enabled(&name, resume, &change(reason))
                .await?
            {
                return Err(missing(&name).into());
            }
            println!("job {name} {done}");
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

#[cfg(test)]
mod tests {
    use super::*;

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
