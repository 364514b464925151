//! `runs`: past runs, their reports and rejects, and the release or replay of
//! a run as a new one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use sqlx::PgPool;
use uuid::Uuid;

use super::{OutputFormat, exit_for, print_run};
use crate::configuration::Settings;
use crate::domain::TenantSlug;
use crate::mail::Mailer;
use crate::store::audit::Actor;
use crate::store::{runs, tenants};
use crate::{actions, notify, report, rerun};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs, newest first.
    List {
        #[arg(long)]
        tenant: Option<TenantSlug>,
        #[arg(long)]
        feed: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// The full report of a run.
    Show {
        run_id: Uuid,
        /// Messages printed (all by default).
        #[arg(long, value_name = "N")]
        max_messages: Option<i64>,
    },
    /// The rejects file of a run: its rejected lines as in the file, with `line` and `reason`
    /// (the CSV a report e-mail attaches when it is small enough).
    Rejects {
        run_id: Uuid,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import the file of a held run (a guard stopped it), once a person has looked at it.
    Release { run_id: Uuid },
    /// Import a run's archived file again, with the current version of its profile, as a new run.
    Replay {
        run_id: Uuid,
        /// Also when the first run was applied (its file is then imported twice).
        #[arg(long)]
        force: bool,
    },
}

pub async fn runs_cmd(
    pool: &PgPool,
    settings: &Settings,
    cmd: RunsCommand,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    match cmd {
        RunsCommand::List { tenant, feed, limit } => {
            let tenant_id = match &tenant {
                Some(slug) => Some(tenants::find(pool, slug).await?.id),
                None => None,
            };
            let filter = runs::RunFilter { tenant_id, feed, limit, ..Default::default() };
            let list = runs::page(pool, &filter).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for r in list {
                    println!(
                        "{}  {}  {:<12} {:<24} {:<30} rows {} inserted {} updated {} rejected {}",
                        r.run_id,
                        r.started_at.format("%Y-%m-%d %H:%M:%S"),
                        r.tenant,
                        r.status,
                        r.file,
                        r.rows,
                        r.inserted,
                        r.updated,
                        r.rejected
                    );
                }
            }
        }
        RunsCommand::Show { run_id, max_messages } => {
            print_run(pool, run_id, max_messages, format).await?;
        }
        RunsCommand::Rejects { run_id, output } => {
            let source =
                report::rejects::source(pool, run_id).await?.with_context(|| format!("run {run_id} not found"))?;
            let (delimiter, lang) = (source.delimiter, source.lang);
            let written = match &output {
                Some(path) => {
                    let file = tokio::fs::File::create(path)
                        .await
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut out = tokio::io::BufWriter::new(file);
                    report::rejects::write(pool, run_id, delimiter, lang, &mut out, None)
                        .await
                        .with_context(|| format!("cannot write {}", path.display()))?
                }
                None => report::rejects::write(pool, run_id, delimiter, lang, &mut tokio::io::stdout(), None).await?,
            };
            match written {
                Some(w) => eprintln!("{} rejected line(s) of run {run_id} written", w.lines),
                None => eprintln!("run {run_id} rejected no line"),
            }
        }
        RunsCommand::Release { run_id } | RunsCommand::Replay { run_id, .. } => {
            let action = match cmd {
                RunsCommand::Replay { force, .. } => rerun::Action::Replay { force },
                _ => rerun::Action::Release,
            };
            let new_run = actions::runs::rerun(pool, settings, &Actor::cli(), run_id, action).await?;
            if let Some(smtp) = &settings.smtp {
                let _ = notify::deliver_due(pool, &Mailer::from_settings(smtp)?, chrono::Utc::now(), 5, None).await;
            }
            let report = print_run(pool, new_run, None, format).await?;
            return Ok(exit_for(&report));
        }
    }
    Ok(ExitCode::SUCCESS)
}
