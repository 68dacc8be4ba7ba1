//! The batching flags `berth up` and `berth serve` share, and the YAML file of per-model
//! overrides (`--batching FILE`, see [`BatchPolicy`]).
//!
//! Precedence, lowest first: built-in defaults, the file's `default`, these flags, the file's
//! entry for the model, the file's entry for the version.

use std::path::PathBuf;

use berth_serve::batcher::{BatchPolicy, BatchSettings};
use clap::Args;

use crate::read_yaml_file;

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Most rows gathered into one model run [default: 256].
    #[arg(long)]
    max_batch_size: Option<usize>,
    /// Longest a request waits for others to batch with, in microseconds [default: 0].
    #[arg(long)]
    max_queue_delay_us: Option<u64>,
    /// Requests that may wait per model version; more get 503 with Retry-After [default: 1024].
    #[arg(long)]
    queue_capacity: Option<usize>,
    /// How long a request may take, queueing included, in milliseconds [default: 10000].
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// A request expected to compute in less than this (µs) runs at once, skipping the queue;
    /// 0 batches everything [default: 100].
    #[arg(long)]
    max_inline_compute_us: Option<u64>,
    /// YAML file with batching per model or version: `default: {...}`, `models: {NAME: {...},
    /// NAME/VERSION: {...}}`, with the keys of the flags above (snake_case).
    #[arg(long, value_name = "FILE")]
    batching: Option<PathBuf>,
}

impl BatchArgs {
    /// The policy the flags and the file describe.
    pub fn policy(&self) -> anyhow::Result<BatchPolicy> {
        let mut policy = match &self.batching {
            Some(path) => read_yaml_file(path, "batching")?,
            None => BatchPolicy::default(),
        };
        let flags = BatchSettings {
            max_batch_size: self.max_batch_size,
            max_queue_delay_us: self.max_queue_delay_us,
            queue_capacity: self.queue_capacity,
            timeout_ms: self.timeout_ms,
            max_inline_compute_us: self.max_inline_compute_us,
        };
        policy.default = policy.default.merged_with(&flags);
        Ok(policy)
    }
}
