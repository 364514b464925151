//! The console's login, logout, language choice, stylesheet and overview
//! (failing, held and overdue feeds first, each explained in a sentence).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::i18n::{LANG_COOKIE, Lang, Texts};
use super::{Viewer, error_page, see_other};
use crate::api::ApiState;
use crate::api::problem::Problem;
use crate::api::session::{self, ClientAddress};
use crate::store::feeds::{self, FeedRow};
use crate::store::{runs, tenants};

/// Minutes past its next run time after which an active feed is overdue:
/// the scheduler ticks every second, so this means no daemon is polling it.
const OVERDUE_MINUTES: i64 = 15;

pub async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("analyser.js"),
    )
        .into_response()
}

pub async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("console.css"),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only a path of ours is a place to go back to after login. Browsers drop
/// tabs and line breaks from a URL and read `\\` as `/`, so `/<TAB>/host`
/// is `//host`, another origin: a path with any of them is refused, and
/// what is left must resolve (as a browser's URL parser does) to our origin.
fn safe_next(next: &str) -> String {
    let ours = url::Url::parse("http://console.invalid/").expect("a static URL");
    let plain = !next.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\');
    let same_origin = ours.join(next).is_ok_and(|u| u.origin() == ours.origin());
    if plain && next.starts_with('/') && !next.starts_with("//") && same_origin { next.to_owned() } else { "/".into() }
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    error: Option<&'static str>,
    next: String,
    email: String,
}

pub async fn login_page(headers: HeaderMap, Query(q): Query<NextQuery>) -> LoginPage {
    let t = Lang::of(&headers, None).texts();
    LoginPage { t, viewer: None, error: None, next: safe_next(&q.next), email: String::new() }
}

/// Whether a form was posted from one of our pages: its `Origin` (or, from
/// an older browser, its `Referer`) names the host the request was sent to,
/// or `console.public_url` (behind a proxy that rewrites `Host`). A client
/// that sends neither (a script) is no browser to protect.
fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let from = headers.get(header::ORIGIN).or_else(|| headers.get(header::REFERER)).and_then(|v| v.to_str().ok());
    let Some(from) = from else { return true };
    let Ok(from) = url::Url::parse(from) else { return false };
    let port = from.port().map(|p| format!(":{p}")).unwrap_or_default();
    let to_host = from.host_str().is_some_and(|h| format!("{h}{port}").eq_ignore_ascii_case(host));
    let public = public_url.and_then(|p| url::Url::parse(p).ok()).is_some_and(|p| p.origin() == from.origin());
    to_host || public
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login_submit(
    State(state): State<ApiState>,
    ClientAddress(source): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(&headers, None);
    let t = lang.texts();
    let public_url = state.settings.console.as_ref().and_then(|c| c.public_url.as_deref());
    if !same_origin(&headers, public_url) {
        // Login CSRF: another site's form would log the browser in to an
        // account of the attacker's, whose pages then see what it types.
        let p = Problem::forbidden("a login posted from another site is refused").with_code("login.origin");
        return error_page(lang, None, p);
    }
    match session::open(&state, &source, &form.email, &form.password).await {
        Ok(opened) => {
            let mut response = see_other(&safe_next(&form.next));
            if let Ok(v) = opened.cookie.to_string().parse() {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(p) if p.status == StatusCode::UNAUTHORIZED || p.status == StatusCode::TOO_MANY_REQUESTS => {
            let error = Some(if p.status == StatusCode::UNAUTHORIZED { t.login_failed } else { t.login_throttled });
            let page = LoginPage { t, viewer: None, error, next: safe_next(&form.next), email: form.email };
            (p.status, page).into_response()
        }
        Err(p) => error_page(lang, None, p),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    viewer: Viewer,
    State(state): State<ApiState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !viewer.csrf_ok(&form.csrf) {
        return error_page(viewer.lang, Some(&viewer), csrf_refused());
    }
    match session::close(&state, &viewer.caller, &headers).await {
        Ok(gone) => {
            let mut response = see_other("/login");
            if let Ok(v) = gone.to_string().parse() {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

pub fn csrf_refused() -> Problem {
    Problem::forbidden("this form is out of date or was not sent by this console: reload the page and try again")
        .with_code("csrf")
}

/// Chooses the language (kept a year in a cookie), then goes back.
pub async fn set_lang(Path(lang): Path<String>, headers: HeaderMap) -> Response {
    let lang = Lang::parse(&lang).unwrap_or(Lang::Fr);
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| safe_next(&format!("{}{}", u.path(), u.query().map(|q| format!("?{q}")).unwrap_or_default())))
        .unwrap_or_else(|| "/".into());
    let cookie = cookie::Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::days(365))
        .build();
    let mut response = see_other(&back);
    if let Ok(v) = cookie.to_string().parse() {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// A feed that needs a person, with why in a sentence.
pub struct Attention {
    pub tenant: String,
    pub name: String,
    /// `failing`, `held` or `overdue`: the row's class, and its rank.
    pub level: &'static str,
    pub headline: String,
    pub explanation: String,
    pub last_run: String,
    pub next_run: String,
}

pub struct TenantRow {
    pub slug: String,
    pub name: String,
    pub feeds: usize,
    pub last_run: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
struct OverviewPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    attention: Vec<Attention>,
    tenants: Vec<TenantRow>,
}

/// `2026-12-04 02:30` in the timezone `tz`.
pub fn local(at: DateTime<Utc>, tz: &str) -> String {
    let tz: chrono_tz::Tz = tz.parse().unwrap_or(chrono_tz::UTC);
    at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// What a feed's last status means, for a person: (headline, sentence).
/// The failed poll's own error names the source's user, host and secret
/// names: support reads it, a customer gets the sentence and the code.
pub fn explain(t: &Texts, f: &FeedRow, now: DateTime<Utc>, staff: bool) -> Option<(&'static str, String, String)> {
    let fr = t.lang == "fr";
    let status = f.last_status.as_deref().unwrap_or("");
    let error = match staff {
        true => f.last_error.clone().unwrap_or_default(),
        false => status.to_owned(),
    };
    let (level, headline, sentence) = match status {
        "" | "ok" => {
            let overdue = !f.paused && now - f.next_run_at > chrono::Duration::minutes(OVERDUE_MINUTES);
            if !overdue {
                return None;
            }
            let late = (now - f.next_run_at).num_minutes();
            if fr {
                (
                    "overdue",
                    "en retard",
                    format!(
                        "L'exécution prévue n'a pas eu lieu (il y a {late} min) : aucun démon ne traite ce flux ; vérifiez que `dropfeed run` tourne."
                    ),
                )
            } else {
                (
                    "overdue",
                    "overdue",
                    format!(
                        "The scheduled run did not happen ({late} min ago): no daemon is polling this feed; check that `dropfeed run` is running."
                    ),
                )
            }
        }
        "held_files" => {
            if fr {
                ("held", "fichier retenu", "Un fichier a été retenu par un garde-fou (beaucoup moins de lignes ou de consentements que d'habitude) : rien n'est écrit tant qu'une personne ne l'a pas libéré depuis son exécution.".to_owned())
            } else {
                ("held", "file held", "A file was held by a guard (far fewer rows or consents than usual): nothing is written until a person releases it from its run.".to_owned())
            }
        }
        "failed_files" => {
            if fr {
                ("failing", "fichier refusé", "Un fichier a été refusé et déplacé dans le dossier d'échec : son rapport dit pourquoi ; le client doit le corriger et le déposer à nouveau.".to_owned())
            } else {
                ("failing", "file refused", "A file was refused and moved to the failure folder: its report says why; the customer must fix it and drop it again.".to_owned())
            }
        }
        code => {
            let what = match (code, fr) {
                ("source.connect" | "source.timeout", true) => "Le serveur du client ne répond pas",
                ("source.connect" | "source.timeout", false) => "The customer's server does not answer",
                ("source.auth", true) => "Le serveur a refusé l'identifiant ou le mot de passe",
                ("source.auth", false) => "The server refused the user or password",
                ("source.host_key_mismatch", true) => {
                    "La clé du serveur SFTP a changé : vérifiez-la avec le client avant de l'épingler à nouveau"
                }
                ("source.host_key_mismatch", false) => {
                    "The SFTP server's key changed: check it with the customer before pinning it again"
                }
                ("source.host_key_unknown", true) => {
                    "La clé du serveur SFTP n'est pas épinglée : testez la connexion et recopiez l'empreinte"
                }
                ("source.host_key_unknown", false) => {
                    "The SFTP server's key is not pinned: test the connection and copy its fingerprint"
                }
                ("source.tls", true) => "La connexion TLS a échoué (certificat)",
                ("source.tls", false) => "The TLS connection failed (certificate)",
                ("feed.night_incomplete", true) => {
                    "Il manque un fichier requis de la nuit : rien n'est importé tant qu'il n'est pas là"
                }
                ("feed.night_incomplete", false) => {
                    "A required file of the night is missing: nothing is imported until it is there"
                }
                (_, true) => "La dernière exécution a échoué",
                (_, false) => "The last run failed",
            };
            ("failing", "", format!("{what}{}{error}", if error.is_empty() { "" } else { " : " }))
        }
    };
    let headline = if headline.is_empty() { status.to_owned() } else { headline.to_owned() };
    Some((level, headline, sentence))
}

pub async fn overview(viewer: Viewer, State(state): State<ApiState>) -> Response {
    let t = viewer.t();
    let result: Result<_, Problem> = async {
        let all = tenants::list(&state.pool).await.map_err(Problem::internal)?;
        let seen: Vec<_> = all.into_iter().filter(|x| viewer.caller.access.sees_tenant(x.id)).collect();
        let feeds = feeds::list(&state.pool).await.map_err(Problem::internal)?;
        let last = runs::last_started_per_tenant(&state.pool).await.map_err(Problem::internal)?;
        let now = Utc::now();
        let mut attention = Vec::new();
        let mut rows = Vec::new();
        for tenant in &seen {
            let mine: Vec<&FeedRow> = feeds.iter().filter(|f| f.tenant_id == tenant.id).collect();
            for f in &mine {
                if let Some((level, headline, explanation)) = explain(t, f, now, viewer.staff()) {
                    let tz = f.spec.schedule.timezone.as_deref().unwrap_or(&tenant.timezone);
                    attention.push(Attention {
                        tenant: f.tenant.clone(),
                        name: f.name.clone(),
                        level,
                        headline,
                        explanation,
                        last_run: f.last_run_at.map(|at| local(at, tz)).unwrap_or_else(|| t.never.into()),
                        next_run: if f.paused { t.paused.into() } else { local(f.next_run_at, tz) },
                    });
                }
            }
            rows.push(TenantRow {
                slug: tenant.slug.to_string(),
                name: tenant.name.clone(),
                feeds: mine.len(),
                last_run: last.get(&tenant.id).map(|at| local(*at, &tenant.timezone)).unwrap_or_else(|| t.never.into()),
            });
        }
        let rank = |l: &str| match l {
            "failing" => 0,
            "held" => 1,
            _ => 2,
        };
        attention.sort_by(|a, b| (rank(a.level), &a.tenant, &a.name).cmp(&(rank(b.level), &b.tenant, &b.name)));
        Ok((attention, rows))
    }
    .await;
    match result {
        Ok((attention, tenants)) => OverviewPage { t, viewer: Some(viewer), attention, tenants }.into_response(),
        Err(p) => error_page(viewer.lang, Some(&viewer), p),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_a_path_of_ours_is_where_a_login_goes_back_to() {
        assert_eq!(safe_next("/runs?feed=nightly"), "/runs?feed=nightly");
        for elsewhere in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "/ /x",
            "",
        ] {
            assert_eq!(safe_next(elsewhere), "/", "{elsewhere:?}");
        }
    }
}
