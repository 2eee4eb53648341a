//! Operations endpoints: liveness, readiness, Prometheus metrics. They take
//! no token and are not rate-limited, so orchestrators can always reach them.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    match state.db.ping(Duration::from_secs(2)).await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                checks: Some(Checks { database: "ok" }),
            }),
        ),
        Err(why) => {
            tracing::warn!(error = %why, "readiness: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    checks: Some(Checks { database: "down" }),
                }),
            )
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Gauges that only the database knows are refreshed as they are read.
    crate::modules::webhooks::refresh_gauges(&state.db).await;
    let text = crate::platform::metrics::render(state.metrics.as_ref(), &state.db);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
