//! Prediction records in the metadata store, kept in *segments*: the `prediction_segments`
//! table (migration 7) holds one row per writer batch and endpoint, its records in the binary
//! form of [`crate::segment`] (column `data`, migration 8; segments written before it keep
//! their records as JSON lines in `body`, one [`PredictionRow`] each), with the columns
//! readers filter on (endpoint, time span, id span). One row per batch instead of one per
//! prediction is what lets a server record every prediction at full speed: a batch of 500
//! records is one `INSERT` of one value.
//!
//! # Exactly once
//! Every record comes from a *writer* (a recorder's spool folder, see `berth-records`) with a
//! sequence number, and a writer hands its records over in sequence order. The store keeps each
//! writer's high-water mark (`prediction_writers.next_seq`) and, in the same transaction as a
//! batch, skips the records below it and moves it past the batch. So writing a batch again
//! (after a timeout whose commit did land, or a crash between the insert and the removal of a
//! spool segment) stores nothing twice, whatever the boundaries of the batches that carry
//! the records the second time. The first statement of the transaction writes the writer's
//! row, which serialises concurrent batches of one writer on both backends.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;

use crate::metadata::get;
use crate::segment::{self, EncodedRecord, PredictionBatch};
use crate::{MetadataStore, StoreError, failpoint};

/// One prediction record, as readers get it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow {
    /// A UUIDv7 string, unique per prediction.
    pub id: String,
    /// When the prediction was made, in milliseconds since the Unix epoch (UTC).
    pub time_ms: i64,
    pub endpoint: String,
    pub model: String,
    pub version: i64,
    /// `primary`, `canary`, `shadow` or `fallback`.
    pub role: String,
    /// `v1`, `v2`, `mlflow`, `grpc`, ...
    pub protocol: String,
    /// Rows in the request.
    pub rows: i64,
    pub latency_us: i64,
    /// Inputs after redaction, as columns: `{field: [values...]}`.
    pub inputs: Value,
    /// Outputs as columns: `{name: [values...]}`.
    pub outputs: Value,
}

const SEGMENT_COLUMNS: &str =
    "writer, first_seq, endpoint, first_ms, last_ms, min_id, max_id, records, body, data";

/// The records of a segment row: from `data`, or from the JSON lines of `body` (segments
/// written before migration 8).
fn records_of(segment: &AnyRow) -> Result<Vec<PredictionRow>, StoreError> {
    let data: Option<Vec<u8>> = get(segment, "data")?;
    let Some(data) = data else {
        let body: String = get(segment, "body")?;
        return body
            .lines()
            .map(|line| {
                serde_json::from_str(line).map_err(|e| StoreError::Database {
                    doing: "reading a prediction segment".into(),
                    problem: format!("a record is not a prediction row: {e}"),
                })
            })
            .collect();
    };
    let endpoint: String = get(segment, "endpoint")?;
    let mut rows = segment::decode(&data)?;
    for row in &mut rows {
        row.endpoint.clone_from(&endpoint);
    }
    Ok(rows)
}

impl MetadataStore {
    /// Writes `batch` (records of `writer`, in increasing sequence order) in one transaction,
    /// one segment per endpoint; records below the writer's high-water mark are already stored
    /// and skipped. Returns how many records were new.
    pub async fn insert_predictions(
        &self,
        writer: &str,
        batch: &PredictionBatch,
    ) -> Result<u64, StoreError> {
        let records = &batch.records;
        if records.is_empty() {
            return Ok(0);
        }
        if let Some(w) = records.windows(2).find(|w| w[1].seq <= w[0].seq) {
            return Err(StoreError::Invalid {
                field: "prediction records".into(),
                expected: "increasing sequence numbers".into(),
                got: format!("{} after {}", w[1].seq, w[0].seq),
            });
        }
        let doing = "writing prediction records";
        let mut tx = self.begin(doing).await?;
        // A write first: it locks the writer's row (PostgreSQL) or the database (SQLite, which
        // `begin` opened IMMEDIATE) until the commit.
        let mark = sqlx::query(
            "INSERT INTO prediction_writers (writer, next_seq) VALUES ($1, 0) \
             ON CONFLICT (writer) DO UPDATE SET next_seq = prediction_writers.next_seq \
             RETURNING next_seq",
        )
        .bind(writer.to_string())
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(doing))?;
        let next_seq: i64 = get(&mark, "next_seq")?;
        let fresh = records
            .iter()
            .filter(|r| i64::try_from(r.seq).is_ok_and(|s| s >= next_seq));
        let mut segments: BTreeMap<&str, Vec<&EncodedRecord>> = BTreeMap::new();
        for r in fresh {
            segments.entry(batch.endpoint(r)).or_default().push(r);
        }
        let mut written = 0;
        for (endpoint, segment) in &segments {
            let (Some(first), Some(first_ms), Some(last_ms), Some(min_id), Some(max_id)) = (
                segment.first(),
                segment.iter().map(|r| r.time_ms).min(),
                segment.iter().map(|r| r.time_ms).max(),
                segment.iter().map(|r| r.id.as_str()).min(),
                segment.iter().map(|r| r.id.as_str()).max(),
            ) else {
                continue;
            };
            written += segment.len() as u64;
            sqlx::query(
                "INSERT INTO prediction_segments (writer, first_seq, endpoint, first_ms, last_ms, \
                 min_id, max_id, records, body, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', $9)",
            )
            .bind(writer.to_string())
            .bind(seq_value(first.seq)?)
            .bind(endpoint.to_string())
            .bind(first_ms)
            .bind(last_ms)
            .bind(min_id.to_string())
            .bind(max_id.to_string())
            .bind(segment.len() as i64)
            .bind(batch.segment(segment))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(doing))?;
        }
        if let Some(last) = records.last() {
            sqlx::query("UPDATE prediction_writers SET next_seq = $2 WHERE writer = $1")
                .bind(writer.to_string())
                .bind(seq_value(last.seq)?.max(next_seq - 1) + 1)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(doing))?;
        }
        let first = records.first().map_or("", |r| batch.endpoint(r));
        failpoint::check("predictions.before_commit", first)?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing prediction records"))?;
        Ok(written)
    }

    /// How many prediction records are stored.
    pub async fn count_predictions(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(records), 0) AS BIGINT) AS n FROM prediction_segments",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("counting prediction records"))?;
        get(&row, "n")
    }

    /// The prediction record with this id, if stored.
    pub async fn get_prediction(&self, id: &str) -> Result<Option<PredictionRow>, StoreError> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM prediction_segments WHERE min_id <= $1 AND max_id >= $1"
        );
        let mut segments = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch(&self.pool);
        while let Some(segment) = segments
            .try_next()
            .await
            .map_err(StoreError::db(format!("reading prediction {id}")))?
        {
            if let Some(row) = records_of(&segment)?.into_iter().find(|r| r.id == id) {
                return Ok(Some(row));
            }
        }
        Ok(None)
    }

    /// Ids of the predictions of `endpoint` with `from_ms <= time_ms < to_ms`, oldest first
    /// (ties by id, which for UUIDv7 is creation order).
    pub async fn list_prediction_ids(
        &self,
        endpoint: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .page_predictions(endpoint, from_ms, to_ms, None, i64::MAX)
            .await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// The predictions of `endpoint` with `from_ms <= time_ms < to_ms`, oldest first, at most
    /// `limit` of them.
    pub async fn list_predictions(
        &self,
        endpoint: &str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<PredictionRow>, StoreError> {
        self.page_predictions(endpoint, from_ms, to_ms, None, limit)
            .await
    }

    /// Like [`Self::list_predictions`], starting after `after` (the `time_ms` and `id` of the
    /// last row of the previous page), for reading a range in bounded pages.
    ///
    /// Segments are read in order of their first record's time; once `limit` records are in
    /// hand and the next segment starts after the last of them, no later segment can hold an
    /// earlier record, and reading stops.
    pub async fn page_predictions(
        &self,
        endpoint: &str,
        from_ms: i64,
        to_ms: i64,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<PredictionRow>, StoreError> {
        let limit = usize::try_from(limit).unwrap_or(0);
        if limit == 0 || from_ms >= to_ms {
            return Ok(Vec::new());
        }
        let (after_ms, after_id) = after.unwrap_or((i64::MIN, ""));
        let key_after = |r: &PredictionRow| (r.time_ms, r.id.as_str()) > (after_ms, after_id);
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM prediction_segments WHERE endpoint = $1 \
             AND first_ms < $2 AND last_ms >= $3 ORDER BY first_ms, writer, first_seq"
        );
        let doing = format!("listing predictions of {endpoint}");
        let mut segments = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(endpoint.to_string())
            .bind(to_ms)
            .bind(from_ms.max(after_ms))
            .fetch(&self.pool);
        let mut found: Vec<PredictionRow> = Vec::new();
        while let Some(segment) = segments
            .try_next()
            .await
            .map_err(StoreError::db(doing.as_str()))?
        {
            if found.len() >= limit {
                let first_ms: i64 = get(&segment, "first_ms")?;
                if found.last().is_some_and(|last| first_ms > last.time_ms) {
                    break;
                }
            }
            found.extend(
                records_of(&segment)?
                    .into_iter()
                    .filter(|r| r.time_ms >= from_ms && r.time_ms < to_ms && key_after(r)),
            );
            if found.len() >= limit {
                found.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
                found.truncate(limit);
            }
        }
        found.sort_by(|a, b| (a.time_ms, &a.id).cmp(&(b.time_ms, &b.id)));
        found.truncate(limit);
        Ok(found)
    }
}

/// See [`crate::testing::record_ids_in_insert_order`].
#[cfg(feature = "testing")]
pub(crate) async fn ids_in_insert_order(
    store: &MetadataStore,
    endpoint: &str,
) -> Result<Vec<String>, StoreError> {
    // SQLite's rowid numbers a table's rows in insert order; PostgreSQL has no such number.
    if store.backend() != crate::Backend::Sqlite {
        return Err(StoreError::Invalid {
            field: "store".into(),
            expected: "SQLite (rowid gives the insert order)".into(),
            got: "PostgreSQL".into(),
        });
    }
    let sql = format!(
        "SELECT {SEGMENT_COLUMNS} FROM prediction_segments WHERE endpoint = $1 ORDER BY rowid"
    );
    let segments = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(endpoint.to_string())
        .fetch_all(&store.pool)
        .await
        .map_err(StoreError::db("reading segments in insert order"))?;
    let mut ids = Vec::new();
    for segment in &segments {
        ids.extend(records_of(segment)?.into_iter().map(|r| r.id));
    }
    Ok(ids)
}

/// A sequence number as the database stores it.
fn seq_value(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid {
        field: "sequence number".into(),
        expected: format!("at most {}", i64::MAX),
        got: seq.to_string(),
    })
}
