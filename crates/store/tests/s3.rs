//! Artifacts on S3-compatible storage, against the local S3 emulator (moto) that
//! `scripts/test.sh` starts on 127.0.0.1 with a bucket named in `BERTH_TEST_S3_BUCKET` and the
//! `AWS_*` variables pointing at it. Skipped with a message without it, unless
//! `BERTH_REQUIRE_SERVICES=1`.

use berth_store::testing::s3_test_bucket;
use berth_store::{ArtifactLocation, ArtifactStore, StoreError, sha256_hex};
use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutPayload};

#[tokio::test]
async fn artifacts_round_trip_through_s3() {
    let Some(bucket) = s3_test_bucket() else {
        return;
    };
    let prefix = format!("round-trip-{}", std::process::id());
    let store = ArtifactStore::open(ArtifactLocation::S3 {
        bucket: bucket.clone(),
        prefix: prefix.clone(),
    })
    .expect("S3 store");
    let model = Bytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/models/xgb_classifier.json"
        ))
        .expect("fixture"),
    );
    let sha = sha256_hex(&model);

    let first = store.put(model.clone()).await.expect("put");
    assert!(first.newly_written);
    assert_eq!(first.sha256, sha);
    assert_eq!(first.uri, format!("s3://{bucket}/{prefix}/sha256/{sha}"));
    let again = store.put(model.clone()).await.expect("put again");
    assert!(!again.newly_written, "the same bytes are stored once");
    assert_eq!(store.get(&sha).await.expect("get"), model);

    // Bytes changed behind berth's back are caught by the hash check.
    let raw = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()
        .expect("raw client");
    raw.put(
        &StorePath::from(format!("{prefix}/sha256/{sha}")),
        PutPayload::from_static(b"tampered"),
    )
    .await
    .expect("overwrite");
    match store.get(&sha).await {
        Err(StoreError::Corrupt { sha256, .. }) => assert_eq!(sha256, sha),
        other => panic!("expected a corrupt-artifact error, got {other:?}"),
    }

    let missing = "0".repeat(64);
    let err = store.get(&missing).await.unwrap_err().to_string();
    assert!(
        err.contains("artifact store error") && err.contains(&missing),
        "{err}"
    );
}
