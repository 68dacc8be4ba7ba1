//! `berth alias`, `berth endpoints`, `berth history`, `berth audit`: what is live, and how it
//! got there.

use berth_registry::{RegistryError, StickyKey, TrafficPolicy};
use berth_store::AuditFilter;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::registry_args::{StoreArgs, print_json, when};
use crate::table::Table;

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point NAME@ALIAS at VERSION.
    Set {
        /// NAME@ALIAS, e.g. churn@champion.
        alias: String,
        /// The version number it should point to.
        #[arg(value_name = "VERSION")]
        number: i64,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove NAME@ALIAS.
    Delete {
        alias: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Point ENDPOINT at NAME@ALIAS (follows the alias) or NAME/VERSION (pinned), with an
    /// optional canary, shadows and sticky key (a rollout sets these itself).
    Set {
        endpoint: String,
        target: String,
        /// A canary version answering --weight percent of requests (NAME/VERSION or NAME@ALIAS).
        #[arg(long, requires = "weight")]
        canary: Option<String>,
        /// The canary's share of requests, in percent (0, 100].
        #[arg(long, requires = "canary")]
        weight: Option<f64>,
        /// A version that gets a mirrored copy of every request and never answers (repeatable).
        #[arg(long = "shadow")]
        shadows: Vec<String>,
        /// A header whose value keeps one entity on one version.
        #[arg(long, conflicts_with = "sticky_field")]
        sticky_header: Option<String>,
        /// An input field whose value keeps one entity on one version.
        #[arg(long)]
        sticky_field: Option<String>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List endpoints and what they serve.
    List,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this model's aliases and endpoints.
    model: Option<String>,
    /// The moment to look at (RFC 3339, e.g. 2026-11-17T10:00:00Z) [default: now].
    #[arg(long)]
    at: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this model's events.
    model: Option<String>,
    /// Events since this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Events up to this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// At most this many, the newest.
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

fn parse_time(flag: &str, s: &str) -> Result<DateTime<Utc>, RegistryError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            RegistryError::Invalid(format!(
                "--{flag} {s:?}: {e}; expected RFC 3339 like 2026-11-17T10:00:00Z"
            ))
        })
}

fn split_alias(s: &str) -> Result<(&str, &str), RegistryError> {
    s.split_once('@').ok_or_else(|| {
        RegistryError::Invalid(format!("{s:?}: expected NAME@ALIAS, e.g. churn@champion"))
    })
}

pub async fn alias(command: AliasCommand, store: &StoreArgs) -> anyhow::Result<()> {
    let registry = store.open().await?;
    match command {
        AliasCommand::Set {
            alias,
            number: version,
            reason,
        } => {
            let (model, name) = split_alias(&alias)?;
            let before = registry
                .set_alias(model, name, version, &store.actor(), reason)
                .await?;
            if store.json {
                return print_json(
                    &serde_json::json!({"model": model, "alias": name, "version": version, "previous_version": before}),
                );
            }
            match before {
                Some(b) => println!("{alias}: {model}/{b} -> {model}/{version}"),
                None => println!("{alias} -> {model}/{version}"),
            }
        }
        AliasCommand::Delete { alias, reason } => {
            let (model, name) = split_alias(&alias)?;
            let before = registry
                .delete_alias(model, name, &store.actor(), reason)
                .await?;
            if store.json {
                return print_json(
                    &serde_json::json!({"model": model, "alias": name, "previous_version": before}),
                );
            }
            println!("removed {alias} (was {model}/{before})");
        }
    }
    Ok(())
}

pub async fn endpoints(command: EndpointsCommand, store: &StoreArgs) -> anyhow::Result<()> {
    let registry = store.open().await?;
    match command {
        EndpointsCommand::Set {
            endpoint,
            target,
            canary,
            weight,
            shadows,
            sticky_header,
            sticky_field,
            reason,
        } => {
            let policy = TrafficPolicy::from_text(
                &target,
                canary.as_deref().zip(weight),
                &shadows,
                sticky_header.as_deref(),
                sticky_field.as_deref(),
            )?;
            let record = registry
                .set_endpoint_policy(&endpoint, &policy, &store.actor(), reason)
                .await?;
            if store.json {
                return print_json(&record);
            }
            println!("{endpoint} -> {}", describe_policy(&policy));
        }
        EndpointsCommand::List => {
            let endpoints = registry.endpoints().await?;
            if store.json {
                return print_json(&endpoints);
            }
            let mut table = Table::new(&["ENDPOINT", "TRAFFIC", "UPDATED", "BY"]);
            for e in &endpoints {
                let traffic = serde_json::from_value::<TrafficPolicy>(e.policy.clone())
                    .map_or_else(|_| e.policy.to_string(), |p| describe_policy(&p));
                table.row(vec![
                    e.name.clone(),
                    traffic,
                    when(&e.updated_at),
                    e.updated_by.clone(),
                ]);
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}

/// A policy in one line: `churn@champion, canary churn/2 at 10%, shadow churn/3, sticky header x-id`.
pub fn describe_policy(policy: &TrafficPolicy) -> String {
    let mut text = policy.primary.to_string();
    if let Some(c) = &policy.canary {
        text += &format!(", canary {} at {}%", c.target, c.weight);
    }
    for s in &policy.shadows {
        text += &format!(", shadow {s}");
    }
    match &policy.sticky {
        Some(StickyKey::Header(h)) => text += &format!(", sticky header {h}"),
        Some(StickyKey::Field(f)) => text += &format!(", sticky field {f}"),
        None => {}
    }
    text
}

pub async fn history(args: HistoryArgs, store: &StoreArgs) -> anyhow::Result<()> {
    let at = match &args.at {
        Some(s) => parse_time("at", s)?,
        None => Utc::now(),
    };
    let registry = store.open().await?;
    let state = registry.live_at(args.model.as_deref(), at).await?;
    if store.json {
        return print_json(&state);
    }
    println!("live at {}", at.to_rfc3339());
    let mut table = Table::new(&["ALIAS", "VERSION", "SINCE", "BY", "REASON"]);
    for a in &state.aliases {
        table.row(vec![
            format!("{}@{}", a.model, a.alias),
            format!("{}/{}", a.model, a.version),
            when(&a.changed_at),
            a.changed_by.clone(),
            a.reason.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    let mut table = Table::new(&["ENDPOINT", "TARGET", "VERSION", "SINCE", "BY"]);
    for e in &state.endpoints {
        table.row(vec![
            e.endpoint.clone(),
            e.target.clone(),
            e.version.map_or("-".into(), |v| v.to_string()),
            when(&e.changed_at),
            e.changed_by.clone(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

pub async fn audit(args: AuditArgs, store: &StoreArgs) -> anyhow::Result<()> {
    let filter = AuditFilter {
        model: args.model,
        since: args
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
        limit: Some(args.limit.max(1)),
        ..AuditFilter::default()
    };
    let registry = store.open().await?;
    let events = registry.audit(&filter).await?;
    if store.json {
        return print_json(&events);
    }
    let mut table = Table::new(&[
        "TIME", "ACTOR", "ACTION", "SUBJECT", "BEFORE", "AFTER", "REASON",
    ]);
    let short = |v: &Option<serde_json::Value>| v.as_ref().map_or("-".into(), |v| v.to_string());
    for e in &events {
        table.row(vec![
            when(&e.at),
            e.actor.clone(),
            e.action.clone(),
            e.subject.clone(),
            short(&e.before),
            short(&e.after),
            e.reason.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}
