//! Completion reports and alerts (SPEC §6, seeds 000-002): composed from the
//! stored run, queued in the `notifications` outbox in the tenant's (or
//! feed's) language, and delivered with retries so that mail never blocks or
//! fails an import.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use tracing::{info, warn};
use uuid::Uuid;

use crate::configuration::ReportSettings;
use crate::domain::ReportLanguage;
use crate::feed::ReportOn;
use crate::mail::{Email, Mailer};
use crate::report::text::EXAMPLES_PER_CODE;
use crate::report::{Status, rejects};
use crate::store::notifications::{self, Message, NewNotification};
use crate::store::runs;

/// A message ready to queue.
#[derive(Debug, Clone)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachment: Option<(String, Vec<u8>)>,
}

impl Composed {
    /// The notification that carries it.
    pub fn message(&self) -> Message<'_> {
        Message {
            subject: &self.subject,
            text: &self.text,
            html: &self.html,
            attachment: self.attachment.as_ref().map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
        }
    }
}

/// Which `report.on` category a run's status falls in.
pub fn category(status: Status) -> Option<ReportOn> {
    match status {
        Status::Succeeded => Some(ReportOn::Success),
        Status::SucceededWithWarnings => Some(ReportOn::Warnings),
        Status::Failed | Status::Aborted | Status::Held => Some(ReportOn::Failure),
        Status::Running | Status::DryRun => None,
    }
}

fn status_words(status: Status, lang: ReportLanguage) -> &'static str {
    use ReportLanguage::{En, Fr};
    match (status, lang) {
        (Status::Succeeded, Fr) => "réussi",
        (Status::Succeeded, En) => "succeeded",
        (Status::SucceededWithWarnings, Fr) => "réussi avec avertissements",
        (Status::SucceededWithWarnings, En) => "succeeded with warnings",
        (Status::Failed, Fr) => "refusé",
        (Status::Failed, En) => "failed",
        (Status::Aborted, Fr) => "interrompu, rien n'a été importé",
        (Status::Aborted, En) => "aborted, nothing imported",
        (Status::DryRun, Fr) => "analyse (rien n'a été importé)",
        (Status::DryRun, En) => "dry run (nothing imported)",
        (Status::Held, Fr) => "retenu, rien n'a été importé",
        (Status::Held, En) => "held, nothing imported",
        (Status::Running, Fr) => "en cours",
        (Status::Running, En) => "running",
    }
}

/// Builds the completion report of a run: subject with tenant, feed or file,
/// status and key counts; text and HTML bodies with the counts and the
/// messages grouped by rule (a few example lines each); the rejected lines
/// attached as a CSV to fix and drop again, when that file is at most
/// `settings.max_attachment_bytes` (a larger one is named, not attached:
/// mail servers refuse large messages, and it would be held in memory).
pub async fn compose_report(
    pool: &PgPool,
    run_id: Uuid,
    lang: ReportLanguage,
    settings: &ReportSettings,
) -> anyhow::Result<Composed> {
    let report = runs::head(pool, run_id).await?.with_context(|| format!("run {run_id} not found"))?;
    let examples = runs::examples(pool, run_id, EXAMPLES_PER_CODE).await.context("cannot read the run's messages")?;
    let mut bytes = Vec::new();
    let delimiter = rejects::delimiter(&report.options);
    let written =
        rejects::write(pool, run_id, delimiter, lang, &mut bytes, Some(settings.max_attachment_bytes)).await?;
    let (attachment, too_large) = match written {
        Some(w) if w.complete => (Some((rejects::file_name(&report.file, lang), bytes)), None),
        Some(_) => (None, Some(report.counts.rejected)),
        None => (None, None),
    };
    let fr = lang == ReportLanguage::Fr;
    let mail = ReportMail {
        subject: report_subject(&report, lang),
        facts: report_facts(&report, settings, fr),
        labels: count_labels(&report.counts),
        report: &report,
        examples: &examples,
        attachment: attachment.as_ref().map(|(name, _)| name.as_str()),
        too_large: too_large.map(|n| too_large_sentence(n, run_id, settings, fr)),
        fr,
    };
    let (text, html) = (mail.text(), mail.html(settings.rejects_url(run_id)));
    Ok(Composed { subject: mail.subject, text, html, attachment })
}

/// What a report e-mail says, once, for its text and its HTML.
struct ReportMail<'a> {
    subject: String,
    facts: Vec<(&'static str, String)>,
    labels: [(&'static str, &'static str, i64); 8],
    report: &'a crate::report::Report<()>,
    examples: &'a crate::report::Examples,
    /// The rejects file's name, when attached.
    attachment: Option<&'a str>,
    /// Why the rejects file is not attached, and where it is.
    too_large: Option<String>,
    fr: bool,
}

fn report_subject(report: &crate::report::Report<()>, lang: ReportLanguage) -> String {
    let c = &report.counts;
    let what = report.feed.clone().unwrap_or_else(|| report.file.name.clone());
    let status = status_words(report.status, lang);
    if lang == ReportLanguage::Fr {
        format!(
            "[dropfeed] {} / {what} : {status} — {} créés, {} mis à jour, {} rejetés",
            report.tenant, c.inserted, c.updated, c.rejected
        )
    } else {
        format!(
            "[dropfeed] {} / {what}: {status} — {} inserted, {} updated, {} rejected",
            report.tenant, c.inserted, c.updated, c.rejected
        )
    }
}

/// The counts, with their French and English labels.
fn count_labels(c: &crate::report::Counts) -> [(&'static str, &'static str, i64); 8] {
    [
        ("lignes", "rows", c.rows),
        ("créés", "inserted", c.inserted),
        ("mis à jour", "updated", c.updated),
        ("inchangés", "unchanged", c.unchanged),
        ("déjà présents", "skipped_existing", c.skipped_existing),
        ("inconnus", "skipped_new", c.skipped_new),
        ("rejetés", "rejected", c.rejected),
        ("avertissements", "warnings", c.warnings),
    ]
}

/// The file, profile, times and run, and the link to the full report.
fn report_facts(
    report: &crate::report::Report<()>,
    settings: &ReportSettings,
    fr: bool,
) -> Vec<(&'static str, String)> {
    let took = report.finished_at.map(|f| (f - report.started_at).num_milliseconds() as f64 / 1000.0);
    let profile = report.profile.as_ref().map(|p| format!("{} v{}", p.name, p.version)).unwrap_or_else(|| "-".into());
    let mut facts: Vec<(&str, String)> = vec![
        (
            if fr { "Fichier" } else { "File" },
            format!("{} ({} {})", report.file.name, report.file.size, if fr { "octets" } else { "bytes" }),
        ),
        ("SHA-256", report.file.sha256.clone()),
        (if fr { "Profil" } else { "Profile" }, profile),
        (if fr { "Début" } else { "Started" }, report.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        (if fr { "Durée" } else { "Took" }, took.map(|s| format!("{s:.1} s")).unwrap_or_default()),
        (if fr { "Exécution" } else { "Run" }, report.run_id.to_string()),
    ];
    if let Some(url) = settings.run_url(report.run_id) {
        facts.push((if fr { "Rapport complet" } else { "Full report" }, url));
    }
    facts
}

impl ReportMail<'_> {
    fn text(&self) -> String {
        let (fr, report) = (self.fr, self.report);
        let mut text = String::new();
        let _ = writeln!(text, "{}\n", self.subject.trim_start_matches("[dropfeed] "));
        for (k, v) in &self.facts {
            let _ = writeln!(text, "{k} : {v}");
        }
        let _ = writeln!(text);
        for (f, e, n) in self.labels {
            let _ = writeln!(text, "{:<18} {n}", if fr { f } else { e });
        }
        if let Some(e) = &report.error {
            let _ = writeln!(text, "\n{} : {e}", if fr { "Motif" } else { "Reason" });
        }
        if !report.by_code.is_empty() {
            let _ = writeln!(text, "\n{}", if fr { "Messages par règle :" } else { "Messages by rule:" });
        }
        for (code, n) in &report.by_code {
            let _ = writeln!(text, "\n{code} — {n} {}", if fr { "ligne(s)" } else { "line(s)" });
            for ex in self.examples.get(code).map(Vec::as_slice).unwrap_or_default() {
                let _ = writeln!(
                    text,
                    "  {} {}{}{} : {}",
                    if fr { "ligne" } else { "line" },
                    ex.line,
                    ex.column.as_deref().map(|c| format!(", {c}")).unwrap_or_default(),
                    ex.value.as_deref().filter(|v| !v.is_empty()).map(|v| format!(", « {v} »")).unwrap_or_default(),
                    ex.message
                );
            }
        }
        if let Some(name) = self.attachment {
            let _ = writeln!(
                text,
                "\n{name} : {}",
                if fr {
                    "les lignes rejetées, avec leur motif : corrigez-les puis déposez ce fichier à nouveau."
                } else {
                    "the rejected lines with their reason: fix them, then drop this file again."
                }
            );
        }
        if let Some(sentence) = &self.too_large {
            let _ = writeln!(text, "\n{sentence}");
        }
        text
    }

    /// The HTML body; `rejects_url`, when the rejects file is linked, is
    /// made a link in the sentence that gives it.
    fn html(&self, rejects_url: Option<String>) -> String {
        let (fr, report) = (self.fr, self.report);
        let esc = |s: &str| html_escape::encode_text(s).into_owned();
        let mut html = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
        let _ = write!(html, "<h2>{}</h2><table>", esc(self.subject.trim_start_matches("[dropfeed] ")));
        let link = |url: &str| format!("<a href=\"{0}\">{0}</a>", html_escape::encode_double_quoted_attribute(url));
        for (k, v) in &self.facts {
            let v = if v.starts_with("https://") || v.starts_with("http://") { link(v) } else { esc(v) };
            let _ = write!(html, "<tr><th align=\"left\">{}</th><td>{v}</td></tr>", esc(k));
        }
        html.push_str(
            "</table><table border=\"1\" cellpadding=\"4\" style=\"border-collapse:collapse;margin-top:1em\"><tr>",
        );
        for (f, e, _) in self.labels {
            let _ = write!(html, "<th>{}</th>", esc(if fr { f } else { e }));
        }
        html.push_str("</tr><tr>");
        for (_, _, n) in self.labels {
            let _ = write!(html, "<td align=\"right\">{n}</td>");
        }
        html.push_str("</tr></table>");
        if let Some(e) = &report.error {
            let _ = write!(html, "<p><b>{}</b> : {}</p>", if fr { "Motif" } else { "Reason" }, esc(e));
        }
        for (code, n) in &report.by_code {
            let _ = write!(html, "<h3>{} — {n} {}</h3><ul>", esc(code), if fr { "ligne(s)" } else { "line(s)" });
            for ex in self.examples.get(code).map(Vec::as_slice).unwrap_or_default() {
                let _ = write!(
                    html,
                    "<li>{} {}{}{} : {}</li>",
                    if fr { "ligne" } else { "line" },
                    ex.line,
                    esc(&ex.column.as_deref().map(|c| format!(", {c}")).unwrap_or_default()),
                    esc(&ex
                        .value
                        .as_deref()
                        .filter(|v| !v.is_empty())
                        .map(|v| format!(", « {v} »"))
                        .unwrap_or_default()),
                    esc(&ex.message)
                );
            }
            html.push_str("</ul>");
        }
        if let Some(sentence) = &self.too_large {
            // The sentence ends with the download address, made a link here.
            let html_sentence = match rejects_url {
                Some(url) => esc(sentence).replace(&esc(&url), &link(&url)),
                None => esc(sentence),
            };
            let _ = write!(html, "<p>{html_sentence}</p>");
        }
        html.push_str("</body></html>");
        html
    }
}

/// Why the rejects file is not attached, and where it is.
fn too_large_sentence(rejected: i64, run_id: Uuid, settings: &ReportSettings, fr: bool) -> String {
    let mb = settings.max_attachment_bytes as f64 / 1e6;
    match (settings.rejects_url(run_id), fr) {
        (Some(url), true) => format!(
            "Le fichier des {rejected} lignes rejetées dépasse {mb:.1} Mo et n'est pas joint : téléchargez-le ici : {url}"
        ),
        (Some(url), false) => format!(
            "The file of the {rejected} rejected lines is larger than {mb:.1} MB and is not attached: download it \
             here: {url}"
        ),
        (None, true) => format!(
            "Le fichier des {rejected} lignes rejetées dépasse {mb:.1} Mo et n'est pas joint : il est conservé avec \
             l'exécution {run_id} (support : dropfeed runs rejects {run_id})."
        ),
        (None, false) => format!(
            "The file of the {rejected} rejected lines is larger than {mb:.1} MB and is not attached: it is kept \
             with run {run_id} (support: dropfeed runs rejects {run_id})."
        ),
    }
}

/// Queues the completion report of a run for `recipients`.
pub async fn queue_report(
    pool: &PgPool,
    run_id: Uuid,
    tenant_id: i64,
    feed_id: Option<i64>,
    recipients: &[String],
    lang: ReportLanguage,
    settings: &ReportSettings,
) -> anyhow::Result<Option<i64>> {
    if recipients.is_empty() {
        return Ok(None);
    }
    let composed = compose_report(pool, run_id, lang, settings).await?;
    let n = NewNotification {
        tenant_id,
        run_id: Some(run_id),
        feed_id,
        kind: "report",
        code: "run.report",
        recipients,
        message: composed.message(),
        alert_scope: None,
    };
    notifications::enqueue(pool, &n).await.context("cannot queue the report")
}

/// An alert about a feed (connection, host key, authentication, missing file,
/// repeated failure). `detail` must not hold secrets: callers pass error
/// messages that name endpoints only.
pub fn compose_alert(tenant: &str, feed: &str, code: &str, detail: &str, lang: ReportLanguage) -> Composed {
    let fr = lang == ReportLanguage::Fr;
    let (title, advice) = match (code, fr) {
        ("file.missing", true) => (
            "aucun fichier reçu",
            "Le fichier attendu n'est pas arrivé à l'heure prévue. Vérifiez l'export de votre système.",
        ),
        ("file.missing", false) => {
            ("no file received", "The expected file has not arrived by the expected time. Check your system's export.")
        }
        ("source.host_key_mismatch", true) => (
            "clé du serveur différente",
            "La clé du serveur SFTP ne correspond pas à celle enregistrée : la connexion est refusée. Si le serveur a changé, communiquez la nouvelle empreinte au support.",
        ),
        ("source.host_key_mismatch", false) => (
            "server key changed",
            "The SFTP server's key does not match the pinned one: the connection is refused. If the server was replaced, send the new fingerprint to support.",
        ),
        ("source.auth", true) => {
            ("authentification refusée", "Le serveur refuse l'identifiant ou le mot de passe enregistré.")
        }
        ("source.auth", false) => ("authentication refused", "The server refuses the stored user or password."),
        (_, true) => (
            "échec de la récupération",
            "Le serveur de dépôt n'a pas pu être joint après plusieurs essais ; un nouvel essai aura lieu.",
        ),
        (_, false) => {
            ("fetch failed", "The drop server could not be reached after several attempts; it will be tried again.")
        }
    };
    let subject = format!("[dropfeed] {tenant} / {feed} : {title}");
    let text = format!("{title}\n\n{advice}\n\n{code}: {detail}\n");
    let esc = |s: &str| html_escape::encode_text(s).into_owned();
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><p>{}</p><p><code>{}</code> : {}</p></body></html>",
        esc(title),
        esc(advice),
        esc(code),
        esc(detail)
    );
    Composed { subject, text, html, attachment: None }
}

/// What one delivery pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Delivers due notifications (at most `limit`), claiming them so several
/// daemons never send one twice; a failure is retried with backoff (1, 2, 4 …
/// minutes, at most an hour apart), and given up after `MAX_ATTEMPTS`.
pub async fn deliver_due(
    pool: &PgPool,
    mailer: &Mailer,
    now: DateTime<Utc>,
    limit: i64,
    only: Option<i64>,
) -> anyhow::Result<Delivery> {
    const MAX_ATTEMPTS: i32 = 10;
    let claimed = notifications::claim_due(pool, now, limit, only).await.context("cannot claim notifications")?;
    let mut out = Delivery::default();
    for n in claimed {
        let email = Email {
            to: &n.recipients,
            subject: &n.subject,
            text: &n.text,
            html: &n.html,
            attachment: n.attachment.as_ref().map(|(name, bytes)| (name.as_str(), bytes.as_slice())),
        };
        match mailer.send(&email).await {
            Ok(()) => {
                notifications::mark_sent(pool, n.id).await?;
                info!(notification = n.id, recipients = n.recipients.len(), "e-mail sent");
                out.sent += 1;
            }
            Err(e) => {
                let give_up = n.attempts >= MAX_ATTEMPTS;
                let wait = Duration::minutes(1i64 << (n.attempts - 1).clamp(0, 6)).min(Duration::hours(1));
                notifications::mark_not_sent(pool, n.id, &e.to_string(), give_up, now + wait).await?;
                warn!(notification = n.id, attempts = n.attempts, give_up, "e-mail not sent: {e}");
                if give_up {
                    out.failed += 1;
                } else {
                    out.retried += 1;
                }
            }
        }
    }
    Ok(out)
}

/// Queues an alert about a feed if its `report.on` asks for failures (or
/// `missing` for `file.missing`). Sent once per `scope` (a file) or else once
/// per feed, code and day.
pub async fn queue_alert(
    pool: &PgPool,
    feed_id: i64,
    code: &str,
    detail: &str,
    scope: Option<String>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let Some(feed) = crate::store::feeds::find_by_id(pool, feed_id).await? else { return Ok(None) };
    let Some(spec) = &feed.spec.report else { return Ok(None) };
    let wanted = if code == "file.missing" { ReportOn::Missing } else { ReportOn::Failure };
    if spec.to.is_empty() || !spec.on.contains(&wanted) {
        return Ok(None);
    }
    let tenant = crate::store::tenants::find_by_id(pool, feed.tenant_id).await?;
    let lang = spec.language.unwrap_or(tenant.language);
    let composed = compose_alert(&feed.tenant, &feed.name, code, detail, lang);
    let scope = scope.unwrap_or_else(|| now.format("%Y-%m-%d").to_string());
    let n = NewNotification {
        tenant_id: feed.tenant_id,
        run_id: None,
        feed_id: Some(feed_id),
        kind: "alert",
        code,
        recipients: &spec.to,
        message: composed.message(),
        alert_scope: Some(&scope),
    };
    Ok(notifications::enqueue(pool, &n).await?)
}

/// Queues a `file.missing` alert for every feed whose `expect_file_by` time
/// has passed today (in the feed's timezone) with no file taken since local
/// midnight; once per feed and day.
pub async fn check_missing(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut queued = 0;
    for late in crate::store::feeds::late(pool, now).await? {
        let (pattern, by) = (&late.pattern, &late.by);
        let detail = format!(
            "no file matching {pattern:?} by {} ({}) on {}",
            by.format("%H:%M:%S"),
            late.timezone,
            late.local_date
        );
        let scope = Some(late.day.clone());
        if queue_alert(pool, late.id, "file.missing", &detail, scope, now).await?.is_some() {
            queued += 1;
        }
    }
    Ok(queued)
}
