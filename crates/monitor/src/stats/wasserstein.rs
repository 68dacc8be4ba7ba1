//! The first Wasserstein (earth mover's) distance `W1 = ∫ |F_a - F_b| dx`, exactly from sorted
//! samples (scipy's `wasserstein_distance`), or from histograms on shared bins with each bin's
//! mass spread evenly over it (out-of-range slots spread between the sample's own minimum or
//! maximum and the outer edge).
//!
//! The binned value differs from the exact one by at most `Σ width_i · (p_i + q_i)` over the
//! bins (the CDFs differ from their linear interpolations only inside a bin, by less than the
//! bin's share); on 20 quantile bins of smooth data it is typically within a few percent.

/// `W1` between ascending samples `a` and `b`; `None` when either is empty.
pub fn w1_sorted(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut prev = a[0].min(b[0]);
    let mut total = 0.0;
    while i < a.len() || j < b.len() {
        let x = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) | (None, Some(&x)) => x,
            (None, None) => break,
        };
        total += (i as f64 / n - j as f64 / m).abs() * (x - prev);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        prev = x;
    }
    Some(total)
}

/// Mass `share` spread evenly over `[lo, hi]` (a point mass when `lo == hi`).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub lo: f64,
    pub hi: f64,
    pub share: f64,
}

fn cdf(segments: &[Segment], t: f64, left_limit: bool) -> f64 {
    segments
        .iter()
        .map(|s| {
            let past = if left_limit { t > s.hi } else { t >= s.hi };
            if past {
                s.share
            } else if t <= s.lo || s.hi <= s.lo {
                0.0
            } else {
                s.share * (t - s.lo) / (s.hi - s.lo)
            }
        })
        .sum()
}

/// `W1` between two distributions made of evenly spread segments.
pub fn w1_segments(a: &[Segment], b: &[Segment]) -> f64 {
    let mut points: Vec<f64> = a
        .iter()
        .chain(b)
        .flat_map(|s| [s.lo, s.hi])
        .filter(|x| x.is_finite())
        .collect();
    points.sort_by(f64::total_cmp);
    points.dedup();
    let mut total = 0.0;
    for w in points.windows(2) {
        let (x0, x1) = (w[0], w[1]);
        let d0 = cdf(a, x0, false) - cdf(b, x0, false);
        let d1 = cdf(a, x1, true) - cdf(b, x1, true);
        let width = x1 - x0;
        total += if d0 * d1 >= 0.0 {
            (d0.abs() + d1.abs()) / 2.0 * width
        } else {
            (d0 * d0 + d1 * d1) / (2.0 * (d0.abs() + d1.abs())) * width
        };
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_a_sample_moves_it_by_the_shift() {
        let a = [0.0, 1.0, 2.0, 3.0];
        let b: Vec<f64> = a.iter().map(|x| x + 0.5).collect();
        assert!((w1_sorted(&a, &b).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(w1_sorted(&a, &a), Some(0.0));
        assert_eq!(w1_sorted(&[], &a), None);
    }

    #[test]
    fn unequal_sizes_match_scipy() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8, 9]) == 17 / 3
        let w = w1_sorted(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0, 9.0]).unwrap();
        assert!((w - 17.0 / 3.0).abs() < 1e-12, "{w}");
    }

    #[test]
    fn spread_segments_and_point_masses() {
        let uniform = [Segment {
            lo: 0.0,
            hi: 1.0,
            share: 1.0,
        }];
        let point = [Segment {
            lo: 0.5,
            hi: 0.5,
            share: 1.0,
        }];
        // E|U - 1/2| for U uniform on [0, 1] is 1/4.
        assert!((w1_segments(&uniform, &point) - 0.25).abs() < 1e-12);
        let shifted = [Segment {
            lo: 2.0,
            hi: 3.0,
            share: 1.0,
        }];
        assert!((w1_segments(&uniform, &shifted) - 2.0).abs() < 1e-12);
    }
}
