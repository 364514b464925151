//! An import a person asks for (`dropfeed import`, `POST .../imports`): the
//! profile it replays, resolved the same way whatever the caller.

use anyhow::Context;
use sqlx::PgPool;

use crate::profile::{Mode, Profile, ProfileKind};
use crate::report::ProfileRef;
use crate::store::{profiles, tenants};

/// Which mapping an import uses and the options that override it.
#[derive(Debug, Default)]
pub struct Choice {
    /// A saved profile's name (its latest version).
    pub profile: Option<String>,
    /// Or a mapping in YAML, with where it came from (for its errors).
    pub mapping: Option<(String, String)>,
    pub mode: Option<Mode>,
    pub kind: Option<ProfileKind>,
    /// Replaces the profile's lists when not empty.
    pub lists: Vec<String>,
}

/// Why a choice cannot be used: the caller's fault, said in its terms.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error("{0}")]
    Profile(#[from] profiles::ProfileStoreError),
    #[error("{0}")]
    Invalid(#[from] crate::profile::ProfileError),
}

/// The profile an import replays, and the saved version it comes from.
pub async fn resolve(
    pool: &PgPool,
    tenant: &tenants::Tenant,
    choice: &Choice,
    origin: &str,
) -> Result<(Profile, Option<ProfileRef>), ChoiceError> {
    let (mut profile, profile_ref) = match (&choice.profile, &choice.mapping) {
        (Some(name), _) => {
            let saved = profiles::latest(pool, tenant.id, name).await?;
            (saved.profile, Some(ProfileRef { name: saved.name, version: saved.version }))
        }
        (None, Some((text, from))) => (Profile::from_yaml(text, from)?, None),
        (None, None) => (Profile::default(), None),
    };
    if let Some(mode) = choice.mode {
        profile.mode = mode;
    }
    if let Some(kind) = choice.kind {
        profile.kind = kind;
    }
    if !choice.lists.is_empty() {
        profile.lists = choice.lists.clone();
    }
    profile.check(origin)?;
    Ok((profile, profile_ref))
}

/// Reads a mapping file for `resolve`.
pub fn read_mapping(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read mapping {}", path.display()))?;
    Ok((text, path.display().to_string()))
}

/// Runs an import a person asked for; one that writes (not a dry run) or
/// saves a profile is audited with its run.
pub async fn run(
    pool: &PgPool,
    actor: &crate::store::audit::Actor,
    request: crate::import::Request,
) -> anyhow::Result<uuid::Uuid> {
    let audited = (!request.dry_run || request.save_as.is_some()).then(|| {
        let detail = serde_json::json!({
            "file": request.file_name, "dry_run": request.dry_run,
            "profile": request.profile_ref.as_ref().map(|p| format!("{} v{}", p.name, p.version)),
            "save_profile": request.save_as,
        });
        (request.tenant.id, detail)
    });
    let run_id = crate::import::run(pool, request).await?;
    if let Some((tenant_id, mut detail)) = audited {
        detail["run"] = serde_json::json!(run_id);
        crate::store::audit::record_on(pool, actor, Some(tenant_id), "import", detail).await.context("cannot audit")?;
    }
    Ok(run_id)
}
