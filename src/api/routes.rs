//! The routes of `/api/v1` built so far: tenants, runs (filtered, paged by
//! cursor), a run's report, its messages and its rejects file.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio_util::io::{ReaderStream, SyncIoBridge};
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::problem::Problem;
use crate::report::{self, Message};
use crate::store::runs::{self, MessageFilter, RunFilter};
use crate::store::tenants;

/// Bytes in flight between a report's writer and the socket.
const PIPE_BYTES: usize = 64 << 10;

fn tenant_json(t: &tenants::Tenant) -> serde_json::Value {
    serde_json::json!({
        "slug": t.slug.as_str(), "name": t.name, "timezone": t.timezone, "language": t.language.as_str(),
        "extra_languages": t.extra_languages,
    })
}

pub async fn tenants(caller: Caller, State(state): State<ApiState>) -> Result<Json<serde_json::Value>, Problem> {
    let all = tenants::list(&state.pool).await.map_err(Problem::internal)?;
    let seen: Vec<_> = all.iter().filter(|t| caller.access.sees_tenant(t.id)).map(tenant_json).collect();
    Ok(Json(serde_json::json!({ "tenants": seen })))
}

pub async fn tenant(
    caller: Caller,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    Ok(Json(tenant_json(&caller.tenant(&state, &slug).await?)))
}

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    tenant: Option<String>,
    feed: Option<String>,
    status: Option<String>,
    since: Option<DateTime<Utc>>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// A page cursor: the started_at and id of the page's last run.
fn cursor_of(r: &runs::RunSummary) -> String {
    format!("{}_{}", r.started_at.timestamp_micros(), r.run_id)
}

fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = c.split_once('_')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

pub async fn runs(
    caller: Caller,
    State(state): State<ApiState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
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
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let filter = RunFilter { tenant_id, feed: q.feed, status: q.status, since: q.since, after, limit };
    let page = runs::page(&state.pool, &filter).await.map_err(Problem::internal)?;
    let next = (page.len() as i64 == limit).then(|| page.last().map(cursor_of)).flatten();
    Ok(Json(serde_json::json!({ "runs": page, "next_cursor": next })))
}

/// The report of `runs show --format json`, written while its messages are
/// read from the database.
pub async fn run(caller: Caller, State(state): State<ApiState>, Path(run): Path<String>) -> Result<Response, Problem> {
    let id = caller.run(&state, &run).await?;
    let head = runs::head(&state.pool, id).await.map_err(Problem::internal)?.ok_or_else(|| Problem::not_found(&run))?;
    let (writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let pool = state.pool.clone();
    tokio::spawn(async move {
        // The serialiser blocks on each batch: it writes through a bridge to
        // the async pipe, on the blocking thread `json::write` runs it on.
        if let Err(e) = report::json::write(&pool, head, None, SyncIoBridge::new(writer)).await {
            tracing::warn!(run = %id, "report not sent whole: {e:#}");
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from_stream(ReaderStream::new(reader))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct MessagesQuery {
    code: Option<String>,
    /// Messages of the earlier pages, to skip.
    cursor: Option<i64>,
    limit: Option<i64>,
}

/// A page of a run's messages by line and code, of one rule when `code` is set.
pub async fn messages(
    caller: Caller,
    State(state): State<ApiState>,
    Path(run): Path<String>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let id = caller.run(&state, &run).await?;
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let skip = q.cursor.unwrap_or(0).max(0);
    // The cursor is the number of messages before the page: the view orders
    // them the same way each time (line, code).
    let filter = MessageFilter { code: q.code, limit: Some(limit), offset: Some(skip) };
    let mut batches = runs::messages(&state.pool, id, &filter);
    let mut page: Vec<Message> = Vec::new();
    while let Some(batch) = batches.recv().await {
        page.extend(batch.map_err(Problem::internal)?);
    }
    let next = (page.len() as i64 == limit).then_some(skip + limit);
    Ok(Json(serde_json::json!({ "messages": page, "next_cursor": next })))
}

/// The rejects file of the report e-mail, whatever its size, streamed.
pub async fn rejects(
    caller: Caller,
    State(state): State<ApiState>,
    Path(run): Path<String>,
) -> Result<Response, Problem> {
    let id = caller.run(&state, &run).await?;
    let source = report::rejects::source(&state.pool, id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found(&run))?;
    let report::rejects::Source { file_name: name, delimiter, lang } = source;
    let (mut writer, reader) = tokio::io::duplex(PIPE_BYTES);
    let pool = state.pool.clone();
    tokio::spawn(async move {
        if let Err(e) = report::rejects::write(&pool, id, delimiter, lang, &mut writer, None).await {
            tracing::warn!(run = %id, "rejects file not sent whole: {e:#}");
        }
    });
    let disposition = format!("attachment; filename=\"{}\"", name.replace(['"', '\\', '\r', '\n'], "_"));
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(ReaderStream::new(reader)),
    )
        .into_response())
}
