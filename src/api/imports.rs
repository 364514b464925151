//! `POST /tenants/{t}/imports`: a file uploaded (raw body or multipart),
//! streamed to the spool, never held in memory, bounded by
//! `limits.max_file_bytes` (refused at once on `Content-Length`), then the
//! pipeline and report of `dropfeed import`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::io::{AsyncWriteExt, BufWriter};
use utoipa::IntoParams;

use super::ApiState;
use super::auth::Caller;
use super::extract::{Path, Query};
use super::problem::{Problem, ProblemBody};
use crate::actions::imports::{self, Choice};
use crate::domain::Role;
use crate::profile::{Mode, ProfileKind};

/// The largest mapping part of a multipart upload.
const MAX_MAPPING_BYTES: u64 = 1 << 20;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ImportQuery {
    /// A saved profile (its latest version); otherwise the `mapping` part,
    /// or the default mapping by header.
    profile: Option<String>,
    /// `insert_only`, `upsert`, `update_only` or `replace_list`.
    mode: Option<Mode>,
    /// `contacts` or `mass_update`.
    kind: Option<ProfileKind>,
    /// Lists the contacts join, comma-separated; replaces the profile's.
    list: Option<String>,
    /// Check and report, write nothing.
    #[serde(default)]
    dry_run: bool,
    /// Save the mapping and options used under this name (support, admin).
    save_profile: Option<String>,
    /// The file's name in the report, for a raw body (default `upload.csv`).
    filename: Option<String>,
}

fn too_large(max: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload.too_large",
        format!("the file is larger than limits.max_file_bytes ({max} bytes)"),
    )
}

fn incomplete(e: impl std::fmt::Display) -> Problem {
    Problem::bad_request("upload.incomplete", format!("the upload did not arrive whole: {e}"))
}

/// Writes a stream of chunks to `out`, at most `max` bytes, each reserved
/// on the spool's quota before it is written.
async fn spool<S, E>(
    mut chunks: S,
    out: &mut BufWriter<tokio::fs::File>,
    max: u64,
    reserved: &mut crate::api::quota::Reservation,
) -> Result<u64, Problem>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut n = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(incomplete)?;
        n += chunk.len() as u64;
        if n > max {
            return Err(too_large(max));
        }
        reserved.grow(chunk.len() as u64)?;
        // A BufWriter of 1 MiB: one trip to the blocking pool per MiB
        // rather than per network chunk.
        out.write_all(&chunk).await.map_err(Problem::internal)?;
    }
    out.flush().await.map_err(Problem::internal)?;
    Ok(n)
}

/// Imports an uploaded file; the answer is its run's report (SPEC §6), as
/// `dropfeed import --format json` prints it.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/imports", tag = "imports",
    params(("tenant" = String, Path), ImportQuery),
    request_body(description = "the file as the raw body (any type but multipart, JSON or form), or `multipart/form-data` \
        with a `file` part and an optional `mapping` part (the YAML of `template`)",
        content(("application/octet-stream"), ("text/csv"), ("multipart/form-data"))),
    responses((status = 200, description = "the run's report (SPEC §6); `Location` names the run", body = crate::report::Report,
               headers(("Location" = String, description = "the run: `/api/v1/runs/{run}`"))),
              (status = 400, body = ProblemBody, description = "`upload.incomplete`, `upload.missing_file`"),
              (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
              (status = 413, body = ProblemBody, description = "`upload.too_large`"),
              (status = 415, body = ProblemBody, description = "`upload.content_type`"),
              (status = 422, body = ProblemBody, description = "`profile.invalid`"),
              (status = 507, body = ProblemBody, description = "`upload.quota`: the tenant's (or all) uploads fill their share of the spool")))]
pub async fn upload(
    caller: Caller,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let tenant = caller.tenant(&state, &slug).await?;
    if caller.access.role() == Role::Tenant {
        if q.save_profile.is_some() {
            return Err(Problem::forbidden("saving a profile needs the support or admin role"));
        }
        if !q.dry_run && q.profile.is_none() {
            return Err(Problem::forbidden(
                "a tenant imports with one of its saved profiles (`profile`); a mapping is for a dry run",
            ));
        }
        // The saved profile is what support validated: its mode, lists and
        // kind are not the customer's to change (a dry run may try others).
        if !q.dry_run && (q.mode.is_some() || q.kind.is_some() || q.list.is_some()) {
            return Err(Problem::forbidden(
                "a tenant imports with its saved profile as it is: `mode`, `kind` and `list` are for a dry run",
            ));
        }
    }
    if let Some(name) = &q.save_profile {
        crate::profile::check_name(name).map_err(|e| Problem::unprocessable("profile.invalid", e))?;
    }
    let max = state.settings.limits.max_file_bytes;
    // Refused before a byte is read: the length announced says it all.
    let announced =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max + MAX_MAPPING_BYTES + (64 << 10)) {
        return Err(too_large(max));
    }
    // A small body is read before a refusal: closing a socket with unread
    // data resets it, and the client may lose the answer.
    let refuse = |problem: Problem, body: Body| async move {
        if announced.is_some_and(|n| n <= MAX_MAPPING_BYTES) {
            let mut rest = body.into_data_stream();
            while let Some(Ok(_)) = rest.next().await {}
        }
        Err(problem)
    };
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream");
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence == "application/json" || essence == "application/x-www-form-urlencoded" {
        let problem = Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "upload.content_type",
            format!("{essence} is not a file upload: send the file as the raw body or as multipart/form-data"),
        );
        return refuse(problem, body).await;
    }
    std::fs::create_dir_all(&state.settings.spool_dir).map_err(Problem::internal)?;
    let temp =
        tempfile::Builder::new().prefix("upload-").tempfile_in(&state.settings.spool_dir).map_err(Problem::internal)?;
    let mut out =
        BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(temp.reopen().map_err(Problem::internal)?));
    let mut file_name = q.filename.clone().unwrap_or_else(|| "upload.csv".into());
    // Held until the import is over and its file removed.
    let mut reserved = state.spool_quota.reserve(tenant.id);
    let mut mapping = None;
    if essence == "multipart/form-data" {
        let boundary = match multer::parse_boundary(content_type) {
            Ok(b) => b,
            Err(e) => {
                let problem = Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "upload.content_type",
                    format!("bad multipart content type: {e}"),
                );
                return refuse(problem, body).await;
            }
        };
        let mut parts = multer::Multipart::new(body.into_data_stream(), boundary);
        let mut got_file = false;
        while let Some(part) = parts.next_field().await.map_err(incomplete)? {
            match part.name() {
                Some("file") if !got_file => {
                    if let Some(name) = part.file_name() {
                        // Shown in the report and stored with the run.
                        if name.contains('\0') {
                            return Err(Problem::bad_request(
                                "body.nul",
                                "the file part's file name holds a NUL character (U+0000), which no text may hold",
                            ));
                        }
                        file_name = name.to_owned();
                    }
                    spool(part, &mut out, max, &mut reserved).await?;
                    got_file = true;
                }
                Some("mapping") => {
                    let mut text = Vec::new();
                    let mut part = part;
                    while let Some(chunk) = part.chunk().await.map_err(incomplete)? {
                        text.extend_from_slice(&chunk);
                        if text.len() as u64 > MAX_MAPPING_BYTES {
                            return Err(Problem::unprocessable(
                                "profile.invalid",
                                "the mapping part is larger than 1 MiB",
                            ));
                        }
                    }
                    let text = String::from_utf8(text)
                        .map_err(|_| Problem::unprocessable("profile.invalid", "the mapping is not UTF-8"))?;
                    mapping = Some((text, "the mapping part".to_owned()));
                }
                other => {
                    return Err(Problem::bad_request(
                        "upload.part",
                        format!("unexpected part {:?}: send `file` and, optionally, `mapping`", other.unwrap_or("")),
                    ));
                }
            }
        }
        if !got_file {
            return Err(Problem::bad_request("upload.missing_file", "the multipart body has no `file` part"));
        }
    } else {
        spool(body.into_data_stream(), &mut out, max, &mut reserved).await?;
    }
    drop(out);
    if caller.access.role() == Role::Tenant && mapping.is_some() && !q.dry_run {
        return Err(Problem::forbidden("a tenant imports with one of its saved profiles; a mapping is for a dry run"));
    }
    let file_name =
        std::path::Path::new(&file_name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or(file_name);
    let choice = Choice {
        profile: q.profile.clone(),
        mapping,
        mode: q.mode,
        kind: q.kind,
        lists: q
            .list
            .as_deref()
            .map(|l| l.split(',').map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect())
            .unwrap_or_default(),
    };
    let (profile, profile_ref) = imports::resolve(&state.pool, &tenant, &choice, "the request").await?;
    let request = crate::import::Request {
        save_as: q.save_profile.clone(),
        dry_run: q.dry_run,
        ..crate::import::Request::manual(
            tenant,
            temp.path().to_path_buf(),
            file_name,
            (profile, profile_ref),
            state.settings.limits,
        )
    };
    // The import goes on if the client leaves once its file is here: an
    // upload that arrived whole is imported whole.
    let (api, actor) = (state.clone(), caller.actor.clone());
    let run_id = tokio::spawn(async move {
        let run = api.import(&actor, request).await;
        drop(temp);
        drop(reserved);
        run
    })
    .await
    .map_err(Problem::internal)?
    .map_err(Problem::internal)?;
    let mut response = super::runs::stream_report(&state, run_id).await?;
    if let Ok(location) = format!("/api/v1/runs/{run_id}").parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}
