//! The command line (SPEC §2): argument definitions and the orchestration of
//! each command. Output goes to stdout, diagnostics to stderr.

mod accounts;
mod feeds;
mod imports;
mod runs;
mod serve;
mod tenants;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use sqlx::PgPool;
use uuid::Uuid;

use crate::configuration;
use crate::domain::TenantSlug;
use crate::report::{self, Report};
use crate::store;
use crate::telemetry::{self, LogFormat};

pub use feeds::{FeedCommand, FeedKey};
pub use imports::ImportArgs;
pub use runs::RunsCommand;
pub use tenants::{ContactsCommand, CriteriaCommand, ListCommand, ProfileCommand, TenantCommand};

#[derive(Debug, Parser)]
#[command(name = "dropfeed", version, about = "Scheduled contact-file imports into PostgreSQL")]
pub struct Cli {
    /// Configuration file (default: config/dropfeed.yaml if present).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// PostgreSQL URL; overrides the configuration.
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Output of reports: text for people, json for scripts.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Log lines on stderr: text, or JSON lines.
    #[arg(long, global = true, value_enum, env = "DROPFEED_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if missing and apply migrations.
    Migrate,
    /// Register and list tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Import a contact file now (the manual import).
    Import(ImportArgs),
    /// Saved import profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Print the import template: a header line and one example line.
    Template {
        tenant: TenantSlug,
        #[arg(long)]
        profile: Option<String>,
    },
    /// Past runs and their reports.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Read contacts back.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// The criteria codes the tenant's profiles declare.
    #[command(subcommand)]
    Criteria(CriteriaCommand),
    /// Register, inspect and run feeds (scheduled imports).
    #[command(subcommand)]
    Feed(FeedCommand),
    /// A tenant's lists of contacts.
    #[command(subcommand)]
    List(ListCommand),
    /// The daemon: scheduler, workers and HTTP endpoint, until SIGTERM/SIGINT
    /// (and the API on `console.bind` when it is set).
    Run,
    /// The API alone (no scheduler) on `console.bind` (default 127.0.0.1:8080), until SIGTERM/SIGINT.
    Serve,
    /// Users of the API and console.
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// API tokens for scripts.
    #[command(subcommand)]
    Token(accounts::TokenCommand),
    /// The audit log of changes.
    #[command(subcommand)]
    Audit(accounts::AuditCommand),
}

/// Runs one command; the exit code says whether it did what was asked.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands print their outcome themselves; logs are for the daemon.
    let level = if matches!(cli.command, Command::Run | Command::Serve | Command::Feed(FeedCommand::Run { .. })) {
        "info,sqlx=warn"
    } else {
        "error"
    };
    telemetry::init(cli.log_format, level);
    let mut settings = configuration::load(cli.config.as_deref())?;
    if let Some(url) = &cli.database_url {
        settings.database_url = url.clone();
    }
    let pool = store::migrate(&settings.database_url).await?;
    let format = cli.format;
    match cli.command {
        Command::Migrate => {
            println!("database {} is up to date", store::redacted(&settings.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenant(cmd) => tenants::tenant(&pool, cmd, format).await,
        Command::Import(args) => imports::import_file(&pool, &settings, args, format).await,
        Command::Profile(cmd) => tenants::profile(&pool, cmd, format).await,
        Command::Template { tenant, profile } => imports::template(&pool, tenant, profile).await,
        Command::Runs(cmd) => runs::runs_cmd(&pool, &settings, cmd, format).await,
        Command::List(cmd) => tenants::list_cmd(&pool, cmd, format).await,
        Command::Criteria(cmd) => tenants::criteria_cmd(&pool, cmd, format).await,
        Command::Feed(cmd) => feeds::feed_cmd(&pool, &settings, cmd, format).await,
        Command::Run => serve::run_daemon(pool, &settings).await,
        Command::Serve => serve::serve(pool, &settings).await,
        Command::User(cmd) => accounts::user(&pool, cmd, format).await,
        Command::Token(cmd) => accounts::token(&pool, cmd, format).await,
        Command::Audit(cmd) => accounts::audit_cmd(&pool, cmd, format).await,
        Command::Contacts(cmd) => tenants::contacts_cmd(&pool, cmd).await,
    }
}

fn exit_for(report: &Report<()>) -> ExitCode {
    if report.status.is_success() {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: import {}: {}", report.status.as_str(), report.error.as_deref().unwrap_or("see the report"));
        ExitCode::from(2)
    }
}

/// Prints the report of a run, its messages (at most `max_messages`) read
/// from the database while they are printed; returns the report's head.
async fn print_run(
    pool: &PgPool,
    run_id: Uuid,
    max_messages: Option<i64>,
    format: OutputFormat,
) -> anyhow::Result<Report<()>> {
    let head = store::runs::head(pool, run_id)
        .await
        .with_context(|| format!("cannot read run {run_id}"))?
        .with_context(|| format!("run {run_id} not found"))?;
    match format {
        OutputFormat::Json => {
            let limit = max_messages.filter(|n| *n > 0);
            report::json::write(pool, head.clone(), limit, std::io::stdout()).await?;
        }
        OutputFormat::Text => {
            let examples = store::runs::examples(pool, run_id, report::text::EXAMPLES_PER_CODE)
                .await
                .with_context(|| format!("cannot read the messages of run {run_id}"))?;
            print!("{}", head.to_text(&examples));
        }
    }
    Ok(head)
}
