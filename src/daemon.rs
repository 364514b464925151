//! `dropfeed run`: the scheduler claims due feeds in PostgreSQL (leases, so
//! several daemons share the work and a dead one's feeds are taken over), a
//! bounded pool of workers polls them, and an HTTP endpoint answers probes.
//! Shutdown is a future passed in (SIGTERM/SIGINT by `cli::serve`, anything
//! in tests).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::configuration::SchedulerSettings;
use crate::mail::Mailer;
use crate::notify;
use crate::pickup::{self, Job, PollContext, PollError, PollReport, ServerLimits};
use crate::store::feeds::{self, FeedRow};

/// Everything a daemon runs with.
#[derive(Clone)]
pub struct Daemon {
    pub pool: PgPool,
    pub clock: Arc<dyn Clock>,
    /// This daemon's name in leases: host, pid and a random part.
    pub owner: String,
    pub workers: usize,
    pub spool_dir: PathBuf,
    /// Where the files taken are kept for release and replay.
    pub archive: crate::archive::Archive,
    pub limits: crate::configuration::Limits,
    pub report: crate::configuration::ReportSettings,
    pub scheduler: SchedulerSettings,
    pub servers: Arc<ServerLimits>,
    /// Sends queued reports and alerts; `None`: they stay queued.
    pub mailer: Option<Mailer>,
}

impl Daemon {
    /// A daemon as the configuration describes it, without a mailer.
    pub fn from_settings(pool: &PgPool, settings: &crate::configuration::Settings) -> anyhow::Result<Daemon> {
        Ok(Daemon {
            pool: pool.clone(),
            clock: Arc::new(crate::clock::SystemClock),
            owner: crate::store::leases::owner_name(),
            workers: settings.workers,
            spool_dir: settings.spool_dir.clone(),
            archive: settings.archive()?,
            limits: settings.limits,
            report: settings.report.clone(),
            scheduler: settings.scheduler.clone(),
            servers: Arc::new(crate::pickup::ServerLimits::new(settings.scheduler.max_connections_per_server)),
            mailer: None,
        })
    }
}

/// What one scheduler tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    Claimed(usize),
    Idle,
}

impl Daemon {
    /// Runs the scheduler until `shutdown` completes, then stops taking work,
    /// lets polls in hand finish within the grace period and releases its leases.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(self.workers.max(1)));
        // Held for the daemon's life: a second daemon on this folder would
        // clean away this one's downloads.
        let _spool = crate::spool::Spool::claim(&self.spool_dir, &self.owner).context("cannot start")?;
        info!(owner = %self.owner, workers = self.workers, archive = %self.archive.location, "scheduler started");
        let housekeeping = tokio::spawn({
            let daemon = self.clone();
            let cancel = cancel.clone();
            async move { daemon.housekeeping(cancel).await }
        });
        tokio::pin!(shutdown);
        loop {
            let started = std::time::Instant::now();
            let free = permits.available_permits();
            let mut busy = false;
            match self.tick(&permits, &tracker, &cancel).await {
                Ok(Tick::Claimed(n)) => {
                    crate::metrics::record_tick(started.elapsed().as_secs_f64(), n);
                    busy = n == free;
                }
                Ok(Tick::Idle) => crate::metrics::record_tick(started.elapsed().as_secs_f64(), 0),
                Err(e) => error!("scheduler tick failed: {e:#}"),
            }
            // A tick that filled every worker may have left due feeds behind
            // (1,000 tenants at 03:00): the next one runs as soon as a worker
            // is free, not a whole tick later.
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(Duration::from_millis(self.scheduler.tick_ms)) => {}
                _ = permits.acquire(), if busy => {}
            }
        }
        info!(in_flight = tracker.len(), "shutting down: no new work");
        cancel.cancel();
        tracker.close();
        let grace = Duration::from_secs(self.scheduler.shutdown_grace_secs);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            warn!("polls still running after the grace period are abandoned; their files are taken again next time");
        }
        let _ = housekeeping.await;
        let released = feeds::release_all(&self.pool, &self.owner).await.context("cannot release leases")?;
        info!(released, "scheduler stopped");
        Ok(())
    }

    /// Mail delivery and the missing-file check, every few seconds until cancelled.
    async fn housekeeping(&self, cancel: CancellationToken) {
        let mut last_missing_check = None;
        let mut last_purge: Option<std::time::Instant> = None;
        loop {
            if last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                match self.archive.purge(&self.pool, &self.owner, Utc::now()).await {
                    Ok(None | Some(0)) => {}
                    Ok(Some(n)) => info!(files = n, days = self.archive.days, "purged old files from the archive"),
                    Err(e) => warn!(archive = %self.archive.location, "cannot purge the archive: {e:#}"),
                }
                last_purge = Some(std::time::Instant::now());
            }
            self.deliver_mail().await;
            let now = self.clock.now();
            if last_missing_check.is_none_or(|t: chrono::DateTime<Utc>| now - t >= chrono::Duration::seconds(30)) {
                if let Err(e) = notify::check_missing(&self.pool, now).await {
                    warn!("missing-file check failed: {e:#}");
                }
                if let Err(e) = crate::metrics::refresh_backlog(&self.pool, now).await {
                    warn!("cannot measure the scheduler backlog: {e}");
                }
                last_missing_check = Some(now);
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        // Reports of the last imports go out before the daemon stops.
        self.deliver_mail().await;
    }

    /// Sends what is due in the outbox, if a mailer is configured.
    pub async fn deliver_mail(&self) {
        if let Some(mailer) = &self.mailer {
            match notify::deliver_due(&self.pool, mailer, self.clock.now(), 20, None).await {
                Ok(d) if d.sent + d.retried + d.failed > 0 => {
                    info!(sent = d.sent, retried = d.retried, failed = d.failed, "mail delivery")
                }
                Ok(_) => {}
                Err(e) => warn!("mail delivery failed: {e:#}"),
            }
        }
    }

    /// Claims as many due feeds as there are idle workers and starts them.
    pub async fn tick(
        &self,
        permits: &Arc<Semaphore>,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Tick> {
        let free = permits.available_permits();
        if free == 0 || cancel.is_cancelled() {
            return Ok(Tick::Idle);
        }
        let claimed =
            feeds::claim_due(&self.pool, self.clock.now(), &self.owner, self.scheduler.lease_secs as f64, free as i64)
                .await
                .context("cannot claim due feeds")?;
        if claimed.is_empty() {
            return Ok(Tick::Idle);
        }
        let n = claimed.len();
        for feed in claimed {
            let permit = Arc::clone(permits).try_acquire_owned().context("worker count changed under the scheduler")?;
            let daemon = self.clone();
            let cancel = cancel.child_token();
            tracker.spawn(async move {
                daemon.work(feed, cancel).await;
                drop(permit);
            });
        }
        Ok(Tick::Claimed(n))
    }

    /// Polls one claimed feed, renewing its lease, then records the outcome
    /// and its next run.
    async fn work(&self, feed: FeedRow, cancel: CancellationToken) {
        let key = feed.key();
        let (tenant, name) = (feed.tenant.clone(), feed.name.clone());
        let id = feed.id;
        let heartbeat = self.heartbeat(id, cancel.clone());
        let result = tokio::select! {
            r = self.poll_feed(feed, &self.spool_dir, cancel.clone(), false) => r,
            lost = heartbeat => Err((PollError::LeaseLost(lost), None)),
        };
        let now = self.clock.now();
        let (status, error, next) = match &result {
            Ok((report, next)) => (report.status(), None, *next),
            Err((e, next)) => {
                let retry = now + chrono::Duration::seconds(self.scheduler.retry_after_secs as i64);
                let next = if e.is_transient() { next.map(|n| n.min(retry)).or(Some(retry)) } else { *next };
                (e.status(), Some(e.to_string()), next)
            }
        };
        match &result {
            Ok(_) => crate::metrics::record_feed_success(&tenant, &name, now),
            Err((e, _)) => {
                crate::metrics::record_poll_failure(&tenant, &name, e.code());
                if e.code() == "lease.lost" {
                    crate::metrics::record_claim_lost();
                }
            }
        }
        match &result {
            Ok((report, _)) if report.imported() + report.refused() + report.held() > 0 => {
                info!(
                    feed = %key, imported = report.imported(), refused = report.refused(), held = report.held(),
                    "poll done"
                )
            }
            Ok(_) => {}
            Err((e, _)) => {
                error!(feed = %key, code = e.code(), "poll failed: {e}");
                if let Err(err) =
                    notify::queue_alert(&self.pool, id, e.code(), &e.to_string(), e.dedupe_scope(), now).await
                {
                    warn!(feed = %key, "cannot queue the alert: {err:#}");
                }
            }
        }
        if let Err(e) = feeds::complete(&self.pool, id, &self.owner, now, next, &status, error.as_deref()).await {
            error!(feed = %key, "cannot record the poll outcome: {e}");
        }
    }

    /// Loads and polls a feed; returns the report (or error) with the next
    /// scheduled run computed from now, so missed slots collapse into one.
    async fn poll_feed(
        &self,
        feed: FeedRow,
        spool_dir: &std::path::Path,
        cancel: CancellationToken,
        dry_run: bool,
    ) -> Result<(PollReport, Option<chrono::DateTime<Utc>>), (PollError, Option<chrono::DateTime<Utc>>)> {
        let job = match Job::load(&self.pool, feed).await {
            Ok(job) => job,
            Err(e) => return Err((e, None)),
        };
        let next = job.checked.schedule.next_after(self.clock.now());
        let ctx = PollContext {
            pool: &self.pool,
            spool_dir,
            archive: &self.archive,
            clock: self.clock.as_ref(),
            limits: self.limits,
            report: &self.report,
            cancel,
            connect_attempts: self.scheduler.connect_attempts,
            retry_delay: Duration::from_secs(1),
            servers: &self.servers,
        };
        pickup::poll(&ctx, &job, dry_run).await.map(|r| (r, next)).map_err(|e| (e, next))
    }

    /// Renews the lease every third of its length; returns only when it was
    /// lost (another daemon took the feed) or cannot be renewed.
    async fn heartbeat(&self, id: i64, cancel: CancellationToken) -> String {
        let every = Duration::from_secs((self.scheduler.lease_secs / 3).max(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = cancel.cancelled() => {
                    // Keep the lease while the poll winds down.
                    tokio::time::sleep(Duration::from_secs(self.scheduler.shutdown_grace_secs + 1)).await;
                }
            }
            match feeds::heartbeat(&self.pool, id, &self.owner, self.clock.now(), self.scheduler.lease_secs as f64)
                .await
            {
                Ok(true) => {}
                Ok(false) => return "another daemon holds the feed".into(),
                Err(e) => warn!("cannot renew lease: {e}"),
            }
        }
    }

    /// `feed run`: one poll of one feed now, in the foreground, through the
    /// same claim and poll as the scheduler. The schedule is left as it was.
    pub async fn run_once(&self, feed: &FeedRow, dry_run: bool) -> anyhow::Result<PollReport> {
        // Its own sub-folder of the spool: a daemon on this host cleans only
        // its own downloads, and this poll only its own.
        let spool = crate::spool::Spool::private(&self.spool_dir).context("cannot prepare the spool")?;
        let claimed =
            feeds::claim_one(&self.pool, feed.id, self.clock.now(), &self.owner, self.scheduler.lease_secs as f64)
                .await?
                .with_context(|| {
                    format!(
                        "feed {} is being polled by {}",
                        feed.key(),
                        feed.lease_owner.as_deref().unwrap_or("another daemon")
                    )
                })?;
        let result = self.poll_feed(claimed, spool.dir(), CancellationToken::new(), dry_run).await;
        let now = self.clock.now();
        let (status, error) = match &result {
            Ok((report, _)) => (report.status(), None),
            Err((e, _)) => (e.status(), Some(e.to_string())),
        };
        feeds::complete(&self.pool, feed.id, &self.owner, now, None, &status, error.as_deref()).await?;
        result.map(|(r, _)| r).map_err(|(e, _)| anyhow::Error::new(e))
    }
}
