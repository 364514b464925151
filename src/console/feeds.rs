//! The console's feeds: a tenant's feeds with their last 30 nights, and a
//! feed's page (status explained, next runs, settings with secrets masked;
//! for support: test the connection, run now, pause or resume, edit the
//! YAML with the validation messages of `feed apply`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::chart::nights_svg;
use super::i18n::Texts;
use super::pages::{csrf_refused, explain, local};
use super::{Viewer, error_page, see_other};
use crate::actions::feeds::{self as feed_actions, Applier, Document, TestOutcome};
use crate::api::ApiState;
use crate::api::problem::Problem;
use crate::feed::FeedSpec;
use crate::store::feeds::{self, FeedRow};
use crate::store::runs;
use crate::store::tenants::Tenant;

/// One feed as its tenant's page and its own page show it.
pub struct FeedView {
    pub tenant: String,
    pub name: String,
    pub paused: bool,
    pub level: &'static str,
    pub headline: String,
    pub explanation: String,
    pub last_run: String,
    pub next_run: String,
    pub timezone: String,
    pub chart: String,
}

async fn feed_view(
    state: &ApiState,
    t: &Texts,
    tenant: &Tenant,
    f: &FeedRow,
    staff: bool,
) -> Result<FeedView, Problem> {
    let tz = f.spec.schedule.timezone.clone().unwrap_or_else(|| tenant.timezone.clone());
    let zone: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    let today = Utc::now().with_timezone(&zone).date_naive();
    let since = Utc::now() - chrono::Duration::days(31);
    let nights = runs::nights(&state.pool, tenant.id, &f.name, &tz, since).await.map_err(Problem::internal)?;
    let labels = [t.inserted, t.updated, t.rejected, t.rows, t.last_30_nights];
    let (level, headline, explanation) = explain(t, f, Utc::now(), staff).unwrap_or(("", String::new(), String::new()));
    Ok(FeedView {
        tenant: f.tenant.clone(),
        name: f.name.clone(),
        paused: f.paused,
        level,
        headline,
        explanation,
        last_run: f.last_run_at.map(|at| local(at, &tz)).unwrap_or_else(|| t.never.into()),
        next_run: if f.paused { t.paused.into() } else { local(f.next_run_at, &tz) },
        chart: nights_svg(&nights, today, labels),
        timezone: tz,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "tenant.html")]
struct TenantPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    staff: bool,
    csrf: String,
    tenant: Tenant,
    feeds: Vec<FeedView>,
    /// The new feed's YAML, and why it was not applied.
    draft: String,
    problems: Vec<String>,
}

/// A new feed's YAML to start from.
fn draft(tenant: &Tenant) -> String {
    format!(
        "tenant: {}\nname: nightly-contacts\nsource:\n  url: sftp://USER@HOST:22/outbox\n  password_env: DROPFEED_{}_PASSWORD\n  \
         host_key: \"SHA256:...\"\n  pattern: \"contacts_*.csv\"\nschedule:\n  cron: \"0 30 2 * * *\"\n  timezone: {}\nprofile: PROFILE\n",
        tenant.slug,
        tenant.slug.as_str().to_uppercase().replace('-', "_"),
        tenant.timezone
    )
}

async fn tenant_page(
    viewer: Viewer,
    state: &ApiState,
    slug: &str,
    draft_text: Option<String>,
    problems: Vec<String>,
) -> Result<TenantPage, Problem> {
    let t = viewer.t();
    let tenant = viewer.caller.tenant(state, slug).await?;
    let all = feeds::list(&state.pool).await.map_err(Problem::internal)?;
    let mut views = Vec::new();
    for f in all.iter().filter(|f| f.tenant_id == tenant.id) {
        views.push(feed_view(state, t, &tenant, f, viewer.staff()).await?);
    }
    Ok(TenantPage {
        t,
        staff: viewer.staff(),
        csrf: viewer.csrf.clone(),
        viewer: Some(viewer),
        draft: draft_text.unwrap_or_else(|| draft(&tenant)),
        tenant,
        feeds: views,
        problems,
    })
}

pub async fn tenant(viewer: Viewer, State(state): State<ApiState>, Path(slug): Path<String>) -> Response {
    let (lang, fallback) = (viewer.lang, viewer.clone());
    match tenant_page(viewer, &state, &slug, None, Vec::new()).await {
        Ok(page) => page.into_response(),
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}

/// Applies a new feed of this tenant; its page once applied.
pub async fn create(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    let (lang, fallback) = (viewer.lang, viewer.clone());
    let result: Result<Response, Problem> = async {
        let tenant = viewer.caller.tenant(&state, &slug).await?;
        viewer.caller.staff("applying a feed")?;
        if !viewer.csrf_ok(&form.csrf) {
            return Err(csrf_refused());
        }
        let docs = [Document { origin: "the new feed".into(), text: form.yaml.clone() }];
        let applier = Applier::Staff { policy: &state.settings.feed_policy, actor: &viewer.caller.actor };
        let problems = match feed_actions::check(&state.pool, &docs, applier).await {
            Ok(checked) if checked.iter().all(|c| c.tenant.id == tenant.id) => {
                let name = checked.first().map(|c| c.spec.name.clone()).unwrap_or_default();
                feed_actions::store(&state.pool, &viewer.caller.actor, checked).await.map_err(Problem::internal)?;
                return Ok(see_other(&format!("/tenants/{slug}/feeds/{name}")));
            }
            Ok(_) => vec![format!("the new feed: tenant must be {slug} on this page")],
            Err(refused) => refused.problems,
        };
        let page = tenant_page(viewer, &state, &slug, Some(form.yaml), problems).await?;
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    }
    .await;
    match result {
        Ok(r) => r,
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}

/// A setting as shown: (key, value), secrets masked.
fn settings(t: &Texts, spec: &FeedSpec) -> Vec<(String, String)> {
    let s = &spec.source;
    let mut out = vec![
        (t.endpoint.to_owned(), crate::source::Endpoint::parse(&s.url).map(|e| e.to_string()).unwrap_or_else(|e| e)),
        (
            t.pattern.to_owned(),
            spec.slots().iter().map(|f| format!("{} → {}", f.pattern, f.profile)).collect::<Vec<_>>().join(", "),
        ),
        (t.schedule.to_owned(), spec.schedule.cron.clone()),
    ];
    for (key, set) in [
        ("password", s.password_env.is_some() || s.password_file.is_some()),
        ("private_key", s.private_key_file.is_some()),
        ("private_key_passphrase", s.private_key_passphrase_env.is_some()),
    ] {
        if set {
            out.push((key.to_owned(), t.secret_masked.to_owned()));
        }
    }
    if let Some(k) = &s.host_key {
        out.push(("host_key".into(), k.clone()));
    }
    if let Some(k) = &s.tls_fingerprint {
        out.push(("tls_fingerprint".into(), k.clone()));
    }
    out.push(("pickup".into(), serde_json::to_string(&spec.pickup).unwrap_or_default()));
    out.push(("after_success".into(), serde_json::to_string(&spec.after_success).unwrap_or_default()));
    out.push(("after_failure".into(), serde_json::to_string(&spec.after_failure).unwrap_or_default()));
    if let Some(r) = spec.max_row_drop_ratio {
        out.push(("max_row_drop_ratio".into(), r.to_string()));
    }
    if let Some(r) = spec.max_unsubscribe_ratio {
        out.push(("max_unsubscribe_ratio".into(), r.to_string()));
    }
    out
}

/// What the last action on the page did.
pub enum Outcome {
    Tested(TestOutcome),
    TestFailed(String),
    Ran { status: String, files: Vec<(String, String, Option<String>)> },
    Applied(String),
    Invalid(Vec<String>),
}

#[derive(Template, WebTemplate)]
#[template(path = "feed.html")]
struct FeedPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    staff: bool,
    csrf: String,
    f: FeedView,
    next_runs: Vec<String>,
    settings: Vec<(String, String)>,
    yaml: String,
    outcome: Option<Outcome>,
}

async fn feed_page(
    viewer: Viewer,
    state: &ApiState,
    slug: &str,
    name: &str,
    outcome: Option<Outcome>,
    yaml: Option<String>,
) -> Result<FeedPage, Problem> {
    let t = viewer.t();
    let (tenant, f) = viewer.caller.feed(state, slug, name).await?;
    let view = feed_view(state, t, &tenant, &f, viewer.staff()).await?;
    let next_runs = feed_actions::next_runs(&f.spec, &tenant.timezone, 5)
        .iter()
        .map(|at| at.format("%Y-%m-%d %H:%M %Z").to_string())
        .collect();
    let staff = viewer.staff();
    Ok(FeedPage {
        t,
        csrf: viewer.csrf.clone(),
        staff,
        settings: if staff { settings(t, &f.spec) } else { Vec::new() },
        yaml: match (staff, yaml) {
            (false, _) => String::new(),
            (true, Some(y)) => y,
            (true, None) => serde_saphyr::to_string(&f.spec).unwrap_or_default(),
        },
        viewer: Some(viewer),
        f: view,
        next_runs,
        outcome,
    })
}

pub async fn show(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
) -> Response {
    let lang = viewer.lang;
    let fallback = viewer.clone();
    match feed_page(viewer, &state, &slug, &name, None, None).await {
        Ok(page) => page.into_response(),
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    yaml: String,
}

/// Test, run, pause, resume or apply; the feed's page again with what it did.
pub async fn act(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path((slug, name, action)): Path<(String, String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let lang = viewer.lang;
    let fallback = viewer.clone();
    let result: Result<Response, Problem> = async {
        let (_, f) = viewer.caller.feed(&state, &slug, &name).await?;
        viewer.caller.staff("changing a feed")?;
        if !viewer.csrf_ok(&form.csrf) {
            return Err(csrf_refused());
        }
        let actor = viewer.caller.actor.clone();
        let (outcome, yaml) = match action.as_str() {
            "test" => match feed_actions::test(&f.spec).await {
                Ok(found) => (Outcome::Tested(found), None),
                Err(e) => (Outcome::TestFailed(format!("{e:#}")), None),
            },
            "run" => match feed_actions::run_now(&state.pool, &state.settings, &actor, &f, false).await {
                Ok(report) => {
                    let files = report
                        .files
                        .iter()
                        .map(|(file, outcome)| {
                            let f = crate::api::feeds::FileRun::of(file, outcome);
                            (f.file, f.outcome.to_owned(), f.run_id.map(|id| id.to_string()))
                        })
                        .collect();
                    (Outcome::Ran { status: report.status().to_string(), files }, None)
                }
                Err(e) => (Outcome::TestFailed(format!("{e:#}")), None),
            },
            "pause" | "resume" => {
                feed_actions::set_paused(&state.pool, &actor, &f, action == "pause").await.map_err(Problem::internal)?;
                return Ok(see_other(&format!("/tenants/{slug}/feeds/{name}")));
            }
            "apply" => {
                let docs = [Document { origin: format!("feed {slug}/{name}"), text: form.yaml.clone() }];
                let applier = Applier::Staff { policy: &state.settings.feed_policy, actor: &actor };
                match feed_actions::check(&state.pool, &docs, applier).await {
                    Ok(checked) if checked.iter().all(|c| c.tenant.slug.as_str() == slug && c.spec.name == name) => {
                        let applied = feed_actions::store(&state.pool, &actor, checked).await.map_err(Problem::internal)?;
                        let what = applied.first().map(|(_, a)| feed_actions::applied_str(*a)).unwrap_or("unchanged");
                        (Outcome::Applied(what.to_owned()), None)
                    }
                    Ok(_) => (
                        Outcome::Invalid(vec![format!("the YAML must keep tenant: {slug} and name: {name} (a new feed is applied with the CLI or the API)")]),
                        Some(form.yaml.clone()),
                    ),
                    Err(refused) => (Outcome::Invalid(refused.problems), Some(form.yaml.clone())),
                }
            }
            _ => return Err(Problem::not_found(format!("feed action {action}"))),
        };
        let invalid = matches!(outcome, Outcome::Invalid(_));
        let page = feed_page(viewer, &state, &slug, &name, Some(outcome), yaml).await?;
        let status = if invalid { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
        Ok((status, page).into_response())
    }
    .await;
    match result {
        Ok(r) => r,
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}
