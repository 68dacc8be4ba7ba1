//! Registry errors: what a user did wrong (bad name, unknown model, duplicate bytes) apart
//! from what went wrong underneath (store unreachable).

use berth_store::StoreError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RegistryError {
    /// A model, version, alias or endpoint that does not exist; the message names it.
    #[error("{0}")]
    NotFound(String),
    /// Input that cannot be accepted: a bad name, a malformed signature, a model file that
    /// does not load.
    #[error("{0}")]
    Invalid(String),
    /// The same bytes are already registered under this model.
    #[error("{0}")]
    Duplicate(String),
    #[error(transparent)]
    Store(StoreError),
}

impl RegistryError {
    /// Whether the caller can fix it by changing their input (CLI exit code 2, HTTP 4xx).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, RegistryError::Store(_))
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(msg) if msg.contains("does not exist") => {
                RegistryError::NotFound(msg)
            }
            StoreError::Conflict(msg) => RegistryError::Duplicate(msg),
            other => RegistryError::Store(other),
        }
    }
}
