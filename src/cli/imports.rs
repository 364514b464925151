//! `import` and `template`: the manual import of a contact file (SPEC §2) and
//! the template a tenant's files follow.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;

use super::{OutputFormat, exit_for, print_run};
use crate::configuration::Settings;
use crate::domain::TenantSlug;
use crate::mail::{self, Mailer};
use crate::profile::{Mode, Profile, ProfileKind};
use crate::store::audit::Actor;
use crate::store::{profiles, tenants};
use crate::{actions, import, notify, template};

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

pub async fn import_file(
    pool: &PgPool,
    settings: &Settings,
    args: ImportArgs,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let tenant = tenants::find(pool, &args.tenant).await?;
    if let Some(name) = &args.save_profile {
        crate::profile::check_name(name).map_err(|e| anyhow::anyhow!("--save-profile: {e}"))?;
    }
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
        save_as: args.save_profile.clone(),
        dry_run: args.dry_run,
        progress,
        ..import::Request::manual(tenant, args.file.clone(), file_name, (profile, profile_ref), settings.limits)
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

pub async fn template(pool: &PgPool, tenant: TenantSlug, profile: Option<String>) -> anyhow::Result<ExitCode> {
    let t = tenants::find(pool, &tenant).await?;
    let p = match profile {
        Some(name) => profiles::latest(pool, t.id, &name).await?.profile,
        None => Profile::default(),
    };
    print!("{}", template::render(&p));
    Ok(ExitCode::SUCCESS)
}
