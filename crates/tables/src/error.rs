//! Errors of reading or writing a table; each names the file, row or column at fault.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TableError {
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
    #[error("{}: {problem}", path.display())]
    Read { path: PathBuf, problem: String },
    #[error("{}: the model needs columns that are not in the file: {}; the file has: {}", path.display(), missing.join(", "), present.join(", "))]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        present: Vec<String>,
    },
    #[error("{}: the model has no feature names, so the file must have exactly {expected} feature columns in model order; it has {got} ({})", path.display(), columns.join(", "))]
    ColumnCount {
        path: PathBuf,
        expected: usize,
        got: usize,
        columns: Vec<String>,
    },
    #[error("{}: row {row}, column '{column}': expected {expected}, got {got}", path.display())]
    Value {
        path: PathBuf,
        row: usize,
        column: String,
        expected: &'static str,
        got: String,
    },
}

impl TableError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TableError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>, problem: impl ToString) -> Self {
        TableError::Read {
            path: path.into(),
            problem: problem.to_string(),
        }
    }
}
