//! `GET /tenants`, `GET /tenants/{t}`: the tenants a caller sees.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::Caller;
use super::extract::Path;
use super::problem::{Problem, ProblemBody};
use crate::store::tenants;

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    pub slug: String,
    pub name: String,
    pub timezone: String,
    /// The language of its reports, `fr` or `en`.
    pub language: String,
    pub extra_languages: Vec<String>,
}

impl From<&tenants::Tenant> for TenantOut {
    fn from(t: &tenants::Tenant) -> TenantOut {
        TenantOut {
            slug: t.slug.to_string(),
            name: t.name.clone(),
            timezone: t.timezone.clone(),
            language: t.language.as_str().into(),
            extra_languages: t.extra_languages.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantOut>,
}

/// The tenants the caller sees: all of them for support and admin, its own
/// for a tenant user or token.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = TenantList), (status = 401, body = ProblemBody)))]
pub async fn list(caller: Caller, State(state): State<ApiState>) -> Result<Json<TenantList>, Problem> {
    let all = tenants::list(&state.pool).await.map_err(Problem::internal)?;
    let tenants = all.iter().filter(|t| caller.access.sees_tenant(t.id)).map(TenantOut::from).collect();
    Ok(Json(TenantList { tenants }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "the tenant's slug")),
    responses((status = 200, body = TenantOut), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn show(
    caller: Caller,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
) -> Result<Json<TenantOut>, Problem> {
    Ok(Json(TenantOut::from(&caller.tenant(&state, &slug).await?)))
}
