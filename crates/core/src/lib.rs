//! Shared vocabulary of berth.
//!
//! Every other crate speaks in these types: a [`FeatureMatrix`] is what a model scores, a
//! [`Tensor`] is what it answers, and a [`ModelInfo`] describes what a loaded model takes and
//! gives so that a signature can be inferred from it. Nothing here does I/O.

mod ids;
mod matrix;
mod model;
mod outputs;
mod signature;
mod tensor;

pub use ids::prediction_id;
pub use matrix::{FeatureMatrix, MatrixError};
pub use model::{ModelFormat, ModelInfo, NamedTensor, OutputRole, OutputSpec, Task};
pub use outputs::{OutputValues, concat_outputs, json_at, output_columns, output_values, text_at};
pub use signature::{DefaultValue, Field, FieldType, OutputField, Signature, SignatureError};
pub use tensor::{Dim, ElementType, Tensor, TensorData, TensorError, TensorSpec};
