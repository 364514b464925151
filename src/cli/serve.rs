//! `run` and `serve`: the daemon (scheduler, workers, HTTP endpoint and API)
//! and the API alone, both until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::feeds::apply_feeds;
use crate::configuration::{self, Settings};
use crate::daemon::Daemon;
use crate::http;
use crate::mail::Mailer;
use crate::store::audit::Actor;

pub fn daemon(pool: &PgPool, settings: &Settings) -> anyhow::Result<Daemon> {
    Daemon::from_settings(pool, settings)
}

pub async fn run_daemon(pool: PgPool, settings: &Settings) -> anyhow::Result<ExitCode> {
    // A bad smtp block refuses to start, rather than failing the first report.
    let mailer = settings.smtp.as_ref().map(Mailer::from_settings).transpose()?;
    if mailer.is_none() {
        tracing::warn!("no smtp configured: reports and alerts are stored but not sent");
    }
    if let Some(dir) = &settings.feeds_dir {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read feeds_dir {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        files.sort();
        if !files.is_empty() {
            let actor = Actor { name: "daemon:feeds_dir".into(), source: dir.display().to_string() };
            apply_feeds(&pool, &files, &actor).await?;
        }
    }
    let listener = tokio::net::TcpListener::bind(&settings.http.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http.bind))?;
    tracing::info!(bind = %settings.http.bind, "http endpoint listening");
    let stop_http = CancellationToken::new();
    let http = tokio::spawn(http::serve(listener, pool.clone(), stop_http.clone()));
    let api = match &settings.console {
        Some(console) => {
            let listener = bind_api(console).await?;
            Some(tokio::spawn(crate::web::serve(listener, pool.clone(), Arc::new(settings.clone()), stop_http.clone())))
        }
        None => None,
    };
    Daemon { mailer, ..daemon(&pool, settings)? }.run(shutdown_signal()).await?;
    stop_http.cancel();
    let _ = http.await;
    if let Some(api) = api {
        let _ = api.await;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn serve(pool: PgPool, settings: &Settings) -> anyhow::Result<ExitCode> {
    let console = settings.console.clone().unwrap_or_default();
    let listener = bind_api(&console).await?;
    let stop = CancellationToken::new();
    let mut server = tokio::spawn(crate::web::serve(listener, pool, Arc::new(settings.clone()), stop.clone()));
    // The server ends by itself only when it fails.
    tokio::select! {
        _ = shutdown_signal() => stop.cancel(),
        done = &mut server => {
            done.context("the API server panicked")?.context("the API server failed")?;
            return Ok(ExitCode::FAILURE);
        }
    }
    server.await.context("the API server panicked")?.context("the API server failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The listener of the API, on `console.bind`.
async fn bind_api(console: &configuration::ConsoleSettings) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(&console.bind)
        .await
        .with_context(|| format!("cannot listen on console.bind {}", console.bind))?;
    tracing::info!(bind = %console.bind, "api listening");
    Ok(listener)
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM that arrives
/// while the daemon starts is a clean shutdown, not the default kill.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown signal received");
    }
}
