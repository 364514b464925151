//! Reading contacts back: the rows `contacts export` writes, by queries whose
//! cost stays linear when the planner's estimates are wrong (tables never
//! analysed, dead rows a killed import left).

use futures_util::stream::BoxStream;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

/// Which contacts of a tenant to read.
pub struct Filter {
    pub tenant_id: i64,
    pub list: Option<String>,
    pub created_by_run: Option<Uuid>,
}

impl Filter {
    /// The condition on `contacts c`, naming only the filters given: a
    /// `$n IS NULL OR …` condition would hide the index from a generic plan.
    /// `$1` is the tenant, then the list's name, then the run.
    fn condition(&self) -> String {
        let mut sql = "c.tenant_id = $1".to_owned();
        let mut n = 1;
        if self.list.is_some() {
            n += 1;
            // The members of one list, by the primary key (list_id, contact_id).
            sql.push_str(&format!(
                " AND c.id IN (SELECT m.contact_id FROM lists l JOIN list_members m ON m.list_id = l.id
                               WHERE l.tenant_id = $1 AND l.name = ${n})"
            ));
        }
        if self.created_by_run.is_some() {
            n += 1;
            sql.push_str(&format!(" AND c.created_by_run = ${n}"));
        }
        sql
    }

    fn bind<'q>(&self, q: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        let mut q = q.bind(self.tenant_id);
        if let Some(list) = &self.list {
            q = q.bind(list.clone());
        }
        if let Some(run) = self.created_by_run {
            q = q.bind(run);
        }
        q
    }
}

/// The criteria, consent and attribute keys used by the selected contacts,
/// sorted, so the export has one column per key: one scan of the contacts.
pub async fn keys(conn: &mut PgConnection, f: &Filter) -> sqlx::Result<[Vec<String>; 3]> {
    let sql = format!(
        "SELECT x.kind, x.key FROM contacts c CROSS JOIN LATERAL (
            SELECT 0, jsonb_object_keys(c.criteria)
            UNION ALL SELECT 1, jsonb_object_keys(c.consents)
            UNION ALL SELECT 2, jsonb_object_keys(c.attributes)
         ) AS x(kind, key)
         WHERE {} GROUP BY x.kind, x.key ORDER BY x.kind, x.key",
        f.condition()
    );
    let mut out: [Vec<String>; 3] = Default::default();
    for row in f.bind(sqlx::query(AssertSqlSafe(sql))).fetch_all(conn).await? {
        let kind: i32 = row.get(0);
        out[kind as usize].push(row.get(1));
    }
    Ok(out)
}

/// The export's query. Each contact's lists are gathered by the index on
/// `list_members (contact_id)`: one short lookup per contact, where a join
/// with an aggregate of every membership became, on a planner that took the
/// contacts for a handful of rows, a nested loop over that aggregate (7
/// minutes for 200,000 contacts).
fn select(f: &Filter) -> String {
    format!(
        "SELECT c.id, c.email, c.language, c.display, c.civility, c.first_name, c.last_name,
                to_char(c.birthdate, 'DD.MM.YYYY') AS birthdate, c.structure, c.address, c.postal_code,
                c.town, c.state, c.country, c.phone, c.mobile, c.criteria, c.consents, c.attributes,
                (SELECT string_agg(l.name, ',' ORDER BY l.name)
                 FROM list_members m JOIN lists l ON l.id = m.list_id
                 WHERE m.contact_id = c.id AND l.tenant_id = $1) AS lists
         FROM contacts c
         WHERE {} ORDER BY c.email",
        f.condition()
    )
}

/// Starts the read of an export: one read-only snapshot, so the columns
/// `keys` finds are those of the rows `stream` reads, and no JIT (the
/// planner's cost of a per-contact subplan on a million contacts reaches
/// its thresholds, and compiling costs more than it saves).
pub async fn begin(pool: &PgPool) -> sqlx::Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::raw_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// The selected contacts, e-mail order, streamed so memory stays flat.
/// Columns: `id`, the base fields (birthdate as dd.mm.yyyy), then `criteria`,
/// `consents`, `attributes` (JSON) and `lists` (names joined by `,`).
pub fn stream<'a>(conn: &'a mut PgConnection, f: &'a Filter) -> BoxStream<'a, sqlx::Result<PgRow>> {
    f.bind(sqlx::query(AssertSqlSafe(select(f)))).fetch(conn)
}

/// The plan PostgreSQL chooses for the export now (`EXPLAIN (FORMAT JSON)`),
/// to check that it stays linear whatever the statistics.
pub async fn plan(pool: &PgPool, f: &Filter) -> sqlx::Result<serde_json::Value> {
    let sql = format!("EXPLAIN (FORMAT JSON) {}", select(f));
    f.bind(sqlx::query(AssertSqlSafe(sql))).fetch_one(pool).await?.try_get(0)
}

pub fn text(row: &PgRow, column: &str) -> String {
    row.get::<Option<String>, _>(column).unwrap_or_default()
}
