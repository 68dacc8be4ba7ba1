//! Data files at `s3://` URLs, for commands that read or write a user's data there (batch
//! scoring): which objects a URL names, and copying one object to or from a local file in
//! parts, so memory stays bounded whatever the object's size. Credentials and endpoint come
//! from the usual `AWS_*` variables, as for artifacts.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::StoreError;

/// Bytes copied per part when uploading.
const PART: usize = 8 << 20;

/// An `s3://BUCKET/KEY` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// The key, or a key prefix (a "folder" when it ends in `/`), or a pattern with `*` in its
    /// last part; may be empty (the whole bucket).
    pub key: String,
}

impl S3Url {
    /// `None` when `url` is not an `s3://` URL (a local path).
    pub fn parse(url: &str) -> Option<Result<S3Url, StoreError>> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(StoreError::Location {
                location: url.into(),
                problem: "expected s3://BUCKET/KEY".into(),
            }));
        }
        Some(Ok(S3Url {
            bucket: bucket.into(),
            key: key.into(),
        }))
    }

    /// The URL of another key in the same bucket.
    pub fn with_key(&self, key: impl Into<String>) -> S3Url {
        S3Url {
            bucket: self.bucket.clone(),
            key: key.into(),
        }
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A client of `bucket` configured from the usual `AWS_*` variables; the error says which.
pub(crate) fn s3_from_env(bucket: &str) -> Result<object_store::aws::AmazonS3, String> {
    AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .map_err(|e| {
            format!(
                "{e} (set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and, for \
                 S3-compatible storage, AWS_ENDPOINT)"
            )
        })
}

/// One bucket's objects.
#[derive(Debug, Clone)]
pub struct Bucket {
    name: String,
    store: Arc<dyn ObjectStore>,
}

impl Bucket {
    pub fn open(name: &str) -> Result<Bucket, StoreError> {
        let store = s3_from_env(name).map_err(|problem| StoreError::Remote {
            url: format!("s3://{name}"),
            problem,
        })?;
        Ok(Bucket {
            name: name.into(),
            store: Arc::new(store),
        })
    }

    /// The URL of object `key`.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    fn error(&self, key: &str, problem: impl std::fmt::Display) -> StoreError {
        StoreError::Remote {
            url: self.url(key),
            problem: problem.to_string(),
        }
    }

    /// The keys of the objects directly under `folder` (a prefix ending in `/`, or empty for
    /// the bucket's top), sorted.
    pub async fn list(&self, folder: &str) -> Result<Vec<String>, StoreError> {
        let prefix = folder.trim_end_matches('/');
        let prefix = (!prefix.is_empty()).then(|| StorePath::from(prefix));
        let listing = self
            .store
            .list_with_delimiter(prefix.as_ref())
            .await
            .map_err(|e| self.error(folder, e))?;
        let mut keys: Vec<String> = listing
            .objects
            .into_iter()
            .map(|o| o.location.to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Whether an object `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.store.head(&StorePath::from(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Copies object `key` to the file `to`, part by part; returns its size.
    pub async fn download(&self, key: &str, to: &Path) -> Result<u64, StoreError> {
        let got = self
            .store
            .get(&StorePath::from(key))
            .await
            .map_err(|e| self.error(key, e))?;
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| self.error(key, format!("cannot create {}: {e}", to.display())))?;
        let mut stream = got.into_stream();
        let mut size = 0u64;
        while let Some(part) = stream.next().await {
            let part = part.map_err(|e| self.error(key, e))?;
            size += part.len() as u64;
            file.write_all(&part)
                .await
                .map_err(|e| self.error(key, format!("writing {}: {e}", to.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| self.error(key, format!("writing {}: {e}", to.display())))?;
        Ok(size)
    }

    /// Copies the file `from` to object `key` (a multipart upload when it is large); returns
    /// its size.
    pub async fn upload(&self, from: &Path, key: &str) -> Result<u64, StoreError> {
        let mut file = tokio::fs::File::open(from)
            .await
            .map_err(|e| self.error(key, format!("cannot read {}: {e}", from.display())))?;
        let mut writer = BufWriter::with_capacity(self.store.clone(), StorePath::from(key), PART);
        let mut size = 0u64;
        loop {
            let mut part = Vec::with_capacity(PART);
            let n = (&mut file)
                .take(PART as u64)
                .read_to_end(&mut part)
                .await
                .map_err(|e| self.error(key, format!("reading {}: {e}", from.display())))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if let Err(e) = writer.put(part.into()).await {
                let _ = writer.abort().await;
                return Err(self.error(key, e));
            }
        }
        writer.shutdown().await.map_err(|e| self.error(key, e))?;
        Ok(size)
    }
}
