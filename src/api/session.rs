//! Console sessions: log in with e-mail and password (throttled per account
//! and per client address), a cookie that is `HttpOnly`, `SameSite=Lax` and
//! `Secure` behind https, and a CSRF token every state change of a session
//! must repeat in the `X-CSRF-Token` header.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::ApiState;
use super::auth::{Caller, client_address};
use super::extract::Json as JsonBody;
use super::problem::Problem;
use crate::domain::Email;
use crate::store::audit::{self, Actor};
use crate::store::{accounts, sessions, tenants};

pub const COOKIE: &str = "dropfeed_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Failed logins within `WINDOW_MINUTES` after which an account, or a client
/// address, must wait: a backoff that doubles with each further failure
/// (5 s, 10 s, 20 s...) since the latest, up to `MAX_WAIT_*`. An address is
/// held at most a minute, so that the users behind one address (an office,
/// a proxy) are never locked out by one of them guessing.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
pub const WINDOW_MINUTES: i64 = 15;
const MAX_WAIT_ACCOUNT_SECS: i64 = 15 * 60;
const MAX_WAIT_ADDRESS_SECS: i64 = 60;
const FIRST_WAIT_SECS: i64 = 5;

/// How long an attempt must still wait after these failures, if at all.
fn throttle(f: &sessions::Failures, now: chrono::DateTime<Utc>) -> Option<chrono::Duration> {
    let wait = |count: i64, limit: i64, max: i64, last: Option<chrono::DateTime<Utc>>| {
        let over = count - limit;
        let last = last?;
        if over < 0 {
            return None;
        }
        let secs = FIRST_WAIT_SECS.saturating_mul(1i64 << over.min(20)).min(max);
        let left = last + chrono::Duration::seconds(secs) - now;
        (left > chrono::Duration::zero()).then_some(left)
    };
    let account = wait(f.by_account, MAX_FAILURES_PER_ACCOUNT, MAX_WAIT_ACCOUNT_SECS, f.last_by_account);
    let address = wait(f.by_client, MAX_FAILURES_PER_ADDRESS, MAX_WAIT_ADDRESS_SECS, f.last_by_client);
    account.into_iter().chain(address).max()
}
/// The longest e-mail address (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

fn random_token() -> Result<String, Problem> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Problem::internal(format!("random source: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
}

/// The live session of a request's cookie, extended while used.
pub async fn lookup(headers: &HeaderMap, state: &ApiState) -> Result<Option<sessions::Session>, Problem> {
    let Some(id) = session_cookie(headers) else { return Ok(None) };
    let key = crate::access::token_sha256(&id);
    let now = Utc::now();
    let Some(session) = sessions::find(&state.pool, &key, now).await.map_err(Problem::internal)? else {
        return Ok(None);
    };
    // Sliding expiry, written at most once a minute.
    if now - session.last_seen_at > chrono::Duration::minutes(1) {
        sessions::touch(&state.pool, &key, now, state.session_days()).await.map_err(Problem::internal)?;
    }
    Ok(Some(session))
}

/// Whether `sent` is the session's CSRF token (compared in constant time).
pub fn csrf_matches(session: &sessions::Session, sent: &[u8]) -> bool {
    bool::from(sent.ct_eq(session.csrf.as_bytes()))
}

/// The caller of a request that carries a session cookie; state changes
/// must carry the session's CSRF token too.
pub async fn caller(parts: &Parts, state: &ApiState, source: String) -> Result<Caller, Problem> {
    let Some(session) = lookup(&parts.headers, state).await? else { return Err(Problem::unauthorized()) };
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
        if !csrf_matches(&session, sent) {
            return Err(Problem::forbidden("a change made with a session cookie needs its X-CSRF-Token header")
                .with_code("csrf"));
        }
    }
    Ok(Caller { actor: Actor { name: format!("user:{}", session.email), source }, access: session.access })
}

/// The client address of a request, for routes without a caller yet.
pub struct ClientAddress(pub String);

impl FromRequestParts<ApiState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<ClientAddress, Self::Rejection> {
        Ok(ClientAddress(client_address(parts, &state.trusted_proxies)))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    pub email: String,
    pub password: String,
}

/// Who is logged in, and the token its changes must repeat.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// `user:EMAIL` or `token:PREFIX`.
    pub actor: String,
    /// `admin`, `support` or `tenant`.
    #[schema(value_type = crate::domain::Role)]
    pub role: String,
    pub tenant: Option<String>,
    /// Send it back as `X-CSRF-Token` with every POST, PUT and DELETE made
    /// with the session cookie. Absent for a token.
    pub csrf_token: Option<String>,
}

async fn info(state: &ApiState, caller: &Caller, csrf: Option<String>) -> Result<SessionInfo, Problem> {
    let tenant = match caller.access.tenant_id() {
        Some(id) => Some(tenants::find_by_id(&state.pool, id).await.map_err(Problem::internal)?.slug.to_string()),
        None => None,
    };
    Ok(SessionInfo {
        actor: caller.actor.name.clone(),
        role: caller.access.role().to_string(),
        tenant,
        csrf_token: csrf,
    })
}

/// A session just opened: its cookie, its caller and its CSRF token.
pub struct Opened {
    pub cookie: Cookie<'static>,
    pub caller: Caller,
    pub csrf: String,
}

/// Checks a login (throttled, audited) and opens a session: the API's
/// `POST /session` and the console's login form.
pub async fn open(state: &ApiState, source: &str, email: &str, password: &str) -> Result<Opened, Problem> {
    // What is stored (the audit log, the throttle's count) is bounded and
    // normalised: an address as `Email` writes it, anything else cut to the
    // longest address there can be, on a character boundary.
    let email = Email::parse(email)
        .map(|e| e.to_string())
        .unwrap_or_else(|| email.trim().to_lowercase().chars().take(MAX_EMAIL_CHARS).collect());
    let actor = Actor { name: format!("user:{email}"), source: source.to_owned() };
    let now = Utc::now();
    // The attempt is counted before its password is checked: concurrent
    // guesses each see the others, and no burst gets past the count.
    let attempt = sessions::begin_attempt(&state.pool, &email, source, now).await.map_err(Problem::internal)?;
    let since = now - chrono::Duration::minutes(WINDOW_MINUTES);
    // Every attempt sweeps those past the window: failures alone (no one
    // logging in) would otherwise grow the table without end.
    sessions::purge_attempts(&state.pool, since).await.map_err(Problem::internal)?;
    let failures = sessions::failures(&state.pool, &email, source, since, attempt).await.map_err(Problem::internal)?;
    if let Some(wait) = throttle(&failures, now) {
        sessions::end_attempt(&state.pool, attempt, false, true).await.map_err(Problem::internal)?;
        let secs = wait.num_seconds().max(1);
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "auth.throttled",
            format!("too many failed logins: try again in {secs} s"),
        ));
    }
    let checked = accounts::check_password(&state.pool, &email, password).await;
    let checked = match checked {
        Err(accounts::AccountError::Busy(busy)) => {
            sessions::end_attempt(&state.pool, attempt, false, true).await.map_err(Problem::internal)?;
            return Err(Problem::new(StatusCode::SERVICE_UNAVAILABLE, "auth.busy", busy.to_string()));
        }
        other => other.map_err(Problem::internal)?,
    };
    sessions::end_attempt(&state.pool, attempt, checked.is_some(), false).await.map_err(Problem::internal)?;
    let Some((user, access)) = checked else {
        let detail = serde_json::json!({ "email": email });
        audit::record_on(&state.pool, &actor, None, "login.failed", detail).await.map_err(Problem::internal)?;
        return Err(Problem::new(StatusCode::UNAUTHORIZED, "auth.login", "wrong e-mail or password"));
    };
    // Expired sessions go as others log in: `dropfeed serve` has no daemon
    // to sweep them.
    sessions::purge_expired(&state.pool, Utc::now()).await.map_err(Problem::internal)?;
    let id = random_token()?;
    let csrf = random_token()?;
    let days = state.session_days();
    let expires = Utc::now() + chrono::Duration::days(days.into());
    sessions::create(&state.pool, &crate::access::token_sha256(&id), user.id, &csrf, source, expires)
        .await
        .map_err(Problem::internal)?;
    audit::record_on(&state.pool, &actor, access.tenant_id(), "login.succeeded", serde_json::json!({}))
        .await
        .map_err(Problem::internal)?;
    let cookie = Cookie::build((COOKIE, id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.secure_cookies())
        .max_age(cookie::time::Duration::days(days.into()))
        .build();
    Ok(Opened { cookie, caller: Caller { actor, access }, csrf })
}

/// Ends the session of a request's cookie (if any); the cookie that clears it.
pub async fn close(state: &ApiState, caller: &Caller, headers: &HeaderMap) -> Result<Cookie<'static>, Problem> {
    if let Some(id) = session_cookie(headers) {
        sessions::delete(&state.pool, &crate::access::token_sha256(&id)).await.map_err(Problem::internal)?;
    }
    audit::record_on(&state.pool, &caller.actor, caller.access.tenant_id(), "logout", serde_json::json!({}))
        .await
        .map_err(Problem::internal)?;
    Ok(Cookie::build((COOKIE, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::ZERO)
        .build())
}

/// Logs in with e-mail and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = Login,
    responses((status = 200, body = SessionInfo), (status = 401, body = super::problem::ProblemBody),
              (status = 429, body = super::problem::ProblemBody, description = "`auth.throttled`"),
              (status = 503, body = super::problem::ProblemBody, description = "`auth.busy`: too many logins being checked at once; retry")))]
pub async fn login(
    State(state): State<ApiState>,
    ClientAddress(source): ClientAddress,
    JsonBody(login): JsonBody<Login>,
) -> Result<Response, Problem> {
    let opened = open(&state, &source, &login.email, &login.password).await?;
    let body = info(&state, &opened.caller, Some(opened.csrf)).await?;
    Ok(([(header::SET_COOKIE, opened.cookie.to_string())], Json(body)).into_response())
}

/// Who the caller is (a session also gets its CSRF token again).
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = super::problem::ProblemBody)))]
pub async fn whoami(
    caller: Caller,
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, Problem> {
    let csrf = match caller.actor.name.starts_with("user:") {
        true => lookup(&headers, &state).await?.map(|s| s.csrf),
        false => None,
    };
    Ok(Json(info(&state, &caller, csrf).await?))
}

/// Logs out: the session ends and its cookie is cleared.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204), (status = 401, body = super::problem::ProblemBody), (status = 403, body = super::problem::ProblemBody)))]
pub async fn logout(caller: Caller, State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, Problem> {
    let gone = close(&state, &caller, &headers).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, gone.to_string())]).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn failures(by_account: i64, by_client: i64, ago_secs: i64, now: chrono::DateTime<Utc>) -> sessions::Failures {
        let last = Some(now - Duration::seconds(ago_secs));
        sessions::Failures { by_account, last_by_account: last, by_client, last_by_client: last }
    }

    #[test]
    fn failed_logins_make_later_ones_wait_longer_and_an_address_at_most_a_minute() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        assert_eq!(throttle(&failures(4, 4, 0, now), now), None);
        assert_eq!(throttle(&failures(5, 5, 0, now), now), Some(Duration::seconds(5)));
        assert_eq!(throttle(&failures(5, 5, 6, now), now), None, "the wait is over");
        assert_eq!(throttle(&failures(7, 7, 0, now), now), Some(Duration::seconds(20)));
        assert_eq!(throttle(&failures(40, 0, 0, now), now), Some(Duration::minutes(15)), "an account: 15 min at most");
        assert_eq!(throttle(&failures(0, 500, 0, now), now), Some(Duration::seconds(60)), "an address: a minute");
        assert_eq!(throttle(&failures(0, 500, 61, now), now), None);
    }
}
