//! One poll of a feed (SPEC §5): list the drop folder, choose the files that
//! are ready, download each into the spool while hashing it, import it, and
//! only after the import has committed move, delete or leave the remote file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::FeedStatus;
use crate::feed::{Checked, Disposal};
use crate::import;
use crate::source::{self, RemoteFile, Session, SourceConfig, SourceError};
use crate::store::feeds::{self, FeedRow, PickedFile, Processed};
use crate::store::profiles::{self, SavedProfile};
use crate::store::runs;
use crate::store::tenants::{self, Tenant};

/// What a poll needs from its surroundings.
pub struct PollContext<'a> {
    pub pool: &'a PgPool,
    pub spool_dir: &'a Path,
    pub archive: &'a crate::archive::Archive,
    pub clock: &'a dyn Clock,
    pub limits: crate::configuration::Limits,
    pub report: &'a crate::configuration::ReportSettings,
    /// Cancelled on shutdown: the poll stops between files and during waits.
    pub cancel: CancellationToken,
    /// Connection attempts for transient errors (refused, timed out).
    pub connect_attempts: usize,
    pub retry_delay: Duration,
    /// Connections allowed at once per server (host:port), across feeds.
    pub servers: &'a ServerLimits,
}

/// Caps concurrent connections per server: customers' small FTP servers
/// refuse (or ban) clients that open many sessions at once.
#[derive(Debug)]
pub struct ServerLimits {
    per_server: usize,
    slots: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>>,
}

impl ServerLimits {
    pub fn new(per_server: usize) -> ServerLimits {
        ServerLimits { per_server: per_server.max(1), slots: Default::default() }
    }

    async fn acquire(&self, server: String) -> tokio::sync::OwnedSemaphorePermit {
        let sem = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            std::sync::Arc::clone(
                slots
                    .entry(server)
                    .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(self.per_server))),
            )
        };
        sem.acquire_owned().await.expect("server semaphores are never closed")
    }
}

/// A feed with everything it needs loaded and validated.
pub struct Job {
    pub feed: FeedRow,
    pub tenant: Tenant,
    pub checked: Checked,
    /// The latest version of each slot's profile, in `checked.slots` order.
    pub profiles: Vec<SavedProfile>,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("feed {feed}: {detail}")]
    Config { feed: String, detail: String },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// A file that could not be taken (download or import failed): tried
    /// again next poll, alerted once.
    #[error("file {name}: {detail:#}")]
    File { name: String, identity: String, detail: anyhow::Error },
    /// The archive cannot take the file: nothing is imported without its
    /// archived copy; retried, alerted once a day.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// Another daemon took the feed over (this one stalled past its lease).
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// A multi-file feed's night lacks a required file: nothing was taken;
    /// retried, alerted once a day.
    #[error("feed {feed}: night incomplete, nothing imported: no file matches {}", missing.join(", "))]
    NightIncomplete { feed: String, missing: Vec<String> },
}

impl PollError {
    pub fn code(&self) -> &'static str {
        match self {
            PollError::Source(e) => e.code(),
            PollError::Config { .. } => "feed.config",
            PollError::Internal(_) => "internal",
            PollError::File { .. } => "file.failed",
            PollError::Archive(e) => e.code(),
            PollError::LeaseLost(_) => "lease.lost",
            PollError::NightIncomplete { .. } => "feed.night_incomplete",
        }
    }

    /// The feed's `last_status` after a poll that failed with this error.
    pub fn status(&self) -> FeedStatus {
        FeedStatus::Failed(self.code().to_owned())
    }

    /// What makes two alerts the same: the file for file errors (one alert
    /// per file however many polls fail), else the day.
    pub fn dedupe_scope(&self) -> Option<String> {
        match self {
            PollError::File { identity, .. } => Some(identity.clone()),
            _ => None,
        }
    }

    pub fn is_transient(&self) -> bool {
        match self {
            PollError::Source(e) => e.is_transient(),
            PollError::Config { .. } => false,
            PollError::Internal(_)
            | PollError::File { .. }
            | PollError::Archive(_)
            | PollError::LeaseLost(_)
            | PollError::NightIncomplete { .. } => true,
        }
    }
}

impl Job {
    pub async fn load(pool: &PgPool, feed: FeedRow) -> Result<Job, PollError> {
        let config = |detail: String| PollError::Config { feed: feed.key(), detail };
        let tenant = tenants::find_by_id(pool, feed.tenant_id).await.map_err(|e| config(e.to_string()))?;
        let checked = feed.spec.check(&tenant.timezone).map_err(|p| config(p.join("; ")))?;
        let mut loaded = Vec::with_capacity(checked.slots.len());
        for slot in &checked.slots {
            let profile =
                profiles::latest(pool, tenant.id, &slot.spec.profile).await.map_err(|e| config(e.to_string()))?;
            loaded.push(profile);
        }
        Ok(Job { feed, tenant, checked, profiles: loaded })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FileOutcome {
    /// Imported (status succeeded or succeeded_with_warnings).
    Imported {
        run_id: Uuid,
        status: String,
    },
    /// Refused or aborted: nothing written, moved to the failure folder.
    Refused {
        run_id: Uuid,
        status: String,
    },
    /// A guard held it: nothing written, moved to the failure folder, kept
    /// in the archive until `runs release`.
    Held {
        run_id: Uuid,
    },
    /// Same content as a file already imported for this tenant.
    Duplicate {
        of_run: Option<Uuid>,
    },
    DryRun {
        run_id: Uuid,
    },
    /// Imported earlier; this poll finished moving or deleting it.
    Disposed,
    /// Left for a later poll.
    Waiting {
        reason: String,
    },
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct PollReport {
    pub listed: usize,
    pub files: Vec<(String, FileOutcome)>,
}

impl PollReport {
    pub fn imported(&self) -> usize {
        self.files.iter().filter(|(_, o)| matches!(o, FileOutcome::Imported { .. })).count()
    }

    pub fn refused(&self) -> usize {
        self.files.iter().filter(|(_, o)| matches!(o, FileOutcome::Refused { .. })).count()
    }

    pub fn held(&self) -> usize {
        self.files.iter().filter(|(_, o)| matches!(o, FileOutcome::Held { .. })).count()
    }

    /// The feed's `last_status` after this poll: a refused or held file is
    /// what a person must look at, and `feed list` says so.
    pub fn status(&self) -> FeedStatus {
        match (self.refused(), self.held()) {
            (0, 0) => FeedStatus::Ok,
            (0, _) => FeedStatus::HeldFiles,
            _ => FeedStatus::FailedFiles,
        }
    }
}

/// The server whose connections `scheduler.max_connections_per_server`
/// caps, as `host:port`. The cap protects customers' servers; a local
/// folder is not one, and capping it made a rush of file:// feeds run two
/// at a time while workers were free (bench/rush.sh).
fn capped_server(endpoint: &source::Endpoint) -> Option<String> {
    match endpoint.kind {
        source::Kind::File => None,
        _ => Some(format!("{}:{}", endpoint.host, endpoint.port)),
    }
}

/// The poll's connection to its source and, for a remote server, its slot
/// under `scheduler.max_connections_per_server`. Both are given back while
/// a file is imported (a 2M-row file takes a minute, and the server is not
/// needed until the move after the commit): feeds sharing one SFTP host then
/// import as many files at once as there are free workers, while the cap
/// still bounds the connections open on the customer's server.
struct Link<'a, 'b> {
    ctx: &'a PollContext<'b>,
    cfg: &'a SourceConfig,
    server: Option<String>,
    open: Option<Open>,
}

/// An open session and its slot; the session is declared first so it is
/// closed before the slot is given back.
struct Open {
    session: source::AnySession,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<'a, 'b> Link<'a, 'b> {
    fn new(ctx: &'a PollContext<'b>, cfg: &'a SourceConfig) -> Self {
        Link { ctx, cfg, server: capped_server(&cfg.endpoint), open: None }
    }

    /// The session, opened (slot first) when it is not.
    async fn session(&mut self) -> Result<&mut source::AnySession, SourceError> {
        let open = match self.open.take() {
            Some(open) => open,
            None => {
                let slot = match &self.server {
                    Some(server) => Some(self.ctx.servers.acquire(server.clone()).await),
                    None => None,
                };
                Open { session: connect(self.ctx, self.cfg).await?, _slot: slot }
            }
        };
        Ok(&mut self.open.insert(open).session)
    }

    /// Closes a remote session and gives its slot back; a local folder's
    /// session costs nothing to keep.
    fn release(&mut self) {
        if self.server.is_some() {
            self.open = None;
        }
    }
}

/// Polls the feed once.
pub async fn poll(ctx: &PollContext<'_>, job: &Job, dry_run: bool) -> Result<PollReport, PollError> {
    let span = info_span!("poll", tenant = %job.tenant.slug, feed = %job.feed.name);
    poll_inner(ctx, job, dry_run).instrument(span).await
}

async fn poll_inner(ctx: &PollContext<'_>, job: &Job, dry_run: bool) -> Result<PollReport, PollError> {
    let cfg = SourceConfig::resolve(&job.feed.spec.source)?;
    let mut link = Link::new(ctx, &cfg);
    let mut report = PollReport::default();
    let listing = link.session().await?.list().await?;
    report.listed = listing.len();
    let pickup = &job.feed.spec.pickup;

    let mut ready = ready_files(ctx, job, link.session().await?, &listing, dry_run, &mut report).await?;
    if ready.is_empty() {
        return Ok(report);
    }

    // Stability: size and mtime must not move over stable_secs. A file being
    // uploaded grows; it is left for the next poll.
    if pickup.stable_secs > 0 {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(pickup.stable_secs)) => {}
            _ = ctx.cancel.cancelled() => return Ok(report),
        }
        let again = link.session().await?.list().await?;
        ready.retain(|f| {
            let same = still_listed(&again, f);
            if !same {
                report.files.push((f.name.clone(), FileOutcome::Waiting { reason: "still changing".into() }));
            }
            same
        });
    }

    let ready = if job.checked.slots.len() > 1 {
        let taken_today = imported_today(ctx, job).await?;
        let (night, later) = night_order(job, ready, &taken_today)?;
        for f in later {
            report.files.push((f.name, FileOutcome::Waiting { reason: "the next night is incomplete".into() }));
        }
        night
    } else {
        ready
    };

    crate::spool::create_private_dir(ctx.spool_dir)
        .with_context(|| format!("cannot create the spool folder {}", ctx.spool_dir.display()))?;
    for file in ready {
        if ctx.cancel.is_cancelled() {
            break;
        }
        let outcome = match take(ctx, job, &mut link, &file, dry_run).await {
            Ok(outcome) => outcome,
            Err(PollError::Internal(detail)) => {
                let identity =
                    format!("{}:{}:{}", file.name, file.size, file.mtime.map(|t| t.timestamp()).unwrap_or(0));
                return Err(PollError::File { name: file.name.clone(), identity, detail });
            }
            Err(e) => return Err(e),
        };
        report.files.push((file.name.clone(), outcome));
    }
    Ok(report)
}

/// The listed files a poll may take, oldest first: matching a pattern, not
/// taken before (a committed file whose remote move was cut off is moved
/// now), old enough, within `max_file_bytes`, with their `.done` marker when
/// asked. The others are said in `report`.
async fn ready_files(
    ctx: &PollContext<'_>,
    job: &Job,
    session: &mut source::AnySession,
    listing: &[RemoteFile],
    dry_run: bool,
    report: &mut PollReport,
) -> Result<Vec<RemoteFile>, PollError> {
    let names: std::collections::HashSet<&str> = listing.iter().map(|f| f.name.as_str()).collect();
    let pickup = &job.feed.spec.pickup;
    let now = ctx.clock.now();
    let mut candidates: Vec<RemoteFile> = listing
        .iter()
        .filter(|f| job.checked.slot_of(&f.name).is_some() && !f.name.ends_with(".done"))
        .cloned()
        .map(|mut f| {
            // Servers list whole seconds; so do our records.
            f.mtime = f.mtime.map(|t| t.trunc_subsecs(0));
            f
        })
        .collect();
    candidates.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));

    let mut ready = Vec::new();
    for file in candidates {
        let picked = picked(job, &file);
        if let Some(record) = feeds::find_processed(ctx.pool, &picked).await.context("cannot read processed files")? {
            let retry_of_failure =
                record.outcome == Processed::Failed && record.disposed && job.checked.after_failure != Disposal::Leave;
            if !retry_of_failure {
                if !record.disposed && !dry_run {
                    // The import committed but the daemon stopped before the
                    // remote move: finish it now.
                    let disposal =
                        if record.outcome.is_taken() { &job.checked.after_success } else { &job.checked.after_failure };
                    dispose(session, &file.name, disposal, now).await?;
                    feeds::mark_disposed(ctx.pool, record.id).await.context("cannot mark the file disposed")?;
                    report.files.push((file.name.clone(), FileOutcome::Disposed));
                }
                continue;
            }
        }
        if let Some(mtime) = file.mtime
            && now.signed_duration_since(mtime).num_seconds() < pickup.min_age_secs as i64
        {
            report.files.push((file.name.clone(), FileOutcome::Waiting { reason: "younger than min_age_secs".into() }));
            continue;
        }
        if file.size > ctx.limits.max_file_bytes {
            // Not downloaded: it stays for a person to look at, and each
            // poll says so.
            let reason =
                format!("larger than limits.max_file_bytes ({} > {} bytes)", file.size, ctx.limits.max_file_bytes);
            warn!(file = %file.name, code = crate::import::rules::Rule::FileTooLarge.code(), "file not taken: {reason}");
            report.files.push((file.name.clone(), FileOutcome::Waiting { reason }));
            continue;
        }
        if pickup.done_marker && !names.contains(format!("{}.done", file.name).as_str()) {
            report.files.push((file.name.clone(), FileOutcome::Waiting { reason: "no .done marker yet".into() }));
            continue;
        }
        ready.push(file);
    }
    Ok(ready)
}

async fn connect(ctx: &PollContext<'_>, cfg: &SourceConfig) -> Result<source::AnySession, SourceError> {
    let policy = ExponentialBuilder::default()
        .with_min_delay(ctx.retry_delay)
        .with_max_times(ctx.connect_attempts.saturating_sub(1));
    (|| source::connect(cfg))
        .retry(policy)
        .when(SourceError::is_transient)
        .notify(|e, wait| {
            warn!(code = e.code(), retry_in_ms = wait.as_millis() as u64, "connection failed, retrying: {e}")
        })
        .await
}

/// The slots of a multi-file feed that took a file earlier today (local
/// time of its schedule): tonight's night already has that file.
async fn imported_today(ctx: &PollContext<'_>, job: &Job) -> Result<Vec<bool>, PollError> {
    use chrono::TimeZone;
    let tz = job.checked.schedule.timezone();
    let local = ctx.clock.now().with_timezone(&tz).date_naive().and_time(chrono::NaiveTime::MIN);
    let midnight = tz.from_local_datetime(&local).earliest().map_or_else(|| ctx.clock.now(), |t| t.to_utc());
    let names = feeds::taken_since(ctx.pool, job.feed.id, midnight).await.context("cannot read processed files")?;
    let mut taken = vec![false; job.checked.slots.len()];
    for name in names {
        if let Some(i) = job.checked.slot_of(&name) {
            taken[i] = true;
        }
    }
    Ok(taken)
}

/// Orders the ready files of a multi-file feed night by night: the oldest
/// file of each slot in declared order, then the next ones. With
/// `fail_night`, a first night lacking a required file (not taken earlier
/// today either) is an error and nothing is taken; a later incomplete night
/// waits. Returns the files to take and those that wait.
fn night_order(
    job: &Job,
    ready: Vec<RemoteFile>,
    taken_today: &[bool],
) -> Result<(Vec<RemoteFile>, Vec<RemoteFile>), PollError> {
    let slots = &job.checked.slots;
    let mut by_slot: Vec<std::collections::VecDeque<RemoteFile>> = vec![Default::default(); slots.len()];
    // `ready` is sorted by mtime, then name: each queue is oldest first.
    for f in ready {
        if let Some(i) = job.checked.slot_of(&f.name) {
            by_slot[i].push_back(f);
        }
    }
    let fail_night = job.feed.spec.on_missing_file == crate::feed::OnMissingFile::FailNight;
    let (mut take, mut wait) = (Vec::new(), Vec::new());
    let mut night = 0;
    while by_slot.iter().any(|q| !q.is_empty()) {
        let missing: Vec<String> = slots
            .iter()
            .zip(&by_slot)
            .enumerate()
            .filter(|(i, (slot, q))| slot.spec.required && q.is_empty() && !(night == 0 && taken_today[*i]))
            .map(|(_, (slot, _))| slot.spec.pattern.clone())
            .collect();
        if fail_night && !missing.is_empty() {
            if night == 0 {
                return Err(PollError::NightIncomplete { feed: job.feed.key(), missing });
            }
            wait.extend(by_slot.iter_mut().flat_map(|q| q.drain(..)));
            break;
        }
        if !missing.is_empty() {
            warn!(missing = %missing.join(", "), "night incomplete: importing the files that arrived");
        }
        take.extend(by_slot.iter_mut().filter_map(|q| q.pop_front()));
        night += 1;
    }
    Ok((take, wait))
}

fn picked(job: &Job, file: &RemoteFile) -> PickedFile {
    PickedFile { feed_id: job.feed.id, name: file.name.clone(), size: file.size as i64, mtime: file.mtime }
}

/// Whether `listing` still shows `file` (taken from an earlier listing, its
/// mtime already in whole seconds) with the same size and mtime.
fn still_listed(listing: &[RemoteFile], file: &RemoteFile) -> bool {
    listing
        .iter()
        .any(|g| g.name == file.name && g.size == file.size && g.mtime.map(|t| t.trunc_subsecs(0)) == file.mtime)
}

/// Downloads, imports and disposes of one file.
async fn take(
    ctx: &PollContext<'_>,
    job: &Job,
    link: &mut Link<'_, '_>,
    file: &RemoteFile,
    dry_run: bool,
) -> Result<FileOutcome, PollError> {
    let spool = ctx.spool_dir.join(format!("feed-{}-{}.part", job.feed.id, Uuid::now_v7()));
    let _cleanup = RemoveOnDrop(spool.clone());
    let fetched = match download(job, link.session().await?, file, &spool).await? {
        Ok(fetched) => fetched,
        Err(waiting) => return Ok(waiting),
    };
    let now = ctx.clock.now();
    let picked = picked(job, file);

    if !dry_run
        && let Some(of_run) =
            feeds::content_imported(ctx.pool, job.tenant.id, &fetched.sha256).await.context("cannot check content")?
    {
        return duplicate(ctx, job, link, file, &picked, &fetched.sha256, Some(of_run), now).await;
    }
    link.release();

    // Archived before the import commits: a daemon killed between the
    // commit and the archiving would leave a run that `runs replay` cannot
    // find, as the next poll only finishes the remote move of a committed
    // file. A file that cannot be archived is not imported: the poll fails
    // (`archive.unavailable`, alerted, retried) and the file waits remotely.
    if !dry_run {
        let started = Instant::now();
        ctx.archive.keep(job.tenant.id, &fetched.sha256, &spool).await?;
        debug!(archive = %ctx.archive.location, secs = format!("{:.2}", started.elapsed().as_secs_f64()), "file archived");
    }
    let today = now.with_timezone(&job.checked.schedule.timezone()).date_naive();
    let slot = job.checked.slot_of(&file.name).context("a file taken matches a pattern")?;
    let profile = &job.profiles[slot];
    let request = import::Request {
        dry_run,
        pickup: Some(picked.clone()),
        guards: job.feed.spec.guards(),
        ..import::Request::for_feed(
            job.tenant.clone(),
            job.feed.name.clone(),
            (spool.clone(), file.name.clone()),
            profile,
            ctx.limits,
            today,
        )
    };
    let run_id = match import::run(ctx.pool, request).await {
        Ok(id) => id,
        Err(e) if is_content_conflict(&e) => {
            // Another daemon committed the same content while we imported it.
            return duplicate(ctx, job, link, file, &picked, &fetched.sha256, None, now).await;
        }
        Err(e) => return Err(PollError::Internal(e.context(format!("cannot import {}", file.name)))),
    };
    if dry_run {
        return Ok(FileOutcome::DryRun { run_id });
    }
    after_import(ctx, job, link, file, run_id, &fetched.sha256, now).await
}

/// Downloads the file into `spool` while hashing it; a file that changed
/// meanwhile (size, or listed again with another time) is the inner `Err`,
/// left for the next poll.
async fn download(
    job: &Job,
    session: &mut source::AnySession,
    file: &RemoteFile,
    spool: &Path,
) -> Result<Result<source::Fetched, FileOutcome>, PollError> {
    let started = Instant::now();
    let fetched = session.fetch(&file.name, spool).await?;
    let secs = started.elapsed().as_secs_f64();
    crate::metrics::record_fetch(job.tenant.slug.as_str(), &job.feed.name, fetched.size, secs);
    info!(
        file = %file.name, bytes = fetched.size, secs = format!("{secs:.2}"),
        mib_per_sec = format!("{:.1}", fetched.size as f64 / 1048576.0 / secs.max(1e-6)), "fetched"
    );
    if fetched.size != file.size {
        return Ok(Err(FileOutcome::Waiting {
            reason: format!("changed during download ({} -> {} bytes)", file.size, fetched.size),
        }));
    }
    // Replaced while it was downloaded (same size, new mtime): what was read
    // may mix both versions. Listed again, it is left for the next poll.
    if !still_listed(&session.list().await?, file) {
        return Ok(Err(FileOutcome::Waiting { reason: "changed during download (size or modification time)".into() }));
    }
    Ok(Ok(fetched))
}

/// After a feed file's import committed: its archived copy kept or not, the
/// report queued as `report.on` asks, the remote file moved, deleted or left
/// (`after_success` / `after_failure`), and what became of it.
async fn after_import(
    ctx: &PollContext<'_>,
    job: &Job,
    link: &mut Link<'_, '_>,
    file: &RemoteFile,
    run_id: Uuid,
    sha256: &str,
    now: DateTime<Utc>,
) -> Result<FileOutcome, PollError> {
    let report = runs::head(ctx.pool, run_id).await.context("cannot read the run")?.context("run vanished")?;
    let status = report.status.as_str().to_owned();
    let success = report.status.is_success();
    let held = report.status == crate::report::Status::Held;
    if let Err(e) = ctx.archive.forget(job.tenant.id, sha256, held).await {
        warn!(archive = %ctx.archive.location, "cannot remove the archived copy: {e}");
    }
    info!(
        file = %file.name, %run_id, status = %status, rows = report.counts.rows, inserted = report.counts.inserted,
        updated = report.counts.updated, rejected = report.counts.rejected, "imported"
    );
    if let Some(spec) = &job.feed.spec.report
        && crate::notify::category(report.status).is_some_and(|c| spec.on.contains(&c))
    {
        let lang = spec.language.unwrap_or(job.tenant.language);
        crate::notify::queue_report(ctx.pool, run_id, job.tenant.id, Some(job.feed.id), &spec.to, lang, ctx.report)
            .await
            .context("cannot queue the report")?;
    }
    let disposal = if success { &job.checked.after_success } else { &job.checked.after_failure };
    // Reconnecting can fail like the move itself: either way the run is
    // committed and the next poll finishes the move.
    let moved = match link.session().await {
        Ok(session) => dispose(session, &file.name, disposal, now).await,
        Err(e) => Err(e),
    };
    match moved {
        Ok(()) => {
            if let Some(id) = feeds::processed_of_run(ctx.pool, run_id).await.context("cannot read processed file")? {
                feeds::mark_disposed(ctx.pool, id).await.context("cannot mark the file disposed")?;
            }
            info!(file = %file.name, action = ?disposal, "remote file disposed");
        }
        // The run is committed; the next poll finishes the move.
        Err(e) => warn!(file = %file.name, code = e.code(), "cannot dispose of the remote file yet: {e}"),
    }
    Ok(if success {
        FileOutcome::Imported { run_id, status }
    } else if held {
        FileOutcome::Held { run_id }
    } else {
        FileOutcome::Refused { run_id, status }
    })
}

#[allow(clippy::too_many_arguments)]
async fn duplicate(
    ctx: &PollContext<'_>,
    job: &Job,
    link: &mut Link<'_, '_>,
    file: &RemoteFile,
    picked: &PickedFile,
    sha256: &str,
    of_run: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<FileOutcome, PollError> {
    info!(file = %file.name, sha256, "same content as a file already imported: not imported again");
    let mut conn = ctx.pool.acquire().await.context("cannot reach the database")?;
    let id = feeds::record_processed(&mut conn, job.tenant.id, picked, sha256, of_run, Processed::Duplicate)
        .await
        .context("cannot record the duplicate")?;
    drop(conn);
    if let Ok(session) = link.session().await
        && dispose(session, &file.name, &job.checked.after_success, now).await.is_ok()
    {
        feeds::mark_disposed(ctx.pool, id).await.context("cannot mark the file disposed")?;
    }
    Ok(FileOutcome::Duplicate { of_run })
}

fn is_content_conflict(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        matches!(cause.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::Database(db)) if db.constraint() == Some("processed_files_content"))
    })
}

/// Moves (into a subfolder, with a timestamp suffix when the name is taken),
/// deletes or leaves the remote file, and its `.done` marker with it: left
/// behind, markers would pile up in the drop folder.
async fn dispose(
    session: &mut source::AnySession,
    name: &str,
    disposal: &Disposal,
    now: DateTime<Utc>,
) -> Result<(), SourceError> {
    dispose_one(session, name, disposal, now).await?;
    let marker = format!("{name}.done");
    if !matches!(disposal, Disposal::Leave) && session.exists(&marker).await? {
        dispose_one(session, &marker, disposal, now).await?;
    }
    Ok(())
}

async fn dispose_one(
    session: &mut source::AnySession,
    name: &str,
    disposal: &Disposal,
    now: DateTime<Utc>,
) -> Result<(), SourceError> {
    match disposal {
        Disposal::Leave => Ok(()),
        Disposal::Delete => session.delete(name).await,
        Disposal::MoveTo(dir) => {
            session.ensure_dir(dir).await?;
            let mut target = source::join(dir, name);
            if session.exists(&target).await? {
                target = source::join(dir, &stamped(name, now));
            }
            session.rename(name, &target).await
        }
    }
}

/// `contacts.csv` -> `contacts_20261122T043000Z.csv`.
fn stamped(name: &str, at: DateTime<Utc>) -> String {
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}_{stamp}.{ext}"),
        _ => format!("{name}_{stamp}"),
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_moved_file_whose_name_is_taken_gets_a_timestamp_suffix() {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 4, 30, 0).unwrap();
        assert_eq!(stamped("contacts.csv", at), "contacts_20261122T043000Z.csv");
        assert_eq!(stamped("README", at), "README_20261122T043000Z");
    }

    #[test]
    fn connections_are_capped_per_remote_server_and_a_local_folder_is_not_one() {
        let endpoint = |url: &str| source::Endpoint::parse(url).expect("the url parses");
        assert_eq!(capped_server(&endpoint("sftp://acme@drop.example.com/in")).as_deref(), Some("drop.example.com:22"));
        assert_eq!(
            capped_server(&endpoint("ftps://acme@drop.example.com:2121/in")).as_deref(),
            Some("drop.example.com:2121")
        );
        assert_eq!(capped_server(&endpoint("file:///srv/drop/acme")), None);
    }
}
