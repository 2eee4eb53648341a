//! Operations endpoints: liveness, readiness, Prometheus metrics. They take
//! no token and are not rate-limited, so orchestrators can always reach them.
//! A scrape also reads the background work's state from the database (the
//! outbox lag and the jobs by status and type), a fixed two statements.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::platform::db::Db;
use crate::platform::dispatch;
use crate::platform::jobs;
use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(metrics))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Checks>,
}

/// Each dependency's state: `ok` or `down`, never an error's text (the
/// endpoint is public; the reason goes to the log).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    database: &'static str,
    /// Present with `BRISK_REDIS_URL`; `down` does not fail readiness (the
    /// node serves from its own cache and the database meanwhile).
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<&'static str>,
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/health/live", tag = "operations", responses((status = 200, body = Health)))]
async fn live() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: None,
    })
}

/// 200 when every required dependency answers, else 503 naming the failing one.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (database, redis) = tokio::join!(
        state.db.ping(Duration::from_secs(2)),
        state.cache.redis_up()
    );
    let redis = redis.map(|up| if up { "ok" } else { "down" });
    match database {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                checks: Some(Checks {
                    database: "ok",
                    redis,
                }),
            }),
        ),
        Err(why) => {
            tracing::warn!(error = %why, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    checks: Some(Checks {
                        database: "down",
                        redis,
                    }),
                }),
            )
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // A database that does not answer must not hold the scrape up: the
    // gauges keep their last values and the rest is served.
    if tokio::time::timeout(Duration::from_secs(1), async {
        refresh_background_gauges(&state.db).await;
        crate::modules::webhooks::refresh_gauges(&state.db).await;
    })
    .await
    .is_err()
    {
        tracing::warn!("metrics: the background gauges were not read in time");
    }
    let text = crate::platform::metrics::render(state.metrics.as_ref(), &state.db);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Job types this process has reported, so a type whose jobs are all gone
/// reads 0 instead of keeping its last count.
static JOB_TYPES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// The gauges of the background work, read from the database at each
/// scrape (two statements, whatever the queue holds):
/// `brisk_outbox_lag_seconds` (age of the oldest event not yet dispatched)
/// and `brisk_jobs{status, type}` of the jobs not done. A failed read leaves the previous values
/// and is logged: the scrape itself still answers.
async fn refresh_background_gauges(db: &Db) {
    match dispatch::lag_seconds(db).await {
        Ok(lag) => metrics::gauge!("brisk_outbox_lag_seconds").set(lag),
        Err(err) => tracing::warn!(error = %err, "metrics: cannot read the outbox lag"),
    }
    let counts = match jobs::counts(db).await {
        Ok(counts) => counts,
        Err(err) => {
            tracing::warn!(error = %err, "metrics: cannot count jobs");
            return;
        }
    };
    let mut by_key: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (status, kind, n) in &counts {
        by_key.insert((status.as_str(), kind.as_str()), *n);
    }
    let types: Vec<String> = match JOB_TYPES.lock() {
        Ok(mut known) => {
            // Every type this binary runs is reported, at 0 when none is
            // waiting, so a dashboard sees the series before the first job.
            known.extend(
                [
                    crate::modules::webhooks::DELIVERY_JOB,
                    crate::modules::notifications::EMAIL_ORDER_CONFIRMATION,
                ]
                .map(str::to_owned),
            );
            known.extend(counts.iter().map(|(_, kind, _)| kind.clone()));
            known.iter().cloned().collect()
        }
        Err(_) => counts.iter().map(|(_, kind, _)| kind.clone()).collect(),
    };
    for kind in &types {
        // Done jobs are not counted (see `jobs::counts`).
        for status in jobs::STATUSES.into_iter().filter(|s| *s != "done") {
            let n = by_key.get(&(status, kind.as_str())).copied().unwrap_or(0);
            metrics::gauge!("brisk_jobs", "status" => status, "type" => kind.clone()).set(n as f64);
        }
    }
}
