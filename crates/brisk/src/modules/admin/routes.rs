//! HTTP routes of the admin module: parse, authorize, call the queue.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AdminError;
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::clock::{self, now_micros};
use crate::platform::http::error::{ApiResult, Problem};
use crate::platform::http::extract::{ActionJson, ApiQuery};
use crate::platform::http::list::{Cursor, Fields, Page, list_body};
use crate::platform::jobs::{self, JobFilter, JobRecord, Retried, STATUSES};
use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
}

const JOB_FIELDS: &[&str] = &[
    "id",
    "type",
    "status",
    "attempts",
    "max_attempts",
    "run_at",
    "last_error",
    "created_at",
    "updated_at",
];

/// A background job.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Job {
    id: String,
    /// What it does: `email.order_confirmation`, `webhook.delivery`, …
    #[serde(rename = "type")]
    kind: String,
    /// `queued`, `running`, `done`, `failed` (an attempt failed; it runs
    /// again at `run_at`) or `dead` (gave up).
    status: String,
    attempts: i64,
    max_attempts: i64,
    /// When it runs next, or when it last finished.
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    run_at: i64,
    last_error: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    updated_at: i64,
}

impl From<JobRecord> for Job {
    fn from(r: JobRecord) -> Self {
        Job {
            id: r.id,
            kind: r.kind,
            status: r.status,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_at: r.run_at,
            last_error: r.last_error,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A page of jobs (documentation shape of the list response).
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobPage {
    items: Vec<Job>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListParams {
    /// `queued`, `running`, `done`, `failed` or `dead`.
    status: Option<String>,
    /// Only jobs of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

/// The tenant's background jobs, newest first (owner and admin only).
#[utoipa::path(get, path = "/api/v1/admin/jobs", tag = "admin", params(JobListParams), security(("bearer" = [])),
    responses((status = 200, body = JobPage), (status = 400, body = Problem, description = "bad_request, unknown_field"), (status = 403, body = Problem)))]
async fn list_jobs(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<JobListParams>,
) -> ApiResult<Response> {
    let page = Page::from_params(params.limit.as_deref(), params.cursor.as_deref())?;
    let fields = Fields::parse(params.fields.as_deref(), JOB_FIELDS)?;
    let status = match params.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            STATUSES
                .iter()
                .copied()
                .find(|known| *known == s)
                .ok_or(AdminError::UnknownStatus)?,
        ),
    };
    let kind = params
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    // A bad query is a 400 before the role is looked at (docs/api.md, Errors).
    auth.require(Action::ManageJobs)?;
    let tenant = &auth.tenant_id;
    let key = format!("jobs:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let rows = jobs::list(
            &state.db,
            tenant,
            JobFilter { status, kind },
            page.fetch_limit(),
            page.after.as_ref(),
        )
        .await
        .map_err(AdminError::from)?;
        let (rows, next) = page.finish(rows, |r| Cursor {
            created_at: r.created_at,
            id: r.id.clone(),
        });
        let items: Vec<Job> = rows.into_iter().map(Job::from).collect();
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::jobs(tenant)], compute)
        .await
}

/// Put a dead job back in the queue, due now, with no attempts (owner and
/// admin only).
#[utoipa::path(post, path = "/api/v1/admin/jobs/{id}/retry", tag = "admin", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Job), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "invalid_transition: the job is not dead")))]
async fn retry_job(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    // An action: no input, but an empty body or `{}` like the others.
    _body: ActionJson<Value>,
) -> ApiResult<Json<Job>> {
    auth.require(Action::ManageJobs)?;
    match jobs::retry_dead(&state.db, &auth.tenant_id, &id, now_micros())
        .await
        .map_err(AdminError::from)?
    {
        Retried::Queued(job) => {
            state.cache.invalidate(&[tags::jobs(&auth.tenant_id)]);
            state.jobs_wake.notify_waiters();
            Ok(Json(Job::from(job)))
        }
        Retried::NotDead(job) => Err(AdminError::JobNotDead { status: job.status }.into()),
        Retried::NotFound => Err(AdminError::JobNotFound.into()),
    }
}
