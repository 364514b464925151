//! The daemon's HTTP endpoint: `/healthz` (the process answers) and
//! `/readyz` (the database answers and every migration is applied) and
//! `/metrics` (Prometheus text format).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::store::MIGRATOR;

#[derive(Clone)]
struct AppState {
    pool: PgPool,
    metrics: Option<PrometheusHandle>,
}

pub fn router(pool: PgPool, metrics: Option<PrometheusHandle>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { pool, metrics })
}

async fn render_metrics(State(state): State<AppState>) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let content_type = [("content-type", "text/plain; version=0.0.4")];
    match &state.metrics {
        Some(handle) => (StatusCode::OK, content_type, handle.render()),
        None => (StatusCode::SERVICE_UNAVAILABLE, content_type, "# metrics recorder not installed\n".into()),
    }
}

async fn readyz(State(AppState { pool, .. }): State<AppState>) -> (StatusCode, String) {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match crate::store::applied_migration(&pool).await {
        Ok(Some(v)) if v >= latest => (StatusCode::OK, "ready\n".into()),
        Ok(v) => (StatusCode::SERVICE_UNAVAILABLE, format!("migrations pending: applied {v:?}, latest {latest}\n")),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("database unreachable: {e}\n")),
    }
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, pool: PgPool, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(pool, crate::metrics::install()))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
