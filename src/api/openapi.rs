//! The OpenAPI 3.1 document of the API: its header and security schemes, and
//! `finish`, which makes what every operation shares true of each of them
//! (errors as `application/problem+json`, the answers of the edge checks
//! and of the framework, unique operation ids) rather than repeating it on
//! 25 routes, where one would be forgotten.

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, RefOr, Response};
use utoipa::{Modify, OpenApi, ToSchema};

use super::problem::{PROBLEM_JSON, ProblemBody};
use super::session;

#[derive(OpenApi)]
#[openapi(
    info(title = "dropfeed", description = "Scheduled contact-file imports: tenants, feeds, profiles, runs and their \
        reports, uploads, exports and the audit log (SPEC §8). Errors are application/problem+json with a stable `code`."),
    modifiers(&Security),
    // Schemas only parameters name (utoipa registers those of bodies itself).
    components(schemas(ProblemBody, crate::profile::Mode, crate::profile::ProfileKind, crate::report::Status)),
    security(("token" = []), ("session" = []))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                session::COOKIE,
                "set by POST /api/v1/session; changes also need the X-CSRF-Token header",
            ))),
        );
    }
}

/// Completes the document once every route is in it.
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
        ];
        for op in operations.into_iter().flatten() {
            let open = path == "/api/v1/session" && op.request_body.is_some();
            complete(op, !open);
        }
    }
}

fn complete(op: &mut Operation, authenticated: bool) {
    // `list` and `show` are in five tags: the tag makes them unique.
    if let (Some(id), Some(tag)) = (op.operation_id.as_mut(), op.tags.as_ref().and_then(|t| t.first())) {
        *id = format!("{tag}_{id}");
    }
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let json_body = op.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
    let has_body = op.request_body.is_some();
    if has_params || has_body {
        add(
            op,
            "400",
            "`query.invalid`, `path.invalid` (a parameter not of its type or range), `query.nul`, `path.nul`, \
             `body.nul` (a NUL character), `body.json`, `body.incomplete`",
        );
    }
    if authenticated {
        add(op, "401", "`auth.required`: no valid token or session");
    } else {
        // Logging in needs no credentials: an empty requirement says so.
        op.security = Some(vec![SecurityRequirement::default()]);
    }
    if has_body {
        add(op, "413", "`body.too_large`, `upload.too_large`");
    }
    if json_body {
        add(op, "415", "`body.content_type`: the body is not sent as application/json");
        add(op, "422", "`body.json`: JSON, but not of the expected shape");
    }
    add(op, "500", "`internal`: a failure of the server, logged; never caused by a request's content");
    for (status, response) in op.responses.responses.iter_mut() {
        if status.starts_with(['4', '5'])
            && let RefOr::T(response) = response
        {
            as_problem(response);
        }
    }
}

/// Adds an error answer the handler's own list lacks.
fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses.responses.entry(status.to_owned()).or_insert_with(|| RefOr::T(Response::new(description)));
}

/// An error answer's only content: a problem.
fn as_problem(response: &mut Response) {
    let content = Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(ProblemBody::name()))));
    response.content.clear();
    response.content.insert(PROBLEM_JSON.to_owned(), content);
    if response.description.is_empty() {
        response.description = "a problem (RFC 9457) with a stable `code`".into();
    }
}
