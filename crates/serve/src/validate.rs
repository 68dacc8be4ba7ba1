//! Checking request data against a model's signature before the model runs.
//!
//! Protocol adapters turn a request body into [`Columns`] (one JSON value per field and row);
//! [`validate`] checks every value against its field's type, range and allowed values and
//! either returns the [`FeatureMatrix`] the model scores or every problem found, each with the
//! field, the row, what was expected and what was given. Categories become their index in the
//! field's value list; booleans 0 and 1; missing values NaN where the field allows it.

use std::fmt;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};

use berth_core::{DefaultValue, FeatureMatrix, FieldType, Signature};
use serde::Serialize;
use serde_json::Value;

/// Problems listed in full at most; the rest are counted.
const MAX_LISTED: usize = 50;

/// One thing wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub field: String,
    /// 0-based row, when the problem is in one row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    pub expected: String,
    pub got: String,
}

/// Every problem found in a request (the first [`MAX_LISTED`], and how many more).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub problems: Vec<FieldProblem>,
    pub more: usize,
}

impl ValidationError {
    fn push(&mut self, problem: FieldProblem) {
        if self.problems.len() < MAX_LISTED {
            self.problems.push(problem);
        } else {
            self.more += 1;
        }
    }

    pub(crate) fn single(field: &str, expected: impl Into<String>, got: impl Into<String>) -> Self {
        ValidationError {
            problems: vec![FieldProblem {
                field: field.to_string(),
                row: None,
                expected: expected.into(),
                got: got.into(),
            }],
            more: 0,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.problems.len() + self.more;
        write!(
            f,
            "{total} invalid input{}: ",
            if total == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match p.row {
                Some(r) => write!(
                    f,
                    "field '{}' row {r}: expected {}, got {}",
                    p.field, p.expected, p.got
                )?,
                None => write!(
                    f,
                    "field '{}': expected {}, got {}",
                    p.field, p.expected, p.got
                )?,
            }
        }
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// Request data by field: `names[c]` in row `r` is `values[c * column_step + r * row_step]`.
/// Rows as protocols send them are kept as they came (row by row), columns likewise, so
/// neither is copied into the other layout.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Columns {
    names: Arc<[String]>,
    values: Vec<Value>,
    rows: usize,
    column_step: usize,
    row_step: usize,
}

impl Columns {
    /// Named columns of equal length.
    pub fn from_columns(columns: Vec<(String, Vec<Value>)>) -> Result<Self, ValidationError> {
        let rows = columns.first().map_or(0, |(_, v)| v.len());
        if let Some((name, v)) = columns.iter().find(|(_, v)| v.len() != rows) {
            return Err(ValidationError::single(
                name,
                format!("{rows} values, like the other inputs"),
                format!("{} values", v.len()),
            ));
        }
        let mut names = Vec::with_capacity(columns.len());
        let mut values = Vec::with_capacity(rows * columns.len());
        for (name, column) in columns {
            names.push(name);
            values.extend(column);
        }
        Ok(Self {
            names: names.into(),
            values,
            rows,
            column_step: rows,
            row_step: 1,
        })
    }

    /// `rows` rows of `names.len()` values each, one row after the other, in the order of
    /// `names`.
    pub fn from_row_major(
        names: Arc<[String]>,
        rows: usize,
        values: Vec<Value>,
    ) -> Result<Self, ValidationError> {
        if rows.checked_mul(names.len()) != Some(values.len()) {
            return Err(ValidationError::single(
                "(request)",
                format!("{rows} rows of {} values", names.len()),
                format!("{} values", values.len()),
            ));
        }
        Ok(Self {
            row_step: names.len(),
            names,
            values,
            rows,
            column_step: 1,
        })
    }

    /// Rows given as JSON objects (`{"field": value, ...}`); a field absent from a row is null.
    pub fn from_records(records: &[Value]) -> Result<Self, ValidationError> {
        let mut names: Vec<String> = Vec::new();
        for (r, record) in records.iter().enumerate() {
            let Some(object) = record.as_object() else {
                return Err(ValidationError {
                    problems: vec![FieldProblem {
                        field: "(row)".into(),
                        row: Some(r),
                        expected: "an object of field values".into(),
                        got: kind(record),
                    }],
                    more: 0,
                });
            };
            for key in object.keys() {
                if !names.contains(key) {
                    names.push(key.clone());
                }
            }
        }
        let values = names
            .iter()
            .flat_map(|n| {
                records
                    .iter()
                    .map(move |r| r.get(n).cloned().unwrap_or(Value::Null))
            })
            .collect();
        Ok(Self {
            names: names.into(),
            values,
            rows: records.len(),
            column_step: records.len(),
            row_step: 1,
        })
    }

    /// Rows given as arrays of values in the order of `names`.
    pub fn from_rows(names: Arc<[String]>, rows: &[Value]) -> Result<Self, ValidationError> {
        let mut values = Vec::with_capacity(rows.len() * names.len());
        for (r, row) in rows.iter().enumerate() {
            let cells = match row.as_array() {
                Some(cells) if cells.len() == names.len() => cells,
                _ => {
                    return Err(ValidationError {
                        problems: vec![FieldProblem {
                            field: "(row)".into(),
                            row: Some(r),
                            expected: format!("an array of {} values", names.len()),
                            got: describe(row),
                        }],
                        more: 0,
                    });
                }
            };
            values.extend(cells.iter().cloned());
        }
        Self::from_row_major(names, rows.len(), values)
    }

    /// Rows as protocols send them: arrays in the order of `signature`'s inputs, or objects
    /// by field name (decided by the first row).
    pub fn from_instances(signature: &Signature, rows: &[Value]) -> Result<Self, ValidationError> {
        if rows.first().is_some_and(Value::is_array) {
            Self::from_rows(
                signature.inputs.iter().map(|f| f.name.clone()).collect(),
                rows,
            )
        } else {
            Self::from_records(rows)
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Field `name`'s values, if the request has that field.
    pub fn column(&self, name: &str) -> Option<impl ExactSizeIterator<Item = &Value>> {
        let c = self.names.iter().position(|n| n == name)?;
        Some(self.column_at(c))
    }

    /// The values of the `c`-th field given.
    fn column_at(&self, c: usize) -> impl ExactSizeIterator<Item = &Value> {
        let start = c.saturating_mul(self.column_step);
        self.values
            .get(start..)
            .unwrap_or_default()
            .iter()
            .step_by(self.row_step.max(1))
            .take(self.rows)
    }

    /// Field `name`'s value in the first row, if the request has that field and a row.
    pub fn first(&self, name: &str) -> Option<&Value> {
        self.column(name)?.next()
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
    .to_string()
}

/// A value as a message shows it: short, with its JSON form.
fn describe(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 40 {
        format!(
            "{}...",
            &text[..text
                .char_indices()
                .take_while(|(i, _)| *i < 37)
                .last()
                .map_or(0, |(i, c)| i + c.len_utf8())]
        )
    } else {
        text
    }
}

fn range_text<T: fmt::Display>(min: Option<T>, max: Option<T>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!(" in [{lo}, {hi}]"),
        (Some(lo), None) => format!(" >= {lo}"),
        (None, Some(hi)) => format!(" <= {hi}"),
        (None, None) => String::new(),
    }
}

/// One value of a field as the model's number, or what was expected instead. A null (or a
/// field a record left out) is a missing value where `missing_ok`.
fn encode(field_type: &FieldType, missing_ok: bool, v: &Value) -> Result<f64, String> {
    if v.is_null() {
        return if missing_ok {
            Ok(f64::NAN)
        } else {
            Err("a value (the field cannot be missing)".into())
        };
    }
    match field_type {
        FieldType::Number { min, max } => match v.as_f64() {
            Some(x) if min.is_none_or(|lo| x >= lo) && max.is_none_or(|hi| x <= hi) => Ok(x),
            _ => Err(format!("a number{}", range_text(*min, *max))),
        },
        FieldType::Integer { min, max } => match v.as_f64() {
            Some(x)
                if x.fract() == 0.0
                    && min.is_none_or(|lo| x >= lo as f64)
                    && max.is_none_or(|hi| x <= hi as f64) =>
            {
                Ok(x)
            }
            _ => Err(format!("an integer{}", range_text(*min, *max))),
        },
        FieldType::Bool => match v {
            Value::Bool(b) => Ok(f64::from(u8::from(*b))),
            Value::Number(n) if n.as_f64() == Some(0.0) || n.as_f64() == Some(1.0) => {
                Ok(n.as_f64().unwrap_or(0.0))
            }
            _ => Err("true or false".into()),
        },
        FieldType::Category { values } => {
            match v.as_str().and_then(|s| values.iter().position(|c| c == s)) {
                Some(i) => Ok(i as f64),
                None => {
                    let listed: Vec<&str> = values.iter().take(10).map(String::as_str).collect();
                    let more = if values.len() > 10 { ", ..." } else { "" };
                    Err(format!("one of {}{more}", listed.join(", ")))
                }
            }
        }
        FieldType::Text => Err("text, which this model cannot take without a feature spec".into()),
    }
}

fn default_number(field_type: &FieldType, default: &DefaultValue) -> f64 {
    match (field_type, default) {
        (FieldType::Category { values }, DefaultValue::Text(t)) => values
            .iter()
            .position(|v| v == t)
            .map_or(f64::NAN, |i| i as f64),
        (_, DefaultValue::Bool(b)) => f64::from(u8::from(*b)),
        (_, DefaultValue::Number(n)) => *n,
        (_, DefaultValue::Text(_)) => f64::NAN,
    }
}

/// One accepted value: a number for the model's matrix, or text for a feature spec.
enum Cell<'v> {
    Number(f64),
    Text(Option<&'v str>),
}

/// Checks every value of `columns` against `signature`, handing each accepted one to `put`
/// (field index, row, value). Text fields are accepted only with `text_ok` (a feature spec
/// reads them). Every problem is collected; unknown fields are problems too (a typo must not
/// silently turn into a missing value).
fn check_cells<'v>(
    signature: &'v Signature,
    columns: &'v Columns,
    text_ok: bool,
    mut put: impl FnMut(usize, usize, Cell<'v>),
) -> Result<(), ValidationError> {
    let mut errors = ValidationError {
        problems: Vec::new(),
        more: 0,
    };
    // Fields are usually sent in signature order: each found at its own place before any search.
    let in_place = |c: usize, name: &str| signature.inputs.get(c).is_some_and(|f| f.name == name);
    for (c, name) in columns.names.iter().enumerate() {
        if !in_place(c, name) && !signature.inputs.iter().any(|f| &f.name == name) {
            errors.push(FieldProblem {
                field: name.clone(),
                row: None,
                expected: "one of the model's inputs".into(),
                got: "an unknown field".into(),
            });
        }
    }
    let rows = columns.rows;
    for (c, field) in signature.inputs.iter().enumerate() {
        let given = if columns.names.get(c).is_some_and(|n| n == &field.name) {
            Some(c)
        } else {
            columns.names.iter().position(|n| n == &field.name)
        };
        let column = given.map(|i| columns.column_at(i));
        let missing_ok = field.nullable || !field.required;
        let is_text = text_ok && field.field_type == FieldType::Text;
        let default: Option<Cell<'v>> = field.default.as_ref().map(|d| match d {
            DefaultValue::Text(t) if is_text => Cell::Text(Some(t.as_str())),
            d => Cell::Number(default_number(&field.field_type, d)),
        });
        match column {
            Some(column) => {
                for (r, v) in column.enumerate() {
                    let cell = match (v, &default) {
                        (Value::Null, Some(Cell::Number(x))) => Ok(Cell::Number(*x)),
                        (Value::Null, Some(Cell::Text(t))) => Ok(Cell::Text(*t)),
                        (Value::Null, None) if is_text && missing_ok => Ok(Cell::Text(None)),
                        (Value::String(t), _) if is_text => Ok(Cell::Text(Some(t.as_str()))),
                        (_, _) if is_text => Err("text".to_string()),
                        _ => encode(&field.field_type, missing_ok, v).map(Cell::Number),
                    };
                    match cell {
                        Ok(cell) => put(c, r, cell),
                        Err(expected) => errors.push(FieldProblem {
                            field: field.name.clone(),
                            row: Some(r),
                            expected,
                            got: describe(v),
                        }),
                    }
                }
            }
            None if field.required => errors.push(FieldProblem {
                field: field.name.clone(),
                row: None,
                expected: "a value (the field is required)".into(),
                got: "nothing".into(),
            }),
            None => {
                for r in 0..rows {
                    put(
                        c,
                        r,
                        match &default {
                            Some(Cell::Number(x)) => Cell::Number(*x),
                            Some(Cell::Text(t)) => Cell::Text(*t),
                            None if is_text => Cell::Text(None),
                            None => Cell::Number(f64::NAN),
                        },
                    );
                }
            }
        }
    }
    if !errors.problems.is_empty() || errors.more > 0 {
        return Err(errors);
    }
    Ok(())
}

/// Checks `columns` against `signature` and builds the matrix the model scores, with the
/// signature's fields as its columns in order.
pub fn validate(
    signature: &Signature,
    columns: &Columns,
) -> Result<FeatureMatrix, ValidationError> {
    let rows = columns.rows;
    let width = signature.inputs.len();
    let mut values = vec![0.0f32; rows * width];
    check_cells(signature, columns, false, |c, r, cell| {
        if let Cell::Number(x) = cell {
            values[r * width + c] = x as f32;
        }
    })?;
    FeatureMatrix::new(rows, width, values)
        .map_err(|e| ValidationError::single("(request)", "whole rows", e.to_string()))
}

/// Checks `columns` against the signature of a version with a feature spec and builds the
/// columns the spec reads: numbers (missing as null) and text.
pub fn validate_batch(
    signature: &Signature,
    columns: &Columns,
) -> Result<RecordBatch, ValidationError> {
    let rows = columns.rows;
    let mut numbers: Vec<Vec<Option<f64>>> = vec![Vec::new(); signature.inputs.len()];
    let mut texts: Vec<Vec<Option<&str>>> = vec![Vec::new(); signature.inputs.len()];
    for c in 0..signature.inputs.len() {
        match signature.inputs[c].field_type {
            FieldType::Text => texts[c] = vec![None; rows],
            _ => numbers[c] = vec![None; rows],
        }
    }
    check_cells(signature, columns, true, |c, r, cell| match cell {
        Cell::Number(x) => numbers[c][r] = (!x.is_nan()).then_some(x),
        Cell::Text(t) => texts[c][r] = t,
    })?;
    let arrays = signature.inputs.iter().enumerate().map(|(c, field)| {
        let array: ArrayRef = match field.field_type {
            FieldType::Text => Arc::new(StringArray::from(std::mem::take(&mut texts[c]))),
            _ => Arc::new(Float64Array::from(std::mem::take(&mut numbers[c]))),
        };
        (field.name.as_str(), array)
    });
    RecordBatch::try_from_iter(arrays.collect::<Vec<_>>())
        .map_err(|e| ValidationError::single("(request)", "columns of equal length", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::Field;
    use serde_json::json;

    fn signature() -> Signature {
        Signature {
            inputs: vec![
                Field::new(
                    "age",
                    FieldType::Integer {
                        min: Some(18),
                        max: Some(120),
                    },
                ),
                Field::new(
                    "spend",
                    FieldType::Number {
                        min: Some(0.0),
                        max: None,
                    },
                ),
                Field::new(
                    "plan",
                    FieldType::Category {
                        values: vec!["basic".into(), "premium".into()],
                    },
                ),
                Field {
                    required: false,
                    default: Some(DefaultValue::Bool(true)),
                    ..Field::new("vip", FieldType::Bool)
                },
                Field::new(
                    "score",
                    FieldType::Number {
                        min: None,
                        max: None,
                    },
                )
                .nullable(),
            ],
            outputs: vec![],
        }
    }

    #[test]
    fn good_rows_become_the_model_matrix() {
        let rows = [
            json!({"age": 30, "spend": 12.5, "plan": "premium", "score": null}),
            json!({"age": 99, "spend": 0, "plan": "basic", "vip": false, "score": 0.5}),
        ];
        let m = validate(&signature(), &Columns::from_records(&rows).unwrap()).unwrap();
        assert_eq!((m.rows(), m.cols()), (2, 5));
        assert_eq!(
            &m.row(0)[..4],
            &[30.0, 12.5, 1.0, 1.0],
            "vip defaults to true"
        );
        assert!(m.row(0)[4].is_nan(), "a nullable field may be null");
        assert_eq!(m.row(1), &[99.0, 0.0, 0.0, 0.0, 0.5]);
    }

    #[test]
    fn every_problem_is_listed_with_field_row_expected_got() {
        let rows = [
            json!({"age": 17.5, "spend": -1, "plan": "gold", "score": 1, "agee": 3}),
            json!({"age": "old", "spend": 1, "score": null}),
        ];
        let err = validate(&signature(), &Columns::from_records(&rows).unwrap()).unwrap_err();
        let got: Vec<(&str, Option<usize>, &str, &str)> = err
            .problems
            .iter()
            .map(|p| (p.field.as_str(), p.row, p.expected.as_str(), p.got.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "agee",
                    None,
                    "one of the model's inputs",
                    "an unknown field"
                ),
                ("age", Some(0), "an integer in [18, 120]", "17.5"),
                ("age", Some(1), "an integer in [18, 120]", "\"old\""),
                ("spend", Some(0), "a number >= 0", "-1"),
                ("plan", Some(0), "one of basic, premium", "\"gold\""),
                (
                    "plan",
                    Some(1),
                    "a value (the field cannot be missing)",
                    "null"
                ),
            ]
        );
        assert!(
            err.to_string()
                .starts_with("6 invalid inputs: field 'agee': expected one of the model's inputs")
        );
    }

    #[test]
    fn missing_required_fields_and_ragged_input() {
        let err = validate(
            &signature(),
            &Columns::from_records(&[json!({"age": 30})]).unwrap(),
        )
        .unwrap_err();
        let missing: Vec<&str> = err
            .problems
            .iter()
            .filter(|p| p.got == "nothing")
            .map(|p| p.field.as_str())
            .collect();
        assert_eq!(
            missing,
            ["spend", "plan", "score"],
            "nullable is not optional: the field must be sent"
        );
        let err = Columns::from_columns(vec![("a".into(), vec![json!(1)]), ("b".into(), vec![])])
            .unwrap_err();
        assert_eq!(err.problems[0].expected, "1 values, like the other inputs");
        let err = Columns::from_rows(
            vec!["a".to_string(), "b".to_string()].into(),
            &[json!([1, 2]), json!([1])],
        )
        .unwrap_err();
        assert_eq!(
            (err.problems[0].row, err.problems[0].got.as_str()),
            (Some(1), "[1]")
        );
        let err = Columns::from_records(&[json!([1, 2])]).unwrap_err();
        assert_eq!(err.problems[0].expected, "an object of field values");
    }

    #[test]
    fn rows_and_columns_read_the_same_whatever_their_layout() {
        let names: Vec<String> = ["age", "spend", "plan", "score"].map(String::from).to_vec();
        let rows = [
            json!([30, 1.5, "basic", 0.5]),
            json!([40, 2.0, "premium", 0.25]),
            json!([50, 2.5, "basic", null]),
        ];
        let by_row = Columns::from_rows(names.clone().into(), &rows).unwrap();
        let records: Vec<Value> = rows
            .iter()
            .map(|r| {
                let cells = r.as_array().unwrap();
                Value::Object(names.iter().cloned().zip(cells.iter().cloned()).collect())
            })
            .collect();
        let by_record = Columns::from_records(&records).unwrap();
        let by_column = Columns::from_columns(
            names
                .iter()
                .enumerate()
                .map(|(c, n)| (n.clone(), rows.iter().map(|r| r[c].clone()).collect()))
                .collect(),
        )
        .unwrap();
        for columns in [&by_record, &by_column] {
            for name in &names {
                let a: Vec<&Value> = by_row.column(name).unwrap().collect();
                let b: Vec<&Value> = columns.column(name).unwrap().collect();
                assert_eq!(a, b, "{name}");
            }
        }
        assert_eq!(by_row.first("plan"), Some(&json!("basic")));
        let matrix = validate(&signature(), &by_row).unwrap();
        let bits = |m: &FeatureMatrix| m.values().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&matrix),
            bits(&validate(&signature(), &by_column).unwrap())
        );
        assert_eq!(matrix.row(1)[0], 40.0);
        assert!(Columns::from_row_major(names.into(), 2, vec![json!(1)]).is_err());
    }

    #[test]
    fn long_lists_of_problems_are_capped() {
        let rows: Vec<Value> = (0..80)
            .map(|_| json!({"age": 1, "spend": 1, "plan": "basic", "score": null}))
            .collect();
        let err = validate(&signature(), &Columns::from_records(&rows).unwrap()).unwrap_err();
        assert_eq!((err.problems.len(), err.more), (MAX_LISTED, 30));
        assert!(err.to_string().ends_with("; and 30 more"));
    }
}
