//! Three deliberately shifted features are flagged and the others are not: on the 10k-row
//! fixtures (fixtures/drift, from make_drift_fixtures.py) and on a million generated rows, by
//! the exact (files or columns) and the profile-based paths, with the default configuration.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use berth_monitor::{
    CategoryCounts, ColumnData, DriftConfig, DriftReport, ProfileBuilder, ReferenceProfile,
    compare_columns, compare_files, drift_profiles,
};

// The generator of the `make_drift_data` example.
#[path = "../examples/support/drift_data.rs"]
mod drift_data;

use drift_data::Rng;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/drift")
}

fn flagged(report: &DriftReport) -> BTreeSet<String> {
    report
        .columns
        .iter()
        .filter(|c| c.drift)
        .map(|c| c.column.clone())
        .collect()
}

fn shifted() -> BTreeSet<String> {
    ["income", "plan", "tenure"].map(String::from).into()
}

#[test]
fn ten_thousand_rows_flag_exactly_the_shifted_features() {
    let (r, c) = (
        fixtures().join("reference_10k.parquet"),
        fixtures().join("current_10k.parquet"),
    );
    let exact = compare_files(&r, &c, &DriftConfig::default()).expect("compare");
    assert_eq!(exact.columns.len(), 20);
    assert_eq!(flagged(&exact), shifted(), "{:#?}", exact.columns);
    assert!(!exact.dataset_drift);
    let reference = ReferenceProfile::from_file(&r).expect("reference");
    let window = reference.profile_file(&c).expect("window");
    let binned = drift_profiles(&reference, &window, &DriftConfig::default());
    assert_eq!(flagged(&binned), shifted());
    // The same file against itself never drifts.
    let same = compare_files(&r, &r, &DriftConfig::default()).expect("compare");
    assert!(flagged(&same).is_empty());
}

/// 17 numeric and 3 categorical columns; when `shifted`, x0 (mean + 0.5), x1 (sd x 1.6) and
/// c0 (shares moved) change.
fn columns(rows: usize, seed: u64, shifted: bool) -> Vec<(String, ColumnData)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for j in 0..17 {
        let values: Vec<f64> = (0..rows).map(|_| rng.numeric(j, shifted)).collect();
        out.push((format!("x{j}"), ColumnData::Numeric(values)));
    }
    for j in 0..3 {
        let shares: [f64; 3] = if shifted && j == 0 {
            [0.25, 0.35, 0.4]
        } else {
            [0.5, 0.3, 0.2]
        };
        let mut counts = CategoryCounts::default();
        for _ in 0..rows {
            counts.add(rng.category(&["a", "b", "c"], &shares), 1);
        }
        out.push((format!("c{j}"), ColumnData::Categorical(counts)));
    }
    out
}

/// Sorting 34 columns of a million values: seconds, as the workspace builds this crate
/// optimized in tests too (`[profile.dev.package.berth-monitor]`).
#[test]
fn a_million_rows_flag_exactly_the_shifted_features() {
    let rows = 1_000_000;
    let want: BTreeSet<String> = ["c0", "x0", "x1"].map(String::from).into();
    // The 17 unshifted columns of the current data are the "must not drift" half.
    let reference = columns(rows, 1, false);
    let current = columns(rows, 2, true);
    let exact = compare_columns(reference.clone(), current.clone(), &DriftConfig::default());
    assert_eq!(
        flagged(&exact),
        want,
        "{:?}",
        exact
            .columns
            .iter()
            .map(|c| (&c.column, c.score, c.threshold))
            .collect::<Vec<_>>()
    );
    // Profile path, as serving computes it: reference profile, window fed in batches.
    let profile = ReferenceProfile::from_columns(reference);
    let mut builder = ProfileBuilder::new(&profile);
    for (name, data) in &current {
        match data {
            ColumnData::Numeric(v) => v
                .chunks(65_536)
                .for_each(|batch| builder.observe_numeric(name, batch)),
            other => builder.observe(name, other),
        }
    }
    let binned = drift_profiles(&profile, &builder.finish(), &DriftConfig::default());
    assert_eq!(flagged(&binned), want);
}
