//! `GET /audit`: the audit log, newest first (admin).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::Caller;
use super::extract::{Query, page_limit};
use super::problem::{Problem, ProblemBody};
use crate::store::audit::{self, Entry};

#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this tenant's entries.
    tenant: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<i64>,
    /// Entries per page, 1 to 500 (100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<Entry>,
    pub next_cursor: Option<i64>,
}

/// Every change: who (`user:EMAIL`, `token:PREFIX`, `cli:LOGIN`), when, what
/// and from which address.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
              (status = 404, body = ProblemBody)))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, Problem> {
    caller.admin("the audit log")?;
    let tenant_id = match &q.tenant {
        Some(slug) => Some(caller.tenant(&state, slug).await?.id),
        None => None,
    };
    let limit = page_limit(q.limit, 100, 500)?;
    let entries = audit::list(&state.pool, tenant_id, q.cursor, limit).await.map_err(Problem::internal)?;
    let next_cursor = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(Json(AuditPage { entries, next_cursor }))
}
