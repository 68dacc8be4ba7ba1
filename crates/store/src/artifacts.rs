//! Content-addressed artifacts through `object_store`: a local folder or S3-compatible storage.
//!
//! An artifact is stored once under `sha256/<hex>`; storing the same bytes again is a no-op.
//! Reads verify the hash, so a damaged blob is reported instead of served.

use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use sha2::{Digest, Sha256};

use crate::StoreError;

/// Where artifacts live, parsed from a path or an `s3://bucket/prefix` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    Folder(std::path::PathBuf),
    /// Bucket and key prefix; credentials and endpoint from the usual `AWS_*` variables.
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl ArtifactLocation {
    pub fn parse(location: &str) -> Result<Self, StoreError> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::Location {
                    location: location.into(),
                    problem: "expected s3://BUCKET[/PREFIX]".into(),
                });
            }
            return Ok(ArtifactLocation::S3 {
                bucket: bucket.into(),
                prefix: prefix.trim_matches('/').into(),
            });
        }
        if location.contains("://") {
            return Err(StoreError::Location {
                location: location.into(),
                problem: "artifacts go to a folder path or s3://BUCKET[/PREFIX]".into(),
            });
        }
        Ok(ArtifactLocation::Folder(location.into()))
    }

    /// The URL form recorded with each artifact.
    pub fn display_uri(&self, key: &str) -> String {
        match self {
            ArtifactLocation::Folder(dir) => format!("file://{}/{key}", absolute(dir).display()),
            ArtifactLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                format!("s3://{bucket}/{key}")
            }
            ArtifactLocation::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}/{key}"),
        }
    }
}

fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Artifacts by content hash.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    location: ArtifactLocation,
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

/// What storing an artifact did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub sha256: String,
    pub uri: String,
    pub size: u64,
    /// False when the same bytes were already stored.
    pub newly_written: bool,
}

impl ArtifactStore {
    pub fn open(location: ArtifactLocation) -> Result<Self, StoreError> {
        let err = |problem: String| StoreError::Artifact {
            location: format!("{location:?}"),
            problem,
        };
        let (store, prefix): (Arc<dyn ObjectStore>, String) = match &location {
            ArtifactLocation::Folder(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| err(format!("cannot create folder {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| err(e.to_string()))?;
                (Arc::new(fs), String::new())
            }
            ArtifactLocation::S3 { bucket, prefix } => {
                let s3 = crate::remote::s3_from_env(bucket).map_err(err)?;
                (Arc::new(s3), prefix.clone())
            }
        };
        Ok(Self {
            location,
            store,
            prefix,
        })
    }

    fn key(&self, sha256: &str) -> String {
        format!("sha256/{sha256}")
    }

    fn path(&self, sha256: &str) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(self.key(sha256))
        } else {
            StorePath::from(format!("{}/{}", self.prefix, self.key(sha256)))
        }
    }

    fn error(&self, problem: impl std::fmt::Display) -> StoreError {
        StoreError::Artifact {
            location: self.location.display_uri(""),
            problem: problem.to_string(),
        }
    }

    /// Stores `bytes` under their hash unless they are there already.
    pub async fn put(&self, bytes: Bytes) -> Result<StoredArtifact, StoreError> {
        let sha256 = sha256_hex(&bytes);
        let path = self.path(&sha256);
        let size = bytes.len() as u64;
        let uri = self.location.display_uri(&self.key(&sha256));
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from_bytes(bytes), options)
            .await
        {
            Ok(_) => Ok(StoredArtifact {
                sha256,
                uri,
                size,
                newly_written: true,
            }),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(StoredArtifact {
                sha256,
                uri,
                size,
                newly_written: false,
            }),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The bytes stored under `sha256`, verified.
    pub async fn get(&self, sha256: &str) -> Result<Bytes, StoreError> {
        let result = self
            .store
            .get(&self.path(sha256))
            .await
            .map_err(|e| self.error(e))?;
        let bytes = result.bytes().await.map_err(|e| self.error(e))?;
        let actual = sha256_hex(&bytes);
        if actual != sha256 {
            return Err(StoreError::Corrupt {
                sha256: sha256.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    pub fn location(&self) -> &ArtifactLocation {
        &self.location
    }
}
