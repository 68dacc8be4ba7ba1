//! `berth models`: register, list and show model versions.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use berth_registry::{ModelRef, RegisterRequest, Selector, parse_signature_yaml};
use berth_store::{Lineage, VersionRecord};
use clap::{Args, Subcommand};

use crate::registry_args::{StoreArgs, print_json, when};
use crate::table::Table;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Register a model file as the next version of NAME.
    Register(Box<RegisterArgs>),
    /// List models with their newest version.
    List,
    /// Show a model (its versions and aliases), or one version: NAME, NAME@ALIAS, NAME/VERSION.
    Show {
        /// NAME, NAME@ALIAS or NAME/VERSION.
        reference: String,
    },
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Model name (letters, digits, '.', '_', '-').
    name: String,
    /// Model file: ONNX, XGBoost JSON or LightGBM text.
    file: PathBuf,
    /// Signature YAML; inferred from the file when absent.
    #[arg(long)]
    signature: Option<PathBuf>,
    /// Reference data the model was trained on (.parquet or .csv).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Drift settings YAML for this version (method, threshold, per-column overrides; see
    /// docs/MONITORING.md); the sample-size aware default when absent.
    #[arg(long, value_name = "FILE")]
    drift: Option<PathBuf>,
    /// A fitted feature spec (`berth features fit`): the version takes the spec's input fields
    /// and serving runs the spec before the model.
    #[arg(long, value_name = "FITTED")]
    features: Option<PathBuf>,
    /// A tag, KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    tags: Vec<String>,
    /// An offline metric, NAME=NUMBER (repeatable).
    #[arg(long = "metric", value_name = "NAME=NUMBER")]
    metrics: Vec<String>,
    /// The version this one was derived from.
    #[arg(long)]
    parent: Option<i64>,
    #[arg(long)]
    description: Option<String>,
    /// Where the training data is (URI), for lineage.
    #[arg(long)]
    training_data: Option<String>,
    /// sha256 of the training data, for lineage.
    #[arg(long)]
    training_data_sha256: Option<String>,
    /// The code that trained it (e.g. a git commit).
    #[arg(long)]
    code_ref: Option<String>,
    /// What caused this version (manual, schedule, drift, ...).
    #[arg(long, default_value = "manual")]
    trigger: String,
    /// Why, for the audit log.
    #[arg(long)]
    reason: Option<String>,
}

fn key_values(what: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    anyhow::anyhow!(berth_registry::RegistryError::Invalid(format!(
                        "--{what} {kv:?}: expected KEY=VALUE"
                    )))
                })
        })
        .collect()
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(berth_registry::RegistryError::Invalid(format!(
            "{}: {e}",
            path.display()
        )))
    })
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub async fn run(command: ModelsCommand, store: &StoreArgs) -> anyhow::Result<()> {
    match command {
        ModelsCommand::Register(args) => register(*args, store).await,
        ModelsCommand::List => list(store).await,
        ModelsCommand::Show { reference } => show(&reference, store).await,
    }
}

async fn register(args: RegisterArgs, store: &StoreArgs) -> anyhow::Result<()> {
    let signature = match &args.signature {
        Some(path) => {
            let text = String::from_utf8(read(path)?).map_err(|_| {
                berth_registry::RegistryError::Invalid(format!(
                    "{}: not UTF-8 text",
                    path.display()
                ))
            })?;
            Some(parse_signature_yaml(&path.display().to_string(), &text)?)
        }
        None => None,
    };
    let metrics = key_values("metric", &args.metrics)?
        .into_iter()
        .map(|(k, v)| {
            v.parse::<f64>().map(|n| (k.clone(), n)).map_err(|_| {
                anyhow::anyhow!(berth_registry::RegistryError::Invalid(format!(
                    "--metric {k}={v}: expected a number"
                )))
            })
        })
        .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
    let reference = match &args.reference {
        Some(path) => Some((file_name(path), read(path)?.into())),
        None => None,
    };
    let drift = match &args.drift {
        Some(path) => Some(crate::read_yaml_file(path, "drift settings")?),
        None => None,
    };
    let features = match &args.features {
        Some(path) => Some(String::from_utf8(read(path)?).map_err(|_| {
            berth_registry::RegistryError::Invalid(format!("{}: not UTF-8 text", path.display()))
        })?),
        None => None,
    };
    let request = RegisterRequest {
        description: args.description,
        signature,
        reference,
        drift,
        features,
        tags: key_values("tag", &args.tags)?,
        metrics,
        lineage: Lineage {
            parent_version: args.parent,
            training_data_uri: args.training_data,
            training_data_sha256: args.training_data_sha256,
            triggered_by: Some(args.trigger),
            code_ref: args.code_ref,
        },
        reason: args.reason,
    };
    let artifact = read(&args.file)?;
    let registry = store.open().await?;
    let version = registry
        .register(
            &args.name,
            &file_name(&args.file),
            artifact.into(),
            request,
            &store.actor(),
        )
        .await?;
    if store.json {
        return print_json(&version);
    }
    println!(
        "registered {}/{} ({}, sha256 {}, {} inputs)",
        version.model,
        version.version,
        version.format,
        &version.sha256[..12],
        version.signature["inputs"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}

async fn list(store: &StoreArgs) -> anyhow::Result<()> {
    let registry = store.open().await?;
    let models = registry.models().await?;
    if store.json {
        return print_json(&models);
    }
    let mut table = Table::new(&["MODEL", "LATEST", "CREATED", "BY", "DESCRIPTION"]);
    for m in &models {
        table.row(vec![
            m.name.clone(),
            m.latest_version.map_or("-".into(), |v| v.to_string()),
            when(&m.created_at),
            m.created_by.clone(),
            m.description.clone(),
        ]);
    }
    if table.is_empty() {
        println!("no models yet; register one with `berth models register NAME FILE`");
    } else {
        print!("{}", table.render());
    }
    Ok(())
}

fn print_version(v: &VersionRecord) {
    println!("{}/{}", v.model, v.version);
    println!("  format:      {}", v.format);
    println!("  artifact:    {}", v.artifact_uri);
    println!("  sha256:      {}", v.sha256);
    println!("  size:        {} bytes", v.size_bytes);
    println!(
        "  registered:  {} by {}",
        when(&v.registered_at),
        v.registered_by
    );
    println!("  status:      {}", v.status);
    if let Some(p) = v.lineage.parent_version {
        println!("  parent:      {}/{p}", v.model);
    }
    for (label, value) in [
        ("trigger", &v.lineage.triggered_by),
        ("code", &v.lineage.code_ref),
        ("training", &v.lineage.training_data_uri),
        ("reference", &v.reference_uri),
    ] {
        if let Some(value) = value {
            println!("  {label:<12} {value}");
        }
    }
    if v.tags.as_object().is_some_and(|t| !t.is_empty()) {
        println!("  tags:        {}", v.tags);
    }
    if v.metrics.as_object().is_some_and(|m| !m.is_empty()) {
        println!("  metrics:     {}", v.metrics);
    }
    let mut table = Table::new(&["INPUT", "TYPE", "NULLABLE"]);
    for field in v.signature["inputs"].as_array().into_iter().flatten() {
        table.row(vec![
            field["name"].as_str().unwrap_or("?").to_string(),
            field["type"].as_str().unwrap_or("?").to_string(),
            field["nullable"].as_bool().unwrap_or(false).to_string(),
        ]);
    }
    println!("  signature:");
    for line in table.render().lines() {
        println!("    {line}");
    }
}

async fn show(reference: &str, store: &StoreArgs) -> anyhow::Result<()> {
    let r: ModelRef = reference.parse()?;
    let registry = store.open().await?;
    if r.selector != Selector::Latest {
        let version = registry
            .resolve(&r)
            .await
            .with_context(|| format!("showing {reference}"))?;
        if store.json {
            return print_json(&version);
        }
        print_version(&version);
        return Ok(());
    }
    let detail = registry.model(&r.model).await?;
    if store.json {
        return print_json(&detail);
    }
    println!("{}  {}", detail.model.name, detail.model.description);
    let mut versions = Table::new(&["VERSION", "FORMAT", "SHA256", "REGISTERED", "BY", "ALIASES"]);
    for v in &detail.versions {
        let aliases: Vec<&str> = detail
            .aliases
            .iter()
            .filter(|a| a.version == v.version)
            .map(|a| a.alias.as_str())
            .collect();
        versions.row(vec![
            v.version.to_string(),
            v.format.clone(),
            v.sha256[..12].to_string(),
            when(&v.registered_at),
            v.registered_by.clone(),
            aliases.join(", "),
        ]);
    }
    print!("{}", versions.render());
    Ok(())
}
