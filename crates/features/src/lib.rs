//! berth's feature pipeline: one feature spec, one engine, for training data, batch scoring and
//! serving alike (issue 7).
//!
//! A [`FeatureSpec`] (YAML, [`spec`]) says per input field its type, imputation, clipping and
//! transform; [`fit`] computes the parameters it leaves open from data; [`Pipeline::compile`]
//! turns a fitted spec into a pipeline that [`Pipeline::apply`]s to Arrow record batches,
//! column by column, producing the model's [`berth_core::FeatureMatrix`] with
//! [`Pipeline::output_names`] as its columns. The same compiled pipeline gives the same numbers
//! bit for bit whether the rows come in one batch or many.

pub mod columns;
pub mod expr;
pub mod fit;
pub mod pipeline;
pub mod spec;

pub use fit::fit;
pub use pipeline::{Applied, BadRow, OTHER, Pipeline};
pub use spec::{FeatureSpec, FieldKind, FieldSpec, SpecProblem, Transform};

/// Why a spec could not be fitted, compiled or applied.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("invalid feature spec: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Spec(Vec<SpecProblem>),
    #[error("the feature spec is not fitted: {} (run `berth features fit`)", .0.join(", "))]
    Unfitted(Vec<String>),
    #[error("field {field}: no values to fit {parameter} on")]
    NothingToFit { field: String, parameter: String },
    #[error("field {field}: not in the data (columns: {})", .columns.join(", "))]
    MissingColumn { field: String, columns: Vec<String> },
    #[error("field {field}: expected {expected}, got {got}")]
    Type {
        field: String,
        expected: &'static str,
        got: String,
    },
}
