//! Who calls: the `Caller` extractor every route takes, so the access check
//! lives here, once, and a route cannot forget it. A caller is a bearer
//! token or a console session (cookie); a session's state changes must also
//! carry its CSRF token.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use super::ApiState;
use super::problem::Problem;
use crate::domain::{Access, Role, TenantSlug};
use crate::store::audit::Actor;
use crate::store::{accounts, feeds, runs, tenants};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `token:PREFIX` or `user:EMAIL`, and the client address: the audit
    /// log's who and from where.
    pub actor: Actor,
    pub access: Access,
}

/// The client address as the audit log shows it.
pub fn client_address(parts: &Parts) -> String {
    super::server::client_of(parts).map(|a| a.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, Problem> {
        let source = client_address(parts);
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let header = header.to_str().unwrap_or_default();
            let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
                return Err(Problem::unauthorized());
            };
            return match accounts::check_token(&state.pool, token, chrono::Utc::now()).await {
                Ok(Some((prefix, access))) => {
                    Ok(Caller { actor: Actor { name: format!("token:{prefix}"), source }, access })
                }
                Ok(None) => Err(Problem::unauthorized()),
                Err(e) => Err(Problem::internal(e)),
            };
        }
        super::session::caller(parts, state, source).await
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

    /// The feed `name` of tenant `slug`, if this caller may see it.
    pub async fn feed(
        &self,
        state: &ApiState,
        slug: &str,
        name: &str,
    ) -> Result<(tenants::Tenant, feeds::FeedRow), Problem> {
        let tenant = self.tenant(state, slug).await?;
        match feeds::find(&state.pool, tenant.slug.as_str(), name).await {
            Ok(Some(f)) => Ok((tenant, f)),
            Ok(None) => Err(Problem::not_found(format!("feed {slug}/{name}"))),
            Err(e) => Err(Problem::internal(e)),
        }
    }

    /// Checks this caller may see run `id` (404 otherwise); its tenant's id.
    pub async fn run(&self, state: &ApiState, id: &str) -> Result<(Uuid, i64), Problem> {
        let missing = || Problem::not_found(format!("run {id}"));
        let id: Uuid = id.parse().map_err(|_| missing())?;
        match runs::tenant_of(&state.pool, id).await {
            Ok(Some(t)) if self.access.sees_tenant(t) => Ok((id, t)),
            Ok(_) => Err(missing()),
            Err(e) => Err(Problem::internal(e)),
        }
    }

    /// Support and admin: changes to feeds and profiles, release, replay,
    /// archived files. Checked after the object is found, so that a tenant
    /// caller learns nothing of another tenant's objects (404 first).
    pub fn staff(&self, what: &str) -> Result<(), Problem> {
        match self.access.role() {
            Role::Admin | Role::Support => Ok(()),
            Role::Tenant => Err(Problem::forbidden(format!("{what} needs the support or admin role"))),
        }
    }

    /// Admin only: users, tokens, the whole audit log.
    pub fn admin(&self, what: &str) -> Result<(), Problem> {
        match self.access.role() {
            Role::Admin => Ok(()),
            _ => Err(Problem::forbidden(format!("{what} needs the admin role"))),
        }
    }
}
