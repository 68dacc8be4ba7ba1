//! Rollouts in the metadata store (migration 4): one row per rollout, its state machine as JSON
//! (berth-rollout's shape, which this crate does not read) next to the columns readers filter
//! on.
//!
//! A rollout step changes several things that must move together: the rollout's row, the
//! endpoint's traffic policy, on promotion an alias, and the audit log. [`RolloutSave`] carries
//! them all and [`MetadataStore::save_rollout`] writes them in one transaction. Writers are
//! optimistic: each save names the revision it read, and a save over a newer revision (a CLI
//! paused the rollout while the server's controller decided a step) is a
//! [`StoreError::Conflict`], so the loser re-reads and decides again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;

use crate::metadata::{from_micros, get, json_text, micros};
use crate::{Change, MetadataStore, StoreError};

/// A stored rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRow {
    pub id: String,
    pub endpoint: String,
    /// The state's name (`canary`, `promoted`, ...), for filtering.
    pub state: String,
    pub finished: bool,
    /// Moves by one at every save.
    pub revision: i64,
    /// The rollout itself.
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One rollout change and everything that moves with it.
#[derive(Debug, Clone)]
pub struct RolloutSave<'a> {
    pub id: &'a str,
    pub endpoint: &'a str,
    /// The model the rollout is about, for the audit log.
    pub model: &'a str,
    pub state: &'a str,
    pub finished: bool,
    pub body: &'a Value,
    /// The revision this change was decided on; `None` creates the rollout, which fails while
    /// the endpoint has another unfinished one.
    pub read_revision: Option<i64>,
    /// The audit event: its action (`rollout.canary`, ...) and what it records.
    pub action: &'a str,
    pub event: &'a Value,
    /// The endpoint's new traffic policy, if it changes.
    pub policy: Option<&'a Value>,
    /// An alias to move (`model`, alias, version), on promotion.
    pub alias: Option<(&'a str, i64)>,
}

fn row_from(row: &AnyRow) -> Result<RolloutRow, StoreError> {
    let body: String = get(row, "body")?;
    Ok(RolloutRow {
        id: get(row, "id")?,
        endpoint: get(row, "endpoint")?,
        state: get(row, "state")?,
        finished: get::<i64>(row, "finished")? != 0,
        revision: get(row, "revision")?,
        body: serde_json::from_str(&body).map_err(|e| StoreError::Database {
            doing: "reading a rollout".into(),
            problem: format!("stored body is not JSON: {e}"),
        })?,
        created_at: from_micros(get(row, "created_at")?),
        updated_at: from_micros(get(row, "updated_at")?),
    })
}

const COLUMNS: &str = "id, endpoint, state, finished, revision, body, created_at, updated_at";

impl MetadataStore {
    /// Writes a rollout change, its policy and alias moves and its audit event in one
    /// transaction; returns the new revision.
    pub async fn save_rollout(
        &self,
        save: &RolloutSave<'_>,
        change: &Change,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin("saving a rollout").await?;
        let revision = match save.read_revision {
            None => {
                let running: Option<String> = sqlx::query(
                    "SELECT id FROM rollouts WHERE endpoint = $1 AND finished = 0 LIMIT 1",
                )
                .bind(save.endpoint.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db("reading the endpoint's rollouts"))?
                .map(|r| get(&r, "id"))
                .transpose()?;
                if let Some(running) = running {
                    return Err(StoreError::Conflict(format!(
                        "endpoint '{}' already has an unfinished rollout ({running}): abort it first",
                        save.endpoint
                    )));
                }
                sqlx::query(
                    "INSERT INTO rollouts (id, endpoint, state, finished, revision, body, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 1, $5, $6, $6)",
                )
                .bind(save.id.to_string())
                .bind(save.endpoint.to_string())
                .bind(save.state.to_string())
                .bind(i64::from(save.finished))
                .bind(json_text(save.body))
                .bind(micros(change.at))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("creating the rollout"))?;
                1
            }
            Some(read) => {
                let done = sqlx::query(
                    "UPDATE rollouts SET state = $1, finished = $2, body = $3, revision = revision + 1, \
                     updated_at = $4 WHERE id = $5 AND revision = $6",
                )
                .bind(save.state.to_string())
                .bind(i64::from(save.finished))
                .bind(json_text(save.body))
                .bind(micros(change.at))
                .bind(save.id.to_string())
                .bind(read)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("saving the rollout"))?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!(
                        "rollout {} changed since it was read (revision {read}); read it again",
                        save.id
                    )));
                }
                read + 1
            }
        };
        if let Some((alias, version)) = save.alias {
            self.set_alias_in(&mut tx, save.model, alias, version, change)
                .await?;
        }
        if let Some(policy) = save.policy {
            self.set_endpoint_in(&mut tx, save.endpoint, policy, Some(save.model), change)
                .await?;
        }
        Self::record(
            &mut tx,
            change,
            save.action,
            "rollout",
            save.endpoint,
            Some(save.model),
            None,
            Some(save.event),
        )
        .await?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing the rollout"))?;
        Ok(revision)
    }

    /// One rollout by id.
    pub async fn get_rollout(&self, id: &str) -> Result<Option<RolloutRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM rollouts WHERE id = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a rollout"))?
            .as_ref()
            .map(row_from)
            .transpose()
    }

    /// Rollouts, newest first: of one endpoint or all, only unfinished ones or all, at most
    /// `limit`.
    pub async fn list_rollouts(
        &self,
        endpoint: Option<&str>,
        unfinished_only: bool,
        limit: i64,
    ) -> Result<Vec<RolloutRow>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM rollouts WHERE 1 = 1");
        if unfinished_only {
            sql += " AND finished = 0";
        }
        let limit_at = if endpoint.is_some() {
            sql += " AND endpoint = $1";
            "$2"
        } else {
            "$1"
        };
        sql += &format!(" ORDER BY created_at DESC, id DESC LIMIT {limit_at}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(endpoint) = endpoint {
            query = query.bind(endpoint.to_string());
        }
        query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing rollouts"))?
            .iter()
            .map(row_from)
            .collect()
    }
}
