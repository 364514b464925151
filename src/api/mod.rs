//! The HTTP API (SPEC §8.2), JSON under `/api/v1`, for support staff's and
//! customers' scripts: every route takes a `Caller` (auth.rs), answers
//! errors as problem+json (problem.rs) and streams what can be large (a
//! report, a rejects file, an export, an upload) instead of holding it.
//! Routes are registered through utoipa's router, so a route cannot be
//! served without being in `/api/v1/openapi.json`. Served with the console by
//! `web` (`dropfeed serve`, and `dropfeed run` when `console.bind` is set).

mod audit;
pub mod auth;
mod contacts;
pub mod extract;
pub mod feeds;
mod imports;
mod openapi;
pub mod problem;
mod profiles;
pub mod quota;
pub mod runs;
pub mod server;
pub mod session;
pub mod stream;
mod tenants;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::routing::get;
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::configuration::Settings;

/// What every route reaches.
#[derive(Clone)]
pub struct ApiState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// Imports run at once by the API and the console (`workers` of them):
    /// each holds its parser's batches and a database connection, so more
    /// uploads at once wait their turn, their files on disk, not in memory.
    pub import_slots: Arc<tokio::sync::Semaphore>,
    /// `console.trusted_proxies`, parsed once (`auth::client_address`).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The bytes uploads hold on the spool (`quota.rs`).
    pub spool_quota: Arc<quota::SpoolQuota>,
}

impl ApiState {
    pub fn new(pool: PgPool, settings: Arc<Settings>) -> ApiState {
        let slots = settings.workers.max(1);
        // Checked by `configuration::load`; settings built otherwise (tests)
        // trust no proxy they cannot read.
        let proxies = settings.console.as_ref().and_then(|c| c.trusted_networks().ok()).unwrap_or_default();
        ApiState {
            pool,
            import_slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            trusted_proxies: Arc::new(proxies),
            spool_quota: quota::SpoolQuota::new(
                settings.limits.max_spool_bytes_per_tenant,
                settings.limits.max_spool_bytes,
            ),
            settings,
        }
    }

    /// Runs a person's import once a slot is free (`import_slots`).
    pub async fn import(
        &self,
        actor: &crate::store::audit::Actor,
        request: crate::import::Request,
    ) -> anyhow::Result<uuid::Uuid> {
        let _slot = self.import_slots.acquire().await?;
        crate::actions::imports::run(&self.pool, actor, request).await
    }

    pub fn session_days(&self) -> u32 {
        self.settings.console.as_ref().map(|c| c.session_days).unwrap_or(7)
    }

    /// Cookies are `Secure` when people reach the console over https.
    pub fn secure_cookies(&self) -> bool {
        self.settings.console.as_ref().and_then(|c| c.public_url.as_deref()).is_some_and(|u| u.starts_with("https://"))
    }
}

/// The routes and the OpenAPI document describing them.
pub fn routes() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let (routes, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(session::login, session::whoami, session::logout))
        .routes(routes!(tenants::list))
        .routes(routes!(tenants::show))
        .routes(routes!(feeds::list))
        .routes(routes!(feeds::show, feeds::apply))
        .routes(routes!(feeds::test))
        .routes(routes!(feeds::run))
        .routes(routes!(feeds::pause))
        .routes(routes!(feeds::resume))
        .routes(routes!(profiles::list))
        .routes(routes!(profiles::show, profiles::save))
        .routes(routes!(runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(runs::messages))
        .routes(routes!(runs::rejects))
        .routes(routes!(runs::file))
        .routes(routes!(runs::release))
        .routes(routes!(runs::replay))
        .routes(routes!(imports::upload))
        .routes(routes!(contacts::export))
        .routes(routes!(audit::list))
        .split_for_parts();
    openapi::finish(&mut doc);
    // After routing, so that a path parameter is named by the route.
    (routes.route_layer(axum::middleware::from_fn(extract::reject_nul)), doc)
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The API's routes and its OpenAPI document, on `state`; `web` serves them
/// beside the console's pages.
pub fn router() -> Router<ApiState> {
    let (routes, doc) = routes();
    let doc = Arc::new(doc);
    routes.route("/api/v1/openapi.json", get(move || async move { Json(doc.as_ref().clone()) }))
}
