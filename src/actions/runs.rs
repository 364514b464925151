//! Release and replay of a run, audited.

use sqlx::PgPool;
use uuid::Uuid;

use crate::configuration::Settings;
use crate::rerun::{self, Action};
use crate::store::audit::{self, Actor};

/// Re-imports run `of`'s archived file (see `rerun`); the new run's id.
pub async fn rerun(
    pool: &PgPool,
    settings: &Settings,
    actor: &Actor,
    of: Uuid,
    action: Action,
) -> anyhow::Result<Uuid> {
    let archive = settings.archive()?;
    let new_run =
        rerun::rerun(pool, &archive, &settings.spool_dir, settings.limits, &settings.report, of, action).await?;
    let (name, force) = match action {
        Action::Release => ("run.release", false),
        Action::Replay { force } => ("run.replay", force),
    };
    let tenant = crate::store::runs::tenant_of(pool, new_run).await?;
    let detail = serde_json::json!({ "run": of, "new_run": new_run, "force": force });
    audit::record_on(pool, actor, tenant, name, detail).await?;
    Ok(new_run)
}
