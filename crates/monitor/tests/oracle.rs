//! Oracle tests: berth's statistics on generated files against scipy's (fixtures/drift/oracle,
//! written by fixtures/make_drift_fixtures.py): exact ones within 1e-6, profile-based ones
//! within their documented tolerance of the exact ones.

use std::path::{Path, PathBuf};

use berth_monitor::{
    ColumnDrift, DriftConfig, DriftReport, Layout, ReferenceProfile, Values, compare_files,
    drift_profiles,
};
use serde_json::Value;

const TOLERANCE: f64 = 1e-6;
const CASES: [&str; 4] = ["small", "equal", "shifted", "large"];

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/drift/oracle")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(oracle_dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn column<'a>(report: &'a DriftReport, name: &str) -> &'a ColumnDrift {
    report
        .columns
        .iter()
        .find(|c| c.column == name)
        .unwrap_or_else(|| panic!("column {name} in report"))
}

fn close(what: &str, got: Option<f64>, want: &Value) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no expected value"));
    let got = got.unwrap_or_else(|| panic!("{what}: no value computed"));
    assert!(
        (got - want).abs() <= TOLERANCE * want.abs().max(1.0),
        "{what}: berth {got}, scipy {want}"
    );
}

fn check_exact(case: &str, report: &DriftReport, expected: &Value) {
    let Value::Object(columns) = &expected[case] else {
        panic!("case {case}")
    };
    for (name, want) in columns {
        let got = column(report, name);
        let s = &got.statistics;
        let what = |stat: &str| format!("{case}/{name}/{stat}");
        close(
            &what("jensen_shannon"),
            s.jensen_shannon,
            &want["jensen_shannon"],
        );
        close(&what("psi"), s.psi, &want["psi"]);
        if want["kind"] == "numeric" {
            assert!(s.exact);
            let counts = |key: &str| -> Vec<u64> {
                serde_json::from_value(want[key].clone()).expect("slot counts")
            };
            assert_eq!(
                got.histogram.reference,
                counts("reference_slots"),
                "{case}/{name}"
            );
            assert_eq!(
                got.histogram.current,
                counts("current_slots"),
                "{case}/{name}"
            );
            let ks = s.ks.expect("ks");
            close(
                &what("ks_statistic"),
                Some(ks.statistic),
                &want["ks_statistic"],
            );
            close(&what("ks_p_value"), Some(ks.p_value), &want["ks_p_value"]);
            assert_eq!(
                ks.exact,
                case != "large",
                "{case}/{name}: scipy's auto mode"
            );
            close(&what("wasserstein"), s.wasserstein, &want["wasserstein"]);
            close(
                &what("wasserstein_normed"),
                s.wasserstein_normed,
                &want["wasserstein_normed"],
            );
        } else {
            let chi = s.chi_square.expect("chi square");
            close(
                &what("chi_square"),
                Some(chi.statistic),
                &want["chi_square_statistic"],
            );
            close(
                &what("chi_square_p"),
                Some(chi.p_value),
                &want["chi_square_p_value"],
            );
            assert_eq!(Some(chi.dof), want["chi_square_dof"].as_u64());
            close(&what("l_infinity"), s.l_infinity, &want["l_infinity"]);
        }
    }
}

#[test]
fn exact_statistics_from_csv_match_scipy() {
    let expected = expected();
    for case in CASES {
        let dir = oracle_dir();
        let report = compare_files(
            &dir.join(format!("{case}_reference.csv")),
            &dir.join(format!("{case}_current.csv")),
            &DriftConfig::default(),
        )
        .expect("compare");
        check_exact(case, &report, &expected);
    }
}

#[test]
fn exact_statistics_from_parquet_match_scipy() {
    let dir = oracle_dir();
    let report = compare_files(
        &dir.join("equal_reference.parquet"),
        &dir.join("equal_current.parquet"),
        &DriftConfig::default(),
    )
    .expect("compare");
    check_exact("equal", &report, &expected());
}

/// `Σ width_i (p_i + q_i)` over the slots: how far binned W1 may be from the exact one.
fn w1_bound(layout: &Layout, got: &ColumnDrift, window_min: f64, window_max: f64) -> f64 {
    let Layout::Numeric { edges, .. } = layout else {
        panic!("numeric layout")
    };
    let (r, c) = (&got.histogram.reference, &got.histogram.current);
    let (nr, nc) = (r.iter().sum::<u64>() as f64, c.iter().sum::<u64>() as f64);
    let share = |i: usize| r[i] as f64 / nr + c[i] as f64 / nc;
    let (first, last) = (edges[0], edges[edges.len() - 1]);
    let mut bound = (first - window_min).max(0.0) * share(0)
        + (window_max - last).max(0.0) * share(r.len() - 1);
    for (i, w) in edges.windows(2).enumerate() {
        bound += (w[1] - w[0]) * share(i + 1);
    }
    bound
}

#[test]
fn profile_statistics_are_within_their_tolerance_of_the_exact_ones() {
    let dir = oracle_dir();
    for case in CASES {
        let (r, c) = (
            dir.join(format!("{case}_reference.csv")),
            dir.join(format!("{case}_current.csv")),
        );
        let exact = compare_files(&r, &c, &DriftConfig::default()).expect("compare");
        let reference = ReferenceProfile::from_file(&r).expect("reference");
        let window = reference.profile_file(&c).expect("window");
        let binned = drift_profiles(&reference, &window, &DriftConfig::default());
        for e in &exact.columns {
            let b = column(&binned, &e.column);
            let what = format!("{case}/{}", e.column);
            assert!(!b.statistics.exact);
            // Identical inputs (bins or categories): identical statistics.
            assert_eq!(b.histogram, e.histogram, "{what}");
            assert_eq!(b.statistics.psi, e.statistics.psi, "{what}");
            assert_eq!(
                b.statistics.jensen_shannon, e.statistics.jensen_shannon,
                "{what}"
            );
            assert_eq!(b.statistics.chi_square, e.statistics.chi_square, "{what}");
            assert_eq!(b.statistics.l_infinity, e.statistics.l_infinity, "{what}");
            let Some(layout) = reference.column(&e.column).map(|c| &c.layout) else {
                panic!("{what}: layout")
            };
            if let (Some(ek), Some(bk)) = (e.statistics.ks, b.statistics.ks) {
                // Binned KS is low by at most the largest single-slot share of either side.
                let share = |counts: &[u64]| {
                    let total = counts.iter().sum::<u64>() as f64;
                    counts.iter().map(|&n| n as f64 / total).fold(0.0, f64::max)
                };
                let slack = share(&e.histogram.reference).max(share(&e.histogram.current));
                assert!(bk.statistic <= ek.statistic + 1e-12, "{what}");
                assert!(ek.statistic - bk.statistic <= slack, "{what}");
                let Some(Values::Numeric { moments, .. }) =
                    window.columns.get(&e.column).map(|p| &p.values)
                else {
                    panic!("{what}: numeric window")
                };
                let bound = w1_bound(
                    layout,
                    b,
                    moments.min.unwrap_or(0.0),
                    moments.max.unwrap_or(0.0),
                );
                let (ew, bw) = (
                    e.statistics.wasserstein.unwrap_or(f64::NAN),
                    b.statistics.wasserstein.unwrap_or(f64::NAN),
                );
                assert!(
                    (ew - bw).abs() <= bound,
                    "{what}: W1 {bw} vs exact {ew}, bound {bound}"
                );
            }
        }
    }
}
