//! Guards against a bad night: a feed's file whose valid rows fell sharply
//! since the feed's last successful run, or which withdraws too many
//! consents, is held (nothing written) until a person releases it.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::feed::Guards;
use crate::profile::Target;

use super::rules::Rule;
use super::write::Plan;

/// Why a run is held: the rule and the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tripped {
    pub rule: Rule,
    pub detail: String,
}

/// The valid rows (read less rejected) of the feed's last successful run of
/// the same profile: the size of a normal night.
async fn baseline(
    conn: &mut PgConnection,
    tenant_id: i64,
    feed: &str,
    profile: Option<&str>,
) -> sqlx::Result<Option<(Uuid, i64)>> {
    let row = sqlx::query(
        "SELECT id, rows - rejected FROM runs
         WHERE tenant_id = $1 AND feed = $2 AND profile_name IS NOT DISTINCT FROM $3
           AND status IN ('succeeded', 'succeeded_with_warnings') AND NOT dry_run
         ORDER BY started_at DESC LIMIT 1",
    )
    .bind(tenant_id)
    .bind(feed)
    .bind(profile)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Checks the guards once the file's lines are classified (before anything
/// is written). `valid` is the file's rows less its rejected ones.
pub async fn check(
    conn: &mut PgConnection,
    plan: &Plan<'_>,
    guards: &Guards,
    feed: &str,
    profile: Option<&str>,
    valid: i64,
) -> sqlx::Result<Option<Tripped>> {
    if let Some(max) = guards.max_row_drop_ratio
        && let Some((run, before)) = baseline(conn, plan.tenant_id, feed, profile).await?
        && before > 0
    {
        let drop = (before - valid) as f64 / before as f64;
        if drop > max {
            return Ok(Some(Tripped {
                rule: Rule::GuardRowDrop,
                detail: format!("{valid} / {before} = -{:.1} % > {:.1} %, run {run}", 100.0 * drop, 100.0 * max),
            }));
        }
    }
    if let Some(max) = guards.max_unsubscribe_ratio {
        for (key, turned, consenting) in unsubscribes(conn, plan).await? {
            // The share of the tenant's contacts consenting to `key` that
            // this file turns to false; a delta file is judged like a full one.
            let ratio = turned as f64 / consenting.max(1) as f64;
            if turned > 0 && ratio > max {
                return Ok(Some(Tripped {
                    rule: Rule::GuardUnsubscribe,
                    detail: format!(
                        "consent.{key}: {turned} / {consenting} = {:.1} % > {:.1} %",
                        100.0 * ratio,
                        100.0 * max
                    ),
                }));
            }
        }
    }
    Ok(None)
}

/// Per consent the file maps: how many known contacts it turns from true to
/// false, and how many of the tenant's contacts consent now.
async fn unsubscribes(conn: &mut PgConnection, plan: &Plan<'_>) -> sqlx::Result<Vec<(String, i64, i64)>> {
    let keys: Vec<String> = plan
        .mapping
        .mapped
        .iter()
        .filter_map(|m| match &m.target {
            Target::Consent(k) => Some(k.clone()),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "WITH keys AS (SELECT unnest($2::text[]) AS key),
         turned AS (
            SELECT key, count(*) AS n
            FROM staging s JOIN classified k USING (line) JOIN contacts c ON c.id = k.contact_id, keys
            WHERE (c.consents -> key) = 'true'::jsonb AND (s.consents -> key) = 'false'::jsonb
            GROUP BY key
         ), consenting AS (
            SELECT key, count(*) AS n FROM contacts c, keys
            WHERE c.tenant_id = $1 AND (c.consents -> key) = 'true'::jsonb
            GROUP BY key
         )
         SELECT keys.key, coalesce(t.n, 0), coalesce(c.n, 0)
         FROM keys LEFT JOIN turned t USING (key) LEFT JOIN consenting c USING (key)
         ORDER BY keys.key",
    )
    .bind(plan.tenant_id)
    .bind(&keys)
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}
