//! Feeds in PostgreSQL: the registry, the scheduler's claims (leases taken
//! with `FOR UPDATE SKIP LOCKED`) and the record of files taken.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::domain::FeedStatus;
use crate::feed::FeedSpec;

#[derive(Debug, Clone)]
pub struct FeedRow {
    pub id: i64,
    pub tenant_id: i64,
    pub tenant: String,
    pub name: String,
    pub spec: FeedSpec,
    pub paused: bool,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_status: Option<FeedStatus>,
    pub last_error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl FeedRow {
    /// `tenant/name`, as the CLI and logs show a feed.
    pub fn key(&self) -> String {
        format!("{}/{}", self.tenant, self.name)
    }
}

const COLUMNS: &str = "f.id, f.tenant_id, t.slug, f.name, f.spec, f.paused, f.next_run_at, f.last_run_at,
    f.last_status, f.last_error, f.lease_owner, f.lease_expires_at";

fn from_row(r: &PgRow) -> sqlx::Result<FeedRow> {
    let spec: String = r.try_get(4)?;
    let spec: FeedSpec = serde_json::from_str(&spec).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let last_status: Option<String> = r.try_get(8)?;
    let last_status = last_status
        .map(|s| FeedStatus::parse(&s))
        .transpose()
        .map_err(|e| sqlx::Error::ColumnDecode { index: "last_status".into(), source: Box::new(e) })?;
    Ok(FeedRow {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        tenant: r.try_get(2)?,
        name: r.try_get(3)?,
        spec,
        paused: r.try_get(5)?,
        next_run_at: r.try_get(6)?,
        last_run_at: r.try_get(7)?,
        last_status,
        last_error: r.try_get(9)?,
        lease_owner: r.try_get(10)?,
        lease_expires_at: r.try_get(11)?,
    })
}

/// What `feed apply` did to one feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
}

/// Creates or updates a feed. Re-applying an identical spec changes nothing;
/// a changed spec takes `next_run_at` (the schedule may have changed).
pub async fn apply(
    pool: &PgPool,
    tenant_id: i64,
    spec: &FeedSpec,
    next_run_at: DateTime<Utc>,
) -> sqlx::Result<Applied> {
    let body = serde_json::to_string(spec).expect("a feed spec serialises to JSON");
    let row = sqlx::query(
        "INSERT INTO feeds (tenant_id, name, spec, next_run_at, missing_alert_by, timezone)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, name) DO UPDATE
            SET spec = excluded.spec, next_run_at = excluded.next_run_at, updated_at = now(),
                missing_alert_by = excluded.missing_alert_by, timezone = excluded.timezone
            WHERE feeds.spec IS DISTINCT FROM excluded.spec
         RETURNING (xmax = 0) AS inserted",
    )
    .bind(tenant_id)
    .bind(&spec.name)
    .bind(body)
    .bind(next_run_at)
    .bind(spec.missing_alert_by())
    .bind(spec.schedule.timezone.as_deref())
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => Applied::Unchanged,
        Some(r) if r.get::<bool, _>("inserted") => Applied::Created,
        Some(_) => Applied::Updated,
    })
}

/// A feed whose `expect_file_by` has passed today with no file taken since
/// local midnight, and no `file.missing` alert queued for that day yet.
pub struct LateFeed {
    pub id: i64,
    pub pattern: String,
    pub by: chrono::NaiveTime,
    pub timezone: String,
    pub local_date: chrono::NaiveDate,
    /// The local day as the alert's scope (`alert_dedupe_key`).
    pub day: String,
}

/// The late feeds, found by one query on the indexed `missing_alert_by`:
/// its cost follows the feeds that expect a file, and is nil for the ones
/// already alerted today.
pub async fn late(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<Vec<LateFeed>> {
    let rows = sqlx::query(
        "SELECT f.id, f.spec, f.missing_alert_by, z.tz, (l.local)::date AS local_date,
                to_char(l.local, 'YYYY-MM-DD') AS day
         FROM feeds f JOIN tenants t ON t.id = f.tenant_id
         CROSS JOIN LATERAL (SELECT coalesce(f.timezone, t.timezone) AS tz) z
         CROSS JOIN LATERAL (SELECT $1::timestamptz AT TIME ZONE z.tz AS local) l
         WHERE f.missing_alert_by IS NOT NULL AND NOT f.paused
           AND l.local::time >= f.missing_alert_by
           AND NOT EXISTS (SELECT 1 FROM processed_files p
                           WHERE p.feed_id = f.id AND p.recorded_at >= date_trunc('day', l.local) AT TIME ZONE z.tz)
           -- no file.missing alert queued for the local day yet
           AND NOT EXISTS (SELECT 1 FROM notifications n
                           WHERE n.dedupe_key = alert_dedupe_key(f.id, 'file.missing', to_char(l.local, 'YYYY-MM-DD')))",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let spec: String = r.get("spec");
        let pattern = serde_json::from_str::<FeedSpec>(&spec)
            .map(|s| s.slots().into_iter().map(|f| f.pattern).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        out.push(LateFeed {
            id: r.get("id"),
            pattern,
            by: r.get("missing_alert_by"),
            timezone: r.get("tz"),
            local_date: r.get("local_date"),
            day: r.get("day"),
        });
    }
    Ok(out)
}

pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<FeedRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feeds f JOIN tenants t ON t.id = f.tenant_id ORDER BY t.slug, f.name"
    )))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn find(pool: &PgPool, tenant: &str, name: &str) -> sqlx::Result<Option<FeedRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feeds f JOIN tenants t ON t.id = f.tenant_id WHERE t.slug = $1 AND f.name = $2"
    )))
    .bind(tenant)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn find_by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<FeedRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM feeds f JOIN tenants t ON t.id = f.tenant_id WHERE f.id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn set_paused(pool: &PgPool, id: i64, paused: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE feeds SET paused = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(paused)
        .execute(pool)
        .await?;
    Ok(())
}

/// Claims up to `limit` due feeds for `owner` until `now + lease`. Feeds
/// locked by another claimant are skipped, not waited for; an expired lease
/// (its daemon died) is taken over.
pub async fn claim_due(
    pool: &PgPool,
    now: DateTime<Utc>,
    owner: &str,
    lease_secs: f64,
    limit: i64,
) -> sqlx::Result<Vec<FeedRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH ranked AS (
            -- Fairness: each tenant's oldest due feed first, so one tenant's
            -- hundreds of due feeds never starve another tenant's one.
            SELECT id, row_number() OVER (PARTITION BY tenant_id ORDER BY next_run_at, id) AS turn
            FROM feeds
            WHERE NOT paused AND next_run_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at < $1)
        ), due AS (
            SELECT f.id FROM feeds f JOIN ranked r ON r.id = f.id
            WHERE NOT f.paused AND f.next_run_at <= $1 AND (f.lease_expires_at IS NULL OR f.lease_expires_at < $1)
            ORDER BY r.turn, f.next_run_at, f.id
            LIMIT $4
            FOR UPDATE OF f SKIP LOCKED
        ), claimed AS (
            UPDATE feeds f SET lease_owner = $2, lease_expires_at = $1 + make_interval(secs => $3)
            FROM due WHERE f.id = due.id
            RETURNING f.*
        )
        SELECT {COLUMNS} FROM claimed f JOIN tenants t ON t.id = f.tenant_id ORDER BY f.next_run_at, f.id"
    )))
    .bind(now)
    .bind(owner)
    .bind(lease_secs)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Claims one feed now, whatever its schedule (`feed run`). Fails when
/// another daemon holds a live lease on it.
pub async fn claim_one(
    pool: &PgPool,
    id: i64,
    now: DateTime<Utc>,
    owner: &str,
    lease_secs: f64,
) -> sqlx::Result<Option<FeedRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH claimed AS (
            UPDATE feeds f SET lease_owner = $2, lease_expires_at = $1 + make_interval(secs => $3)
            WHERE f.id = $4 AND (f.lease_expires_at IS NULL OR f.lease_expires_at < $1 OR f.lease_owner = $2)
            RETURNING f.*
        )
        SELECT {COLUMNS} FROM claimed f JOIN tenants t ON t.id = f.tenant_id"
    )))
    .bind(now)
    .bind(owner)
    .bind(lease_secs)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Extends a lease still held by `owner`; false when it was lost.
pub async fn heartbeat(pool: &PgPool, id: i64, owner: &str, now: DateTime<Utc>, lease_secs: f64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE feeds SET lease_expires_at = $3 + make_interval(secs => $4) WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(now)
    .bind(lease_secs)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a claim: records the poll's outcome and, when given, the next run.
pub async fn complete(
    pool: &PgPool,
    id: i64,
    owner: &str,
    now: DateTime<Utc>,
    next_run_at: Option<DateTime<Utc>>,
    status: &FeedStatus,
    error: Option<&str>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE feeds SET next_run_at = coalesce($3, next_run_at), last_run_at = $4, last_status = $5, last_error = $6,
            lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(owner)
    .bind(next_run_at)
    .bind(now)
    .bind(status.as_str())
    .bind(error)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Drops every lease `owner` holds (clean shutdown): the feeds are due again
/// for any daemon at once.
pub async fn release_all(pool: &PgPool, owner: &str) -> sqlx::Result<u64> {
    let done = sqlx::query("UPDATE feeds SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = $1")
        .bind(owner)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// A remote file as it was when taken.
#[derive(Debug, Clone)]
pub struct PickedFile {
    pub feed_id: i64,
    pub name: String,
    pub size: i64,
    pub mtime: Option<DateTime<Utc>>,
}

/// What became of a taken file (`processed_files.outcome`), written to SQL
/// here only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// Its rows committed (the content is then never imported again).
    Imported,
    /// A guard held it: nothing written until a person releases it.
    Held,
    /// Refused or aborted: nothing written.
    Failed,
    /// The same content was already imported for the tenant.
    Duplicate,
}

impl Processed {
    pub fn as_str(self) -> &'static str {
        match self {
            Processed::Imported => "imported",
            Processed::Held => "held",
            Processed::Failed => "failed",
            Processed::Duplicate => "duplicate",
        }
    }

    fn parse(s: &str) -> Result<Processed, sqlx::Error> {
        match s {
            "imported" => Ok(Processed::Imported),
            "held" => Ok(Processed::Held),
            "failed" => Ok(Processed::Failed),
            "duplicate" => Ok(Processed::Duplicate),
            other => Err(sqlx::Error::Decode(format!("unknown processed-file outcome {other:?}").into())),
        }
    }

    /// The outcome of the file of a run that ended with `status`.
    pub fn of(status: crate::domain::run::Status) -> Processed {
        match status {
            crate::domain::run::Status::Held => Processed::Held,
            s if s.is_success() => Processed::Imported,
            _ => Processed::Failed,
        }
    }

    /// Its rows are in (or were, by an earlier file): `after_success` applies.
    pub fn is_taken(self) -> bool {
        matches!(self, Processed::Imported | Processed::Duplicate)
    }
}

/// The latest record of a file with this identity (name, size, mtime).
#[derive(Debug, Clone)]
pub struct ProcessedRecord {
    pub id: i64,
    pub outcome: Processed,
    pub run_id: Option<Uuid>,
    pub disposed: bool,
}

pub async fn find_processed(pool: &PgPool, file: &PickedFile) -> sqlx::Result<Option<ProcessedRecord>> {
    let row = sqlx::query(
        "SELECT id, outcome, run_id, disposed_at IS NOT NULL AS disposed FROM processed_files
         WHERE feed_id = $1 AND name = $2 AND size = $3 AND mtime IS NOT DISTINCT FROM $4
         ORDER BY id DESC LIMIT 1",
    )
    .bind(file.feed_id)
    .bind(&file.name)
    .bind(file.size)
    .bind(file.mtime)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let outcome = Processed::parse(r.get(1))?;
        Ok(ProcessedRecord { id: r.get(0), outcome, run_id: r.get(2), disposed: r.get(3) })
    })
    .transpose()
}

/// Names of the files the feed imported (or found already imported) since `since`.
pub async fn taken_since(pool: &PgPool, feed_id: i64, since: DateTime<Utc>) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT name FROM processed_files
         WHERE feed_id = $1 AND recorded_at >= $2 AND outcome IN ('imported', 'duplicate')",
    )
    .bind(feed_id)
    .bind(since)
    .fetch_all(pool)
    .await
}

/// The run that imported this content for the tenant, if any.
pub async fn content_imported(pool: &PgPool, tenant_id: i64, sha256: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "SELECT run_id FROM processed_files WHERE tenant_id = $1 AND sha256 = $2 AND outcome = 'imported'",
    )
    .bind(tenant_id)
    .bind(sha256)
    .fetch_optional(pool)
    .await
    .map(Option::flatten)
}

/// Records a taken file; called inside the import's own transaction so the
/// record and the rows commit together.
pub async fn record_processed(
    conn: &mut PgConnection,
    tenant_id: i64,
    file: &PickedFile,
    sha256: &str,
    run_id: Option<Uuid>,
    outcome: Processed,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO processed_files (tenant_id, feed_id, name, size, mtime, sha256, run_id, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(tenant_id)
    .bind(file.feed_id)
    .bind(&file.name)
    .bind(file.size)
    .bind(file.mtime)
    .bind(sha256)
    .bind(run_id)
    .bind(outcome.as_str())
    .fetch_one(conn)
    .await
}

pub async fn mark_disposed(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE processed_files SET disposed_at = now() WHERE id = $1").bind(id).execute(pool).await?;
    Ok(())
}

/// The id of the processed record of a run (set by the import).
pub async fn processed_of_run(pool: &PgPool, run_id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT id FROM processed_files WHERE run_id = $1").bind(run_id).fetch_optional(pool).await
}

/// The remote file a run imported (or held), as it was listed when taken.
pub async fn picked_of_run(pool: &PgPool, run_id: Uuid) -> sqlx::Result<Option<PickedFile>> {
    let row = sqlx::query("SELECT feed_id, name, size, mtime FROM processed_files WHERE run_id = $1")
        .bind(run_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| PickedFile { feed_id: r.get(0), name: r.get(1), size: r.get(2), mtime: r.get(3) }))
}

/// A re-import of a file that was already moved or deleted needs no
/// disposal: its record takes the first run's.
pub async fn inherit_disposal(pool: &PgPool, of_run: Uuid, by_run: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE processed_files p SET disposed_at = o.disposed_at
         FROM processed_files o WHERE o.run_id = $1 AND p.run_id = $2",
    )
    .bind(of_run)
    .bind(by_run)
    .execute(pool)
    .await?;
    Ok(())
}

/// Feeds due and unclaimed (the queue depth), and those among them due for
/// over a minute (overdue: workers cannot keep up, or no daemon runs).
pub async fn backlog(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE next_run_at < $1 - interval '60 seconds')
         FROM feeds WHERE NOT paused AND next_run_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at < $1)",
    )
    .bind(now)
    .fetch_one(pool)
    .await
}

/// After a held run of feed `feed` (tenant `tenant_id`) was released: while
/// no other held run of the feed waits, the feed no longer says it holds a
/// file. Its status becomes what the release did (`failed_files` when the
/// released file was refused, else `ok`), at once rather than at the next
/// poll.
pub async fn settle_after_release(pool: &PgPool, tenant_id: i64, feed: &str, refused: bool) -> sqlx::Result<bool> {
    let status = if refused { FeedStatus::FailedFiles } else { FeedStatus::Ok };
    let done = sqlx::query(
        "UPDATE feeds f SET last_status = $3, last_error = NULL
         WHERE f.tenant_id = $1 AND f.name = $2 AND f.last_status = 'held_files'
           AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.tenant_id = f.tenant_id AND r.feed = f.name
                           AND r.status = 'held' AND r.rerun_by IS NULL)",
    )
    .bind(tenant_id)
    .bind(feed)
    .bind(status.to_string())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
