//! Distances between two histograms on the same bins (or categories): PSI, Jensen-Shannon
//! distance and L∞. Counts are normalized to shares first; an empty side gives `None`.

/// Share given to an empty bin in PSI, as Evidently does (a zero share makes the log infinite).
pub const PSI_EPSILON: f64 = 1e-4;

fn shares(counts: &[u64]) -> Option<Vec<f64>> {
    let total: u64 = counts.iter().sum();
    (total > 0).then(|| counts.iter().map(|&c| c as f64 / total as f64).collect())
}

/// Population stability index `Σ (p - q) ln(p / q)`, empty shares replaced by [`PSI_EPSILON`].
pub fn psi(reference: &[u64], current: &[u64]) -> Option<f64> {
    let (p, q) = (shares(reference)?, shares(current)?);
    let fill = |s: f64| if s == 0.0 { PSI_EPSILON } else { s };
    Some(
        p.iter()
            .zip(&q)
            .map(|(&p, &q)| {
                let (p, q) = (fill(p), fill(q));
                (p - q) * (p / q).ln()
            })
            .sum(),
    )
}

/// Jensen-Shannon distance with natural logarithms (scipy's `jensenshannon`): the square root
/// of the mean Kullback-Leibler divergence of each side from their midpoint. In `[0, √ln 2]`.
pub fn jensen_shannon(reference: &[u64], current: &[u64]) -> Option<f64> {
    let (p, q) = (shares(reference)?, shares(current)?);
    let rel_entr = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let mut total = 0.0;
    for (&p, &q) in p.iter().zip(&q) {
        let m = (p + q) / 2.0;
        total += rel_entr(p, m) + rel_entr(q, m);
    }
    Some((total / 2.0).max(0.0).sqrt())
}

/// Largest absolute difference of shares, `max |p - q|`.
pub fn l_infinity(reference: &[u64], current: &[u64]) -> Option<f64> {
    let (p, q) = (shares(reference)?, shares(current)?);
    Some(
        p.iter()
            .zip(&q)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_histograms_are_at_distance_zero() {
        let h = [10, 20, 30];
        assert_eq!(psi(&h, &h), Some(0.0));
        assert_eq!(jensen_shannon(&h, &h), Some(0.0));
        assert_eq!(l_infinity(&h, &[1, 2, 3]), Some(0.0));
    }

    #[test]
    fn disjoint_histograms_are_at_the_maximum_js_distance() {
        let js = jensen_shannon(&[1, 0], &[0, 1]).unwrap();
        assert!((js - 2f64.ln().sqrt()).abs() < 1e-12);
        assert_eq!(l_infinity(&[1, 0], &[0, 1]), Some(1.0));
    }

    #[test]
    fn psi_fills_empty_bins_with_epsilon() {
        // p = (0.5, 0.5), q = (1, 0 -> 1e-4)
        let want = (0.5 - 1.0) * (0.5f64 / 1.0).ln() + (0.5 - 1e-4) * (0.5f64 / 1e-4).ln();
        assert!((psi(&[1, 1], &[2, 0]).unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn an_empty_side_has_no_distance() {
        assert_eq!(psi(&[0, 0], &[1, 2]), None);
        assert_eq!(jensen_shannon(&[1, 2], &[0, 0]), None);
    }
}
