//! Errors of the record path, each a sentence that says what failed and what became of the
//! record.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum RecordsError {
    /// The recorder configuration cannot be used as it is.
    #[error("invalid prediction-record configuration: {0}")]
    Config(String),
    /// A file of the spool could not be read, written, synced or removed.
    #[error("prediction-record spool {path}: {doing} failed: {problem}")]
    Spool {
        path: PathBuf,
        doing: String,
        problem: String,
    },
    /// Another recorder (this process or another) holds the spool folder.
    #[error(
        "the spool folder {0} is in use by another recorder; give each process its own spool folder"
    )]
    SpoolInUse(PathBuf),
    /// The queue was full and the overflow policy is `drop`: the record was dropped and counted
    /// in `berth_records_dropped_total`.
    #[error("record {id} dropped: the record queue is full and the overflow policy is `drop`")]
    Dropped { id: String },
    /// The recorder was shut down; the record was not accepted (counted as dropped).
    #[error("record {id} not accepted: the recorder is shut down")]
    Closed { id: String },
    /// A record could not be encoded for the spool.
    #[error("record {id} cannot be encoded: {problem}")]
    Encode { id: String, problem: String },
}

impl RecordsError {
    pub(crate) fn spool(
        path: impl Into<PathBuf>,
        doing: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> RecordsError {
        let (path, doing) = (path.into(), doing.into());
        move |e| RecordsError::Spool {
            path,
            doing,
            problem: e.to_string(),
        }
    }
}
