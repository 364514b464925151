//! `GET /tenants/{t}/contacts.csv`: the export of `contacts export`,
//! spooled while it is read, then sent (`stream.rs`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::ApiState;
use super::auth::Caller;
use super::extract::{Path, Query};
use super::problem::{Problem, ProblemBody};
use super::stream::spooled;
use crate::store::contacts::Filter;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// Only the members of this list.
    list: Option<String>,
    /// Only the contacts this run created.
    created_by_run: Option<Uuid>,
}

/// The tenant's contacts as a semicolon CSV that imports back unchanged.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/contacts.csv", tag = "contacts",
    params(("tenant" = String, Path), ExportQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn export(
    caller: Caller,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, Problem> {
    let tenant = caller.tenant(&state, &slug).await?;
    let filter = Filter { tenant_id: tenant.id, list: q.list, created_by_run: q.created_by_run };
    let pool = state.pool.clone();
    let what = format!("contacts export of {}", tenant.slug);
    let body = spooled(what, &state.settings.spool_dir, move |mut writer| async move {
        crate::export::write_contacts(&pool, &filter, None, &mut writer).await
    })
    .await?;
    let disposition = format!("attachment; filename=\"{slug}-contacts.csv\"");
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
}
