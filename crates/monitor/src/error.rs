//! Errors of monitoring; each names the file or column at fault.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MonitorError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: unsupported file type; expected .csv or .parquet", path.display())]
    Format { path: PathBuf },
    #[error("{}: {problem}", path.display())]
    Read { path: PathBuf, problem: String },
    /// Two profiles that were not built against the same reference layout.
    #[error("cannot merge profiles: {0}")]
    Incompatible(String),
}

impl MonitorError {
    pub(crate) fn read(path: impl Into<PathBuf>, problem: impl ToString) -> Self {
        MonitorError::Read {
            path: path.into(),
            problem: problem.to_string(),
        }
    }

    /// True when the user can fix the problem by changing their input (a missing or unreadable
    /// file), as opposed to a bug or a mismatch between profiles.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, MonitorError::Incompatible(_))
    }
}
