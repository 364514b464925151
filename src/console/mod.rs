//! The web console (SPEC §8.4): server-rendered pages (askama templates in
//! `templates/`, compiled in) on the same data and actions as the API, for
//! support staff and customers in a browser. Sessions are the API's
//! (`api::session`); every form that changes something repeats the
//! session's CSRF token; what a caller may not see answers 404, as in the API.

mod admin;
mod analyser;
mod chart;
mod feeds;
pub mod i18n;
mod pages;
mod profiles;
mod runs;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use self::i18n::{Lang, Texts};
use crate::api::ApiState;
use crate::api::auth::{Caller, client_address};
use crate::api::problem::Problem;
use crate::api::session;
use crate::domain::Role;
use crate::store::audit::Actor;

/// The console's routes (the API's are beside them, under `/api/v1`).
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(pages::overview))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", axum::routing::post(pages::logout))
        .route("/lang/{lang}", get(pages::set_lang))
        .route("/static/console.css", get(pages::css))
        .route("/static/analyser.js", get(pages::js))
        .route("/tenants/{tenant}", get(feeds::tenant))
        .route("/tenants/{tenant}/feeds", axum::routing::post(feeds::create))
        .route("/tenants/{tenant}/feeds/{feed}", get(feeds::show))
        .route("/tenants/{tenant}/feeds/{feed}/{action}", axum::routing::post(feeds::act))
        .route("/tenants/{tenant}/analyser", get(analyser::show).post(analyser::upload))
        .route("/tenants/{tenant}/analyser/{sample}/{action}", axum::routing::post(analyser::step))
        .route("/tenants/{tenant}/profiles", get(profiles::list))
        .route("/tenants/{tenant}/profiles/{profile}", get(profiles::show))
        .route("/admin", get(admin::show))
        .route("/admin/tokens", axum::routing::post(admin::create_token))
        .route("/admin/tokens/revoke", axum::routing::post(admin::revoke_token))
        .route("/admin/users/disable", axum::routing::post(admin::disable_user))
        .route("/admin/audit", get(admin::audit_log))
        .route("/runs", get(runs::list))
        .route("/runs/{run}", get(runs::show))
        .route("/runs/{run}/{action}", get(runs::confirm).post(runs::act))
        // After routing, so that a path parameter is named by the route.
        .route_layer(axum::middleware::from_fn(reject_nul))
}

/// The largest urlencoded form the console reads (its forms are a few
/// fields; a file goes as multipart, which this does not buffer).
const FORM_LIMIT: usize = 1 << 20;

/// Route layer of the console: a path or query parameter, or a form field,
/// holding a NUL is a 400 page naming it, before a handler could pass it to
/// PostgreSQL (which refuses it with an error of ours, a 500).
async fn reject_nul(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use crate::api::extract::{nul_field, nul_parameter};
    let (mut parts, body) = request.into_parts();
    let lang = Lang::of(&parts.headers, None);
    let params = axum::extract::RawPathParams::from_request_parts(&mut parts, &()).await.ok();
    if let Some(found) = nul_parameter(params.as_ref(), parts.uri.query()) {
        return error_page(lang, None, found.problem());
    }
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = if form {
        let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
            let too_large =
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "form.too_large", "the form is larger than 1 MiB");
            return error_page(lang, None, too_large);
        };
        if let Some(found) = nul_field("form", &bytes) {
            return error_page(lang, None, found.problem());
        }
        axum::body::Body::from(bytes)
    } else {
        body
    };
    next.run(axum::extract::Request::from_parts(parts, body)).await
}

/// Who is looking at a page: a logged-in person (sessions only: a browser
/// never sends a bearer token by itself), in the language of their choice.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub lang: Lang,
}

impl Viewer {
    pub fn t(&self) -> &'static Texts {
        self.lang.texts()
    }

    pub fn staff(&self) -> bool {
        self.caller.access.role() != Role::Tenant
    }

    /// Whether a posted form carries this session's CSRF token.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

impl FromRequestParts<ApiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Viewer, Response> {
        let lang = Lang::of(&parts.headers, None);
        let session = match session::lookup(&parts.headers, state).await {
            Ok(s) => s,
            Err(p) => return Err(error_page(lang, None, p)),
        };
        let Some(s) = session else {
            // Back to this page once logged in (a path of ours only).
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let to =
                format!("/login?next={}", url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
            return Err(Redirect::to(&to).into_response());
        };
        let tenant_lang = match s.access.tenant_id() {
            Some(id) => crate::store::tenants::find_by_id(&state.pool, id).await.ok().map(|t| t.language),
            None => None,
        };
        let caller = Caller {
            actor: Actor { name: format!("user:{}", s.email), source: client_address(parts, &state.trusted_proxies) },
            access: s.access.clone(),
        };
        Ok(Viewer {
            role: caller.access.role().to_string(),
            caller,
            email: s.email,
            csrf: s.csrf,
            lang: Lang::of(&parts.headers, tenant_lang),
        })
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: &'static Texts,
    viewer: Option<&'a Viewer>,
    title: String,
    detail: String,
}

/// A problem as a page: its status, a title in the viewer's language and
/// its detail (a 500's detail never names anything of ours).
pub fn error_page(lang: Lang, viewer: Option<&Viewer>, p: Problem) -> Response {
    let t = lang.texts();
    let title = match p.status {
        StatusCode::NOT_FOUND => t.not_found.to_owned(),
        StatusCode::FORBIDDEN => t.forbidden.to_owned(),
        _ => t.error.to_owned(),
    };
    let page = ErrorPage { t, viewer, title, detail: p.detail };
    let mut response = page.into_response();
    *response.status_mut() = p.status;
    response
}

/// Any other path: the API's problem under `/api/`, a page elsewhere.
pub async fn fallback(parts: Parts) -> Response {
    if parts.uri.path().starts_with("/api/") {
        return Problem::not_found("this route").into_response();
    }
    let lang = Lang::of(&parts.headers, None);
    error_page(lang, None, Problem::not_found(parts.uri.path().to_owned()))
}

/// A method a route does not take: the API's problem under `/api/`, a page
/// elsewhere (axum's own answer is an empty body).
pub async fn method_not_allowed(parts: Parts) -> Response {
    if parts.uri.path().starts_with("/api/") {
        return crate::api::extract::method_not_allowed().into_response();
    }
    let lang = Lang::of(&parts.headers, None);
    error_page(lang, None, crate::api::extract::method_not_allowed())
}

/// A redirect after a form, so that reloading the page does not post again.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}
