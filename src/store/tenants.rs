//! Tenants: who owns contacts, and in which language they are told about runs.

use sqlx::{PgPool, Row, postgres::PgRow};

use crate::domain::{ReportLanguage, TenantSlug};

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: i64,
    pub slug: TenantSlug,
    pub name: String,
    pub timezone: String,
    pub language: ReportLanguage,
    /// Contact language codes accepted besides FR and EN.
    pub extra_languages: Vec<String>,
    pub report_to: Vec<String>,
}

pub struct NewTenant {
    pub slug: TenantSlug,
    pub name: String,
    pub timezone: String,
    pub language: ReportLanguage,
    pub extra_languages: Vec<String>,
    pub report_to: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error("tenant {0} not found (register it with `dropfeed tenant add {0} --name ...`)")]
    NotFound(String),
    #[error("database error on tenant {slug}")]
    Db {
        slug: String,
        #[source]
        source: sqlx::Error,
    },
}

fn from_row(r: &PgRow) -> Tenant {
    let slug: String = r.get("slug");
    let language: String = r.get("language");
    Tenant {
        id: r.get("id"),
        // Slugs were parsed before they were stored.
        slug: TenantSlug::parse(&slug).unwrap_or_else(|_| TenantSlug::parse("invalid").expect("literal slug")),
        name: r.get("name"),
        timezone: r.get("timezone"),
        language: language.parse().unwrap_or_default(),
        extra_languages: r.get("extra_languages"),
        report_to: r.get("report_to"),
    }
}

pub async fn add(pool: &PgPool, t: NewTenant) -> Result<Tenant, TenantError> {
    let slug = t.slug.to_string();
    let row = sqlx::query(
        "INSERT INTO tenants (slug, name, timezone, language, extra_languages, report_to)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (slug) DO NOTHING RETURNING *",
    )
    .bind(&slug)
    .bind(&t.name)
    .bind(&t.timezone)
    .bind(t.language.as_str())
    .bind(&t.extra_languages)
    .bind(&t.report_to)
    .fetch_optional(pool)
    .await
    .map_err(|source| TenantError::Db { slug: slug.clone(), source })?;
    row.map(|r| from_row(&r)).ok_or(TenantError::Exists(slug))
}

pub async fn find(pool: &PgPool, slug: &TenantSlug) -> Result<Tenant, TenantError> {
    sqlx::query("SELECT * FROM tenants WHERE slug = $1")
        .bind(slug.as_str())
        .fetch_optional(pool)
        .await
        .map_err(|source| TenantError::Db { slug: slug.to_string(), source })?
        .map(|r| from_row(&r))
        .ok_or_else(|| TenantError::NotFound(slug.to_string()))
}

pub async fn find_by_id(pool: &PgPool, id: i64) -> Result<Tenant, TenantError> {
    sqlx::query("SELECT * FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(|source| TenantError::Db { slug: format!("#{id}"), source })?
        .map(|r| from_row(&r))
        .ok_or_else(|| TenantError::NotFound(format!("#{id}")))
}

pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<Tenant>> {
    Ok(sqlx::query("SELECT * FROM tenants ORDER BY slug").fetch_all(pool).await?.iter().map(from_row).collect())
}
