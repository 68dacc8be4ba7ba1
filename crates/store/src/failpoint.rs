//! Injected failures for tests: with the `failpoints` feature, a test can make a named point in
//! a write fail, to show that the transaction around it leaves nothing behind.

use crate::StoreError;

#[cfg(feature = "failpoints")]
static ARMED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Makes the next pass through failpoint `name` for `key` (a model name) fail; keyed so that
/// tests running in parallel do not trip over each other (feature `failpoints` only).
#[cfg(feature = "failpoints")]
pub fn arm(name: &str, key: &str) {
    if let Ok(mut armed) = ARMED.lock() {
        armed.push(format!("{name}:{key}"));
    }
}

/// Fails if a test armed this point for this key; a no-op in normal builds.
pub(crate) fn check(name: &str, key: &str) -> Result<(), StoreError> {
    #[cfg(feature = "failpoints")]
    if let Ok(mut armed) = ARMED.lock() {
        let point = format!("{name}:{key}");
        if let Some(i) = armed.iter().position(|a| *a == point) {
            armed.remove(i);
            return Err(StoreError::Injected(name.to_string()));
        }
    }
    let _ = (name, key);
    Ok(())
}
