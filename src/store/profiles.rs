//! Saved import profiles, versioned: a new version only when the body changes.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

use crate::profile::Profile;

pub struct SavedProfile {
    pub name: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub profile: Profile,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileStoreError {
    #[error("profile {0:?} not found for this tenant")]
    NotFound(String),
    #[error("stored profile {name:?} v{version} cannot be read: {message}")]
    Corrupt { name: String, version: i32, message: String },
    #[error("database error on profile {name:?}")]
    Db {
        name: String,
        #[source]
        source: sqlx::Error,
    },
}

pub async fn latest(pool: &PgPool, tenant_id: i64, name: &str) -> Result<SavedProfile, ProfileStoreError> {
    let db = |source| ProfileStoreError::Db { name: name.to_owned(), source };
    let row = sqlx::query(
        "SELECT name, version, created_at, body FROM profiles
         WHERE tenant_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(pool)
    .await
    .map_err(db)?
    .ok_or_else(|| ProfileStoreError::NotFound(name.to_owned()))?;
    decode(&row)
}

/// Version `version` of profile `name`.
pub async fn version(
    pool: &PgPool,
    tenant_id: i64,
    name: &str,
    version: i32,
) -> Result<SavedProfile, ProfileStoreError> {
    let row = sqlx::query(
        "SELECT name, version, created_at, body FROM profiles WHERE tenant_id = $1 AND name = $2 AND version = $3",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(version)
    .fetch_optional(pool)
    .await
    .map_err(|source| ProfileStoreError::Db { name: name.to_owned(), source })?
    .ok_or_else(|| ProfileStoreError::NotFound(format!("{name} v{version}")))?;
    decode(&row)
}

/// Every version of profile `name`, newest first: (version, created_at).
pub async fn versions(
    pool: &PgPool,
    tenant_id: i64,
    name: &str,
) -> Result<Vec<(i32, DateTime<Utc>)>, ProfileStoreError> {
    let rows = sqlx::query(
        "SELECT version, created_at FROM profiles WHERE tenant_id = $1 AND name = $2 ORDER BY version DESC",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_all(pool)
    .await
    .map_err(|source| ProfileStoreError::Db { name: name.to_owned(), source })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

fn decode(row: &sqlx::postgres::PgRow) -> Result<SavedProfile, ProfileStoreError> {
    let name: String = row.get("name");
    let version: i32 = row.get("version");
    let body: String = row.get("body");
    let profile: Profile = serde_json::from_str(&body).map_err(|e| ProfileStoreError::Corrupt {
        name: name.clone(),
        version,
        message: e.to_string(),
    })?;
    Ok(SavedProfile { name, version, created_at: row.get("created_at"), profile })
}

/// Stores `profile` under `name`, returning its version: the latest one if
/// its body is identical, else a new one.
pub async fn save(
    conn: &mut PgConnection,
    tenant_id: i64,
    name: &str,
    profile: &Profile,
) -> Result<i32, ProfileStoreError> {
    let db = |source| ProfileStoreError::Db { name: name.to_owned(), source };
    let mut profile = profile.clone();
    profile.name = Some(name.to_owned());
    let body = serde_json::to_string(&profile).expect("a profile serialises to JSON");
    // Serialise concurrent saves of the same tenant's profiles.
    sqlx::query("SELECT pg_advisory_xact_lock(7, $1::int)")
        .bind(tenant_id as i32)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    let last = sqlx::query(
        "SELECT version, body FROM profiles WHERE tenant_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    if let Some(row) = &last {
        let stored: String = row.get("body");
        if stored == body {
            return Ok(row.get("version"));
        }
    }
    let version = last.map(|r| r.get::<i32, _>("version") + 1).unwrap_or(1);
    sqlx::query("INSERT INTO profiles (tenant_id, name, version, body) VALUES ($1, $2, $3, $4)")
        .bind(tenant_id)
        .bind(name)
        .bind(version)
        .bind(body)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(version)
}

/// The latest version of every profile of a tenant.
pub async fn list(pool: &PgPool, tenant_id: i64) -> Result<Vec<SavedProfile>, ProfileStoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT ON (name) name, version, created_at, body FROM profiles
         WHERE tenant_id = $1 ORDER BY name, version DESC",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await
    .map_err(|source| ProfileStoreError::Db { name: "*".into(), source })?;
    rows.iter().map(decode).collect()
}

/// A criterion declared by the tenant's profiles (`criteria list`): the
/// internal value codes it accepts and the profiles that declare it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeclaredCriterion {
    pub code: String,
    /// In declaration order, each code once.
    pub values: Vec<String>,
    pub profiles: Vec<String>,
}

/// The union of the criteria declared by the latest version of each of the
/// tenant's profiles, by code. Criteria are declared per profile, but a mass
/// update changes any contact's criteria, whichever profile imported it.
pub async fn declared_criteria(pool: &PgPool, tenant_id: i64) -> Result<Vec<DeclaredCriterion>, ProfileStoreError> {
    let saved = list(pool, tenant_id).await?;
    let mut out: Vec<DeclaredCriterion> = Vec::new();
    for p in &saved {
        for (code, values) in &p.profile.criteria {
            add_criterion(&mut out, code, values, Some(&p.name));
        }
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(out)
}

/// Adds `code`'s `values` to `union` (declared by `profile`, if stored).
pub fn add_criterion(union: &mut Vec<DeclaredCriterion>, code: &str, values: &[String], profile: Option<&str>) {
    let at = match union.iter().position(|c| c.code == code) {
        Some(i) => i,
        None => {
            union.push(DeclaredCriterion { code: code.to_owned(), values: Vec::new(), profiles: Vec::new() });
            union.len() - 1
        }
    };
    let c = &mut union[at];
    for v in values {
        if !c.values.contains(v) {
            c.values.push(v.clone());
        }
    }
    if let Some(name) = profile.filter(|n| !c.profiles.iter().any(|p| p == n)) {
        c.profiles.push(name.to_owned());
    }
}
