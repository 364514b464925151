//! Runs and their per-line messages: the record of every import.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::cursor::{self, Batches};
use crate::domain::run::{Columns, Counts, Examples, FileInfo, Message, ProfileRef, Report, Status};

/// The facts known when a run starts.
pub struct NewRun<'a> {
    pub id: Uuid,
    pub tenant_id: i64,
    pub feed: Option<&'a str>,
    pub dry_run: bool,
    pub file: &'a FileInfo,
    pub profile: Option<&'a ProfileRef>,
    pub options: serde_json::Value,
    pub started_at: DateTime<Utc>,
    /// The run whose file this one re-imports.
    pub rerun_of: Option<Uuid>,
}

/// What a run ended with.
pub struct Finish<'a> {
    pub status: Status,
    pub counts: &'a Counts,
    pub by_code: &'a BTreeMap<String, i64>,
    pub messages_truncated: bool,
    pub error: Option<&'a str>,
    pub columns: &'a Columns,
    pub profile: Option<&'a ProfileRef>,
    /// The file's header line (for the rejects file).
    pub header: Option<&'a [String]>,
}

pub async fn insert(conn: &mut PgConnection, run: &NewRun<'_>, status: Status) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO runs (id, tenant_id, feed, status, dry_run, profile_name, profile_version,
            file_name, file_size, file_sha256, options, started_at, rerun_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(run.id)
    .bind(run.tenant_id)
    .bind(run.feed)
    .bind(status.as_str())
    .bind(run.dry_run)
    .bind(run.profile.map(|p| p.name.as_str()))
    .bind(run.profile.map(|p| p.version))
    .bind(&run.file.name)
    .bind(run.file.size)
    .bind(&run.file.sha256)
    .bind(&run.options)
    .bind(run.started_at)
    .bind(run.rerun_of)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn finish(conn: &mut PgConnection, id: Uuid, f: &Finish<'_>) -> sqlx::Result<()> {
    let c = f.counts;
    sqlx::query(
        "UPDATE runs SET status = $2, finished_at = clock_timestamp(), rows = $3, inserted = $4, updated = $5,
            unchanged = $6, skipped_existing = $7, skipped_new = $8, rejected = $9, warnings = $10,
            by_code = $11, messages_truncated = $12, error = $13, columns = $14,
            profile_name = coalesce($15, profile_name), profile_version = coalesce($16, profile_version),
            header = $17, removed_from_list = $18, organisations_created = $19
         WHERE id = $1",
    )
    .bind(id)
    .bind(f.status.as_str())
    .bind(c.rows)
    .bind(c.inserted)
    .bind(c.updated)
    .bind(c.unchanged)
    .bind(c.skipped_existing)
    .bind(c.skipped_new)
    .bind(c.rejected)
    .bind(c.warnings)
    .bind(serde_json::to_value(f.by_code).unwrap_or_default())
    .bind(f.messages_truncated)
    .bind(f.error)
    .bind(serde_json::to_value(f.columns).unwrap_or_default())
    .bind(f.profile.map(|p| p.name.as_str()))
    .bind(f.profile.map(|p| p.version))
    .bind(f.header)
    .bind(c.removed_from_list)
    .bind(c.organisations_created)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that `by` re-imports the file of run `of`. With `once`, only if
/// no run did before (false otherwise: a held file is released at most once;
/// the row lock makes a second transaction wait, then see the first's mark).
pub async fn mark_rerun(conn: &mut PgConnection, of: Uuid, by: Uuid, once: bool) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE runs SET rerun_by = $2 WHERE id = $1 AND (NOT $3 OR rerun_by IS NULL)")
        .bind(of)
        .bind(by)
        .bind(once)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds one message to a run (used for file-level failures, whose staging
/// tables were rolled back).
pub async fn add_message(conn: &mut PgConnection, id: Uuid, m: &Message) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO run_messages (run_id, line, column_name, code, severity, value, message)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(m.line)
    .bind(&m.column)
    .bind(&m.code)
    .bind(&m.severity)
    .bind(&m.value)
    .bind(&m.message)
    .execute(conn)
    .await?;
    Ok(())
}

/// A run's report with its messages loaded, at most `message_limit` (all
/// when `None`): for tests and callers that know the run is small. Commands
/// stream them instead (`messages`).
pub async fn report(pool: &PgPool, id: Uuid, message_limit: Option<i64>) -> sqlx::Result<Option<Report>> {
    let Some(head) = head(pool, id).await? else { return Ok(None) };
    let limit = message_limit.unwrap_or(i64::MAX);
    let mut batches = messages(pool, id, &MessageFilter { limit: Some(limit.saturating_add(1)), ..Default::default() });
    let mut all = Vec::new();
    while let Some(batch) = batches.recv().await {
        all.extend(batch?);
    }
    let cut = all.len() as i64 > limit;
    all.truncate(limit.min(all.len() as i64) as usize);
    let mut report = head.with_messages(all);
    report.messages_truncated |= cut;
    Ok(Some(report))
}

/// A run's report without its messages: every count, `by_code` complete,
/// the deliveries of its e-mails.
pub async fn head(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Report<()>>> {
    let Some(r) = sqlx::query("SELECT r.*, t.slug FROM runs r JOIN tenants t ON t.id = r.tenant_id WHERE r.id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    let status: String = r.get("status");
    let by_code: serde_json::Value = r.get("by_code");
    let columns: serde_json::Value = r.get("columns");
    let profile_name: Option<String> = r.get("profile_name");
    let profile_version: Option<i32> = r.get("profile_version");
    Ok(Some(Report {
        run_id: id,
        tenant: r.get("slug"),
        feed: r.get("feed"),
        // A status the code does not know is bad data, not a failed run.
        status: Status::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("run {id} has the unknown status {status:?}").into()))?,
        dry_run: r.get("dry_run"),
        profile: profile_name.zip(profile_version).map(|(name, version)| ProfileRef { name, version }),
        file: FileInfo { name: r.get("file_name"), size: r.get("file_size"), sha256: r.get("file_sha256") },
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        counts: Counts {
            rows: r.get("rows"),
            inserted: r.get("inserted"),
            updated: r.get("updated"),
            unchanged: r.get("unchanged"),
            skipped_existing: r.get("skipped_existing"),
            skipped_new: r.get("skipped_new"),
            rejected: r.get("rejected"),
            warnings: r.get("warnings"),
            removed_from_list: r.get("removed_from_list"),
            organisations_created: r.get("organisations_created"),
            // Not a column: by_code is complete, and holds them.
            conflicts: by_code.get("update.conflict").and_then(serde_json::Value::as_i64).unwrap_or(0),
        },
        by_code: serde_json::from_value(by_code).unwrap_or_default(),
        messages: (),
        messages_truncated: r.get("messages_truncated"),
        error: r.get("error"),
        options: r.get("options"),
        columns: serde_json::from_value(columns).unwrap_or_default(),
        rerun_of: r.get("rerun_of"),
        rerun_by: r.get("rerun_by"),
        deliveries: super::notifications::deliveries_of_run(pool, id).await?,
    }))
}

/// Which of a run's messages to read.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Only this rule code.
    pub code: Option<String>,
    /// At most this many, the first by line and code.
    pub limit: Option<i64>,
}

fn message_of(m: &sqlx::postgres::PgRow) -> Message {
    Message {
        line: m.get("line"),
        column: m.get("column_name"),
        code: m.get("code"),
        severity: m.get("severity"),
        value: m.get("value"),
        message: m.get("message"),
    }
}

/// A run's messages by line and code, read through a cursor in batches.
pub fn messages(pool: &PgPool, id: Uuid, filter: &MessageFilter) -> Batches<Message> {
    let code = filter.code.clone();
    let limit = filter.limit;

    let mut select = "SELECT line, column_name, code, severity, value, message FROM run_message_view
         WHERE run_id = $1"
        .to_owned();
    let mut n = 1;
    let mut param = || {
        n += 1;
        n
    };
    if code.is_some() {
        select.push_str(&format!(" AND code = ${}", param()));
    }
    select.push_str(" ORDER BY line, code");
    if limit.is_some() {
        select.push_str(&format!(" LIMIT ${}", param()));
    }
    // Bound in the order the text numbers them.
    let bind: cursor::Bind = Box::new(move |q| {
        let mut q = q.bind(id);
        if let Some(c) = code {
            q = q.bind(c);
        }
        if let Some(l) = limit {
            q = q.bind(l);
        }
        q
    });
    cursor::spawn(pool.clone(), select, bind, message_of)
}

/// Where a page of messages starts: after this (line, code, column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    pub line: i64,
    pub code: String,
    pub column: String,
}

/// One page of a run's messages by (line, code, column), after `after`, of
/// one rule when `code` is set. Errors come from their index; warnings are
/// stored as one row per rule and value with its lines in ascending order,
/// so each row gives at most its next `limit + 1` lines from `after` on
/// (read in array order, without sorting the array): a page costs the same
/// at the millionth message as at the first.
pub async fn message_page(
    pool: &PgPool,
    id: Uuid,
    code: Option<&str>,
    after: Option<&MessageKey>,
    limit: i64,
) -> sqlx::Result<Vec<Message>> {
    let (line, after_code, column) = match after {
        Some(k) => (k.line, k.code.as_str(), k.column.as_str()),
        None => (0, "", ""),
    };
    // The rule's filter is written only when given: each variant gets a
    // plan of its own (run_messages_run_code_line for a rule).
    let (errors_code, warnings_code) = match code {
        Some(_) => (" AND code = $6", " AND w.code = $6"),
        None => ("", ""),
    };
    let sql = format!(
        "SELECT line, column_name, code, severity, value, message FROM (
            (SELECT line, column_name, code, severity, value, message FROM run_messages
             WHERE run_id = $1{errors_code} AND line >= $2
               AND (line, code, coalesce(column_name, '')) > ($2, $3, $4)
             ORDER BY line, code, coalesce(column_name, '') LIMIT $5)
            UNION ALL
            SELECT l.line, w.column_name, w.code, 'warning', w.value, w.message
            FROM run_warnings w
            CROSS JOIN LATERAL (SELECT u.line FROM unnest(w.lines) AS u(line) WHERE u.line >= $2 LIMIT $5 + 1) l
            WHERE w.run_id = $1{warnings_code}
         ) m
         WHERE (line, code, coalesce(column_name, '')) > ($2, $3, $4)
         ORDER BY line, code, coalesce(column_name, '') LIMIT $5"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).bind(line).bind(after_code).bind(column).bind(limit);
    if let Some(c) = code {
        q = q.bind(c);
    }
    let rows = q.fetch_all(pool).await?;
    Ok(rows.iter().map(message_of).collect())
}

/// How many messages a run keeps (stored, not counted: beyond
/// `max_messages_per_run` only `by_code` counts them).
pub async fn stored_messages(pool: &PgPool, id: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM run_messages WHERE run_id = $1)
              + (SELECT coalesce(sum(cardinality(lines)), 0)::bigint FROM run_warnings WHERE run_id = $1)",
    )
    .bind(id)
    .fetch_one(pool)
    .await
}

/// The first `per_code` lines of each rule code of a run: each one an index
/// range of `run_messages` or the head of a warning's array of lines.
pub async fn examples(pool: &PgPool, id: Uuid, per_code: i64) -> sqlx::Result<Examples> {
    let rows = sqlx::query(
        "SELECT k.code, m.line, m.column_name, m.severity, m.value, m.message
         FROM runs r CROSS JOIN LATERAL jsonb_object_keys(r.by_code) AS k(code)
         CROSS JOIN LATERAL (
            (SELECT line, column_name, severity, value, message FROM run_messages
             WHERE run_id = r.id AND code = k.code ORDER BY line LIMIT $2)
            UNION ALL
            (SELECT l.line, w.column_name, 'warning', w.value, w.message
             FROM run_warnings w CROSS JOIN LATERAL unnest(w.lines[1:$2]) AS l(line)
             WHERE w.run_id = r.id AND w.code = k.code)
            ORDER BY line LIMIT $2
         ) m
         WHERE r.id = $1
         ORDER BY k.code, m.line",
    )
    .bind(id)
    .bind(per_code)
    .fetch_all(pool)
    .await?;
    let mut out = Examples::new();
    for r in &rows {
        out.entry(r.get("code")).or_default().push(message_of(r));
    }
    Ok(out)
}

/// One rejected line of a run, as it was in the file.
pub struct Reject {
    pub line: i64,
    pub cells: Vec<String>,
    pub reason: String,
}

/// A run's rejected lines by line, read through a cursor in batches.
pub fn rejects(pool: &PgPool, id: Uuid) -> Batches<Reject> {
    let select = "SELECT line, cells, reason FROM run_rejects WHERE run_id = $1 ORDER BY line".to_owned();
    cursor::spawn(pool.clone(), select, Box::new(move |q| q.bind(id)), |r| Reject {
        line: r.get("line"),
        cells: r.get("cells"),
        reason: r.get("reason"),
    })
}

/// The header line of a run's file (none when it was refused before it).
pub async fn header(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Vec<String>>> {
    Ok(sqlx::query_scalar("SELECT header FROM runs WHERE id = $1").bind(id).fetch_optional(pool).await?.flatten())
}

/// Which runs a page of `GET /runs` holds.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub tenant_id: Option<i64>,
    pub feed: Option<String>,
    pub status: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// The last run of the previous page: this page starts after it.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl RunFilter {
    /// The page's SQL, naming only the filters given: a `$n IS NULL OR ...`
    /// per filter would let a generic plan (or a planner without
    /// statistics) pick one plan for every combination.
    fn select(&self) -> String {
        let mut sql = String::from(
            "SELECT r.id, t.slug, r.feed, r.status, r.file_name, r.started_at, r.rows, r.inserted, r.updated, r.rejected
             FROM runs r JOIN tenants t ON t.id = r.tenant_id WHERE true",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if self.tenant_id.is_some() {
            sql.push_str(&format!(" AND r.tenant_id = ${}", next()));
        }
        if self.feed.is_some() {
            sql.push_str(&format!(" AND r.feed = ${}", next()));
        }
        if self.status.is_some() {
            sql.push_str(&format!(" AND r.status = ${}", next()));
        }
        if self.since.is_some() {
            sql.push_str(&format!(" AND r.started_at >= ${}", next()));
        }
        if self.after.is_some() {
            let (a, b) = (next(), next());
            sql.push_str(&format!(" AND (r.started_at, r.id) < (${a}, ${b})"));
        }
        // The limit is written in the statement, not bound: with `LIMIT $n`
        // the cached generic plan cannot tell 50 rows from 100,000, so
        // PostgreSQL plans every execution again (more than the query's own
        // cost); a literal gives one cached plan per page size.
        sql.push_str(&format!(" ORDER BY r.started_at DESC, r.id DESC LIMIT {}", self.limit.max(0)));
        sql
    }

    fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        if let Some(t) = self.tenant_id {
            q = q.bind(t);
        }
        if let Some(f) = &self.feed {
            q = q.bind(f);
        }
        if let Some(s) = &self.status {
            q = q.bind(s);
        }
        if let Some(since) = self.since {
            q = q.bind(since);
        }
        if let Some((at, id)) = self.after {
            q = q.bind(at).bind(id);
        }
        q
    }
}

/// A page of runs, newest first, by the keyset (started_at, id): a page
/// costs the same whatever its depth (`runs_started`, `runs_tenant_started`,
/// `runs_status_started`).
pub async fn page(pool: &PgPool, f: &RunFilter) -> sqlx::Result<Vec<RunSummary>> {
    let rows = f.bind(sqlx::query(sqlx::AssertSqlSafe(f.select()))).fetch_all(pool).await?;
    Ok(rows.iter().map(summary_of).collect())
}

/// The plan of a page (tests check it stays an index walk).
pub async fn page_plan(pool: &PgPool, f: &RunFilter) -> sqlx::Result<serde_json::Value> {
    let sql = format!("EXPLAIN (FORMAT JSON) {}", f.select());
    sqlx::Row::try_get(&f.bind(sqlx::query(sqlx::AssertSqlSafe(sql))).fetch_one(pool).await?, 0)
}

fn summary_of(r: &sqlx::postgres::PgRow) -> RunSummary {
    RunSummary {
        run_id: r.get(0),
        tenant: r.get(1),
        feed: r.get(2),
        status: r.get(3),
        file: r.get(4),
        started_at: r.get(5),
        rows: r.get(6),
        inserted: r.get(7),
        updated: r.get(8),
        rejected: r.get(9),
    }
}

/// When each tenant's latest run started (one index probe per tenant).
pub async fn last_started_per_tenant(pool: &PgPool) -> sqlx::Result<std::collections::HashMap<i64, DateTime<Utc>>> {
    let rows = sqlx::query(
        "SELECT t.id, (SELECT r.started_at FROM runs r WHERE r.tenant_id = t.id ORDER BY r.started_at DESC, r.id DESC LIMIT 1)
         FROM tenants t",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().filter_map(|r| Some((r.get::<i64, _>(0), r.get::<Option<DateTime<Utc>>, _>(1)?))).collect())
}

/// A feed's runs of one night (local day), added up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Night {
    pub day: chrono::NaiveDate,
    pub rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub rejected: i64,
}

/// The nights of a feed since `since`, by day in `timezone`: each file once
/// (a released or replayed run counts as the run that re-imported it, on
/// its own night), dry runs excepted; from `runs_tenant_feed_started`.
pub async fn nights(
    pool: &PgPool,
    tenant_id: i64,
    feed: &str,
    timezone: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<Night>> {
    // Each file once, on the night it arrived: a run that was released or
    // replayed gives way to the run that re-imported it, which counts on
    // the first run's night; dry runs never count.
    let rows = sqlx::query(
        "SELECT (coalesce(o.started_at, r.started_at) AT TIME ZONE $3)::date AS day, sum(r.rows)::bigint,
                sum(r.inserted)::bigint, sum(r.updated)::bigint, sum(r.rejected)::bigint
         FROM runs r LEFT JOIN runs o ON o.id = r.rerun_of
         WHERE r.tenant_id = $1 AND r.feed = $2 AND coalesce(o.started_at, r.started_at) >= $4
           AND r.status <> 'dry_run' AND r.rerun_by IS NULL
         GROUP BY 1 ORDER BY 1",
    )
    .bind(tenant_id)
    .bind(feed)
    .bind(timezone)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Night { day: r.get(0), rows: r.get(1), inserted: r.get(2), updated: r.get(3), rejected: r.get(4) })
        .collect())
}

/// The tenant of a run, to check a caller may see it.
pub async fn tenant_of(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT tenant_id FROM runs WHERE id = $1").bind(id).fetch_optional(pool).await
}

/// One line of `runs list`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RunSummary {
    pub run_id: Uuid,
    pub tenant: String,
    pub feed: Option<String>,
    pub status: String,
    pub file: String,
    pub started_at: DateTime<Utc>,
    pub rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub rejected: i64,
}

/// The files (tenant, SHA-256) of held runs not yet released: the archive
/// keeps them whatever their age, as their release needs them.
pub async fn held_files(pool: &PgPool) -> sqlx::Result<std::collections::HashSet<(i64, String)>> {
    let rows = sqlx::query_as::<_, (i64, String)>(
        "SELECT DISTINCT tenant_id, file_sha256 FROM runs WHERE status = 'held' AND rerun_by IS NULL",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}
