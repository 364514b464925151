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

/// Failed logins since `since`: of the account `email`, and from `client`.
pub async fn recent_failures(
    pool: &PgPool,
    email: &str,
    client: &str,
    since: DateTime<Utc>,
) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT count(*) FILTER (WHERE detail->>'email' = $1), count(*) FILTER (WHERE source = $2)
         FROM audit_log WHERE action = 'login.failed' AND at > $3",
    )
    .bind(email)
    .bind(client)
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok((row.get(0), row.get(1)))
}
