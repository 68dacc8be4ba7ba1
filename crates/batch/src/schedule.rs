//! Scheduled batch scoring: a job is a [`ScoreJob`] (what `berth score` runs) on a cron
//! [`Schedule`]. The server's scheduler runs, at each tick, the latest tick not yet run: a
//! server that was down for three ticks runs the job once when it is back, not three times.
//!
//! Paths of a job may hold placeholders filled in for each run from its tick (UTC): `{date}`
//! (`2026-12-06`), `{time}` (`020000`) and `{run}` (the run's id), so a nightly job reads the
//! day's partition and writes a file per night.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Shard;

/// A cron schedule: five fields (minute hour day-of-month month day-of-week), or six with
/// seconds first; `L`, `W`, `#` and `@daily`-style nicknames as cron has them. Times are UTC.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let cron = text.parse::<croner::Cron>().map_err(|e| {
            format!(
                "{text:?}: {e}; expected a cron expression such as \"0 2 * * *\" (02:00 UTC daily)"
            )
        })?;
        Ok(Schedule {
            text: text.trim().to_string(),
            cron,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The latest tick at or before `now`.
    pub fn latest_tick(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&now, true).ok()
    }

    /// The first tick after `t`.
    pub fn next_tick(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The tick to run now, if any: the latest tick at or before `now` when it is after
    /// `since` (the last tick run, or when the job was added).
    pub fn due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.latest_tick(now).filter(|tick| *tick > since)
    }
}

/// What a bad row does to a scoring run (see [`crate::OnError`], which also says where
/// skipped rows go).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRows {
    #[default]
    Fail,
    Skip,
}

fn default_id_column() -> String {
    "id".into()
}

fn default_chunk_rows() -> usize {
    16_384
}

fn yes() -> bool {
    true
}

/// A batch scoring run, as `berth score` takes it and as a scheduled job stores it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreJob {
    /// An endpoint (its primary version), `NAME@ALIAS` or `NAME/VERSION`.
    pub target: String,
    /// A file, a folder or a `*` pattern; local or `s3://`.
    pub input: String,
    /// Where predictions go (local or `s3://`); standard output when absent (not for a
    /// scheduled job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    #[serde(default = "default_id_column")]
    pub id_column: String,
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
    #[serde(default)]
    pub on_error: BadRows,
    /// Where skipped rows go; `OUTPUT.rejects.csv` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<String>,
    /// Add the scored rows to the version's monitoring profiles.
    #[serde(default = "yes")]
    pub profiles: bool,
}

impl ScoreJob {
    /// Every problem of the job, as `field: expected ..., got ...`.
    pub fn check(&self) -> Result<(), String> {
        self.problems(false)
    }

    /// [`ScoreJob::check`], for a job meant to run unattended (it needs an output).
    pub fn check_scheduled(&self) -> Result<(), String> {
        self.problems(true)
    }

    fn problems(&self, scheduled: bool) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.target.trim().is_empty() {
            problems.push(
                "target: expected an endpoint, NAME@ALIAS or NAME/VERSION, got nothing".to_string(),
            );
        }
        if self.input.trim().is_empty() {
            problems.push("input: expected a file, folder or pattern, got nothing".to_string());
        }
        if scheduled && self.output.is_none() {
            problems.push(
                "output: expected where predictions go (a scheduled job has no terminal), got nothing"
                    .to_string(),
            );
        }
        if self.chunk_rows == 0 {
            problems.push("chunk_rows: expected at least 1, got 0".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The job for the run of `tick` with id `run`: placeholders in its paths filled in.
    pub fn for_run(&self, tick: DateTime<Utc>, run: &str) -> ScoreJob {
        let fill = |text: &str| {
            text.replace("{date}", &tick.format("%Y-%m-%d").to_string())
                .replace("{time}", &tick.format("%H%M%S").to_string())
                .replace("{run}", run)
        };
        ScoreJob {
            input: fill(&self.input),
            output: self.output.as_deref().map(fill),
            rejects: self.rejects.as_deref().map(fill),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, h, m, s)
            .single()
            .expect("time")
    }

    #[test]
    fn the_latest_missed_tick_runs_once() {
        let nightly = Schedule::parse("0 2 * * *").expect("cron");
        // Added at 01:00: nothing due before 02:00, the 02:00 tick after.
        assert_eq!(nightly.due(at(1, 0, 0), at(1, 59, 59)), None);
        assert_eq!(nightly.due(at(1, 0, 0), at(2, 0, 0)), Some(at(2, 0, 0)));
        // Once run, not again the same night.
        assert_eq!(nightly.due(at(2, 0, 0), at(23, 0, 0)), None);
        // Down for three nights: the last one, once.
        let later = Utc
            .with_ymd_and_hms(2026, 12, 9, 3, 0, 0)
            .single()
            .expect("time");
        let last = Utc
            .with_ymd_and_hms(2026, 12, 9, 2, 0, 0)
            .single()
            .expect("time");
        assert_eq!(nightly.due(at(2, 0, 0), later), Some(last));
        assert_eq!(
            nightly.next_tick(at(2, 0, 0)),
            Some(at(2, 0, 0) + chrono::Duration::days(1))
        );
        // Seconds, for short periods.
        let often = Schedule::parse("*/5 * * * * *").expect("cron");
        assert_eq!(often.due(at(2, 0, 0), at(2, 0, 7)), Some(at(2, 0, 5)));
    }

    #[test]
    fn bad_schedules_and_jobs_are_named() {
        let e = Schedule::parse("0 25 * * *").expect_err("hour 25");
        assert!(
            e.contains("0 25 * * *") && e.contains("expected a cron expression"),
            "{e}"
        );
        assert!(Schedule::parse("tomorrow").is_err());
        let job: ScoreJob =
            serde_json::from_str(r#"{"target": "churn", "input": "in.csv", "chunk_rows": 0}"#)
                .expect("job");
        let e = job.check_scheduled().expect_err("no output");
        assert!(
            e.contains("output: expected") && e.contains("chunk_rows"),
            "{e}"
        );
        let e = serde_json::from_str::<ScoreJob>(r#"{"target": "a", "input": "b", "ouput": "c"}"#)
            .expect_err("typo");
        assert!(e.to_string().contains("ouput"), "{e}");
    }

    #[test]
    fn placeholders_are_filled_per_run() {
        let job: ScoreJob = serde_json::from_str(
            r#"{"target": "churn", "input": "s3://b/in/{date}/*.parquet", "output": "out/{date}-{time}-{run}.csv", "shard": "1/4"}"#,
        )
        .expect("job");
        assert_eq!(job.shard, Some(Shard { index: 1, count: 4 }));
        let run = job.for_run(at(2, 0, 0), "r1");
        assert_eq!(run.input, "s3://b/in/2026-12-06/*.parquet");
        assert_eq!(run.output.as_deref(), Some("out/2026-12-06-020000-r1.csv"));
        assert!(run.profiles, "profiles by default");
    }
}
