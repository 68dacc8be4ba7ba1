//! Reading a signature written by hand in YAML, with errors that point at the mistake.

use berth_core::Signature;

use crate::RegistryError;

const FIELD_KEYS: &[&str] = &[
    "name", "type", "min", "max", "values", "required", "default", "nullable",
];

/// Parses a YAML signature (see [`berth_core::Signature`] for the shape). Unknown keys are
/// errors, so a typo (`reqired`) is caught instead of ignored.
pub fn parse_signature_yaml(source: &str, text: &str) -> Result<Signature, RegistryError> {
    let invalid = |msg: String| RegistryError::Invalid(format!("{source}: {msg}"));
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| invalid(format!("malformed YAML: {e}")))?;
    if let Some(inputs) = value.get("inputs").and_then(|v| v.as_sequence()) {
        for (i, field) in inputs.iter().enumerate() {
            let Some(map) = field.as_mapping() else {
                return Err(invalid(format!(
                    "inputs[{i}]: expected a mapping like {{name: x, type: number}}"
                )));
            };
            for key in map.keys() {
                let key = key.as_str().unwrap_or("?");
                if !FIELD_KEYS.contains(&key) {
                    return Err(invalid(format!(
                        "inputs[{i}]: unknown key '{key}'; expected one of {}",
                        FIELD_KEYS.join(", ")
                    )));
                }
            }
        }
    }
    serde_yaml::from_value(value).map_err(|e| {
        invalid(format!(
            "{e}; expected inputs: [{{name, type: number|integer|bool|category|text, ...}}]"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::FieldType;

    #[test]
    fn a_hand_written_signature() {
        let sig = parse_signature_yaml(
            "sig.yaml",
            "inputs:\n  - {name: age, type: integer, min: 18, max: 120}\n  - {name: plan, type: category, values: [a, b]}\n  - {name: vip, type: bool, required: false, default: false}\n",
        )
        .unwrap();
        assert_eq!(sig.inputs.len(), 3);
        assert_eq!(
            sig.inputs[0].field_type,
            FieldType::Integer {
                min: Some(18),
                max: Some(120)
            }
        );
        assert!(!sig.inputs[2].required);
    }

    #[test]
    fn mistakes_are_pointed_at() {
        let err = parse_signature_yaml(
            "sig.yaml",
            "inputs:\n  - {name: a, type: number, reqired: true}\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("inputs[0]: unknown key 'reqired'"),
            "{err}"
        );
        let err = parse_signature_yaml("sig.yaml", "inputs: [\n").unwrap_err();
        assert!(
            err.to_string().contains("sig.yaml: malformed YAML"),
            "{err}"
        );
        let err = parse_signature_yaml("sig.yaml", "inputs:\n  - {name: a, type: decimal}\n")
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `decimal`"),
            "{err}"
        );
    }
}
