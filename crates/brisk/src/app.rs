//! Config → AppState → Router → a listening server, and the background
//! tasks that live as long as it (owned here, stopped before the pools
//! close).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::modules;
use crate::platform::auth::{Passwords, TokenKeys, random_secret};
use crate::platform::cache::{self, Cache, CacheOptions, Fanout, RedisLink};
use crate::platform::clock::now_micros;
use crate::platform::config::Config;
use crate::platform::db::{self, ConnectError, Db};
use crate::platform::dispatch::{self, Dispatcher};
use crate::platform::http::error::{ApiError, ErrorCode};
use crate::platform::http::pipeline::{self, PipelineOptions};
use crate::platform::idempotency::{self, IdempotencyKeys};
use crate::platform::jobs::{self, JobRunner, RunnerSettings};
use crate::platform::ratelimit::{LimitSettings, Limits};
pub use crate::platform::state::{AppState, Shared};
use crate::platform::tally::Tally;

#[derive(OpenApi)]
#[openapi(
    info(title = "Brisk", description = "ERP/CRM and commerce backend. docs/api.md in the repository is the reference; this document describes every route with its schemas."),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Installs ring as the process's one rustls crypto provider. reqwest is
/// built without a provider of its own (`rustls-no-provider`), so building
/// any HTTP client before this panics; every node calls it first thing. A
/// second call (tests start many servers in one process) reports "already
/// installed", which is what we want.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Connects, migrates and loads the signing key.
pub async fn build_state(config: Config) -> Result<AppState, ConnectError> {
    install_tls_provider();
    let db = Db::connect(&config.database()).await?;
    db.migrate().await?;
    crate::modules::backfill(&db).await?;
    let secret = match &config.jwt_secret {
        Some(secret) if !secret.is_empty() => secret.clone(),
        _ => db::setting_or_insert(&db, "jwt_secret", &random_secret()).await?,
    };
    let cache = build_cache(&config, &db)?;
    Ok(AppState::new(Shared {
        cache: cache.clone(),
        idempotency: IdempotencyKeys::new(db.clone(), config.request_timeout()),
        db,
        tokens: TokenKeys::new(secret.as_bytes()),
        passwords: Passwords::new(),
        limits: Limits::new(
            LimitSettings {
                requests_per_minute: config.rate_limit_per_minute,
                logins_per_minute: config.login_rate_limit_per_minute,
                public_per_minute: config.public_rate_limit_per_minute,
            },
            cache.redis().cloned(),
        ),
        metrics: crate::platform::metrics::install(),
        config: Arc::new(config),
        currencies: moka::sync::Cache::new(100_000),
        jobs_wake: Arc::new(Notify::new()),
        share_link_clicks: Tally::new(),
    }))
}

/// The node's cache: L1 always; Redis as L2 with `BRISK_REDIS_URL`; the
/// PostgreSQL fan-out on PostgreSQL.
fn build_cache(config: &Config, db: &Db) -> Result<Cache, redis::RedisError> {
    let node = crate::platform::clock::new_id();
    let l2 = match &config.redis_url {
        Some(url) if !url.is_empty() => Some(RedisLink::new(url, node.clone())?),
        _ => None,
    };
    let fanout = match db.backend() {
        db::Backend::Postgres => Fanout::postgres(node),
        db::Backend::Sqlite => Fanout::none(),
    };
    let options = CacheOptions {
        l1_bytes: config.cache_mb.saturating_mul(1024 * 1024),
    };
    Ok(Cache::new(options, l2, fanout))
}

/// Every route with its OpenAPI description, before the pipeline.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(modules::ops::router())
        .merge(modules::tenancy::router())
        .merge(modules::crm::router())
        .merge(modules::catalog::router())
        .merge(modules::inventory::router())
        .merge(modules::pricing::router())
        .merge(modules::quotes::router())
        .merge(modules::orders::router())
        .merge(modules::wallet::router())
        .merge(modules::admin::router())
        .merge(modules::webhooks::router())
        .merge(modules::links::router())
        .merge(modules::dashboard::router())
        .split_for_parts()
}

/// The complete application: routes, docs, fallback and pipeline.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = routes();
    // The back office calls the API's own routes in-process.
    let office = modules::backoffice::router(state.clone(), api.clone().with_state(state.clone()));
    let options = PipelineOptions {
        request_timeout: state.config.request_timeout(),
        statement_count_header: state.config.statement_count_header,
        sql_log: state.config.sql_log.clone(),
    };
    let app = api
        .merge(office)
        .merge(
            SwaggerUi::new("/docs")
                .url("/openapi.json", openapi)
                // No badge from the online validator: the docs work offline.
                .config(utoipa_swagger_ui::Config::default().validator_url("none")),
        )
        .fallback(|| async { ApiError::not_found("no such route").into_response() })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            )
            .into_response()
        })
        .with_state(state);
    pipeline::apply(app, options)
}

/// A server accepting connections; stop it with [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
    background: Background,
    /// The cache fan-out, stopped after `background` so that what the
    /// job runners invalidate as they stop (a job handed back) still
    /// reaches the other nodes.
    fanout: Background,
}

/// The node's background tasks. Each one watches the stop signal and ends
/// its loop at the next await point, so none is cut off in the middle of
/// a database write and none outlives the pools.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Background {
    pub fn new() -> Self {
        Background {
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
        }
    }

    /// Runs `work` every `period` (first at once) until stopped.
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut work: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stopped = self.stop.subscribe();
        self.tasks.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let stop = stop_signal(stopped);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    _ = tick.tick() => work().await,
                }
            }
            tracing::debug!(task = name, "background task stopped");
        });
    }

    /// Runs a long-lived task that watches the stop signal itself.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let fut = task(self.stop.subscribe());
        self.tasks.spawn(async move {
            fut.await;
            tracing::debug!(task = name, "background task stopped");
        });
    }

    /// How many tasks are still running.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Signals every task and waits for all of them to end.
    pub async fn stop(&mut self) {
        let _ = self.stop.send(true);
        while let Some(done) = self.tasks.join_next().await {
            if let Err(err) = done
                && err.is_panic()
            {
                tracing::error!(error = %err, "a background task panicked");
            }
        }
    }
}

/// Resolves once the stop signal is set.
async fn stop_signal(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}

impl RunningServer {
    /// Stops accepting, lets requests in flight finish (for at most the
    /// configured grace period), stops the background tasks, then closes
    /// the pools.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        let grace = Duration::from_secs(self.state.config.shutdown_grace_secs);
        let result = match tokio::time::timeout(grace, self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "requests still running after the grace period; exiting anyway"
                );
                Ok(())
            }
        };
        // Invalidations still on their way to Redis go out before the
        // notifier (a background task) sends what is queued and stops.
        self.state.cache.settle(Duration::from_secs(2)).await;
        self.background.stop().await;
        self.fanout.stop().await;
        self.state.db.close().await;
        result
    }

    /// Background tasks still running (all of them until shutdown).
    pub fn background_tasks(&self) -> usize {
        self.background.running() + self.fanout.running()
    }
}

/// Builds the state, binds `config.addr` and serves in the background.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    check_settings(&config)?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(StartError::Bind)?;
    let addr = listener.local_addr().map_err(StartError::Bind)?;
    let state = build_state(config).await?;
    log_settings(&state, addr);
    let background = spawn_background(&state);
    let mut fanout = Background::new();
    spawn_cache_fanout(&state, &mut fanout);
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    Ok(RunningServer {
        addr,
        state,
        stop,
        task,
        background,
        fanout,
    })
}

/// The workers that follow committed facts: the outbox dispatcher, the job
/// runner and (on PostgreSQL) the listener for other nodes' commits; or,
/// on a node with `BRISK_WORKERS=0`, only the announcer that wakes the
/// nodes that do dispatch.
fn spawn_workers(state: &AppState, background: &mut Background, workers: usize) {
    let config = &state.config;
    let poll = Duration::from_millis(config.worker_poll_ms.max(10));
    if workers == 0 {
        if state.db.backend() == db::Backend::Postgres {
            let db = state.db.clone();
            background.spawn("outbox announcer", move |stop| {
                dispatch::announce_postgres(db, stop)
            });
        }
        return;
    }
    let outbox_wake = Arc::new(Notify::new());
    let jobs_wake = state.jobs_wake.clone();
    let dispatcher = Dispatcher::new(
        state.db.clone(),
        modules::consumers(state),
        poll,
        jobs_wake.clone(),
        state.cache.clone(),
    );
    let runner = JobRunner::new(
        state.db.clone(),
        state.cache.clone(),
        modules::job_handlers(state),
        RunnerSettings {
            workers,
            retry_base: Duration::from_millis(config.retry_base_ms),
            lease: Duration::from_millis(config.job_lease_ms.max(1)),
            idle_poll: poll,
            grace: Duration::from_secs(config.shutdown_grace_secs),
        },
    );
    {
        let wake = outbox_wake.clone();
        background.spawn("outbox dispatcher", move |stop| dispatcher.run(stop, wake));
    }
    {
        let wake = jobs_wake.clone();
        background.spawn("job runner", move |stop| runner.run(stop, wake));
    }
    if state.db.backend() == db::Backend::Postgres {
        let url = config.database_url.clone();
        background.spawn("commit listener", move |stop| {
            dispatch::listen_postgres(url, outbox_wake, jobs_wake, stop)
        });
    }
}

/// The cache's links to the other nodes: the PostgreSQL notifier and
/// listener, the Redis subscriber, and a minutely housekeeping.
fn spawn_cache_fanout(state: &AppState, background: &mut Background) {
    let the_cache = state.cache.clone();
    if state.db.backend() == db::Backend::Postgres {
        let (fanout, url) = (
            the_cache.fanout().clone(),
            state.config.database_url.clone(),
        );
        background.spawn("cache notifier", move |stop| {
            fanout.send_postgres(url, stop)
        });
        let (listening, url) = (the_cache.clone(), state.config.database_url.clone());
        let node = the_cache.fanout().node().to_owned();
        background.spawn("cache listener", move |stop| {
            cache::listen_postgres(listening, url, node, stop)
        });
    }
    if the_cache.redis().is_some() {
        let subscribing = the_cache.clone();
        background.spawn("cache subscriber", move |stop| {
            cache::listen_redis(subscribing, stop)
        });
        let healing = the_cache.clone();
        background.every("cache healing", Duration::from_millis(100), move || {
            let healing = healing.clone();
            async move { healing.heal().await }
        });
    }
    background.every("cache housekeeping", Duration::from_secs(60), move || {
        let the_cache = the_cache.clone();
        async move { the_cache.housekeeping().await }
    });
}

/// Settings that would only fail later, in the background, refused at
/// start instead.
fn check_settings(config: &Config) -> Result<(), StartError> {
    modules::notifications::check_settings(config).map_err(|e| StartError::Settings(e.to_string()))
}

/// Prunes hourly (and once at start): see [`prune`].
fn spawn_pruning(state: &AppState, background: &mut Background) {
    let (db, cache) = (state.db.clone(), state.cache.clone());
    background.every(
        "outbox and job pruning",
        Duration::from_secs(3600),
        move || {
            let (db, cache) = (db.clone(), cache.clone());
            async move { prune(&db, &cache).await }
        },
    );
}

/// Deletes dispatched events and done jobs older than their retention.
async fn prune(db: &Db, cache: &Cache) {
    let cutoff = now_micros() - i64::try_from(dispatch::RETENTION.as_micros()).unwrap_or(i64::MAX);
    match dispatch::prune_dispatched(db, cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "dispatched events past retention removed"),
        Err(e) => tracing::warn!(error = %e, "could not remove dispatched events"),
    }
    match jobs::prune_done(db, cache, cutoff).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "done jobs past retention removed"),
        Err(e) => tracing::warn!(error = %e, "could not remove done jobs"),
    }
}

/// The housekeeping of one node: rate-limit maps every minute, expired
/// idempotency keys, dispatched events and done jobs hourly (and once at
/// start); and the share-link click flusher, whose last flush on stop
/// comes before the pools close. The cache fan-out is not among them: it
/// runs in a `Background` of its own that stops after these, so what they
/// invalidate while stopping reaches the other nodes.
fn spawn_background(state: &AppState) -> Background {
    let mut background = Background::new();
    spawn_workers(state, &mut background, state.config.workers);
    spawn_pruning(state, &mut background);
    let (db, cache, clicks) = (
        state.db.clone(),
        state.cache.clone(),
        state.share_link_clicks.clone(),
    );
    background.spawn("share-link click flusher", move |stop| {
        modules::links::flush_until_stopped(db, cache, clicks, stop)
    });
    let limits = state.limits.clone();
    background.every(
        "rate-limit housekeeping",
        Duration::from_secs(60),
        move || {
            limits.housekeeping();
            std::future::ready(())
        },
    );
    if let Some(handle) = state.metrics.clone() {
        // The recorder buffers every histogram sample until it is drained;
        // without a scrape the buffer would grow by every request.
        background.every("metrics upkeep", Duration::from_secs(5), move || {
            handle.run_upkeep();
            std::future::ready(())
        });
    }
    let db = state.db.clone();
    background.every("idempotency sweep", Duration::from_secs(3600), move || {
        let db = db.clone();
        async move {
            match idempotency::forget_expired(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(forgotten = n, "expired idempotency keys removed"),
                Err(e) => {
                    tracing::warn!(error = %e.detail, "could not remove expired idempotency keys")
                }
            }
        }
    });
    background
}

fn log_settings(state: &AppState, addr: SocketAddr) {
    let c = &state.config;
    tracing::info!(
        %addr,
        backend = state.db.backend().name(),
        pool_size = c.database_pool_size,
        acquire_timeout_ms = c.database_acquire_timeout_ms,
        statement_timeout_ms = c.database_statement_timeout_ms,
        replicas = c.database_replica_urls.len(),
        rate_limit_per_minute = c.rate_limit_per_minute,
        login_rate_limit_per_minute = c.login_rate_limit_per_minute,
        request_timeout_ms = c.request_timeout_ms,
        "brisk listening"
    );
}

/// `brisk worker`: the dispatcher and job runners only (at least one
/// worker), until `signal` resolves; then they finish or hand back what
/// they hold.
pub async fn work_until(
    config: Config,
    signal: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let workers = config.workers.max(1);
    check_settings(&config)?;
    let state = build_state(config).await?;
    tracing::info!(
        workers,
        backend = state.db.backend().name(),
        "brisk worker running"
    );
    let mut background = Background::new();
    spawn_workers(&state, &mut background, workers);
    spawn_pruning(&state, &mut background);
    // What the worker's dispatcher and runners invalidate (job lists,
    // circuits, dashboards, the stale reads an event names) must reach
    // the serving nodes: without the fan-out it would queue here unsent.
    // It stops after the runners, so their hand-backs are still sent.
    let mut fanout = Background::new();
    spawn_cache_fanout(&state, &mut fanout);
    signal.await;
    tracing::info!("stopping: finishing or handing back running jobs");
    background.stop().await;
    fanout.stop().await;
    state.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves until `signal` resolves, then shuts down gracefully.
pub async fn serve_until(
    config: Config,
    signal: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let server = start(config).await?;
    signal.await;
    tracing::info!("shutting down: finishing requests in flight");
    server.shutdown().await.map_err(StartError::Bind)?;
    tracing::info!("stopped");
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("{0}")]
    Settings(String),
}
