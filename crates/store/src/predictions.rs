//! Prediction records in the metadata store: one row per prediction in the `predictions` table
//! (migration 2), written in batches by the durable writer of `berth-records` and read back by
//! monitoring and replay.
//!
//! A batch is inserted in one transaction with `ON CONFLICT (id) DO NOTHING`, on SQLite and
//! PostgreSQL alike, so writing the same batch again (after a timeout whose commit did land, or
//! a crash between the insert and the removal of a spool segment) leaves one row per id: the
//! write path is exactly-once on top of an at-least-once delivery.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use crate::metadata::get;
use crate::{Backend, MetadataStore, StoreError, failpoint};

/// One row of the `predictions` table.
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

const COLUMNS: &str =
    "id, time_ms, endpoint, model, version, role, protocol, rows, latency_us, inputs, outputs";
const COLUMN_COUNT: usize = 11;

/// Rows per `INSERT` statement on PostgreSQL: 11 parameters each stays far below its limit
/// (65535).
const ROWS_PER_STATEMENT: usize = 200;
/// Rows per `INSERT` statement on SQLite: binding a parameter there looks its name up among all
/// of the statement's, so the cost grows with the square of the parameters per statement; at
/// 200 rows that lookup took more CPU than serving the predictions (measured with perf in
/// bench/monitoring_overhead.sh).
const SQLITE_ROWS_PER_STATEMENT: usize = 16;

fn row_from(row: &AnyRow) -> Result<PredictionRow, StoreError> {
    let json = |column: &str| -> Result<Value, StoreError> {
        let text: String = get(row, column)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Database {
            doing: format!("reading column {column}"),
            problem: format!("not JSON: {e}"),
        })
    };
    Ok(PredictionRow {
        id: get(row, "id")?,
        time_ms: get(row, "time_ms")?,
        endpoint: get(row, "endpoint")?,
        model: get(row, "model")?,
        version: get(row, "version")?,
        role: get(row, "role")?,
        protocol: get(row, "protocol")?,
        rows: get(row, "rows")?,
        latency_us: get(row, "latency_us")?,
        inputs: json("inputs")?,
        outputs: json("outputs")?,
    })
}

/// `INSERT ... VALUES ($1, ..., $11), ($12, ...) ON CONFLICT (id) DO NOTHING` for `rows` rows.
fn insert_statement(rows: usize) -> String {
    let mut sql = format!("INSERT INTO predictions ({COLUMNS}) VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..COLUMN_COUNT {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * COLUMN_COUNT + c + 1));
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

impl MetadataStore {
    /// Inserts `batch` in one transaction; ids already stored are skipped, so the same batch
    /// written twice leaves one row per id. Returns how many rows were new.
    pub async fn insert_predictions(&self, batch: &[PredictionRow]) -> Result<u64, StoreError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin("writing prediction records").await?;
        let mut inserted = 0;
        let rows_per_statement = match self.backend() {
            Backend::Sqlite => SQLITE_ROWS_PER_STATEMENT,
            Backend::Postgres => ROWS_PER_STATEMENT,
        };
        for chunk in batch.chunks(rows_per_statement) {
            // Built from constant text and placeholders only; the values are bound.
            let mut query = sqlx::query(AssertSqlSafe(insert_statement(chunk.len())));
            for p in chunk {
                query = query
                    .bind(p.id.clone())
                    .bind(p.time_ms)
                    .bind(p.endpoint.clone())
                    .bind(p.model.clone())
                    .bind(p.version)
                    .bind(p.role.clone())
                    .bind(p.protocol.clone())
                    .bind(p.rows)
                    .bind(p.latency_us)
                    .bind(p.inputs.to_string())
                    .bind(p.outputs.to_string());
            }
            inserted += query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("writing prediction records"))?
                .rows_affected();
        }
        let first = batch.first().map_or("", |p| p.endpoint.as_str());
        failpoint::check("predictions.before_commit", first)?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing prediction records"))?;
        Ok(inserted)
    }

    /// How many prediction records are stored.
    pub async fn count_predictions(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM predictions")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting prediction records"))?;
        get(&row, "n")
    }

    /// The prediction record with this id, if stored.
    pub async fn get_prediction(&self, id: &str) -> Result<Option<PredictionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM predictions WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading prediction {id}")))?;
        row.as_ref().map(row_from).transpose()
    }

    /// Ids of the predictions of `endpoint` with `from_ms <= time_ms < to_ms`, oldest first
    /// (ties by id, which for UUIDv7 is creation order).
    pub async fn list_prediction_ids(
        &self,
        endpoint: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM predictions WHERE endpoint = $1 AND time_ms >= $2 AND time_ms < $3 \
             ORDER BY time_ms, id",
        )
        .bind(endpoint.to_string())
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(format!("listing predictions of {endpoint}")))?;
        rows.iter().map(|r| get(r, "id")).collect()
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
    pub async fn page_predictions(
        &self,
        endpoint: &str,
        from_ms: i64,
        to_ms: i64,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<PredictionRow>, StoreError> {
        let (after_ms, after_id) = after.unwrap_or((i64::MIN, ""));
        let sql = format!(
            "SELECT {COLUMNS} FROM predictions WHERE endpoint = $1 AND time_ms >= $2 AND time_ms < $3 \
             AND (time_ms > $4 OR (time_ms = $4 AND id > $5)) ORDER BY time_ms, id LIMIT $6"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(endpoint.to_string())
            .bind(from_ms)
            .bind(to_ms)
            .bind(after_ms)
            .bind(after_id.to_string())
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("listing predictions of {endpoint}")))?;
        rows.iter().map(row_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_insert_statement_numbers_every_placeholder() {
        let sql = insert_statement(2);
        assert!(sql.contains("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"));
        assert!(sql.contains("($12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"));
        assert!(sql.ends_with("ON CONFLICT (id) DO NOTHING"));
    }
}
