//! The API and the console on one listener: the API's routes, the console's
//! pages (its fallback answers unknown addresses), the body-idle timeout, and
//! the accept loop with the slow-client timeouts (`api::server`). Above both,
//! so that neither names the other's router.

use std::sync::Arc;

use axum::Router;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::api::{ApiState, server};
use crate::configuration::Settings;

pub fn router(pool: PgPool, settings: Arc<Settings>, timeouts: server::Timeouts) -> Router {
    crate::api::router()
        .merge(crate::console::router())
        .fallback(crate::console::fallback)
        .method_not_allowed_fallback(crate::console::method_not_allowed)
        .layer(RequestBodyTimeoutLayer::new(timeouts.body_idle))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(ApiState::new(pool, settings))
}

/// What a browser may do with our pages: scripts, styles and images from
/// this origin only (no inline script: `analyser.js` is a file), forms
/// posted here only, never framed (clickjacking), no type sniffing, no
/// address sent to other sites.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The security headers of every answer, and `no-store` on every one but
/// the static files: a page or an answer may hold what another user of the
/// same browser must not find in its cache.
async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let cacheable = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !cacheable {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Serves the API and the console until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    pool: PgPool,
    settings: Arc<Settings>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let secs = settings.console.as_ref().map(|c| c.client_timeout_secs).unwrap_or(60);
    let timeouts = server::Timeouts::all(secs);
    server::serve(listener, router(pool, settings, timeouts), timeouts, shutdown).await
}
