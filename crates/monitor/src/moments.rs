//! Count, mean, variance, min and max of a stream of numbers, mergeable.
//!
//! Means and sums of squared deviations use Welford's update and Chan's parallel merge, so a
//! merged summary equals the one-pass summary up to floating-point rounding (not bit for bit);
//! count, min and max are exact.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Finite values seen.
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    /// `None` until a value is seen.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Moments {
    /// Adds one finite value.
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
    }

    /// Folds `other` into `self` as if its values had been pushed.
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let n = (self.count + other.count) as f64;
        let (na, nb) = (self.count as f64, other.count as f64);
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Population variance (ddof 0), as numpy's `var` by default; 0 when empty.
    pub fn variance(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.m2 / self.count as f64).max(0.0)
        }
    }

    /// Population standard deviation (ddof 0).
    pub fn std(&self) -> f64 {
        self.variance().sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_variance_min_max_of_a_few_values() {
        let mut m = Moments::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            m.push(x);
        }
        assert_eq!(m.count, 8);
        assert!((m.mean - 5.0).abs() < 1e-12);
        assert!((m.variance() - 4.0).abs() < 1e-12);
        assert_eq!((m.min, m.max), (Some(2.0), Some(9.0)));
    }

    #[test]
    fn merge_with_empty_is_identity() {
        let mut a = Moments::default();
        a.push(1.5);
        let before = a.clone();
        a.merge(&Moments::default());
        assert_eq!(a, before);
        let mut e = Moments::default();
        e.merge(&before);
        assert_eq!(e, before);
    }
}
