//! Errors of batch scoring; each names the file, row or column at fault.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BatchError {
    /// Reading the input or writing the output failed.
    #[error(transparent)]
    Table(#[from] berth_tables::TableError),
    /// An input could not be fetched (from remote storage) to be read.
    #[error("{name}: {problem}")]
    Fetch { name: String, problem: String },
    #[error("{}: rows {first_row}..{last_row}: {source}", path.display())]
    Predict {
        path: PathBuf,
        first_row: usize,
        last_row: usize,
        #[source]
        source: berth_runtime::PredictError,
    },
    /// The version's feature spec could not turn a batch into the model's columns.
    #[error("{}: from row {first_row}: {problem}", path.display())]
    Features {
        path: PathBuf,
        first_row: usize,
        problem: String,
    },
}
