//! The seeded generator of drift test data, shared by the `make_drift_data` example and the
//! `shifted` test (which includes this file): the same seed gives the same values.

/// splitmix64, seeded: the same data every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }

    /// The next value of numeric column `x{j}`. A few shapes, by `j % 3`: normal,
    /// exponential-ish, rounded (ties). When `shifted`, x0's mean moves by 0.5 and x1's sd
    /// grows 1.6 times.
    pub fn numeric(&mut self, j: usize, shifted: bool) -> f64 {
        let (shift, scale) = match (shifted, j) {
            (true, 0) => (0.5, 1.0),
            (true, 1) => (0.0, 1.6),
            _ => (0.0, 1.0),
        };
        let z = self.normal() * scale + shift;
        match j % 3 {
            0 => z,
            1 => z.exp(),
            _ => (z * 2.0).round(),
        }
    }

    /// One of `categories`, drawn with the probabilities `shares` (the last category takes
    /// whatever the shares leave).
    pub fn category<'a>(&mut self, categories: &[&'a str], shares: &[f64]) -> &'a str {
        let u = self.uniform();
        let mut acc = 0.0;
        for (c, s) in categories.iter().zip(shares) {
            acc += s;
            if u < acc {
                return c;
            }
        }
        categories[categories.len() - 1]
    }
}
