//! Errors of the API as `application/problem+json` (RFC 9457), each with a
//! stable `code` a script can branch on.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Every problem found, when there are several (a feed's YAML).
    pub errors: Vec<String>,
}

/// An error answer (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    #[schema(example = "about:blank")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    /// Stable: `not_found`, `auth.required`, `auth.forbidden`, `csrf`,
    /// `auth.throttled`, `feed.invalid`, `profile.invalid`, `upload.too_large`,
    /// `upload.content_type`, `upload.incomplete`, `run.state`, `query.*`,
    /// `internal`, or a rule code of SPEC §3 and §6.
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem { status, code, detail: detail.into(), errors: Vec::new() }
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
            "send a valid, unrevoked, unexpired token as `Authorization: Bearer <token>`, or log in",
        )
    }

    /// A caller who sees the object but whose role may not do this to it.
    pub fn forbidden(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "auth.forbidden", what)
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// A request understood but refused by the product's own checks.
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn with_code(mut self, code: &'static str) -> Problem {
        self.code = code;
        self
    }

    pub fn with_errors(mut self, errors: Vec<String>) -> Problem {
        self.errors = errors;
        self
    }

    /// A failure of ours: the detail goes to the log, the caller gets none
    /// (it could name a database or a file).
    pub fn internal(e: impl std::fmt::Display) -> Problem {
        tracing::error!("api request failed: {e:#}");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request failed; the operator has the details")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            r#type: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("error").into(),
            status: self.status.as_u16(),
            code: self.code.into(),
            detail: self.detail,
            errors: self.errors,
        };
        let mut response = (self.status, serde_json::to_string(&body).unwrap_or_default()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// A profile an import cannot use: missing (404) or invalid (422), in the
/// API's and the console's answers alike.
impl From<crate::actions::imports::ChoiceError> for Problem {
    fn from(e: crate::actions::imports::ChoiceError) -> Problem {
        use crate::actions::imports::ChoiceError;
        use crate::store::profiles::ProfileStoreError;
        match e {
            ChoiceError::Profile(ProfileStoreError::NotFound(name)) => Problem::not_found(format!("profile {name}")),
            ChoiceError::Profile(other) => Problem::internal(other),
            ChoiceError::Invalid(e) => Problem::unprocessable("profile.invalid", e.to_string()),
        }
    }
}

/// The archive behind a download, a release or a replay: down (503, try
/// later), gone (404), or holding a copy that no longer matches its hash.
impl From<crate::archive::ArchiveError> for Problem {
    fn from(e: crate::archive::ArchiveError) -> Problem {
        use crate::archive::ArchiveError;
        let status = match &e {
            ArchiveError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ArchiveError::Gone { .. } => StatusCode::NOT_FOUND,
            ArchiveError::Altered { .. } | ArchiveError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Problem::new(status, e.code(), e.to_string())
    }
}
