//! PostgreSQL access: connecting (creating the database and applying the
//! embedded migrations), and the queries of each table family.

pub mod accounts;
pub mod audit;
pub mod contacts;
pub mod cursor;
pub mod feeds;
pub mod leases;
pub mod lists;
pub mod notifications;
pub mod profiles;
pub mod runs;
pub mod sessions;
pub mod tenants;

use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool, Postgres};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable database url>".into(),
    }
}

/// The latest migration applied successfully (`/readyz` compares it with
/// the ones this binary embeds).
pub async fn applied_migration(pool: &PgPool) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success").fetch_one(pool).await
}

/// Creates the database if it is missing and applies pending migrations.
pub async fn migrate(url: &str) -> anyhow::Result<PgPool> {
    let shown = redacted(url);
    if !Postgres::database_exists(url).await.with_context(|| format!("cannot reach PostgreSQL at {shown}"))? {
        Postgres::create_database(url).await.with_context(|| format!("cannot create the database {shown}"))?;
    }
    let pool = connect(url).await?;
    MIGRATOR.run(&pool).await.with_context(|| format!("cannot apply migrations to {shown}"))?;
    Ok(pool)
}

/// PostgreSQL memory for one import's staging tables (about 300 MB per
/// million rows); beyond it they spill to disk, which only costs time.
const TEMP_BUFFERS: &str = "512MB";

pub async fn connect(url: &str) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = url.parse().with_context(|| format!("invalid database url {}", redacted(url)))?;
    // Bulk statements of a large import legitimately take seconds: log them
    // at debug level, not as warnings.
    let options = options
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1))
        // An import stages its file in temporary tables; with the default
        // 8 MB of temp_buffers a 1M-row file goes through the disk three
        // times (COPY, joins, insert). Only a session that uses temporary
        // tables takes this memory, and only as much as it needs.
        .options([("temp_buffers", TEMP_BUFFERS)]);
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to {}", redacted(url)))
}
