//! The daemon's HTTP endpoint: `/healthz` (the process answers) and
//! `/readyz` (the database answers and every migration is applied).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::store::MIGRATOR;

pub fn router(pool: PgPool) -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" })).route("/readyz", get(readyz)).with_state(pool)
}

async fn readyz(State(pool): State<PgPool>) -> (StatusCode, String) {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success").fetch_one(&pool).await;
    match applied {
        Ok(Some(v)) if v >= latest => (StatusCode::OK, "ready\n".into()),
        Ok(v) => (StatusCode::SERVICE_UNAVAILABLE, format!("migrations pending: applied {v:?}, latest {latest}\n")),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database unreachable: {e}\n")),
    }
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, pool: PgPool, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(pool)).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
