//! The two-sample Kolmogorov-Smirnov test as scipy 1.17's `ks_2samp` computes it by default
//! (`alternative="two-sided"`, `method="auto"`): exact when both samples have at most 10000
//! values (the statistic is then rounded to a multiple of `1 / lcm(n1, n2)`, as scipy returns
//! it), otherwise asymptotic, `kstwo.sf(D, round(n1 n2 / (n1 + n2)))`. Like scipy, an exact
//! computation that over- or underflows falls back to the asymptotic one.
//!
//! From a profile the statistic is the largest CDF difference at the shared bin edges: a lower
//! bound of the exact one, short of it by at most the largest single-bin share of either side.

use serde::{Deserialize, Serialize};

use super::kolmogorov::kstwo_sf;

/// Largest sample size for which "auto" computes the exact p-value.
pub const MAX_EXACT_N: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsTest {
    pub statistic: f64,
    pub p_value: f64,
    /// True when the p-value is exact, false when asymptotic.
    pub exact: bool,
}

/// `sup |F_a - F_b|` over all values of ascending `a` and `b`; 0 when either is empty.
pub fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let mut d: f64 = 0.0;
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    // After one side is exhausted its CDF is 1 and the other's only grows towards 1.
    d
}

/// The statistic on shared bins: `max |P_a(slot <= k) - P_b(slot <= k)|`.
pub fn statistic_binned(a: &[u64], b: &[u64]) -> Option<f64> {
    let (n, m) = (a.iter().sum::<u64>(), b.iter().sum::<u64>());
    if n == 0 || m == 0 {
        return None;
    }
    let (mut ca, mut cb, mut d) = (0u64, 0u64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        ca += x;
        cb += y;
        d = d.max((ca as f64 / n as f64 - cb as f64 / m as f64).abs());
    }
    Some(d)
}

/// The test for statistic `d` between samples of `n1` and `n2` values; `None` if one is empty.
pub fn test(d: f64, n1: usize, n2: usize) -> Option<KsTest> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    if n1.max(n2) <= MAX_EXACT_N
        && let Some(exact) = exact(d, n1 as u64, n2 as u64)
    {
        return Some(exact);
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = (m * n / (m + n)).round() as u64;
    Some(KsTest {
        statistic: d,
        p_value: kstwo_sf(en.max(1), d).clamp(0.0, 1.0),
        exact: false,
    })
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn exact(d: f64, n1: u64, n2: u64) -> Option<KsTest> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let statistic = h as f64 / lcm as f64;
    let p = if h == 0 {
        1.0
    } else if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside(n1, n2, g, h)
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some(KsTest {
        statistic,
        p_value: p,
        exact: true,
    })
}

/// Share of lattice paths leaving the band `|x - y| < h` for equal sample sizes `n`.
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (nf, hf) = (n as f64, h as f64);
    let mut p = 0.0;
    let mut k = n / h;
    loop {
        let kf = k as f64;
        let mut p1 = 1.0;
        for j in 0..h {
            let jf = j as f64;
            p1 = (nf - kf * hf - jf) * p1 / (nf + kf * hf + jf + 1.0);
        }
        p = p1 * (1.0 - p);
        if k == 0 {
            break;
        }
        k -= 1;
    }
    2.0 * p
}

/// Share of lattice paths from (0, 0) to (m, n) that leave `|x/m - y/n| < h / lcm`, by the
/// "1 - p" form of Hodges' inside method (Viehmann 2021), as scipy computes it.
fn outer_prob_inside(n1: u64, n2: u64, g: u64, h: u64) -> f64 {
    let (m, n) = (n1.max(n2) as i64, n1.min(n2) as i64);
    let (mg, ng, h) = (m / g as i64, n / g as i64, h as i64);
    let ceil_div = |a: i64, b: i64| (a as f64 / b as f64).ceil() as i64;
    let floor_div = |a: i64, b: i64| (a as f64 / b as f64).floor() as i64;
    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = (floor_div(ng * i - h, mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        let fi = i as f64;
        for jj in 0..(maxj - minj) {
            let j = (jj + minj) as f64;
            let from = (jj + minj - lastminj) as usize;
            let prev = a.get(from).copied().unwrap_or(1.0);
            val = (prev * fi + val * j) / (fi + j);
            if let Some(slot) = a.get_mut(jj as usize) {
                *slot = val;
            }
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for v in a.iter_mut().take(end).skip(start) {
                *v = 1.0;
            }
        }
    }
    a.get((maxj - minj - 1) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_of_disjoint_samples_is_one() {
        assert_eq!(statistic_sorted(&[1.0, 2.0], &[3.0, 4.0, 5.0]), 1.0);
        assert_eq!(statistic_sorted(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(statistic_sorted(&[], &[1.0]), 0.0);
    }

    #[test]
    fn ties_are_stepped_over_together() {
        // F_a jumps to 1 at 1; F_b is 0.5 there.
        assert_eq!(statistic_sorted(&[1.0, 1.0], &[1.0, 2.0]), 0.5);
    }

    #[test]
    fn exact_p_values_match_scipy() {
        // scipy.stats.ks_2samp([1, 2, 3], [4, 5, 6]).pvalue == 0.1
        let t = test(1.0, 3, 3).unwrap();
        assert!(t.exact);
        assert!((t.p_value - 0.1).abs() < 1e-12);
        // ks_2samp([1, 2, 3, 4], [5, 6]).pvalue == 2 / 15 = 0.13333...
        let t = test(1.0, 4, 2).unwrap();
        assert!((t.p_value - 2.0 / 15.0).abs() < 1e-12, "{}", t.p_value);
        assert_eq!(test(0.0, 5, 7).unwrap().p_value, 1.0);
        assert!(test(0.5, 0, 7).is_none());
    }

    #[test]
    fn binned_statistic_is_a_lower_bound() {
        let d = statistic_binned(&[0, 5, 5, 0], &[0, 0, 5, 5]).unwrap();
        assert!((d - 0.5).abs() < 1e-12);
        assert!(statistic_binned(&[0, 0], &[1, 1]).is_none());
    }
}
