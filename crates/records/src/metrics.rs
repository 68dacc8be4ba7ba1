//! The recorder's Prometheus metrics. Registered into the server's registry (whose prefix is
//! `berth`), they read:
//!
//! - `berth_records_queued_total`: records accepted (by `submit` or `submit_durable`);
//! - `berth_records_spooled_total`: records appended to the on-disk spool;
//! - `berth_records_written_total`: records confirmed in the store (including records replayed
//!   from a spool left by an earlier run);
//! - `berth_records_dropped_total`: records not kept: dropped by the `drop` overflow policy,
//!   refused after shutdown, or lost to a spool write failure (each also an error to the caller);
//! - `berth_records_spool_corrupt_total`: torn or corrupt spool frames found (and cut off);
//! - `berth_records_spool_fsyncs_total`: fsync rounds of the spool (with group commit, far
//!   fewer than durable submits under concurrency);
//! - `berth_records_spool_pending_bytes`: spooled bytes not yet in the store.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A snapshot of the recorder's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub queued: u64,
    pub spooled: u64,
    pub written: u64,
    pub dropped: u64,
    pub corrupt_frames: u64,
    pub fsyncs: u64,
    pub spool_pending_bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RecorderMetrics {
    pub queued: Counter,
    pub spooled: Counter,
    pub written: Counter,
    pub dropped: Counter,
    pub corrupt: Counter,
    pub fsyncs: Counter,
    pub spool_pending_bytes: Gauge,
}

impl RecorderMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "records_queued",
            "Prediction records accepted",
            self.queued.clone(),
        );
        registry.register(
            "records_spooled",
            "Prediction records appended to the on-disk spool",
            self.spooled.clone(),
        );
        registry.register(
            "records_written",
            "Prediction records confirmed in the store",
            self.written.clone(),
        );
        registry.register(
            "records_dropped",
            "Prediction records not kept (drop policy, after shutdown, or a failed spool write)",
            self.dropped.clone(),
        );
        registry.register(
            "records_spool_corrupt",
            "Torn or corrupt spool frames found and cut off",
            self.corrupt.clone(),
        );
        registry.register(
            "records_spool_fsyncs",
            "Fsync rounds of the spool (one per group commit)",
            self.fsyncs.clone(),
        );
        registry.register(
            "records_spool_pending_bytes",
            "Spooled bytes not yet in the store",
            self.spool_pending_bytes.clone(),
        );
    }

    pub fn set_spool_pending(&self, bytes: u64) {
        self.spool_pending_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn snapshot(&self) -> RecorderStats {
        RecorderStats {
            queued: self.queued.get(),
            spooled: self.spooled.get(),
            written: self.written.get(),
            dropped: self.dropped.get(),
            corrupt_frames: self.corrupt.get(),
            fsyncs: self.fsyncs.get(),
            spool_pending_bytes: u64::try_from(self.spool_pending_bytes.get()).unwrap_or(0),
        }
    }
}
