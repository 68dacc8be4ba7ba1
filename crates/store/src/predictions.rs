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

/// Rows per `INSERT` statement: the whole chunk travels as one JSON parameter, so this bounds
/// the size of that parameter, not a count of placeholders.
const ROWS_PER_STATEMENT: usize = 500;

/// A row as the batch parameter carries it: inputs and outputs as their JSON text, so the
/// database stores exactly that text.
#[derive(Serialize)]
struct WireRow<'a> {
    id: &'a str,
    time_ms: i64,
    endpoint: &'a str,
    model: &'a str,
    version: i64,
    role: &'a str,
    protocol: &'a str,
    rows: i64,
    latency_us: i64,
    inputs: String,
    outputs: String,
}

impl<'a> From<&'a PredictionRow> for WireRow<'a> {
    fn from(p: &'a PredictionRow) -> Self {
        Self {
            id: &p.id,
            time_ms: p.time_ms,
            endpoint: &p.endpoint,
            model: &p.model,
            version: p.version,
            role: &p.role,
            protocol: &p.protocol,
            rows: p.rows,
            latency_us: p.latency_us,
            inputs: p.inputs.to_string(),
            outputs: p.outputs.to_string(),
        }
    }
}

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

/// `INSERT ... SELECT ... FROM <the rows of the JSON array $1> ON CONFLICT (id) DO NOTHING`:
/// one parameter per statement. Binding is what costs on the client (sqlx's SQLite binding
/// looks each parameter's name up among all of a statement's, so 11 per row grew with the
/// square of the rows); the database expands the array in C.
fn insert_statement(backend: Backend) -> &'static str {
    match backend {
        // `WHERE true` tells SQLite's parser that ON CONFLICT is the upsert clause.
        Backend::Sqlite => {
            "INSERT INTO predictions (id, time_ms, endpoint, model, version, role, protocol, rows, latency_us, inputs, outputs) \
             SELECT value ->> 'id', value ->> 'time_ms', value ->> 'endpoint', value ->> 'model', \
             value ->> 'version', value ->> 'role', value ->> 'protocol', value ->> 'rows', \
             value ->> 'latency_us', value ->> 'inputs', value ->> 'outputs' \
             FROM json_each($1) WHERE true ON CONFLICT (id) DO NOTHING"
        }
        Backend::Postgres => {
            "INSERT INTO predictions (id, time_ms, endpoint, model, version, role, protocol, rows, latency_us, inputs, outputs) \
             SELECT id, time_ms, endpoint, model, version, role, protocol, rows, latency_us, inputs, outputs \
             FROM json_to_recordset($1::json) AS x(id TEXT, time_ms BIGINT, endpoint TEXT, model TEXT, \
             version BIGINT, role TEXT, protocol TEXT, rows BIGINT, latency_us BIGINT, inputs TEXT, outputs TEXT) \
             ON CONFLICT (id) DO NOTHING"
        }
    }
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
        for chunk in batch.chunks(ROWS_PER_STATEMENT) {
            let rows: Vec<WireRow<'_>> = chunk.iter().map(WireRow::from).collect();
            let json = serde_json::to_string(&rows).map_err(|e| StoreError::Database {
                doing: "encoding prediction records".into(),
                problem: e.to_string(),
            })?;
            inserted += sqlx::query(insert_statement(self.backend()))
                .bind(json)
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
        let sql = format!(
            "SELECT {COLUMNS} FROM predictions WHERE endpoint = $1 AND time_ms >= $2 AND time_ms < $3 \
             ORDER BY time_ms, id LIMIT $4"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(endpoint.to_string())
            .bind(from_ms)
            .bind(to_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("listing predictions of {endpoint}")))?;
        rows.iter().map(row_from).collect()
    }
}
