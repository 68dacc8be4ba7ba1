//! Errors of loading and running models.

use std::path::PathBuf;

use thiserror::Error;

/// A model file that could not be loaded; the message names the file and the problem.
#[derive(Debug, Error)]
#[error("cannot load model {}: {problem}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub problem: String,
}

impl LoadError {
    pub fn new(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

/// A prediction that could not be made.
#[derive(Debug, Error)]
pub enum PredictError {
    /// The batch does not have the number of columns the model was trained on.
    #[error("model expects {expected} feature columns, got {got}")]
    FeatureCount { expected: usize, got: usize },
    /// A value the model's input type cannot hold (e.g. a NaN for an integer input).
    #[error("input '{input}': {problem}")]
    BadInput { input: String, problem: String },
    /// The backend failed while running the model.
    #[error("model failed to run: {0}")]
    Backend(String),
}
