//! Per-request comparison of a shadow's outputs with the primary's. [`ShadowComparison`] is fed
//! one pair of outputs per mirrored request and keeps, in bounded memory:
//!
//! - the class agreement rate: predicted class labels when given, else the argmax of the scores
//!   when there are at least two;
//! - |Δ|, the largest absolute difference between corresponding scores of a pair (L∞): its
//!   mean, and its quantiles (p99) from a log-bucketed histogram whose estimates are within about
//!   1 % relative error ([`RELATIVE_ERROR`]); differences below 1e-9 count as 0;
//! - the worst examples (largest |Δ|, ties by prediction id) for inspection.
//!
//! Pairs whose scores differ in length, are empty or are not finite are counted as incomparable.
//! Comparisons from several windows or replicas [`merge`](ShadowComparison::merge) into the one
//! feeding them all would give (the mean of |Δ| up to floating-point rounding).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use berth_core::{NamedTensor, OutputValues, output_values};
use serde::{Deserialize, Serialize};

/// Ratio between consecutive histogram bucket bounds.
const GAMMA: f64 = 1.02;
/// Largest relative error of a quantile estimate: (γ − 1) / (γ + 1).
pub const RELATIVE_ERROR: f64 = (GAMMA - 1.0) / (GAMMA + 1.0);
/// Differences below this are counted as exactly 0.
const ZERO_BELOW: f64 = 1e-9;

/// Counts of |Δ| in buckets `(γ^(i−1), γ^i]`, stored sparsely. Its size is bounded by the range
/// of f64 (under 37 000 buckets), in practice by the few decades that |Δ| spans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DeltaHistogram {
    zeros: u64,
    buckets: BTreeMap<i32, u64>,
}

impl DeltaHistogram {
    fn add(&mut self, delta: f64) {
        if delta < ZERO_BELOW {
            self.zeros += 1;
        } else {
            let index = (delta.ln() / GAMMA.ln()).ceil() as i32;
            *self.buckets.entry(index).or_default() += 1;
        }
    }

    fn merge(&mut self, other: &Self) {
        self.zeros += other.zeros;
        for (&index, &count) in &other.buckets {
            *self.buckets.entry(index).or_default() += count;
        }
    }

    /// The nearest-rank `q` quantile, estimated by its bucket's relative-error midpoint.
    fn quantile(&self, q: f64, total: u64) -> f64 {
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = self.zeros;
        if seen >= rank {
            return 0.0;
        }
        for (&index, &count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return 2.0 * GAMMA.powi(index) / (GAMMA + 1.0);
            }
        }
        // Unreachable while counts add up to `total`; the largest bucket is the safe answer.
        self.buckets
            .keys()
            .next_back()
            .map_or(0.0, |&index| GAMMA.powi(index))
    }
}

/// A compared request kept for inspection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowExample {
    pub prediction_id: String,
    pub abs_delta: f64,
    pub primary: Vec<f64>,
    pub shadow: Vec<f64>,
    /// (primary's class, shadow's class), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<(String, String)>,
}

impl ShadowExample {
    /// Worst first: larger |Δ|, then smaller prediction id.
    fn worse_first(&self, other: &Self) -> Ordering {
        other
            .abs_delta
            .total_cmp(&self.abs_delta)
            .then_with(|| self.prediction_id.cmp(&other.prediction_id))
    }
}

/// Accumulated comparison of a shadow with the primary. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowComparison {
    compared: u64,
    incomparable: u64,
    classified: u64,
    agreed: u64,
    abs_delta_sum: f64,
    abs_delta: DeltaHistogram,
    worst_capacity: usize,
    /// Sorted worst first, at most `worst_capacity` long.
    worst: Vec<ShadowExample>,
}

impl ShadowComparison {
    /// An empty comparison that keeps the `worst_capacity` worst examples.
    pub fn new(worst_capacity: usize) -> Self {
        Self {
            compared: 0,
            incomparable: 0,
            classified: 0,
            agreed: 0,
            abs_delta_sum: 0.0,
            abs_delta: DeltaHistogram::default(),
            worst_capacity,
            worst: Vec::new(),
        }
    }

    /// Adds one mirrored request: both sides' scores and, when the model names classes, the
    /// class each side predicted.
    pub fn record(
        &mut self,
        prediction_id: &str,
        primary: &[f64],
        shadow: &[f64],
        classes: Option<(&str, &str)>,
    ) {
        let delta = abs_delta(primary, shadow);
        let agrees = match (classes, delta) {
            (Some((p, s)), _) => Some(p == s),
            (None, Some(_)) if primary.len() >= 2 => Some(argmax(primary) == argmax(shadow)),
            (None, _) => None,
        };
        if let Some(agrees) = agrees {
            self.classified += 1;
            self.agreed += u64::from(agrees);
        }
        let Some(delta) = delta else {
            self.incomparable += 1;
            return;
        };
        self.compared += 1;
        self.abs_delta_sum += delta;
        self.abs_delta.add(delta);
        let enters = self.worst.len() < self.worst_capacity
            || self.worst.last().is_some_and(|least| {
                delta > least.abs_delta
                    || (delta == least.abs_delta && prediction_id < least.prediction_id.as_str())
            });
        if enters {
            self.keep(ShadowExample {
                prediction_id: prediction_id.to_owned(),
                abs_delta: delta,
                primary: primary.to_vec(),
                shadow: shadow.to_vec(),
                classes: classes.map(|(p, s)| (p.to_owned(), s.to_owned())),
            });
        }
    }

    /// Adds the rows of one mirrored request from both sides' model outputs, one comparison per
    /// row (`ID` for one row, `ID#r` for row `r` of several): the scores are every numeric output
    /// column ([`berth_core::output_values`]: probabilities or values), the classes the `label`
    /// column when there is one.
    pub fn record_outputs(
        &mut self,
        prediction_id: &str,
        primary: &[NamedTensor],
        shadow: &[NamedTensor],
    ) {
        let primary = RowsOf::new(primary);
        let shadow = RowsOf::new(shadow);
        let rows = primary.rows.max(shadow.rows);
        for r in 0..rows {
            let id = if rows == 1 {
                prediction_id.to_owned()
            } else {
                format!("{prediction_id}#{r}")
            };
            let classes = match (primary.label(r), shadow.label(r)) {
                (Some(p), Some(s)) => Some((p, s)),
                _ => None,
            };
            self.record(&id, &primary.scores(r), &shadow.scores(r), classes);
        }
    }

    fn keep(&mut self, example: ShadowExample) {
        let at = self
            .worst
            .partition_point(|kept| kept.worse_first(&example) == Ordering::Less);
        self.worst.insert(at, example);
        self.worst.truncate(self.worst_capacity);
    }

    /// Adds another comparison, as if its requests had been recorded here. The worst examples
    /// kept are the smaller of both capacities.
    pub fn merge(&mut self, other: &Self) {
        self.compared += other.compared;
        self.incomparable += other.incomparable;
        self.classified += other.classified;
        self.agreed += other.agreed;
        self.abs_delta_sum += other.abs_delta_sum;
        self.abs_delta.merge(&other.abs_delta);
        self.worst_capacity = self.worst_capacity.min(other.worst_capacity);
        self.worst.truncate(self.worst_capacity);
        for example in &other.worst {
            self.keep(example.clone());
        }
    }

    /// Requests recorded.
    pub fn requests(&self) -> u64 {
        self.compared + self.incomparable
    }

    /// Requests whose scores could not be compared (different lengths, empty, not finite).
    pub fn incomparable(&self) -> u64 {
        self.incomparable
    }

    /// Share of requests with a known class on both sides where the classes agree.
    pub fn agreement_rate(&self) -> Option<f64> {
        (self.classified > 0).then(|| self.agreed as f64 / self.classified as f64)
    }

    /// Mean |Δ| over compared requests.
    pub fn mean_abs_delta(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.abs_delta_sum / self.compared as f64)
    }

    /// The `q` quantile (0..=1, nearest rank) of |Δ|, within [`RELATIVE_ERROR`].
    pub fn quantile_abs_delta(&self, q: f64) -> Option<f64> {
        (self.compared > 0 && (0.0..=1.0).contains(&q))
            .then(|| self.abs_delta.quantile(q, self.compared))
    }

    /// The 99th percentile of |Δ|.
    pub fn p99_abs_delta(&self) -> Option<f64> {
        self.quantile_abs_delta(0.99)
    }

    /// The examples with the largest |Δ|, worst first.
    pub fn worst(&self) -> &[ShadowExample] {
        &self.worst
    }
}

/// L∞ distance of two score vectors, `None` when they cannot be compared.
fn abs_delta(primary: &[f64], shadow: &[f64]) -> Option<f64> {
    if primary.is_empty() || primary.len() != shadow.len() {
        return None;
    }
    let delta = primary
        .iter()
        .zip(shadow)
        .map(|(p, s)| (p - s).abs())
        .fold(0.0, f64::max);
    let all_finite = primary.iter().chain(shadow).all(|v| v.is_finite());
    (all_finite && delta.is_finite()).then_some(delta)
}

/// Index of the first largest score.
fn argmax(scores: &[f64]) -> usize {
    scores
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

/// One side's outputs as columns, read by row.
struct RowsOf {
    rows: usize,
    scores: Vec<Vec<f64>>,
    labels: Option<Vec<String>>,
}

impl RowsOf {
    fn new(outputs: &[NamedTensor]) -> Self {
        let mut scores = Vec::new();
        let mut labels = None;
        for (_, values) in output_values(outputs) {
            match values {
                OutputValues::Numbers(v) => scores.push(v),
                OutputValues::Labels(v) => labels = labels.or(Some(v)),
            }
        }
        let rows = scores
            .iter()
            .map(Vec::len)
            .chain(labels.as_ref().map(Vec::len))
            .max()
            .unwrap_or(0);
        Self {
            rows,
            scores,
            labels,
        }
    }

    /// Row `r`'s scores; a row missing on this side gives none (incomparable).
    fn scores(&self, r: usize) -> Vec<f64> {
        self.scores
            .iter()
            .filter_map(|column| column.get(r).copied())
            .collect()
    }

    fn label(&self, r: usize) -> Option<&str> {
        self.labels.as_ref()?.get(r).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn agreement_from_labels_or_argmax() {
        let mut c = ShadowComparison::new(2);
        c.record("a", &[0.75, 0.25], &[0.5, 0.5], None);
        c.record("b", &[0.75, 0.25], &[0.25, 0.75], None);
        c.record("c", &[0.75], &[0.25], Some(("yes", "yes")));
        c.record("d", &[3.5], &[3.0], None);
        c.record("e", &[0.5, 0.5], &[0.5], Some(("no", "yes")));
        c.record("f", &[f64::NAN, 0.5], &[0.1, 0.5], None);
        assert_eq!(c.requests(), 6);
        assert_eq!(c.incomparable(), 2);
        assert_eq!(
            c.agreement_rate(),
            Some(2.0 / 4.0),
            "a, c agree; b, e disagree"
        );
        assert_eq!(c.mean_abs_delta(), Some((0.25 + 0.5 + 0.5 + 0.5) / 4.0));
        let worst: Vec<(&str, f64)> = c
            .worst()
            .iter()
            .map(|e| (e.prediction_id.as_str(), e.abs_delta))
            .collect();
        assert_eq!(worst, [("b", 0.5), ("c", 0.5)], "ties go by id");
        assert_eq!(c.worst()[1].classes, Some(("yes".into(), "yes".into())));
    }

    #[test]
    fn empty_comparison_has_no_statistics() {
        let c = ShadowComparison::new(3);
        assert_eq!(c.agreement_rate(), None);
        assert_eq!(c.mean_abs_delta(), None);
        assert_eq!(c.p99_abs_delta(), None);
        let mut single = c.clone();
        single.record("x", &[1.0], &[1.0], None);
        assert_eq!(single.p99_abs_delta(), Some(0.0));
        assert_eq!(single.quantile_abs_delta(1.5), None);
    }

    #[test]
    fn quantiles_are_within_the_relative_error() {
        let mut c = ShadowComparison::new(0);
        let mut deltas = Vec::new();
        for i in 0..5000_u32 {
            let shadow = 0.25 + 1e-4 * 1.0037_f64.powi(i as i32 % 3000) + f64::from(i % 7) * 1e-3;
            c.record(&i.to_string(), &[0.25], &[shadow], None);
            deltas.push(shadow - 0.25);
        }
        deltas.sort_by(f64::total_cmp);
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            let rank = ((q * deltas.len() as f64).ceil() as usize).max(1);
            let exact = deltas[rank - 1];
            let estimate = c.quantile_abs_delta(q).unwrap();
            let error = (estimate - exact).abs() / exact;
            assert!(
                error <= RELATIVE_ERROR + 1e-9,
                "q {q}: {estimate} vs {exact}"
            );
        }
        assert!(c.worst().is_empty());
    }

    #[test]
    fn serde_round_trip_is_exact() {
        let mut c = ShadowComparison::new(3);
        c.record("a", &[0.1, 0.9], &[0.3, 0.7], Some(("b", "b")));
        c.record("b", &[1e-12], &[0.0], None);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ShadowComparison>(&json).unwrap(), c);
    }

    type Pair = (Vec<f64>, Vec<f64>, Option<(bool, bool)>);

    fn pair() -> impl Strategy<Value = Pair> {
        (1_usize..4).prop_flat_map(|n| {
            let scores = proptest::collection::vec(-10.0..10.0_f64, n);
            let shadow = prop_oneof![
                9 => proptest::collection::vec(-10.0..10.0_f64, n),
                1 => proptest::collection::vec(-10.0..10.0_f64, 1..4),
            ];
            (scores, shadow, proptest::option::of(any::<(bool, bool)>()))
        })
    }

    fn feed(c: &mut ShadowComparison, pairs: &[Pair], first_id: usize) {
        for (i, (primary, shadow, classes)) in pairs.iter().enumerate() {
            let label = |b: bool| if b { "yes" } else { "no" };
            let classes = classes.map(|(p, s)| (label(p), label(s)));
            c.record(&format!("{:05}", first_id + i), primary, shadow, classes);
        }
    }

    proptest! {
        #[test]
        fn merge_equals_feeding_both(
            a in proptest::collection::vec(pair(), 0..40),
            b in proptest::collection::vec(pair(), 0..40),
            capacity in 0_usize..6,
        ) {
            let mut left = ShadowComparison::new(capacity);
            feed(&mut left, &a, 0);
            let mut right = ShadowComparison::new(capacity);
            feed(&mut right, &b, a.len());
            let mut all = ShadowComparison::new(capacity);
            feed(&mut all, &a, 0);
            feed(&mut all, &b, a.len());

            let mut merged = left.clone();
            merged.merge(&right);
            let mut reversed = right.clone();
            reversed.merge(&left);
            for m in [&merged, &reversed] {
                prop_assert!((m.abs_delta_sum - all.abs_delta_sum).abs() <= 1e-9 * (1.0 + all.abs_delta_sum));
                let exact_sum = ShadowComparison { abs_delta_sum: all.abs_delta_sum, ..m.clone() };
                prop_assert_eq!(&exact_sum, &all);
            }
        }
    }
}
