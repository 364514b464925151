//! `/tenants/{t}/profiles`: saved profiles, their versions, and saving a new
//! version from YAML (support).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::auth::Caller;
use super::extract::{Path, Query, TextBody};
use super::problem::{Problem, ProblemBody};
use crate::profile::Profile;
use crate::store::audit;
use crate::store::profiles::{self, ProfileStoreError};

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileSummary {
    pub name: String,
    /// The latest version.
    pub version: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileList {
    pub profiles: Vec<ProfileSummary>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionOut {
    pub version: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileOut {
    pub name: String,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    /// Every version, newest first.
    pub versions: Vec<VersionOut>,
    /// The profile as YAML, as `profile show` prints it and PUT takes it.
    pub yaml: String,
    /// The same as JSON.
    #[schema(value_type = Object)]
    pub profile: serde_json::Value,
}

fn store_problem(e: ProfileStoreError) -> Problem {
    match e {
        ProfileStoreError::NotFound(name) => Problem::not_found(format!("profile {name}")),
        other => Problem::internal(other),
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/profiles", tag = "profiles",
    params(("tenant" = String, Path)),
    responses((status = 200, body = ProfileList), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn list(
    caller: Caller,
    State(state): State<ApiState>,
    Path(slug): Path<String>,
) -> Result<Json<ProfileList>, Problem> {
    let tenant = caller.tenant(&state, &slug).await?;
    let all = profiles::list(&state.pool, tenant.id).await.map_err(store_problem)?;
    let profiles = all
        .into_iter()
        .map(|p| ProfileSummary { name: p.name, version: p.version, created_at: p.created_at })
        .collect();
    Ok(Json(ProfileList { profiles }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct VersionQuery {
    /// A version; the latest when absent.
    version: Option<i32>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/profiles/{profile}", tag = "profiles",
    params(("tenant" = String, Path), ("profile" = String, Path), VersionQuery),
    responses((status = 200, body = ProfileOut), (status = 401, body = ProblemBody), (status = 404, body = ProblemBody)))]
pub async fn show(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<VersionQuery>,
) -> Result<Json<ProfileOut>, Problem> {
    let tenant = caller.tenant(&state, &slug).await?;
    let saved = match q.version {
        Some(v) => profiles::version(&state.pool, tenant.id, &name, v).await,
        None => profiles::latest(&state.pool, tenant.id, &name).await,
    }
    .map_err(store_problem)?;
    let versions = profiles::versions(&state.pool, tenant.id, &name).await.map_err(store_problem)?;
    Ok(Json(ProfileOut {
        name: saved.name,
        version: saved.version,
        created_at: saved.created_at,
        versions: versions.into_iter().map(|(version, created_at)| VersionOut { version, created_at }).collect(),
        yaml: saved.profile.to_yaml(),
        profile: serde_json::to_value(&saved.profile).map_err(Problem::internal)?,
    }))
}

/// Saves a profile from YAML (or JSON): a new version when it differs from
/// the latest, checked as `import --mapping` checks it.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/profiles/{profile}", tag = "profiles",
    params(("tenant" = String, Path), ("profile" = String, Path)),
    request_body(content = String, description = "the profile, as `template` writes it", content_type = "application/yaml"),
    responses((status = 200, body = ProfileOut), (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
              (status = 404, body = ProblemBody), (status = 422, body = ProblemBody, description = "`profile.invalid`")))]
pub async fn save(
    caller: Caller,
    State(state): State<ApiState>,
    Path((slug, name)): Path<(String, String)>,
    TextBody(body): TextBody,
) -> Result<Json<ProfileOut>, Problem> {
    let tenant = caller.tenant(&state, &slug).await?;
    caller.staff("saving a profile")?;
    let invalid = |detail: String| Problem::unprocessable("profile.invalid", detail);
    crate::profile::check_name(&name).map_err(invalid)?;
    let text = std::str::from_utf8(&body).map_err(|_| invalid("the profile is not UTF-8 text".into()))?;
    let origin = format!("profile {name}");
    let profile = Profile::from_yaml(text, &origin).map_err(|e| invalid(e.to_string()))?;
    profile.check(&origin).map_err(|e| invalid(e.to_string()))?;
    let mut tx = state.pool.begin().await.map_err(Problem::internal)?;
    let version = profiles::save(&mut tx, tenant.id, &name, &profile).await.map_err(store_problem)?;
    let detail = serde_json::json!({ "profile": name, "version": version });
    audit::record(&mut tx, &caller.actor, Some(tenant.id), "profile.save", detail).await.map_err(Problem::internal)?;
    tx.commit().await.map_err(Problem::internal)?;
    show(caller, State(state), Path((slug, name)), Query(VersionQuery { version: Some(version) })).await
}
