//! Options every registry command shares: where the store is, and who is acting.

use berth_registry::Registry;
use berth_store::StoreConfig;
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Metadata store: a folder (SQLite inside), sqlite://FILE or postgres://USER@HOST:PORT/DB.
    #[arg(long, global = true, env = "BERTH_STORE", default_value = berth_store::DEFAULT_DATA_DIR, help_heading = "Global Options")]
    pub store: String,
    /// Artifact store: a folder or s3://BUCKET/PREFIX [default: artifacts/ in the data folder].
    #[arg(
        long,
        global = true,
        env = "BERTH_ARTIFACTS",
        help_heading = "Global Options"
    )]
    pub artifacts: Option<String>,
    /// Who is making the change, for the audit log [default: $USER].
    #[arg(
        long,
        global = true,
        env = "BERTH_ACTOR",
        help_heading = "Global Options"
    )]
    pub actor: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true, help_heading = "Global Options")]
    pub json: bool,
}

impl StoreArgs {
    pub async fn open(&self) -> anyhow::Result<Registry> {
        let config = StoreConfig::parse(&self.store, self.artifacts.as_deref())?;
        Ok(Registry::open(&config).await?)
    }

    pub fn actor(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".into())
    }
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A time as the tables show it.
pub fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
