//! The [`Recorder`]: the handle serving submits records to, and the writer task behind it that
//! moves them into the store, through the spool when the store is slow or down.
//!
//! State shared by the handle and the writer:
//! - the *intake* (one mutex): the bounded queue, the next sequence number, and whether the
//!   recorder is closed. Sequence numbers are given out under it, in submission order;
//! - the *spool* (a second mutex, always taken after the intake when both are held).
//!
//! The writer runs in rounds, every flush interval or sooner when a batch is waiting:
//! - while the spool is empty, it takes batches from the queue and writes them to the store;
//!   a write that fails or times out sends its batch to the spool and ends the round;
//! - while the spool holds records, it moves the whole queue into the spool first, notes the
//!   *fence* (the next sequence number at that moment: every record below it is now in the
//!   spool or the store), fsyncs, and replays the spool into the store up to the fence.
//!
//! Deciding "spool empty?" and taking from the queue happen under the intake lock, as do the
//! spills of an overflowing `submit`, so a record never overtakes an older one on its way to
//! the store.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_store::{MetadataStore, PredictionBatch};
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::RecordsError;
use crate::config::{Durability, OverflowPolicy, RecorderConfig};
use crate::frame;
use crate::metrics::{RecorderMetrics, RecorderStats};
use crate::record::{PredictionRecord, encode_line, encode_record};
use crate::redaction::Redactor;
use crate::spool::{Spool, read_slice};

/// Where an accepted record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Into the in-memory queue (group mode).
    Queued,
    /// Into the spool: sync mode, or the queue was full.
    Spooled,
}

/// A cheap-to-clone handle on the record path. See the crate documentation.
///
/// Call [`Recorder::shutdown`] before the process exits. Dropping the last handle without it
/// only asks the writer to flush in the background, which a runtime that is itself shutting
/// down may cut short (the queue is then lost, as with a kill -9; the spool is kept).
#[derive(Clone)]
pub struct Recorder {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("durability", &self.handle.shared.config.durability)
            .field("spool_dir", &self.handle.shared.config.spool_dir)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Owned by every clone of a [`Recorder`]; when the last one goes, the writer is told to
/// flush and stop (in the background: nothing can be awaited in a drop).
struct Handle {
    shared: Arc<Shared>,
    /// Held across a shutdown, so that a second one waits for the first.
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

struct Queued {
    seq: u64,
    record: PredictionRecord,
}

struct Intake {
    queue: VecDeque<Queued>,
    next_seq: u64,
    /// The spool's reservation: numbers below it may be given out without asking the spool.
    reserved: u64,
    closed: bool,
}

/// Group commit: one caller at a time fsyncs for everyone waiting.
struct GroupCommit {
    syncing: AtomicBool,
    /// Spool bytes (tickets) known durable.
    synced: watch::Sender<u64>,
}

struct Shared {
    config: RecorderConfig,
    redactor: Redactor,
    intake: Mutex<Intake>,
    spool: Mutex<Spool>,
    commit: GroupCommit,
    wake: Notify,
    stopping: AtomicBool,
    metrics: RecorderMetrics,
}

/// Locks a mutex; a panic elsewhere while it was held does not make the data unusable here
/// (every update below leaves it consistent between statements).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The record as the line of JSON the store and the spool keep, its inputs redacted.
fn encode(record: &PredictionRecord, redactor: &Redactor) -> Result<Vec<u8>, RecordsError> {
    let mut payload = Vec::with_capacity(512);
    encode_line(record, redactor, &mut payload).map_err(|e| RecordsError::Encode {
        id: record.id.clone(),
        problem: e.to_string(),
    })?;
    if !frame::fits(&payload) {
        return Err(RecordsError::Encode {
            id: record.id.clone(),
            problem: format!(
                "{} bytes, more than a spool frame holds ({})",
                payload.len(),
                frame::MAX_PAYLOAD_BYTES
            ),
        });
    }
    Ok(payload)
}

impl Recorder {
    /// Opens the spool (replaying whatever an earlier run left there) and starts the writer.
    /// Must be called within a tokio runtime.
    pub async fn open(config: RecorderConfig, store: MetadataStore) -> Result<Self, RecordsError> {
        config.validate()?;
        let redactor = config.redaction.redactor()?;
        let (dir, segment_bytes) = (config.spool_dir.clone(), config.segment_bytes);
        let (spool, recovered) =
            tokio::task::spawn_blocking(move || Spool::open(&dir, segment_bytes))
                .await
                .map_err(|e| RecordsError::Spool {
                    path: config.spool_dir.clone(),
                    doing: "opening".into(),
                    problem: e.to_string(),
                })??;
        let metrics = RecorderMetrics::default();
        for damage in &recovered.damaged {
            metrics.corrupt.inc();
            tracing::error!(
                path = %damage.path.display(),
                offset = damage.offset,
                bytes_cut = damage.bytes_cut,
                "prediction-record spool: {}; the segment was cut there, the records before it are kept",
                damage.problem
            );
        }
        if recovered.frames > 0 {
            tracing::info!(
                records = recovered.frames,
                dir = %spool.dir().display(),
                "prediction records left in the spool by an earlier run; writing them to the store"
            );
        }
        metrics.set_spool_pending(spool.pending_bytes());
        let (synced, _) = watch::channel(0);
        let (writer, reserved) = (spool.writer().to_string(), spool.reserved());
        let shared = Arc::new(Shared {
            config,
            redactor,
            intake: Mutex::new(Intake {
                queue: VecDeque::new(),
                next_seq: recovered.next_seq,
                reserved,
                closed: false,
            }),
            spool: Mutex::new(spool),
            commit: GroupCommit {
                syncing: AtomicBool::new(false),
                synced,
            },
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            metrics,
        });
        let writer = tokio::spawn(Writer::new(shared.clone(), store, writer).run());
        Ok(Self {
            handle: Arc::new(Handle {
                shared,
                writer: tokio::sync::Mutex::new(Some(writer)),
            }),
        })
    }

    /// Hands a record over without waiting: its inputs are redacted, then it is queued (group
    /// mode) or appended to the spool (sync mode, or when the queue is full). Never blocks on
    /// the store or on an fsync. An error means the record was not kept, and is counted.
    pub fn submit(&self, record: PredictionRecord) -> Result<Accepted, RecordsError> {
        let shared = &self.handle.shared;
        match shared.config.durability {
            Durability::Group => shared.enqueue(record),
            Durability::Sync => shared.append_to_spool(&record).map(|_| Accepted::Spooled),
        }
    }

    /// Appends the record to the spool and returns once it is fsynced, sharing the fsync with
    /// every concurrent caller (group commit). After `Ok`, the record survives a kill -9 or a
    /// power cut. Works in either durability mode (in group mode it goes behind what is
    /// queued, in order).
    pub async fn submit_durable(&self, record: PredictionRecord) -> Result<(), RecordsError> {
        let shared = &self.handle.shared;
        let ticket = shared.append_to_spool(&record)?;
        shared.wait_durable(ticket).await
    }

    /// Stops accepting records, writes what is queued to the store (or, if the store fails, to
    /// the spool), replays the spool while the store answers, fsyncs, and stops the writer.
    /// Whatever is left in the spool is written by the next recorder on the same folder.
    pub async fn shutdown(&self) -> Result<RecorderStats, RecordsError> {
        let shared = &self.handle.shared;
        shared.close();
        let mut writer = self.handle.writer.lock().await;
        if let Some(task) = writer.take()
            && let Err(e) = task.await
        {
            tracing::error!("the prediction-record writer ended abnormally: {e}");
        }
        // Normally empty by now; whatever the writer could not place goes to the spool.
        shared.spool_leftovers();
        shared.sync_all().await?;
        // Closed: nothing appends any more; the next recorder may take the folder.
        lock(&shared.spool).release();
        drop(writer);
        Ok(self.stats())
    }

    /// Stops the writer at once and lets go of the spool, flushing nothing: what a kill -9
    /// leaves behind (records written to spool files stay; the queue is lost). For tests.
    #[doc(hidden)]
    pub async fn simulate_crash(&self) {
        let mut writer = self.handle.writer.lock().await;
        if let Some(task) = writer.take() {
            task.abort();
            let _ = task.await;
        }
        let shared = &self.handle.shared;
        {
            let mut intake = lock(&shared.intake);
            intake.closed = true;
            intake.queue.clear();
        }
        lock(&shared.spool).release();
    }

    /// The counters now.
    pub fn stats(&self) -> RecorderStats {
        self.handle.shared.metrics.snapshot()
    }

    /// Records in the in-memory queue now.
    pub fn queue_len(&self) -> usize {
        lock(&self.handle.shared.intake).queue.len()
    }

    /// Registers the `records_*` metrics (see [`crate::metrics`]) in `registry`; in the
    /// server's registry, prefixed `berth`, they read `berth_records_queued_total`, ...
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.handle.shared.metrics.register(registry);
    }
}

impl Shared {
    /// No more records; tells the writer to flush and stop.
    fn close(&self) {
        lock(&self.intake).closed = true;
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Appends what is still queued to the spool (after the writer stopped); what cannot be
    /// appended is lost, logged and counted as dropped.
    fn spool_leftovers(&self) {
        let mut intake = lock(&self.intake);
        if intake.queue.is_empty() {
            return;
        }
        let mut frames = Vec::with_capacity(intake.queue.len());
        for q in intake.queue.drain(..) {
            match encode(&q.record, &self.redactor) {
                Ok(payload) => frames.push((q.seq, payload)),
                Err(e) => {
                    self.metrics.dropped.inc();
                    tracing::error!("prediction record lost: {e}");
                }
            }
        }
        let mut spool = lock(&self.spool);
        match spool.append(&frames) {
            Ok(_) => {
                self.metrics.spooled.inc_by(frames.len() as u64);
                self.metrics.set_spool_pending(spool.pending_bytes());
            }
            Err(e) => {
                self.metrics.dropped.inc_by(frames.len() as u64);
                tracing::error!(
                    records = frames.len(),
                    "prediction records lost at shutdown: neither the store nor the spool took them ({e})"
                );
            }
        }
    }

    fn refuse_closed(&self, id: String) -> RecordsError {
        self.metrics.dropped.inc();
        RecordsError::Closed { id }
    }

    /// Gives out the next sequence number, first extending the spool's reservation when it
    /// has run out (once per [`crate::spool::SEQUENCE_BLOCK`] records).
    fn next_seq(&self, intake: &mut Intake) -> Result<u64, RecordsError> {
        if intake.next_seq >= intake.reserved {
            let mut spool = lock(&self.spool);
            spool.reserve(intake.next_seq)?;
            intake.reserved = spool.reserved();
        }
        intake.next_seq += 1;
        Ok(intake.next_seq - 1)
    }

    fn enqueue(&self, record: PredictionRecord) -> Result<Accepted, RecordsError> {
        let mut intake = lock(&self.intake);
        if intake.closed {
            drop(intake);
            return Err(self.refuse_closed(record.id));
        }
        if intake.queue.len() < self.config.queue_capacity {
            let seq = match self.next_seq(&mut intake) {
                Ok(seq) => seq,
                Err(e) => {
                    drop(intake);
                    self.metrics.dropped.inc();
                    tracing::error!("prediction record {} lost: {e}", record.id);
                    return Err(e);
                }
            };
            intake.queue.push_back(Queued { seq, record });
            let queued = intake.queue.len();
            drop(intake);
            self.metrics.queued.inc();
            if queued >= self.config.batch_size {
                self.wake.notify_one();
            }
            return Ok(Accepted::Queued);
        }
        match self.config.overflow {
            OverflowPolicy::Drop => {
                drop(intake);
                self.metrics.dropped.inc();
                let dropped = self.metrics.dropped.get();
                if dropped == 1 || dropped.is_multiple_of(1000) {
                    tracing::warn!(
                        dropped,
                        "prediction-record queue full with overflow policy `drop`: records dropped"
                    );
                }
                Err(RecordsError::Dropped { id: record.id })
            }
            OverflowPolicy::Spool => {
                let payload = encode(&record, &self.redactor).inspect_err(|_| {
                    self.metrics.dropped.inc();
                })?;
                // The writer is woken by the queue having reached a batch already (or its tick).
                self.spill(&mut intake, &record.id, payload)?;
                Ok(Accepted::Spooled)
            }
        }
    }

    /// Appends one record to the spool under the intake lock (so that its sequence number and
    /// its place in the spool agree); returns the group-commit ticket.
    fn spill(&self, intake: &mut Intake, id: &str, payload: Vec<u8>) -> Result<u64, RecordsError> {
        let appended = self.next_seq(intake).and_then(|seq| {
            let mut spool = lock(&self.spool);
            let ticket = spool.append(&[(seq, payload)])?;
            Ok((ticket, spool.pending_bytes()))
        });
        match appended {
            Ok((ticket, pending_bytes)) => {
                self.metrics.queued.inc();
                self.metrics.spooled.inc();
                self.metrics.set_spool_pending(pending_bytes);
                Ok(ticket)
            }
            Err(e) => {
                self.metrics.dropped.inc();
                tracing::error!("prediction record {id} lost: {e}");
                Err(e)
            }
        }
    }

    fn append_to_spool(&self, record: &PredictionRecord) -> Result<u64, RecordsError> {
        let payload = encode(record, &self.redactor).inspect_err(|_| {
            self.metrics.dropped.inc();
        })?;
        let mut intake = lock(&self.intake);
        if intake.closed {
            drop(intake);
            return Err(self.refuse_closed(record.id.clone()));
        }
        let ticket = self.spill(&mut intake, &record.id, payload)?;
        drop(intake);
        if lock(&self.spool).pending_frames() >= self.config.batch_size as u64 {
            self.wake.notify_one();
        }
        Ok(ticket)
    }

    /// Waits until spool bytes up to `ticket` are fsynced, leading an fsync if none is under
    /// way. The fsync runs in a task of its own, so a caller that gives up does not leave the
    /// others waiting on a sync nobody finishes.
    async fn wait_durable(self: &Arc<Self>, ticket: u64) -> Result<(), RecordsError> {
        let mut synced = self.commit.synced.subscribe();
        loop {
            if *synced.borrow_and_update() >= ticket {
                return Ok(());
            }
            if self
                .commit
                .syncing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let leader = tokio::spawn(self.clone().sync_as_leader());
                match leader.await {
                    Ok(result) => result?,
                    Err(e) => {
                        return Err(RecordsError::Spool {
                            path: self.config.spool_dir.clone(),
                            doing: "syncing".into(),
                            problem: e.to_string(),
                        });
                    }
                }
                continue;
            }
            if synced.changed().await.is_err() {
                return Err(RecordsError::Spool {
                    path: self.config.spool_dir.clone(),
                    doing: "syncing".into(),
                    problem: "the recorder is gone".into(),
                });
            }
        }
    }

    /// Fsyncs everything appended so far; the caller has set `syncing`.
    async fn sync_as_leader(self: Arc<Self>) -> Result<(), RecordsError> {
        let job = lock(&self.spool).take_unsynced();
        let upto = job.upto;
        if !job.is_empty() {
            self.metrics.fsyncs.inc();
        }
        // A copy (the files are shared handles) to give back if the sync does not complete.
        let retry = job.clone();
        let ran = tokio::task::spawn_blocking(move || job.run()).await;
        let result = match ran {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(RecordsError::Spool {
                path: self.config.spool_dir.clone(),
                doing: "syncing".into(),
                problem: e.to_string(),
            }),
        };
        if result.is_err() {
            lock(&self.spool).restore_unsynced(retry);
        }
        // Cleared before waking the waiters, so that one of them can lead the next sync.
        self.commit.syncing.store(false, Ordering::Release);
        match &result {
            Ok(()) => self.commit.synced.send_modify(|v| *v = (*v).max(upto)),
            Err(_) => self.commit.synced.send_modify(|_| {}),
        }
        result
    }

    /// Fsyncs everything appended to the spool so far.
    async fn sync_all(self: &Arc<Self>) -> Result<(), RecordsError> {
        let ticket = lock(&self.spool).appended();
        self.wait_durable(ticket).await
    }
}

fn spool_has_records(shared: &Shared) -> bool {
    !lock(&shared.spool).is_empty()
}

/// Records the writer appends to the spool per lock of it.
const APPEND_CHUNK: usize = 256;

/// How a writer round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Everything due was written (or spooled because it was not yet time to retry).
    Done,
    /// The store failed; records went to the spool.
    StoreFailed,
}

/// The task that moves records into the store.
struct Writer {
    shared: Arc<Shared>,
    store: MetadataStore,
    /// The spool folder's writer id, under which the store keeps its high-water mark.
    writer: String,
    store_down_since: Option<Instant>,
    /// The last written batch, emptied and reused for the next (its buffers kept).
    spare: PredictionBatch,
}

/// Records taken from the queue, encoded: the records themselves (for the spool, or to go
/// back to the queue if the spool cannot take them) and the batch for the store, in the same
/// order.
struct Encoded {
    records: Vec<Queued>,
    batch: PredictionBatch,
}

impl Writer {
    fn new(shared: Arc<Shared>, store: MetadataStore, writer: String) -> Self {
        Self {
            shared,
            store,
            writer,
            store_down_since: None,
            spare: PredictionBatch::new(),
        }
    }

    /// Encodes `batch`; a record that cannot be encoded is lost, counted and logged.
    fn encode(&mut self, batch: Vec<Queued>) -> Encoded {
        let mut encoded = Encoded {
            records: Vec::with_capacity(batch.len()),
            batch: std::mem::take(&mut self.spare),
        };
        encoded.batch.clear();
        for q in batch {
            match encode_record(&q.record, q.seq, &self.shared.redactor, &mut encoded.batch) {
                Ok(()) => encoded.records.push(q),
                Err(e) => {
                    self.shared.metrics.dropped.inc();
                    tracing::error!("prediction record lost: {e}");
                }
            }
        }
        encoded
    }

    async fn run(mut self) {
        let flush = Duration::from_millis(self.shared.config.flush_interval_ms);
        let retry = Duration::from_millis(self.shared.config.retry_interval_ms);
        let mut retry_at: Option<Instant> = None;
        loop {
            if !self.shared.stopping.load(Ordering::Acquire) {
                tokio::select! {
                    () = tokio::time::sleep(flush) => {}
                    () = self.shared.wake.notified() => {}
                }
            }
            let stopping = self.shared.stopping.load(Ordering::Acquire);
            let store_allowed = stopping || retry_at.is_none_or(|at| Instant::now() >= at);
            match self.round(store_allowed).await {
                Round::Done if store_allowed => retry_at = None,
                Round::Done => {}
                Round::StoreFailed => retry_at = Some(Instant::now() + retry),
            }
            if stopping {
                break;
            }
        }
        if let Err(e) = self.shared.sync_all().await {
            tracing::error!("prediction-record spool: final sync failed: {e}");
        }
    }

    fn store_failed(&mut self, problem: &str, records: usize) {
        if self.store_down_since.is_none() {
            self.store_down_since = Some(Instant::now());
            tracing::warn!(
                records,
                "prediction records: the store failed ({problem}); spooling to disk until it answers"
            );
        } else {
            tracing::debug!("prediction records: the store still fails ({problem})");
        }
    }

    fn store_answered(&mut self) {
        if let Some(since) = self.store_down_since.take() {
            tracing::info!(
                down_seconds = since.elapsed().as_secs_f64(),
                "prediction records: the store answers again; replaying the spool"
            );
        }
    }

    async fn write(&mut self, rows: &PredictionBatch) -> Result<(), String> {
        let timeout = Duration::from_millis(self.shared.config.store_timeout_ms);
        let insert = self.store.insert_predictions(&self.writer, rows);
        let result = match tokio::time::timeout(timeout, insert).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.shared.config.store_timeout_ms
            )),
        };
        match &result {
            Ok(()) => {
                self.store_answered();
                self.shared.metrics.written.inc_by(rows.len() as u64);
            }
            Err(problem) => self.store_failed(problem, rows.len()),
        }
        result
    }

    /// One round: see the module documentation.
    async fn round(&mut self, store_allowed: bool) -> Round {
        let batch_size = self.shared.config.batch_size;
        let mut first_batch = true;
        loop {
            let (batch, fence, through_spool) = {
                let mut intake = lock(&self.shared.intake);
                let spool_first = lock(&self.shared.spool).first_seq();
                // Queued records older than everything in the spool (the queue filled up and
                // later records spilled) may still go straight to the store.
                let older_than_spool = |q: &Queued| spool_first.is_none_or(|first| q.seq < first);
                if store_allowed && intake.queue.front().is_none_or(older_than_spool) {
                    let mut n = intake
                        .queue
                        .iter()
                        .take(batch_size)
                        .take_while(|q| older_than_spool(q))
                        .count();
                    // After the round's first batch, only full batches: what arrived while a
                    // batch was written waits for the next round (a flush interval at most),
                    // rather than going out in a stream of small transactions. Not while the
                    // spool holds records (those queued before them go first) or stopping.
                    let stopping = self.shared.stopping.load(Ordering::Acquire);
                    if !first_batch && n < batch_size && spool_first.is_none() && !stopping {
                        n = 0;
                    }
                    first_batch = false;
                    let batch: Vec<Queued> = intake.queue.drain(..n).collect();
                    (batch, intake.next_seq, false)
                } else {
                    let batch: Vec<Queued> = intake.queue.drain(..).collect();
                    (batch, intake.next_seq, true)
                }
            };
            if !through_spool {
                if batch.is_empty() {
                    if spool_has_records(&self.shared) {
                        // Only the spool is left: replay it (below) in this same round.
                        match self.replay(fence).await {
                            Err(()) => return Round::StoreFailed,
                            Ok(0) => return Round::Done,
                            Ok(_) => continue,
                        }
                    }
                    return Round::Done;
                }
                let encoded = self.encode(batch);
                if self.write(&encoded.batch).await.is_ok() {
                    self.spare = encoded.batch;
                    continue;
                }
                let _ = self.move_to_spool(encoded);
                if let Err(e) = self.shared.sync_all().await {
                    tracing::error!("prediction-record spool: sync failed: {e}");
                }
                return Round::StoreFailed;
            }

            let moved = batch.len();
            let encoded = self.encode(batch);
            let (fence, spool_failed) = match self.move_to_spool(encoded) {
                Ok(()) => (fence, false),
                Err(first_kept) => (first_kept.min(fence), true),
            };
            if let Err(e) = self.shared.sync_all().await {
                tracing::error!("prediction-record spool: sync failed: {e}");
            }
            if !store_allowed {
                return Round::Done;
            }
            match self.replay(fence).await {
                Err(()) => return Round::StoreFailed,
                // The spool refused the queue: try again next round, not in a busy loop.
                Ok(_) if spool_failed => return Round::Done,
                Ok(0) if moved == 0 => return Round::Done,
                Ok(_) => {}
            }
        }
    }

    /// Appends a batch taken from the queue to the spool. If the spool cannot take it (a full
    /// disk), the batch goes back to the front of the queue, to be tried again, and the
    /// sequence number of its first record is returned: replay must stop before it.
    fn move_to_spool(&mut self, batch: Encoded) -> Result<(), u64> {
        let Some(first) = batch.records.first().map(|q| q.seq) else {
            return Ok(());
        };
        // The spool keeps lines of JSON; a record too large for a frame is lost, counted and
        // logged.
        let mut kept = Vec::with_capacity(batch.records.len());
        let mut frames: Vec<(u64, Vec<u8>)> = Vec::with_capacity(batch.records.len());
        for q in batch.records {
            match encode(&q.record, &self.shared.redactor) {
                Ok(line) => {
                    frames.push((q.seq, line));
                    kept.push(q);
                }
                Err(e) => {
                    self.shared.metrics.dropped.inc();
                    tracing::error!("prediction record lost: {e}");
                }
            }
        }
        // In chunks, so that a caller spilling into the spool meanwhile waits for one chunk's
        // write at most, not for the whole queue's.
        let mut appended = 0;
        for chunk in frames.chunks(APPEND_CHUNK) {
            let mut spool = lock(&self.shared.spool);
            match spool.append(chunk) {
                Ok(_) => {
                    appended += chunk.len();
                    self.shared.metrics.spooled.inc_by(chunk.len() as u64);
                    self.shared.metrics.set_spool_pending(spool.pending_bytes());
                }
                Err(e) => {
                    drop(spool);
                    let left = kept.split_off(appended);
                    tracing::error!(
                        records = left.len(),
                        "prediction records cannot be spooled ({e}); kept in memory and tried again"
                    );
                    let first_left = left.first().map_or(first, |q| q.seq);
                    let mut intake = lock(&self.shared.intake);
                    for q in left.into_iter().rev() {
                        intake.queue.push_front(q);
                    }
                    return Err(first_left);
                }
            }
        }
        Ok(())
    }

    /// Writes spooled records below `fence` to the store, oldest first; returns how many, or
    /// `Err` when the store (or the spool) failed.
    async fn replay(&mut self, fence: u64) -> Result<u64, ()> {
        let batch_size = self.shared.config.batch_size;
        let mut written = 0;
        loop {
            let Some(slice) = lock(&self.shared.spool).next_to_replay() else {
                return Ok(written);
            };
            if slice.from >= slice.to {
                lock(&self.shared.spool).replayed(slice.start, slice.to, 0);
                continue;
            }
            let to_read = slice.clone();
            let read =
                match tokio::task::spawn_blocking(move || read_slice(&to_read, fence, batch_size))
                    .await
                {
                    Ok(Ok(read)) => read,
                    Ok(Err(e)) => {
                        tracing::error!("prediction-record spool: {e}");
                        return Err(());
                    }
                    Err(e) => {
                        tracing::error!("prediction-record spool: reading failed: {e}");
                        return Err(());
                    }
                };
            if let Some(damage) = &read.damage {
                self.shared.metrics.corrupt.inc();
                tracing::error!(
                    path = %slice.path.display(),
                    "prediction-record spool: {damage}; the rest of the segment is skipped"
                );
            }
            if read.frames.is_empty() && read.damage.is_none() {
                return Ok(written);
            }
            let mut rows = PredictionBatch::new();
            for frame in &read.frames {
                if let Err(e) = rows.push_line(frame.seq, &frame.payload) {
                    self.shared.metrics.corrupt.inc();
                    tracing::error!(
                        seq = frame.seq,
                        "prediction-record spool: a frame is not a record ({e}); skipped"
                    );
                }
            }
            if !rows.is_empty() && self.write(&rows).await.is_err() {
                return Err(());
            }
            written += rows.len() as u64;
            let mut spool = lock(&self.shared.spool);
            spool.replayed(slice.start, read.end, read.frames.len() as u64);
            self.shared.metrics.set_spool_pending(spool.pending_bytes());
        }
    }
}
