//! Users and API tokens (SPEC §8.1): who may call the API and the console.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use crate::access;
use crate::domain::{Access, Role};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("a user {0} already exists")]
    UserExists(String),
    #[error("no user {0}")]
    NoUser(String),
    #[error("no token with prefix {0}")]
    NoToken(String),
    #[error(transparent)]
    Busy(#[from] access::Busy),
    #[error("database error on {what}")]
    Db {
        what: String,
        #[source]
        source: sqlx::Error,
    },
}

fn db(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> AccountError {
    let what = what.into();
    move |source| AccountError::Db { what, source }
}

/// A user as listed (never its password hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

fn access_of(r: &PgRow) -> Option<Access> {
    let role = Role::parse(r.get::<&str, _>("role"))?;
    Access::of(role, r.get("tenant_id")).ok()
}

fn user_of(r: &PgRow) -> User {
    User {
        id: r.get("id"),
        email: r.get("email"),
        role: Role::parse(r.get::<&str, _>("role")).unwrap_or(Role::Tenant),
        tenant: r.get("slug"),
        disabled: r.get::<Option<DateTime<Utc>>, _>("disabled_at").is_some(),
        created_at: r.get("created_at"),
    }
}

/// Adds a user; `email` is already trimmed and lower-cased (`domain::Email`).
pub async fn add_user(
    conn: &mut PgConnection,
    email: &str,
    access: &Access,
    password_hash: &str,
) -> Result<i64, AccountError> {
    sqlx::query_scalar(
        "INSERT INTO users (email, role, tenant_id, password_hash) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING RETURNING id",
    )
    .bind(email)
    .bind(access.role().as_str())
    .bind(access.tenant_id())
    .bind(password_hash)
    .fetch_optional(conn)
    .await
    .map_err(db(format!("user {email}")))?
    .ok_or_else(|| AccountError::UserExists(email.to_owned()))
}

pub async fn list_users(pool: &PgPool) -> Result<Vec<User>, AccountError> {
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.role, t.slug, u.disabled_at, u.created_at
         FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id ORDER BY u.email",
    )
    .fetch_all(pool)
    .await
    .map_err(db("users"))?;
    Ok(rows.iter().map(user_of).collect())
}

/// Disables a user (it can no longer log in; its sessions end with it).
pub async fn disable_user(conn: &mut PgConnection, email: &str) -> Result<(), AccountError> {
    let done =
        sqlx::query("UPDATE users SET disabled_at = coalesce(disabled_at, now()), updated_at = now() WHERE email = $1")
            .bind(email)
            .execute(conn)
            .await
            .map_err(db(format!("user {email}")))?;
    if done.rows_affected() == 0 {
        return Err(AccountError::NoUser(email.to_owned()));
    }
    Ok(())
}

/// Sets a user's password and ends every session it has: whoever knew the
/// old password (the reason it is changed, often) is logged out with it.
pub async fn set_password(conn: &mut PgConnection, email: &str, password_hash: &str) -> Result<(), AccountError> {
    let done = sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE email = $1")
        .bind(email)
        .bind(password_hash)
        .execute(&mut *conn)
        .await
        .map_err(db(format!("user {email}")))?;
    if done.rows_affected() == 0 {
        return Err(AccountError::NoUser(email.to_owned()));
    }
    sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = $1)")
        .bind(email)
        .execute(conn)
        .await
        .map_err(db(format!("sessions of {email}")))?;
    Ok(())
}

/// The access of an enabled user whose password is `password`. `None`
/// whatever the reason (no such user, disabled, wrong password): a caller
/// learns nothing more. The hash is computed even for an unknown user, so
/// the time taken does not tell which e-mails exist.
pub async fn check_password(
    pool: &PgPool,
    email: &str,
    password: &str,
) -> Result<Option<(User, Access)>, AccountError> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.role, u.tenant_id, t.slug, u.disabled_at, u.created_at, u.password_hash
         FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.email = $1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await
    .map_err(db(format!("user {email}")))?;
    // For unknown users, the hash of a password nobody has: made once, with
    // the same parameters, so checking it takes as long as a real one.
    static DECOY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        access::generate_password().and_then(|p| access::hash_password(&p)).unwrap_or_default()
    });
    let hash: String = match &row {
        Some(r) => r.get("password_hash"),
        None => tokio::task::spawn_blocking(|| DECOY.clone()).await.unwrap_or_default(),
    };
    let matches = access::HashGate::global().verify(password.to_owned(), hash).await?;
    Ok(row.filter(|_| matches).and_then(|r| {
        let user = user_of(&r);
        let access = access_of(&r)?;
        (!user.disabled).then_some((user, access))
    }))
}

/// A token as listed: its prefix, never the token.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    pub prefix: String,
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

pub async fn add_token(
    conn: &mut PgConnection,
    token: &access::NewToken,
    name: &str,
    access: &Access,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), AccountError> {
    sqlx::query(
        "INSERT INTO api_tokens (prefix, name, role, tenant_id, sha256, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&token.prefix)
    .bind(name)
    .bind(access.role().as_str())
    .bind(access.tenant_id())
    .bind(&token.sha256)
    .bind(expires_at)
    .execute(conn)
    .await
    .map_err(db(format!("token {name}")))?;
    Ok(())
}

pub async fn list_tokens(pool: &PgPool) -> Result<Vec<TokenRow>, AccountError> {
    let rows = sqlx::query(
        "SELECT k.prefix, k.name, k.role, t.slug, k.created_at, k.expires_at, k.revoked_at, k.last_used_at
         FROM api_tokens k LEFT JOIN tenants t ON t.id = k.tenant_id ORDER BY k.created_at, k.id",
    )
    .fetch_all(pool)
    .await
    .map_err(db("tokens"))?;
    Ok(rows
        .iter()
        .map(|r| TokenRow {
            prefix: r.get("prefix"),
            name: r.get("name"),
            role: Role::parse(r.get::<&str, _>("role")).unwrap_or(Role::Tenant),
            tenant: r.get("slug"),
            created_at: r.get("created_at"),
            expires_at: r.get("expires_at"),
            revoked_at: r.get("revoked_at"),
            last_used_at: r.get("last_used_at"),
        })
        .collect())
}

/// Revokes the token named by `prefix`; returns its name.
pub async fn revoke_token(conn: &mut PgConnection, prefix: &str) -> Result<String, AccountError> {
    sqlx::query_scalar(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE prefix = $1 RETURNING name",
    )
    .bind(prefix)
    .fetch_optional(conn)
    .await
    .map_err(db(format!("token {prefix}")))?
    .ok_or_else(|| AccountError::NoToken(prefix.to_owned()))
}

/// The access a bearer token gives at `now`: `None` for anything but a
/// live token (unknown, wrong, revoked, expired). Records its use.
pub async fn check_token(
    pool: &PgPool,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, Access)>, AccountError> {
    let Some(prefix) = access::token_prefix(token) else { return Ok(None) };
    let Some(row) = sqlx::query(
        "SELECT prefix, role, tenant_id, sha256, last_used_at FROM api_tokens
         WHERE prefix = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(prefix)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db(format!("token {prefix}")))?
    else {
        return Ok(None);
    };
    if !access::token_matches(token, row.get::<&[u8], _>("sha256")) {
        return Ok(None);
    }
    // Once a minute is enough to tell a live token from a forgotten one, and
    // spares a write (and a round trip) on every request.
    let last: Option<DateTime<Utc>> = row.get("last_used_at");
    if last.is_none_or(|t| now - t > chrono::Duration::minutes(1)) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE prefix = $1")
            .bind(prefix)
            .bind(now)
            .execute(pool)
            .await
            .map_err(db(format!("token {prefix}")))?;
    }
    Ok(access_of(&row).map(|a| (prefix.to_owned(), a)))
}
