//! HTTP routes of the webhook module: parse, authorize (owner and admin
//! only, reads included: a webhook's URL can carry credentials), validate,
//! call the store.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::WebhookError;
use super::ssrf;
use super::store::{
    self, ALL_EVENTS, CreatedWebhook, DELIVERY_FIELDS, Delivery, DeliveryStatus, EVENTS,
    NewWebhook, WEBHOOK_FIELDS, Webhook, WebhookChanges,
};
use crate::platform::auth::{Action, AuthUser, random_secret};
use crate::platform::cache::tags;
use crate::platform::clock::now_micros;
use crate::platform::http::error::{ApiError, ApiResult, FieldError, Problem};
use crate::platform::http::extract::{ApiJson, ApiQuery};
use crate::platform::http::list::{
    Fields, FieldsQuery, ListQuery, Page, list_response, object_response,
};
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
}

const MAX_URL_CHARS: usize = 2048;
const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 256;
const SECRET_PREFIX: &str = "whsec_";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateWebhookRequest {
    /// `http` or `https`. Required; checked here rather than by serde so
    /// that a missing one is a 422 naming `url`.
    #[serde(default)]
    #[schema(value_type = String)]
    url: Option<String>,
    /// A non-empty list of event names, or `["*"]` for all of them.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    events: Option<Vec<String>>,
    /// At least 16 characters; generated (`whsec_…`) when absent.
    secret: Option<String>,
    /// Default `true`.
    active: Option<bool>,
}

/// Any subset; `null` is refused for each.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateWebhookRequest {
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    url: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<Vec<String>>)]
    events: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<bool>)]
    active: Option<Option<bool>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// `pending`, `delivered` or `failed`.
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

/// A page of webhooks (documentation shape of the list response).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookPage {
    items: Vec<Webhook>,
    next_cursor: Option<String>,
}

/// A page of deliveries (documentation shape of the list response).
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    items: Vec<Delivery>,
    next_cursor: Option<String>,
}

/// The URL's syntax (sync part); the address check follows once every
/// field was looked at.
fn check_url_syntax(v: &mut Validator, text: &str) -> Option<reqwest::Url> {
    let text = text.trim();
    if text.is_empty() {
        v.error("url", "must not be empty");
        return None;
    }
    if text.chars().count() > MAX_URL_CHARS {
        v.error("url", format!("must be at most {MAX_URL_CHARS} characters"));
        return None;
    }
    let url = match reqwest::Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            v.error(
                "url",
                format!("must be an absolute http or https URL ({e})"),
            );
            return None;
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        v.error("url", "must be an http or https URL");
        return None;
    }
    if url.host_str().is_none_or(str::is_empty) {
        v.error("url", "must have a host");
        return None;
    }
    Some(url)
}

/// Known names, each once (first kept, order kept); `*` only alone.
fn check_events(v: &mut Validator, events: &[String]) -> Vec<String> {
    if events.is_empty() {
        v.error(
            "events",
            format!(
                "must list at least one event ({}), or be [\"*\"]",
                EVENTS.join(", ")
            ),
        );
        return Vec::new();
    }
    if events.iter().any(|e| e == ALL_EVENTS) {
        if events.len() > 1 {
            v.error(
                "events",
                "\"*\" subscribes to every event and must be alone",
            );
        }
        return vec![ALL_EVENTS.to_owned()];
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        if !EVENTS.contains(&event.as_str()) {
            v.error(
                format!("events[{i}]"),
                format!("unknown event; known: {}", EVENTS.join(", ")),
            );
        } else if !out.contains(event) {
            out.push(event.clone());
        }
    }
    out
}

fn check_secret(v: &mut Validator, secret: &str) {
    let chars = secret.chars().count();
    if chars < MIN_SECRET_CHARS {
        v.error(
            "secret",
            format!("must be at least {MIN_SECRET_CHARS} characters"),
        );
    } else if chars > MAX_SECRET_CHARS {
        v.error(
            "secret",
            format!("must be at most {MAX_SECRET_CHARS} characters"),
        );
    } else if secret.chars().any(char::is_control) {
        v.error("secret", "must not contain control characters");
    }
}

/// The address rule on a syntactically valid URL, unless the server allows
/// private receivers.
async fn check_url_address(v: &mut Validator, state: &AppState, url: &reqwest::Url) {
    if state.config.webhook_allow_private {
        return;
    }
    if let Err(message) = ssrf::check_at_save(url).await {
        v.error("url", message);
    }
}

async fn validate_new(
    state: &AppState,
    req: CreateWebhookRequest,
) -> Result<NewWebhook, WebhookError> {
    let mut v = Validator::new();
    let url = match req.url.as_deref() {
        Some(text) => check_url_syntax(&mut v, text),
        None => {
            v.error("url", "is required");
            None
        }
    };
    let events = match req.events.as_deref() {
        Some(events) => check_events(&mut v, events),
        None => {
            v.error("events", "is required");
            Vec::new()
        }
    };
    if let Some(secret) = req.secret.as_deref() {
        check_secret(&mut v, secret);
    }
    if let Some(url) = &url {
        check_url_address(&mut v, state, url).await;
    }
    v.finish()?;
    Ok(NewWebhook {
        url: req.url.unwrap_or_default().trim().to_owned(),
        events,
        secret: req
            .secret
            .unwrap_or_else(|| format!("{SECRET_PREFIX}{}", random_secret())),
        active: req.active.unwrap_or(true),
    })
}

async fn validate_changes(
    state: &AppState,
    req: UpdateWebhookRequest,
) -> Result<WebhookChanges, WebhookError> {
    let mut v = Validator::new();
    let mut changes = WebhookChanges::default();
    let mut url = None;
    match req.url {
        None => {}
        Some(None) => v.error("url", "must not be null"),
        Some(Some(text)) => {
            url = check_url_syntax(&mut v, &text);
            changes.url = Some(text.trim().to_owned());
        }
    }
    match req.events {
        None => {}
        Some(None) => v.error("events", "must not be null"),
        Some(Some(events)) => changes.events = Some(check_events(&mut v, &events)),
    }
    match req.active {
        None => {}
        Some(None) => v.error("active", "must not be null"),
        Some(Some(active)) => changes.active = Some(active),
    }
    if let Some(url) = &url {
        check_url_address(&mut v, state, url).await;
    }
    v.finish()?;
    Ok(changes)
}

/// A cached page of webhooks that does not (de)serialize: a bug, answered
/// as a 500 and logged.
fn unreadable_page(err: &serde_json::Error) -> ApiError {
    tracing::error!(error = %err, "webhooks: a stored page did not (de)serialize");
    ApiError::internal()
}

fn bad_query(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::bad_request(format!("bad query parameter {field}: {message}")).with_errors(vec![
        FieldError {
            field: field.to_owned(),
            message,
        },
    ])
}

/// Create a webhook. The answer is the only one that shows its secret.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhookRequest, security(("bearer" = [])),
    responses((status = 201, body = CreatedWebhook), (status = 403, body = Problem), (status = 422, body = Problem, description = "validation_failed: url (scheme, syntax, private address), events, secret")))]
async fn create_webhook(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<CreateWebhookRequest>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::ManageWebhooks)?;
    let new = validate_new(&state, body.parse()?).await?;
    let created = store::create(&state.db, &auth.tenant_id, new).await?;
    state.cache.invalidate(&[tags::webhooks(&auth.tenant_id)]);
    Ok((StatusCode::CREATED, Json(created)))
}

/// List webhooks, newest first (owner, admin).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = WebhookPage), (status = 400, body = Problem, description = "bad_request, unknown_field"), (status = 403, body = Problem)))]
async fn list_webhooks(
    State(state): State<AppState>,
    auth: AuthUser,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    auth.require(Action::ManageWebhooks)?;
    let page = params.page()?;
    let fields = params.fields(WEBHOOK_FIELDS)?;
    let tenant = &auth.tenant_id;
    // The stored page is cached, not the answer: its circuits are derived
    // with the clock on every read (see `store::StoredPage`).
    let key = format!("webhooks:{tenant}?{}", query.unwrap_or_default());
    let stored = state
        .cache
        .get_or_compute(&key, &[tags::webhooks(tenant)], || async {
            let stored = store::list(&state.db, tenant, &page).await?;
            serde_json::to_vec(&stored)
                .map(Bytes::from)
                .map_err(|err| unreadable_page(&err))
        })
        .await?;
    let stored: store::StoredPage =
        serde_json::from_slice(stored.body()).map_err(|err| unreadable_page(&err))?;
    let (items, next) = stored.at(now_micros())?;
    Ok(list_response(&items, next, &fields))
}

/// One webhook (owner, admin).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path), FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Webhook), (status = 400, body = Problem, description = "unknown_field"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_webhook(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    auth.require(Action::ManageWebhooks)?;
    let fields = Fields::parse(params.fields.as_deref(), WEBHOOK_FIELDS)?;
    let webhook = store::get(&state.db, &auth.tenant_id, &id)
        .await?
        .ok_or(WebhookError::NotFound)?;
    Ok(object_response(&webhook, &fields))
}

/// Change a webhook's `url`, `events` or `active`. Activating it sends
/// what waited while it was inactive.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = UpdateWebhookRequest, security(("bearer" = [])),
    responses((status = 200, body = Webhook), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_webhook(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<UpdateWebhookRequest>,
) -> ApiResult<Json<Webhook>> {
    auth.require(Action::ManageWebhooks)?;
    // 404 outranks 422: a bad body checks existence only when it is about
    // to be refused; a good one learns it from the UPDATE itself.
    let parsed = match body.parse() {
        Ok(req) => validate_changes(&state, req).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let changes = match parsed {
        Ok(changes) => changes,
        Err(invalid) => {
            return Err(if store::exists(&state.db, &auth.tenant_id, &id).await? {
                invalid
            } else {
                WebhookError::NotFound.into()
            });
        }
    };
    let (webhook, requeued) = store::update(&state.db, &auth.tenant_id, &id, changes)
        .await?
        .ok_or(WebhookError::NotFound)?;
    state.cache.invalidate(&[tags::webhooks(&auth.tenant_id)]);
    if requeued > 0 {
        state.cache.invalidate(&[tags::jobs(&auth.tenant_id)]);
        crate::platform::jobs::wake_runners(&state.db, &state.jobs_wake).await;
    }
    Ok(Json(webhook))
}

/// Delete a webhook: nothing more is sent to it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_webhook(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Action::ManageWebhooks)?;
    if store::delete(&state.db, &auth.tenant_id, &id).await? {
        state.cache.invalidate(&[tags::webhooks(&auth.tenant_id)]);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WebhookError::NotFound.into())
    }
}

/// A webhook's deliveries, newest first (owner, admin).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path), DeliveryParams), security(("bearer" = [])),
    responses((status = 200, body = DeliveryPage), (status = 400, body = Problem, description = "bad_request (status, limit, cursor), unknown_field"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_deliveries(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> ApiResult<Response> {
    auth.require(Action::ManageWebhooks)?;
    let page = Page::from_params(params.limit.as_deref(), params.cursor.as_deref())?;
    let fields = Fields::parse(params.fields.as_deref(), DELIVERY_FIELDS)?;
    let status = match params.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            bad_query(
                "status",
                format!("must be one of {}", DeliveryStatus::NAMES),
            )
        })?),
    };
    let (items, next) = store::deliveries(&state.db, &auth.tenant_id, &id, status, &page)
        .await?
        .ok_or(WebhookError::NotFound)?;
    Ok(list_response(&items, next, &fields))
}
