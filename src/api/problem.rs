//! Errors of the API as `application/problem+json` (RFC 9457), each with a
//! stable `code` a script can branch on.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem { status, code, detail: detail.into() }
    }

    /// What a caller may not see does not exist: another tenant's object
    /// answers exactly as a missing one.
    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", format!("{} not found", what.into()))
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "auth.required",
            "send a valid, unrevoked, unexpired token as `Authorization: Bearer <token>`",
        )
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// A failure of ours: the detail goes to the log, the caller gets none
    /// (it could name a database or a file).
    pub fn internal(e: impl std::fmt::Display) -> Problem {
        tracing::error!("api request failed: {e}");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request failed; the operator has the details")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, "application/problem+json".parse().expect("static"));
        response
    }
}
