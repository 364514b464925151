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

/// The client address as the audit log and the login throttle see it: the
/// peer of the connection or, when that peer is a trusted proxy, the
/// right-most address of `X-Forwarded-For` that is not one (each proxy
/// appends the address it received from; the left part is the client's to
/// write). Always an address as `IpAddr` writes it: bounded, normalised.
pub fn client_address(parts: &Parts, trusted: &[ipnet::IpNet]) -> String {
    let Some(peer) = super::server::client_of(parts).map(|a| a.ip()) else { return "unknown".into() };
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    // From the right: past the trusted proxies, the first hop is the client;
    // one that is not an address ends the walk at the last known hop.
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<std::net::IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip.to_string(),
            Err(_) => break,
        }
    }
    client.to_string()
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, Problem> {
        let source = client_address(parts, &state.trusted_proxies);
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;

    fn parts(peer: &str, forwarded: &[&str]) -> Parts {
        let mut request = axum::http::Request::builder().uri("/");
        for f in forwarded {
            request = request.header("x-forwarded-for", *f);
        }
        let (mut parts, _) = request.body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo(format!("{peer}:5000").parse::<std::net::SocketAddr>().unwrap()));
        parts
    }

    #[test]
    fn the_client_is_the_peer_unless_a_trusted_proxy_forwards_it() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // A client naming itself: ignored.
        assert_eq!(client_address(&parts("203.0.113.9", &["1.2.3.4"]), &trusted), "203.0.113.9");
        // Behind two proxies: the right-most address that is not one.
        assert_eq!(client_address(&parts("10.0.0.2", &["1.2.3.4, 198.51.100.7, 10.0.0.1"]), &trusted), "198.51.100.7");
        assert_eq!(client_address(&parts("10.0.0.2", &["1.2.3.4", "198.51.100.7"]), &trusted), "198.51.100.7");
        // What a client wrote on the left cannot hide what the proxy added.
        assert_eq!(client_address(&parts("10.0.0.2", &["garbage, 198.51.100.7"]), &trusted), "198.51.100.7");
        assert_eq!(client_address(&parts("10.0.0.2", &["198.51.100.7, garbage"]), &trusted), "10.0.0.2");
        assert_eq!(client_address(&parts("10.0.0.2", &[]), &trusted), "10.0.0.2");
        assert_eq!(client_address(&parts("10.0.0.2", &["1.2.3.4"]), &[]), "10.0.0.2", "no proxy trusted");
    }
}
