//! The API's accept loop: hyper with the timeouts `axum::serve` has no knob
//! for, so that a slow or stalled client cannot hold a connection (and the
//! database cursor behind a streamed answer) forever.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How long a client may take to send its request's headers, to leave a
/// request body idle (`RequestBodyTimeoutLayer`), or to leave an answer unread.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub headers: Duration,
    pub body_idle: Duration,
    pub write_stall: Duration,
}

impl Timeouts {
    /// One bound for the three: `console.client_timeout_secs`.
    pub fn all(secs: u64) -> Timeouts {
        let d = Duration::from_secs(secs.max(1));
        Timeouts { headers: d, body_idle: d, write_stall: d }
    }
}

/// Serves `app` until `shutdown` is cancelled, then lets requests in flight
/// finish (at most 30 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!("api accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        // Only writes are timed on the socket: a read timeout would also fire
        // while a long import is being computed and nothing is to be read.
        let mut io = TimeoutStream::new(stream);
        io.set_write_timeout(Some(timeouts.write_stall));
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(addr));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeouts.headers)
            .serve_connection(TokioIo::new(Box::pin(io)), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(client = %addr, "api connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("api requests still running after 30 s were cut at shutdown");
    }
    Ok(())
}

/// The client's address, for the audit log and login throttling.
pub fn client_of(parts: &axum::http::request::Parts) -> Option<SocketAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}
