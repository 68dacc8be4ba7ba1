//! Monitoring of berth: mergeable profiles of data, drift statistics and data quality.
//!
//! - [`ReferenceProfile`]: built once from reference data (a file with
//!   [`ReferenceProfile::from_file`] or columns with [`ReferenceProfile::from_columns`]); it
//!   fixes quantile bins per numeric column and the category set per categorical column.
//!   Serializable with serde; berth stores it as JSON with the model version.
//! - [`ProfileBuilder`] summarizes live data against a reference into a [`Profile`];
//!   [`Profile::merge`] adds profiles of windows or replicas exactly (moments up to rounding).
//! - [`drift_profiles`] compares a window's profile with its reference: per column a statistic,
//!   a threshold and a verdict, plus data quality and schema changes. [`compare_files`] does the
//!   same from two raw files with exact statistics, for `berth drift compare`.
//!
//! # Statistics
//! Numeric columns: Kolmogorov-Smirnov (statistic and p-value as scipy's `ks_2samp`),
//! Wasserstein W1 and W1 normed by the reference's standard deviation (floored at 0.001), PSI and
//! Jensen-Shannon distance on the reference's quantile bins. Categorical columns: χ² test of
//! homogeneity, Jensen-Shannon distance, PSI and L∞ on category shares. From raw data every
//! statistic is exact; from profiles, KS and W1 are computed on the bins (KS low by at most the
//! largest bin share, W1 within `Σ width · (p + q)` over bins) and the others are identical.
//!
//! # Default method and threshold
//! As Evidently by default, but sample-size aware: when either side has at most 1000 values,
//! KS (numeric) or χ² (categorical) with drift at p ≤ 0.05; above, normed Wasserstein (numeric)
//! or Jensen-Shannon distance (categorical) with drift at ≥ 0.1. A distance threshold is never
//! below the noise floor of two samples of the same distribution at these sizes (see
//! [`drift::noise_floor`]), so small windows do not raise drift on noise, and since distances
//! shrink as samples grow, unshifted data does not drift at a million rows either (a p-value
//! test there flags shifts too small to matter). Method and threshold can be set globally and
//! per column ([`DriftConfig`]).

mod bins;
mod compare;
pub mod drift;
mod error;
mod moments;
mod profile;
mod quality;
mod read;
pub mod report_html;
pub mod stats;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use bins::{DEFAULT_BINS, quantile_edges, quantile_sorted};
pub use compare::{compare_columns, compare_files, prediction_drift};
pub use drift::{
    ColumnConfig, ColumnDrift, DriftConfig, DriftReport, Histogram, Method, Statistics,
    drift_profiles,
};
pub use error::MonitorError;
pub use moments::Moments;
pub use profile::{
    ColumnKind, ColumnProfile, Layout, MAX_CATEGORIES, MAX_UNSEEN, Profile, ProfileBuilder,
    ReferenceColumn, ReferenceProfile, Values,
};
pub use quality::{ColumnQuality, SchemaChanges, TypeChange};
pub use read::{ColumnInfo, ReadColumn, Table};

/// A whole column of data: numbers (NaN for missing) or category counts.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Numeric(Vec<f64>),
    Categorical(CategoryCounts),
}

impl ColumnData {
    pub fn kind(&self) -> ColumnKind {
        match self {
            ColumnData::Numeric(_) => ColumnKind::Numeric,
            ColumnData::Categorical(_) => ColumnKind::Categorical,
        }
    }
}

/// How often each category occurs, and how many values are missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoryCounts {
    pub counts: HashMap<String, u64>,
    pub missing: u64,
}

impl CategoryCounts {
    /// Counts `n` more occurrences of `category`.
    pub fn add(&mut self, category: &str, n: u64) {
        match self.counts.get_mut(category) {
            Some(c) => *c += n,
            None => {
                self.counts.insert(category.to_string(), n);
            }
        }
    }

    /// Counts of an iterator of optional categories (`None` is missing).
    pub fn from_values<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut counts = CategoryCounts::default();
        for v in values {
            match v {
                Some(v) => counts.add(v, 1),
                None => counts.missing += 1,
            }
        }
        counts
    }
}
