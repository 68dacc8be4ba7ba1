//! A version registered with a fitted feature spec: the spec must compile, and its output
//! columns must be the model's features (same count; same names when the model records them).
//! The version's signature is then the spec's input fields (numbers, and categories as text),
//! each required and nullable (a missing value is the spec's to impute), and the model's
//! outputs.

use berth_core::{Field, FieldType, ModelInfo, Signature};
use berth_features::{FeatureSpec, FieldKind, Pipeline};

use crate::RegistryError;

/// The signature of a version scored through `spec` (YAML) by a model described by `info`,
/// and the compiled spec.
pub fn signature(
    spec: &str,
    info: &ModelInfo,
    file_name: &str,
) -> Result<(Signature, Pipeline), RegistryError> {
    let spec = FeatureSpec::from_yaml(spec)
        .map_err(|e| RegistryError::Invalid(format!("feature spec: {e}")))?;
    let pipeline = Pipeline::compile(&spec)
        .map_err(|e| RegistryError::Invalid(format!("feature spec: {e}")))?;
    let outputs = pipeline.output_names();
    if outputs.len() != info.num_features {
        return Err(RegistryError::Invalid(format!(
            "feature spec: it makes {} columns ({}), but {file_name} takes {} features",
            outputs.len(),
            outputs.join(", "),
            info.num_features
        )));
    }
    if let Some(names) = &info.feature_names
        && names != outputs
    {
        let first = names
            .iter()
            .zip(outputs)
            .position(|(m, s)| m != s)
            .unwrap_or(0);
        return Err(RegistryError::Invalid(format!(
            "feature spec: column {} is {:?}, but {file_name} expects {:?} there (the spec's \\
             output columns must be the model's features, in order)",
            first + 1,
            outputs[first],
            names[first]
        )));
    }
    let mut signature = Signature::infer(info);
    signature.inputs = pipeline
        .inputs()
        .into_iter()
        .map(|(name, kind)| {
            let field_type = match kind {
                FieldKind::Number => FieldType::Number {
                    min: None,
                    max: None,
                },
                FieldKind::Category => FieldType::Text,
            };
            Field::new(name, field_type).nullable()
        })
        .collect();
    Ok((signature, pipeline))
}
