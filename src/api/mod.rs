//! The HTTP API (SPEC §8.2), JSON under `/api/v1`, for support staff's and
//! customers' scripts: every route takes a `Caller` (auth.rs), answers
//! errors as problem+json (problem.rs) and streams what can be large (a
//! run's report, its rejects file) instead of holding it. Served by
//! `dropfeed serve` and, when `console.bind` is set, by `dropfeed run`.

pub mod auth;
pub mod problem;
mod routes;

use axum::Router;
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every route reaches.
#[derive(Clone)]
pub struct ApiState {
    pub pool: PgPool,
}

pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/api/v1/tenants", get(routes::tenants))
        .route("/api/v1/tenants/{tenant}", get(routes::tenant))
        .route("/api/v1/runs", get(routes::runs))
        .route("/api/v1/runs/{run}", get(routes::run))
        .route("/api/v1/runs/{run}/messages", get(routes::messages))
        .route("/api/v1/runs/{run}/rejects.csv", get(routes::rejects))
        .fallback(|| async { problem::Problem::not_found("this route") })
        .with_state(ApiState { pool })
}

/// Serves the API until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, pool: PgPool, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(pool)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
