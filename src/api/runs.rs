//! `/runs`: runs filtered and paged by cursor, a run's report (spooled while
//! its messages are read), its messages by page, its rejects file and its
//! archived file (streamed), release and replay.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::io::SyncIoBridge;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::extract::{Path, Query, page_limit};
use super::problem::{Problem, ProblemBody};
use super::stream::spooled;
use crate::archive::ArchiveError;
use crate::report::{self, Message};
use crate::rerun::{Action, Refused};
use crate::store::runs::{self, RunFilter, RunSummary};

#[derive(Debug, Deserialize, IntoParams)]
pub struct RunsQuery {
    /// A tenant's slug; a tenant caller always gets its own runs.
    tenant: Option<String>,
    /// A feed's name.
    feed: Option<String>,
    /// A status of SPEC §6 (`succeeded`, `held`, `failed`...).
    #[param(value_type = Option<crate::report::Status>)]
    status: Option<String>,
    /// Runs started at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Runs per page, 1 to 500 (50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    pub runs: Vec<RunSummary>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page cursor: the started_at and id of the page's last run.
pub fn cursor_of(r: &RunSummary) -> String {
    format!("{}_{}", r.started_at.timestamp_micros(), r.run_id)
}

/// A cursor's time is one of our runs': a time PostgreSQL cannot hold
/// (before 4713 BC, which chrono can) is malformed, not an error of ours.
pub fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    use chrono::Datelike;
    let (micros, id) = c.split_once('_')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?).filter(|t| (1..=9999).contains(&t.year()))?;
    Some((at, id.parse().ok()?))
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, body = RunPage), (status = 400, body = ProblemBody), (status = 401, body = ProblemBody),
              (status = 404, body = ProblemBody)))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<RunPage>, Problem> {
    let tenant_id = match &q.tenant {
        Some(slug) => Some(caller.tenant(&state, slug).await?.id),
        None => caller.access.tenant_id(),
    };
    if let Some(s) = &q.status
        && report::Status::parse(s).is_none()
    {
        return Err(Problem::bad_request("query.status", format!("unknown status {s:?}")));
    }
    let after = match &q.cursor {
        Some(c) => Some(parse_cursor(c).ok_or_else(|| Problem::bad_request("query.cursor", "malformed cursor"))?),
        None => None,
    };
    let limit = page_limit(q.limit, 50, 500)?;
    let filter = RunFilter { tenant_id, feed: q.feed, status: q.status, since: q.since, after, limit };
    let runs = runs::page(&state.pool, &filter).await.map_err(Problem::internal)?;
    let next_cursor = (runs.len() as i64 == limit).then(|| runs.last().map(cursor_of)).flatten();
    Ok(Json(RunPage { runs, next_cursor }))
}

/// The report of a run, as `runs show --format json` (SPEC §6): written
/// while its messages are read from the database, never held whole.
#[utoipa::path(get, path = "/api/v1/runs/{run}", tag = "runs", params(("run" = String, Path, description = "the run's id")),
    responses((status = 200, description = "the report of SPEC §6", body = crate::report::Report),
              (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn show(caller: Caller, State(state): State<ApiState>, Path(run): Path<String>) -> Result<Response, Problem> {
    let (id, _) = caller.run(&state, &run).await?;
    stream_report(&state, id).await
}

/// Streams run `id`'s report (also the answer of an upload).
pub async fn stream_report(state: &ApiState, id: Uuid) -> Result<Response, Problem> {
    let head = runs::head(&state.pool, id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found(format!("run {id}")))?;
    let pool = state.pool.clone();
    // The serialiser blocks on each batch: it writes through a bridge to
    // the async pipe, on the blocking thread `json::write` runs it on.
    let body = spooled(format!("report of run {id}"), &state.settings.spool_dir, move |writer| async move {
        report::json::write(&pool, head, None, SyncIoBridge::new(writer)).await
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct MessagesQuery {
    /// Only this rule's messages.
    code: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Messages per page, 1 to 5000 (500).
    #[param(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Pass it as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of a run's messages by line, code and column, of one rule when
/// `code` is set. The cursor is the page's last message (`LINE:CODE:COLUMN`):
/// a page half-way through a million messages costs what the first does.
#[utoipa::path(get, path = "/api/v1/runs/{run}/messages", tag = "runs", params(("run" = String, Path), MessagesQuery),
    responses((status = 200, body = MessagePage), (status = 400, body = ProblemBody), (status = 401, body = ProblemBody),
              (status = 404, body = ProblemBody)))]
pub async fn messages(
    caller: Caller,
    State(state): State<ApiState>,
    Path(run): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<MessagePage>, Problem> {
    let (id, _) = caller.run(&state, &run).await?;
    let limit = page_limit(q.limit, 500, 5000)?;
    let after = match q.cursor.as_deref() {
        Some(c) => {
            Some(parse_message_cursor(c).ok_or_else(|| Problem::bad_request("query.cursor", "malformed cursor"))?)
        }
        None => None,
    };
    let messages = runs::message_page(&state.pool, id, q.code.as_deref(), after.as_ref(), limit)
        .await
        .map_err(Problem::internal)?;
    let next_cursor = (messages.len() as i64 == limit).then(|| messages.last().map(message_cursor)).flatten();
    Ok(Json(MessagePage { messages, next_cursor }))
}

/// `LINE:CODE:COLUMN` of a message: where the next page starts.
pub fn message_cursor(m: &Message) -> String {
    format!("{}:{}:{}", m.line, m.code, m.column.as_deref().unwrap_or(""))
}

pub fn parse_message_cursor(c: &str) -> Option<runs::MessageKey> {
    let mut parts = c.splitn(3, ':');
    let line = parts.next()?.parse::<i64>().ok()?;
    let code = parts.next()?.to_owned();
    Some(runs::MessageKey { line, code, column: parts.next().unwrap_or_default().to_owned() })
}

fn attachment(name: &str) -> String {
    format!("attachment; filename=\"{}\"", name.replace(|c: char| c == '"' || c == '\\' || c.is_control(), "_"))
}

/// The rejects file of the report e-mail, whatever its size, streamed.
#[utoipa::path(get, path = "/api/v1/runs/{run}/rejects.csv", tag = "runs", params(("run" = String, Path)),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn rejects(
    caller: Caller,
    State(state): State<ApiState>,
    Path(run): Path<String>,
) -> Result<Response, Problem> {
    let (id, _) = caller.run(&state, &run).await?;
    let source = report::rejects::source(&state.pool, id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found(&run))?;
    let report::rejects::Source { file_name: name, delimiter, lang } = source;
    let pool = state.pool.clone();
    let body = spooled(format!("rejects file of run {id}"), &state.settings.spool_dir, move |mut writer| async move {
        report::rejects::write(&pool, id, delimiter, lang, &mut writer, None).await
    })
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, attachment(&name)),
        ],
        body,
    )
        .into_response())
}

/// The file a feed run took, from the archive (support and admin).
#[utoipa::path(get, path = "/api/v1/runs/{run}/file", tag = "runs", params(("run" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 401, body = ProblemBody),
              (status = 403, body = ProblemBody), (status = 404, body = ProblemBody, description = "`not_found` or `archive.gone`"),
              (status = 503, body = ProblemBody, description = "`archive.unavailable`: the archive's store does not answer")))]
pub async fn file(caller: Caller, State(state): State<ApiState>, Path(run): Path<String>) -> Result<Response, Problem> {
    let (id, tenant_id) = caller.run(&state, &run).await?;
    caller.staff("downloading an archived file")?;
    let head = runs::head(&state.pool, id).await.map_err(Problem::internal)?.ok_or_else(|| Problem::not_found(&run))?;
    if head.feed.is_none() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "archive.gone",
            format!("{} of run {id} was a manual import: only feed files are archived", head.file.name),
        ));
    }
    let archive = state.settings.archive().map_err(Problem::from)?;
    let (len, body) = archive.read(tenant_id, &head.file.sha256).await.map_err(|e| match e {
        ArchiveError::Gone { .. } => Problem::new(
            StatusCode::NOT_FOUND,
            "archive.gone",
            format!("{} of run {id} is no longer archived: feed files are kept {} days", head.file.name, archive.days),
        ),
        e => Problem::from(e),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CONTENT_DISPOSITION, attachment(&head.file.name)),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReplayQuery {
    /// Replay a file that was already applied (it is applied twice).
    #[serde(default)]
    force: bool,
}

async fn rerun(caller: Caller, state: ApiState, run: String, action: Action) -> Result<Response, Problem> {
    let (id, _) = caller.run(&state, &run).await?;
    caller.staff("releasing or replaying a run")?;
    match crate::actions::runs::rerun(&state.pool, &state.settings, &caller.actor, id, action).await {
        Ok(new_run) => stream_report(&state, new_run).await,
        Err(e) => {
            if let Some(refused) = e.downcast_ref::<Refused>() {
                return Err(Problem::new(StatusCode::CONFLICT, "run.state", refused.0.clone()));
            }
            match e.downcast::<ArchiveError>() {
                Ok(archive) => Err(Problem::from(archive)),
                Err(e) => Err(Problem::internal(format!("{e:#}"))),
            }
        }
    }
}

/// Imports a held run's file without the guards that held it (once); the
/// answer is the new run's report.
#[utoipa::path(post, path = "/api/v1/runs/{run}/release", tag = "runs", params(("run" = String, Path)),
    responses((status = 200, description = "the new run's report", body = crate::report::Report), (status = 401, body = ProblemBody),
              (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
              (status = 409, body = ProblemBody, description = "`run.state`: not held, already released, file gone"),
              (status = 503, body = ProblemBody, description = "`archive.unavailable`: the archive's store does not answer")))]
pub async fn release(
    caller: Caller,
    State(state): State<ApiState>,
    Path(run): Path<String>,
) -> Result<Response, Problem> {
    rerun(caller, state, run, Action::Release).await
}

/// Imports a feed run's archived file again with its profile's latest version.
#[utoipa::path(post, path = "/api/v1/runs/{run}/replay", tag = "runs", params(("run" = String, Path), ReplayQuery),
    responses((status = 200, description = "the new run's report", body = crate::report::Report), (status = 401, body = ProblemBody),
              (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
              (status = 409, body = ProblemBody, description = "`run.state`: applied already (use force), dry run, file gone"),
              (status = 503, body = ProblemBody, description = "`archive.unavailable`: the archive's store does not answer")))]
pub async fn replay(
    caller: Caller,
    State(state): State<ApiState>,
    Path(run): Path<String>,
    Query(q): Query<ReplayQuery>,
) -> Result<Response, Problem> {
    rerun(caller, state, run, Action::Replay { force: q.force }).await
}
