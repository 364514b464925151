//! Logging: human-readable on a terminal, JSON lines for machines.
//!
//! Level policy: ERROR means an operator must act; WARN is a refused file or
//! a retried fault; INFO is the life of a run in a handful of lines; DEBUG is
//! for developers. Nothing is logged per row.

use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Whether an event may be written whatever `RUST_LOG` asks: suppaftp logs
/// the FTP control dialogue, `PASS <password>` included, at debug and trace
/// level, so its events below INFO are never written (tested in
/// `ftp_feeds::the_ftp_password_never_reaches_the_log_even_at_trace_level`).
fn safe(meta: &tracing::Metadata<'_>) -> bool {
    !(meta.target().starts_with("suppaftp") && *meta.level() > Level::INFO)
}

/// Installs the global subscriber, writing to stderr so stdout stays for
/// reports. `default_level` applies when `RUST_LOG` is not set.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let layer = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => {
            fmt::layer().json().flatten_event(true).with_current_span(true).with_writer(std::io::stderr).boxed()
        }
    };
    let _ = tracing_subscriber::registry().with(filter).with(layer.with_filter(filter_fn(safe))).try_init();
}
