//! A tenant's lists of contacts: listing them and deleting one (seed 000:
//! "supprimer mon ancienne base de données"); its contacts stay.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

#[derive(Debug, Clone, serde::Serialize)]
pub struct ListRow {
    pub name: String,
    pub members: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn list(pool: &PgPool, tenant_id: i64) -> sqlx::Result<Vec<ListRow>> {
    let rows = sqlx::query(
        "SELECT l.name, (SELECT count(*) FROM list_members m WHERE m.list_id = l.id), l.created_at
         FROM lists l WHERE l.tenant_id = $1 ORDER BY l.name",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(|r| ListRow { name: r.get(0), members: r.get(1), created_at: r.get(2) }).collect())
}

/// Deletes the list and its memberships; returns the memberships removed,
/// `None` when the tenant has no such list. Takes the tenant's import lock:
/// an import running meanwhile would add members to a list that vanishes.
pub async fn delete(pool: &PgPool, tenant_id: i64, name: &str) -> sqlx::Result<Option<i64>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(1, $1::int)").bind(tenant_id as i32).execute(&mut *tx).await?;
    let Some(id): Option<i64> = sqlx::query_scalar("DELETE FROM lists WHERE tenant_id = $1 AND name = $2 RETURNING id")
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let members = sqlx::query("DELETE FROM list_members WHERE list_id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(Some(members.rows_affected() as i64))
}
