//! Prediction ids: UUIDv7 (time-ordered to the millisecond, then 74 random bits), made
//! without a system call per id. `Uuid::now_v7` asks the kernel for randomness on every call,
//! which was a sixth of batch scoring's CPU; a thread-local generator seeded once serves ids,
//! which need to be unique, not secret.

use std::time::{SystemTime, UNIX_EPOCH};

/// A new prediction id.
pub fn prediction_id() -> uuid::Uuid {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let mut random = [0u8; 10];
    fastrand::fill(&mut random);
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_unique_and_ordered_by_millisecond() {
        let ids: Vec<uuid::Uuid> = (0..100_000).map(|_| prediction_id()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let millis = |id: &uuid::Uuid| id.get_timestamp().map(|t| t.to_unix()).expect("time");
        assert!(ids.windows(2).all(|w| millis(&w[0]) <= millis(&w[1])));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("now")
            .as_secs();
        assert!(millis(&ids[0]).0.abs_diff(now) < 5);
    }
}
