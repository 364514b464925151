//! Reading contacts back: the rows `contacts export` writes.

use futures_util::stream::BoxStream;
use sqlx::AssertSqlSafe;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// Which contacts of a tenant to read.
pub struct Filter {
    pub tenant_id: i64,
    pub list: Option<String>,
    pub created_by_run: Option<Uuid>,
}

const WHERE: &str = "c.tenant_id = $1
    AND ($2::text IS NULL OR c.id IN (SELECT lm.contact_id FROM list_members lm JOIN lists ll ON ll.id = lm.list_id
                                       WHERE ll.tenant_id = $1 AND ll.name = $2))
    AND ($3::uuid IS NULL OR c.created_by_run = $3)";

/// The criteria, consent and attribute keys used by the selected contacts,
/// sorted, so the export has one column per key.
pub async fn keys(pool: &PgPool, f: &Filter) -> sqlx::Result<[Vec<String>; 3]> {
    let mut out: [Vec<String>; 3] = Default::default();
    for (i, column) in ["criteria", "consents", "attributes"].iter().enumerate() {
        out[i] = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT DISTINCT k FROM contacts c, jsonb_object_keys(c.{column}) k WHERE {WHERE} ORDER BY k"
        )))
        .bind(f.tenant_id)
        .bind(&f.list)
        .bind(f.created_by_run)
        .fetch_all(pool)
        .await?;
    }
    Ok(out)
}

/// The selected contacts, e-mail order, streamed so memory stays flat.
/// Columns: `id`, the base fields (birthdate as dd.mm.yyyy), then `criteria`,
/// `consents`, `attributes` (JSON) and `lists` (names joined by `,`).
pub fn stream<'a>(pool: &'a PgPool, f: &'a Filter) -> BoxStream<'a, sqlx::Result<sqlx::postgres::PgRow>> {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT c.id, c.email, c.language, c.display, c.civility, c.first_name, c.last_name,
                to_char(c.birthdate, 'DD.MM.YYYY') AS birthdate, c.structure, c.address, c.postal_code,
                c.town, c.state, c.country, c.phone, c.mobile, c.criteria, c.consents, c.attributes, m.lists
             FROM contacts c
             LEFT JOIN (SELECT m.contact_id, string_agg(l.name, ',' ORDER BY l.name) AS lists
                        FROM list_members m JOIN lists l ON l.id = m.list_id AND l.tenant_id = $1
                        GROUP BY m.contact_id) m ON m.contact_id = c.id
             WHERE {WHERE} ORDER BY c.email"
    )))
    .bind(f.tenant_id)
    .bind(f.list.clone())
    .bind(f.created_by_run)
    .fetch(pool)
}

pub fn text(row: &sqlx::postgres::PgRow, column: &str) -> String {
    row.get::<Option<String>, _>(column).unwrap_or_default()
}
