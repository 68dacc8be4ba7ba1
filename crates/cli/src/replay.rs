//! `berth replay ENDPOINT --from T1 --to T2 --version V`: rescore the inputs an endpoint logged
//! with any version, and compare with what was served.
//!
//! Records are read from the store in pages (memory stays bounded by a page), oldest first.
//! Each record's inputs (as the signature named them) are validated against the replayed
//! version's signature and scored; the version that served the record is rescored too, so the
//! comparison is between two sets of model outputs ([`ShadowComparison`]: class agreement, mean
//! and p99 of |Δ score|, the worst rows), and its rescored outputs are checked against the ones
//! on record (`reproduced`). Shadow records are left out: they were never served. A record
//! whose inputs cannot be scored (a field dropped by the redaction policy, a signature that
//! changed) is skipped and counted with the reason.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use berth_core::{FeatureMatrix, NamedTensor};
use berth_registry::{ModelRef, Registry, RegistryError, Selector};
use berth_rollout::ShadowComparison;
use berth_runtime::LoadOptions;
use berth_serve::deployment::{model_matrix, output_columns};
use berth_serve::live::{LoadedVersion, load_version};
use berth_serve::validate::Columns;
use berth_store::PredictionRow;
use chrono::{DateTime, Utc};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::registry_args::{StoreArgs, print_json};
use crate::table::Table;

/// Records read from the store at once.
const PAGE: i64 = 500;
/// Skipped records listed in the report (all are counted).
const SKIPPED_SHOWN: usize = 20;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    endpoint: String,
    /// Start of the range: RFC 3339 (2026-11-17T10:00:00Z) or an age (30m, 2h, 7d ago).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the range (exclusive), as --from [default: now].
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// The version to replay with: a number (of the model the endpoint serves), NAME/VERSION
    /// or NAME@ALIAS.
    #[arg(long)]
    version: String,
    /// Worst rows to show.
    #[arg(long, default_value_t = 10)]
    worst: usize,
}

/// What a replay found.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub endpoint: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The version replayed, `model/version`.
    pub version: String,
    /// Records replayed, and their rows.
    pub records: u64,
    pub rows: u64,
    /// Records per version that served them.
    pub served_by: BTreeMap<String, u64>,
    /// Records whose served version, rescored, gave exactly the outputs on record.
    pub reproduced: u64,
    pub skipped: u64,
    /// The first skipped records: (prediction id, why).
    pub skipped_examples: Vec<(String, String)>,
    pub agreement: Option<f64>,
    pub mean_abs_delta: Option<f64>,
    pub p99_abs_delta: Option<f64>,
    pub comparison: ShadowComparison,
}

/// `RFC 3339`, or an age like `90s`, `30m`, `2h`, `7d` before now.
fn parse_time(flag: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, RegistryError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let age = crate::drift::parse_since(text).map_err(|e| {
        RegistryError::Invalid(format!(
            "--{flag} {text:?}: {e}; or give a time as RFC 3339 (2026-11-17T10:00:00Z)"
        ))
    })?;
    now.checked_sub_signed(age).ok_or_else(|| {
        RegistryError::Invalid(format!("--{flag} {text:?}: too long ago to represent"))
    })
}

/// The record's inputs as request columns.
fn columns_of(row: &PredictionRow) -> Result<Columns, String> {
    let object = row
        .inputs
        .as_object()
        .ok_or_else(|| "inputs on record are not columns".to_string())?;
    let columns = object
        .iter()
        .map(|(name, values)| match values {
            Value::Array(v) => Ok((name.clone(), v.clone())),
            _ => Err(format!("input {name:?} on record is not a column")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Columns::from_columns(columns).map_err(|e| e.to_string())
}

/// Models loaded once each, by (model, version).
struct Versions<'a> {
    registry: &'a Registry,
    loaded: HashMap<(String, i64), LoadedVersion>,
}

impl Versions<'_> {
    async fn get(&mut self, model: &str, version: i64) -> Result<&LoadedVersion, RegistryError> {
        let key = (model.to_string(), version);
        if !self.loaded.contains_key(&key) {
            let loaded =
                load_version(self.registry, model, version, &LoadOptions::default()).await?;
            self.loaded.insert(key.clone(), loaded);
        }
        self.loaded
            .get(&key)
            .ok_or_else(|| RegistryError::NotFound(format!("{model}/{version} vanished")))
    }
}

/// Validates `columns` against `loaded`'s signature, runs its feature spec if it has one, and
/// scores them.
fn score(loaded: &LoadedVersion, columns: &Columns) -> Result<Vec<NamedTensor>, String> {
    let matrix: FeatureMatrix =
        model_matrix(&loaded.signature, loaded.features.as_deref(), columns)
            .map_err(|e| e.to_string())?;
    loaded.model.predict(&matrix).map_err(|e| e.to_string())
}

pub async fn run(args: ReplayArgs, store: &StoreArgs) -> anyhow::Result<()> {
    let now = Utc::now();
    let from = parse_time("from", &args.from, now)?;
    let to = match &args.to {
        Some(t) => parse_time("to", t, now)?,
        None => now,
    };
    if from >= to {
        return Err(RegistryError::Invalid(format!(
            "--from {from} is not before --to {to}: the range is empty"
        ))
        .into());
    }
    let registry = store.open().await?;
    let policy = registry.endpoint_policy(&args.endpoint).await?;
    let target = if let Ok(n) = args.version.parse::<i64>() {
        ModelRef {
            model: policy.primary.model().to_string(),
            selector: Selector::Version(n),
        }
    } else {
        args.version.parse::<ModelRef>()?
    };
    let replayed = registry.resolve(&target).await?;
    let label = format!("{}/{}", replayed.model, replayed.version);
    let mut versions = Versions {
        registry: &registry,
        loaded: HashMap::new(),
    };
    versions.get(&replayed.model, replayed.version).await?;
    let mut report = ReplayReport {
        endpoint: args.endpoint.clone(),
        from,
        to,
        version: label.clone(),
        records: 0,
        rows: 0,
        served_by: BTreeMap::new(),
        reproduced: 0,
        skipped: 0,
        skipped_examples: Vec::new(),
        agreement: None,
        mean_abs_delta: None,
        p99_abs_delta: None,
        comparison: ShadowComparison::new(args.worst),
    };
    let skip = |report: &mut ReplayReport, id: &str, why: String| {
        report.skipped += 1;
        if report.skipped_examples.len() < SKIPPED_SHOWN {
            report.skipped_examples.push((id.to_string(), why));
        }
    };
    let mut after: Option<(i64, String)> = None;
    loop {
        let page = registry
            .metadata()
            .page_predictions(
                &args.endpoint,
                from.timestamp_millis(),
                to.timestamp_millis(),
                after.as_ref().map(|(t, id)| (*t, id.as_str())),
                PAGE,
            )
            .await
            .context("reading prediction records")?;
        let Some(last) = page.last() else { break };
        after = Some((last.time_ms, last.id.clone()));
        for row in page.iter().filter(|r| r.role != "shadow") {
            let columns = match columns_of(row) {
                Ok(c) => c,
                Err(why) => {
                    skip(&mut report, &row.id, why);
                    continue;
                }
            };
            let served = match versions.get(&row.model, row.version).await {
                Ok(loaded) => score(loaded, &columns),
                Err(e) => Err(format!("served version {}/{}: {e}", row.model, row.version)),
            };
            let candidate = versions
                .get(&replayed.model, replayed.version)
                .await
                .map_err(|e| e.to_string())
                .and_then(|loaded| score(loaded, &columns));
            let (served, candidate) = match (served, candidate) {
                (Ok(s), Ok(c)) => (s, c),
                (Err(why), _) | (_, Err(why)) => {
                    skip(&mut report, &row.id, why);
                    continue;
                }
            };
            report.records += 1;
            report.rows += u64::try_from(row.rows).unwrap_or(0);
            *report
                .served_by
                .entry(format!("{}/{}", row.model, row.version))
                .or_default() += 1;
            let on_record: BTreeMap<String, Vec<Value>> = output_columns(&served);
            if serde_json::to_value(&on_record).ok().as_ref() == Some(&row.outputs) {
                report.reproduced += 1;
            }
            report
                .comparison
                .record_outputs(&row.id, &served, &candidate);
        }
    }
    if report.records == 0 && report.skipped == 0 {
        return Err(RegistryError::NotFound(format!(
            "endpoint '{}' has no served predictions on record between {from} and {to}",
            args.endpoint
        ))
        .into());
    }
    report.agreement = report.comparison.agreement_rate();
    report.mean_abs_delta = report.comparison.mean_abs_delta();
    report.p99_abs_delta = report.comparison.p99_abs_delta();
    if store.json {
        return print_json(&report);
    }
    print!("{}", render(&report));
    Ok(())
}

fn render(r: &ReplayReport) -> String {
    let number = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.6}"));
    let served: Vec<String> = r
        .served_by
        .iter()
        .map(|(v, n)| format!("{v} ({n})"))
        .collect();
    let mut out = format!(
        "replayed {} records ({} rows) of {} from {} to {} with {}\n\
         served by:   {}\n\
         reproduced:  {} of {} served answers rescored exactly as on record\n\
         agreement:   {}\n\
         |Δ score|:   mean {}, p99 {}\n",
        r.records,
        r.rows,
        r.endpoint,
        r.from.to_rfc3339(),
        r.to.to_rfc3339(),
        r.version,
        if served.is_empty() {
            "-".to_string()
        } else {
            served.join(", ")
        },
        r.reproduced,
        r.records,
        r.agreement
            .map_or("-".to_string(), |a| format!("{:.2} % of rows", a * 100.0)),
        number(r.mean_abs_delta),
        number(r.p99_abs_delta),
    );
    if r.skipped > 0 {
        out += &format!("skipped:     {} records\n", r.skipped);
        for (id, why) in &r.skipped_examples {
            out += &format!("  {id}: {why}\n");
        }
    }
    if !r.comparison.worst().is_empty() {
        out += "\n";
        let mut table = Table::new(&["PREDICTION", "|Δ|", "SERVED", "REPLAYED"]);
        let scores = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        for w in r.comparison.worst() {
            let (served, replayed) = match &w.classes {
                Some((p, s)) => (
                    format!("{p}: {}", scores(&w.primary)),
                    format!("{s}: {}", scores(&w.shadow)),
                ),
                None => (scores(&w.primary), scores(&w.shadow)),
            };
            table.row(vec![
                w.prediction_id.clone(),
                format!("{:.6}", w.abs_delta),
                served,
                replayed,
            ]);
        }
        out += &table.render();
    }
    out
}
