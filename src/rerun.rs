//! `runs release` and `runs replay`: a new run that imports the archived copy
//! of an earlier run's file with the current version of its profile.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use crate::archive::{Archive, ArchiveError};
use crate::configuration::{Limits, ReportSettings};
use crate::domain::TenantSlug;
use crate::import::{self, Rerun};
use crate::report::Status;
use crate::spool::Spool;
use crate::store::{feeds, profiles, runs, tenants};

/// What a person asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A held run, once someone has looked at its file: imported without the
    /// guards that held it, at most once.
    Release,
    /// Any feed run's file again. Without `force`, only a run that wrote
    /// nothing (failed, aborted, held): an applied file would be applied twice.
    Replay { force: bool },
}

/// A re-import refused for the state of the run or its file (not held,
/// already released, archive gone...): the person asking must be told why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

macro_rules! refuse {
    ($($arg:tt)*) => { return Err(Refused(format!($($arg)*)).into()) };
}

/// Runs the re-import and returns the new run's id (its report tells how it went).
pub async fn rerun(
    pool: &PgPool,
    archive: &Archive,
    spool_root: &std::path::Path,
    limits: Limits,
    report: &ReportSettings,
    of: Uuid,
    action: Action,
) -> anyhow::Result<Uuid> {
    let first = runs::head(pool, of).await?.with_context(|| format!("run {of} not found"))?;
    let applied = matches!(first.status, Status::Succeeded | Status::SucceededWithWarnings);
    match action {
        Action::Release if first.status != Status::Held => {
            refuse!("run {of} is {}, not held: only a held run is released", first.status.as_str())
        }
        // A dry run's file was not taken: the feed's next poll imports it.
        Action::Replay { .. } if first.status == Status::DryRun => {
            refuse!("run {of} is a dry run: its file was not taken; run the feed, or import the file")
        }
        Action::Replay { force: false } if applied || first.status == Status::Running => refuse!(
            "run {of} is {}: replaying would import {} again; add --force if that is wanted",
            first.status.as_str(),
            first.file.name
        ),
        _ => {}
    }
    if let (Action::Release, Some(by)) = (action, first.rerun_by) {
        refuse!("run {of} was already released by run {by}");
    }
    let slug = TenantSlug::parse(&first.tenant).map_err(anyhow::Error::msg)?;
    let tenant = tenants::find(pool, &slug).await?;
    let Some(profile_name) = first.profile.as_ref().map(|p| p.name.clone()) else {
        refuse!("run {of} used no saved profile: import {} again with --profile or --mapping", first.file.name)
    };
    let saved = profiles::latest(pool, tenant.id, &profile_name).await?;
    let Some(feed_name) = first.feed.clone() else {
        refuse!(
            "{} (run {of}) was a manual import: only feed files are archived; import the file again",
            first.file.name
        )
    };
    // Copied into a spool folder of its own, its hash checked on the way.
    let spool = Spool::private(spool_root).context("cannot prepare the spool")?;
    let path = spool.dir().join(format!("replay-{of}.part"));
    match archive.fetch(tenant.id, &first.file.sha256, &path).await {
        Ok(_) => {}
        Err(ArchiveError::Gone { .. }) => refuse!(
            "the archived copy of {} (run {of}) is gone: files are kept {} days in {}",
            first.file.name,
            archive.days,
            archive.location
        ),
        Err(e) => return Err(e.into()),
    }
    let feed = match &first.feed {
        Some(name) => feeds::find(pool, tenant.slug.as_str(), name).await?,
        None => None,
    };
    // The re-import is recorded as the feed's processed file (the file is
    // then imported at most once, as any feed file), except for a forced
    // replay of an applied file, which is explicitly a second import.
    let pickup = if applied { None } else { feeds::picked_of_run(pool, of).await? };
    // "Today" in the feed's schedule timezone, as its poll would have it.
    let timezone = feed
        .as_ref()
        .and_then(|f| f.spec.check(&tenant.timezone).ok())
        .map(|c| c.schedule.timezone())
        .unwrap_or_else(|| tenant.timezone.parse().unwrap_or(chrono_tz::UTC));
    let today = chrono::Utc::now().with_timezone(&timezone).date_naive();
    let request = import::Request {
        pickup,
        rerun: Some(Rerun { of, once: action == Action::Release || !applied }),
        ..import::Request::for_feed(
            tenant.clone(),
            feed_name.clone(),
            (path, first.file.name.clone()),
            &saved,
            limits,
            today,
        )
    };
    let run_id = import::run(pool, request).await.with_context(|| format!("cannot re-import run {of}"))?;
    feeds::inherit_disposal(pool, of, run_id).await.context("cannot record the file's disposal")?;
    if action == Action::Release {
        // The feed stops saying it holds a file now, not at its next poll.
        let status = runs::head(pool, run_id).await?.map(|r| r.status);
        let refused = matches!(status, Some(Status::Failed | Status::Aborted));
        feeds::settle_after_release(pool, tenant.id, &feed_name, refused)
            .await
            .context("cannot update the feed's status")?;
    }
    if let Some(feed) = &feed
        && let Some(spec) = &feed.spec.report
    {
        let status = runs::head(pool, run_id).await?.map(|r| r.status);
        if status.and_then(crate::notify::category).is_some_and(|c| spec.on.contains(&c)) {
            let lang = spec.language.unwrap_or(tenant.language);
            crate::notify::queue_report(pool, run_id, tenant.id, Some(feed.id), &spec.to, lang, report)
                .await
                .context("cannot queue the report")?;
        }
    }
    Ok(run_id)
}
