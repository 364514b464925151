//! The console's admin pages: users (disable), API tokens (create, shown
//! once; revoke) and the audit log, paged and filtered by tenant.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::i18n::Texts;
use super::pages::{csrf_refused, local};
use super::{Viewer, error_page, see_other};
use crate::actions;
use crate::api::ApiState;
use crate::api::problem::Problem;
use crate::domain::{Access, Role};
use crate::store::accounts::{self, TokenRow, User};
use crate::store::audit;

#[derive(Template, WebTemplate)]
#[template(path = "admin.html")]
struct AdminPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    csrf: String,
    users: Vec<User>,
    tokens: Vec<(TokenRow, String)>,
    tenants: Vec<String>,
    /// A token just created: shown this once.
    created: Option<(String, String)>,
    problem: Option<String>,
}

async fn admin_page(
    viewer: Viewer,
    state: &ApiState,
    created: Option<(String, String)>,
    problem: Option<String>,
) -> Result<AdminPage, Problem> {
    viewer.caller.admin("users and tokens")?;
    let users = accounts::list_users(&state.pool).await.map_err(Problem::internal)?;
    let now = chrono::Utc::now();
    let t = viewer.t();
    let tokens = accounts::list_tokens(&state.pool)
        .await
        .map_err(Problem::internal)?
        .into_iter()
        .map(|k| {
            let state = match (k.revoked_at, k.expires_at) {
                (Some(_), _) => t.revoked.to_owned(),
                (None, Some(e)) if e <= now => format!("{} {}", t.expires, e.format("%Y-%m-%d")),
                (None, Some(e)) => format!("{} {}", t.expires, e.format("%Y-%m-%d")),
                (None, None) => t.active.to_owned(),
            };
            (k, state)
        })
        .collect();
    let tenants = crate::store::tenants::list(&state.pool)
        .await
        .map_err(Problem::internal)?
        .into_iter()
        .map(|x| x.slug.to_string())
        .collect();
    Ok(AdminPage { t, csrf: viewer.csrf.clone(), viewer: Some(viewer), users, tokens, tenants, created, problem })
}

pub async fn show(viewer: Viewer, State(state): State<ApiState>) -> Response {
    let (lang, fallback) = (viewer.lang, viewer.clone());
    match admin_page(viewer, &state, None, None).await {
        Ok(p) => p.into_response(),
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    expires_days: String,
}

pub async fn create_token(viewer: Viewer, State(state): State<ApiState>, Form(form): Form<TokenForm>) -> Response {
    let (lang, fallback) = (viewer.lang, viewer.clone());
    let result: Result<Response, Problem> = async {
        viewer.caller.admin("creating a token")?;
        if !viewer.csrf_ok(&form.csrf) {
            return Err(csrf_refused());
        }
        let actor = viewer.caller.actor.clone();
        let problem = |detail: String| Problem::unprocessable("token.invalid", detail);
        let role = Role::parse(&form.role).ok_or_else(|| problem(format!("unknown role {:?}", form.role)))?;
        let tenant = match form.tenant.trim() {
            "" => None,
            slug => Some(viewer.caller.tenant(&state, slug).await?),
        };
        let access = Access::of(role, tenant.as_ref().map(|x| x.id)).map_err(problem)?;
        let name = form.name.trim();
        if name.is_empty() {
            return Err(problem("give the token a name".into()));
        }
        let expires = match form.expires_days.trim() {
            "" => None,
            d => Some(d.parse::<u32>().map_err(|_| problem(format!("{d:?} is not a number of days")))?),
        };
        if let Some(d) = expires.filter(|d| !(1..=actions::accounts::MAX_TOKEN_DAYS).contains(d)) {
            return Err(problem(actions::accounts::BadExpiry(d).to_string()));
        }
        let slug = tenant.as_ref().map(|x| x.slug.to_string());
        let new = actions::accounts::create_token(&state.pool, &actor, name, &access, slug.as_deref(), expires)
            .await
            .map_err(Problem::internal)?;
        let created = Some((new.prefix.clone(), new.token.expose_secret().to_owned()));
        let mut response = admin_page(viewer, &state, created, None).await?.into_response();
        // The token is in this answer only: no cache may keep it.
        response
            .headers_mut()
            .insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        Ok(response)
    }
    .await;
    match result {
        Ok(r) => r,
        Err(p) if p.status == axum::http::StatusCode::UNPROCESSABLE_ENTITY => {
            match admin_page(fallback.clone(), &state, None, Some(p.detail)).await {
                Ok(page) => (axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
                Err(p) => error_page(lang, Some(&fallback), p),
            }
        }
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}

#[derive(Deserialize)]
pub struct TargetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
}

/// An admin's change to one user or token, behind the form's CSRF token;
/// back to the admin page when done.
async fn change(
    viewer: Viewer,
    what: &str,
    form: TargetForm,
    apply: impl std::future::Future<Output = anyhow::Result<()>>,
) -> Response {
    let checked =
        viewer.caller.admin(what).and_then(|()| if viewer.csrf_ok(&form.csrf) { Ok(()) } else { Err(csrf_refused()) });
    let result = match checked {
        Ok(()) => apply.await.map_err(Problem::internal),
        Err(p) => Err(p),
    };
    match result {
        Ok(()) => see_other("/admin"),
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

pub async fn revoke_token(viewer: Viewer, State(state): State<ApiState>, Form(form): Form<TargetForm>) -> Response {
    let (actor, target) = (viewer.caller.actor.clone(), form.target.trim().to_owned());
    let apply = async move { actions::accounts::revoke_token(&state.pool, &actor, &target).await.map(|_| ()) };
    change(viewer, "revoking a token", form, apply).await
}

pub async fn disable_user(viewer: Viewer, State(state): State<ApiState>, Form(form): Form<TargetForm>) -> Response {
    let (actor, target) = (viewer.caller.actor.clone(), form.target.trim().to_owned());
    let apply = async move { actions::accounts::disable_user(&state.pool, &actor, &target).await };
    change(viewer, "disabling a user", form, apply).await
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub source: String,
    pub tenant: String,
    pub detail: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    tenant: String,
    entries: Vec<AuditRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    tenant: String,
    before: Option<i64>,
}

const AUDIT_PER_PAGE: i64 = 100;

pub async fn audit_log(viewer: Viewer, State(state): State<ApiState>, Query(q): Query<AuditQuery>) -> Response {
    let t = viewer.t();
    let result: Result<_, Problem> = async {
        viewer.caller.admin("the audit log")?;
        let tenant_id = match q.tenant.trim() {
            "" => None,
            slug => Some(viewer.caller.tenant(&state, slug).await?.id),
        };
        let entries = audit::list(&state.pool, tenant_id, q.before, AUDIT_PER_PAGE).await.map_err(Problem::internal)?;
        let next = (entries.len() as i64 == AUDIT_PER_PAGE).then(|| entries.last().map(|e| e.id)).flatten();
        let rows = entries
            .into_iter()
            .map(|e| AuditRow {
                at: local(e.at, "UTC"),
                actor: e.actor,
                action: e.action,
                source: e.source,
                tenant: e.tenant.unwrap_or_default(),
                detail: e.detail.to_string(),
            })
            .collect();
        Ok((rows, next))
    }
    .await;
    match result {
        Ok((entries, next)) => {
            let tenant = q.tenant.trim().to_owned();
            let next = next.map(|id| {
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                if !tenant.is_empty() {
                    s.append_pair("tenant", &tenant);
                }
                s.append_pair("before", &id.to_string());
                format!("/admin/audit?{}", s.finish())
            });
            AuditPage { t, viewer: Some(viewer), tenant, entries, next }.into_response()
        }
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}
