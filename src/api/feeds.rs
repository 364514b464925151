//! `/tenants/{t}/feeds`: a tenant's feeds with their schedule, next runs,
//! last run and lease; apply, test, run now, pause and resume (support).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::Caller;
use super::extract::{Path, Query, TextBody};
use super::problem::{Problem, ProblemBody};
use crate::actions::feeds::{self as feed_actions, Applier, Document, TestOutcome};
use crate::domain::{FeedStatus, Role};
use crate::pickup::FileOutcome;
use crate::store::feeds::{self, FeedRow};
use crate::store::tenants::Tenant;

/// How many coming run times a feed shows.
const NEXT_RUNS: usize = 5;

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedOut {
    pub tenant: String,
    pub name: String,
    pub paused: bool,
    /// The cron expression.
    pub schedule: String,
    pub timezone: String,
    /// The next 5 run times, in the feed's timezone (RFC 3339 with offset).
    pub next_runs: Vec<String>,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    /// The daemon running it now, and until when its lease holds.
    pub lease: Option<Lease>,
    /// Where files are taken from, without any secret (support and admin).
    pub endpoint: Option<String>,
    /// The applied YAML as JSON (support and admin): names of environment
    /// variables and files holding secrets, never a secret.
    #[schema(value_type = Option<Object>)]
    pub spec: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Lease {
    pub owner: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedList {
    pub feeds: Vec<FeedOut>,
}

fn feed_out(caller: &Caller, tenant: &Tenant, f: &FeedRow) -> FeedOut {
    let staff = caller.access.role() != Role::Tenant;
    let timezone = f.spec.schedule.timezone.clone().unwrap_or_else(|| tenant.timezone.clone());
    FeedOut {
        tenant: f.tenant.clone(),
        name: f.name.clone(),
        paused: f.paused,
        schedule: f.spec.schedule.cron.clone(),
        next_runs: feed_actions::next_runs(&f.spec, &tenant.timezone, NEXT_RUNS)
            .iter()
            .map(|t| t.to_rfc3339())
            .collect(),
        timezone,
        next_run_at: f.next_run_at,
        last_run_at: f.last_run_at,
        last_status: f.last_status.as_ref().map(FeedStatus::to_string),
        // The poll's own error names the source's user, host and secret
        // names: a tenant gets the code (`last_status`) and this sentence.
        last_error: match staff {
            true => f.last_error.clone(),
            false => f.last_error.as_ref().map(|_| "the feed's last poll failed; support has the details".to_owned()),
        },
        lease: f.lease_owner.clone().map(|owner| Lease { owner, expires_at: f.lease_expires_at }),
        endpoint: staff
            .then(|| crate::source::Endpoint::parse(&f.spec.source.url).map(|e| e.to_string()).unwrap_or_default()),
        spec: staff.then(|| serde_json::to_value(&f.spec).unwrap_or_default()),
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/feeds", tag = "feeds",
    params(("tenant" = String, Path)),
    responses((status = 200, body = FeedList), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
) -> Result<Json<FeedList>, Problem> {
    let tenant = caller.tenant(&state, &slug).await?;
    let all = feeds::list(&state.pool).await.map_err(Problem::internal)?;
    let feeds = all.iter().filter(|f| f.tenant_id == tenant.id).map(|f| feed_out(&caller, &tenant, f)).collect();
    Ok(Json(FeedList { feeds }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/feeds/{feed}", tag = "feeds",
    params(("tenant" = String, Path), ("feed" = String, Path)),
    responses((status = 200, body = FeedOut), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn show(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<FeedOut>, Problem> {
    let (tenant, f) = caller.feed(&state, &slug, &name).await?;
    Ok(Json(feed_out(&caller, &tenant, &f)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyOutcome {
    pub feed: String,
    /// `created`, `updated` or `unchanged`.
    pub outcome: String,
}

/// Applies a feed (YAML, or JSON: the same document) with the checks and
/// messages of `feed apply`; the document must name this tenant and feed.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/feeds/{feed}", tag = "feeds",
    params(("tenant" = String, Path), ("feed" = String, Path)),
    request_body(content = String, description = "the feed, as in `feed apply` (SPEC §5)",
        content_type = "application/yaml"),
    responses((status = 200, body = ApplyOutcome), (status = 401, body = ProblemBody),
              (status = 403, body = ProblemBody, description = "`auth.forbidden`, or `feed.not_allowed`: the feed names a \
                  secret, file, folder or host that `feed_policy` does not grant (every one in `errors`; audited)"),
              (status = 404, body = ProblemBody), (status = 422, body = ProblemBody, description = "`feed.invalid`: every problem in `errors`")))]
pub async fn apply(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
    TextBody(body): TextBody,
) -> Result<Json<ApplyOutcome>, Problem> {
    let tenant = caller.tenant(&state, &slug).await?;
    caller.staff("applying a feed")?;
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| Problem::unprocessable("feed.invalid", "the feed is not UTF-8 text"))?;
    let origin = format!("feed {slug}/{name}");
    let invalid =
        |errors: Vec<String>| Problem::unprocessable("feed.invalid", "no feed applied: see errors").with_errors(errors);
    let docs = [Document { origin: origin.clone(), text }];
    let applier = Applier::Staff { policy: &state.settings.feed_policy, actor: &caller.actor };
    let checked =
        feed_actions::check(&state.pool, &docs, applier).await.map_err(|refused| match refused.by_policy {
            true => Problem::forbidden("no feed applied: it names what feed_policy does not grant; see errors")
                .with_code("feed.not_allowed")
                .with_errors(refused.problems),
            false => invalid(refused.problems),
        })?;
    if let Some(c) = checked.iter().find(|c| c.tenant.id != tenant.id || c.spec.name != name) {
        return Err(invalid(vec![format!(
            "{origin}: the document names feed {}/{}, not the one of this URL",
            c.spec.tenant, c.spec.name
        )]));
    }
    let mut applied = feed_actions::store(&state.pool, &caller.actor, checked).await.map_err(Problem::internal)?;
    let (feed, outcome) = applied.pop().ok_or_else(|| Problem::internal("no feed stored"))?;
    Ok(Json(ApplyOutcome { feed, outcome: feed_actions::applied_str(outcome).into() }))
}

/// Connects to the feed's server and lists the files it would take.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/feeds/{feed}/test", tag = "feeds",
    params(("tenant" = String, Path), ("feed" = String, Path)),
    responses((status = 200, body = TestOutcome), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
              (status = 404, body = ProblemBody), (status = 502, body = ProblemBody, description = "`source.connect`: the server could not be reached or listed")))]
pub async fn test(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<TestOutcome>, Problem> {
    let (_, f) = caller.feed(&state, &slug, &name).await?;
    caller.staff("testing a feed")?;
    match feed_actions::test(&f.spec).await {
        Ok(found) => Ok(Json(found)),
        // What failed is the feed's server, not ours: the caller is told
        // (the error names the endpoint and the cause, never a secret).
        Err(e) => Err(Problem::new(StatusCode::BAD_GATEWAY, "source.connect", format!("{e:#}"))),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RunQuery {
    /// List and report without taking any file.
    #[serde(default)]
    dry_run: bool,
}

/// What a poll did with one file: one flat object per file rather than the
/// CLI's tagged pairs, so that a client written from the document alone
/// reads every outcome with one schema.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileRun {
    pub file: String,
    /// `imported`, `refused`, `held`, `duplicate`, `dry_run`, `disposed` or `waiting`.
    pub outcome: &'static str,
    /// The run that imported, refused, held or analysed it.
    pub run_id: Option<uuid::Uuid>,
    /// The run's status, for `imported` and `refused`.
    pub status: Option<String>,
    /// For `duplicate`: the run that imported the same content.
    pub of_run: Option<uuid::Uuid>,
    /// For `waiting`: why it was left for a later poll.
    pub reason: Option<String>,
}

impl FileRun {
    pub fn of(file: &str, outcome: &FileOutcome) -> FileRun {
        let mut f =
            FileRun { file: file.to_owned(), outcome: "", run_id: None, status: None, of_run: None, reason: None };
        match outcome {
            FileOutcome::Imported { run_id, status } => {
                (f.outcome, f.run_id, f.status) = ("imported", Some(*run_id), Some(status.clone()))
            }
            FileOutcome::Refused { run_id, status } => {
                (f.outcome, f.run_id, f.status) = ("refused", Some(*run_id), Some(status.clone()))
            }
            FileOutcome::Held { run_id } => (f.outcome, f.run_id) = ("held", Some(*run_id)),
            FileOutcome::Duplicate { of_run } => (f.outcome, f.of_run) = ("duplicate", *of_run),
            FileOutcome::DryRun { run_id } => (f.outcome, f.run_id) = ("dry_run", Some(*run_id)),
            FileOutcome::Disposed => f.outcome = "disposed",
            FileOutcome::Waiting { reason } => (f.outcome, f.reason) = ("waiting", Some(reason.clone())),
        }
        f
    }
}

/// What a poll did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PollOutcome {
    /// Files listed in the drop folder.
    pub listed: usize,
    /// The feed's status after the poll: `ok`, `held_files` or `failed_files`.
    pub status: String,
    pub files: Vec<FileRun>,
}

/// Runs the feed now, as `feed run`; answers when the poll is over.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/feeds/{feed}/run", tag = "feeds",
    params(("tenant" = String, Path), ("feed" = String, Path), RunQuery),
    responses((status = 200, body = PollOutcome),
              (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
              (status = 409, body = ProblemBody, description = "`feed.busy`: another daemon holds the feed's lease"),
              (status = 502, body = ProblemBody, description = "`source.*`: the feed's server could not be reached, logged in to or listed, or its secret is missing"),
              (status = 503, body = ProblemBody, description = "`archive.unavailable`: the archive's store does not answer")))]
pub async fn run(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<RunQuery>,
) -> Result<Json<PollOutcome>, Problem> {
    let (_, f) = caller.feed(&state, &slug, &name).await?;
    caller.staff("running a feed")?;
    let report =
        feed_actions::run_now(&state.pool, &state.settings, &caller.actor, &f, q.dry_run).await.map_err(run_problem)?;
    let files = report.files.iter().map(|(name, outcome)| FileRun::of(name, outcome)).collect();
    Ok(Json(PollOutcome { listed: report.listed, status: report.status().to_string(), files }))
}

/// Why a poll run now failed: the feed's server (502, its code), the
/// archive (503), another daemon's lease (409), or ours (500).
fn run_problem(e: anyhow::Error) -> Problem {
    use crate::pickup::PollError;
    let text = format!("{e:#}");
    match e.downcast::<PollError>() {
        Ok(PollError::Source(source)) => Problem::new(StatusCode::BAD_GATEWAY, source.code(), source.to_string()),
        Ok(PollError::Archive(archive)) => Problem::from(archive),
        Ok(other) => Problem::internal(format!("{other:#}")),
        Err(_) if text.contains("is being polled by") => Problem::new(StatusCode::CONFLICT, "feed.busy", text),
        Err(e) => Problem::internal(format!("{e:#}")),
    }
}

async fn set_paused(
    caller: Caller,
    state: ApiState,
    slug: String,
    name: String,
    paused: bool,
) -> Result<Json<FeedOut>, Problem> {
    let (tenant, f) = caller.feed(&state, &slug, &name).await?;
    caller.staff(if paused { "pausing a feed" } else { "resuming a feed" })?;
    feed_actions::set_paused(&state.pool, &caller.actor, &f, paused).await.map_err(Problem::internal)?;
    let f = feeds::find_by_id(&state.pool, f.id)
        .await
        .map_err(Problem::internal)?
        .ok_or_else(|| Problem::not_found(&name))?;
    Ok(Json(feed_out(&caller, &tenant, &f)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/feeds/{feed}/pause", tag = "feeds",
    params(("tenant" = String, Path), ("feed" = String, Path)),
    responses((status = 200, body = FeedOut), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn pause(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<FeedOut>, Problem> {
    set_paused(caller, state, slug, name, true).await
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/feeds/{feed}/resume", tag = "feeds",
    params(("tenant" = String, Path), ("feed" = String, Path)),
    responses((status = 200, body = FeedOut), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn resume(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<FeedOut>, Problem> {
    set_paused(caller, state, slug, name, false).await
}
