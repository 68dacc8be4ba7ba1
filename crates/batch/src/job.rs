//! Scoring a data set — a file, a folder of files or a `*` pattern — with a registered
//! version: its own feature spec when it has one, then its model; predictions with the row id,
//! the version and a prediction id per row, in one output file. `--shard i/N` takes a
//! deterministic share of the input files, so N workers split one data set.

use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use berth_core::{FeatureMatrix, NamedTensor};
use berth_features::Pipeline;
use berth_runtime::Model;
use std::io::Write;

use berth_tables::{Features, RejectedRow, TableError, TableReader};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::score::OnError;
use crate::sink::{TableWriter, csv_escape};
use crate::{BatchError, ScoreOptions, ScoreSummary};

/// What scores the rows: a model, the feature spec in front of it (if any), and the version
/// name written with every prediction.
pub struct ScoringVersion<'a> {
    pub model: &'a dyn Model,
    pub features: Option<&'a Pipeline>,
    /// `model/version`.
    pub label: String,
}

/// Which share of the input files a worker scores: shard `index` of `count` (0-based); `i/N`
/// as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl TryFrom<String> for Shard {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        format!("{}/{}", s.index, s.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `i/N`, with `0 <= i < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected i/N with 0 <= i < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Whether a file name has a data file's extension (.parquet, .csv, .jsonl, ...).
pub fn is_data(name: &Path) -> bool {
    berth_tables::InputFormat::from_path(name).is_ok()
}

/// `*` matches any run of characters (the only wildcard).
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| matches(rest, &tail[i..]))
        }
    }
}

/// The files `input` names, sorted: the file itself, the data files of a folder, or the files
/// matching a `*` pattern in the last part of the path; then this shard's share of them.
pub fn input_files(input: &Path, shard: Option<Shard>) -> Result<Vec<PathBuf>, BatchError> {
    let text = input.to_string_lossy();
    let mut files = if text.contains('*') {
        let dir = input
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let pattern = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        list(dir)?
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| matches(&pattern, &n.to_string_lossy()))
            })
            .collect()
    } else if input.is_dir() {
        list(input)?.into_iter().filter(|p| is_data(p)).collect()
    } else {
        vec![input.to_path_buf()]
    };
    files.sort();
    if files.is_empty() {
        return Err(TableError::Format {
            path: input.to_path_buf(),
            expected: "a data file, a folder with .parquet/.csv/.jsonl files, or a pattern matching some",
        }
        .into());
    }
    Ok(shard_of(files, shard))
}

/// The share of sorted `files` that `shard` scores (all of them without one).
pub fn shard_of<T>(files: Vec<T>, shard: Option<Shard>) -> Vec<T> {
    match shard {
        None => files,
        Some(s) => files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % s.count == s.index)
            .map(|(_, f)| f)
            .collect(),
    }
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, BatchError> {
    let entries = std::fs::read_dir(dir).map_err(|e| TableError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| TableError::io(dir, e))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    Ok(files)
}

/// Rows in `files` when knowable without reading them (Parquet metadata), for a progress bar.
pub fn count_rows(files: &[PathBuf]) -> Option<u64> {
    files.iter().try_fold(0u64, |total, path| {
        let file = std::fs::File::open(path).ok()?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
        Some(total + u64::try_from(builder.metadata().file_metadata().num_rows()).ok()?)
    })
}

/// One chunk just scored, as [`score_files`] reports it.
pub struct ScoredChunk<'a> {
    /// Rows scored so far, this chunk's included.
    pub rows_done: usize,
    /// The matrix the model scored (after the feature spec, when the version has one).
    pub inputs: &'a FeatureMatrix,
    /// The raw rows the feature spec read, when the version has one.
    pub raw: Option<&'a RecordBatch>,
    pub outputs: &'a [NamedTensor],
}

/// A chunk read (and, for a version with a feature spec, turned into the model's columns),
/// ready to score.
struct ReadChunk {
    path: PathBuf,
    /// 0-based row of the file of the chunk's first row.
    first_row: usize,
    ids: Option<Vec<String>>,
    matrix: FeatureMatrix,
    raw: Option<RecordBatch>,
    /// Rows left out (with `--on-error skip`), in file order, before this chunk's rows.
    rejected: Vec<RejectedRow>,
}

/// A chunk scored, for the writer.
struct ScoredRows {
    ids: Option<Vec<String>>,
    outputs: Vec<NamedTensor>,
    rows: usize,
}

/// Chunks in flight between two stages: enough to keep each busy, few enough to bound memory.
const IN_FLIGHT: usize = 2;

/// Scores every row of `files` with `version`, into one output (CSV on standard output when
/// `None`); `after_chunk` sees each chunk once it is scored (for progress and monitoring).
/// Files are taken one at a time, so an iterator can fetch each when it is due.
///
/// Three stages overlap: one thread reads (and applies the feature spec), this one scores
/// (the model using its own threads), one formats and writes; each hands the next at most
/// [`IN_FLIGHT`] chunks, so memory stays bounded by the chunk size.
pub fn score_files<I>(
    version: &ScoringVersion<'_>,
    files: I,
    output: Option<&Path>,
    options: &ScoreOptions,
    mut after_chunk: impl FnMut(ScoredChunk<'_>),
) -> Result<ScoreSummary, BatchError>
where
    I: IntoIterator<Item = Result<PathBuf, BatchError>>,
    I::IntoIter: Send,
{
    if let Some(path) = output {
        crate::sink::OutputFormat::from_path(path)?;
    }
    let mut rejects = match &options.on_error {
        OnError::Fail => None,
        OnError::Skip { rejects } => Some(Rejects::create(rejects)?),
    };
    let skip_bad_rows = rejects.is_some();
    let mut summary = ScoreSummary {
        rows: 0,
        chunks: 0,
        rejected: 0,
    };
    let files = files.into_iter();
    std::thread::scope(|scope| {
        let (read_tx, read_rx) =
            std::sync::mpsc::sync_channel::<Result<ReadChunk, BatchError>>(IN_FLIGHT);
        // `None` says every chunk was scored: only then is the output completed.
        let (write_tx, write_rx) = std::sync::mpsc::sync_channel::<Option<ScoredRows>>(IN_FLIGHT);
        let features = version.features;
        let info = version.model.info();
        let reader = scope.spawn(move || {
            let sent = read_files(
                files,
                features,
                info,
                options,
                skip_bad_rows,
                &mut |chunk| read_tx.send(Ok(chunk)).is_ok(),
            );
            if let Err(e) = sent {
                // The scorer may be gone already (it failed first); its error is the one told.
                let _ = read_tx.send(Err(e));
            }
        });
        let label = version.label.as_str();
        let writer = scope.spawn(move || -> Result<(), BatchError> {
            let mut writer = TableWriter::create(output, &options.id_column)?.stamped(label);
            for scored in write_rx {
                match scored {
                    Some(scored) => {
                        if let Err(e) =
                            writer.write(scored.ids.as_deref(), &scored.outputs, scored.rows)
                        {
                            writer.abandon();
                            return Err(e);
                        }
                    }
                    None => return writer.finish(),
                }
            }
            // The run failed before the end: no output that looks finished.
            writer.abandon();
            Ok(())
        });
        let scored =
            (|| -> Result<(), BatchError> {
                for chunk in read_rx {
                    let chunk = chunk?;
                    if let Some(rejects) = &mut rejects {
                        rejects.write(&chunk.path, &chunk.rejected)?;
                    }
                    let rows = chunk.matrix.rows();
                    if rows == 0 {
                        continue;
                    }
                    let outputs = version.model.predict(&chunk.matrix).map_err(|source| {
                        BatchError::Predict {
                            path: chunk.path.clone(),
                            first_row: chunk.first_row + 1,
                            last_row: chunk.first_row + rows,
                            source,
                        }
                    })?;
                    summary.rows += rows;
                    summary.chunks += 1;
                    after_chunk(ScoredChunk {
                        rows_done: summary.rows,
                        inputs: &chunk.matrix,
                        raw: chunk.raw.as_ref(),
                        outputs: &outputs,
                    });
                    let scored = ScoredRows {
                        ids: chunk.ids,
                        outputs,
                        rows,
                    };
                    if write_tx.send(Some(scored)).is_err() {
                        // The writer stopped: its error is the one told.
                        return Ok(());
                    }
                }
                // Every chunk is scored: the writer may complete the output.
                let _ = write_tx.send(None);
                Ok(())
            })();
        drop(write_tx);
        // A panic is a bug: passed on as it is.
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // Reading stops once its channel is gone.
        if let Err(panic) = reader.join() {
            std::panic::resume_unwind(panic);
        }
        scored.and(written)
    })?;
    if let Some(rejects) = rejects {
        summary.rejected = rejects.finish()?;
    }
    Ok(summary)
}

/// Reads `files` chunk by chunk into the model's matrix, handing each to `send` (which says
/// whether to go on). A bad row fails the read unless `skip_bad_rows`, when it travels with the
/// next chunk as rejected.
fn read_files(
    files: impl Iterator<Item = Result<PathBuf, BatchError>>,
    features: Option<&Pipeline>,
    info: &berth_core::ModelInfo,
    options: &ScoreOptions,
    skip_bad_rows: bool,
    send: &mut dyn FnMut(ReadChunk) -> bool,
) -> Result<(), BatchError> {
    for path in files {
        let path = path?;
        match features {
            Some(pipeline) => {
                let mut first_row = 0;
                for batch in berth_tables::record_batches(&path, options.chunk_rows)? {
                    let batch = batch?;
                    let applied =
                        pipeline
                            .apply_skipping(&batch)
                            .map_err(|e| BatchError::Features {
                                path: path.clone(),
                                first_row: first_row + 1,
                                problem: e.to_string(),
                            })?;
                    let rejected: Vec<RejectedRow> = applied
                        .bad
                        .into_iter()
                        .map(|b| RejectedRow {
                            row: first_row + b.row + 1,
                            column: b.field,
                            expected: b.expected,
                            got: b.got,
                        })
                        .collect();
                    if let (false, Some(first)) = (skip_bad_rows, rejected.first()) {
                        return Err(TableError::Value {
                            path: path.clone(),
                            row: first.row,
                            column: first.column.clone(),
                            expected: first.expected,
                            got: first.got.clone(),
                        }
                        .into());
                    }
                    let ids = berth_tables::id_texts(&batch, &options.id_column)
                        .map(|ids| applied.kept.iter().map(|&i| ids[i].clone()).collect());
                    let rows = batch.num_rows();
                    let chunk = ReadChunk {
                        path: path.clone(),
                        first_row,
                        ids,
                        matrix: applied.matrix,
                        raw: Some(batch),
                        rejected,
                    };
                    if !send(chunk) {
                        return Ok(());
                    }
                    first_row += rows;
                }
            }
            None => {
                let features = Features {
                    names: info.feature_names.as_deref(),
                    count: info.num_features,
                    id_column: &options.id_column,
                };
                let mut reader = TableReader::open(&path, &features, options.chunk_rows)?;
                if skip_bad_rows {
                    reader = reader.skip_bad_rows();
                }
                while let Some(chunk) = reader.next_chunk()? {
                    let chunk = ReadChunk {
                        path: path.clone(),
                        first_row: chunk.first_row,
                        ids: chunk.ids,
                        matrix: chunk.features,
                        raw: None,
                        rejected: chunk.rejected,
                    };
                    if !send(chunk) {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

/// The rejects file: one CSV line per row left out.
struct Rejects {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    count: usize,
}

impl Rejects {
    fn create(path: &Path) -> Result<Self, BatchError> {
        let file = std::fs::File::create(path).map_err(|e| TableError::io(path, e))?;
        let mut out = std::io::BufWriter::new(file);
        writeln!(out, "file,row,column,expected,got").map_err(|e| TableError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            count: 0,
        })
    }

    fn write(&mut self, file: &Path, rows: &[RejectedRow]) -> Result<(), BatchError> {
        for r in rows {
            let cells = [
                file.display().to_string(),
                r.row.to_string(),
                r.column.clone(),
                r.expected.to_string(),
                r.got.clone(),
            ];
            let line: Vec<String> = cells.iter().map(|c| csv_escape(c)).collect();
            writeln!(self.out, "{}", line.join(",")).map_err(|e| TableError::io(&self.path, e))?;
            self.count += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<usize, BatchError> {
        self.out
            .flush()
            .map_err(|e| TableError::io(&self.path, e))?;
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_shards() {
        assert!(matches("part-*.parquet", "part-0001.parquet"));
        assert!(!matches("part-*.parquet", "part-0001.csv"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "a-b-c"));
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "x/2", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_split_the_files_without_overlap() {
        let dir = tempfile::tempdir().expect("dir");
        for i in 0..7 {
            std::fs::write(dir.path().join(format!("part-{i}.csv")), "a\n1\n").expect("write");
        }
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        let all = input_files(dir.path(), None).expect("files");
        assert_eq!(all.len(), 7, "the folder's data files only");
        let mut seen: Vec<PathBuf> = (0..3)
            .flat_map(|i| {
                input_files(dir.path(), Some(Shard { index: i, count: 3 })).expect("shard")
            })
            .collect();
        seen.sort();
        assert_eq!(seen, all);
        let pattern = dir.path().join("part-[*");
        assert!(input_files(&pattern, None).is_err(), "nothing matches");
    }
}
