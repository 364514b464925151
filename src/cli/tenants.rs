//! `tenant`, `profile`, `list`, `contacts` and `criteria`: a tenant, its saved
//! profiles and lists, and its contacts read back.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use sqlx::PgPool;
use uuid::Uuid;

use super::OutputFormat;
use crate::domain::{ReportLanguage, TenantSlug};
use crate::export;
use crate::store::{self, contacts::Filter, profiles, tenants};

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

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// The tenant's profiles (latest versions).
    List { tenant: TenantSlug },
    /// Print a profile as YAML (the format `import --mapping` reads).
    Show { tenant: TenantSlug, name: String },
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

pub async fn tenant(pool: &PgPool, cmd: TenantCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
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

pub async fn profile(pool: &PgPool, cmd: ProfileCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
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

pub async fn list_cmd(pool: &PgPool, cmd: ListCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
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

pub async fn contacts_cmd(pool: &PgPool, cmd: ContactsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ContactsCommand::Export { tenant, list, created_by_run, old_new, output } => {
            let t = tenants::find(pool, &tenant).await?;
            let filter = Filter { tenant_id: t.id, list, created_by_run };
            let declared: Vec<String> = match old_new {
                Some(_) => profiles::declared_criteria(pool, t.id).await?.into_iter().map(|c| c.code).collect(),
                None => Vec::new(),
            };
            let old_new = old_new.map(|kind| (kind, &declared[..]));
            let n = match output {
                Some(path) => {
                    let file = tokio::fs::File::create(&path)
                        .await
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    export::write_contacts(pool, &filter, old_new, &mut tokio::io::BufWriter::new(file)).await?
                }
                None => export::write_contacts(pool, &filter, old_new, &mut tokio::io::stdout()).await?,
            };
            tracing::info!(tenant = %tenant, contacts = n, "export written");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn criteria_cmd(pool: &PgPool, cmd: CriteriaCommand, format: OutputFormat) -> anyhow::Result<ExitCode> {
    match cmd {
        CriteriaCommand::List { tenant } => {
            let t = tenants::find(pool, &tenant).await?;
            let declared = profiles::declared_criteria(pool, t.id).await?;
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
        }
    }
    Ok(ExitCode::SUCCESS)
}
