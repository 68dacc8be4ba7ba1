//! Offline comparison of two files (`berth drift compare`): exact statistics from raw values,
//! one column at a time and columns in parallel, so memory holds a few columns, not the files.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::drift::{ColumnConfig, ColumnDrift, DriftConfig, DriftReport, Method, column_drift};
use crate::profile::{
    ColumnKind, ColumnProfile, Layout, Profile, ProfileBuilder, ReferenceColumn, ReferenceProfile,
    layout_of,
};
use crate::quality::{SchemaChanges, TypeChange, kind_name};
use crate::read::{ColumnInfo, ReadColumn, Table};
use crate::{ColumnData, MonitorError};

/// Compares `current` with `reference` (Parquet or CSV each), column by column.
pub fn compare_files(
    reference: &Path,
    current: &Path,
    config: &DriftConfig,
) -> Result<DriftReport, MonitorError> {
    let reference = Table::open(reference, None)?;
    let kinds: HashMap<String, ColumnKind> = reference
        .columns()
        .iter()
        .filter_map(|c| c.kind.map(|k| (c.name.clone(), k)))
        .collect();
    let current = Table::open(current, Some(&kinds))?;
    let (schema, shared) = schema_changes(reference.columns(), current.columns());
    let results: Vec<(ColumnDrift, u64, u64)> = shared
        .par_iter()
        .map(|(name, kind)| {
            let r = reference.read(name, *kind)?;
            let c = current.read(name, *kind)?;
            Ok(compare_column(name, r, c, config))
        })
        .collect::<Result<_, MonitorError>>()?;
    Ok(report(results, schema, config))
}

/// Schema changes, and the columns present in both files with the same profiled kind.
fn schema_changes(
    reference: &[ColumnInfo],
    current: &[ColumnInfo],
) -> (SchemaChanges, Vec<(String, ColumnKind)>) {
    let mut changes = SchemaChanges::default();
    let mut shared = Vec::new();
    for r in reference {
        match current.iter().find(|c| c.name == r.name) {
            None => changes.removed.push(r.name.clone()),
            Some(c) if c.kind != r.kind => changes.type_changed.push(TypeChange {
                column: r.name.clone(),
                reference: kind_name(r.kind, &r.type_name),
                current: kind_name(c.kind, &c.type_name),
            }),
            Some(_) => match r.kind {
                Some(kind) => shared.push((r.name.clone(), kind)),
                None => changes.unsupported.push(r.name.clone()),
            },
        }
    }
    changes.added = current
        .iter()
        .filter(|c| !reference.iter().any(|r| r.name == c.name))
        .map(|c| c.name.clone())
        .collect();
    (changes, shared)
}

/// Compares whole columns held in memory (numbers or category counts), as [`compare_files`]
/// compares files: exact statistics, columns in parallel.
pub fn compare_columns(
    reference: Vec<(String, ColumnData)>,
    current: Vec<(String, ColumnData)>,
    config: &DriftConfig,
) -> DriftReport {
    let info = |columns: &[(String, ColumnData)]| -> Vec<ColumnInfo> {
        columns
            .iter()
            .map(|(name, data)| ColumnInfo {
                name: name.clone(),
                kind: Some(data.kind()),
                type_name: data.kind().to_string(),
            })
            .collect()
    };
    let (schema, _) = schema_changes(&info(&reference), &info(&current));
    let mut current: HashMap<String, ColumnData> = current.into_iter().collect();
    let pairs: Vec<(String, ColumnData, ColumnData)> = reference
        .into_iter()
        .filter_map(|(name, r)| {
            let c = current.remove(&name).filter(|c| c.kind() == r.kind())?;
            Some((name, r, c))
        })
        .collect();
    let results: Vec<(ColumnDrift, u64, u64)> = pairs
        .into_par_iter()
        .map(|(name, r, c)| {
            let read = |data| ReadColumn { data, rejected: 0 };
            compare_column(&name, read(r), read(c), config)
        })
        .collect();
    report(results, schema, config)
}

fn report(
    results: Vec<(ColumnDrift, u64, u64)>,
    schema: SchemaChanges,
    config: &DriftConfig,
) -> DriftReport {
    let reference_rows = results.iter().map(|r| r.1).max().unwrap_or(0);
    let current_rows = results.iter().map(|r| r.2).max().unwrap_or(0);
    let columns = results.into_iter().map(|r| r.0).collect();
    DriftReport::new(reference_rows, current_rows, columns, schema, config)
}

/// One column's drift, and the values each side had for it.
fn compare_column(
    name: &str,
    r: ReadColumn,
    c: ReadColumn,
    config: &DriftConfig,
) -> (ColumnDrift, u64, u64) {
    let (layout, r, c) = match (r.data, c.data) {
        (ColumnData::Numeric(a), ColumnData::Numeric(b)) => {
            let a = Finite::sorted(a, r.rejected);
            let b = Finite::sorted(b, c.rejected);
            let layout = Layout::numeric(&a.values);
            (layout, Side::Numeric(a), Side::Numeric(b))
        }
        (a, b) => (
            layout_of(&a),
            Side::Other(ReadColumn {
                data: a,
                rejected: r.rejected,
            }),
            Side::Other(ReadColumn {
                data: b,
                rejected: c.rejected,
            }),
        ),
    };
    let reference = ReferenceColumn {
        name: name.to_string(),
        layout,
    };
    let single = ReferenceProfile {
        columns: vec![reference],
        profile: Profile::default(),
    };
    let (rp, cp) = (r.profile(&single, name), c.profile(&single, name));
    let samples = match (&r, &c) {
        (Side::Numeric(a), Side::Numeric(b)) => Some((a.values.as_slice(), b.values.as_slice())),
        _ => None,
    };
    let empty = ColumnProfile::empty(&single.columns[0].layout);
    let rc = rp.columns.get(name).unwrap_or(&empty);
    let cc = cp.columns.get(name).unwrap_or(&empty);
    let drift = column_drift(name, &single.columns[0].layout, rc, cc, samples, config);
    (drift, rc.total(), cc.total())
}

/// A numeric column's finite values in ascending order, and what was set aside.
struct Finite {
    values: Vec<f64>,
    missing: u64,
    non_finite: u64,
    rejected: u64,
}

impl Finite {
    fn sorted(mut values: Vec<f64>, rejected: u64) -> Self {
        let missing = values.iter().filter(|x| x.is_nan()).count() as u64;
        let before = values.len() as u64;
        values.retain(|x| x.is_finite());
        let non_finite = before - missing - values.len() as u64;
        values.sort_unstable_by(f64::total_cmp);
        Self {
            values,
            missing,
            non_finite,
            rejected,
        }
    }
}

enum Side {
    Numeric(Finite),
    Other(ReadColumn),
}

impl Side {
    fn profile(&self, reference: &ReferenceProfile, name: &str) -> Profile {
        let mut builder = ProfileBuilder::new(reference);
        match self {
            Side::Numeric(f) => {
                builder.observe_numeric(name, &f.values);
                builder.add_missing(name, f.missing);
                builder.add_non_finite(name, f.non_finite);
                builder.observe_rejected(name, f.rejected);
            }
            Side::Other(read) => {
                builder.observe(name, &read.data);
                builder.observe_rejected(name, read.rejected);
            }
        }
        builder.finish()
    }
}

/// How far a candidate model's outputs are from a primary's on the same kind of traffic: the
/// largest distance over the output columns, W1 normed by the primary's standard deviation for
/// scores and probabilities, Jensen-Shannon distance for labels. `None` when either side has
/// no outputs or they share no column.
pub fn prediction_drift(
    primary: &[Vec<berth_core::NamedTensor>],
    candidate: &[Vec<berth_core::NamedTensor>],
) -> Option<f64> {
    let primary = crate::profile::output_columns_data(primary);
    let candidate = crate::profile::output_columns_data(candidate);
    let columns = primary
        .iter()
        .map(|(name, data)| {
            let method = match data {
                ColumnData::Numeric(_) => Method::Wasserstein,
                ColumnData::Categorical(_) => Method::JensenShannon,
            };
            let config = ColumnConfig {
                method: Some(method),
                threshold: None,
            };
            (name.clone(), config)
        })
        .collect();
    let config = DriftConfig {
        columns,
        ..DriftConfig::default()
    };
    compare_columns(primary, candidate, &config)
        .columns
        .iter()
        .filter_map(|c| c.score)
        .reduce(f64::max)
}
