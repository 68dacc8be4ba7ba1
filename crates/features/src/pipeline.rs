//! A fitted spec compiled once into a [`Pipeline`]: per field, the imputation, clip and
//! transform with their parameters resolved (vocabularies as hash maps, edges as sorted
//! slices), applied column by column to an Arrow batch into the model's feature matrix.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use berth_core::FeatureMatrix;

use crate::FeatureError;
use crate::columns::{field_numbers, text_at, texts};
use crate::expr::Expr;
use crate::spec::{
    Bucketize, FeatureSpec, FieldKind, FieldSpec, Fitted, FittedCategory, Impute, MinMax,
    Standardize, Transform, Vocabulary,
};

/// The column name of values outside a one-hot vocabulary.
pub const OTHER: &str = "__other__";

/// A number as text, the shortest form that reads back to it (`3`, `0.25`).
pub fn number_text(x: f64) -> String {
    format!("{x}")
}

fn matrix(rows: usize, width: usize, values: Vec<f32>) -> Result<FeatureMatrix, FeatureError> {
    FeatureMatrix::new(rows, width, values).map_err(|e| FeatureError::Type {
        field: "(output)".into(),
        expected: "a matrix",
        got: e.to_string(),
    })
}

/// What [`Pipeline::apply_skipping`] made of a batch.
#[derive(Debug, Clone)]
pub struct Applied {
    /// One row per kept row of the batch, in order.
    pub matrix: FeatureMatrix,
    /// The batch's rows (0-based) the matrix holds.
    pub kept: Vec<usize>,
    pub bad: Vec<BadRow>,
}

/// A row of a batch the pipeline could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// 0-based row of the batch.
    pub row: usize,
    pub field: String,
    pub expected: &'static str,
    /// The value as text.
    pub got: String,
}

/// A fitted spec, ready to apply.
#[derive(Debug, Clone)]
pub struct Pipeline {
    fields: Vec<CompiledField>,
    names: Vec<String>,
}

#[derive(Debug, Clone)]
enum CompiledField {
    Number {
        name: String,
        expr: Option<Expr>,
        prep: NumberPrep,
        out: NumberOut,
    },
    Category {
        name: String,
        fill: Option<String>,
        out: CategoryOut,
    },
}

/// Imputation and clipping of a number field.
#[derive(Debug, Clone)]
pub(crate) struct NumberPrep {
    fill: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
}

#[derive(Debug, Clone)]
enum NumberOut {
    Identity,
    Affine { shift: f64, scale: f64 },
    Log1p,
    Bucketize(Vec<f64>),
    Hash(u32),
}

#[derive(Debug, Clone)]
enum CategoryOut {
    OneHot(HashMap<String, usize>),
    Ordinal(HashMap<String, usize>),
    Hash(u32),
}

fn unfitted(field: &str, parameter: &str) -> FeatureError {
    FeatureError::Unfitted(vec![format!("{field}.{parameter}")])
}

impl NumberPrep {
    pub(crate) fn compile(field: &FieldSpec) -> Result<Self, FeatureError> {
        let fill = match &field.impute {
            None => None,
            Some(Impute::Constant(v)) => v.as_f64(),
            Some(Impute::Mean(Fitted { value }) | Impute::Median(Fitted { value })) => {
                Some(value.ok_or_else(|| unfitted(&field.name, "impute"))?)
            }
            Some(Impute::Mode(FittedCategory { value })) => {
                let text = value
                    .as_deref()
                    .ok_or_else(|| unfitted(&field.name, "impute.mode"))?;
                Some(text.parse().map_err(|_| FeatureError::Type {
                    field: field.name.clone(),
                    expected: "a number as impute.mode.value",
                    got: text.to_string(),
                })?)
            }
        };
        Ok(Self {
            fill,
            min: field.clip.as_ref().and_then(|c| c.min),
            max: field.clip.as_ref().and_then(|c| c.max),
        })
    }

    /// One value imputed and clipped; NaN stays NaN without imputation.
    pub(crate) fn prepare(&self, x: f64) -> f64 {
        let x = match self.fill {
            Some(fill) if x.is_nan() => fill,
            _ => x,
        };
        match (self.min, self.max) {
            (Some(lo), _) if x < lo => lo,
            (_, Some(hi)) if x > hi => hi,
            _ => x,
        }
    }
}

/// A derived field's expression, parsed.
pub(crate) fn parsed_expr(field: &FieldSpec) -> Result<Option<Expr>, FeatureError> {
    field
        .expr
        .as_deref()
        .map(|text| {
            Expr::parse(text).map_err(|e| {
                FeatureError::Spec(vec![crate::spec::SpecProblem {
                    field: format!("{}.expr", field.name),
                    expected: "an arithmetic expression".into(),
                    got: format!("{text:?} ({e})"),
                }])
            })
        })
        .transpose()
}

/// The text a missing category is imputed with, if any.
pub(crate) fn category_fill(field: &FieldSpec) -> Option<String> {
    match &field.impute {
        Some(Impute::Constant(v)) => v.as_str().map(str::to_string),
        Some(Impute::Mode(FittedCategory { value })) => value.clone(),
        _ => None,
    }
}

fn index(field: &str, v: &Vocabulary) -> Result<HashMap<String, usize>, FeatureError> {
    let values = v
        .vocabulary
        .as_ref()
        .ok_or_else(|| unfitted(field, "transform.vocabulary"))?;
    Ok(values
        .iter()
        .enumerate()
        .map(|(i, value)| (value.clone(), i))
        .collect())
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn bucket(text: &str, buckets: u32) -> f32 {
    (fnv1a(text) % u64::from(buckets)) as f32
}

impl Pipeline {
    /// Compiles a fitted spec; a spec with parameters still to fit is refused, naming them.
    pub fn compile(spec: &FeatureSpec) -> Result<Self, FeatureError> {
        let problems = spec.validate();
        if !problems.is_empty() {
            return Err(FeatureError::Spec(problems));
        }
        let open = spec.unfitted();
        if !open.is_empty() {
            return Err(FeatureError::Unfitted(open));
        }
        let mut fields = Vec::new();
        let mut names = Vec::new();
        for f in &spec.fields {
            let name = f.name.clone();
            let compiled = match f.kind {
                FieldKind::Number => {
                    let out = match &f.transform {
                        None => NumberOut::Identity,
                        Some(Transform::Standardize(Standardize { mean, std })) => {
                            let std = std.unwrap_or(1.0);
                            NumberOut::Affine {
                                shift: mean.unwrap_or(0.0),
                                scale: if std == 0.0 { 1.0 } else { std },
                            }
                        }
                        Some(Transform::MinMax(MinMax { min, max })) => {
                            let (lo, hi) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
                            let range = hi - lo;
                            NumberOut::Affine {
                                shift: lo,
                                scale: if range == 0.0 { 1.0 } else { range },
                            }
                        }
                        Some(Transform::Log1p {}) => NumberOut::Log1p,
                        Some(Transform::Bucketize(Bucketize { edges, .. })) => {
                            NumberOut::Bucketize(edges.clone().unwrap_or_default())
                        }
                        Some(Transform::Hash { buckets }) => NumberOut::Hash(*buckets),
                        // Refused by `validate` above.
                        Some(Transform::OneHot(_) | Transform::Ordinal(_)) => NumberOut::Identity,
                    };
                    names.push(name.clone());
                    CompiledField::Number {
                        expr: parsed_expr(f)?,
                        prep: NumberPrep::compile(f)?,
                        out,
                        name,
                    }
                }
                FieldKind::Category => {
                    let out = match &f.transform {
                        Some(Transform::OneHot(v)) => {
                            let index = index(&name, v)?;
                            let mut values: Vec<(&String, &usize)> = index.iter().collect();
                            values.sort_by_key(|(_, i)| **i);
                            names.extend(values.iter().map(|(value, _)| format!("{name}={value}")));
                            names.push(format!("{name}={OTHER}"));
                            CategoryOut::OneHot(index)
                        }
                        Some(Transform::Ordinal(v)) => {
                            names.push(name.clone());
                            CategoryOut::Ordinal(index(&name, v)?)
                        }
                        Some(Transform::Hash { buckets }) => {
                            names.push(name.clone());
                            CategoryOut::Hash(*buckets)
                        }
                        // A category without an encoding, or with a numeric transform, is refused
                        // by `validate` above.
                        _ => CategoryOut::Hash(1),
                    };
                    CompiledField::Category {
                        fill: category_fill(f),
                        out,
                        name,
                    }
                }
            };
            fields.push(compiled);
        }
        Ok(Self { fields, names })
    }

    /// The model's columns, in order.
    pub fn output_names(&self) -> &[String] {
        &self.names
    }

    /// The data columns the pipeline reads, each once, in spec order: a derived field reads
    /// the number columns of its expression.
    pub fn inputs(&self) -> Vec<(&str, FieldKind)> {
        let mut all: Vec<(&str, FieldKind)> = Vec::new();
        for field in &self.fields {
            match field {
                CompiledField::Number {
                    expr: Some(expr), ..
                } => all.extend(expr.fields().into_iter().map(|f| (f, FieldKind::Number))),
                CompiledField::Number { name, .. } => all.push((name, FieldKind::Number)),
                CompiledField::Category { name, .. } => all.push((name, FieldKind::Category)),
            }
        }
        let mut inputs: Vec<(&str, FieldKind)> = Vec::new();
        for (name, kind) in all {
            if !inputs.iter().any(|(n, _)| *n == name) {
                inputs.push((name, kind));
            }
        }
        inputs
    }

    /// Applies the pipeline to a batch, leaving out the rows it cannot read (text that is not
    /// a number in a number field) instead of failing: [`Applied::bad`] names each one by row
    /// and field. Other errors (a missing column) concern every row and fail. A batch without
    /// bad rows costs what [`Pipeline::apply`] does; one with bad rows is applied row by row.
    pub fn apply_skipping(&self, batch: &RecordBatch) -> Result<Applied, FeatureError> {
        match self.apply(batch) {
            Ok(matrix) => {
                return Ok(Applied {
                    kept: (0..batch.num_rows()).collect(),
                    matrix,
                    bad: Vec::new(),
                });
            }
            Err(FeatureError::Type { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut kept = Vec::new();
        let mut parts: Vec<FeatureMatrix> = Vec::new();
        let mut bad = Vec::new();
        for row in 0..batch.num_rows() {
            match self.apply(&batch.slice(row, 1)) {
                Ok(matrix) => {
                    kept.push(row);
                    parts.push(matrix);
                }
                Err(FeatureError::Type {
                    field, expected, ..
                }) => {
                    let got = texts(batch, &field)
                        .ok()
                        .and_then(|t| text_at(&t, row).map(str::to_string))
                        .unwrap_or_default();
                    bad.push(BadRow {
                        row,
                        field,
                        expected,
                        got,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        let values: Vec<f32> = parts.iter().flat_map(|m| m.values()).copied().collect();
        let matrix = matrix(kept.len(), self.names.len(), values)?;
        Ok(Applied { matrix, kept, bad })
    }

    /// Applies the pipeline to a batch: one row of the matrix per row of the batch.
    pub fn apply(&self, batch: &RecordBatch) -> Result<FeatureMatrix, FeatureError> {
        let rows = batch.num_rows();
        let width = self.names.len();
        let mut out = vec![0f32; rows * width];
        let mut offset = 0;
        for field in &self.fields {
            match field {
                CompiledField::Number {
                    name,
                    expr,
                    prep,
                    out: how,
                } => {
                    let values = field_numbers(batch, name, expr.as_ref())?;
                    for (r, x) in values.into_iter().enumerate() {
                        let x = prep.prepare(x);
                        out[r * width + offset] = match how {
                            NumberOut::Identity => x as f32,
                            NumberOut::Affine { shift, scale } => ((x - shift) / scale) as f32,
                            NumberOut::Log1p if x >= -1.0 => x.ln_1p() as f32,
                            NumberOut::Log1p => f32::NAN,
                            NumberOut::Bucketize(_) | NumberOut::Hash(_) if x.is_nan() => f32::NAN,
                            NumberOut::Bucketize(edges) => {
                                edges.partition_point(|e| *e <= x) as f32
                            }
                            NumberOut::Hash(buckets) => bucket(&number_text(x), *buckets),
                        };
                    }
                    offset += 1;
                }
                CompiledField::Category {
                    name,
                    fill,
                    out: how,
                } => {
                    let values = texts(batch, name)?;
                    let columns = match how {
                        CategoryOut::OneHot(index) => index.len() + 1,
                        _ => 1,
                    };
                    for r in 0..rows {
                        let value = text_at(&values, r).or(fill.as_deref());
                        let cell = &mut out[r * width + offset..r * width + offset + columns];
                        match (how, value) {
                            (CategoryOut::OneHot(index), Some(v)) => {
                                cell[index.get(v).copied().unwrap_or(index.len())] = 1.0;
                            }
                            (CategoryOut::OneHot(_), None) => {}
                            (CategoryOut::Ordinal(index), Some(v)) => {
                                cell[0] = index.get(v).copied().unwrap_or(index.len()) as f32;
                            }
                            (CategoryOut::Hash(buckets), Some(v)) => cell[0] = bucket(v, *buckets),
                            (CategoryOut::Ordinal(_) | CategoryOut::Hash(_), None) => {
                                cell[0] = f32::NAN;
                            }
                        }
                    }
                    offset += columns;
                }
            }
        }
        matrix(rows, width, out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, StringArray};
    use proptest::prelude::*;

    use super::*;
    use crate::fit;

    fn batch(numbers: Vec<Option<f64>>, texts: Vec<Option<&str>>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("x", Arc::new(Float64Array::from(numbers)) as ArrayRef),
            ("c", Arc::new(StringArray::from(texts)) as ArrayRef),
        ])
        .expect("batch")
    }

    fn spec(yaml: &str) -> FeatureSpec {
        FeatureSpec::from_yaml(yaml).expect("spec")
    }

    #[test]
    fn unseen_and_missing_categories_have_their_own_columns_or_values() {
        let training = batch(vec![Some(1.0); 3], vec![Some("b"), Some("a"), Some("b")]);
        let fitted = fit(
            &spec("fields:\n  - {name: c, type: category, transform: {one_hot: {}}}\n  - {name: x, type: number}\n"),
            &[training],
        )
        .expect("fit");
        let pipeline = Pipeline::compile(&fitted).expect("compile");
        assert_eq!(pipeline.output_names(), ["c=a", "c=b", "c=__other__", "x"]);
        let m = pipeline
            .apply(&batch(
                vec![Some(2.0), None, Some(3.0)],
                vec![Some("a"), Some("zzz"), None],
            ))
            .expect("apply");
        assert_eq!(m.row(0), [1.0, 0.0, 0.0, 2.0]);
        assert_eq!(m.row(1)[..3], [0.0, 0.0, 1.0], "unseen goes to __other__");
        assert!(m.row(1)[3].is_nan(), "a missing number stays missing");
        assert_eq!(m.row(2)[..3], [0.0, 0.0, 0.0], "missing is all zeros");
    }

    #[test]
    fn ordinal_gives_unseen_the_vocabulary_length_and_keeps_missing() {
        let fitted = spec(
            "fields:\n  - {name: c, type: category, transform: {ordinal: {vocabulary: [a, b]}}}\n",
        );
        let m = Pipeline::compile(&fitted)
            .expect("compile")
            .apply(&batch(vec![None; 3], vec![Some("b"), Some("q"), None]))
            .expect("apply");
        assert_eq!(m.row(0), [1.0]);
        assert_eq!(m.row(1), [2.0]);
        assert!(m.row(2)[0].is_nan());
    }

    #[test]
    fn constant_columns_and_out_of_domain_values_do_not_divide_by_zero() {
        let training = batch(vec![Some(5.0); 4], vec![Some("a"); 4]);
        let fitted = fit(
            &spec("fields:\n  - {name: x, type: number, transform: {standardize: {}}}\n"),
            std::slice::from_ref(&training),
        )
        .expect("fit");
        let m = Pipeline::compile(&fitted)
            .expect("compile")
            .apply(&training)
            .expect("apply");
        assert!(m.values().iter().all(|v| *v == 0.0), "{:?}", m.values());
        let log = spec("fields:\n  - {name: x, type: number, transform: {log1p: {}}}\n");
        let m = Pipeline::compile(&log)
            .expect("compile")
            .apply(&batch(vec![Some(-2.0), Some(0.0)], vec![None, None]))
            .expect("apply");
        assert!(m.row(0)[0].is_nan());
        assert_eq!(m.row(1)[0], 0.0);
    }

    #[test]
    fn bucket_edges_count_the_edges_at_or_below() {
        let fitted = spec(
            "fields:\n  - {name: x, type: number, transform: {bucketize: {edges: [1, 2, 3]}}}\n",
        );
        let m = Pipeline::compile(&fitted)
            .expect("compile")
            .apply(&batch(
                vec![Some(0.5), Some(1.0), Some(2.5), Some(3.0), Some(9.0)],
                vec![None; 5],
            ))
            .expect("apply");
        assert_eq!(m.values(), [0.0, 1.0, 2.0, 3.0, 3.0]);
    }

    #[test]
    fn text_where_a_number_belongs_is_an_error_naming_the_field() {
        let pipeline =
            Pipeline::compile(&spec("fields:\n  - {name: c, type: number}\n")).expect("compile");
        // Column `c` holds text: "2" reads as a number, "abc" does not.
        let err = pipeline
            .apply(&batch(vec![None, None], vec![Some("2"), Some("abc")]))
            .expect_err("not a number");
        let text = err.to_string();
        assert!(text.contains("field c") && text.contains("abc"), "{text}");
    }

    #[test]
    fn a_spec_with_open_parameters_is_not_compiled() {
        let err = Pipeline::compile(&spec(
            "fields:\n  - {name: x, type: number, impute: {mean: {}}, transform: {min_max: {}}}\n",
        ))
        .expect_err("unfitted");
        let text = err.to_string();
        assert!(
            text.contains("x.impute.mean.value") && text.contains("x.transform.min_max"),
            "{text}"
        );
    }

    proptest! {
        /// One batch or the same rows in several: the same numbers, bit for bit.
        #[test]
        fn splitting_the_rows_into_batches_changes_nothing(
            rows in proptest::collection::vec((proptest::option::of(-1e6f64..1e6), proptest::option::of("[a-e]")), 1..60),
            cut in 0usize..60,
        ) {
            let numbers: Vec<Option<f64>> = rows.iter().map(|r| r.0).collect();
            let texts: Vec<Option<&str>> = rows.iter().map(|r| r.1.as_deref()).collect();
            let all = batch(numbers.clone(), texts.clone());
            let fitted = fit(
                &spec("fields:\n  - {name: x, type: number, impute: {median: {}}, transform: {standardize: {}}}\n  - {name: c, type: category, impute: {mode: {}}, transform: {one_hot: {}}}\n"),
                std::slice::from_ref(&all),
            );
            // A column with no values at all has nothing to fit on: that is an error, not a panic.
            let Ok(fitted) = fitted else { return Ok(()) };
            let pipeline = Pipeline::compile(&fitted).expect("compile");
            let whole = pipeline.apply(&all).expect("apply");
            let cut = cut.min(rows.len());
            let first = pipeline.apply(&batch(numbers[..cut].to_vec(), texts[..cut].to_vec())).expect("first");
            let rest = pipeline.apply(&batch(numbers[cut..].to_vec(), texts[cut..].to_vec())).expect("rest");
            let joined: Vec<u32> = first.values().iter().chain(rest.values()).map(|v| v.to_bits()).collect();
            let bits: Vec<u32> = whole.values().iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(joined, bits);
            // And fitting again gives the same spec.
            let again = fit(&spec(&fitted.to_yaml().expect("yaml")), std::slice::from_ref(&all)).expect("refit");
            prop_assert_eq!(again, fitted);
        }
    }
}
