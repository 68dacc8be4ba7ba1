//! Scoring a whole file: read a chunk, predict, write, repeat.

use std::path::{Path, PathBuf};

use berth_runtime::Model;

use crate::BatchError;
use crate::sink::TableWriter;
use berth_tables::{Features, TableReader};

/// Knobs of a scoring run.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Rows per chunk: bounds memory and is the batch size handed to the model.
    pub chunk_rows: usize,
    /// Column carried from input to output as the row id, when the input has it.
    pub id_column: String,
    /// What a row with a value that cannot be read does to the run.
    pub on_error: OnError,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self {
            chunk_rows: 16_384,
            id_column: "id".into(),
            on_error: OnError::Fail,
        }
    }
}

/// What a bad row (a value that is not a number where one belongs) does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnError {
    /// The run stops with an error naming the file, row and column.
    Fail,
    /// The row is left out and written to this rejects file (CSV: file, row, column,
    /// expected, got); the run goes on.
    Skip { rejects: PathBuf },
}

/// What a scoring run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreSummary {
    pub rows: usize,
    pub chunks: usize,
    /// Rows left out and written to the rejects file.
    pub rejected: usize,
}

/// Scores every row of `input` with `model` and writes the predictions to `output` (CSV on
/// standard output when `None`). `progress` is called with the number of rows done so far.
pub fn score_file(
    model: &dyn Model,
    input: &Path,
    output: Option<&Path>,
    options: &ScoreOptions,
    mut progress: impl FnMut(usize),
) -> Result<ScoreSummary, BatchError> {
    let info = model.info();
    let features = Features {
        names: info.feature_names.as_deref(),
        count: info.num_features,
        id_column: &options.id_column,
    };
    let mut reader = TableReader::open(input, &features, options.chunk_rows)?;
    let mut writer = TableWriter::create(output, &options.id_column)?;
    let mut summary = ScoreSummary {
        rows: 0,
        chunks: 0,
        rejected: 0,
    };
    while let Some(chunk) = reader.next_chunk()? {
        let rows = chunk.features.rows();
        let outputs = model
            .predict(&chunk.features)
            .map_err(|source| BatchError::Predict {
                path: PathBuf::from(input),
                first_row: chunk.first_row + 1,
                last_row: chunk.first_row + rows,
                source,
            })?;
        writer.write(chunk.ids.as_deref(), &outputs, rows)?;
        summary.rows += rows;
        summary.chunks += 1;
        progress(summary.rows);
    }
    writer.finish()?;
    Ok(summary)
}
