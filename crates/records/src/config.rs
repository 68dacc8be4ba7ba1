//! The recorder's configuration: a plain serde struct, every field with a default.
//!
//! ```yaml
//! records:
//!   durability: group        # group (default) | sync
//!   flush_interval_ms: 200
//!   queue_capacity: 20000
//!   batch_size: 2000
//!   spool_dir: berth-data/spool
//!   segment_bytes: 67108864
//!   overflow: spool          # spool (default, never drops) | drop (counts drops)
//!   store_timeout_ms: 2000
//!   retry_interval_ms: 1000
//!   redaction: { fields: { email: hash }, key_env: BERTH_RECORDS_KEY }
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::RecordsError;
use crate::redaction::RedactionPolicy;

/// When a record counts as safe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Records are queued in memory and written every flush interval; a kill -9 can lose what
    /// was accepted since the last flush (see the crate documentation for the exact bound).
    #[default]
    Group,
    /// Records are appended to the spool; `submit_durable` returns once they are fsynced (one
    /// fsync shared by all concurrent callers); nothing answered is lost.
    Sync,
}

/// What `submit` does when the in-memory queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverflowPolicy {
    /// Append the record to the spool instead; never drops.
    #[default]
    Spool,
    /// Drop the record, counting it in `berth_records_dropped_total`.
    Drop,
}

/// How the recorder runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderConfig {
    pub durability: Durability,
    /// How often the writer drains the queue into the store (and retries after a failure no
    /// sooner than `retry_interval_ms`).
    pub flush_interval_ms: u64,
    /// Records the in-memory queue holds before `submit` spills to the spool (or drops).
    pub queue_capacity: usize,
    /// Records per store transaction; the writer also wakes early once this many are queued.
    pub batch_size: usize,
    /// The spool folder; one recorder per folder (it is locked).
    pub spool_dir: PathBuf,
    /// A segment file is closed and a new one started past this size.
    pub segment_bytes: u64,
    pub overflow: OverflowPolicy,
    /// A store write not answered within this time counts as failed (its records go to the
    /// spool; if it did commit after all, the idempotent insert keeps them single).
    pub store_timeout_ms: u64,
    /// After a failed store write, the spool is replayed again no sooner than this.
    pub retry_interval_ms: u64,
    pub redaction: RedactionPolicy,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Group,
            flush_interval_ms: 200,
            queue_capacity: 20_000,
            batch_size: 2000,
            spool_dir: PathBuf::from("berth-data/spool"),
            segment_bytes: 64 << 20,
            overflow: OverflowPolicy::Spool,
            store_timeout_ms: 2_000,
            retry_interval_ms: 1_000,
            redaction: RedactionPolicy::default(),
        }
    }
}

impl RecorderConfig {
    /// Checks the numbers (the redaction policy is checked when the recorder opens).
    pub fn validate(&self) -> Result<(), RecordsError> {
        let positive = [
            ("flush_interval_ms", self.flush_interval_ms),
            ("queue_capacity", self.queue_capacity as u64),
            ("batch_size", self.batch_size as u64),
            ("segment_bytes", self.segment_bytes),
            ("store_timeout_ms", self.store_timeout_ms),
            ("retry_interval_ms", self.retry_interval_ms),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(RecordsError::Config(format!(
                    "{name} must be greater than 0"
                )));
            }
        }
        if self.spool_dir.as_os_str().is_empty() {
            return Err(RecordsError::Config("spool_dir is empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_config_is_the_default_and_fields_are_checked() {
        let config: RecorderConfig = serde_json::from_str("{}").expect("config");
        assert_eq!(config, RecorderConfig::default());
        config.validate().expect("valid");
        let config: RecorderConfig =
            serde_json::from_str(r#"{"durability": "sync", "overflow": "drop", "batch_size": 0}"#)
                .expect("config");
        assert_eq!(config.durability, Durability::Sync);
        assert_eq!(config.overflow, OverflowPolicy::Drop);
        let err = config.validate().expect_err("batch_size 0");
        assert!(err.to_string().contains("batch_size"), "{err}");
        assert!(serde_json::from_str::<RecorderConfig>(r#"{"durabilty": "sync"}"#).is_err());
    }
}
