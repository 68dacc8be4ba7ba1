//! The on-disk spool: append-only segment files of [`frame`](crate::frame)s, holding records the
//! store has not taken yet.
//!
//! Every record carries a sequence number, assigned by the recorder in submission order.
//! A segment holds a run of consecutive sequence numbers and is named by the first of them
//! (`00000000000000000042.seg`); a record that does not continue the open segment's run starts a
//! new segment. Runs never interleave, so reading the segments in name order, each from start to
//! end, yields the records in sequence order, even when an older batch reaches the spool after a
//! newer record did (the writer's batch that failed while the queue overflowed).
//!
//! Replay reads the first segment from where it left off; a segment is deleted once every
//! record in it is in the store (the store's insert is idempotent, so a crash between the
//! insert and the delete only writes those records again, harmlessly).
//!
//! On open, every segment is checked frame by frame: a torn or corrupt frame ends the segment,
//! which is truncated there (counted and logged, never a panic); what comes before is replayed.
//! A lock file keeps two recorders off one folder.
//!
//! The folder also names its *writer* (`writer.json`): the id under which the store keeps the
//! folder's high-water mark, and how far sequence numbers are reserved. Numbers only grow,
//! across restarts too: a new run starts past both the records found and the reservation of
//! the run before (a block of [`SEQUENCE_BLOCK`], extended as it runs out), so that the store,
//! which skips every number below the mark, never mistakes a new record for one it has.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::RecordsError;
use crate::frame::{self, Frame, FrameError};

const SEGMENT_SUFFIX: &str = ".seg";
const LOCK_FILE: &str = "spool.lock";
const MAX_OPEN_SEGMENTS: usize = 4;
const WRITER_FILE: &str = "writer.json";

/// Sequence numbers reserved per write of `writer.json`.
pub(crate) const SEQUENCE_BLOCK: u64 = 1 << 32;

/// The folder's writer: its id in the store, and the sequence numbers reserved so far (every
/// number below `reserved` may have been given out).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct WriterLease {
    writer: String,
    reserved: u64,
}

impl WriterLease {
    /// The lease in `dir`, or a new writer's when there is none.
    fn read(dir: &Path) -> Result<WriterLease, RecordsError> {
        let path = dir.join(WRITER_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| RecordsError::Spool {
                path,
                doing: "reading the writer file".into(),
                problem: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(WriterLease {
                writer: uuid::Uuid::now_v7().to_string(),
                reserved: 0,
            }),
            Err(e) => Err(RecordsError::spool(&path, "reading the writer file")(e)),
        }
    }

    /// Replaces the file durably (a temporary file, fsynced, renamed over it, the folder
    /// fsynced).
    fn write(&self, dir: &Path) -> Result<(), RecordsError> {
        let path = dir.join(WRITER_FILE);
        let temp = dir.join(format!("{WRITER_FILE}.tmp"));
        let bytes = serde_json::to_vec(self).map_err(|e| RecordsError::Spool {
            path: path.clone(),
            doing: "writing the writer file".into(),
            problem: e.to_string(),
        })?;
        let doing = "writing the writer file";
        let mut file = File::create(&temp).map_err(RecordsError::spool(&temp, doing))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(RecordsError::spool(&temp, doing))?;
        std::fs::rename(&temp, &path).map_err(RecordsError::spool(&path, doing))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(RecordsError::spool(dir, doing))
    }
}

/// One segment file.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// The sequence number of its last record.
    last_seq: u64,
    /// Bytes of whole frames in the file.
    len: u64,
    /// Where replay has got to: every frame before this offset is in the store.
    replayed_to: u64,
    /// The file, while the segment is open for appends.
    file: Option<Arc<File>>,
}

/// A segment an append wrote to, and what it was before (`None`: created by the append).
#[derive(Debug)]
struct Touched {
    start: u64,
    before: Option<(u64, u64)>,
    frames: u64,
}

/// A torn or corrupt frame found (and cut off) when the spool was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    pub path: PathBuf,
    pub offset: u64,
    pub bytes_cut: u64,
    pub problem: String,
}

/// What opening the spool found.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Whole frames waiting to be replayed.
    pub frames: u64,
    /// The sequence number to give the next record: past every one found, and past every one
    /// an earlier run may have given out.
    pub next_seq: u64,
    pub damaged: Vec<Damage>,
}

/// Files to fsync so that everything appended up to `upto` (a byte count) is durable.
#[derive(Debug, Default, Clone)]
pub(crate) struct SyncJob {
    pub upto: u64,
    files: Vec<Arc<File>>,
    dir: Option<PathBuf>,
}

impl SyncJob {
    /// Whether there is anything to sync.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dir.is_none()
    }

    /// Runs the fsyncs (blocking).
    pub fn run(&self) -> Result<(), RecordsError> {
        for file in &self.files {
            file.sync_data().map_err(|e| RecordsError::Spool {
                path: self.dir.clone().unwrap_or_default(),
                doing: "syncing a segment".into(),
                problem: e.to_string(),
            })?;
        }
        if let Some(dir) = &self.dir {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(RecordsError::spool(dir, "syncing the folder"))?;
        }
        Ok(())
    }
}

/// A stretch of one segment to replay: bytes `from..to` of `path`.
#[derive(Debug, Clone)]
pub(crate) struct ReplaySlice {
    pub start: u64,
    pub path: PathBuf,
    pub from: u64,
    pub to: u64,
}

/// What reading a [`ReplaySlice`] gave.
#[derive(Debug)]
pub(crate) struct ReplayRead {
    pub frames: Vec<Frame>,
    /// The offset after the last frame returned (or after the damage, when there was some).
    pub end: u64,
    /// A frame that could not be read; the rest of the slice is skipped.
    pub damage: Option<String>,
}

/// The spool of one recorder.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    segment_bytes: u64,
    segments: BTreeMap<u64, Segment>,
    /// Segments open for appends (their starts), newest last; at most [`MAX_OPEN_SEGMENTS`].
    /// More than one: the writer's batch and a spilling caller's record each continue their
    /// own run without starting a new file at every turn.
    open: Vec<u64>,
    unsynced: Vec<Arc<File>>,
    dir_unsynced: bool,
    /// Bytes appended by this process: the tickets of group commit.
    appended: u64,
    /// Bytes of frames not yet replayed.
    pending_bytes: u64,
    /// Frames not yet replayed.
    pending_frames: u64,
    /// Held while the spool is in use; `None` once released.
    lock: Option<File>,
    lease: WriterLease,
}

fn segment_path(dir: &Path, start: u64) -> PathBuf {
    dir.join(format!("{start:020}{SEGMENT_SUFFIX}"))
}

/// Checks one segment frame by frame; truncates it after its last whole frame if the rest is
/// torn or corrupt. Returns (frames, last seq, length, damage).
fn check_segment(path: &Path) -> Result<(u64, Option<u64>, u64, Option<Damage>), RecordsError> {
    let file = File::open(path).map_err(RecordsError::spool(path, "opening a segment"))?;
    let size = file
        .metadata()
        .map_err(RecordsError::spool(path, "reading a segment's size"))?
        .len();
    let mut reader = BufReader::new(file);
    let (mut frames, mut last, mut offset) = (0u64, None, 0u64);
    let damage = loop {
        match frame::read_frame(&mut reader) {
            Ok(Some(f)) => {
                frames += 1;
                last = Some(f.seq);
                offset += f.encoded_len();
            }
            Ok(None) => break None,
            Err(FrameError::Io(e)) => {
                return Err(RecordsError::spool(path, "reading a segment")(e));
            }
            Err(e) => {
                break Some(Damage {
                    path: path.to_path_buf(),
                    offset,
                    bytes_cut: size.saturating_sub(offset),
                    problem: e.to_string(),
                });
            }
        }
    };
    if damage.is_some() {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(RecordsError::spool(path, "opening a damaged segment"))?;
        file.set_len(offset)
            .and_then(|()| file.sync_all())
            .map_err(RecordsError::spool(path, "truncating a damaged segment"))?;
    }
    Ok((frames, last, offset, damage))
}

impl Spool {
    /// Opens (creating) the spool folder, takes its lock, and checks every segment.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Self, Recovered), RecordsError> {
        std::fs::create_dir_all(dir).map_err(RecordsError::spool(dir, "creating the folder"))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(RecordsError::spool(&lock_path, "opening the lock file"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RecordsError::SpoolInUse(dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(RecordsError::spool(&lock_path, "locking the folder")(e));
            }
        }
        let mut starts = Vec::new();
        for entry in
            std::fs::read_dir(dir).map_err(RecordsError::spool(dir, "listing the folder"))?
        {
            let entry = entry.map_err(RecordsError::spool(dir, "listing the folder"))?;
            let name = entry.file_name();
            let Some(start) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            starts.push(start);
        }
        starts.sort_unstable();

        let mut spool = Self {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
            segments: BTreeMap::new(),
            open: Vec::new(),
            unsynced: Vec::new(),
            dir_unsynced: false,
            appended: 0,
            pending_bytes: 0,
            pending_frames: 0,
            lock: Some(lock),
            lease: WriterLease::read(dir)?,
        };
        let mut recovered = Recovered::default();
        for start in starts {
            let path = segment_path(dir, start);
            let (frames, last, len, damage) = check_segment(&path)?;
            recovered.damaged.extend(damage);
            let Some(last_seq) = last else {
                std::fs::remove_file(&path)
                    .map_err(RecordsError::spool(&path, "removing an empty segment"))?;
                continue;
            };
            recovered.frames += frames;
            recovered.next_seq = recovered.next_seq.max(last_seq.saturating_add(1));
            spool.pending_frames += frames;
            spool.pending_bytes += len;
            spool.segments.insert(
                start,
                Segment {
                    path,
                    last_seq,
                    len,
                    replayed_to: 0,
                    file: None,
                },
            );
        }
        recovered.next_seq = recovered.next_seq.max(spool.lease.reserved);
        spool.reserve(recovered.next_seq)?;
        Ok((spool, recovered))
    }

    /// Sequence numbers below this one are reserved.
    pub fn reserved(&self) -> u64 {
        self.lease.reserved
    }

    /// The writer id the store knows this folder's records by.
    pub fn writer(&self) -> &str {
        &self.lease.writer
    }

    /// Makes sure sequence number `seq` is reserved (writing a new reservation when it is not).
    pub fn reserve(&mut self, seq: u64) -> Result<(), RecordsError> {
        if seq < self.lease.reserved {
            return Ok(());
        }
        let lease = WriterLease {
            writer: self.lease.writer.clone(),
            reserved: seq.saturating_add(SEQUENCE_BLOCK),
        };
        lease.write(&self.dir)?;
        self.lease = lease;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether every record that reached the spool is in the store.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn pending_bytes(&self) -> u64 {
        self.pending_bytes
    }

    pub fn pending_frames(&self) -> u64 {
        self.pending_frames
    }

    /// The smallest sequence number in the spool, if any.
    pub fn first_seq(&self) -> Option<u64> {
        self.segments.keys().next().copied()
    }

    /// Bytes appended by this process so far (the ticket of the latest append).
    pub fn appended(&self) -> u64 {
        self.appended
    }

    fn released_error(&self) -> RecordsError {
        RecordsError::Spool {
            path: self.dir.clone(),
            doing: "appending".into(),
            problem: "the spool was released".into(),
        }
    }

    /// Starts a new segment for a run beginning at `seq`.
    fn create_segment(
        &mut self,
        seq: u64,
        touched: &mut Vec<Touched>,
    ) -> Result<u64, RecordsError> {
        let path = segment_path(&self.dir, seq);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(RecordsError::spool(&path, "creating a segment"))?;
        let file = Arc::new(file);
        self.unsynced.push(file.clone());
        self.dir_unsynced = true;
        if self.open.len() >= MAX_OPEN_SEGMENTS {
            let oldest = self.open.remove(0);
            if let Some(sealed) = self.segments.get_mut(&oldest) {
                sealed.file = None;
            }
        }
        self.segments.insert(
            seq,
            Segment {
                path,
                last_seq: seq,
                len: 0,
                replayed_to: 0,
                file: Some(file),
            },
        );
        self.open.push(seq);
        touched.push(Touched {
            start: seq,
            before: None,
            frames: 0,
        });
        Ok(seq)
    }

    /// Appends `frames` (sequence number, payload), all or none; returns the group-commit
    /// ticket: once [`SyncJob::upto`] of a completed sync reaches it, they are durable.
    pub fn append(&mut self, frames: &[(u64, Vec<u8>)]) -> Result<u64, RecordsError> {
        if self.lock.is_none() {
            return Err(self.released_error());
        }
        let mut touched = Vec::new();
        let result = self.append_frames(frames, &mut touched);
        if result.is_err() {
            self.undo(touched);
        }
        result
    }

    fn append_frames(
        &mut self,
        frames: &[(u64, Vec<u8>)],
        touched: &mut Vec<Touched>,
    ) -> Result<u64, RecordsError> {
        let mut buffer = Vec::new();
        let mut buffered = 0u64;
        let mut current: Option<u64> = None;
        let mut tail = 0u64;
        for (seq, payload) in frames {
            if let Some(start) = current {
                let len = self.segments.get(&start).map_or(0, |s| s.len);
                let room = len + (buffer.len() as u64) < self.segment_bytes;
                if tail.checked_add(1) != Some(*seq) || !room {
                    self.write_buffer(start, tail, buffered, &mut buffer, touched)?;
                    buffered = 0;
                    current = None;
                }
            }
            if current.is_none() {
                let continues_open = self.open.iter().copied().find(|start| {
                    self.segments.get(start).is_some_and(|seg| {
                        seg.file.is_some()
                            && seg.len < self.segment_bytes
                            && seg.last_seq.checked_add(1) == Some(*seq)
                    })
                });
                let start = match continues_open {
                    Some(start) => start,
                    None => self.create_segment(*seq, touched)?,
                };
                current = Some(start);
            }
            frame::encode(*seq, payload, &mut buffer);
            buffered += 1;
            tail = *seq;
        }
        if let Some(start) = current {
            self.write_buffer(start, tail, buffered, &mut buffer, touched)?;
        }
        Ok(self.appended)
    }

    /// Writes `buffer` (`frames` whole frames ending with `last_seq`) to segment `start`.
    fn write_buffer(
        &mut self,
        start: u64,
        last_seq: u64,
        frames: u64,
        buffer: &mut Vec<u8>,
        touched: &mut Vec<Touched>,
    ) -> Result<(), RecordsError> {
        if buffer.is_empty() {
            return Ok(());
        }
        let released = self.released_error();
        let Some(seg) = self.segments.get_mut(&start) else {
            return Err(released);
        };
        let Some(file) = seg.file.clone() else {
            return Err(released);
        };
        if !touched.iter().any(|t| t.start == start) {
            touched.push(Touched {
                start,
                before: Some((seg.len, seg.last_seq)),
                frames: 0,
            });
        }
        (&*file)
            .write_all(buffer)
            .map_err(RecordsError::spool(&seg.path, "appending to a segment"))?;
        let bytes = buffer.len() as u64;
        seg.len += bytes;
        seg.last_seq = last_seq;
        self.appended += bytes;
        self.pending_bytes += bytes;
        self.pending_frames += frames;
        if let Some(t) = touched.iter_mut().find(|t| t.start == start) {
            t.frames += frames;
        }
        if !self.unsynced.iter().any(|f| Arc::ptr_eq(f, &file)) {
            self.unsynced.push(file);
        }
        buffer.clear();
        Ok(())
    }

    /// Puts the touched segments back as they were: truncates what was written, removes
    /// segments created, and closes them for appends.
    fn undo(&mut self, touched: Vec<Touched>) {
        for t in touched {
            let Some(seg) = self.segments.get_mut(&t.start) else {
                continue;
            };
            let (len, last_seq) = t.before.unwrap_or((0, t.start));
            let written = seg.len.saturating_sub(len);
            if let Err(e) = OpenOptions::new()
                .write(true)
                .open(&seg.path)
                .and_then(|f| f.set_len(len))
            {
                tracing::error!(path = %seg.path.display(), "cannot undo a failed spool append: {e}");
            }
            self.pending_bytes = self.pending_bytes.saturating_sub(written);
            self.pending_frames = self.pending_frames.saturating_sub(t.frames);
            self.appended = self.appended.saturating_sub(written);
            seg.len = len;
            seg.last_seq = last_seq;
            seg.file = None;
            self.open.retain(|s| *s != t.start);
            if t.before.is_none() || len == 0 {
                let path = seg.path.clone();
                self.segments.remove(&t.start);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// What must be fsynced for everything appended so far to be durable.
    pub fn take_unsynced(&mut self) -> SyncJob {
        SyncJob {
            upto: self.appended,
            files: std::mem::take(&mut self.unsynced),
            dir: std::mem::take(&mut self.dir_unsynced).then(|| self.dir.clone()),
        }
    }

    /// Gives back a sync job that failed, to be retried by the next.
    pub fn restore_unsynced(&mut self, job: SyncJob) {
        self.unsynced.extend(job.files);
        self.dir_unsynced |= job.dir.is_some();
    }

    /// The next stretch to replay: the rest of the first segment.
    pub fn next_to_replay(&self) -> Option<ReplaySlice> {
        let (start, seg) = self.segments.iter().next()?;
        Some(ReplaySlice {
            start: *start,
            path: seg.path.clone(),
            from: seg.replayed_to,
            to: seg.len,
        })
    }

    /// Records that the frames of segment `start` before `end` are in the store (`frames` of
    /// them); deletes the segment once all of it is, closing it for appends first.
    pub fn replayed(&mut self, start: u64, end: u64, frames: u64) {
        let Some(seg) = self.segments.get_mut(&start) else {
            return;
        };
        let advanced = end.saturating_sub(seg.replayed_to);
        seg.replayed_to = seg.replayed_to.max(end);
        self.pending_bytes = self.pending_bytes.saturating_sub(advanced);
        self.pending_frames = self.pending_frames.saturating_sub(frames);
        if seg.replayed_to < seg.len {
            return;
        }
        self.open.retain(|s| *s != start);
        let path = seg.path.clone();
        self.segments.remove(&start);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Left behind, it is replayed again at the next start: harmless (idempotent).
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot remove a replayed spool segment: {e}")
            }
        }
    }

    /// Lets go of the folder (closes the files, drops the lock), as a killed process would.
    pub fn release(&mut self) {
        self.segments.clear();
        self.unsynced.clear();
        self.open.clear();
        self.lock = None;
    }
}

/// Reads the frames of `slice` with sequence numbers below `fence`, at most `max_frames`
/// (blocking). A frame at or past the fence ends the read without being consumed.
pub(crate) fn read_slice(
    slice: &ReplaySlice,
    fence: u64,
    max_frames: usize,
) -> Result<ReplayRead, RecordsError> {
    let mut file =
        File::open(&slice.path).map_err(RecordsError::spool(&slice.path, "opening a segment"))?;
    file.seek(SeekFrom::Start(slice.from))
        .map_err(RecordsError::spool(&slice.path, "reading a segment"))?;
    let mut reader = BufReader::new(file).take(slice.to.saturating_sub(slice.from));
    let mut read = ReplayRead {
        frames: Vec::new(),
        end: slice.from,
        damage: None,
    };
    while read.frames.len() < max_frames {
        match frame::read_frame(&mut reader) {
            Ok(Some(f)) if f.seq >= fence => break,
            Ok(Some(f)) => {
                read.end += f.encoded_len();
                read.frames.push(f);
            }
            Ok(None) => break,
            Err(FrameError::Io(e)) => {
                return Err(RecordsError::spool(&slice.path, "reading a segment")(e));
            }
            Err(e) => {
                read.damage = Some(format!("{e} at byte {}", read.end));
                read.end = slice.to;
                break;
            }
        }
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(seq: u64) -> (u64, Vec<u8>) {
        (seq, format!("record {seq}").into_bytes())
    }

    fn replay_all(spool: &mut Spool) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(slice) = spool.next_to_replay() {
            let read = read_slice(&slice, u64::MAX, 3).expect("read");
            seqs.extend(read.frames.iter().map(|f| f.seq));
            spool.replayed(slice.start, read.end, read.frames.len() as u64);
        }
        seqs
    }

    #[test]
    fn runs_that_arrive_out_of_order_replay_in_sequence_order() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut spool, recovered) = Spool::open(dir.path(), 1 << 20).expect("open");
        assert_eq!(recovered.next_seq, 0);
        // The queue overflowed at 10 while the writer held 0..5 and 5..10 was still queued.
        spool.append(&[payload(10), payload(11)]).expect("spill");
        spool
            .append(&(0..5).map(payload).collect::<Vec<_>>())
            .expect("failed batch");
        spool
            .append(&(5..10).map(payload).collect::<Vec<_>>())
            .expect("rest of queue");
        spool
            .append(&[payload(12)])
            .expect("continues the run of 10, 11");
        assert_eq!(spool.pending_frames(), 13);
        assert_eq!(replay_all(&mut spool), (0..13).collect::<Vec<_>>());
        assert!(spool.is_empty());
        assert_eq!(spool.pending_bytes(), 0);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(SEGMENT_SUFFIX))
            .collect();
        assert!(left.is_empty(), "replayed segments are deleted");
    }

    #[test]
    fn segments_roll_over_at_their_size_and_reopen_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let (mut spool, _) = Spool::open(dir.path(), 64).expect("open");
            for seq in 0..20 {
                spool.append(&[payload(seq)]).expect("append");
            }
            assert!(
                spool.segments.len() > 3,
                "{} segments",
                spool.segments.len()
            );
        }
        let (mut spool, recovered) = Spool::open(dir.path(), 64).expect("reopen");
        // The first run may have given out every number it reserved.
        assert_eq!((recovered.frames, recovered.next_seq), (20, SEQUENCE_BLOCK));
        assert!(recovered.damaged.is_empty());
        assert_eq!(replay_all(&mut spool), (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn sequence_numbers_grow_across_runs_under_one_writer() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut spool, recovered) = Spool::open(dir.path(), 1 << 20).expect("open");
        let writer = spool.writer().to_string();
        assert_eq!((recovered.next_seq, spool.reserved()), (0, SEQUENCE_BLOCK));
        // Running out extends the reservation, on disk.
        spool.reserve(SEQUENCE_BLOCK).expect("extend");
        assert_eq!(spool.reserved(), 2 * SEQUENCE_BLOCK);
        spool.release();
        drop(spool);
        let (spool, recovered) = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(spool.writer(), writer);
        assert_eq!(recovered.next_seq, 2 * SEQUENCE_BLOCK);
        assert_eq!(spool.reserved(), 3 * SEQUENCE_BLOCK);
        // A folder without its writer file is a new writer, numbering from zero.
        let other = tempfile::tempdir().expect("dir");
        let (fresh, recovered) = Spool::open(other.path(), 1 << 20).expect("open");
        assert_ne!(fresh.writer(), writer);
        assert_eq!(recovered.next_seq, 0);
    }

    #[test]
    fn a_second_spool_on_one_folder_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut first, _) = Spool::open(dir.path(), 1 << 20).expect("open");
        let err = Spool::open(dir.path(), 1 << 20).expect_err("locked");
        assert!(matches!(err, RecordsError::SpoolInUse(_)), "{err}");
        first.release();
        Spool::open(dir.path(), 1 << 20).expect("free again");
    }

    #[test]
    fn the_fence_stops_replay_before_newer_records() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut spool, _) = Spool::open(dir.path(), 1 << 20).expect("open");
        spool
            .append(&(0..6).map(payload).collect::<Vec<_>>())
            .expect("append");
        let slice = spool.next_to_replay().expect("slice");
        let read = read_slice(&slice, 4, 100).expect("read");
        assert_eq!(
            read.frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        spool.replayed(slice.start, read.end, 4);
        assert_eq!(spool.pending_frames(), 2);
        assert_eq!(replay_all(&mut spool), vec![4, 5]);
    }
}
