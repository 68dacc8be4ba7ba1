//! Profiles: mergeable summaries of data per column, on bins and categories fixed by a
//! reference.
//!
//! A [`ReferenceProfile`] is built once from reference data (the training set): it fixes each
//! numeric column's bin edges (see [`crate::bins`]) and each categorical column's category set
//! (the [`MAX_CATEGORIES`] most frequent), and holds the reference data's own [`Profile`] on
//! them. A window of live data is summarized by a [`ProfileBuilder`] against that reference into
//! a [`Profile`]; profiles of the same reference merge by adding, so windows and replicas
//! combine: `merge(p(A), p(B)) == p(A ∪ B)` exactly for counts, missing, bins, min, max and
//! categories, and up to floating-point rounding for mean and variance.
//!
//! Values the reference cannot place are counted, never dropped: NaN and `None` are missing,
//! ±inf are `non_finite`, values of the wrong type are `rejected`, categories outside the
//! reference set are `unseen` (by name, up to [`MAX_UNSEEN`] names, the rest in
//! `unseen_other`), and fields the reference does not have are `unknown_fields`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use berth_core::{NamedTensor, OutputValues, output_values};
use serde::{Deserialize, Serialize};

use crate::bins::{DEFAULT_BINS, quantile_edges, slot, slot_count};
use crate::moments::Moments;
use crate::read::Table;
use crate::{CategoryCounts, ColumnData, MonitorError};

/// Categories a reference keeps per column, the most frequent first.
pub const MAX_CATEGORIES: usize = 1000;
/// A numeric reference column with at most this many distinct values is discrete (judged by
/// the categorical drift methods by default; Evidently's rule).
pub const DISCRETE_VALUES: usize = 5;
/// Unseen category names a profile keeps per column; more are counted in `unseen_other`.
pub const MAX_UNSEEN: usize = 1000;

/// Whether a column holds numbers or categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
}

impl std::fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
        })
    }
}

/// How a reference lays out one column's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    /// Quantile bin edges; see [`crate::bins`] for the slots they define. `discrete`: the
    /// reference has at most [`DISCRETE_VALUES`] distinct values (codes, counts, ratings), so
    /// the column's default drift method is the categorical one, as Evidently chooses.
    Numeric {
        edges: Vec<f64>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        discrete: bool,
    },
    /// Known categories, the most frequent first.
    Categorical { categories: Vec<String> },
}

impl Layout {
    /// The layout of a numeric column with these ascending, finite values.
    pub fn numeric(sorted: &[f64]) -> Layout {
        let mut distinct = 0;
        let mut last = None;
        for &x in sorted {
            if last != Some(x) {
                distinct += 1;
                last = Some(x);
                if distinct > DISCRETE_VALUES {
                    break;
                }
            }
        }
        Layout::Numeric {
            edges: quantile_edges(sorted, DEFAULT_BINS),
            discrete: distinct <= DISCRETE_VALUES,
        }
    }

    /// A numeric column with few distinct reference values (see [`Layout::Numeric`]).
    pub fn is_discrete(&self) -> bool {
        matches!(self, Layout::Numeric { discrete: true, .. })
    }

    pub fn kind(&self) -> ColumnKind {
        match self {
            Layout::Numeric { .. } => ColumnKind::Numeric,
            Layout::Categorical { .. } => ColumnKind::Categorical,
        }
    }

    fn empty_values(&self) -> Values {
        match self {
            Layout::Numeric { edges, .. } => Values::Numeric {
                moments: Moments::default(),
                non_finite: 0,
                histogram: vec![0; slot_count(edges)],
            },
            Layout::Categorical { categories } => Values::Categorical {
                counts: vec![0; categories.len()],
                unseen: BTreeMap::new(),
                unseen_other: 0,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceColumn {
    pub name: String,
    pub layout: Layout,
}

/// Bins and categories fixed from reference data, and that data's own profile on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// Columns in the reference's order.
    pub columns: Vec<ReferenceColumn>,
    pub profile: Profile,
}

/// One window's (or the reference's) summary: every reference column, plus fields the
/// reference does not know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub columns: BTreeMap<String, ColumnProfile>,
    /// Values seen per field that is not a reference column (schema additions).
    pub unknown_fields: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// NaN or null values.
    pub missing: u64,
    /// Values of the wrong type for the column (text in a numeric column and the reverse).
    pub rejected: u64,
    pub values: Values,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Values {
    Numeric {
        /// Of the finite values.
        moments: Moments,
        /// ±inf: not placed in the histogram nor the moments.
        non_finite: u64,
        /// Counts per slot: `[below, bins..., above]`.
        histogram: Vec<u64>,
    },
    Categorical {
        /// Counts aligned with the reference's categories.
        counts: Vec<u64>,
        unseen: BTreeMap<String, u64>,
        /// Unseen values beyond the first [`MAX_UNSEEN`] distinct names.
        unseen_other: u64,
    },
}

impl ColumnProfile {
    /// No values yet, on `layout`.
    pub fn empty(layout: &Layout) -> Self {
        ColumnProfile {
            missing: 0,
            rejected: 0,
            values: layout.empty_values(),
        }
    }

    /// Every value offered for the column: placed, missing, non-finite and rejected.
    pub fn total(&self) -> u64 {
        self.missing + self.rejected + self.non_finite() + self.placed()
    }

    /// Values placed in a bin or category (including out-of-range and unseen).
    pub fn placed(&self) -> u64 {
        match &self.values {
            Values::Numeric { histogram, .. } => histogram.iter().sum(),
            Values::Categorical {
                counts,
                unseen,
                unseen_other,
            } => counts.iter().sum::<u64>() + unseen.values().sum::<u64>() + unseen_other,
        }
    }

    pub fn non_finite(&self) -> u64 {
        match &self.values {
            Values::Numeric { non_finite, .. } => *non_finite,
            Values::Categorical { .. } => 0,
        }
    }

    fn merge(&mut self, other: &ColumnProfile, name: &str) -> Result<(), MonitorError> {
        let mismatch = || MonitorError::Incompatible(format!("column '{name}' has another layout"));
        match (&mut self.values, &other.values) {
            (
                Values::Numeric {
                    moments,
                    non_finite,
                    histogram,
                },
                Values::Numeric {
                    moments: m2,
                    non_finite: nf2,
                    histogram: h2,
                },
            ) => {
                if histogram.len() != h2.len() {
                    return Err(mismatch());
                }
                moments.merge(m2);
                *non_finite += nf2;
                histogram.iter_mut().zip(h2).for_each(|(a, b)| *a += b);
            }
            (
                Values::Categorical {
                    counts,
                    unseen,
                    unseen_other,
                },
                Values::Categorical {
                    counts: c2,
                    unseen: u2,
                    unseen_other: o2,
                },
            ) => {
                if counts.len() != c2.len() {
                    return Err(mismatch());
                }
                counts.iter_mut().zip(c2).for_each(|(a, b)| *a += b);
                *unseen_other += o2;
                for (category, &n) in u2 {
                    count_unseen(unseen, unseen_other, category, n);
                }
            }
            _ => return Err(mismatch()),
        }
        self.missing += other.missing;
        self.rejected += other.rejected;
        Ok(())
    }
}

fn count_unseen(unseen: &mut BTreeMap<String, u64>, other: &mut u64, category: &str, n: u64) {
    if let Some(c) = unseen.get_mut(category) {
        *c += n;
    } else if unseen.len() < MAX_UNSEEN {
        unseen.insert(category.to_string(), n);
    } else {
        *other += n;
    }
}

impl Profile {
    /// Adds `other` (built against the same reference) into `self`.
    pub fn merge(&mut self, other: &Profile) -> Result<(), MonitorError> {
        if self.columns.len() != other.columns.len()
            || self
                .columns
                .keys()
                .zip(other.columns.keys())
                .any(|(a, b)| a != b)
        {
            return Err(MonitorError::Incompatible(
                "the profiles have different columns".into(),
            ));
        }
        for ((name, mine), theirs) in self.columns.iter_mut().zip(other.columns.values()) {
            mine.merge(theirs, name)?;
        }
        for (field, n) in &other.unknown_fields {
            *self.unknown_fields.entry(field.clone()).or_default() += n;
        }
        Ok(())
    }

    /// Values offered for the busiest column: the window's row count when every row has
    /// every field.
    pub fn rows(&self) -> u64 {
        self.columns
            .values()
            .map(ColumnProfile::total)
            .chain(self.unknown_fields.values().copied())
            .max()
            .unwrap_or(0)
    }
}

impl ReferenceProfile {
    /// Builds the reference from whole columns: numeric ones get [`DEFAULT_BINS`] quantile bins,
    /// categorical ones their [`MAX_CATEGORIES`] most frequent categories.
    pub fn from_columns(columns: Vec<(String, ColumnData)>) -> ReferenceProfile {
        let layouts: Vec<ReferenceColumn> = columns
            .iter()
            .map(|(name, data)| ReferenceColumn {
                name: name.clone(),
                layout: layout_of(data),
            })
            .collect();
        let mut reference = ReferenceProfile {
            columns: layouts,
            profile: Profile::default(),
        };
        let mut builder = ProfileBuilder::new(&reference);
        for (name, data) in &columns {
            builder.observe(name, data);
        }
        reference.profile = builder.finish();
        reference
    }

    /// Reads a Parquet or CSV file (by extension) and builds its reference profile.
    pub fn from_file(path: &Path) -> Result<ReferenceProfile, MonitorError> {
        let table = Table::open(path, None)?;
        let mut columns = Vec::new();
        for info in table.columns() {
            if let Some(kind) = info.kind {
                let read = table.read(&info.name, kind)?;
                columns.push((info.name.clone(), read.data));
            }
        }
        Ok(ReferenceProfile::from_columns(columns))
    }

    /// Profiles a whole Parquet or CSV file against this reference (CSV columns parsed as the
    /// reference's kinds), as one window.
    pub fn profile_file(&self, path: &Path) -> Result<Profile, MonitorError> {
        let kinds: HashMap<String, ColumnKind> = self
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.layout.kind()))
            .collect();
        let table = Table::open(path, Some(&kinds))?;
        let mut builder = ProfileBuilder::new(self);
        for info in table.columns() {
            let expected = kinds.get(&info.name).copied();
            match (info.kind, expected) {
                (Some(kind), Some(expected)) if kind == expected => {
                    let read = table.read(&info.name, kind)?;
                    builder.observe(&info.name, &read.data);
                    builder.observe_rejected(&info.name, read.rejected);
                }
                // Another type than the reference's: every value is rejected.
                (_, Some(_)) => {
                    let rows = table.rows();
                    builder.observe_rejected(&info.name, rows);
                }
                (Some(kind), None) => {
                    let read = table.read(&info.name, kind)?;
                    builder.observe(&info.name, &read.data);
                }
                (None, None) => {
                    let rows = table.rows();
                    builder.observe_rejected(&info.name, rows);
                }
            }
        }
        Ok(builder.finish())
    }

    /// The reference of a model's outputs, from its predictions on reference data (in
    /// batches): one column per output value as [`berth_core::output_values`] names them
    /// (labels categorical, scores and probabilities numeric).
    pub fn from_outputs(batches: &[Vec<NamedTensor>]) -> ReferenceProfile {
        ReferenceProfile::from_columns(output_columns_data(batches))
    }

    pub fn column(&self, name: &str) -> Option<&ReferenceColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The layout a reference column of `data` gets.
pub fn layout_of(data: &ColumnData) -> Layout {
    match data {
        ColumnData::Numeric(values) => {
            let mut sorted: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
            sorted.sort_unstable_by(f64::total_cmp);
            Layout::numeric(&sorted)
        }
        ColumnData::Categorical(counts) => {
            let mut ranked: Vec<(&String, &u64)> = counts.counts.iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
            Layout::Categorical {
                categories: ranked
                    .into_iter()
                    .take(MAX_CATEGORIES)
                    .map(|(c, _)| c.clone())
                    .collect(),
            }
        }
    }
}

/// `array` as Arrow type `to` (values that do not convert become null), when Arrow can cast it.
fn cast_to<T: arrow_array::Array + Clone + 'static>(
    array: &arrow_array::ArrayRef,
    to: &arrow_schema::DataType,
) -> Option<T> {
    let cast = arrow_cast::cast(array, to).ok()?;
    cast.as_any().downcast_ref::<T>().cloned()
}

/// Summarizes a window of data against a reference; feed it batches, then [`finish`].
///
/// [`finish`]: ProfileBuilder::finish
pub struct ProfileBuilder<'r> {
    layouts: HashMap<&'r str, &'r Layout>,
    category_index: HashMap<&'r str, HashMap<&'r str, usize>>,
    profile: Profile,
}

impl<'r> ProfileBuilder<'r> {
    pub fn new(reference: &'r ReferenceProfile) -> Self {
        let mut layouts = HashMap::new();
        let mut category_index = HashMap::new();
        let mut profile = Profile::default();
        for column in &reference.columns {
            layouts.insert(column.name.as_str(), &column.layout);
            if let Layout::Categorical { categories } = &column.layout {
                category_index.insert(
                    column.name.as_str(),
                    categories
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.as_str(), i))
                        .collect(),
                );
            }
            profile
                .columns
                .insert(column.name.clone(), ColumnProfile::empty(&column.layout));
        }
        Self {
            layouts,
            category_index,
            profile,
        }
    }

    /// Counts `n` values of a field the reference does not have.
    fn unknown(&mut self, column: &str, n: u64) {
        *self
            .profile
            .unknown_fields
            .entry(column.to_string())
            .or_default() += n;
    }

    /// Adds numbers of `column`; NaN is missing. Numbers for a categorical column are rejected.
    pub fn observe_numeric(&mut self, column: &str, values: &[f64]) {
        let Some(profile) = self.profile.columns.get_mut(column) else {
            self.unknown(column, values.len() as u64);
            return;
        };
        let (
            Some(Layout::Numeric { edges, .. }),
            Values::Numeric {
                moments,
                non_finite,
                histogram,
            },
        ) = (self.layouts.get(column), &mut profile.values)
        else {
            profile.rejected += values.len() as u64;
            return;
        };
        for &x in values {
            if x.is_nan() {
                profile.missing += 1;
            } else if x.is_infinite() {
                *non_finite += 1;
            } else {
                moments.push(x);
                if let Some(c) = histogram.get_mut(slot(edges, x)) {
                    *c += 1;
                }
            }
        }
    }

    /// Adds a batch of a model's outputs, one column per output value (see
    /// [`ReferenceProfile::from_outputs`]).
    pub fn observe_outputs(&mut self, outputs: &[NamedTensor]) {
        for (name, values) in output_values(outputs) {
            match values {
                OutputValues::Numbers(v) => self.observe_numeric(&name, &v),
                OutputValues::Labels(v) => {
                    self.observe_categories(&name, v.iter().map(|l| Some(l.as_str())))
                }
            }
        }
    }

    /// Adds categories of `column`; `None` is missing. Text for a numeric column is rejected.
    pub fn observe_categories<'v>(
        &mut self,
        column: &str,
        values: impl IntoIterator<Item = Option<&'v str>>,
    ) {
        for value in values {
            match value {
                None => self.add_missing(column, 1),
                Some(v) => self.add_category(column, v, 1),
            }
        }
    }

    /// Adds categories already counted, as files are read: `n` per category, and `missing`.
    pub fn observe_category_counts(&mut self, column: &str, counts: &CategoryCounts) {
        // In name order, so that which unseen names are kept does not depend on hashing.
        let mut sorted: Vec<(&String, &u64)> = counts.counts.iter().collect();
        sorted.sort();
        for (category, &n) in sorted {
            self.add_category(column, category, n);
        }
        self.add_missing(column, counts.missing);
    }

    pub(crate) fn add_missing(&mut self, column: &str, n: u64) {
        match self.profile.columns.get_mut(column) {
            Some(profile) => profile.missing += n,
            None => self.unknown(column, n),
        }
    }

    /// Counts `n` values of ±inf in numeric `column`.
    pub(crate) fn add_non_finite(&mut self, column: &str, n: u64) {
        if let Some(ColumnProfile {
            values: Values::Numeric { non_finite, .. },
            ..
        }) = self.profile.columns.get_mut(column)
        {
            *non_finite += n;
        }
    }

    fn add_category(&mut self, column: &str, category: &str, n: u64) {
        let Some(profile) = self.profile.columns.get_mut(column) else {
            self.unknown(column, n);
            return;
        };
        match (&mut profile.values, self.category_index.get(column)) {
            (
                Values::Categorical {
                    counts,
                    unseen,
                    unseen_other,
                },
                Some(index),
            ) => match index.get(category) {
                Some(&i) => counts[i] += n,
                None => count_unseen(unseen, unseen_other, category, n),
            },
            _ => profile.rejected += n,
        }
    }

    /// Counts `n` values of `column` that were rejected for their type before reaching here.
    pub fn observe_rejected(&mut self, column: &str, n: u64) {
        match self.profile.columns.get_mut(column) {
            Some(profile) => profile.rejected += n,
            None => self.unknown(column, n),
        }
    }

    /// Adds the columns of an Arrow batch (raw inputs, as a feature spec reads them), each as
    /// its reference column is laid out: numbers cast to numbers (nulls missing; text that is
    /// no number rejected), categories as their text. Columns the reference does not know are
    /// counted as unknown fields.
    pub fn observe_batch(&mut self, batch: &arrow_array::RecordBatch) {
        use arrow_array::Array;
        let schema = batch.schema();
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            let name = field.name().as_str();
            let rows = array.len() as u64;
            match self.layouts.get(name).map(|l| l.kind()) {
                None => self.unknown(name, rows),
                Some(ColumnKind::Numeric) => {
                    let Some(numbers) = cast_to::<arrow_array::Float64Array>(
                        array,
                        &arrow_schema::DataType::Float64,
                    ) else {
                        self.observe_rejected(name, rows);
                        continue;
                    };
                    // A value the cast turned into null was there but not a number.
                    let unreadable = numbers.null_count().saturating_sub(array.null_count());
                    let values: Vec<f64> = (0..numbers.len())
                        .filter(|&i| numbers.is_valid(i) || array.is_null(i))
                        .map(|i| {
                            if numbers.is_null(i) {
                                f64::NAN
                            } else {
                                numbers.value(i)
                            }
                        })
                        .collect();
                    self.observe_numeric(name, &values);
                    self.observe_rejected(name, unreadable as u64);
                }
                Some(ColumnKind::Categorical) => {
                    let Some(texts) =
                        cast_to::<arrow_array::StringArray>(array, &arrow_schema::DataType::Utf8)
                    else {
                        self.observe_rejected(name, rows);
                        continue;
                    };
                    self.observe_categories(
                        name,
                        (0..texts.len()).map(|i| texts.is_valid(i).then(|| texts.value(i))),
                    );
                }
            }
        }
    }

    /// Adds a whole column as read from a file.
    pub fn observe(&mut self, column: &str, data: &ColumnData) {
        match data {
            ColumnData::Numeric(values) => self.observe_numeric(column, values),
            ColumnData::Categorical(counts) => self.observe_category_counts(column, counts),
        }
    }

    pub fn finish(self) -> Profile {
        self.profile
    }
}

/// A model's outputs over batches as columns: one per output value as
/// [`berth_core::output_values`] names them (labels categorical, scores and probabilities
/// numeric).
pub fn output_columns_data(batches: &[Vec<NamedTensor>]) -> Vec<(String, ColumnData)> {
    let mut columns: Vec<(String, ColumnData)> = Vec::new();
    for outputs in batches {
        for (i, (name, values)) in output_values(outputs).into_iter().enumerate() {
            if columns.len() == i {
                let empty = match values {
                    OutputValues::Numbers(_) => ColumnData::Numeric(Vec::new()),
                    OutputValues::Labels(_) => ColumnData::Categorical(CategoryCounts::default()),
                };
                columns.push((name.clone(), empty));
            }
            match (&mut columns[i], values) {
                ((_, ColumnData::Numeric(all)), OutputValues::Numbers(v)) => all.extend(v),
                ((_, ColumnData::Categorical(counts)), OutputValues::Labels(v)) => {
                    v.iter().for_each(|label| counts.add(label, 1))
                }
                // Every batch of one model has the same outputs.
                _ => {}
            }
        }
    }
    columns
}
