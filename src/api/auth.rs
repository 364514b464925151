//! Who calls: the `Caller` extractor every route takes, so the access check
//! lives here, once, and a route cannot forget it. Bearer tokens for now;
//! console sessions come with the console.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use crate::domain::{Access, TenantSlug};
use crate::store::{accounts, runs, tenants};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `token:PREFIX` (the audit log's actor).
    pub actor: String,
    pub access: Access,
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, Problem> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Err(Problem::unauthorized());
        };
        match accounts::check_token(&state.pool, token, chrono::Utc::now()).await {
            Ok(Some((prefix, access))) => Ok(Caller { actor: format!("token:{prefix}"), access }),
            Ok(None) => Err(Problem::unauthorized()),
            Err(e) => Err(Problem::internal(e)),
        }
    }
}

impl Caller {
    /// The tenant `slug`, if this caller may see it (404 otherwise, as for
    /// a tenant that does not exist).
    pub async fn tenant(&self, state: &ApiState, slug: &str) -> Result<tenants::Tenant, Problem> {
        let missing = || Problem::not_found(format!("tenant {slug}"));
        let slug = TenantSlug::parse(slug).map_err(|_| missing())?;
        match tenants::find(&state.pool, &slug).await {
            Ok(t) if self.access.sees_tenant(t.id) => Ok(t),
            Ok(_) | Err(tenants::TenantError::NotFound(_)) => Err(missing()),
            Err(e) => Err(Problem::internal(e)),
        }
    }

    /// Checks this caller may see run `id` (404 otherwise).
    pub async fn run(&self, state: &ApiState, id: &str) -> Result<Uuid, Problem> {
        let missing = || Problem::not_found(format!("run {id}"));
        let id: Uuid = id.parse().map_err(|_| missing())?;
        match runs::tenant_of(&state.pool, id).await {
            Ok(Some(t)) if self.access.sees_tenant(t) => Ok(id),
            Ok(_) => Err(missing()),
            Err(e) => Err(Problem::internal(e)),
        }
    }
}
