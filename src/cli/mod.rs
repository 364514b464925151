//! The command line (SPEC §2): argument definitions and the orchestration of
//! each command. Output goes to stdout, diagnostics to stderr.

mod accounts;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use uuid::Uuid;

use crate::configuration::{self, Settings};
use crate::daemon::Daemon;
use crate::domain::{ReportLanguage, TenantSlug};
use crate::feed::FeedSpec;
use crate::mail::{self, Mailer};
use crate::profile::{Mode, Profile, ProfileKind};
use crate::report::Report;
use crate::store::audit::Actor;
use crate::store::feeds::{self, Applied, FeedRow};
use crate::store::{self, contacts::Filter, profiles, runs, tenants};
use crate::telemetry::{self, LogFormat};
use crate::{actions, export, http, import, notify, report, rerun, template};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Create or update feeds from YAML files (idempotent); all are checked before any is applied.
    Apply {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// All feeds with their state.
    List,
    /// One feed: its YAML and state.
    Show { feed: FeedKey },
    /// Connect, check the host key or certificate, list the matching files; imports nothing.
    /// Takes TENANT/FEED or a feed YAML file (to read the server's fingerprint before pinning it).
    Test { feed: String },
    /// One poll now, in the foreground, through the daemon's code path.
    Run {
        feed: FeedKey,
        /// Analyse the files only: nothing written, nothing moved.
        #[arg(long)]
        dry_run: bool,
    },
    /// Stop scheduling a feed.
    Pause { feed: FeedKey },
    /// Schedule a paused feed again.
    Resume { feed: FeedKey },
}

/// `TENANT/FEED` on the command line.
#[derive(Debug, Clone)]
pub struct FeedKey {
    pub tenant: String,
    pub name: String,
}

impl std::str::FromStr for FeedKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok(FeedKey { tenant: t.into(), name: n.into() }),
            _ => Err(format!("{s:?}: write the feed as TENANT/FEED")),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Register a tenant.
    Add {
        slug: TenantSlug,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Language of reports, and default contact language.
        #[arg(long, value_enum, default_value_t = ReportLanguage::Fr)]
        language: ReportLanguage,
        /// Contact language codes accepted besides FR and EN (e.g. DE).
        #[arg(long = "extra-language", value_name = "CODE")]
        extra_languages: Vec<String>,
        #[arg(long = "report-to", value_name = "EMAIL")]
        report_to: Vec<String>,
        /// Succeed without change when the tenant already exists.
        #[arg(long)]
        if_missing: bool,
    },
    /// List tenants.
    List,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub tenant: TenantSlug,
    pub file: PathBuf,
    /// Replay a saved profile (its latest version).
    #[arg(long, conflicts_with = "mapping")]
    pub profile: Option<String>,
    /// Read the mapping and options from a YAML file (the `profile show` format).
    #[arg(long, value_name = "FILE.yaml")]
    pub mapping: Option<PathBuf>,
    /// Override the profile's mode.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Override the profile's kind: `mass_update` imports an edited `contacts export --old-new` file.
    #[arg(long, value_enum)]
    pub kind: Option<ProfileKind>,
    /// Add imported contacts to these lists (replaces the profile's lists).
    #[arg(long = "list", value_name = "NAME")]
    pub lists: Vec<String>,
    /// Analyse only: full parse and validation, the same report, no contact written.
    #[arg(long)]
    pub dry_run: bool,
    /// Store the mapping and options actually used as this profile.
    #[arg(long, value_name = "NAME")]
    pub save_profile: Option<String>,
    /// Messages printed in the report (all by default; counts per code are always complete).
    #[arg(long, value_name = "N")]
    pub max_messages: Option<i64>,
    /// E-mail the completion report to these addresses (needs `smtp:` in the configuration).
    #[arg(long = "report-to", value_name = "EMAIL")]
    pub report_to: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// The tenant's profiles (latest versions).
    List { tenant: TenantSlug },
    /// Print a profile as YAML (the format `import --mapping` reads).
    Show { tenant: TenantSlug, name: String },
}

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

#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// The tenant's lists with their member counts.
    List { tenant: TenantSlug },
    /// Delete a list and its memberships; its contacts stay.
    Delete { tenant: TenantSlug, list: String },
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// The tenant's contacts as a semicolon-separated UTF-8 CSV.
    Export {
        tenant: TenantSlug,
        /// Only members of this list.
        #[arg(long)]
        list: Option<String>,
        /// Only contacts created by this run.
        #[arg(long)]
        created_by_run: Option<Uuid>,
        /// Seed 001's mass-update file: `email`, `id`, and `[old]`/`[new]` pairs of criteria or consents.
        #[arg(long, value_enum, value_name = "criteria|consents")]
        old_new: Option<export::OldNew>,
        /// Write to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CriteriaCommand {
    /// Each criterion code, its accepted internal value codes and the profiles declaring it
    /// (the union over the latest version of each profile; a mass update accepts these).
    List { tenant: TenantSlug },
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
        Command::Tenant(cmd) => tenant(&pool, cmd, format).await,
        Command::Import(args) => import_file(&pool, &settings, args, format).await,
        Command::Profile(cmd) => profile(&pool, cmd, format).await,
        Command::Template { tenant, profile } => {
            let t = tenants::find(&pool, &tenant).await?;
            let p = match profile {
                Some(name) => profiles::latest(&pool, t.id, &name).await?.profile,
                None => Profile::default(),
            };
            print!("{}", template::render(&p));
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs(cmd) => runs_cmd(&pool, &settings, cmd, format).await,
        Command::List(cmd) => list_cmd(&pool, cmd, format).await,
        Command::Criteria(CriteriaCommand::List { tenant }) => {
            let t = tenants::find(&pool, &tenant).await?;
            let declared = profiles::declared_criteria(&pool, t.id).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&declared)?);
            } else {
                if declared.is_empty() {
                    eprintln!("no criteria declared: a profile declares them under `criteria:`");
                }
                for c in declared {
                    println!("{:<24} {}  (profiles: {})", c.code, c.values.join(", "), c.profiles.join(", "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Feed(cmd) => feed_cmd(&pool, &settings, cmd, format).await,
        Command::Run => run_daemon(pool, &settings).await,
        Command::Serve => {
            let console = settings.console.clone().unwrap_or_default();
            let listener = bind_api(&console).await?;
            let stop = CancellationToken::new();
            let mut server = tokio::spawn(crate::api::serve(listener, pool, Arc::new(settings.clone()), stop.clone()));
            // The server ends by itself only when it fails.
            tokio::select! {
                _ = shutdown_signal() => stop.cancel(),
                done = &mut server => {
                    done.context("the API server panicked")?.context("the API server failed")?;
                    return Ok(ExitCode::FAILURE);
                }
            }
            server.await.context("the API server panicked")?.context("the API server failed")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(cmd) => accounts::user(&pool, cmd, format).await,
        Command::Token(cmd) => accounts::token(&pool, cmd, format).await,
        Command::Audit(cmd) => accounts::audit_cmd(&pool, cmd, format).await,
        Command::Contacts(ContactsCommand::Export { tenant, list, created_by_run, old_new, output }) => {
            let t = tenants::find(&pool, &tenant).await?;
            let filter = Filter { tenant_id: t.id, list, created_by_run };
            let declared: Vec<String> = match old_new {
                Some(_) => profiles::declared_criteria(&pool, t.id).await?.into_iter().map(|c| c.code).collect(),
                None => Vec::new(),
            };
            let old_new = old_new.map(|kind| (kind, &declared[..]));
            let n = match output {
                Some(path) => {
                    let file = tokio::fs::File::create(&path)
                        .await
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    export::write_contacts(&pool, &filter, old_new, &mut tokio::io::BufWriter::new(file)).await?
                }
                None => export::write_contacts(&pool, &filter, old_new, &mut tokio::io::stdout()).await?,
            };
            tracing::info!(tenant = %tenant, contacts = n, "export written");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn tenant(pool: &PgPool, cmd: TenantCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantCommand::Add { slug, name, timezone, language, extra_languages, report_to, if_missing } => {
            for to in &report_to {
                if !email_address::EmailAddress::is_valid(to) {
                    bail!("invalid --report-to address {to:?}");
                }
            }
            let new = tenants::NewTenant {
                slug: slug.clone(),
                name,
                timezone,
                language,
                extra_languages: extra_languages.iter().map(|c| c.trim().to_uppercase()).collect(),
                report_to,
            };
            match tenants::add(pool, new).await {
                Ok(t) => println!("tenant {} registered", t.slug),
                Err(tenants::TenantError::Exists(s)) if if_missing => println!("tenant {s} already exists"),
                Err(e) => return Err(e.into()),
            }
        }
        TenantCommand::List => {
            let list = tenants::list(pool).await?;
            if format == OutputFormat::Json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|t| {
                        serde_json::json!({"slug": t.slug.as_str(), "name": t.name, "timezone": t.timezone,
                            "language": t.language.as_str(), "extra_languages": t.extra_languages, "report_to": t.report_to})
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for t in list {
                    println!("{:<20} {:<30} {:<20} {}", t.slug, t.name, t.timezone, t.language.as_str());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import_file(
    pool: &PgPool,
    settings: &Settings,
    args: ImportArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let tenant = tenants::find(pool, &args.tenant).await?;
    let choice = actions::imports::Choice {
        profile: args.profile.clone(),
        mapping: args.mapping.as_deref().map(actions::imports::read_mapping).transpose()?,
        mode: args.mode,
        kind: args.kind,
        lists: args.lists.clone(),
    };
    let (profile, profile_ref) = actions::imports::resolve(pool, &tenant, &choice, "the command line").await?;
    // Mail problems are found before the import, not after it.
    let mailer = if args.report_to.is_empty() {
        None
    } else {
        mail::check_recipients(&args.report_to)?;
        let smtp = settings.smtp.as_ref().context("--report-to needs an smtp block in the configuration")?;
        Some(Mailer::from_settings(smtp)?)
    };
    let meta = std::fs::metadata(&args.file).with_context(|| format!("cannot read {}", args.file.display()))?;
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(meta.len());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("static progress template")
            .progress_chars("=> "),
        );
        bar.set_message("reading");
        bar
    });
    let file_name = args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let request = import::Request {
        tenant,
        path: args.file.clone(),
        file_name,
        profile,
        profile_ref,
        save_as: args.save_profile.clone(),
        dry_run: args.dry_run,
        feed: None,
        progress,
        limits: settings.limits,
        today: chrono::Utc::now().date_naive(),
        pickup: None,
        guards: Default::default(),
        rerun: None,
    };
    let tenant_id = request.tenant.id;
    let lang = request.tenant.language;
    let run_id = actions::imports::run(pool, &Actor::cli(), request).await?;
    if let Some(mailer) = &mailer {
        // The report is stored first; a failed send is retried by the daemon
        // and never fails the import.
        let queued =
            notify::queue_report(pool, run_id, tenant_id, None, &args.report_to, lang, &settings.report).await?;
        if let Some(id) = queued {
            let _ = notify::deliver_due(pool, mailer, chrono::Utc::now(), 1, Some(id)).await;
        }
    }
    let report = print_run(pool, run_id, args.max_messages, format).await?;
    Ok(exit_for(&report))
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
    let head = runs::head(pool, run_id)
        .await
        .with_context(|| format!("cannot read run {run_id}"))?
        .with_context(|| format!("run {run_id} not found"))?;
    match format {
        OutputFormat::Json => {
            let limit = max_messages.filter(|n| *n > 0);
            report::json::write(pool, head.clone(), limit, std::io::stdout()).await?;
        }
        OutputFormat::Text => {
            let examples = runs::examples(pool, run_id, report::text::EXAMPLES_PER_CODE)
                .await
                .with_context(|| format!("cannot read the messages of run {run_id}"))?;
            print!("{}", head.to_text(&examples));
        }
    }
    Ok(head)
}

async fn profile(pool: &PgPool, cmd: ProfileCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    match cmd {
        ProfileCommand::List { tenant } => {
            let t = tenants::find(pool, &tenant).await?;
            let list = profiles::list(pool, t.id).await?;
            if format == OutputFormat::Json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|p| serde_json::json!({"name": p.name, "version": p.version, "created_at": p.created_at}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for p in list {
                    println!("{:<30} v{:<4} {}", p.name, p.version, p.created_at.format("%Y-%m-%d %H:%M"));
                }
            }
        }
        ProfileCommand::Show { tenant, name } => {
            let t = tenants::find(pool, &tenant).await?;
            let saved = profiles::latest(pool, t.id, &name).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&saved.profile)?);
            } else {
                println!("# {} v{} ({})", saved.name, saved.version, saved.created_at.format("%Y-%m-%d %H:%M"));
                print!("{}", saved.profile.to_yaml());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_cmd(pool: &PgPool, cmd: ListCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    match cmd {
        ListCommand::List { tenant } => {
            let t = tenants::find(pool, &tenant).await?;
            let lists = store::lists::list(pool, t.id).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&lists)?);
            } else {
                for l in lists {
                    println!(
                        "{:<30} {:>10} members  created {}",
                        l.name,
                        l.members,
                        l.created_at.format("%Y-%m-%d %H:%M")
                    );
                }
            }
        }
        ListCommand::Delete { tenant, list } => {
            let t = tenants::find(pool, &tenant).await?;
            match store::lists::delete(pool, t.id, &list).await? {
                Some(n) => println!("list {list} of {tenant} deleted: {n} memberships removed, the contacts stay"),
                None => bail!("tenant {tenant} has no list {list:?}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn runs_cmd(
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

fn daemon(pool: &PgPool, settings: &Settings) -> Daemon {
    Daemon::from_settings(pool, settings)
}

async fn run_daemon(pool: PgPool, settings: &Settings) -> anyhow::Result<ExitCode> {
    // A bad smtp block refuses to start, rather than failing the first report.
    let mailer = settings.smtp.as_ref().map(Mailer::from_settings).transpose()?;
    if mailer.is_none() {
        tracing::warn!("no smtp configured: reports and alerts are stored but not sent");
    }
    if let Some(dir) = &settings.feeds_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read feeds_dir {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        if !files.is_empty() {
            let actor = Actor { name: "daemon:feeds_dir".into(), source: dir.display().to_string() };
            apply_feeds(&pool, &files, &actor).await?;
        }
    }
    let listener = tokio::net::TcpListener::bind(&settings.http.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http.bind))?;
    tracing::info!(bind = %settings.http.bind, "http endpoint listening");
    let stop_http = CancellationToken::new();
    let http = tokio::spawn(http::serve(listener, pool.clone(), stop_http.clone()));
    let api = match &settings.console {
        Some(console) => {
            let listener = bind_api(console).await?;
            Some(tokio::spawn(crate::api::serve(listener, pool.clone(), Arc::new(settings.clone()), stop_http.clone())))
        }
        None => None,
    };
    Daemon { mailer, ..daemon(&pool, settings) }.run(shutdown_signal()).await?;
    stop_http.cancel();
    let _ = http.await;
    if let Some(api) = api {
        let _ = api.await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The listener of the API, on `console.bind`.
async fn bind_api(console: &configuration::ConsoleSettings) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(&console.bind)
        .await
        .with_context(|| format!("cannot listen on console.bind {}", console.bind))?;
    tracing::info!(bind = %console.bind, "api listening");
    Ok(listener)
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown signal received");
}

/// Checks every file, then applies them all; nothing is applied if one is wrong.
async fn apply_feeds(pool: &PgPool, files: &[PathBuf], actor: &Actor) -> anyhow::Result<Vec<(String, Applied)>> {
    let mut docs = Vec::new();
    for path in files {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {origin}"))?;
        docs.push(actions::feeds::Document { origin, text });
    }
    match actions::feeds::check(pool, &docs).await {
        Ok(checked) => actions::feeds::store(pool, actor, checked).await,
        Err(problems) => bail!("no feed applied:\n  {}", problems.join("\n  ")),
    }
}

async fn find_feed(pool: &PgPool, key: &FeedKey) -> anyhow::Result<FeedRow> {
    feeds::find(pool, &key.tenant, &key.name)
        .await?
        .with_context(|| format!("feed {}/{} not found", key.tenant, key.name))
}

async fn feed_cmd(
    pool: &PgPool,
    settings: &Settings,
    cmd: FeedCommand,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    match cmd {
        FeedCommand::Apply { files } => {
            for (key, applied) in apply_feeds(pool, &files, &Actor::cli()).await? {
                println!("{key}: {}", actions::feeds::applied_str(applied));
            }
        }
        FeedCommand::List => {
            let list = feeds::list(pool).await?;
            if format == OutputFormat::Json {
                let rows: Vec<_> = list.iter().map(feed_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for f in list {
                    println!(
                        "{:<32} {:<7} next {}  last {} {}",
                        f.key(),
                        if f.paused { "paused" } else { "active" },
                        f.next_run_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        f.last_run_at
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|| "never".into()),
                        f.last_status.as_deref().unwrap_or("")
                    );
                }
            }
        }
        FeedCommand::Show { feed } => {
            let f = find_feed(pool, &feed).await?;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&feed_json(&f))?);
            } else {
                println!(
                    "# {} ({}), next run {}, last run {} {}",
                    f.key(),
                    if f.paused { "paused" } else { "active" },
                    f.next_run_at,
                    f.last_run_at.map(|t| t.to_string()).unwrap_or_else(|| "never".into()),
                    f.last_status.as_deref().unwrap_or("")
                );
                if let Some(e) = &f.last_error {
                    println!("# last error: {e}");
                }
                print!("{}", serde_saphyr::to_string(&f.spec).unwrap_or_default());
            }
        }
        FeedCommand::Test { feed } => {
            let spec = if feed.ends_with(".yaml") || feed.ends_with(".yml") {
                let text = std::fs::read_to_string(&feed).with_context(|| format!("cannot read {feed}"))?;
                FeedSpec::from_yaml(&text, &feed).map_err(anyhow::Error::msg)?
            } else {
                find_feed(pool, &feed.parse::<FeedKey>().map_err(anyhow::Error::msg)?).await?.spec
            };
            let found = actions::feeds::test(&spec).await?;
            println!("connected to {}", found.endpoint);
            if let Some(fp) = &found.fingerprint {
                println!("server fingerprint: {fp}");
            }
            println!("{} file(s) match {}:", found.files.len(), found.patterns.join(", "));
            for x in found.files {
                println!(
                    "  {:<40} {:>12} bytes  {}",
                    x.name,
                    x.size,
                    x.mtime.map(|t| t.to_string()).unwrap_or_default()
                );
            }
        }
        FeedCommand::Run { feed, dry_run } => {
            let f = find_feed(pool, &feed).await?;
            let mailer = settings.smtp.as_ref().map(Mailer::from_settings).transpose()?;
            let daemon = Daemon { mailer, ..daemon(pool, settings) };
            let report = daemon.run_once(&f, dry_run).await?;
            daemon.deliver_mail().await;
            if format == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{}: {} file(s) listed", f.key(), report.listed);
                for (name, outcome) in &report.files {
                    println!("  {name}: {}", serde_json::to_string(outcome)?);
                }
            }
            // A held file waits for a person as a refused one does.
            if report.refused() + report.held() > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        FeedCommand::Pause { feed } => {
            let f = find_feed(pool, &feed).await?;
            actions::feeds::set_paused(pool, &Actor::cli(), &f, true).await?;
            println!("{} paused", f.key());
        }
        FeedCommand::Resume { feed } => {
            let f = find_feed(pool, &feed).await?;
            actions::feeds::set_paused(pool, &Actor::cli(), &f, false).await?;
            println!("{} resumed", f.key());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn feed_json(f: &FeedRow) -> serde_json::Value {
    serde_json::json!({
        "feed": f.key(), "paused": f.paused, "next_run_at": f.next_run_at, "last_run_at": f.last_run_at,
        "last_status": f.last_status, "last_error": f.last_error, "lease_owner": f.lease_owner, "spec": f.spec,
    })
}
