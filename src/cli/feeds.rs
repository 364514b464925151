//! `feed`: register, inspect, test and run feeds (SPEC §2), and the YAML
//! apply shared with the daemon's `feeds_dir`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use sqlx::PgPool;

use super::OutputFormat;
use super::serve::daemon;
use crate::actions;
use crate::configuration::Settings;
use crate::daemon::Daemon;
use crate::feed::FeedSpec;
use crate::mail::Mailer;
use crate::store::audit::Actor;
use crate::store::feeds::{self, Applied, FeedRow};

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

/// Checks every file, then applies them all; nothing is applied if one is wrong.
pub async fn apply_feeds(pool: &PgPool, files: &[PathBuf], actor: &Actor) -> anyhow::Result<Vec<(String, Applied)>> {
    let mut docs = Vec::new();
    for path in files {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {origin}"))?;
        docs.push(actions::feeds::Document { origin, text });
    }
    match actions::feeds::check(pool, &docs, actions::feeds::Applier::Operator).await {
        Ok(checked) => actions::feeds::store(pool, actor, checked).await,
        Err(refused) => bail!("no feed applied:\n  {}", refused.problems.join("\n  ")),
    }
}

async fn find_feed(pool: &PgPool, key: &FeedKey) -> anyhow::Result<FeedRow> {
    feeds::find(pool, &key.tenant, &key.name)
        .await?
        .with_context(|| format!("feed {}/{} not found", key.tenant, key.name))
}

pub async fn feed_cmd(
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
        FeedCommand::List => list(pool, format).await?,
        FeedCommand::Show { feed } => show(pool, &feed, format).await?,
        FeedCommand::Test { feed } => test(pool, &feed).await?,
        FeedCommand::Run { feed, dry_run } => return run(pool, settings, &feed, dry_run, format).await,
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

/// `feed list`: every feed, its state and its next and last run.
async fn list(pool: &PgPool, format: OutputFormat) -> anyhow::Result<()> {
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
                f.last_run_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "never".into()),
                f.last_status.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// `feed show`: a feed's state and its YAML.
async fn show(pool: &PgPool, feed: &FeedKey, format: OutputFormat) -> anyhow::Result<()> {
    let f = find_feed(pool, feed).await?;
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
    Ok(())
}

/// `feed test`: connects (to a stored feed or a YAML file's) and lists what matches.
async fn test(pool: &PgPool, feed: &str) -> anyhow::Result<()> {
    let spec = if feed.ends_with(".yaml") || feed.ends_with(".yml") {
        let text = std::fs::read_to_string(feed).with_context(|| format!("cannot read {feed}"))?;
        FeedSpec::from_yaml(&text, feed).map_err(anyhow::Error::msg)?
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
        println!("  {:<40} {:>12} bytes  {}", x.name, x.size, x.mtime.map(|t| t.to_string()).unwrap_or_default());
    }
    Ok(())
}

/// `feed run`: one poll now, in the foreground; exit code 2 when a file was
/// refused or held.
async fn run(
    pool: &PgPool,
    settings: &Settings,
    feed: &FeedKey,
    dry_run: bool,
    format: OutputFormat,
) -> anyhow::Result<ExitCode> {
    let f = find_feed(pool, feed).await?;
    let mailer = settings.smtp.as_ref().map(Mailer::from_settings).transpose()?;
    let daemon = Daemon { mailer, ..daemon(pool, settings)? };
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
    Ok(ExitCode::SUCCESS)
}

fn feed_json(f: &FeedRow) -> serde_json::Value {
    serde_json::json!({
        "feed": f.key(), "paused": f.paused, "next_run_at": f.next_run_at, "last_run_at": f.last_run_at,
        "last_status": f.last_status, "last_error": f.last_error, "lease_owner": f.lease_owner, "spec": f.spec,
    })
}
