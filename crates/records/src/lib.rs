//! berth's prediction records: every prediction leaves a record, and none is lost.
//!
//! Serving hands each prediction to a [`Recorder`] as a [`PredictionRecord`] (id, time,
//! endpoint, model, version, [`Role`], protocol, rows, latency, inputs and outputs as columns).
//! The recorder moves it into the metadata store (in binary segments, see
//! [`berth_store::PredictionBatch`]), applying the [`RedactionPolicy`] to the inputs (per
//! field: keep, drop, or a keyed HMAC-SHA256) when it encodes the record, before it is written
//! anywhere. Inputs and outputs travel as serving holds them ([`RecordColumns`]: the validated
//! matrix and the output tensors, shared), and are encoded by the writer, off the request path.
//!
//! ```no_run
//! # async fn example(store: berth_store::MetadataStore, record: berth_records::PredictionRecord)
//! # -> Result<(), berth_records::RecordsError> {
//! use berth_records::{Recorder, RecorderConfig};
//! let recorder = Recorder::open(RecorderConfig::default(), store).await?;
//! let mut registry = prometheus_client::registry::Registry::with_prefix("berth");
//! recorder.register_metrics(&mut registry);
//! recorder.submit(record)?; // group mode: never waits
//! // ...on SIGTERM:
//! recorder.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # The write path
//! A bounded in-memory queue feeds a writer task that, every `flush_interval_ms` (or as soon as
//! `batch_size` records wait), writes batches to the store, one transaction each. A write that
//! fails or takes longer than `store_timeout_ms` sends its batch, and everything after it, to
//! the **spool**: append-only segment files in `spool_dir`, each record a frame with a length
//! and a CRC-32C. The writer replays the spool into the store once it answers again (tried every
//! `retry_interval_ms`), and deletes a segment only after every record in it is in the store.
//! The store keeps each spool folder's (writer's) high-water mark of sequence numbers and skips
//! what is below it, in the same transaction as each batch, so a record written twice (a
//! timed-out write that did commit, a crash between an insert and the delete of its segment)
//! is still stored once: **exactly once** in the store.
//!
//! When the queue is full, `submit` appends the record to the spool itself (one buffered
//! `write`, no fsync, no waiting on the store). With `overflow: drop` it drops the record
//! instead, counts it and returns [`RecordsError::Dropped`]. Nothing is dropped silently:
//! every record not kept is an error to the caller and a count in
//! `berth_records_dropped_total`.
//!
//! # Durability
//! - **`group`** (default). [`Recorder::submit`] never blocks and never awaits. What a kill -9
//!   can lose is exactly the records still in memory: those queued since the writer last took
//!   the queue, plus the batch the writer is writing at that moment if its commit had not
//!   landed. The writer takes the queue every `flush_interval_ms` (default 200 ms), so that is
//!   at most the records accepted in the last flush interval plus one store write (bounded by
//!   `store_timeout_ms`), and never more than `queue_capacity + batch_size` records. Records
//!   already in the spool survive a kill -9 (they are in the file); the writer fsyncs the
//!   spool every round, so a power cut can also lose spooled records of the last round.
//! - **`sync`**. Records go to the spool first. [`Recorder::submit_durable`] returns once its
//!   record is appended and fsynced; concurrent callers share one fsync (group commit). A
//!   record whose `submit_durable` returned `Ok` survives a kill -9 and a power cut, so a
//!   response sent after it loses nothing. (`submit_durable` also works in group mode, and
//!   plain `submit` in sync mode appends without waiting for the fsync.)
//!
//! [`Recorder::shutdown`] (on SIGTERM) stops accepting records, writes the queue to the store,
//! or to the spool if the store fails, replays the spool while the store answers, and fsyncs:
//! a graceful stop loses nothing. Whatever is left in the spool is written by the next
//! recorder opened on the same folder (one recorder per folder; it is locked).
//!
//! # Order
//! Every accepted record gets a sequence number, in the order `submit` / `submit_durable`
//! calls took the recorder's intake lock (for one caller: the order of its calls). Records
//! reach the store in that order: a record is inserted in the same transaction as, or a later
//! transaction than, every record with a smaller number, whether it went straight from the
//! queue or through the spool, and across restarts (a new recorder replays the old spool before
//! anything new). There is no order between recorders of different processes. What the store
//! keeps is the set of rows; "in order" is about when they are committed, which is what a
//! reader polling the table by time sees.
//!
//! # Spool damage
//! On open, every segment is read frame by frame; a torn frame (a write cut short by a crash)
//! or a corrupt one (checksum mismatch) ends the segment: it is truncated there, counted in
//! `berth_records_spool_corrupt_total` and logged, and the frames before it are replayed.
//! Never a panic.
//!
//! # Metrics
//! See [`metrics`]: `berth_records_queued_total`, `_spooled_total`, `_written_total`,
//! `_dropped_total`, `_spool_corrupt_total`, `_spool_fsyncs_total` and the gauge
//! `berth_records_spool_pending_bytes`. In a process that found no earlier spool, once the
//! spool is empty (`spool_pending_bytes == 0`), `queued == written`: dropped records were
//! never accepted, so they are not in `queued`.
//!
//! Operator documentation: `docs/RECORDS.md`.

mod config;
mod error;
pub mod frame;
pub mod metrics;
mod record;
mod recorder;
mod redaction;
mod spool;

pub use config::{Durability, OverflowPolicy, RecorderConfig};
pub use error::RecordsError;
pub use metrics::RecorderStats;
pub use record::{Columns, PredictionRecord, RecordColumns, Role};
pub use recorder::{Accepted, Recorder};
pub use redaction::{FieldAction, RedactionPolicy, SecretKey};
