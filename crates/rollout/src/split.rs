//! Traffic assignment on the request hot path: [`Splitter::route`] sends one request to the
//! primary or the canary for a canary [`Weight`], without allocating or locking.
//!
//! - With a sticky key (a header value, an input field), a stable 64-bit hash of (rollout id,
//!   key) gives a bucket in 0..10 000 and the request goes to the canary iff the bucket is below
//!   the weight in basis points. A key therefore keeps its version within a step, and since
//!   weights only grow during a rollout, a key once on the canary stays there. The hash is FNV-1a
//!   finished with a 64-bit mixer: stable across Rust releases, processes and machines.
//! - Without a key, an atomic counter runs through a golden-ratio (Weyl) sequence, which is
//!   equidistributed with low discrepancy: over any run of consecutive requests the canary's
//!   share is within a fraction of a percentage point of the weight.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Buckets of the split: one per basis point.
pub const BUCKETS: u16 = 10_000;

/// A canary weight in basis points (1/100 of a percent), 0..=10 000.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "u16", into = "u16")]
pub struct Weight(u16);

impl Weight {
    pub const ZERO: Self = Self(0);
    pub const FULL: Self = Self(BUCKETS);

    /// `None` above 10 000.
    pub fn from_basis_points(points: u16) -> Option<Self> {
        (points <= BUCKETS).then_some(Self(points))
    }

    /// Rounds to the nearest basis point; `None` outside [0, 100] or not finite.
    pub fn from_percent(percent: f64) -> Option<Self> {
        (0.0..=100.0)
            .contains(&percent)
            .then(|| Self((percent * 100.0).round() as u16))
    }

    pub fn basis_points(self) -> u16 {
        self.0
    }

    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl TryFrom<u16> for Weight {
    type Error = String;
    fn try_from(points: u16) -> Result<Self, Self::Error> {
        Self::from_basis_points(points)
            .ok_or_else(|| format!("expected a weight in basis points 0..=10000, got {points}"))
    }
}

impl From<Weight> for u16 {
    fn from(weight: Weight) -> Self {
        weight.0
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

/// Where one request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Primary,
    Canary,
}

/// Assigns requests of one rollout to the primary or the canary. Share one per rollout across
/// threads (`&self` methods); the unkeyed counter is its only mutable state.
#[derive(Debug)]
pub struct Splitter {
    /// FNV-1a state after hashing the rollout id and a separator.
    seed: u64,
    counter: AtomicU64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// 2^64 / φ: consecutive multiples are spread as evenly as any sequence can be.
const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        state ^= u64::from(byte);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// The finalizer of MurmurHash3: every input bit affects every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Maps a uniform 64-bit value to 0..BUCKETS by its high bits (no modulo bias to speak of).
fn to_bucket(x: u64) -> u16 {
    ((u128::from(x) * u128::from(BUCKETS)) >> 64) as u16
}

impl Splitter {
    pub fn new(rollout_id: &str) -> Self {
        // 0xff never occurs in UTF-8, so (id, key) pairs cannot collide by shifting bytes.
        Self {
            seed: fnv1a(fnv1a(FNV_OFFSET, rollout_id.as_bytes()), &[0xff]),
            counter: AtomicU64::new(0),
        }
    }

    /// The sticky bucket of a key in this rollout, 0..10 000.
    pub fn bucket(&self, key: &[u8]) -> u16 {
        to_bucket(mix(fnv1a(self.seed, key)))
    }

    /// Routes one request: by its key's bucket when it has a sticky key, else by the counter.
    pub fn route(&self, weight: Weight, sticky_key: Option<&[u8]>) -> Route {
        let bucket = match sticky_key {
            Some(key) => self.bucket(key),
            None => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed);
                to_bucket(n.wrapping_mul(GOLDEN_GAMMA))
            }
        };
        if bucket < weight.basis_points() {
            Route::Canary
        } else {
            Route::Primary
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WEIGHTS: [f64; 9] = [0.0, 0.01, 1.0, 5.0, 25.0, 33.33, 50.0, 99.99, 100.0];

    fn canary_share(mut route: impl FnMut() -> Route, requests: usize) -> f64 {
        let canary = (0..requests).filter(|_| route() == Route::Canary).count();
        100.0 * canary as f64 / requests as f64
    }

    #[test]
    fn weights_convert_and_reject_out_of_range() {
        assert_eq!(Weight::from_percent(12.34).unwrap().basis_points(), 1234);
        assert_eq!(Weight::from_percent(100.0), Some(Weight::FULL));
        assert_eq!(Weight::from_percent(100.01), None);
        assert_eq!(Weight::from_percent(-1.0), None);
        assert_eq!(Weight::from_percent(f64::NAN), None);
        assert_eq!(Weight::from_basis_points(10_001), None);
        assert!(serde_json::from_str::<Weight>("10001").is_err());
        assert_eq!(
            serde_json::from_str::<Weight>("2500").unwrap().to_string(),
            "25%"
        );
    }

    #[test]
    fn the_hash_is_stable_across_releases() {
        // FNV-1a's published test vector, then fixed buckets: a change here re-shuffles users.
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        let splitter = Splitter::new("rollout-1");
        assert_eq!(
            splitter.bucket(b"user-42"),
            Splitter::new("rollout-1").bucket(b"user-42")
        );
        assert_eq!(
            [splitter.bucket(b""), splitter.bucket(b"user-42")],
            [8473, 7890]
        );
    }

    #[test]
    fn unkeyed_share_is_within_2_points_over_any_10k_requests() {
        for percent in WEIGHTS {
            let weight = Weight::from_percent(percent).unwrap();
            let splitter = Splitter::new("r");
            for start in [0_u64, 1, 7_777, 123_456_789, u64::MAX - 5_000] {
                splitter.counter.store(start, Ordering::Relaxed);
                let share = canary_share(|| splitter.route(weight, None), 10_000);
                // Low discrepancy does far better than the ±2 points asked for.
                assert!(
                    (share - percent).abs() <= 0.05,
                    "{percent}% from {start}: {share}"
                );
                if percent == 0.0 || percent == 100.0 {
                    assert_eq!(share, percent, "all or nothing from {start}");
                }
            }
        }
    }

    #[test]
    fn keyed_share_is_within_2_points_over_10k_keys() {
        for (seed, rollout) in [(1_u64, "a"), (2, "b"), (3, "rollout-0192")] {
            let splitter = Splitter::new(rollout);
            for percent in WEIGHTS {
                let weight = Weight::from_percent(percent).unwrap();
                // Random bytes, and sequential ids as real keys often are.
                let random = (0..10_000_u64).map(|i| {
                    mix(seed ^ i.wrapping_mul(GOLDEN_GAMMA))
                        .to_le_bytes()
                        .to_vec()
                });
                let sequential =
                    (0..10_000).map(|i| format!("customer-{}", seed * 100_000 + i).into_bytes());
                for keys in [random.collect::<Vec<_>>(), sequential.collect()] {
                    let mut keys = keys.iter();
                    let share = canary_share(
                        || splitter.route(weight, keys.next().map(Vec::as_slice)),
                        10_000,
                    );
                    assert!(
                        (share - percent).abs() <= 2.0,
                        "{percent}% {rollout}: {share}"
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn a_key_on_the_canary_stays_there_as_weights_grow(
            key in proptest::collection::vec(any::<u8>(), 0..32),
            low in 0_u16..=10_000,
            high in 0_u16..=10_000,
        ) {
            let (low, high) = (low.min(high), low.max(high));
            let splitter = Splitter::new("sticky");
            let at = |points| splitter.route(Weight(points), Some(&key));
            prop_assert_eq!(at(low), at(low), "same key, same step, same route");
            if at(low) == Route::Canary {
                prop_assert_eq!(at(high), Route::Canary);
            }
            prop_assert_eq!(at(0), Route::Primary);
            prop_assert_eq!(at(BUCKETS), Route::Canary);
        }
    }
}
