//! The API's edge: `Query`, `Path`, `Json` and `TextBody` extractors whose
//! rejections are problems with a stable code (axum's own answer `text/plain`
//! without one), and the check that no parameter holds a NUL character, the
//! one character PostgreSQL's text refuses, before a handler sees it.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// Where a NUL character was found: what kind of parameter and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NulIn {
    /// `path`, `query` or `form` (a console form's field).
    pub place: &'static str,
    pub name: String,
}

impl NulIn {
    pub fn problem(&self) -> Problem {
        let (code, what) = match self.place {
            "path" => ("path.nul", "path parameter"),
            "form" => ("form.nul", "form field"),
            _ => ("query.nul", "query parameter"),
        };
        Problem::bad_request(
            code,
            format!("the {what} `{}` holds a NUL character (U+0000), which no text may hold", self.name),
        )
    }
}

/// The first field of a urlencoded form (or query) holding a NUL.
pub fn nul_field(place: &'static str, encoded: &[u8]) -> Option<NulIn> {
    url::form_urlencoded::parse(encoded)
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| NulIn { place, name: name.replace('\0', "\u{FFFD}") })
}

/// The first path or query parameter of a request that holds a NUL, once
/// percent-decoded. Names are shown as sent, NUL replaced, so that the
/// answer is text too.
pub fn nul_parameter(path_params: Option<&RawPathParams>, query: Option<&str>) -> Option<NulIn> {
    let shown = |s: &str| s.replace('\0', "\u{FFFD}");
    if let Some(params) = path_params
        && let Some((name, _)) = params.iter().find(|(_, value)| value.contains('\0'))
    {
        return Some(NulIn { place: "path", name: shown(name) });
    }
    nul_field("query", query?.as_bytes())
}

/// Route layer of the API: a parameter holding a NUL is a 400 problem naming
/// it, before any extractor or query runs (they would otherwise reach
/// PostgreSQL, which refuses it with an error of ours, a 500).
pub async fn reject_nul(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, &()).await.ok();
    if let Some(found) = nul_parameter(params.as_ref(), parts.uri.query()) {
        return found.problem().into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// axum's `Query`, refused as `query.invalid` (the parameter and why).
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Query<T>, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Query(q.0)),
            Err(e) => Err(Problem::from(e)),
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Problem {
        Problem::bad_request("query.invalid", e.body_text())
    }
}

/// axum's `Path`, refused as `path.invalid` (a segment that is not UTF-8,
/// or not of the parameter's type).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(p) => Ok(Path(p.0)),
            Err(e) => Err(Problem::from(e)),
        }
    }
}

impl From<PathRejection> for Problem {
    fn from(e: PathRejection) -> Problem {
        // A route whose parameters do not match its handler is ours to fix.
        if e.status().is_server_error() {
            return Problem::internal(e.body_text());
        }
        Problem::bad_request("path.invalid", e.body_text())
    }
}

/// axum's `Json`: a body that is not JSON (`body.json`, 400), not of the
/// expected shape (`body.json`, 422), not sent as JSON (`body.content_type`,
/// 415) or too large (`body.too_large`, 413). A string holding a NUL is
/// refused as `body.nul`, for the same reason as a parameter.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Json<T>, Problem> {
        let value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(v) => v.0,
            Err(e) => return Err(Problem::from(e)),
        };
        if let Some(at) = crate::domain::text::nul_in_json(&value) {
            return Err(Problem::bad_request(
                "body.nul",
                format!("the body's {at} holds a NUL character (U+0000), which no text may hold"),
            ));
        }
        serde_json::from_value(value)
            .map(Json)
            .map_err(|e| Problem::unprocessable("body.json", format!("the body is not of the expected shape: {e}")))
    }
}

impl From<JsonRejection> for Problem {
    fn from(e: JsonRejection) -> Problem {
        let code = match &e {
            JsonRejection::MissingJsonContentType(_) => "body.content_type",
            JsonRejection::BytesRejection(b) => return Problem::from_bytes(b),
            _ => "body.json",
        };
        Problem::new(e.status(), code, e.body_text())
    }
}

/// A whole body of text (a feed's or a profile's YAML), at most axum's
/// default body limit; its own checks decide what it may hold.
pub struct TextBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<TextBody, Problem> {
        match Bytes::from_request(request, state).await {
            Ok(b) => Ok(TextBody(b)),
            Err(e) => Err(Problem::from_bytes(&e)),
        }
    }
}

impl Problem {
    fn from_bytes(e: &BytesRejection) -> Problem {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body.too_large", e.body_text());
        }
        Problem::bad_request("body.incomplete", e.body_text())
    }
}

/// A page size: `limit` when within 1 to `max`, `default` when absent. Out
/// of range is refused rather than clamped: the caller would otherwise get
/// a page of another size than it asked, without a word.
pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, Problem> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(Problem::bad_request("query.limit", format!("limit {n} is outside 1 to {max}"))),
    }
}

/// A method a route does not have: 405 as a problem, under the API.
pub fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method.not_allowed", "this route does not take this method")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_a_query_value_names_its_parameter() {
        assert_eq!(
            nul_parameter(None, Some("feed=a%00b&limit=2")),
            Some(NulIn { place: "query", name: "feed".into() })
        );
        assert_eq!(nul_parameter(None, Some("a%00=1")).map(|n| n.name), Some("a\u{FFFD}".into()));
        assert_eq!(nul_parameter(None, Some("feed=%C3%A9t%C3%A9&code=x")), None);
    }
}
