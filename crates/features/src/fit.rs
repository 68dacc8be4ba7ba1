//! Fitting a spec on data: every parameter left open is computed, in field order, the way
//! scikit-learn computes it (population std, sorted vocabularies, numpy's linear quantiles).
//! Imputation parameters come from the raw values; transform parameters from the values after
//! imputation and clipping, as a pipeline would see them. Given parameters are kept.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;

use crate::columns::{field_numbers, text_at, texts};
use crate::spec::{
    Bucketize, FeatureSpec, FieldKind, FieldSpec, Fitted, FittedCategory, Impute, MinMax,
    Standardize, Transform, Vocabulary,
};
use crate::{FeatureError, pipeline};

/// Fits `spec` on `batches` (all of the fitting data); returns the fitted spec.
pub fn fit(spec: &FeatureSpec, batches: &[RecordBatch]) -> Result<FeatureSpec, FeatureError> {
    let problems = spec.validate();
    if !problems.is_empty() {
        return Err(FeatureError::Spec(problems));
    }
    let fields = spec
        .fields
        .iter()
        .map(|field| match field.kind {
            FieldKind::Number => fit_number(field, batches),
            FieldKind::Category => fit_category(field, batches),
        })
        .collect::<Result<_, _>>()?;
    Ok(FeatureSpec { fields })
}

fn fit_number(field: &FieldSpec, batches: &[RecordBatch]) -> Result<FieldSpec, FeatureError> {
    let expr = pipeline::parsed_expr(field)?;
    let mut values = Vec::new();
    for batch in batches {
        values.extend(field_numbers(batch, &field.name, expr.as_ref())?);
    }
    let mut present: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    present.sort_by(f64::total_cmp);
    let empty = |what: &str| FeatureError::NothingToFit {
        field: field.name.clone(),
        parameter: what.to_string(),
    };
    let mut fitted = field.clone();
    fitted.impute = match &field.impute {
        Some(Impute::Mean(Fitted { value: None })) => Some(Impute::Mean(Fitted {
            value: Some(mean(&present).ok_or_else(|| empty("impute.mean"))?),
        })),
        Some(Impute::Median(Fitted { value: None })) => Some(Impute::Median(Fitted {
            value: Some(quantile(&present, 0.5).ok_or_else(|| empty("impute.median"))?),
        })),
        Some(Impute::Mode(FittedCategory { value: None })) => {
            let mode = mode(present.iter().map(|x| pipeline::number_text(*x)))
                .ok_or_else(|| empty("impute.mode"))?;
            Some(Impute::Mode(FittedCategory { value: Some(mode) }))
        }
        other => other.clone(),
    };
    // What the transform sees: imputed and clipped.
    let step = pipeline::NumberPrep::compile(&fitted)?;
    let mut prepared: Vec<f64> = values
        .into_iter()
        .map(|x| step.prepare(x))
        .filter(|x| x.is_finite())
        .collect();
    prepared.sort_by(f64::total_cmp);
    fitted.transform = match &field.transform {
        Some(Transform::Standardize(s)) => {
            let m = match s.mean {
                Some(m) => m,
                None => mean(&prepared).ok_or_else(|| empty("transform.standardize"))?,
            };
            let std = match s.std {
                Some(v) => v,
                None => {
                    let n = prepared.len() as f64;
                    (prepared.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt()
                }
            };
            Some(Transform::Standardize(Standardize {
                mean: Some(m),
                std: Some(std),
            }))
        }
        Some(Transform::MinMax(mm)) => Some(Transform::MinMax(MinMax {
            min: mm.min.or(prepared.first().copied()),
            max: mm.max.or(prepared.last().copied()),
        })),
        Some(Transform::Bucketize(b)) if b.edges.is_none() => {
            let q = b.quantiles.unwrap_or(4);
            let mut edges: Vec<f64> = (1..q)
                .map(|i| quantile(&prepared, f64::from(i) / f64::from(q)))
                .collect::<Option<_>>()
                .ok_or_else(|| empty("transform.bucketize"))?;
            edges.dedup();
            Some(Transform::Bucketize(Bucketize {
                edges: Some(edges),
                quantiles: b.quantiles,
            }))
        }
        other => other.clone(),
    };
    Ok(fitted)
}

fn fit_category(field: &FieldSpec, batches: &[RecordBatch]) -> Result<FieldSpec, FeatureError> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut missing = 0u64;
    for batch in batches {
        let t = texts(batch, &field.name)?;
        for i in 0..batch.num_rows() {
            match text_at(&t, i) {
                Some(v) => *counts.entry(v.to_string()).or_default() += 1,
                None => missing += 1,
            }
        }
    }
    let mut fitted = field.clone();
    fitted.impute = match &field.impute {
        Some(Impute::Mode(FittedCategory { value: None })) => {
            let (value, _) = counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .ok_or_else(|| FeatureError::NothingToFit {
                    field: field.name.clone(),
                    parameter: "impute.mode".into(),
                })?;
            Some(Impute::Mode(FittedCategory {
                value: Some(value.clone()),
            }))
        }
        other => other.clone(),
    };
    // Imputed values count for the vocabulary, as a pipeline would see them.
    if let Some(fill) = pipeline::category_fill(&fitted) {
        *counts.entry(fill).or_default() += missing;
    }
    let vocabulary = |v: &Vocabulary| -> Vocabulary {
        if v.vocabulary.is_some() {
            return v.clone();
        }
        let mut kept: Vec<(&String, &u64)> = counts.iter().collect();
        if let Some(max) = v.max_values {
            kept.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            kept.truncate(max);
        }
        let mut values: Vec<String> = kept.into_iter().map(|(k, _)| k.clone()).collect();
        values.sort();
        Vocabulary {
            vocabulary: Some(values),
            max_values: v.max_values,
        }
    };
    fitted.transform = match &field.transform {
        Some(Transform::OneHot(v)) => Some(Transform::OneHot(vocabulary(v))),
        Some(Transform::Ordinal(v)) => Some(Transform::Ordinal(vocabulary(v))),
        other => other.clone(),
    };
    Ok(fitted)
}

fn mean(sorted: &[f64]) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted.iter().sum::<f64>() / sorted.len() as f64)
}

/// numpy's default (linear) quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let position = q * last as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let weight = position - below as f64;
    Some(sorted[below] + (sorted[above] - sorted[below]) * weight)
}

/// The most frequent value; ties go to the smallest.
fn mode(values: impl Iterator<Item = String>) -> Option<String> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(v, _)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // numpy.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75]) = [1.75, 2.5, 3.25]
        assert_eq!(quantile(&v, 0.25), Some(1.75));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&v, 0.75), Some(3.25));
        assert_eq!(quantile(&[7.0], 0.3), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_mode_breaks_ties_by_the_smallest_value() {
        let values = ["b", "a", "b", "a", "c"].map(String::from);
        assert_eq!(mode(values.into_iter()), Some("a".to_string()));
    }
}
