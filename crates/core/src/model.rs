//! What a loaded model takes and gives: its format, task, inputs, outputs and feature names.
//!
//! A [`ModelInfo`] is read from the artifact itself when a model loads, so a signature can be
//! inferred from it; [`NamedTensor`] is one output of a prediction with the role it plays.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tensor::{Tensor, TensorSpec};

/// The file format of a model artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// An ONNX graph, run by ONNX Runtime.
    Onnx,
    /// XGBoost's JSON model (`Booster.save_model("m.json")`).
    XgboostJson,
    /// LightGBM's text model (`Booster.save_model("m.txt")`).
    LightgbmText,
}

impl ModelFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Onnx => "onnx",
            ModelFormat::XgboostJson => "xgboost_json",
            ModelFormat::LightgbmText => "lightgbm_text",
        }
    }
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Task {
    /// A classifier over `classes` classes (2 for binary).
    Classification { classes: usize },
    /// One or more continuous targets.
    Regression { targets: usize },
    /// A model whose outputs berth does not interpret (a generic ONNX graph).
    Other,
}

/// The role an output plays, so monitoring knows which one is the label, the score, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputRole {
    /// The predicted class of each row.
    Label,
    /// One probability per class and row.
    Probabilities,
    /// Continuous values: a regression prediction or a raw score.
    Score,
    /// Anything else the graph emits.
    Other,
}

/// A model output's tensor description and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    #[serde(flatten)]
    pub tensor: TensorSpec,
    pub role: OutputRole,
}

/// Everything a loaded model reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub format: ModelFormat,
    pub task: Task,
    /// Number of feature columns in the matrix the model scores.
    pub num_features: usize,
    /// Feature names in column order, when the artifact records them.
    pub feature_names: Option<Vec<String>>,
    /// The artifact's own inputs (for ONNX the graph inputs; for tree files one matrix).
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<OutputSpec>,
}

/// One output of a prediction: its name, role and values (first dimension = rows).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub role: OutputRole,
    pub tensor: Tensor,
}
