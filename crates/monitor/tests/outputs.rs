//! Profiles of a model's outputs: the reference built from predictions in batches equals the one
//! built from all of them at once, live batches profiled against it merge into the same profile,
//! and moved scores drift while the same scores do not.

use berth_core::{NamedTensor, OutputRole, Tensor, TensorData};
use berth_monitor::{DriftConfig, ProfileBuilder, ReferenceProfile, Values, drift_profiles};

/// A classifier's outputs for `p1` (probability of class 1): label and both probabilities.
fn outputs(p1: &[f32]) -> Vec<NamedTensor> {
    let rows = p1.len();
    let labels: Vec<i64> = p1.iter().map(|&p| i64::from(p >= 0.5)).collect();
    let probabilities: Vec<f32> = p1.iter().flat_map(|&p| [1.0 - p, p]).collect();
    vec![
        NamedTensor {
            name: "label".into(),
            role: OutputRole::Label,
            tensor: Tensor::new(vec![rows], TensorData::Int64(labels)).expect("tensor"),
        },
        NamedTensor {
            name: "probabilities".into(),
            role: OutputRole::Probabilities,
            tensor: Tensor::new(vec![rows, 2], TensorData::Fp32(probabilities)).expect("tensor"),
        },
    ]
}

/// Probabilities spread over (0, 1), deterministic.
fn scores(n: usize, shift: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i as f32 * 0.618_034).fract() * 0.9 + 0.05 + shift).min(0.99))
        .collect()
}

#[test]
fn output_references_are_the_same_from_batches_and_windows_merge() {
    let all = scores(3000, 0.0);
    let whole = ReferenceProfile::from_outputs(&[outputs(&all)]);
    let batched = ReferenceProfile::from_outputs(&[
        outputs(&all[..1000]),
        outputs(&all[1000..2500]),
        outputs(&all[2500..]),
    ]);
    assert_eq!(whole, batched);
    let names: Vec<&str> = whole.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["label", "p_0", "p_1"]);

    let profile = |p: &[f32]| {
        let mut builder = ProfileBuilder::new(&whole);
        builder.observe_outputs(&outputs(p));
        builder.finish()
    };
    let mut merged = profile(&all[..1200]);
    merged.merge(&profile(&all[1200..])).expect("merge");
    // Counts, bins and categories merge exactly (moments up to rounding).
    for (name, column) in &whole.profile.columns {
        let got = &merged.columns[name];
        match (&column.values, &got.values) {
            (
                Values::Numeric {
                    histogram, moments, ..
                },
                Values::Numeric {
                    histogram: h,
                    moments: m,
                    ..
                },
            ) => {
                assert_eq!(histogram, h, "{name}");
                assert!((moments.mean - m.mean).abs() < 1e-9, "{name}");
            }
            (Values::Categorical { counts, .. }, Values::Categorical { counts: c, .. }) => {
                assert_eq!(counts, c, "{name}")
            }
            _ => panic!("{name}: another kind"),
        }
    }

    let same = drift_profiles(
        &whole,
        &profile(&scores(2000, 0.0)),
        &DriftConfig::default(),
    );
    assert!(!same.dataset_drift, "{same:?}");
    let moved = drift_profiles(
        &whole,
        &profile(&scores(2000, 0.3)),
        &DriftConfig::default(),
    );
    let p1 = moved
        .columns
        .iter()
        .find(|c| c.column == "p_1")
        .expect("p_1");
    assert!(p1.drift, "scores moved by 0.3: {p1:?}");
    let label = moved
        .columns
        .iter()
        .find(|c| c.column == "label")
        .expect("label");
    assert!(label.drift, "more rows above 0.5: {label:?}");
}
