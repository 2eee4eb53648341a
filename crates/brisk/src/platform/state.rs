//! [`AppState`]: the shared pieces a request handler can reach, assembled
//! once by `app` from the configuration. It lives in `platform` so that
//! business modules can take it without depending on `app`; the platform
//! pieces themselves (auth, idempotency, the database) never take it, only
//! the parts they need.

use std::sync::Arc;

use axum::extract::FromRef;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::platform::auth::{Passwords, TokenKeys};
use crate::platform::cache::Cache;
use crate::platform::config::Config;
use crate::platform::db::Db;
use crate::platform::idempotency::IdempotencyKeys;
use crate::platform::ratelimit::Limits;
use crate::platform::tally::Tally;
use crate::platform::tenant::TenantId;

/// What every handler can reach. Cloning it is one reference-count
/// increment: axum clones the state for every extractor and middleware of
/// every request, and a profile of the cached product page showed cloning
/// and dropping a struct of a dozen `Arc`s field by field at 12 % of the
/// server's time.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The pieces behind [`AppState`].
pub struct Shared {
    pub db: Db,
    pub tokens: TokenKeys,
    pub passwords: Passwords,
    pub limits: Limits,
    pub idempotency: IdempotencyKeys,
    pub metrics: Option<PrometheusHandle>,
    pub config: Arc<Config>,
    /// Tenant currencies: immutable once a tenant exists, so safe to keep.
    pub currencies: moka::sync::Cache<TenantId, String>,
    /// Ready-to-send read responses (L1, and Redis as L2), invalidated by
    /// tags after writes commit.
    pub cache: Cache,
    /// Wakes this node's job runner (after jobs were enqueued or retried).
    pub jobs_wake: Arc<tokio::sync::Notify>,
    /// Share-link clicks this node answered and has not written yet, by
    /// (tenant, link id); the links module's flusher drains them.
    pub share_link_clicks: Tally<(TenantId, String)>,
}

impl FromRef<AppState> for TokenKeys {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}

impl FromRef<AppState> for Limits {
    fn from_ref(state: &AppState) -> Self {
        state.limits.clone()
    }
}
