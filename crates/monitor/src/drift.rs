//! Drift of one column and of a data set: which method, which threshold, and the verdict.
//!
//! Every applicable statistic is computed (they are cheap) and reported; one of them, the
//! column's method, decides. P-value methods (KS, χ²) drift when `p <= threshold`; distances
//! (normed Wasserstein, Jensen-Shannon, PSI, L∞) when `distance >= threshold`, where the
//! threshold used is the configured one raised to the [`noise_floor`] of the two sample sizes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bins::in_range_bins;
use crate::profile::{ColumnKind, ColumnProfile, Layout, Profile, ReferenceProfile, Values};
use crate::quality::{ColumnQuality, SchemaChanges};
use crate::stats::chi2::{ChiSquare, chi_square};
use crate::stats::divergence::{jensen_shannon, l_infinity, psi};
use crate::stats::gamma::chi2_upper_quantile;
use crate::stats::ks::{self, KsTest};
use crate::stats::wasserstein::{Segment, w1_segments, w1_sorted};

/// Below this many values on either side the default method is a test (KS, χ²).
pub const SMALL_SAMPLE: u64 = 1000;
/// Share of drifted columns from which the data set counts as drifted (Evidently's default).
pub const DATASET_SHARE: f64 = 0.5;
/// Floor of the reference standard deviation when norming W1, as Evidently.
pub const MIN_STD: f64 = 0.001;
/// Standard normal quantile of 0.999: noise floors are exceeded by chance about once in 1000.
const Z_999: f64 = 3.090232306167813;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Kolmogorov-Smirnov p-value (numeric).
    Ks,
    /// W1 normed by the reference standard deviation (numeric).
    Wasserstein,
    /// Jensen-Shannon distance on bins or categories.
    JensenShannon,
    /// Population stability index on bins or categories.
    Psi,
    /// χ² test p-value (categorical).
    ChiSquare,
    /// Largest difference of category shares (categorical).
    LInfinity,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Ks,
        Method::Wasserstein,
        Method::JensenShannon,
        Method::Psi,
        Method::ChiSquare,
        Method::LInfinity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::Wasserstein => "wasserstein",
            Method::JensenShannon => "jensen_shannon",
            Method::Psi => "psi",
            Method::ChiSquare => "chi_square",
            Method::LInfinity => "l_infinity",
        }
    }

    /// Parses a method name as [`Method::name`] writes it (also `js`, `chi2`, `linf`).
    pub fn parse(s: &str) -> Option<Method> {
        let s = s.to_ascii_lowercase().replace('-', "_");
        match s.as_str() {
            "js" | "jensenshannon" => Some(Method::JensenShannon),
            "chi2" | "chisquare" => Some(Method::ChiSquare),
            "linf" | "linfinity" => Some(Method::LInfinity),
            _ => Method::ALL.into_iter().find(|m| m.name() == s),
        }
    }

    /// Whether the method can judge a column of `kind`; `discrete` numeric columns (few
    /// distinct values) take the categorical methods too.
    pub fn applies_to(self, kind: ColumnKind, discrete: bool) -> bool {
        match self {
            Method::Ks | Method::Wasserstein => kind == ColumnKind::Numeric,
            Method::ChiSquare | Method::LInfinity => kind == ColumnKind::Categorical || discrete,
            Method::JensenShannon | Method::Psi => true,
        }
    }

    /// True for tests whose score is a p-value (drift when at or below the threshold).
    pub fn is_test(self) -> bool {
        matches!(self, Method::Ks | Method::ChiSquare)
    }

    pub fn default_threshold(self) -> f64 {
        if self.is_test() { 0.05 } else { 0.1 }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Method and threshold of one column; `None` fields fall back to the global setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    pub method: Option<Method>,
    pub threshold: Option<f64>,
}

/// How drift is decided, per model; the default is documented in the crate docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftConfig {
    /// Method for every column it applies to; `None`: the sample-size aware default.
    pub method: Option<Method>,
    /// Threshold for the global method; `None`: the method's default.
    pub threshold: Option<f64>,
    pub columns: BTreeMap<String, ColumnConfig>,
    /// Share of drifted columns from which the data set counts as drifted.
    pub dataset_share: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            method: None,
            threshold: None,
            columns: BTreeMap::new(),
            dataset_share: DATASET_SHARE,
        }
    }
}

impl DriftConfig {
    /// Checks the settings make sense: thresholds of tests (p-values) in (0, 1), of distances
    /// above 0, and a data set share in (0, 1]. Every problem is listed.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut check = |field: String, method: Option<Method>, threshold: Option<f64>| {
            let Some(t) = threshold else { return };
            let test = method.is_some_and(Method::is_test);
            let ok = t.is_finite() && t > 0.0 && (!test || t < 1.0);
            if !ok {
                let expected = if test {
                    "a p-value in (0, 1)"
                } else {
                    "a number above 0"
                };
                problems.push(format!("{field}: expected {expected}, got {t}"));
            }
        };
        check("threshold".into(), self.method, self.threshold);
        for (name, column) in &self.columns {
            check(
                format!("columns.{name}.threshold"),
                column.method.or(self.method),
                column.threshold,
            );
        }
        if !(self.dataset_share > 0.0 && self.dataset_share <= 1.0) {
            problems.push(format!(
                "dataset_share: expected a share in (0, 1], got {}",
                self.dataset_share
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The method and configured threshold for a column with `n` and `m` values laid out as
    /// `layout`. A discrete numeric column (few distinct reference values) gets the categorical
    /// default, as Evidently: KS on five values mostly measures ties.
    pub fn choose(&self, column: &str, layout: &Layout, n: u64, m: u64) -> (Method, f64) {
        let own = self.columns.get(column);
        let (kind, discrete) = (layout.kind(), layout.is_discrete());
        let auto = match (
            kind == ColumnKind::Numeric && !discrete,
            n.min(m) <= SMALL_SAMPLE,
        ) {
            (true, true) => Method::Ks,
            (true, false) => Method::Wasserstein,
            (false, true) => Method::ChiSquare,
            (false, false) => Method::JensenShannon,
        };
        let applicable = |m: Option<Method>| m.filter(|m| m.applies_to(kind, discrete));
        let (method, threshold) = match (applicable(own.and_then(|c| c.method)), own) {
            (Some(m), Some(c)) => (m, c.threshold),
            _ => match applicable(self.method) {
                Some(m) => (m, own.and_then(|c| c.threshold).or(self.threshold)),
                None => (auto, own.and_then(|c| c.threshold)),
            },
        };
        (method, threshold.unwrap_or(method.default_threshold()))
    }
}

/// The smallest distance threshold that two samples of `n` and `m` values from the same
/// distribution exceed only by chance (about once in a thousand), for a histogram of `slots`
/// non-empty bins or categories. With `s = 1/n + 1/m`: PSI ≈ s·χ²(k−1) and JS divergence ≈
/// s·χ²(k−1)/8 under no drift, so their floors use χ²'s 0.999 quantile; L∞ uses the two-sample
/// KS critical value 1.95·√s; normed W1 uses 4·√s (its mean under no drift is about 0.9·√s for
/// smooth data). Tests (KS, χ²) have no floor: their p-value already accounts for sample size.
pub fn noise_floor(method: Method, n: u64, m: u64, slots: usize) -> f64 {
    if n == 0 || m == 0 {
        return 0.0;
    }
    let s = 1.0 / n as f64 + 1.0 / m as f64;
    let chi2 = chi2_upper_quantile(slots.saturating_sub(1).max(1) as f64, Z_999);
    match method {
        Method::Ks | Method::ChiSquare => 0.0,
        Method::Psi => s * chi2,
        Method::JensenShannon => (s * chi2 / 8.0).sqrt(),
        Method::LInfinity => 1.95 * s.sqrt(),
        Method::Wasserstein => 4.0 * s.sqrt(),
    }
}

/// Every statistic that applies to the column; `None` where it does not or a side is empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    pub ks: Option<KsTest>,
    pub wasserstein: Option<f64>,
    pub wasserstein_normed: Option<f64>,
    pub psi: Option<f64>,
    pub jensen_shannon: Option<f64>,
    pub chi_square: Option<ChiSquare>,
    pub l_infinity: Option<f64>,
    /// True when KS and Wasserstein come from raw values, false when from bins.
    pub exact: bool,
}

impl Statistics {
    /// The score `method` is judged on: a p-value for tests, a distance otherwise.
    pub fn score(&self, method: Method) -> Option<f64> {
        match method {
            Method::Ks => self.ks.map(|t| t.p_value),
            Method::Wasserstein => self.wasserstein_normed,
            Method::JensenShannon => self.jensen_shannon,
            Method::Psi => self.psi,
            Method::ChiSquare => self.chi_square.map(|t| t.p_value),
            Method::LInfinity => self.l_infinity,
        }
    }
}

/// Reference and current counts on shared slots, with a label per slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub labels: Vec<String>,
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    pub kind: ColumnKind,
    pub method: Method,
    /// The method's value; `None` when a side has no values.
    pub score: Option<f64>,
    /// The threshold applied: the configured one, raised to the noise floor for distances.
    pub threshold: f64,
    pub drift: bool,
    /// Values placed on each side (missing, non-finite and rejected excluded).
    pub reference_count: u64,
    pub current_count: u64,
    pub statistics: Statistics,
    pub quality: ColumnQuality,
    pub histogram: Histogram,
}

/// Drift of every column of a data set, and the data set's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub reference_rows: u64,
    pub current_rows: u64,
    /// Drifted columns first, then by name.
    pub columns: Vec<ColumnDrift>,
    pub schema: SchemaChanges,
    pub drifted_columns: usize,
    /// Drifted columns over columns compared (0 when none were).
    pub drifted_share: f64,
    pub dataset_drift: bool,
}

impl DriftReport {
    pub(crate) fn new(
        reference_rows: u64,
        current_rows: u64,
        mut columns: Vec<ColumnDrift>,
        schema: SchemaChanges,
        config: &DriftConfig,
    ) -> Self {
        columns.sort_by(|a, b| b.drift.cmp(&a.drift).then(a.column.cmp(&b.column)));
        let drifted_columns = columns.iter().filter(|c| c.drift).count();
        let drifted_share = if columns.is_empty() {
            0.0
        } else {
            drifted_columns as f64 / columns.len() as f64
        };
        Self {
            reference_rows,
            current_rows,
            columns,
            schema,
            drifted_columns,
            drifted_share,
            dataset_drift: drifted_columns > 0 && drifted_share >= config.dataset_share,
        }
    }
}

/// Drift of a window's profile against its reference, from the bins (no raw values).
pub fn drift_profiles(
    reference: &ReferenceProfile,
    window: &Profile,
    config: &DriftConfig,
) -> DriftReport {
    let mut columns = Vec::new();
    for column in &reference.columns {
        let (Some(r), Some(c)) = (
            reference.profile.columns.get(&column.name),
            window.columns.get(&column.name),
        ) else {
            continue;
        };
        if c.total() > 0 {
            columns.push(column_drift(
                &column.name,
                &column.layout,
                r,
                c,
                None,
                config,
            ));
        }
    }
    let schema = SchemaChanges::of_profiles(reference, window);
    DriftReport::new(
        reference.profile.rows(),
        window.rows(),
        columns,
        schema,
        config,
    )
}

/// Drift of one column. `samples`, when given, are the ascending finite values of the
/// reference and current data, for exact KS and Wasserstein.
pub(crate) fn column_drift(
    name: &str,
    layout: &Layout,
    reference: &ColumnProfile,
    current: &ColumnProfile,
    samples: Option<(&[f64], &[f64])>,
    config: &DriftConfig,
) -> ColumnDrift {
    let histogram = aligned_histogram(layout, reference, current);
    let mut statistics = Statistics {
        psi: psi(&histogram.reference, &histogram.current),
        jensen_shannon: jensen_shannon(&histogram.reference, &histogram.current),
        exact: samples.is_some(),
        ..Statistics::default()
    };
    let (n, m) = (reference.placed(), current.placed());
    match (layout, &reference.values, &current.values) {
        (
            Layout::Numeric { edges, discrete },
            Values::Numeric { moments: rm, .. },
            Values::Numeric { moments: cm, .. },
        ) => {
            if *discrete {
                statistics.chi_square = chi_square(&histogram.reference, &histogram.current);
                statistics.l_infinity = l_infinity(&histogram.reference, &histogram.current);
            }
            let (d, w1) = match samples {
                Some((a, b)) => (ks::statistic_sorted(a, b), w1_sorted(a, b)),
                None => (
                    ks::statistic_binned(&histogram.reference, &histogram.current).unwrap_or(0.0),
                    (n > 0 && m > 0).then(|| {
                        w1_segments(
                            &segments(edges, &histogram.reference, rm),
                            &segments(edges, &histogram.current, cm),
                        )
                    }),
                ),
            };
            statistics.ks = ks::test(d, n as usize, m as usize);
            statistics.wasserstein = w1;
            statistics.wasserstein_normed = w1.map(|w| w / rm.std().max(MIN_STD));
        }
        _ => {
            statistics.chi_square = chi_square(&histogram.reference, &histogram.current);
            statistics.l_infinity = l_infinity(&histogram.reference, &histogram.current);
        }
    }
    let kind = layout.kind();
    let (method, configured) = config.choose(name, layout, n, m);
    let score = statistics.score(method);
    let slots = histogram
        .reference
        .iter()
        .zip(&histogram.current)
        .filter(|(a, b)| **a + **b > 0)
        .count();
    let threshold = if method.is_test() {
        configured
    } else {
        configured.max(noise_floor(method, n, m, slots))
    };
    let drift = match score {
        Some(s) if method.is_test() => s <= threshold,
        Some(s) => s >= threshold,
        None => false,
    };
    ColumnDrift {
        column: name.to_string(),
        kind,
        method,
        score,
        threshold,
        drift,
        reference_count: n,
        current_count: m,
        statistics,
        quality: ColumnQuality::new(reference, current),
        histogram,
    }
}

/// The side's histogram as evenly spread segments: in-range bins between their edges, the
/// out-of-range slots between the side's own extreme and the outer edge.
fn segments(edges: &[f64], counts: &[u64], moments: &crate::Moments) -> Vec<Segment> {
    let total: u64 = counts.iter().sum();
    let (Some(&first), Some(&last)) = (edges.first(), edges.last()) else {
        return Vec::new();
    };
    if total == 0 {
        return Vec::new();
    }
    let bins = in_range_bins(edges);
    counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| {
            let (lo, hi) = if i == 0 {
                (moments.min.unwrap_or(first).min(first), first)
            } else if i == bins + 1 {
                (last, moments.max.unwrap_or(last).max(last))
            } else if edges.len() == 1 {
                (first, first)
            } else {
                (edges[i - 1], edges[i])
            };
            Segment {
                lo,
                hi,
                share: c as f64 / total as f64,
            }
        })
        .collect()
}

fn aligned_histogram(
    layout: &Layout,
    reference: &ColumnProfile,
    current: &ColumnProfile,
) -> Histogram {
    match (layout, &reference.values, &current.values) {
        (
            Layout::Numeric { edges, .. },
            Values::Numeric { histogram: r, .. },
            Values::Numeric { histogram: c, .. },
        ) => Histogram {
            labels: bin_labels(edges),
            reference: r.clone(),
            current: c.clone(),
        },
        (
            Layout::Categorical { categories },
            Values::Categorical {
                counts: rc,
                unseen: ru,
                unseen_other: ro,
            },
            Values::Categorical {
                counts: cc,
                unseen: cu,
                unseen_other: co,
            },
        ) => {
            let mut h = Histogram {
                labels: categories.clone(),
                reference: rc.clone(),
                current: cc.clone(),
            };
            let mut extra: Vec<&String> = ru.keys().chain(cu.keys()).collect();
            extra.sort();
            extra.dedup();
            for name in extra {
                h.labels.push(name.clone());
                h.reference.push(ru.get(name).copied().unwrap_or(0));
                h.current.push(cu.get(name).copied().unwrap_or(0));
            }
            if ro + co > 0 {
                h.labels.push("(other unseen)".into());
                h.reference.push(*ro);
                h.current.push(*co);
            }
            h
        }
        _ => Histogram::default(),
    }
}

fn bin_labels(edges: &[f64]) -> Vec<String> {
    let (Some(first), Some(last)) = (edges.first(), edges.last()) else {
        return vec!["below".into(), "above".into()];
    };
    let mut labels = vec![format!("< {}", short(*first))];
    if edges.len() == 1 {
        labels.push(format!("= {}", short(*first)));
    } else {
        for (i, w) in edges.windows(2).enumerate() {
            let close = if i + 2 == edges.len() { "]" } else { ")" };
            labels.push(format!("[{}, {}{close}", short(w[0]), short(w[1])));
        }
    }
    labels.push(format!("> {}", short(*last)));
    labels
}

/// A number in at most 4 significant digits, for labels.
pub fn short(x: f64) -> String {
    if x == 0.0 || (x.abs() >= 1e-3 && x.abs() < 1e5) {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s.is_empty() || s == "-" {
            "0".into()
        } else {
            s.to_string()
        }
    } else {
        format!("{x:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric() -> Layout {
        Layout::numeric(&(0..100).map(f64::from).collect::<Vec<_>>())
    }

    fn categorical() -> Layout {
        Layout::Categorical {
            categories: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn a_numeric_column_with_few_values_is_judged_as_categories() {
        let codes = Layout::numeric(&[1.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert!(codes.is_discrete());
        assert!(!Layout::numeric(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).is_discrete());
        let c = DriftConfig::default();
        assert_eq!(c.choose("x", &codes, 800, 800), (Method::ChiSquare, 0.05));
        assert_eq!(
            c.choose("x", &codes, 5000, 5000),
            (Method::JensenShannon, 0.1)
        );
        // Configured numeric methods still apply.
        let ks = DriftConfig {
            method: Some(Method::Ks),
            ..DriftConfig::default()
        };
        assert_eq!(ks.choose("x", &codes, 800, 800), (Method::Ks, 0.05));
    }

    #[test]
    fn the_default_method_depends_on_the_smaller_sample() {
        let c = DriftConfig::default();
        assert_eq!(c.choose("x", &numeric(), 100_000, 500), (Method::Ks, 0.05));
        assert_eq!(
            c.choose("x", &numeric(), 5000, 5000),
            (Method::Wasserstein, 0.1)
        );
        assert_eq!(
            c.choose("c", &categorical(), 1000, 1000),
            (Method::ChiSquare, 0.05)
        );
        assert_eq!(
            c.choose("c", &categorical(), 1001, 1001),
            (Method::JensenShannon, 0.1)
        );
    }

    #[test]
    fn configured_methods_apply_only_where_they_fit() {
        let mut c = DriftConfig {
            method: Some(Method::Ks),
            threshold: Some(0.01),
            ..DriftConfig::default()
        };
        assert_eq!(c.choose("x", &numeric(), 5000, 5000), (Method::Ks, 0.01));
        // KS does not apply to categories: the default method and threshold.
        assert_eq!(
            c.choose("c", &categorical(), 5000, 5000),
            (Method::JensenShannon, 0.1)
        );
        c.columns.insert(
            "x".into(),
            ColumnConfig {
                method: Some(Method::Psi),
                threshold: Some(0.25),
            },
        );
        assert_eq!(c.choose("x", &numeric(), 5000, 5000), (Method::Psi, 0.25));
    }

    #[test]
    fn method_names_parse_back() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()), Some(m));
        }
        assert_eq!(Method::parse("JS"), Some(Method::JensenShannon));
        assert_eq!(Method::parse("chi-square"), Some(Method::ChiSquare));
        assert_eq!(Method::parse("nope"), None);
    }

    #[test]
    fn noise_floors_shrink_with_sample_size() {
        let small = noise_floor(Method::Wasserstein, 200, 200, 20);
        let large = noise_floor(Method::Wasserstein, 1_000_000, 1_000_000, 20);
        assert!(small > 0.1 && large < 0.01, "{small} {large}");
        assert!(noise_floor(Method::JensenShannon, 10_000, 10_000, 20) < 0.1);
        assert_eq!(noise_floor(Method::Ks, 10, 10, 5), 0.0);
        assert_eq!(noise_floor(Method::Psi, 0, 10, 5), 0.0);
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(12.0), "12");
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1234567.0), "1.235e6");
        assert_eq!(bin_labels(&[0.0, 1.0]), ["< 0", "[0, 1]", "> 1"]);
        assert_eq!(bin_labels(&[2.0]), ["< 2", "= 2", "> 2"]);
    }
}
