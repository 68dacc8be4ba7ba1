//! Runs each test body on SQLite and on PostgreSQL (see `berth_registry::testing`), and reads
//! fixture model files.

use std::path::{Path, PathBuf};

pub fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/models")
        .join(file)
}

pub fn fixture_bytes(file: &str) -> bytes::Bytes {
    std::fs::read(fixture(file)).expect("fixture").into()
}

/// Runs each test body on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident($reg:ident, $clock:ident) $body:block)*) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(test) = berth_registry::testing::test_registry(berth_registry::testing::Backend::Sqlite).await else { return };
                    let ($reg, $clock) = (&test.registry, test.clock.clone());
                    $body
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(test) = berth_registry::testing::test_registry(berth_registry::testing::Backend::Postgres).await else { return };
                    let ($reg, $clock) = (&test.registry, test.clock.clone());
                    $body
                }
            )*
        }
    };
}
