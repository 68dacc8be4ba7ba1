//! berth's stores.
//!
//! - [`MetadataStore`]: models, versions, aliases, endpoints and the audit log, in SQLite (the
//!   embedded default, a file in the data folder, WAL mode) or PostgreSQL, with one schema and
//!   one set of SQL for both.
//! - Prediction records ([`PredictionRow`]), written in idempotent batches by `berth-records`.
//! - Live profile windows ([`ProfileWindowRow`]) of every serving replica, merged by readers.
//! - Rollouts ([`RolloutRow`]), saved with the policy and alias moves of each step.
//! - [`ArtifactStore`]: model files and reference data by content hash (sha256), in a local
//!   folder or S3-compatible storage through `object_store`.
//!
//! [`StoreConfig`] turns what a user types (`./berth-data`, `sqlite://...`, `postgres://...`,
//! `s3://bucket/prefix`) into both.

mod artifacts;
mod error;
pub mod failpoint;
mod jobs;
mod metadata;
mod predictions;
mod profiles;
mod records;
pub mod remote;
mod rollouts;
mod segment;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::{Path, PathBuf};

pub use artifacts::{ArtifactLocation, ArtifactStore, StoredArtifact, sha256_hex};
pub use error::StoreError;
pub use jobs::{JobRow, JobRunRow, RunStatus};
pub use metadata::{Backend, MetadataStore};
pub use predictions::PredictionRow;
pub use profiles::ProfileWindowRow;
pub use records::{
    AliasRecord, AuditFilter, AuditRecord, Change, EndpointRecord, Lineage, ModelRecord,
    NewVersion, VersionRecord,
};
pub use rollouts::{RolloutRow, RolloutSave};
pub use segment::{Entries, Float, PredictionBatch, RecordBuilder, RecordHead};

/// The default data folder: `./berth-data`.
pub const DEFAULT_DATA_DIR: &str = "berth-data";

/// Where metadata and artifacts live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// A sqlx URL: `sqlite://PATH?mode=rwc` or `postgres://...`.
    pub metadata_url: String,
    pub artifacts: ArtifactLocation,
}

impl StoreConfig {
    /// Reads `--store` (a folder, `sqlite://FILE` or `postgres://...`) and `--artifacts` (a
    /// folder or `s3://BUCKET/PREFIX`; default: `artifacts/` in the data folder, or
    /// `./berth-data/artifacts` when the metadata is in PostgreSQL).
    pub fn parse(store: &str, artifacts: Option<&str>) -> Result<Self, StoreError> {
        let (metadata_url, data_dir): (String, PathBuf) = if store.starts_with("postgres://")
            || store.starts_with("postgresql://")
        {
            (store.to_string(), PathBuf::from(DEFAULT_DATA_DIR))
        } else if let Some(path) = store
            .strip_prefix("sqlite://")
            .or_else(|| store.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or(path);
            let dir = Path::new(path)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            (format!("sqlite://{path}?mode=rwc"), dir)
        } else if store.contains("://") {
            return Err(StoreError::Location {
                location: store.into(),
                problem: "expected a folder, sqlite://FILE or postgres://USER@HOST:PORT/DB".into(),
            });
        } else {
            let dir = PathBuf::from(store);
            (
                format!("sqlite://{}?mode=rwc", dir.join("berth.db").display()),
                dir,
            )
        };
        let artifacts = match artifacts {
            Some(a) => ArtifactLocation::parse(a)?,
            None => ArtifactLocation::Folder(data_dir.join("artifacts")),
        };
        Ok(Self {
            metadata_url,
            artifacts,
        })
    }

    /// Creates the SQLite folder if needed, connects, migrates, and opens the artifact store.
    pub async fn open(&self) -> Result<(MetadataStore, ArtifactStore), StoreError> {
        if let Some(path) = self.metadata_url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = Path::new(file)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Unreachable {
                    location: file.to_string(),
                    problem: format!("cannot create folder {}: {e}", dir.display()),
                })?;
            }
        }
        let metadata = MetadataStore::connect(&self.metadata_url).await?;
        let artifacts = ArtifactStore::open(self.artifacts.clone())?;
        Ok((metadata, artifacts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_locations() {
        let c = StoreConfig::parse("berth-data", None).unwrap();
        assert_eq!(c.metadata_url, "sqlite://berth-data/berth.db?mode=rwc");
        assert_eq!(
            c.artifacts,
            ArtifactLocation::Folder("berth-data/artifacts".into())
        );
        let c = StoreConfig::parse("postgres://u@h:5432/db", Some("s3://bucket/a/b/")).unwrap();
        assert_eq!(c.metadata_url, "postgres://u@h:5432/db");
        assert_eq!(
            c.artifacts,
            ArtifactLocation::S3 {
                bucket: "bucket".into(),
                prefix: "a/b".into()
            }
        );
        let c = StoreConfig::parse("sqlite:///tmp/x/meta.db", None).unwrap();
        assert_eq!(c.metadata_url, "sqlite:///tmp/x/meta.db?mode=rwc");
        assert_eq!(
            c.artifacts,
            ArtifactLocation::Folder("/tmp/x/artifacts".into())
        );
        assert!(
            StoreConfig::parse("mysql://x", None)
                .unwrap_err()
                .to_string()
                .contains("expected a folder")
        );
        assert!(StoreConfig::parse("x", Some("gs://b")).is_err());
    }
}
