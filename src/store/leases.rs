//! Named leases in PostgreSQL for work one replica at a time must do (the
//! archive purge): whoever takes a free or expired lease owns it until it
//! expires or is released, so a replica that dies mid-work blocks nobody
//! for longer than the lease.

use sqlx::PgPool;

/// Takes lease `name` for `owner` for `secs` seconds when it is free,
/// expired or already `owner`'s; returns whether `owner` now holds it.
pub async fn take(pool: &PgPool, name: &str, owner: &str, secs: f64) -> sqlx::Result<bool> {
    let taken = sqlx::query_scalar::<_, String>(
        "INSERT INTO leases (name, owner, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
           WHERE leases.expires_at < now() OR leases.owner = EXCLUDED.owner
         RETURNING owner",
    )
    .bind(name)
    .bind(owner)
    .bind(secs)
    .fetch_optional(pool)
    .await?;
    Ok(taken.is_some())
}

/// Gives lease `name` up if `owner` holds it.
pub async fn release(pool: &PgPool, name: &str, owner: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2").bind(name).bind(owner).execute(pool).await?;
    Ok(())
}

/// This process's name as an owner of leases (and of its spool folder):
/// host, pid and a random part.
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{}", std::process::id(), &uuid::Uuid::now_v7().simple().to_string()[24..])
}
