//! The feature spec as people write it (YAML), and as fitting completes it.
//!
//! ```yaml
//! fields:
//!   - name: tenure_months
//!     type: number
//!     impute: {median: {}}          # fitted: {median: {value: 24.0}}
//!     clip: {min: 0, max: 120}
//!     transform: {standardize: {}}  # fitted: {standardize: {mean: 30.1, std: 20.4}}
//!   - name: plan
//!     type: category
//!     impute: {constant: basic}
//!     transform: {one_hot: {}}      # fitted: {one_hot: {vocabulary: [basic, premium, standard]}}
//! ```
//!
//! A field is imputed, then clipped, then transformed. Every parameter that fitting computes is
//! optional in the spec; [`FeatureSpec::validate`] lists every problem (field, expected, got),
//! and a spec with every parameter present is *fitted* and can be compiled.

use serde::{Deserialize, Serialize};

/// The feature spec: fields in the order their output columns reach the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    pub fields: Vec<FieldSpec>,
}

/// One input field and what is done to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    /// For a derived number: computed from the data's number columns (see [`crate::expr`])
    /// instead of read from a column of this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_yaml::with::singleton_map"
    )]
    pub impute: Option<Impute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<Clip>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "serde_yaml::with::singleton_map"
    )]
    pub transform: Option<Transform>,
}

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// Numbers (integers and booleans are read as numbers).
    Number,
    /// Values from a set, read as text (numbers are read as their text).
    Category,
}

/// A fitted number: absent until fitting computes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fitted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// A fitted category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FittedCategory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What replaces a missing value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Impute {
    /// A given value: a number for number fields, text for categories.
    Constant(serde_yaml::Value),
    /// The mean of the fitting data (numbers).
    Mean(Fitted),
    /// The median of the fitting data (numbers; the mean of the two middle values when even).
    Median(Fitted),
    /// The most frequent value of the fitting data (ties: the smallest).
    Mode(FittedCategory),
}

/// Bounds a number field's values (after imputation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clip {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// How a field becomes the model's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// `(x - mean) / std` (population std; a std of 0 divides by 1). One column.
    Standardize(Standardize),
    /// `(x - min) / (max - min)` (a range of 0 divides by 1). One column.
    MinMax(MinMax),
    /// `ln(1 + x)`; NaN below -1. One column.
    Log1p {},
    /// One column per vocabulary value (`name=value`, 1 or 0), plus `name=__other__` for values
    /// outside it. A missing value is all zeros.
    OneHot(Vocabulary),
    /// The value's index in the vocabulary; values outside it get the vocabulary's length;
    /// missing stays missing (NaN). One column.
    Ordinal(Vocabulary),
    /// The index of the bucket: the number of edges at or below the value. Edges given, or
    /// fitted as the `quantiles`-quantiles of the fitting data (linear interpolation, as
    /// numpy's default). One column.
    Bucketize(Bucketize),
    /// A stable hash (FNV-1a of the value's text) modulo `buckets`. One column.
    Hash { buckets: u32 },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standardize {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinMax {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// The known values, in column order (fitted: sorted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<Vec<String>>,
    /// Fit at most this many values (the most frequent, then sorted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_values: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucketize {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantiles: Option<u32>,
}

/// One problem with a spec: the field, what it should be, what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecProblem {
    pub field: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.field, self.expected, self.got
        )
    }
}

impl FeatureSpec {
    /// Reads a spec (fitted or not) from YAML.
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// The spec as YAML; the same spec always gives the same text.
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }

    /// Every problem that does not depend on data: names, kinds, bounds, parameters.
    pub fn validate(&self) -> Vec<SpecProblem> {
        let mut problems = Vec::new();
        let mut push = |field: String, expected: &str, got: String| {
            problems.push(SpecProblem {
                field,
                expected: expected.to_string(),
                got,
            });
        };
        if self.fields.is_empty() {
            push("fields".into(), "at least one field", "none".into());
        }
        for (i, f) in self.fields.iter().enumerate() {
            let at = |what: &str| format!("fields[{i}] ({}).{what}", f.name);
            if f.name.trim().is_empty() {
                push(
                    format!("fields[{i}].name"),
                    "a column name",
                    "an empty one".into(),
                );
            }
            if self.fields[..i].iter().any(|g| g.name == f.name) {
                push(at("name"), "a name used once", "a repeated one".into());
            }
            let number = f.kind == FieldKind::Number;
            if let Some(text) = &f.expr {
                if !number {
                    push(
                        at("expr"),
                        "an expression only on a number field",
                        "a category".into(),
                    );
                }
                if let Err(e) = crate::expr::Expr::parse(text) {
                    push(
                        at("expr"),
                        "an arithmetic expression",
                        format!("{text:?} ({e})"),
                    );
                }
            }
            match &f.impute {
                Some(Impute::Constant(v)) if number && v.as_f64().is_none() => {
                    push(at("impute.constant"), "a number", format!("{v:?}"))
                }
                Some(Impute::Constant(v)) if !number && v.as_str().is_none() => {
                    push(at("impute.constant"), "text", format!("{v:?}"))
                }
                Some(Impute::Mean(_) | Impute::Median(_)) if !number => push(
                    at("impute"),
                    "constant or mode for a category",
                    "mean or median".into(),
                ),
                _ => {}
            }
            if let Some(clip) = &f.clip {
                if !number {
                    push(at("clip"), "no clip on a category", "a clip".into());
                }
                if let (Some(lo), Some(hi)) = (clip.min, clip.max)
                    && lo > hi
                {
                    push(
                        at("clip"),
                        "min at most max",
                        format!("min {lo} > max {hi}"),
                    );
                }
            }
            match &f.transform {
                Some(Transform::Standardize(_) | Transform::MinMax(_) | Transform::Log1p {})
                    if !number =>
                {
                    push(
                        at("transform"),
                        "one_hot, ordinal or hash for a category",
                        "a numeric transform".into(),
                    )
                }
                Some(Transform::Bucketize(b)) => {
                    if !number {
                        push(
                            at("transform"),
                            "one_hot, ordinal or hash for a category",
                            "bucketize".into(),
                        );
                    }
                    match (&b.edges, b.quantiles) {
                        (None, None) => push(
                            at("transform.bucketize"),
                            "edges or quantiles",
                            "neither".into(),
                        ),
                        (Some(edges), _)
                            if edges.windows(2).any(|w| {
                                w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less)
                            }) || edges.iter().any(|e| !e.is_finite()) =>
                        {
                            push(
                                at("transform.bucketize.edges"),
                                "finite, strictly increasing numbers",
                                format!("{edges:?}"),
                            )
                        }
                        (None, Some(q)) if q < 2 => push(
                            at("transform.bucketize.quantiles"),
                            "at least 2",
                            q.to_string(),
                        ),
                        _ => {}
                    }
                }
                None if !number => push(
                    at("transform"),
                    "one_hot, ordinal or hash (a model takes numbers)",
                    "none".into(),
                ),
                Some(Transform::OneHot(_) | Transform::Ordinal(_)) if number => push(
                    at("transform"),
                    "standardize, min_max, log1p, bucketize or hash for a number",
                    "a category encoding".into(),
                ),
                Some(Transform::Hash { buckets: 0 }) => {
                    push(at("transform.hash.buckets"), "at least 1", "0".into())
                }
                Some(Transform::Standardize(Standardize { std: Some(s), .. }))
                    if s.is_nan() || *s < 0.0 =>
                {
                    push(
                        at("transform.standardize.std"),
                        "a number at least 0",
                        s.to_string(),
                    )
                }
                _ => {}
            }
        }
        problems
    }

    /// Parameters still to fit, as `field.parameter` (empty when the spec is fitted).
    pub fn unfitted(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for f in &self.fields {
            let mut need = |what: &str| missing.push(format!("{}.{what}", f.name));
            match &f.impute {
                Some(Impute::Mean(Fitted { value: None })) => need("impute.mean.value"),
                Some(Impute::Median(Fitted { value: None })) => need("impute.median.value"),
                Some(Impute::Mode(FittedCategory { value: None })) => need("impute.mode.value"),
                _ => {}
            }
            match &f.transform {
                Some(Transform::Standardize(s)) if s.mean.is_none() || s.std.is_none() => {
                    need("transform.standardize")
                }
                Some(Transform::MinMax(m)) if m.min.is_none() || m.max.is_none() => {
                    need("transform.min_max")
                }
                Some(Transform::OneHot(v) | Transform::Ordinal(v)) if v.vocabulary.is_none() => {
                    need("transform.vocabulary")
                }
                Some(Transform::Bucketize(b)) if b.edges.is_none() => {
                    need("transform.bucketize.edges")
                }
                _ => {}
            }
        }
        missing
    }
}
