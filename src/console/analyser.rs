//! The Analyser (seed 000's button): a sample uploaded (streamed to the
//! spool, progress shown), analysed as a dry run with the automatic mapping
//! or a saved profile, the mapping actually used shown as editable YAML,
//! analysed again, saved as a profile, imported. The sample stays in the
//! spool under the tenant's folder while the page uses it (a day at most).

use std::path::PathBuf;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::i18n::Texts;
use super::pages::csrf_refused;
use super::runs::{Rule, status_label};
use super::{Viewer, error_page, see_other};
use crate::actions::imports::{self, Choice};
use crate::api::ApiState;
use crate::api::problem::Problem;
use crate::profile::{Profile, Target};
use crate::report::Report;
use crate::store::tenants::Tenant;
use crate::store::{profiles, runs};

/// Samples older than this are removed at the next upload.
const KEEP_SAMPLES_HOURS: u64 = 24;

fn samples_dir(state: &ApiState, tenant: &Tenant) -> PathBuf {
    state.settings.spool_dir.join("analyser").join(tenant.id.to_string())
}

/// A sample's key (`UUID--name`) checked: no path can be made of it.
fn sample_path(state: &ApiState, tenant: &Tenant, key: &str) -> Result<(PathBuf, String), Problem> {
    let (id, name) = key.split_once("--").ok_or_else(|| Problem::not_found("sample"))?;
    Uuid::parse_str(id).map_err(|_| Problem::not_found("sample"))?;
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(Problem::not_found("sample"));
    }
    let path = samples_dir(state, tenant).join(key);
    if !path.is_file() {
        return Err(Problem::not_found("sample (kept a day: upload it again)"));
    }
    Ok((path, name.to_owned()))
}

/// The report of an analysis, as the page shows it.
pub struct Analysis {
    pub run_id: Uuid,
    pub status: String,
    pub status_label: String,
    pub counts: Vec<(&'static str, i64)>,
    pub rules: Vec<Rule>,
    pub error: Option<String>,
    pub saved: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "analyser.html")]
struct AnalyserPage {
    t: &'static Texts,
    viewer: Option<Viewer>,
    staff: bool,
    csrf: String,
    tenant: String,
    profiles: Vec<String>,
    chosen: String,
    sample: String,
    file_name: String,
    yaml: String,
    analysis: Option<Analysis>,
    problem: Option<String>,
}

/// Where the page is in the Analyser's steps.
#[derive(Default)]
struct Work {
    /// The sample's key and file name, once uploaded.
    sample: Option<(String, String)>,
    /// The saved profile chosen, empty for the automatic mapping.
    chosen: String,
    yaml: String,
    analysis: Option<Analysis>,
    problem: Option<String>,
}

async fn page(viewer: Viewer, state: &ApiState, tenant: &Tenant, work: Work) -> Result<AnalyserPage, Problem> {
    let names =
        profiles::list(&state.pool, tenant.id).await.map_err(Problem::internal)?.into_iter().map(|p| p.name).collect();
    let Work { sample, chosen, yaml, analysis, problem } = work;
    let (sample, file_name) = sample.unwrap_or_default();
    Ok(AnalyserPage {
        t: viewer.t(),
        staff: viewer.staff(),
        csrf: viewer.csrf.clone(),
        viewer: Some(viewer),
        tenant: tenant.slug.to_string(),
        profiles: names,
        chosen,
        sample,
        file_name,
        yaml,
        analysis,
        problem,
    })
}

pub async fn show(viewer: Viewer, State(state): State<ApiState>, Path(slug): Path<String>) -> Response {
    let (lang, fallback) = (viewer.lang, viewer.clone());
    let result = async {
        let tenant = viewer.caller.tenant(&state, &slug).await?;
        page(viewer, &state, &tenant, Work::default()).await
    }
    .await;
    match result {
        Ok(p) => p.into_response(),
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}

/// The profile a report's run used, with the columns it actually mapped:
/// what "save as profile" stores, as YAML to edit.
fn effective_yaml(profile: &Profile, report: &Report<()>) -> String {
    let mut effective = profile.clone();
    let mut columns = indexmap::IndexMap::new();
    for (header, target) in &report.columns.mapped {
        columns.insert(header.clone(), target.parse::<Target>().ok());
    }
    for header in &report.columns.unmapped {
        columns.insert(header.clone(), None);
    }
    if !columns.is_empty() {
        effective.columns = columns;
    }
    effective.to_yaml()
}

/// Runs an import of the sample; its report as the page shows it.
async fn analyse(
    viewer: &Viewer,
    state: &ApiState,
    tenant: &Tenant,
    (path, file_name): (PathBuf, &str),
    choice: Choice,
    dry_run: bool,
    save_as: Option<String>,
) -> Result<(Analysis, String), Problem> {
    let t = viewer.t();
    let (profile, profile_ref) = imports::resolve(&state.pool, tenant, &choice, "the mapping").await?;
    let request = crate::import::Request {
        save_as,
        dry_run,
        ..crate::import::Request::manual(
            tenant.clone(),
            path,
            file_name.to_owned(),
            (profile.clone(), profile_ref),
            state.settings.limits,
        )
    };
    let run_id = state.import(&viewer.caller.actor, request).await.map_err(Problem::internal)?;
    let head =
        runs::head(&state.pool, run_id).await.map_err(Problem::internal)?.ok_or_else(|| Problem::not_found("run"))?;
    let examples =
        runs::examples(&state.pool, run_id, crate::report::text::EXAMPLES_PER_CODE).await.map_err(Problem::internal)?;
    let c = &head.counts;
    let analysis = Analysis {
        run_id,
        status: head.status.as_str().to_owned(),
        status_label: status_label(t, head.status.as_str()),
        counts: vec![
            (t.rows, c.rows),
            (t.inserted, c.inserted),
            (t.updated, c.updated),
            (t.skipped_existing, c.skipped_existing),
            (t.rejected, c.rejected),
            (t.warnings, c.warnings),
        ],
        rules: head
            .by_code
            .iter()
            .map(|(code, n)| Rule {
                code: code.clone(),
                count: *n,
                examples: examples.get(code).cloned().unwrap_or_default(),
            })
            .collect(),
        error: head.error.clone(),
        saved: head.profile.as_ref().filter(|_| head.profile.is_some()).map(|p| format!("{} v{}", p.name, p.version)),
    };
    Ok((analysis, effective_yaml(&profile, &head)))
}

/// A small field of the upload form that is too large or unreadable.
fn form_field(e: multer::Error) -> Problem {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "form.too_large", e.to_string())
        }
        e => Problem::bad_request("upload.incomplete", e.to_string()),
    }
}

/// The upload: `csrf`, `profile` (empty: automatic) and `file`, multipart,
/// the file streamed to the spool within `limits.max_file_bytes`.
pub async fn upload(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (lang, fallback) = (viewer.lang, viewer.clone());
    let result: Result<Response, Problem> = async {
        let tenant = viewer.caller.tenant(&state, &slug).await?;
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let boundary = multer::parse_boundary(content_type).map_err(|_| {
            Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "upload.content_type",
                "send the form as multipart/form-data",
            )
        })?;
        let dir = samples_dir(&state, &tenant);
        tokio::fs::create_dir_all(&dir).await.map_err(Problem::internal)?;
        sweep(&dir).await;
        // The form's small fields are read into memory: bounded, as is the
        // list of fields (a 600 MiB `csrf` once took 1.2 GB); the file is
        // streamed to disk within max_file_bytes below.
        let constraints = multer::Constraints::new()
            .allowed_fields(vec!["csrf", "profile", "file"])
            .size_limit(multer::SizeLimit::new().for_field("csrf", 1024).for_field("profile", 1024));
        let mut parts = multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
        let (mut csrf, mut chosen, mut sample) = (String::new(), String::new(), None);
        let max = state.settings.limits.max_file_bytes;
        while let Some(mut part) =
            parts.next_field().await.map_err(|e| Problem::bad_request("upload.incomplete", e.to_string()))?
        {
            match part.name().unwrap_or_default() {
                "csrf" => csrf = part.text().await.map_err(form_field)?,
                "profile" => chosen = part.text().await.map_err(form_field)?,
                "file" => {
                    // The token comes first in the form: nothing is written for a forged post.
                    if !viewer.csrf_ok(&csrf) {
                        return Err(csrf_refused());
                    }
                    let name = part
                        .file_name()
                        .map(|n| {
                            std::path::Path::new(n)
                                .file_name()
                                .map(|x| x.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                    let name = if name.is_empty() || name.starts_with('.') {
                        "sample.csv".to_owned()
                    } else {
                        name.replace(['/', '\\'], "_")
                    };
                    // 122 random bits: a sample's address cannot be guessed.
                    let mut random = [0u8; 16];
                    getrandom::fill(&mut random).map_err(|e| Problem::internal(format!("random source: {e}")))?;
                    let key = format!("{}--{name}", uuid::Builder::from_random_bytes(random).into_uuid());
                    let path = dir.join(&key);
                    let mut out = tokio::io::BufWriter::with_capacity(
                        1 << 20,
                        tokio::fs::File::create(&path).await.map_err(Problem::internal)?,
                    );
                    // The tenant's samples on disk count with what arrives.
                    let mut reserved = state.spool_quota.reserve(tenant.id);
                    reserved.grow(dir_bytes(&dir).await)?;
                    let mut n = 0u64;
                    while let Some(chunk) = part.next().await {
                        let chunk = match chunk {
                            Ok(c) => c,
                            Err(e) => {
                                let _ = tokio::fs::remove_file(&path).await;
                                return Err(Problem::bad_request("upload.incomplete", e.to_string()));
                            }
                        };
                        n += chunk.len() as u64;
                        if n > max {
                            let _ = tokio::fs::remove_file(&path).await;
                            return Err(Problem::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                "upload.too_large",
                                format!("the file is larger than {max} bytes"),
                            ));
                        }
                        if let Err(p) = reserved.grow(chunk.len() as u64) {
                            let _ = tokio::fs::remove_file(&path).await;
                            return Err(p);
                        }
                        out.write_all(&chunk).await.map_err(Problem::internal)?;
                    }
                    out.flush().await.map_err(Problem::internal)?;
                    sample = Some((key, name));
                }
                _ => {}
            }
        }
        if !viewer.csrf_ok(&csrf) {
            return Err(csrf_refused());
        }
        let Some((key, name)) = sample else {
            return Err(Problem::bad_request("upload.missing_file", "choose a file"));
        };
        let (path, _) = sample_path(&state, &tenant, &key)?;
        let choice = Choice { profile: Some(chosen.clone()).filter(|c| !c.is_empty()), ..Choice::default() };
        let (analysis, yaml) = analyse(&viewer, &state, &tenant, (path, &name), choice, true, None).await?;
        let work = Work { sample: Some((key, name)), chosen, yaml, analysis: Some(analysis), problem: None };
        Ok(page(viewer, &state, &tenant, work).await?.into_response())
    }
    .await;
    match result {
        Ok(r) => r,
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}

/// Removes the samples older than a day.
/// The bytes of the files in `dir` (a tenant's samples).
async fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return 0 };
    let mut total = 0;
    while let Ok(Some(e)) = entries.next_entry().await {
        total += e.metadata().await.map(|m| m.len()).unwrap_or(0);
    }
    total
}

async fn sweep(dir: &std::path::Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else { return };
    let limit = std::time::Duration::from_secs(KEEP_SAMPLES_HOURS * 3600);
    while let Ok(Some(e)) = entries.next_entry().await {
        let old = e
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > limit);
        if old {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    yaml: String,
    #[serde(default)]
    profile: String,
    #[serde(default)]
    name: String,
}

/// Analyse again, save as profile, or import now, on the uploaded sample.
pub async fn step(
    viewer: Viewer,
    State(state): State<ApiState>,
    Path((slug, key, action)): Path<(String, String, String)>,
    Form(form): Form<StepForm>,
) -> Response {
    let (lang, fallback) = (viewer.lang, viewer.clone());
    let result: Result<Response, Problem> = async {
        let tenant = viewer.caller.tenant(&state, &slug).await?;
        let (path, name) = sample_path(&state, &tenant, &key)?;
        if !viewer.csrf_ok(&form.csrf) {
            return Err(csrf_refused());
        }
        let mapping = Some((form.yaml.clone(), "the mapping".to_owned()));
        let (choice, dry_run, save_as) = match action.as_str() {
            "analyse" => (Choice { mapping, ..Choice::default() }, true, None),
            "save" => {
                viewer.caller.staff("saving a profile")?;
                let profile_name = form.name.trim().to_owned();
                if profile_name.is_empty() {
                    return Err(Problem::unprocessable("profile.invalid", "give the profile a name"));
                }
                crate::profile::check_name(&profile_name).map_err(|e| Problem::unprocessable("profile.invalid", e))?;
                (Choice { mapping, ..Choice::default() }, true, Some(profile_name))
            }
            "import" => {
                if viewer.staff() {
                    (Choice { mapping, ..Choice::default() }, false, None)
                } else {
                    // A customer imports with a profile support saved, not an edited mapping.
                    let profile = Some(form.profile.trim().to_owned()).filter(|p| !p.is_empty());
                    if profile.is_none() {
                        return Err(Problem::forbidden("a tenant imports with one of its saved profiles"));
                    }
                    (Choice { profile, ..Choice::default() }, false, None)
                }
            }
            _ => return Err(Problem::not_found(format!("analyser step {action}"))),
        };
        match analyse(&viewer, &state, &tenant, (path, &name), choice, dry_run, save_as).await {
            Ok((analysis, _)) if !dry_run => Ok(see_other(&format!("/runs/{}", analysis.run_id))),
            Ok((analysis, yaml)) => {
                let yaml = if action == "analyse" { form.yaml.clone() } else { yaml };
                let work = Work {
                    sample: Some((key, name)),
                    chosen: form.profile,
                    yaml,
                    analysis: Some(analysis),
                    problem: None,
                };
                Ok(page(viewer, &state, &tenant, work).await?.into_response())
            }
            Err(p) if p.status == StatusCode::UNPROCESSABLE_ENTITY || p.status == StatusCode::NOT_FOUND => {
                let work = Work {
                    sample: Some((key, name)),
                    chosen: form.profile,
                    yaml: form.yaml,
                    analysis: None,
                    problem: Some(p.detail),
                };
                let page = page(viewer, &state, &tenant, work).await?;
                Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
            }
            Err(p) => Err(p),
        }
    }
    .await;
    match result {
        Ok(r) => r,
        Err(p) => error_page(lang, Some(&fallback), p),
    }
}
