//! Errors of the stores, each a sentence that says what failed and, where it can, what to do.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The store URL or path is not one berth understands.
    #[error("invalid store location {location:?}: {problem}")]
    Location { location: String, problem: String },
    /// The database cannot be reached or opened.
    #[error("cannot open the metadata store {location}: {problem}")]
    Unreachable { location: String, problem: String },
    /// A query failed.
    #[error("metadata store error while {doing}: {problem}")]
    Database { doing: String, problem: String },
    /// A row that must be unique already exists (e.g. the same bytes registered twice).
    #[error("{0}")]
    Conflict(String),
    /// An artifact could not be written or read.
    #[error("artifact store error at {location}: {problem}")]
    Artifact { location: String, problem: String },
    /// Data at a URL (`s3://...`) could not be listed, read or written.
    #[error("{url}: {problem}")]
    Remote { url: String, problem: String },
    /// An artifact's bytes do not hash to the name they are stored under.
    #[error("artifact {sha256} is corrupt: its bytes hash to {actual}")]
    Corrupt { sha256: String, actual: String },
    /// A value handed to the store is not what it takes.
    #[error("{field}: expected {expected}, got {got}")]
    Invalid {
        field: String,
        expected: String,
        got: String,
    },
    /// A failure injected by a test (feature `failpoints`).
    #[error("injected failure at {0}")]
    Injected(String),
}

impl StoreError {
    pub(crate) fn db(doing: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let doing = doing.into();
        move |e| StoreError::Database {
            doing,
            problem: e.to_string(),
        }
    }
}
