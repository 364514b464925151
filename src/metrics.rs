//! Prometheus metrics (`/metrics`): runs, rows, bytes, durations, feed
//! freshness, scheduler backlog. Names follow Prometheus conventions: a
//! `dropfeed_` prefix, `_total` counters, base units (seconds, bytes).

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::report::{Counts, Status};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns its handle, or
/// `None` if another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Imports take from milliseconds to minutes; fetches likewise.
            let buckets = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &buckets)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Counts one finished run and its rows (`feed` is `None` for manual imports).
pub fn record_run(tenant: &str, feed: Option<&str>, status: Status, c: &Counts, seconds: f64) {
    let tenant = tenant.to_owned();
    let feed = feed.unwrap_or("manual").to_owned();
    ::metrics::counter!("dropfeed_runs_total", "tenant" => tenant.clone(), "feed" => feed.clone(), "status" => status.as_str())
        .increment(1);
    for (outcome, n) in [
        ("inserted", c.inserted),
        ("updated", c.updated),
        ("unchanged", c.unchanged),
        ("skipped_existing", c.skipped_existing),
        ("skipped_new", c.skipped_new),
        ("rejected", c.rejected),
    ] {
        if n > 0 {
            ::metrics::counter!("dropfeed_rows_total", "tenant" => tenant.clone(), "outcome" => outcome)
                .increment(n as u64);
        }
    }
    ::metrics::histogram!("dropfeed_import_duration_seconds", "tenant" => tenant, "feed" => feed).record(seconds);
}

pub fn record_fetch(tenant: &str, feed: &str, bytes: u64, seconds: f64) {
    ::metrics::counter!("dropfeed_fetched_bytes_total", "tenant" => tenant.to_owned(), "feed" => feed.to_owned())
        .increment(bytes);
    ::metrics::histogram!("dropfeed_fetch_duration_seconds", "tenant" => tenant.to_owned(), "feed" => feed.to_owned())
        .record(seconds);
}

/// A poll that ended without error.
pub fn record_feed_success(tenant: &str, feed: &str, at: DateTime<Utc>) {
    ::metrics::gauge!("dropfeed_feed_last_success_timestamp_seconds", "tenant" => tenant.to_owned(), "feed" => feed.to_owned())
        .set(at.timestamp() as f64);
}

pub fn record_poll_failure(tenant: &str, feed: &str, code: &str) {
    ::metrics::counter!("dropfeed_poll_failures_total", "tenant" => tenant.to_owned(), "feed" => feed.to_owned(), "code" => code.to_owned())
        .increment(1);
}

/// One scheduler tick: the claim query and the spawning of what it claimed.
/// Its cost must follow the number of due feeds, not of registered ones.
pub fn record_tick(seconds: f64, claimed: usize) {
    ::metrics::histogram!("dropfeed_scheduler_tick_seconds").record(seconds);
    ::metrics::counter!("dropfeed_scheduler_claimed_total").increment(claimed as u64);
}

/// A lease taken over by another daemon while this one was polling.
pub fn record_claim_lost() {
    ::metrics::counter!("dropfeed_claims_lost_total").increment(1);
}

pub fn record_mail(sent: usize, failed: usize) {
    ::metrics::counter!("dropfeed_mails_sent_total").increment(sent as u64);
    ::metrics::counter!("dropfeed_mails_failed_total").increment(failed as u64);
}

/// Scheduler backlog from the database: feeds due and unclaimed (queue
/// depth), and those among them due for over a minute (overdue: workers
/// cannot keep up, or no daemon is running).
pub async fn refresh_backlog(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<()> {
    let (due, overdue) = crate::store::feeds::backlog(pool, now).await?;
    ::metrics::gauge!("dropfeed_queue_depth").set(due as f64);
    ::metrics::gauge!("dropfeed_feeds_overdue").set(overdue as f64);
    let pending = crate::store::notifications::pending(pool).await?;
    ::metrics::gauge!("dropfeed_mails_pending").set(pending as f64);
    Ok(())
}
