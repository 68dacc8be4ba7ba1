//! Errors of batch scoring; each names the file, row or column at fault.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BatchError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unsupported file type; expected {expected}", path.display())]
    Format {
        path: PathBuf,
        expected: &'static str,
    },
    /// Reading the input failed.
    #[error(transparent)]
    Table(#[from] berth_tables::TableError),
    #[error("{}: rows {first_row}..{last_row}: {source}", path.display())]
    Predict {
        path: PathBuf,
        first_row: usize,
        last_row: usize,
        #[source]
        source: berth_runtime::PredictError,
    },
}

impl BatchError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BatchError::Io {
            path: path.into(),
            source,
        }
    }
}
