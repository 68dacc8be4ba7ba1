//! Profiles merge exactly: merge(p(A), p(B)) == p(A ∪ B) for counts, missing, bins, min, max
//! and categories; mean and variance up to floating-point rounding.

use berth_monitor::{
    CategoryCounts, ColumnData, Profile, ProfileBuilder, ReferenceProfile, Values,
};
use proptest::prelude::*;

fn reference() -> ReferenceProfile {
    let numbers: Vec<f64> = (0..200).map(|i| (i as f64 * 0.37).sin() * 10.0).collect();
    let categories = CategoryCounts::from_values(["a", "b", "b", "c"].map(Some));
    ReferenceProfile::from_columns(vec![
        ("x".into(), ColumnData::Numeric(numbers)),
        ("c".into(), ColumnData::Categorical(categories)),
    ])
}

/// A value that may be missing, infinite, or far outside the reference's range.
fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -20.0f64..20.0,
        1 => Just(f64::NAN),
        1 => prop_oneof![Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(1e6)],
    ]
}

fn category() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => prop::sample::select(vec!["a", "b", "c", "new", "other"]).prop_map(|s| Some(s.to_string())),
        1 => Just(None),
    ]
}

type Rows = (Vec<f64>, Vec<Option<String>>, usize);

fn profile(reference: &ReferenceProfile, rows: &[Rows]) -> Profile {
    let mut builder = ProfileBuilder::new(reference);
    for (numbers, categories, unknown) in rows {
        builder.observe_numeric("x", numbers);
        builder.observe_categories("c", categories.iter().map(Option::as_deref));
        builder.observe_numeric("extra", &vec![1.0; *unknown]);
        builder.observe_categories("x", [Some("text")]);
    }
    builder.finish()
}

fn batch() -> impl Strategy<Value = Rows> {
    (
        prop::collection::vec(number(), 0..40),
        prop::collection::vec(category(), 0..40),
        0usize..3,
    )
}

fn without_moments(mut p: Profile) -> (Profile, Vec<(f64, f64)>) {
    let mut moments = Vec::new();
    for column in p.columns.values_mut() {
        if let Values::Numeric { moments: m, .. } = &mut column.values {
            moments.push((m.mean, m.variance()));
            m.mean = 0.0;
            m.m2 = 0.0;
        }
    }
    (p, moments)
}

proptest! {
    #[test]
    fn merging_profiles_equals_profiling_the_union(
        a in prop::collection::vec(batch(), 0..4),
        b in prop::collection::vec(batch(), 0..4),
    ) {
        let reference = reference();
        let mut merged = profile(&reference, &a);
        merged.merge(&profile(&reference, &b)).expect("same reference");
        let union: Vec<Rows> = a.iter().chain(&b).cloned().collect();
        let whole = profile(&reference, &union);
        let (merged, mm) = without_moments(merged);
        let (whole, wm) = without_moments(whole);
        prop_assert_eq!(merged, whole);
        for ((m1, v1), (m2, v2)) in mm.iter().zip(&wm) {
            prop_assert!((m1 - m2).abs() <= 1e-9 * m2.abs().max(1.0), "mean {} vs {}", m1, m2);
            prop_assert!((v1 - v2).abs() <= 1e-9 * v2.abs().max(1.0), "variance {} vs {}", v1, v2);
        }
    }
}

#[test]
fn profiles_of_other_references_do_not_merge() {
    let mut a = profile(&reference(), &[]);
    let other =
        ReferenceProfile::from_columns(vec![("y".into(), ColumnData::Numeric(vec![1.0, 2.0]))]);
    assert!(a.merge(&profile(&other, &[])).is_err());
}

#[test]
fn profiles_round_trip_through_json() {
    let reference = reference();
    let p = profile(
        &reference,
        &[(
            vec![1.0, f64::NAN, 50.0],
            vec![Some("a".into()), Some("zzz".into()), None],
            1,
        )],
    );
    let json = serde_json::to_string(&reference).expect("serialize");
    let back: ReferenceProfile = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, reference);
    let back: Profile = serde_json::from_str(&serde_json::to_string(&p).expect("ser")).expect("de");
    assert_eq!(back, p);
    let x = &p.columns["x"];
    assert_eq!((x.missing, x.rejected), (1, 1));
    let c = &p.columns["c"];
    let Values::Categorical { unseen, .. } = &c.values else {
        panic!("categorical")
    };
    assert_eq!(unseen.get("zzz"), Some(&1));
    assert_eq!(p.unknown_fields.get("extra"), Some(&1));
}
