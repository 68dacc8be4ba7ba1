//! The columns of a prediction's outputs, named the same way everywhere: batch scoring writes
//! them, monitoring profiles them; and one output value as text or JSON.
//!
//! Outputs are named by role, so every model's columns read alike: `label`, `p_0, p_1, ...`
//! for class probabilities, `value` (or `value_0, ...`) for scores; by output name when two
//! outputs share a role. Outputs whose role is [`OutputRole::Other`] (such as a tree model's
//! raw margin) are left out.

use crate::{NamedTensor, OutputRole, TensorData};

/// Which outputs make columns, and the columns' names: `(output index, names)`, one name per
/// value of a row.
pub fn output_columns(outputs: &[NamedTensor]) -> Vec<(usize, Vec<String>)> {
    let kept: Vec<(usize, &NamedTensor)> = outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.role != OutputRole::Other)
        .collect();
    let unique_roles = kept
        .iter()
        .all(|(i, o)| !kept.iter().any(|(j, p)| j != i && p.role == o.role));
    kept.into_iter()
        .map(|(i, o)| {
            let width = o.tensor.row_width();
            let base = match (unique_roles, o.role) {
                (true, OutputRole::Label) => "label",
                (true, OutputRole::Probabilities) => "p",
                (true, OutputRole::Score) => "value",
                _ => o.name.as_str(),
            };
            let names = if width == 1 && o.role != OutputRole::Probabilities {
                vec![base.to_string()]
            } else {
                (0..width).map(|k| format!("{base}_{k}")).collect()
            };
            (i, names)
        })
        .collect()
}

/// One output column's values over the rows.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValues {
    /// Scores and probabilities (NaN stays NaN).
    Numbers(Vec<f64>),
    /// Predicted classes, as text (`"1"`, `"churned"`).
    Labels(Vec<String>),
}

/// Every output column with its values, as [`output_columns`] names them; labels are
/// categories, everything else numbers.
pub fn output_values(outputs: &[NamedTensor]) -> Vec<(String, OutputValues)> {
    let mut columns = Vec::new();
    for (i, names) in output_columns(outputs) {
        let output = &outputs[i];
        let data = output.tensor.data();
        let width = names.len();
        let rows = data.len().checked_div(width).unwrap_or(0);
        for (k, name) in names.into_iter().enumerate() {
            let cells = (0..rows).map(|r| r * width + k);
            let values = if output.role == OutputRole::Label {
                OutputValues::Labels(cells.map(|j| text_at(data, j)).collect())
            } else {
                OutputValues::Numbers(cells.map(|j| data.get_f64(j).unwrap_or(f64::NAN)).collect())
            };
            columns.push((name, values));
        }
    }
    columns
}

/// The outputs of several predictions as one: each output's tensors stacked along the first
/// axis, for profiling a group of requests at once. `None` when the predictions' outputs differ
/// in anything but their rows (names, roles, element types, trailing dimensions) or a tensor
/// has no first axis.
pub fn concat_outputs(parts: &[&[NamedTensor]]) -> Option<Vec<NamedTensor>> {
    let first = parts.first()?;
    let mut joined = Vec::with_capacity(first.len());
    for (i, head) in first.iter().enumerate() {
        let shape = head.tensor.shape();
        let trailing = shape.get(1..)?;
        let mut rows = 0usize;
        let mut data = head.tensor.data().empty_like();
        for part in parts {
            let o = part.get(i)?;
            let same_shape = o.tensor.shape().get(1..) == Some(trailing);
            if o.name != head.name || o.role != head.role || !same_shape {
                return None;
            }
            if !data.extend_from(o.tensor.data()) {
                return None;
            }
            rows += o.tensor.shape().first().copied().unwrap_or(0);
        }
        let mut shape = shape.to_vec();
        shape[0] = rows;
        joined.push(NamedTensor {
            name: head.name.clone(),
            role: head.role,
            tensor: crate::Tensor::new(shape, data).ok()?,
        });
    }
    if parts.iter().any(|p| p.len() != first.len()) {
        return None;
    }
    Some(joined)
}

/// One value as text: the shortest form that reads back to the same number.
pub fn text_at(data: &TensorData, i: usize) -> String {
    match data {
        TensorData::Bool(v) => v[i].to_string(),
        TensorData::Int32(v) => v[i].to_string(),
        TensorData::Int64(v) => v[i].to_string(),
        TensorData::Fp32(v) => v[i].to_string(),
        TensorData::Fp64(v) => v[i].to_string(),
        TensorData::Bytes(v) => v[i].clone(),
    }
}

/// One value as JSON (NaN and infinities as null, which JSON cannot write).
pub fn json_at(data: &TensorData, i: usize) -> serde_json::Value {
    use serde_json::Value;
    let number = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
    match data {
        TensorData::Bool(v) => Value::Bool(v[i]),
        TensorData::Int32(v) => Value::from(v[i]),
        TensorData::Int64(v) => Value::from(v[i]),
        TensorData::Fp32(v) => number(f64::from(v[i])),
        TensorData::Fp64(v) => number(v[i]),
        TensorData::Bytes(v) => Value::String(v[i].clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    fn output(name: &str, role: OutputRole, shape: Vec<usize>, data: TensorData) -> NamedTensor {
        NamedTensor {
            name: name.into(),
            role,
            tensor: Tensor::new(shape, data).expect("tensor"),
        }
    }

    #[test]
    fn outputs_of_several_predictions_stack_by_rows() {
        let one = |label: i64, p: f32| {
            vec![
                output(
                    "label",
                    OutputRole::Label,
                    vec![1],
                    TensorData::Int64(vec![label]),
                ),
                output(
                    "probabilities",
                    OutputRole::Probabilities,
                    vec![1, 2],
                    TensorData::Fp32(vec![1.0 - p, p]),
                ),
            ]
        };
        let (a, b) = (one(1, 0.75), one(0, 0.25));
        let joined = concat_outputs(&[&a, &b]).expect("same outputs");
        assert_eq!(joined[0].tensor.shape(), &[2]);
        assert_eq!(joined[0].tensor.data(), &TensorData::Int64(vec![1, 0]));
        assert_eq!(joined[1].tensor.shape(), &[2, 2]);
        assert_eq!(
            joined[1].tensor.data(),
            &TensorData::Fp32(vec![0.25, 0.75, 0.75, 0.25])
        );
        let mut renamed = one(1, 0.5);
        renamed[0].name = "class".into();
        assert!(concat_outputs(&[&a, &renamed]).is_none());
        assert!(concat_outputs(&[&a, &a[..1]]).is_none());
        assert!(concat_outputs(&[]).is_none());
    }

    #[test]
    fn a_classifier_gives_a_label_and_one_probability_per_class() {
        let outputs = vec![
            output(
                "label",
                OutputRole::Label,
                vec![2],
                TensorData::Int64(vec![1, 0]),
            ),
            output(
                "probabilities",
                OutputRole::Probabilities,
                vec![2, 2],
                TensorData::Fp32(vec![0.25, 0.75, 0.875, 0.125]),
            ),
            output(
                "margin",
                OutputRole::Other,
                vec![2],
                TensorData::Fp32(vec![1.0, -1.0]),
            ),
        ];
        let values = output_values(&outputs);
        assert_eq!(
            values,
            vec![
                (
                    "label".into(),
                    OutputValues::Labels(vec!["1".into(), "0".into()])
                ),
                ("p_0".into(), OutputValues::Numbers(vec![0.25, 0.875])),
                ("p_1".into(), OutputValues::Numbers(vec![0.75, 0.125])),
            ]
        );
    }

    #[test]
    fn outputs_sharing_a_role_are_named_by_output() {
        let outputs = vec![
            output("a", OutputRole::Score, vec![1], TensorData::Fp64(vec![2.5])),
            output(
                "b",
                OutputRole::Score,
                vec![1, 2],
                TensorData::Fp64(vec![1.0, 2.0]),
            ),
        ];
        let names: Vec<Vec<String>> = output_columns(&outputs).into_iter().map(|c| c.1).collect();
        assert_eq!(
            names,
            vec![vec!["a".to_string()], vec!["b_0".into(), "b_1".into()]]
        );
    }
}
