//! Pearson's χ² test of homogeneity on a 2 × k table of category counts (reference, current):
//! scipy's `chi2_contingency(table, correction=False)`. Categories empty on both sides are
//! dropped; fewer than two categories left gives statistic 0 and p-value 1.

use serde::{Deserialize, Serialize};

use super::gamma::chi2_sf;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: u64,
}

/// The test for aligned `reference` and `current` counts; `None` when a side is empty.
pub fn chi_square(reference: &[u64], current: &[u64]) -> Option<ChiSquare> {
    let n_ref: u64 = reference.iter().sum();
    let n_cur: u64 = current.iter().sum();
    if n_ref == 0 || n_cur == 0 {
        return None;
    }
    let total = (n_ref + n_cur) as f64;
    let mut statistic = 0.0;
    let mut categories = 0u64;
    for (&r, &c) in reference.iter().zip(current) {
        let column = (r + c) as f64;
        if column == 0.0 {
            continue;
        }
        categories += 1;
        for (observed, row) in [(r, n_ref), (c, n_cur)] {
            let expected = row as f64 * column / total;
            let d = observed as f64 - expected;
            statistic += d * d / expected;
        }
    }
    if categories < 2 {
        return Some(ChiSquare {
            statistic: 0.0,
            p_value: 1.0,
            dof: 0,
        });
    }
    let dof = categories - 1;
    Some(ChiSquare {
        statistic,
        p_value: chi2_sf(statistic, dof as f64),
        dof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_table() {
        // [[10, 20], [20, 10]]: expected 15 everywhere, statistic 4 * 25 / 15.
        let t = chi_square(&[10, 20], &[20, 10]).unwrap();
        assert!((t.statistic - 100.0 / 15.0).abs() < 1e-12);
        assert_eq!(t.dof, 1);
        assert!((t.p_value - chi2_sf(100.0 / 15.0, 1.0)).abs() < 1e-15);
    }

    #[test]
    fn categories_empty_on_both_sides_do_not_count() {
        let t = chi_square(&[5, 0, 5], &[5, 0, 5]).unwrap();
        assert_eq!((t.statistic, t.dof), (0.0, 1));
        let single = chi_square(&[5, 0], &[7, 0]).unwrap();
        assert_eq!((single.p_value, single.dof), (1.0, 0));
        assert!(chi_square(&[0, 0], &[1, 1]).is_none());
    }
}
