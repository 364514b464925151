//! Account changes made by the operator (CLI) or an admin (console), each
//! in one transaction with its audit entry.

use sqlx::PgPool;

use crate::access::{self, NewToken};
use crate::domain::Access;
use crate::store::accounts;
use crate::store::audit::{self, Actor};

/// The longest life a token may be given: ten years. Beyond it a date
/// overflows (a huge `expires_days` once panicked the request), and a
/// secret that never needs renewing is one nobody remembers to revoke.
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// A token's life out of bounds.
#[derive(Debug, thiserror::Error)]
#[error("expires_days must be between 1 and {MAX_TOKEN_DAYS}, got {0}")]
pub struct BadExpiry(pub u32);

/// Creates a token (its secret is in the answer only); audited by prefix.
pub async fn create_token(
    pool: &PgPool,
    actor: &Actor,
    name: &str,
    access: &Access,
    tenant: Option<&str>,
    expires_days: Option<u32>,
) -> anyhow::Result<NewToken> {
    if let Some(d) = expires_days.filter(|d| !(1..=MAX_TOKEN_DAYS).contains(d)) {
        return Err(BadExpiry(d).into());
    }
    let expires_at = expires_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
    let new = access::generate_token()?;
    let mut tx = pool.begin().await?;
    accounts::add_token(&mut tx, &new, name, access, expires_at).await?;
    let detail = serde_json::json!({
        "prefix": new.prefix, "name": name, "role": access.role(), "tenant": tenant, "expires_at": expires_at,
    });
    audit::record(&mut tx, actor, access.tenant_id(), "token.create", detail).await?;
    tx.commit().await?;
    Ok(new)
}

/// Revokes the token named by `prefix`; its name.
pub async fn revoke_token(pool: &PgPool, actor: &Actor, prefix: &str) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    let name = accounts::revoke_token(&mut tx, prefix).await?;
    audit::record(&mut tx, actor, None, "token.revoke", serde_json::json!({"prefix": prefix, "name": name})).await?;
    tx.commit().await?;
    Ok(name)
}

/// Disables a user: its sessions stop at once, what it did stays.
pub async fn disable_user(pool: &PgPool, actor: &Actor, email: &str) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    accounts::disable_user(&mut tx, email).await?;
    audit::record(&mut tx, actor, None, "user.disable", serde_json::json!({"email": email})).await?;
    tx.commit().await?;
    Ok(())
}
