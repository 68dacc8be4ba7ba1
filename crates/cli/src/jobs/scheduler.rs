//! The scheduler `berth up` runs, and one run of a job: claimed in the store, run as `berth
//! score` would, its status, summary and log recorded.

use std::time::Duration;

use berth_batch::{Schedule, ScoreJob};
use berth_registry::Registry;
use berth_store::{JobRow, JobRunRow, RunStatus, StoreError};
use chrono::{DateTime, Utc};
use indicatif::ProgressBar;

use crate::registry_args::when;
use crate::score::execute;

/// A run's log is cut to its last this many bytes.
const MAX_LOG: usize = 64 * 1024;
/// How often a running run says it is alive, and after how long without that it is abandoned.
const HEARTBEAT: Duration = Duration::from_secs(10);
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// How often the scheduler looks for abandoned runs (a write to the store).
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Which run: a tick of the schedule (not run once the job is paused or gone), or one asked
/// for by hand at that time.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tick {
    Scheduled(DateTime<Utc>),
    ByHand(DateTime<Utc>),
}

/// Claims the run of `job` for `tick` and runs it; `None` when another process has the tick
/// (or, for a scheduled tick, the job was paused or removed meanwhile).
/// A run that fails is recorded as failed (the error in its log), not returned as an error.
pub(super) async fn run_tick(
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
        let mut last_sweep = None::<tokio::time::Instant>;
        loop {
            ticks.tick().await;
            if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
                match sweep_abandoned(&registry).await {
                    Ok(()) => last_sweep = Some(tokio::time::Instant::now()),
                    Err(e) => tracing::warn!("abandoned job runs not looked for: {e}"),
                }
            }
            if let Err(e) = schedule_once(&registry, &runner, threads).await {
                tracing::warn!("scheduled jobs not looked at: {e}");
            }
        }
    });
}

/// Marks as failed the runs whose runner stopped saying it is alive.
async fn sweep_abandoned(registry: &Registry) -> Result<(), StoreError> {
    let silent_since = Utc::now()
        - chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or(chrono::Duration::minutes(1));
    let closed = registry
        .metadata()
        .fail_abandoned_runs(silent_since)
        .await?;
    if closed > 0 {
        tracing::warn!("{closed} job run(s) abandoned by their runner marked failed");
    }
    Ok(())
}

/// One look at the jobs: run every due tick.
async fn schedule_once(
    registry: &Registry,
    runner: &str,
    threads: usize,
) -> Result<(), StoreError> {
    let metadata = registry.metadata();
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
        let since = metadata
            .last_job_tick(&job.name)
            .await?
            .map_or(job.updated_at, |t| t.max(job.updated_at));
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
}
