//! Odd data never panics and is reported: empty and all-missing columns, constant columns,
//! NaN and ±inf, a column numeric on one side and text on the other, unseen categories.

use berth_monitor::{
    CategoryCounts, ColumnData, DriftConfig, ProfileBuilder, ReferenceProfile, compare_columns,
    drift_profiles,
};

fn numeric(name: &str, values: Vec<f64>) -> (String, ColumnData) {
    (name.to_string(), ColumnData::Numeric(values))
}

fn categorical(name: &str, values: &[Option<&str>]) -> (String, ColumnData) {
    (
        name.to_string(),
        ColumnData::Categorical(CategoryCounts::from_values(values.iter().copied())),
    )
}

#[test]
fn odd_columns_are_compared_without_panics() {
    let reference = vec![
        numeric("empty", vec![]),
        numeric("all_missing", vec![f64::NAN; 50]),
        numeric("constant", vec![3.0; 50]),
        numeric("non_finite", (0..50).map(f64::from).collect()),
        numeric("flips", (0..50).map(f64::from).collect()),
        categorical("plan", &[Some("a"), Some("b"), None, Some("a")]),
    ];
    let mut weird: Vec<f64> = (0..50).map(f64::from).collect();
    weird[0] = f64::INFINITY;
    weird[1] = f64::NEG_INFINITY;
    weird[2] = f64::NAN;
    weird[3] = 1e9;
    let current = vec![
        numeric("empty", vec![]),
        numeric("all_missing", vec![1.0, 2.0]),
        numeric("constant", vec![3.0; 10]),
        numeric("non_finite", weird),
        categorical("flips", &[Some("1"), Some("2")]),
        categorical("plan", &[Some("a"), Some("zzz"), Some("zzz")]),
        numeric("extra", vec![1.0]),
    ];
    let report = compare_columns(reference, current, &DriftConfig::default());
    let get = |name: &str| report.columns.iter().find(|c| c.column == name);
    for c in &report.columns {
        if let Some(s) = c.score {
            assert!(s.is_finite(), "{}: {s}", c.column);
        }
    }
    let empty = get("empty").expect("empty column compared");
    assert_eq!((empty.score, empty.drift), (None, false));
    assert_eq!(get("all_missing").expect("all missing").score, None);
    assert_eq!(get("constant").expect("constant").score, Some(1.0));
    let nf = get("non_finite").expect("non finite");
    assert_eq!(nf.quality.non_finite_current, 2);
    assert!((nf.quality.missing_current - 1.0 / 50.0).abs() < 1e-12);
    assert!(nf.quality.out_of_range_current > 0.0);
    let plan = get("plan").expect("plan");
    assert_eq!(plan.quality.unseen_categories, vec![("zzz".to_string(), 2)]);
    assert!((plan.quality.missing_reference - 0.25).abs() < 1e-12);
    assert_eq!(report.schema.added, ["extra"]);
    assert_eq!(report.schema.type_changed.len(), 1);
    assert_eq!(report.schema.type_changed[0].column, "flips");
    assert!(get("flips").is_none());
}

#[test]
fn windows_report_gone_fields_and_rejected_values() {
    let reference = ReferenceProfile::from_columns(vec![
        numeric("x", (0..100).map(f64::from).collect()),
        numeric("y", (0..100).map(f64::from).collect()),
    ]);
    let mut builder = ProfileBuilder::new(&reference);
    builder.observe_numeric("x", &[1.0, 2.0, 500.0]);
    builder.observe_categories("x", [Some("text")]);
    builder.observe_numeric("new_field", &[1.0]);
    let window = builder.finish();
    let report = drift_profiles(&reference, &window, &DriftConfig::default());
    assert_eq!(report.schema.removed, ["y"]);
    assert_eq!(report.schema.added, ["new_field"]);
    let x = &report.columns[0];
    assert_eq!(x.column, "x");
    assert_eq!(x.quality.rejected_current, 1);
    assert!((x.quality.out_of_range_current - 1.0 / 3.0).abs() < 1e-12);
    // Three values: the KS test decides, and its p-value is exact.
    assert!(x.statistics.ks.is_some_and(|t| t.exact));
}
