//! The audit log (SPEC §8.1): every change, who made it, when and from where.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

/// Who made a change and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `user:EMAIL`, `token:PREFIX` or `cli:LOGIN`.
    pub name: String,
    /// The client address, or `cli`.
    pub source: String,
}

impl Actor {
    /// The operator running a command on the server.
    pub fn cli() -> Actor {
        let login = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
        Actor { name: format!("cli:{login}"), source: "cli".into() }
    }
}

/// One change. `detail` must hold no secret.
pub async fn record(
    conn: &mut PgConnection,
    actor: &Actor,
    tenant_id: Option<i64>,
    action: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO audit_log (actor, source, tenant_id, action, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(&actor.name)
        .bind(&actor.source)
        .bind(tenant_id)
        .bind(action)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// One change made outside a transaction of its own.
pub async fn record_on(
    pool: &PgPool,
    actor: &Actor,
    tenant_id: Option<i64>,
    action: &str,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    record(&mut *pool.acquire().await?, actor, tenant_id, action, detail).await
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub source: String,
    pub tenant: Option<String>,
    pub action: String,
    pub detail: serde_json::Value,
}

/// The newest entries first, of one tenant when given, older than the entry
/// `before` (the cursor of the next page).
/// Who released or replayed run `of` (the `run.release` / `run.replay` entry
/// naming it), and when: the console's page of a held run says so.
pub async fn rerun_of(pool: &PgPool, of: uuid::Uuid) -> sqlx::Result<Option<(String, chrono::DateTime<chrono::Utc>)>> {
    let row = sqlx::query(
        "SELECT actor, at FROM audit_log WHERE action IN ('run.release', 'run.replay') AND detail->>'run' = $1
         ORDER BY id LIMIT 1",
    )
    .bind(of.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| (r.get("actor"), r.get("at"))))
}

pub async fn list(pool: &PgPool, tenant_id: Option<i64>, before: Option<i64>, limit: i64) -> sqlx::Result<Vec<Entry>> {
    let rows = sqlx::query(
        "SELECT a.id, a.at, a.actor, a.source, t.slug, a.action, a.detail
         FROM audit_log a LEFT JOIN tenants t ON t.id = a.tenant_id
         WHERE ($1::bigint IS NULL OR a.tenant_id = $1) AND ($2::bigint IS NULL OR a.id < $2)
         ORDER BY a.id DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Entry {
            id: r.get("id"),
            at: r.get("at"),
            actor: r.get("actor"),
            source: r.get("source"),
            tenant: r.get("slug"),
            action: r.get("action"),
            detail: r.get("detail"),
        })
        .collect())
}
