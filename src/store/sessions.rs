//! Console sessions in PostgreSQL (SPEC §8.1): created at login, found by the
//! SHA-256 of the cookie, extended while used, ended at logout or expiry.

use chrono::{DateTime, Duration, Utc};
use sqlx::{PgPool, Row};

use crate::domain::{Access, Role};

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct Session {
    pub email: String,
    pub access: Access,
    pub csrf: String,
    pub last_seen_at: DateTime<Utc>,
}

pub async fn create(
    pool: &PgPool,
    id_sha256: &[u8],
    user_id: i64,
    csrf: &str,
    client: &str,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO sessions (id_sha256, user_id, csrf, client, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id_sha256)
        .bind(user_id)
        .bind(csrf)
        .bind(client)
        .bind(expires_at)
        .execute(pool)
        .await?;
    Ok(())
}

/// The session whose cookie hashes to `id_sha256`, if it is live and its
/// user enabled. The primary key lookup is the comparison: what is compared
/// is a hash of 256 random bits, which a timing difference cannot help guess.
pub async fn find(pool: &PgPool, id_sha256: &[u8], now: DateTime<Utc>) -> sqlx::Result<Option<Session>> {
    let row = sqlx::query(
        "SELECT u.email, u.role, u.tenant_id, s.csrf, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_sha256 = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
    )
    .bind(id_sha256)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| {
        let role = Role::parse(r.get::<&str, _>("role"))?;
        Some(Session {
            email: r.get("email"),
            access: Access::of(role, r.get("tenant_id")).ok()?,
            csrf: r.get("csrf"),
            last_seen_at: r.get("last_seen_at"),
        })
    }))
}

/// Extends a session used at `now` by `days`.
pub async fn touch(pool: &PgPool, id_sha256: &[u8], now: DateTime<Utc>, days: u32) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE id_sha256 = $1")
        .bind(id_sha256)
        .bind(now)
        .bind(now + Duration::days(days.into()))
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes the sessions expired before `now` (they can no longer be used,
/// but each is a row and a user's client address kept for nothing).
pub async fn purge_expired(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(pool).await?;
    Ok(done.rows_affected())
}

pub async fn delete(pool: &PgPool, id_sha256: &[u8]) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_sha256 = $1").bind(id_sha256).execute(pool).await?;
    Ok(())
}

/// One login attempt, recorded (as a failure) before its password is
/// checked: what concurrent attempts count.
pub async fn begin_attempt(pool: &PgPool, email: &str, client: &str, at: DateTime<Utc>) -> sqlx::Result<i64> {
    sqlx::query_scalar("INSERT INTO login_attempts (email, client, at) VALUES ($1, $2, $3) RETURNING id")
        .bind(email)
        .bind(client)
        .bind(at)
        .fetch_one(pool)
        .await
}

/// The failures (attempts in flight included) of the account `email` and
/// from `client` since `since`, other than attempt `own`, each with the
/// time of the latest.
#[derive(Debug, Clone, Copy)]
pub struct Failures {
    pub by_account: i64,
    pub last_by_account: Option<DateTime<Utc>>,
    pub by_client: i64,
    pub last_by_client: Option<DateTime<Utc>>,
}

pub async fn failures(
    pool: &PgPool,
    email: &str,
    client: &str,
    since: DateTime<Utc>,
    own: i64,
) -> sqlx::Result<Failures> {
    let row = sqlx::query(
        "SELECT count(*) FILTER (WHERE email = $1), max(at) FILTER (WHERE email = $1),
                count(*) FILTER (WHERE client = $2), max(at) FILTER (WHERE client = $2)
         FROM login_attempts WHERE failed AND at > $3 AND id <> $4 AND (email = $1 OR client = $2)",
    )
    .bind(email)
    .bind(client)
    .bind(since)
    .bind(own)
    .fetch_one(pool)
    .await?;
    Ok(Failures {
        by_account: row.get(0),
        last_by_account: row.get(1),
        by_client: row.get(2),
        last_by_client: row.get(3),
    })
}

/// Ends attempt `id`: a refused one is forgotten (waiting is no failure,
/// or a guesser could keep an account waiting for ever), a successful one
/// is kept as such.
pub async fn end_attempt(pool: &PgPool, id: i64, succeeded: bool, refused: bool) -> sqlx::Result<()> {
    if refused {
        sqlx::query("DELETE FROM login_attempts WHERE id = $1").bind(id).execute(pool).await?;
    } else if succeeded {
        sqlx::query("UPDATE login_attempts SET failed = false WHERE id = $1").bind(id).execute(pool).await?;
    }
    Ok(())
}

/// Forgets attempts older than `before` (the throttle looks back less).
pub async fn purge_attempts(pool: &PgPool, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM login_attempts WHERE at < $1").bind(before).execute(pool).await?;
    Ok(done.rows_affected())
}
