//! Scheduled jobs in the metadata store (migration 6): a job's schedule and spec (JSON in the
//! shape of the command that runs it, which this crate does not read), and one row per run
//! with its status, summary and log.
//!
//! Every server sharing a store runs the scheduler; [`MetadataStore::claim_job_run`] inserts
//! the run of one scheduled tick, and the `(job, scheduled_for)` uniqueness lets exactly one of
//! them win. Adding, changing and removing a job is audited.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;

use crate::metadata::{from_micros, get, json_text, micros};
use crate::{Change, MetadataStore, StoreError};

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRow {
    pub name: String,
    /// The cron expression.
    pub schedule: String,
    /// What to run.
    pub spec: Value,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<RunStatus, StoreError> {
        match s {
            "running" => Ok(RunStatus::Running),
            "succeeded" => Ok(RunStatus::Succeeded),
            "failed" => Ok(RunStatus::Failed),
            other => Err(StoreError::Database {
                doing: "reading a job run".into(),
                problem: format!("unknown status {other:?}"),
            }),
        }
    }
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRunRow {
    pub id: String,
    pub job: String,
    /// The tick of the schedule this run is for (the time it was asked to run, for a run
    /// started by hand).
    pub scheduled_for: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: RunStatus,
    /// Which process ran it.
    pub runner: String,
    /// What it did (rows, files, version, ...), once finished.
    pub summary: Option<Value>,
    pub log: String,
}

fn job_from(row: &AnyRow) -> Result<JobRow, StoreError> {
    let spec: String = get(row, "spec")?;
    Ok(JobRow {
        name: get(row, "name")?,
        schedule: get(row, "schedule")?,
        spec: serde_json::from_str(&spec).map_err(|e| StoreError::Database {
            doing: "reading a job".into(),
            problem: format!("stored spec is not JSON: {e}"),
        })?,
        enabled: get::<i64>(row, "enabled")? != 0,
        created_at: from_micros(get(row, "created_at")?),
        created_by: get(row, "created_by")?,
        updated_at: from_micros(get(row, "updated_at")?),
    })
}

fn run_from(row: &AnyRow) -> Result<JobRunRow, StoreError> {
    let summary: Option<String> = get(row, "summary")?;
    Ok(JobRunRow {
        id: get(row, "id")?,
        job: get(row, "job")?,
        scheduled_for: from_micros(get(row, "scheduled_for")?),
        started_at: from_micros(get(row, "started_at")?),
        finished_at: get::<Option<i64>>(row, "finished_at")?.map(from_micros),
        status: RunStatus::parse(&get::<String>(row, "status")?)?,
        runner: get(row, "runner")?,
        summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
        log: get(row, "log")?,
    })
}

const JOB_COLUMNS: &str = "name, schedule, spec, enabled, created_at, created_by, updated_at";
const RUN_COLUMNS: &str =
    "id, job, scheduled_for, started_at, finished_at, status, runner, summary, log";

impl MetadataStore {
    /// Adds a job, or replaces the one of that name when `replace`; audited.
    pub async fn put_job(
        &self,
        name: &str,
        schedule: &str,
        spec: &Value,
        replace: bool,
        change: &Change,
    ) -> Result<JobRow, StoreError> {
        let mut tx = self.begin("saving a job").await?;
        let before = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE name = $1"
        )))
        .bind(name.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db("reading the job"))?
        .map(|r| job_from(&r))
        .transpose()?;
        let at = micros(change.at);
        match &before {
            Some(_) if !replace => {
                return Err(StoreError::Conflict(format!(
                    "a job named '{name}' exists already (remove it first, or replace it)"
                )));
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE jobs SET schedule = $1, spec = $2, enabled = 1, updated_at = $3 WHERE name = $4",
                )
                .bind(schedule.to_string())
                .bind(json_text(spec))
                .bind(at)
                .bind(name.to_string())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("updating the job"))?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO jobs (name, schedule, spec, enabled, created_at, created_by, updated_at) \
                     VALUES ($1, $2, $3, 1, $4, $5, $4)",
                )
                .bind(name.to_string())
                .bind(schedule.to_string())
                .bind(json_text(spec))
                .bind(at)
                .bind(change.actor.clone())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("adding the job"))?;
            }
        }
        let after = serde_json::json!({"schedule": schedule, "spec": spec});
        let before_value = before
            .as_ref()
            .map(|b| serde_json::json!({"schedule": b.schedule, "spec": b.spec}));
        Self::record(
            &mut tx,
            change,
            if before.is_some() {
                "job.replace"
            } else {
                "job.add"
            },
            "job",
            name,
            None,
            before_value.as_ref(),
            Some(&after),
        )
        .await?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing the job"))?;
        self.get_job(name)
            .await?
            .ok_or_else(|| StoreError::Database {
                doing: "reading the job back".into(),
                problem: format!("job '{name}' is not there"),
            })
    }

    /// Removes a job (its runs stay, as history); audited. False when there was none.
    pub async fn delete_job(&self, name: &str, change: &Change) -> Result<bool, StoreError> {
        let mut tx = self.begin("removing a job").await?;
        let done = sqlx::query("DELETE FROM jobs WHERE name = $1")
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("removing the job"))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        Self::record(&mut tx, change, "job.remove", "job", name, None, None, None).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing the removal"))?;
        Ok(true)
    }

    /// Turns a job's schedule on or off; audited. False when there is no such job.
    pub async fn set_job_enabled(
        &self,
        name: &str,
        enabled: bool,
        change: &Change,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin("changing a job").await?;
        let done = sqlx::query("UPDATE jobs SET enabled = $1, updated_at = $2 WHERE name = $3")
            .bind(i64::from(enabled))
            .bind(micros(change.at))
            .bind(name.to_string())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("changing the job"))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let action = if enabled { "job.enable" } else { "job.disable" };
        Self::record(&mut tx, change, action, "job", name, None, None, None).await?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing the change"))?;
        Ok(true)
    }

    pub async fn get_job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE name = $1"
        )))
        .bind(name.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading a job"))?
        .map(|r| job_from(&r))
        .transpose()
    }

    /// Every job, by name.
    pub async fn list_jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("listing jobs"))?
        .iter()
        .map(job_from)
        .collect()
    }

    /// Claims the run of `job` for the tick `scheduled_for`: `Ok(None)` when another process
    /// (or an earlier call) has it already, or — for a scheduled run (`scheduled`) — when the
    /// job is gone or paused by now.
    pub async fn claim_job_run(
        &self,
        id: &str,
        job: &str,
        scheduled_for: DateTime<Utc>,
        runner: &str,
        scheduled: bool,
    ) -> Result<Option<JobRunRow>, StoreError> {
        let started_at = Utc::now();
        let inserted = sqlx::query(
            "INSERT INTO job_runs (id, job, scheduled_for, started_at, heartbeat_at, status, runner, log) \
             SELECT $1, $2, $3, $4, $4, 'running', $5, '' \
             WHERE EXISTS (SELECT 1 FROM jobs WHERE name = $2 AND (enabled = 1 OR $6 = 0)) \
             ON CONFLICT (job, scheduled_for) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(job.to_string())
        .bind(micros(scheduled_for))
        .bind(micros(started_at))
        .bind(runner.to_string())
        .bind(i64::from(scheduled))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("claiming a job run"))?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(JobRunRow {
            id: id.to_string(),
            job: job.to_string(),
            scheduled_for: from_micros(micros(scheduled_for)),
            started_at: from_micros(micros(started_at)),
            finished_at: None,
            status: RunStatus::Running,
            runner: runner.to_string(),
            summary: None,
            log: String::new(),
        }))
    }

    /// Records how a run ended, with its summary and log.
    pub async fn finish_job_run(
        &self,
        id: &str,
        status: RunStatus,
        summary: Option<&Value>,
        log: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE job_runs SET status = $1, finished_at = $2, summary = $3, log = $4 WHERE id = $5",
        )
        .bind(status.name().to_string())
        .bind(micros(Utc::now()))
        .bind(summary.map(json_text))
        .bind(log.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("finishing a job run"))?;
        Ok(())
    }

    /// Says a running run's runner is alive; see [`MetadataStore::fail_abandoned_runs`].
    pub async fn heartbeat_job_run(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE job_runs SET heartbeat_at = $1 WHERE id = $2 AND status = 'running'")
            .bind(micros(Utc::now()))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("marking a job run alive"))?;
        Ok(())
    }

    /// Marks as failed the runs still `running` whose runner has not said it is alive since
    /// `silent_since` (it was killed, or lost the store): their tick is not run again. Returns
    /// how many.
    pub async fn fail_abandoned_runs(
        &self,
        silent_since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE job_runs SET status = 'failed', finished_at = $1, \
             log = log || 'abandoned: its runner stopped reporting (killed, or lost the store)' \
             WHERE status = 'running' AND heartbeat_at < $2",
        )
        .bind(micros(Utc::now()))
        .bind(micros(silent_since))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("closing abandoned job runs"))?;
        Ok(done.rows_affected())
    }

    /// A job's runs, newest first, at most `limit`.
    pub async fn list_job_runs(&self, job: &str, limit: i64) -> Result<Vec<JobRunRow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {RUN_COLUMNS} FROM job_runs WHERE job = $1 ORDER BY scheduled_for DESC LIMIT $2"
        )))
        .bind(job.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("listing job runs"))?
        .iter()
        .map(run_from)
        .collect()
    }

    /// The latest tick a run of `job` was claimed for (read through the `(job, tick)` index).
    pub async fn last_job_tick(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query("SELECT MAX(scheduled_for) AS last FROM job_runs WHERE job = $1")
            .bind(job.to_string())
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("reading a job's last run"))?;
        Ok(get::<Option<i64>>(&row, "last")?.map(from_micros))
    }
}
