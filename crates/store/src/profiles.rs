//! Live profile windows in the metadata store (migration 3): one row per endpoint, version,
//! window and replica, holding that replica's profile of the window as JSON (berth-monitor's
//! shape, which this crate does not read).
//!
//! Each serving process writes only its own rows (its `replica` id) and rewrites a window as it
//! fills (`ON CONFLICT ... DO UPDATE`), so a window written again after a timeout is not
//! counted twice. Readers merge the rows of every replica: profiles add, so the windows of many
//! replicas, and of processes that have since restarted, combine into one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;

use crate::metadata::get;
use crate::{MetadataStore, StoreError};

/// One replica's profile of one window of an endpoint's traffic to one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileWindowRow {
    pub endpoint: String,
    pub model: String,
    pub version: i64,
    /// Start of the window, in milliseconds since the Unix epoch (UTC).
    pub window_start_ms: i64,
    /// The serving process that profiled it.
    pub replica: String,
    /// Rows profiled.
    pub rows: i64,
    pub profile: Value,
}

fn row_from(row: &AnyRow) -> Result<ProfileWindowRow, StoreError> {
    let text: String = get(row, "profile")?;
    Ok(ProfileWindowRow {
        endpoint: get(row, "endpoint")?,
        model: get(row, "model")?,
        version: get(row, "version")?,
        window_start_ms: get(row, "window_start_ms")?,
        replica: get(row, "replica")?,
        rows: get(row, "rows")?,
        profile: serde_json::from_str(&text).map_err(|e| StoreError::Database {
            doing: "reading a profile window".into(),
            problem: format!("not JSON: {e}"),
        })?,
    })
}

impl MetadataStore {
    /// Writes `windows` in one transaction, replacing what the same replica wrote before for
    /// the same window.
    pub async fn upsert_profile_windows(
        &self,
        windows: &[ProfileWindowRow],
    ) -> Result<(), StoreError> {
        if windows.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp_micros();
        let mut tx = self.begin("writing profile windows").await?;
        for w in windows {
            sqlx::query(
                "INSERT INTO profile_windows \
                 (endpoint, model, version, window_start_ms, replica, rows, profile, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (endpoint, window_start_ms, model, version, replica) DO UPDATE \
                 SET rows = excluded.rows, profile = excluded.profile, updated_at = excluded.updated_at",
            )
            .bind(w.endpoint.clone())
            .bind(w.model.clone())
            .bind(w.version)
            .bind(w.window_start_ms)
            .bind(w.replica.clone())
            .bind(w.rows)
            .bind(w.profile.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("writing a profile window"))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("committing profile windows"))
    }

    /// Every replica's windows of `endpoint` starting in `from_ms..=to_ms`, oldest first.
    pub async fn list_profile_windows(
        &self,
        endpoint: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ProfileWindowRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT endpoint, model, version, window_start_ms, replica, rows, profile \
             FROM profile_windows WHERE endpoint = $1 AND window_start_ms >= $2 \
             AND window_start_ms <= $3 ORDER BY window_start_ms, model, version, replica",
        )
        .bind(endpoint)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(format!(
            "reading profile windows of {endpoint}"
        )))?;
        rows.iter().map(row_from).collect()
    }

    /// Deletes the windows that started before `before_ms`; returns how many.
    pub async fn delete_profile_windows_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM profile_windows WHERE window_start_ms < $1")
                .bind(before_ms)
                .execute(&self.pool)
                .await
                .map_err(StoreError::db("deleting old profile windows"))?
                .rows_affected(),
        )
    }
}
