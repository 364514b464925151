//! Feed changes: apply (check every document, then store them all or none),
//! test a connection, pause and resume.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

use crate::configuration::FeedPolicy;
use crate::domain::TenantSlug;
use crate::feed::FeedSpec;
use crate::schedule::Schedule;
use crate::source::{self, Session, SourceConfig};
use crate::store::audit::{self, Actor};
use crate::store::feeds::{self, Applied, FeedRow};
use crate::store::{profiles, tenants};

/// A feed's YAML (or JSON, which YAML reads) and where it came from.
pub struct Document {
    pub origin: String,
    pub text: String,
}

/// A document that passed every check, ready to store.
pub struct Checked {
    pub spec: FeedSpec,
    pub tenant: tenants::Tenant,
    schedule: Schedule,
}

/// Who applies a document: the operator (the CLI, `feeds_dir`), who may
/// name any secret, file or host of the server, or staff through the API
/// or the console, who names only what `feed_policy` grants.
pub enum Applier<'a> {
    Operator,
    Staff { policy: &'a FeedPolicy, actor: &'a Actor },
}

/// Why no document was applied: every problem of every document, each
/// prefixed by its origin; `by_policy` when staff named what the operator
/// did not grant (the attempt is in the audit log).
#[derive(Debug)]
pub struct Refused {
    pub problems: Vec<String>,
    pub by_policy: bool,
}

/// Checks every document as `feed apply` does.
pub async fn check(pool: &PgPool, docs: &[Document], applier: Applier<'_>) -> Result<Vec<Checked>, Refused> {
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    let mut overstepped = Vec::new();
    let mut refused_attempts = Vec::new();
    for doc in docs {
        let shown = &doc.origin;
        let spec = match FeedSpec::from_yaml(&doc.text, shown) {
            Ok(spec) => spec,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let tenant = match TenantSlug::parse(&spec.tenant) {
            Ok(slug) => match tenants::find(pool, &slug).await {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{shown}: tenant: {e}"));
                    continue;
                }
            },
            Err(e) => {
                problems.push(format!("{shown}: tenant: {e}"));
                continue;
            }
        };
        if let Applier::Staff { policy, .. } = &applier {
            let found = crate::feed_policy::problems(&spec, policy, &tenant.slug);
            overstepped.extend(found.iter().map(|p| format!("{shown}: {p}")));
            if !found.is_empty() {
                let detail = serde_json::json!({ "feed": format!("{}/{}", tenant.slug, spec.name), "errors": found });
                refused_attempts.push((tenant.id, detail));
            }
        }
        match spec.check(&tenant.timezone) {
            Ok(valid) => {
                let mut found = true;
                for name in spec.profiles() {
                    if let Err(e) = profiles::latest(pool, tenant.id, &name).await {
                        problems.push(format!(
                            "{shown}: profile: {e}; save it with `dropfeed import {} FILE --save-profile {name}`",
                            tenant.slug
                        ));
                        found = false;
                    }
                }
                if found {
                    checked.push(Checked { spec, tenant, schedule: valid.schedule });
                }
            }
            Err(list) => problems.extend(list.into_iter().map(|p| format!("{shown}: {p}"))),
        }
    }
    if let Applier::Staff { actor, .. } = &applier {
        for (tenant_id, detail) in refused_attempts {
            if let Err(e) = audit::record_on(pool, actor, Some(tenant_id), "feed.refused", detail).await {
                tracing::error!("cannot audit a refused feed: {e:#}");
            }
        }
    }
    if !overstepped.is_empty() {
        problems.extend(overstepped);
        return Err(Refused { problems, by_policy: true });
    }
    if problems.is_empty() { Ok(checked) } else { Err(Refused { problems, by_policy: false }) }
}

/// Stores checked feeds; returns `tenant/name` and what became of each.
/// A creation or an update is audited; an unchanged feed is not a change.
pub async fn store(pool: &PgPool, actor: &Actor, checked: Vec<Checked>) -> anyhow::Result<Vec<(String, Applied)>> {
    let mut out = Vec::new();
    for Checked { spec, tenant, schedule } in checked {
        let key = format!("{}/{}", tenant.slug, spec.name);
        let next = schedule.next_after(Utc::now()).context("the schedule never fires")?;
        let applied =
            feeds::apply(pool, tenant.id, &spec, next).await.with_context(|| format!("cannot store feed {key}"))?;
        if applied != Applied::Unchanged {
            let detail = serde_json::json!({ "feed": key, "outcome": applied_str(applied) });
            audit::record_on(pool, actor, Some(tenant.id), "feed.apply", detail).await.context("cannot audit")?;
        }
        out.push((key, applied));
    }
    Ok(out)
}

pub fn applied_str(a: Applied) -> &'static str {
    match a {
        Applied::Created => "created",
        Applied::Updated => "updated",
        Applied::Unchanged => "unchanged",
    }
}

/// The next `n` times a feed runs, in its timezone.
pub fn next_runs(spec: &FeedSpec, tenant_tz: &str, n: usize) -> Vec<DateTime<chrono_tz::Tz>> {
    let tz = spec.schedule.timezone.as_deref().unwrap_or(tenant_tz);
    let Ok(schedule) = Schedule::parse(&spec.schedule.cron, tz) else { return Vec::new() };
    let mut out = Vec::with_capacity(n);
    let mut after = Utc::now();
    while out.len() < n {
        let Some(next) = schedule.next_after(after) else { break };
        out.push(next.with_timezone(&schedule.timezone()));
        after = next;
    }
    out
}

/// What a connection test found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestOutcome {
    /// Where it connected, without any secret.
    pub endpoint: String,
    /// The server's host key or certificate fingerprint, to pin.
    pub fingerprint: Option<String>,
    /// The patterns the files are matched with.
    pub patterns: Vec<String>,
    /// The matching files, oldest first.
    pub files: Vec<TestFile>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestFile {
    pub name: String,
    pub size: u64,
    pub mtime: Option<DateTime<Utc>>,
}

/// Connects to a feed's server and lists the files its patterns match.
pub async fn test(spec: &FeedSpec) -> anyhow::Result<TestOutcome> {
    let patterns: Vec<String> = spec.slots().into_iter().map(|f| f.pattern).collect();
    let mut set = globset::GlobSetBuilder::new();
    for p in &patterns {
        set.add(globset::Glob::new(p).with_context(|| format!("invalid pattern {p:?}"))?);
    }
    let pattern = set.build().context("invalid patterns")?;
    let cfg = SourceConfig::resolve(&spec.source)?;
    let endpoint = cfg.endpoint.to_string();
    let mut session = source::connect(&cfg).await.with_context(|| format!("cannot connect to {endpoint}"))?;
    let fingerprint = session.server_fingerprint();
    let mut files = session.list().await.with_context(|| format!("cannot list {endpoint}"))?;
    files.retain(|x| pattern.is_match(&x.name));
    files.sort_by(|a, b| (a.mtime, &a.name).cmp(&(b.mtime, &b.name)));
    let files = files.into_iter().map(|f| TestFile { name: f.name, size: f.size, mtime: f.mtime }).collect();
    Ok(TestOutcome { endpoint, fingerprint, patterns, files })
}

/// Pauses or resumes a feed, audited.
pub async fn set_paused(pool: &PgPool, actor: &Actor, feed: &FeedRow, paused: bool) -> anyhow::Result<()> {
    feeds::set_paused(pool, feed.id, paused).await.with_context(|| format!("cannot update feed {}", feed.key()))?;
    let action = if paused { "feed.pause" } else { "feed.resume" };
    audit::record_on(pool, actor, Some(feed.tenant_id), action, serde_json::json!({ "feed": feed.key() }))
        .await
        .context("cannot audit")?;
    Ok(())
}

/// Polls a feed now, in the foreground, as `feed run` does (audited unless
/// a dry run), then sends the mail it queued.
pub async fn run_now(
    pool: &PgPool,
    settings: &crate::configuration::Settings,
    actor: &Actor,
    feed: &FeedRow,
    dry_run: bool,
) -> anyhow::Result<crate::pickup::PollReport> {
    let mailer = settings.smtp.as_ref().map(crate::mail::Mailer::from_settings).transpose()?;
    let daemon = crate::daemon::Daemon { mailer, ..crate::daemon::Daemon::from_settings(pool, settings)? };
    if !dry_run {
        let detail = serde_json::json!({ "feed": feed.key() });
        audit::record_on(pool, actor, Some(feed.tenant_id), "feed.run", detail).await.context("cannot audit")?;
    }
    let report = daemon.run_once(feed, dry_run).await?;
    daemon.deliver_mail().await;
    Ok(report)
}
