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
        .with_state(ApiState { pool, settings })
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
