//! A field's values read from an Arrow batch: numbers (integers and booleans cast, nulls as
//! NaN) or text (numbers as their text, nulls as missing).

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::DataType;

use std::collections::HashMap;

use crate::FeatureError;
use crate::expr::Expr;

fn column<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef, FeatureError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| FeatureError::MissingColumn {
            field: name.to_string(),
            columns: batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect(),
        })
}

/// The field as numbers; NaN for null.
pub fn numbers(batch: &RecordBatch, name: &str) -> Result<Vec<f64>, FeatureError> {
    let array = column(batch, name)?;
    // Strict: text that is not a number is an error naming the field, not a silent null.
    let strict = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    let cast = arrow_cast::cast_with_options(array, &DataType::Float64, &strict).map_err(|e| {
        FeatureError::Type {
            field: name.to_string(),
            expected: "numbers",
            got: format!("{} ({e})", array.data_type()),
        }
    })?;
    let values = cast
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| FeatureError::Type {
            field: name.to_string(),
            expected: "numbers",
            got: array.data_type().to_string(),
        })?;
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                f64::NAN
            } else {
                values.value(i)
            }
        })
        .collect())
}

/// A number field's values: its column, or its expression over the batch's columns.
pub fn field_numbers(
    batch: &RecordBatch,
    name: &str,
    expr: Option<&Expr>,
) -> Result<Vec<f64>, FeatureError> {
    let Some(expr) = expr else {
        return numbers(batch, name);
    };
    let columns = expr
        .fields()
        .into_iter()
        .map(|f| Ok((f, numbers(batch, f)?)))
        .collect::<Result<HashMap<&str, Vec<f64>>, FeatureError>>()?;
    Ok(expr.eval(&columns, batch.num_rows()))
}

/// The field as text; `None` for null.
pub fn texts(batch: &RecordBatch, name: &str) -> Result<StringArray, FeatureError> {
    let array = column(batch, name)?;
    let cast = arrow_cast::cast(array, &DataType::Utf8).map_err(|e| FeatureError::Type {
        field: name.to_string(),
        expected: "text or numbers",
        got: format!("{} ({e})", array.data_type()),
    })?;
    cast.as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| FeatureError::Type {
            field: name.to_string(),
            expected: "text",
            got: array.data_type().to_string(),
        })
}

/// The text of row `i`, `None` when null.
pub fn text_at(texts: &StringArray, i: usize) -> Option<&str> {
    (!texts.is_null(i)).then(|| texts.value(i))
}
