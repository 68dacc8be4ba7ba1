//! The metadata store: models, versions, aliases, endpoints and the audit log, in SQLite or
//! PostgreSQL through sqlx's `Any` driver, with one set of SQL for both.
//!
//! Every write is one transaction, and every change to what exists or is live writes its audit
//! row in that same transaction, so the audit log is the exact history ("what was live at T" is
//! a query over it). Writers take a lock on the row they change first (PostgreSQL `FOR UPDATE`;
//! SQLite serialises writers), so concurrent registrations get distinct, consecutive numbers.
//! Times are stored as microseconds since the Unix epoch (UTC); JSON as text.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, AssertSqlSafe, Row, Transaction};

use crate::StoreError;
use crate::failpoint;
use crate::records::{
    AliasRecord, AuditFilter, AuditRecord, Change, EndpointRecord, Lineage, ModelRecord,
    NewVersion, VersionRecord,
};

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Schema changes, applied in order; each runs once (recorded in `berth_migrations`).
/// `{id}` becomes an auto-increment primary key of the backend, `{blob}` its type for bytes.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE models (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        signature TEXT,
        tags TEXT NOT NULL DEFAULT '{}',
        next_version BIGINT NOT NULL DEFAULT 1,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE TABLE versions (
        model TEXT NOT NULL REFERENCES models(name),
        version BIGINT NOT NULL,
        artifact_uri TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        format TEXT NOT NULL,
        signature TEXT NOT NULL,
        feature_spec_sha256 TEXT,
        reference_uri TEXT,
        reference_sha256 TEXT,
        reference_profile TEXT,
        metrics TEXT NOT NULL DEFAULT '{}',
        parent_version BIGINT,
        training_data_uri TEXT,
        training_data_sha256 TEXT,
        triggered_by TEXT,
        code_ref TEXT,
        tags TEXT NOT NULL DEFAULT '{}',
        registered_by TEXT NOT NULL,
        registered_at BIGINT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (model, version),
        UNIQUE (model, sha256)
    );
    CREATE TABLE aliases (
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (model, alias),
        FOREIGN KEY (model, version) REFERENCES versions(model, version)
    );
    CREATE TABLE endpoints (
        name TEXT PRIMARY KEY,
        policy TEXT,
        updated_at BIGINT NOT NULL,
        updated_by TEXT NOT NULL
    );
    CREATE TABLE audit (
        id {id},
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        subject_kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        model TEXT,
        before_value TEXT,
        after_value TEXT,
        reason TEXT
    );
    CREATE INDEX audit_by_subject ON audit (subject_kind, subject, at);
    CREATE INDEX audit_by_model ON audit (model, at)",
    ),
    (
        2,
        // One row per prediction (see `predictions.rs`); `id` is a UUIDv7 string, so inserts
        // of the same record twice are harmless (`ON CONFLICT (id) DO NOTHING`).
        "CREATE TABLE predictions (
        id TEXT PRIMARY KEY,
        time_ms BIGINT NOT NULL,
        endpoint TEXT NOT NULL,
        model TEXT NOT NULL,
        version BIGINT NOT NULL,
        role TEXT NOT NULL,
        protocol TEXT NOT NULL,
        rows BIGINT NOT NULL,
        latency_us BIGINT NOT NULL,
        inputs TEXT NOT NULL,
        outputs TEXT NOT NULL
    );
    CREATE INDEX predictions_by_endpoint ON predictions (endpoint, time_ms)",
    ),
    (
        3,
        // Monitoring: the profile of a version's outputs on its reference data, its drift
        // settings, and the live profile windows of every replica (see `profiles.rs`).
        "ALTER TABLE versions ADD COLUMN output_profile TEXT;
    ALTER TABLE versions ADD COLUMN drift_config TEXT;
    CREATE TABLE profile_windows (
        endpoint TEXT NOT NULL,
        model TEXT NOT NULL,
        version BIGINT NOT NULL,
        window_start_ms BIGINT NOT NULL,
        replica TEXT NOT NULL,
        rows BIGINT NOT NULL,
        profile TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (endpoint, window_start_ms, model, version, replica)
    )",
    ),
    (
        4,
        // Rollouts (see `rollouts.rs`): the state machine as JSON, with the columns readers
        // filter on; `revision` makes concurrent writers (a server's controller, a CLI) safe.
        "CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        endpoint TEXT NOT NULL,
        state TEXT NOT NULL,
        finished BIGINT NOT NULL,
        revision BIGINT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX rollouts_by_endpoint ON rollouts (endpoint, created_at)",
    ),
    (
        5,
        // The fitted feature spec of a version (berth-features YAML), beside its hash.
        "ALTER TABLE versions ADD COLUMN feature_spec TEXT",
    ),
    (
        6,
        // Scheduled jobs and their runs (see `jobs.rs`). A run's (job, scheduled_for) is
        // unique, so of many servers sharing the store exactly one claims each tick.
        "CREATE TABLE jobs (
        name TEXT PRIMARY KEY,
        schedule TEXT NOT NULL,
        spec TEXT NOT NULL,
        enabled BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE job_runs (
        id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        scheduled_for BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        finished_at BIGINT,
        heartbeat_at BIGINT NOT NULL,
        status TEXT NOT NULL,
        runner TEXT NOT NULL,
        summary TEXT,
        log TEXT NOT NULL,
        UNIQUE (job, scheduled_for)
    )",
    ),
    (
        7,
        // Prediction records in segments (see `predictions.rs`): one row per writer batch and
        // endpoint, its records as JSON lines, and each writer's high-water mark, which makes a
        // batch written twice land once. The rows of migration 2 become one-record segments.
        "CREATE TABLE prediction_segments (
        writer TEXT NOT NULL,
        first_seq BIGINT NOT NULL,
        endpoint TEXT NOT NULL,
        first_ms BIGINT NOT NULL,
        last_ms BIGINT NOT NULL,
        min_id TEXT NOT NULL,
        max_id TEXT NOT NULL,
        records BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (writer, first_seq)
    );
    CREATE INDEX prediction_segments_by_endpoint ON prediction_segments (endpoint, first_ms);
    CREATE INDEX prediction_segments_by_id ON prediction_segments (min_id);
    CREATE TABLE prediction_writers (
        writer TEXT PRIMARY KEY,
        next_seq BIGINT NOT NULL
    );
    INSERT INTO prediction_segments
        (writer, first_seq, endpoint, first_ms, last_ms, min_id, max_id, records, body)
    SELECT 'migrated:' || id, 0, endpoint, time_ms, time_ms, id, id, 1,
        '{\"id\":\"' || id || '\",\"time_ms\":' || time_ms || ',\"endpoint\":\"' || endpoint
        || '\",\"model\":\"' || model || '\",\"version\":' || version || ',\"role\":\"' || role
        || '\",\"protocol\":\"' || protocol || '\",\"rows\":' || rows || ',\"latency_us\":'
        || latency_us || ',\"inputs\":' || inputs || ',\"outputs\":' || outputs || '}'
    FROM predictions;
    DROP TABLE predictions",
    ),
    (
        8,
        // Segments in binary form (see `segment.rs`): the column names once per segment, the
        // values raw. Segments written before keep their JSON lines in `body`.
        "ALTER TABLE prediction_segments ADD COLUMN data {blob}",
    ),
];

/// The metadata store.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    pub(crate) pool: AnyPool,
    backend: Backend,
    location: String,
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

pub(crate) fn json_text(v: &Value) -> String {
    v.to_string()
}

pub(crate) fn parse_json(text: Option<String>) -> Option<Value> {
    text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(|e| StoreError::Database {
        doing: format!("reading column {column}"),
        problem: e.to_string(),
    })
}

/// Hides the password of a database URL for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl MetadataStore {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://...`) and brings the schema
    /// up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_migrated_to(url, i64::MAX).await
    }

    /// [`Self::connect`], applying the migrations up to `version` only (tests of upgrades).
    pub(crate) async fn connect_migrated_to(url: &str, version: i64) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let location = redact(url);
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Location {
                location,
                problem: "expected a folder, sqlite://PATH or postgres://USER@HOST:PORT/DB".into(),
            });
        };
        let options = match backend {
            // One connection: SQLite has one writer anyway, and this keeps writes from ever
            // meeting a busy database. In WAL mode (set below), `synchronous = NORMAL` syncs
            // the log at checkpoints rather than at every commit: a commit survives the process
            // being killed, and a power cut can take back only the last commits, never leave
            // the database inconsistent (SQLite's recommended setting for WAL).
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            connection.execute("PRAGMA synchronous = NORMAL").await?;
                            Ok(())
                        })
                    })
            }
            Backend::Postgres => AnyPoolOptions::new().max_connections(8),
        };
        // One plain connection first: its error says what is wrong (refused, no such
        // database, bad password), where the pool would only say it timed out.
        {
            use sqlx::Connection;
            let connection =
                sqlx::AnyConnection::connect(url)
                    .await
                    .map_err(|e| StoreError::Unreachable {
                        location: location.clone(),
                        problem: match backend {
                            Backend::Postgres => {
                                format!("{e}; is PostgreSQL running and the URL right?")
                            }
                            Backend::Sqlite => e.to_string(),
                        },
                    })?;
            let _ = connection.close().await;
        }
        let pool = options
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|e| StoreError::Unreachable {
                location: location.clone(),
                problem: match backend {
                    Backend::Postgres => format!("{e}; is PostgreSQL running and the URL right?"),
                    Backend::Sqlite => e.to_string(),
                },
            })?;
        let store = Self {
            pool,
            backend,
            location,
        };
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&store.pool)
                .await
                .map_err(StoreError::db("enabling WAL"))?;
        }
        store.migrate(version).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the store is, with any password hidden.
    pub fn location(&self) -> &str {
        &self.location
    }

    async fn migrate(&self, upto: i64) -> Result<(), StoreError> {
        let mut tx = self.begin("migrating").await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS berth_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("creating berth_migrations"))?;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM berth_migrations")
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db("reading berth_migrations"))?
            .iter()
            .map(|r| get::<i64>(r, "version"))
            .collect::<Result<_, _>>()?;
        let id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        };
        let blob = match self.backend {
            Backend::Sqlite => "BLOB",
            Backend::Postgres => "BYTEA",
        };
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) || *version > upto {
                continue;
            }
            let sql = sql.replace("{id}", id).replace("{blob}", blob);
            for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                // Constant text from MIGRATIONS: nothing a user typed.
                sqlx::query(AssertSqlSafe(statement.to_string()))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(format!("applying migration {version}")))?;
            }
            sqlx::query("INSERT INTO berth_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(micros(Utc::now()))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("recording a migration"))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("committing migrations"))
    }

    /// Starts a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first and writes later cannot wait for another
    /// process's writer (the server's record writer, say) and fails as busy at once, where an
    /// immediate one waits for the lock.
    pub(crate) async fn begin(&self, doing: &str) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
        .map_err(StoreError::db(doing))
    }

    /// `FOR UPDATE` where the backend has it (SQLite writers are serialised already).
    fn for_update(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    // ----- reads -------------------------------------------------------------------------

    fn model_from_row(row: &AnyRow) -> Result<ModelRecord, StoreError> {
        let next: i64 = get(row, "next_version")?;
        Ok(ModelRecord {
            name: get(row, "name")?,
            description: get(row, "description")?,
            signature: parse_json(get(row, "signature")?),
            tags: parse_json(get(row, "tags")?).unwrap_or(Value::Null),
            created_at: from_micros(get(row, "created_at")?),
            created_by: get(row, "created_by")?,
            latest_version: get::<Option<i64>>(row, "latest")?.or((next > 1).then_some(next - 1)),
        })
    }

    const MODEL_COLUMNS: &'static str = "name, description, signature, tags, next_version, created_at, created_by, \
        (SELECT MAX(version) FROM versions v WHERE v.model = models.name) AS latest";

    pub async fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let sql = format!("SELECT {} FROM models ORDER BY name", Self::MODEL_COLUMNS);
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing models"))?;
        rows.iter().map(Self::model_from_row).collect()
    }

    pub async fn get_model(&self, name: &str) -> Result<Option<ModelRecord>, StoreError> {
        let sql = format!("SELECT {} FROM models WHERE name = $1", Self::MODEL_COLUMNS);
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading model {name}")))?;
        row.as_ref().map(Self::model_from_row).transpose()
    }

    const VERSION_COLUMNS: &'static str = "model, version, artifact_uri, sha256, size_bytes, format, signature, \
        feature_spec_sha256, reference_uri, reference_sha256, reference_profile, metrics, parent_version, \
        training_data_uri, training_data_sha256, triggered_by, code_ref, tags, registered_by, registered_at, \
        output_profile, drift_config, feature_spec, status";

    fn version_from_row(row: &AnyRow) -> Result<VersionRecord, StoreError> {
        Ok(VersionRecord {
            model: get(row, "model")?,
            version: get(row, "version")?,
            artifact_uri: get(row, "artifact_uri")?,
            sha256: get(row, "sha256")?,
            size_bytes: get(row, "size_bytes")?,
            format: get(row, "format")?,
            signature: parse_json(get(row, "signature")?).unwrap_or(Value::Null),
            feature_spec_sha256: get(row, "feature_spec_sha256")?,
            reference_uri: get(row, "reference_uri")?,
            reference_sha256: get(row, "reference_sha256")?,
            reference_profile: parse_json(get(row, "reference_profile")?),
            output_profile: parse_json(get(row, "output_profile")?),
            drift_config: parse_json(get(row, "drift_config")?),
            feature_spec: get(row, "feature_spec")?,
            metrics: parse_json(get(row, "metrics")?).unwrap_or(Value::Null),
            lineage: Lineage {
                parent_version: get(row, "parent_version")?,
                training_data_uri: get(row, "training_data_uri")?,
                training_data_sha256: get(row, "training_data_sha256")?,
                triggered_by: get(row, "triggered_by")?,
                code_ref: get(row, "code_ref")?,
            },
            tags: parse_json(get(row, "tags")?).unwrap_or(Value::Null),
            registered_by: get(row, "registered_by")?,
            registered_at: from_micros(get(row, "registered_at")?),
            status: get(row, "status")?,
        })
    }

    pub async fn list_versions(&self, model: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM versions WHERE model = $1 ORDER BY version",
            Self::VERSION_COLUMNS
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(model)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("listing versions of {model}")))?;
        rows.iter().map(Self::version_from_row).collect()
    }

    pub async fn get_version(
        &self,
        model: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let sql = format!(
            "SELECT {} FROM versions WHERE model = $1 AND version = $2",
            Self::VERSION_COLUMNS
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(model)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading {model}/{version}")))?;
        row.as_ref().map(Self::version_from_row).transpose()
    }

    fn alias_from_row(row: &AnyRow) -> Result<AliasRecord, StoreError> {
        Ok(AliasRecord {
            model: get(row, "model")?,
            alias: get(row, "alias")?,
            version: get(row, "version")?,
            updated_at: from_micros(get(row, "updated_at")?),
            updated_by: get(row, "updated_by")?,
        })
    }

    pub async fn list_aliases(&self, model: &str) -> Result<Vec<AliasRecord>, StoreError> {
        let rows = sqlx::query("SELECT model, alias, version, updated_at, updated_by FROM aliases WHERE model = $1 ORDER BY alias")
            .bind(model)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("listing aliases of {model}")))?;
        rows.iter().map(Self::alias_from_row).collect()
    }

    pub async fn get_alias(
        &self,
        model: &str,
        alias: &str,
    ) -> Result<Option<AliasRecord>, StoreError> {
        let row = sqlx::query("SELECT model, alias, version, updated_at, updated_by FROM aliases WHERE model = $1 AND alias = $2")
            .bind(model)
            .bind(alias)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading alias {model}@{alias}")))?;
        row.as_ref().map(Self::alias_from_row).transpose()
    }

    fn endpoint_from_row(row: &AnyRow) -> Result<Option<EndpointRecord>, StoreError> {
        let Some(policy) = parse_json(get(row, "policy")?) else {
            return Ok(None);
        };
        Ok(Some(EndpointRecord {
            name: get(row, "name")?,
            policy,
            updated_at: from_micros(get(row, "updated_at")?),
            updated_by: get(row, "updated_by")?,
        }))
    }

    pub async fn list_endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT name, policy, updated_at, updated_by FROM endpoints ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("listing endpoints"))?;
        Ok(rows
            .iter()
            .map(Self::endpoint_from_row)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    pub async fn get_endpoint(&self, name: &str) -> Result<Option<EndpointRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT name, policy, updated_at, updated_by FROM endpoints WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db(format!("reading endpoint {name}")))?;
        Ok(match row {
            Some(row) => Self::endpoint_from_row(&row)?,
            None => None,
        })
    }

    /// Audit events matching `filter`, oldest first (newest `limit` when a limit is given).
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, actor, action, subject_kind, subject, model, before_value, after_value, reason \
             FROM audit WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if filter.model.is_some() {
            sql += &format!(" AND model = {}", next());
        }
        if filter.subject_kind.is_some() {
            sql += &format!(" AND subject_kind = {}", next());
        }
        if filter.subject.is_some() {
            sql += &format!(" AND subject = {}", next());
        }
        if filter.since.is_some() {
            sql += &format!(" AND at >= {}", next());
        }
        if filter.until.is_some() {
            sql += &format!(" AND at <= {}", next());
        }
        sql += " ORDER BY at DESC, id DESC";
        if filter.limit.is_some() {
            sql += &format!(" LIMIT {}", next());
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for text in [&filter.model, &filter.subject_kind, &filter.subject]
            .into_iter()
            .flatten()
        {
            query = query.bind(text.clone());
        }
        for t in [filter.since, filter.until].into_iter().flatten() {
            query = query.bind(micros(t));
        }
        if let Some(limit) = filter.limit {
            query = query.bind(limit);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading the audit log"))?;
        let mut events = rows
            .iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: get(row, "id")?,
                    at: from_micros(get(row, "at")?),
                    actor: get(row, "actor")?,
                    action: get(row, "action")?,
                    subject_kind: get(row, "subject_kind")?,
                    subject: get(row, "subject")?,
                    model: get(row, "model")?,
                    before: parse_json(get(row, "before_value")?),
                    after: parse_json(get(row, "after_value")?),
                    reason: get(row, "reason")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        events.reverse();
        Ok(events)
    }

    // ----- writes ------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record(
        tx: &mut Transaction<'static, Any>,
        change: &Change,
        action: &str,
        subject_kind: &str,
        subject: &str,
        model: Option<&str>,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, subject_kind, subject, model, before_value, after_value, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(micros(change.at))
        .bind(change.actor.clone())
        .bind(action.to_string())
        .bind(subject_kind.to_string())
        .bind(subject.to_string())
        .bind(model.map(str::to_string))
        .bind(before.map(json_text))
        .bind(after.map(json_text))
        .bind(change.reason.clone())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("writing the audit log"))?;
        Ok(())
    }

    /// Registers a version: creates the model if new, assigns the next number, stores the row
    /// and its audit events, all in one transaction. The same bytes registered twice under one
    /// model are a [`StoreError::Conflict`] naming the existing version.
    pub async fn insert_version(
        &self,
        new: &NewVersion,
        change: &Change,
    ) -> Result<VersionRecord, StoreError> {
        let mut tx = self.begin("registering a version").await?;
        let created = sqlx::query(
            "INSERT INTO models (name, description, tags, next_version, created_at, created_by) \
             VALUES ($1, $2, '{}', 1, $3, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(new.model.clone())
        .bind(new.description.clone().unwrap_or_default())
        .bind(micros(change.at))
        .bind(change.actor.clone())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(format!("creating model {}", new.model)))?
        .rows_affected()
            == 1;
        if created {
            let after = serde_json::json!({"name": new.model});
            Self::record(
                &mut tx,
                change,
                "model.create",
                "model",
                &new.model,
                Some(&new.model),
                None,
                Some(&after),
            )
            .await?;
        }
        // Taking the next number locks the model row until commit: concurrent registrations
        // queue here and get consecutive numbers.
        let row = sqlx::query("UPDATE models SET next_version = next_version + 1 WHERE name = $1 RETURNING next_version")
            .bind(new.model.clone())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(format!("numbering a version of {}", new.model)))?;
        let version = get::<i64>(&row, "next_version")? - 1;

        let existing = sqlx::query("SELECT version FROM versions WHERE model = $1 AND sha256 = $2")
            .bind(new.model.clone())
            .bind(new.sha256.clone())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("looking for the same artifact"))?;
        if let Some(row) = existing {
            let same: i64 = get(&row, "version")?;
            return Err(StoreError::Conflict(format!(
                "{}/{same} already has these exact bytes (sha256 {}); not registered again",
                new.model, new.sha256
            )));
        }
        if let Some(parent) = new.lineage.parent_version {
            let found =
                sqlx::query("SELECT version FROM versions WHERE model = $1 AND version = $2")
                    .bind(new.model.clone())
                    .bind(parent)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::db("checking the parent version"))?;
            if found.is_none() {
                return Err(StoreError::Conflict(format!(
                    "parent version {}/{parent} does not exist",
                    new.model
                )));
            }
        }
        let sql = format!(
            "INSERT INTO versions ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, 'ready')",
            Self::VERSION_COLUMNS
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(new.model.clone())
            .bind(version)
            .bind(new.artifact_uri.clone())
            .bind(new.sha256.clone())
            .bind(new.size_bytes)
            .bind(new.format.clone())
            .bind(json_text(&new.signature))
            .bind(new.feature_spec_sha256.clone())
            .bind(new.reference_uri.clone())
            .bind(new.reference_sha256.clone())
            .bind(new.reference_profile.as_ref().map(json_text))
            .bind(json_text(&new.metrics))
            .bind(new.lineage.parent_version)
            .bind(new.lineage.training_data_uri.clone())
            .bind(new.lineage.training_data_sha256.clone())
            .bind(new.lineage.triggered_by.clone())
            .bind(new.lineage.code_ref.clone())
            .bind(json_text(&new.tags))
            .bind(change.actor.clone())
            .bind(micros(change.at))
            .bind(new.output_profile.as_ref().map(json_text))
            .bind(new.drift_config.as_ref().map(json_text))
            .bind(new.feature_spec.clone())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(format!("storing {}/{version}", new.model)))?;
        failpoint::check("version.after_insert", &new.model)?;
        let mut model_update = String::from("UPDATE models SET signature = $1");
        if new.description.is_some() {
            model_update += ", description = $3";
        }
        model_update += " WHERE name = $2";
        let mut q = sqlx::query(AssertSqlSafe(model_update))
            .bind(json_text(&new.signature))
            .bind(new.model.clone());
        if let Some(d) = &new.description {
            q = q.bind(d.clone());
        }
        q.execute(&mut *tx)
            .await
            .map_err(StoreError::db("updating the model"))?;
        let subject = format!("{}/{version}", new.model);
        let after =
            serde_json::json!({"version": version, "sha256": new.sha256, "format": new.format});
        Self::record(
            &mut tx,
            change,
            "version.register",
            "version",
            &subject,
            Some(&new.model),
            None,
            Some(&after),
        )
        .await?;
        failpoint::check("version.before_commit", &new.model)?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing the version"))?;
        self.get_version(&new.model, version)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("{subject} vanished after commit")))
    }

    /// Points `model@alias` at `version` (which must exist); returns the version it pointed to.
    pub async fn set_alias(
        &self,
        model: &str,
        alias: &str,
        version: i64,
        change: &Change,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin("moving an alias").await?;
        let before = self
            .set_alias_in(&mut tx, model, alias, version, change)
            .await?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing the alias"))?;
        Ok(before)
    }

    /// [`Self::set_alias`] inside a transaction the caller commits.
    pub(crate) async fn set_alias_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        model: &str,
        alias: &str,
        version: i64,
        change: &Change,
    ) -> Result<Option<i64>, StoreError> {
        let lock = format!(
            "SELECT name FROM models WHERE name = $1{}",
            self.for_update()
        );
        sqlx::query(AssertSqlSafe(lock))
            .bind(model.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::db(format!("locking model {model}")))?;
        let exists = sqlx::query("SELECT version FROM versions WHERE model = $1 AND version = $2")
            .bind(model.to_string())
            .bind(version)
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::db("checking the version"))?;
        if exists.is_none() {
            return Err(StoreError::Conflict(format!(
                "version {model}/{version} does not exist"
            )));
        }
        let before: Option<i64> =
            sqlx::query("SELECT version FROM aliases WHERE model = $1 AND alias = $2")
                .bind(model.to_string())
                .bind(alias.to_string())
                .fetch_optional(&mut **tx)
                .await
                .map_err(StoreError::db("reading the alias"))?
                .map(|r| get(&r, "version"))
                .transpose()?;
        sqlx::query(
            "INSERT INTO aliases (model, alias, version, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(model.to_string())
        .bind(alias.to_string())
        .bind(version)
        .bind(micros(change.at))
        .bind(change.actor.clone())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("moving the alias"))?;
        failpoint::check("alias.before_audit", model)?;
        let subject = format!("{model}@{alias}");
        let before_json = before.map(|v| serde_json::json!({"version": v}));
        let after_json = serde_json::json!({"version": version});
        Self::record(
            tx,
            change,
            "alias.set",
            "alias",
            &subject,
            Some(model),
            before_json.as_ref(),
            Some(&after_json),
        )
        .await?;
        Ok(before)
    }

    /// Removes `model@alias`; returns the version it pointed to, or `None` if there was none.
    pub async fn delete_alias(
        &self,
        model: &str,
        alias: &str,
        change: &Change,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.begin("removing an alias").await?;
        let before: Option<i64> =
            sqlx::query("DELETE FROM aliases WHERE model = $1 AND alias = $2 RETURNING version")
                .bind(model.to_string())
                .bind(alias.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db("removing the alias"))?
                .map(|r| get(&r, "version"))
                .transpose()?;
        if let Some(v) = before {
            let subject = format!("{model}@{alias}");
            let before_json = serde_json::json!({"version": v});
            Self::record(
                &mut tx,
                change,
                "alias.delete",
                "alias",
                &subject,
                Some(model),
                Some(&before_json),
                None,
            )
            .await?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("committing the alias removal"))?;
        Ok(before)
    }

    /// Sets an endpoint's policy (creating the endpoint); `model` names the model it serves,
    /// for the audit log. Returns the policy it had before.
    pub async fn set_endpoint(
        &self,
        name: &str,
        policy: &Value,
        model: Option<&str>,
        change: &Change,
    ) -> Result<Option<Value>, StoreError> {
        let mut tx = self.begin("changing an endpoint").await?;
        let before = self
            .set_endpoint_in(&mut tx, name, policy, model, change)
            .await?;
        tx.commit()
            .await
            .map_err(StoreError::db("committing the endpoint"))?;
        Ok(before)
    }

    /// [`Self::set_endpoint`] inside a transaction the caller commits.
    pub(crate) async fn set_endpoint_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        name: &str,
        policy: &Value,
        model: Option<&str>,
        change: &Change,
    ) -> Result<Option<Value>, StoreError> {
        sqlx::query(
            "INSERT INTO endpoints (name, policy, updated_at, updated_by) VALUES ($1, NULL, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.to_string())
        .bind(micros(change.at))
        .bind(change.actor.clone())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("creating the endpoint"))?;
        let lock = format!(
            "SELECT policy FROM endpoints WHERE name = $1{}",
            self.for_update()
        );
        let before = sqlx::query(AssertSqlSafe(lock))
            .bind(name.to_string())
            .fetch_one(&mut **tx)
            .await
            .map_err(StoreError::db("reading the endpoint"))?;
        let before = parse_json(get(&before, "policy")?);
        sqlx::query(
            "UPDATE endpoints SET policy = $1, updated_at = $2, updated_by = $3 WHERE name = $4",
        )
        .bind(json_text(policy))
        .bind(micros(change.at))
        .bind(change.actor.clone())
        .bind(name.to_string())
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("changing the endpoint"))?;
        Self::record(
            tx,
            change,
            "endpoint.set",
            "endpoint",
            name,
            model,
            before.as_ref(),
            Some(policy),
        )
        .await?;
        Ok(before)
    }
}
