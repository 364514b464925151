//! The notifications outbox: reports and alerts queued (an alert once per
//! feed, code and scope), claimed for delivery so that several daemons never
//! send one twice, and their delivery state as `runs show` prints it.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

pub use crate::domain::run::DeliveryState;

/// What a notification says.
pub struct Message<'a> {
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    /// File name and bytes.
    pub attachment: Option<(&'a str, &'a [u8])>,
}

/// A notification to queue.
pub struct NewNotification<'a> {
    pub tenant_id: i64,
    pub run_id: Option<Uuid>,
    pub feed_id: Option<i64>,
    /// `report` or `alert`.
    pub kind: &'static str,
    pub code: &'a str,
    pub recipients: &'a [String],
    pub message: Message<'a>,
    /// An alert's scope (a file's identity, or a day): with the feed and the
    /// code, it makes the alert's dedupe key (SQL `alert_dedupe_key`).
    pub alert_scope: Option<&'a str>,
}

/// Queues a notification; `None` when an alert with the same dedupe key was
/// already queued.
pub async fn enqueue(pool: &PgPool, n: &NewNotification<'_>) -> sqlx::Result<Option<i64>> {
    let (att_name, att) = n.message.attachment.unzip();
    sqlx::query_scalar(
        "INSERT INTO notifications (tenant_id, run_id, feed_id, kind, code, recipients, subject, body_text, body_html,
            attachment_name, attachment, dedupe_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 CASE WHEN $12::text IS NOT NULL THEN alert_dedupe_key($3, $5, $12) END)
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(n.tenant_id)
    .bind(n.run_id)
    .bind(n.feed_id)
    .bind(n.kind)
    .bind(n.code)
    .bind(n.recipients)
    .bind(n.message.subject)
    .bind(n.message.text)
    .bind(n.message.html)
    .bind(att_name)
    .bind(att)
    .bind(n.alert_scope)
    .fetch_optional(pool)
    .await
}

/// A notification claimed for delivery.
pub struct Claimed {
    pub id: i64,
    pub recipients: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachment: Option<(String, Vec<u8>)>,
    pub attempts: i32,
}

/// Claims at most `limit` due notifications (or only `only`) for ten
/// minutes: a daemon that dies mid-send leaves them to another after that.
pub async fn claim_due(pool: &PgPool, now: DateTime<Utc>, limit: i64, only: Option<i64>) -> sqlx::Result<Vec<Claimed>> {
    let rows = sqlx::query(
        "UPDATE notifications n SET next_attempt_at = $1 + interval '10 minutes', attempts = attempts + 1
         WHERE id IN (SELECT id FROM notifications
                      WHERE status = 'pending' AND next_attempt_at <= $1 AND ($3::bigint IS NULL OR id = $3)
                      ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
         RETURNING id, recipients, subject, body_text, body_html, attachment_name, attachment, attempts",
    )
    .bind(now)
    .bind(limit)
    .bind(only)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let name: Option<String> = r.get("attachment_name");
            let bytes: Option<Vec<u8>> = r.get("attachment");
            Claimed {
                id: r.get("id"),
                recipients: r.get("recipients"),
                subject: r.get("subject"),
                text: r.get("body_text"),
                html: r.get("body_html"),
                attachment: name.zip(bytes),
                attempts: r.get("attempts"),
            }
        })
        .collect())
}

pub async fn mark_sent(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE notifications SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records a failed attempt: tried again at `next_attempt_at`, or given up.
pub async fn mark_not_sent(
    pool: &PgPool,
    id: i64,
    error: &str,
    give_up: bool,
    next_attempt_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications SET status = CASE WHEN $3 THEN 'failed' ELSE 'pending' END,
            next_attempt_at = $4, last_error = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(give_up)
    .bind(next_attempt_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Notifications waiting to be sent (the outbox gauge).
pub async fn pending(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'pending'").fetch_one(pool).await
}

pub async fn deliveries_of_run(pool: &PgPool, run_id: Uuid) -> sqlx::Result<Vec<DeliveryState>> {
    let rows = sqlx::query(
        "SELECT kind, recipients, status, attempts, last_error, sent_at FROM notifications WHERE run_id = $1 ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| DeliveryState {
            kind: r.get(0),
            recipients: r.get(1),
            status: r.get(2),
            attempts: r.get(3),
            last_error: r.get(4),
            sent_at: r.get(5),
        })
        .collect())
}
