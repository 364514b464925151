//! The console's runs: the list with filters and cursor paging, a run's
//! report (counts, messages grouped by rule with examples, every message by
//! page and rule, downloads), and release or replay behind a confirmation.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use uuid::Uuid;

use super::i18n::Texts;
use super::pages::{csrf_refused, local};
use super::{Viewer, error_page, see_other};
use crate::api::ApiState;
use crate::api::problem::Problem;
use crate::report::{Message, Status};
use crate::rerun::{Action, Refused};
use crate::store::runs::{self, RunFilter};
use crate::store::tenants;

const RUNS_PER_PAGE: i64 = 50;
const MESSAGES_PER_PAGE: i64 = 100;

/// A status in the viewer's words.
pub fn status_label(t: &Texts, status: &str) -> String {
    let fr = t.lang == "fr";
    match (status, fr) {
        ("succeeded", true) => "réussie",
        ("succeeded_with_warnings", true) => "réussie avec avertissements",
        ("failed", true) => "échouée",
        ("aborted", true) => "interrompue",
        ("dry_run", true) => "essai à blanc",
        ("held", true) => "retenue",
        ("running", true) => "en cours",
        ("succeeded_with_warnings", false) => "succeeded with warnings",
        ("dry_run", false) => "dry run",
        (other, _) => other,
    }
    .to_owned()
}

const STATUSES: [&str; 7] = ["succeeded", "succeeded_with_warnings", "failed", "aborted", "held", "dry_run", "running"];

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub feed: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub since: String,
    pub cursor: Option<String>,
}

pub struct RunRow {
    pub id: Uuid,
    pub started: String,
    pub tenant: String,
    pub feed: String,
    pub file: String,
    pub status: String,
    pub status_label: String,
    pub rows: i64,
    pub inserted: i64,
    pub updated: i64,
    pub rejected: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "runs.html")]
struct RunsPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    filter: ListQuery,
    statuses: Vec<(&'static str, String)>,
    runs: Vec<RunRow>,
    first_page: String,
    next_page: Option<String>,
}

fn query_string(q: &ListQuery, cursor: Option<&str>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [("tenant", &q.tenant), ("feed", &q.feed), ("status", &q.status), ("since", &q.since)] {
        if !v.is_empty() {
            s.append_pair(k, v);
        }
    }
    if let Some(c) = cursor {
        s.append_pair("cursor", c);
    }
    format!("/runs?{}", s.finish())
}

pub async fn list(viewer: Viewer, State(state): State<ApiState>, Query(q): Query<ListQuery>) -> Response {
    let t = viewer.t();
    let result: Result<_, Problem> = async {
        let tenant_id = match q.tenant.trim() {
            "" => viewer.caller.access.tenant_id(),
            slug => Some(viewer.caller.tenant(&state, slug).await?.id),
        };
        let status = Some(q.status.trim().to_owned()).filter(|s| !s.is_empty());
        if let Some(s) = &status
            && Status::parse(s).is_none()
        {
            return Err(Problem::bad_request("query.status", format!("unknown status {s:?}")));
        }
        let since = match q.since.trim() {
            "" => None,
            d => Some(
                NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .map_err(|_| Problem::bad_request("query.since", format!("{d:?} is not a date (YYYY-MM-DD)")))?
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc()),
            )
            .flatten(),
        };
        let after = match &q.cursor {
            Some(c) => Some(
                crate::api::runs::parse_cursor(c)
                    .ok_or_else(|| Problem::bad_request("query.cursor", "malformed cursor"))?,
            ),
            None => None,
        };
        let feed = Some(q.feed.trim().to_owned()).filter(|f| !f.is_empty());
        let filter = RunFilter { tenant_id, feed, status, since, after, limit: RUNS_PER_PAGE };
        let page = runs::page(&state.pool, &filter).await.map_err(Problem::internal)?;
        let zones: std::collections::HashMap<String, String> = tenants::list(&state.pool)
            .await
            .map_err(Problem::internal)?
            .into_iter()
            .map(|x| (x.slug.to_string(), x.timezone))
            .collect();
        let next = (page.len() as i64 == RUNS_PER_PAGE).then(|| page.last().map(crate::api::runs::cursor_of)).flatten();
        let rows = page
            .into_iter()
            .map(|r| RunRow {
                id: r.run_id,
                started: local(r.started_at, zones.get(&r.tenant).map(String::as_str).unwrap_or("UTC")),
                status_label: status_label(t, &r.status),
                tenant: r.tenant,
                feed: r.feed.unwrap_or_default(),
                file: r.file,
                status: r.status,
                rows: r.rows,
                inserted: r.inserted,
                updated: r.updated,
                rejected: r.rejected,
            })
            .collect();
        Ok((rows, next))
    }
    .await;
    match result {
        Ok((runs, next)) => {
            let statuses = STATUSES.iter().map(|s| (*s, status_label(t, s))).collect();
            let first_page = query_string(&q, None);
            let next_page = next.as_deref().map(|c| query_string(&q, Some(c)));
            RunsPage { t, viewer: Some(viewer), filter: q, statuses, runs, first_page, next_page }.into_response()
        }
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

pub struct Rule {
    pub code: String,
    pub count: i64,
    pub examples: Vec<Message>,
}

pub struct RunView {
    pub id: Uuid,
    pub tenant: String,
    pub what: String,
    pub status: String,
    pub status_label: String,
    pub file: String,
    pub size: String,
    pub sha256: String,
    pub profile: String,
    pub started: String,
    pub took: String,
    pub error: Option<String>,
    pub rerun_of: Option<Uuid>,
    pub rerun_by: Option<Uuid>,
    /// Who released or replayed this run, and when (from the audit log).
    pub rerun_when: Option<String>,
    pub counts: Vec<(&'static str, i64)>,
    pub rejected: i64,
    pub from_feed: bool,
    pub truncated: bool,
    pub rules: Vec<Rule>,
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
struct RunPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    staff: bool,
    r: RunView,
    notice: Option<String>,
    code: String,
    messages: Vec<Message>,
    prev_messages: Option<String>,
    next_messages: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    code: String,
    /// `LINE:CODE` of the last message of the page before.
    after: Option<String>,
}

async fn run_view(state: &ApiState, t: &Texts, id: Uuid) -> Result<RunView, Problem> {
    let head = runs::head(&state.pool, id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found(format!("run {id}")))?;
    let tz = match crate::domain::TenantSlug::parse(&head.tenant) {
        Ok(slug) => tenants::find(&state.pool, &slug).await.map(|x| x.timezone).unwrap_or_else(|_| "UTC".into()),
        Err(_) => "UTC".into(),
    };
    let examples =
        runs::examples(&state.pool, id, crate::report::text::EXAMPLES_PER_CODE).await.map_err(Problem::internal)?;
    let c = &head.counts;
    let counts = vec![
        (t.rows, c.rows),
        (t.inserted, c.inserted),
        (t.updated, c.updated),
        (t.unchanged, c.unchanged),
        (t.skipped_existing, c.skipped_existing),
        (t.skipped_new, c.skipped_new),
        (t.rejected, c.rejected),
        (t.warnings, c.warnings),
    ];
    let rules = head
        .by_code
        .iter()
        .map(|(code, n)| Rule {
            code: code.clone(),
            count: *n,
            examples: examples.get(code).cloned().unwrap_or_default(),
        })
        .collect();
    let took = head.finished_at.map(|f| format!("{:.1} s", (f - head.started_at).num_milliseconds() as f64 / 1000.0));
    let rerun_when = match head.rerun_by {
        Some(_) => crate::store::audit::rerun_of(&state.pool, id)
            .await
            .map_err(Problem::internal)?
            .map(|(actor, at)| format!("{actor}, {}", local(at, &tz))),
        None => None,
    };
    Ok(RunView {
        id,
        what: head.feed.clone().unwrap_or_else(|| head.file.name.clone()),
        tenant: head.tenant.clone(),
        status: head.status.as_str().to_owned(),
        status_label: status_label(t, head.status.as_str()),
        size: format!("{} {}", head.file.size, if t.lang == "fr" { "octets" } else { "bytes" }),
        file: head.file.name.clone(),
        sha256: head.file.sha256.clone(),
        profile: head.profile.as_ref().map(|p| format!("{} v{}", p.name, p.version)).unwrap_or_else(|| "-".into()),
        started: local(head.started_at, &tz),
        took: took.unwrap_or_default(),
        error: head.error.clone(),
        rerun_of: head.rerun_of,
        rerun_by: head.rerun_by,
        rerun_when,
        counts,
        rejected: c.rejected,
        from_feed: head.feed.is_some(),
        truncated: head.messages_truncated,
        rules,
    })
}

pub async fn show(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path(run): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let t = viewer.t();
    let result: Result<_, Problem> = async {
        let (id, _) = viewer.caller.run(&state, &run).await?;
        let view = run_view(&state, t, id).await?;
        let code = Some(q.code.clone()).filter(|c| !c.is_empty());
        // `LINE:CODE:COLUMN` of the page's last message.
        let after = q.after.as_deref().and_then(crate::api::runs::parse_message_cursor);
        let messages = runs::message_page(&state.pool, id, code.as_deref(), after.as_ref(), MESSAGES_PER_PAGE)
            .await
            .map_err(Problem::internal)?;
        let link = |after: Option<String>| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            if let Some(c) = &code {
                s.append_pair("code", c);
            }
            if let Some(a) = &after {
                s.append_pair("after", a);
            }
            format!("/runs/{id}?{}", s.finish())
        };
        let next = (messages.len() as i64 == MESSAGES_PER_PAGE)
            .then(|| {
                messages
                    .last()
                    .map(|m| link(Some(format!("{}:{}:{}", m.line, m.code, m.column.as_deref().unwrap_or("")))))
            })
            .flatten();
        // Keyset pages go forward; the way back is the first page.
        let prev = after.is_some().then(|| link(None));
        Ok((view, messages, prev, next))
    }
    .await;
    match result {
        Ok((r, messages, prev_messages, next_messages)) => RunPage {
            t,
            staff: viewer.staff(),
            viewer: Some(viewer),
            r,
            notice: None,
            code: q.code,
            messages,
            prev_messages,
            next_messages,
        }
        .into_response(),
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    run: Uuid,
    file: String,
    action: &'static str,
    action_label: &'static str,
    explanation: String,
    force: bool,
    csrf: String,
    refused: Option<String>,
}

/// `release` or `replay`, and whether a replay must be forced (the file was applied).
async fn prepare(
    viewer: &Viewer,
    state: &ApiState,
    run: &str,
    action: &str,
) -> Result<(Uuid, String, &'static str, bool), Problem> {
    let (id, _) = viewer.caller.run(state, run).await?;
    let action = match action {
        "release" => "release",
        "replay" => "replay",
        _ => return Err(Problem::not_found(format!("run {run}/{action}"))),
    };
    viewer.caller.staff("releasing or replaying a run")?;
    let head = runs::head(&state.pool, id).await.map_err(Problem::internal)?.ok_or_else(|| Problem::not_found(run))?;
    let applied = matches!(head.status, Status::Succeeded | Status::SucceededWithWarnings);
    Ok((id, head.file.name, action, action == "replay" && applied))
}

fn confirm_page(
    viewer: Viewer,
    id: Uuid,
    file: String,
    action: &'static str,
    force: bool,
    refused: Option<String>,
) -> ConfirmPage {
    let t = viewer.t();
    let (action_label, explanation) = match (action, force) {
        ("release", _) => (t.release, t.release_explained.to_owned()),
        (_, false) => (t.replay, t.replay_explained.to_owned()),
        (_, true) => (t.replay_force, format!("{} {}", t.replay_explained, t.replay_force_explained)),
    };
    ConfirmPage {
        t,
        csrf: viewer.csrf.clone(),
        viewer: Some(viewer),
        run: id,
        file,
        action,
        action_label,
        explanation,
        force,
        refused,
    }
}

/// The confirmation page: what will happen, and the button that does it.
pub async fn confirm(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path((run, action)): Path<(String, String)>,
) -> Response {
    match prepare(&viewer, &state, &run, &action).await {
        Ok((id, file, action, force)) => confirm_page(viewer, id, file, action, force, None).into_response(),
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

#[derive(Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    force: bool,
}

/// Releases or replays, then shows the new run; a refusal is said on the
/// confirmation page, with nothing done.
pub async fn act(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path((run, action)): Path<(String, String)>,
    Form(form): Form<ActForm>,
) -> Response {
    let (id, file, action, force) = match prepare(&viewer, &state, &run, &action).await {
        Ok(x) => x,
        Err(p) => return error_page(viewer.lang, Some(&viewer), p),
    };
    if !viewer.csrf_ok(&form.csrf) {
        return error_page(viewer.lang, Some(&viewer), csrf_refused());
    }
    let what = if action == "release" { Action::Release } else { Action::Replay { force: force && form.force } };
    match crate::actions::runs::rerun(&state.pool, &state.settings, &viewer.caller.actor, id, what).await {
        Ok(new_run) => see_other(&format!("/runs/{new_run}")),
        Err(e) => match e.downcast_ref::<Refused>() {
            Some(refused) => {
                let page = confirm_page(viewer, id, file, action, force, Some(refused.0.clone()));
                (StatusCode::CONFLICT, page).into_response()
            }
            None => error_page(viewer.lang, Some(&viewer), Problem::internal(format!("{e:#}"))),
        },
    }
}
