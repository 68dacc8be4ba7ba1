//! A model's signature: the typed fields it takes and the outputs it gives.
//!
//! Serving validates requests against it (every problem listed as field, expected, got), and
//! the registry stores one with every version: inferred from the artifact or written by hand
//! in YAML, e.g.
//!
//! ```yaml
//! inputs:
//!   - {name: tenure_months, type: number, min: 0, max: 600}
//!   - {name: plan, type: category, values: [basic, standard, premium]}
//!   - {name: has_partner, type: bool, required: false, default: false}
//! outputs:
//!   - {name: probabilities, type: number}
//! ```

use serde::{Deserialize, Serialize};

use crate::model::{ModelInfo, OutputRole};
use crate::tensor::ElementType;

/// The type of one input field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldType {
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    Bool,
    /// One of a fixed set of values.
    Category {
        values: Vec<String>,
    },
    Text,
}

/// A value given to a field that a request leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DefaultValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

/// One input field of a signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(flatten)]
    pub field_type: FieldType,
    /// Whether a request must give the field (default: true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<DefaultValue>,
    /// Whether the field may be null / missing in a row the model still scores (tree models
    /// and imputing pipelines accept missing values).
    #[serde(default, skip_serializing_if = "is_false")]
    pub nullable: bool,
}

impl Field {
    /// A field a request must give, with no default, that may not be missing.
    pub fn new(name: impl Into<String>, field_type: FieldType) -> Self {
        Self {
            name: name.into(),
            field_type,
            required: true,
            default: None,
            nullable: false,
        }
    }

    /// The same field, accepting missing values (null or NaN) in the rows it scores.
    pub fn nullable(self) -> Self {
        Self {
            nullable: true,
            ..self
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One output of a signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputField {
    pub name: String,
    pub datatype: ElementType,
    #[serde(default = "other_role")]
    pub role: OutputRole,
}

fn other_role() -> OutputRole {
    OutputRole::Other
}

/// Inputs and outputs of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    pub inputs: Vec<Field>,
    #[serde(default)]
    pub outputs: Vec<OutputField>,
}

/// A signature that contradicts itself or the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signature: {0}")]
pub struct SignatureError(pub String);

impl Signature {
    /// The signature a model file implies: one nullable number per feature column (named by
    /// the model, else `f0, f1, ...`), and the model's outputs.
    pub fn infer(info: &ModelInfo) -> Signature {
        let names: Vec<String> = match &info.feature_names {
            Some(names) => names.clone(),
            None => (0..info.num_features).map(|i| format!("f{i}")).collect(),
        };
        Signature {
            inputs: names
                .into_iter()
                .map(|name| {
                    Field::new(
                        name,
                        FieldType::Number {
                            min: None,
                            max: None,
                        },
                    )
                    .nullable()
                })
                .collect(),
            outputs: info
                .outputs
                .iter()
                .map(|o| OutputField {
                    name: o.tensor.name.clone(),
                    datatype: o.tensor.element_type,
                    role: o.role,
                })
                .collect(),
        }
    }

    /// Checks the signature on its own and against the model it describes: names unique and
    /// non-empty, ranges ordered, categories non-empty, defaults of the field's type, and one
    /// field per model feature column (by name when the model names them).
    pub fn check(&self, info: &ModelInfo) -> Result<(), SignatureError> {
        let mut seen = std::collections::HashSet::new();
        for f in &self.inputs {
            if f.name.trim().is_empty() {
                return Err(SignatureError("an input has an empty name".into()));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(SignatureError(format!("input '{}' appears twice", f.name)));
            }
            match &f.field_type {
                FieldType::Number {
                    min: Some(lo),
                    max: Some(hi),
                } if lo > hi => {
                    return Err(SignatureError(format!(
                        "input '{}': min {lo} is above max {hi}",
                        f.name
                    )));
                }
                FieldType::Integer {
                    min: Some(lo),
                    max: Some(hi),
                } if lo > hi => {
                    return Err(SignatureError(format!(
                        "input '{}': min {lo} is above max {hi}",
                        f.name
                    )));
                }
                FieldType::Category { values } if values.is_empty() => {
                    return Err(SignatureError(format!(
                        "input '{}': a category needs at least one value",
                        f.name
                    )));
                }
                _ => {}
            }
            if let Some(d) = &f.default {
                let fits = match (&f.field_type, d) {
                    (FieldType::Number { .. }, DefaultValue::Number(_)) => true,
                    (FieldType::Integer { .. }, DefaultValue::Number(n)) => n.fract() == 0.0,
                    (FieldType::Bool, DefaultValue::Bool(_)) => true,
                    (FieldType::Category { values }, DefaultValue::Text(t)) => values.contains(t),
                    (FieldType::Text, DefaultValue::Text(_)) => true,
                    _ => false,
                };
                if !fits {
                    return Err(SignatureError(format!(
                        "input '{}': default {d:?} does not fit its type",
                        f.name
                    )));
                }
            }
        }
        if self.inputs.len() != info.num_features {
            return Err(SignatureError(format!(
                "{} inputs for a model of {} feature columns",
                self.inputs.len(),
                info.num_features
            )));
        }
        if let Some(names) = &info.feature_names {
            let missing: Vec<&str> = names
                .iter()
                .filter(|n| !self.inputs.iter().any(|f| &f.name == *n))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(SignatureError(format!(
                    "the model's features {} have no input",
                    missing.join(", ")
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelFormat, Task};

    fn info(names: Option<Vec<&str>>, n: usize) -> ModelInfo {
        ModelInfo {
            format: ModelFormat::Onnx,
            task: Task::Regression { targets: 1 },
            num_features: n,
            feature_names: names.map(|v| v.into_iter().map(String::from).collect()),
            inputs: vec![],
            outputs: vec![],
        }
    }

    #[test]
    fn inferred_signature_names_unnamed_features() {
        let s = Signature::infer(&info(None, 3));
        let names: Vec<_> = s.inputs.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["f0", "f1", "f2"]);
        assert!(s.check(&info(None, 3)).is_ok());
    }

    #[test]
    fn checks_catch_contradictions() {
        let model = info(Some(vec!["a", "b"]), 2);
        let mut s = Signature::infer(&model);
        s.inputs[1].name = "c".into();
        assert!(
            s.check(&model)
                .unwrap_err()
                .0
                .contains("features b have no input")
        );
        let mut s = Signature::infer(&model);
        s.inputs[0].field_type = FieldType::Number {
            min: Some(2.0),
            max: Some(1.0),
        };
        assert!(
            s.check(&model)
                .unwrap_err()
                .0
                .contains("min 2 is above max 1")
        );
        let mut s = Signature::infer(&model);
        s.inputs[0].field_type = FieldType::Category {
            values: vec!["x".into()],
        };
        s.inputs[0].default = Some(DefaultValue::Text("y".into()));
        assert!(s.check(&model).unwrap_err().0.contains("does not fit"));
        assert!(
            Signature::infer(&model)
                .check(&info(None, 3))
                .unwrap_err()
                .0
                .contains("2 inputs")
        );
    }
}
