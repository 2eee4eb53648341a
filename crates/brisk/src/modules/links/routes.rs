//! HTTP routes of share links: the tenant's CRUD under
//! `/api/v1/share-links`, and the public `GET /s/{code}`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::LinkError;
use super::public::{self, SharedProduct};
use super::store::{self, LinkChanges, NewLink, ShareLink};
use crate::modules::catalog;
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::clock::now_micros;
use crate::platform::http::error::{ApiError, ApiResult, FieldError, Problem};
use crate::platform::http::extract::{ApiJson, ApiQuery, refusal_unless_missing};
use crate::platform::http::list::{Fields, FieldsQuery, Page, list_body, object_body};
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_share_link, list_share_links))
        .routes(routes!(get_share_link, update_share_link))
        .routes(routes!(open_share_link))
}

const SHARE_LINK_FIELDS: &[&str] = &[
    "id",
    "code",
    "url",
    "product_id",
    "active",
    "expires_at",
    "clicks",
    "created_at",
    "updated_at",
];
/// Ids are UUIDs; anything much longer cannot name a product.
const MAX_ID_CHARS: usize = 64;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateShareLinkRequest {
    /// Required: a live product of the tenant. Validated here, so a missing
    /// one is a 422 naming `product_id`.
    #[serde(default)]
    #[schema(value_type = String)]
    product_id: Option<String>,
    /// RFC 3339, in the future; none means the link never expires.
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<String>,
}

/// Either or both; `expires_at: null` removes the expiry.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct UpdateShareLinkRequest {
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<bool>)]
    active: Option<Option<bool>>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Option<String>>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only the links of this product.
    product_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

/// A page of share links (documentation shape of the list response).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ShareLinkPage {
    items: Vec<ShareLink>,
    next_cursor: Option<String>,
}

/// An RFC 3339 instant strictly in the future, as micros.
fn check_expiry(v: &mut Validator, text: &str) -> Option<i64> {
    let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1000).ok());
    match parsed {
        None => {
            v.error("expires_at", "must be an RFC 3339 date and time");
            None
        }
        Some(at) if at <= now_micros() => {
            v.error("expires_at", "must be in the future");
            None
        }
        Some(at) => Some(at),
    }
}

/// Validates the body, then (only if `product_id` is well-formed) that it
/// names a live product of the tenant, so every bad field is listed at once.
async fn validate_new(
    state: &AppState,
    auth: &AuthUser,
    req: CreateShareLinkRequest,
) -> ApiResult<NewLink> {
    let mut v = Validator::new();
    let expires_at = req
        .expires_at
        .as_deref()
        .and_then(|text| check_expiry(&mut v, text));
    let product_id = req.product_id.as_deref().map(str::trim).unwrap_or_default();
    if product_id.is_empty() {
        v.error("product_id", "is required");
    } else if product_id.chars().count() > MAX_ID_CHARS
        || !catalog::product_exists(state, &auth.tenant_id, product_id).await?
    {
        v.error("product_id", "no such product");
    }
    v.finish()?;
    Ok(NewLink {
        product_id: product_id.to_owned(),
        expires_at,
    })
}

fn validate_changes(req: UpdateShareLinkRequest) -> ApiResult<LinkChanges> {
    let mut v = Validator::new();
    let mut changes = LinkChanges::default();
    match req.active {
        None => {}
        Some(None) => v.error("active", "must be true or false"),
        Some(Some(active)) => changes.active = Some(active),
    }
    match req.expires_at {
        None => {}
        Some(None) => changes.expires_at = Some(None),
        Some(Some(text)) => changes.expires_at = Some(check_expiry(&mut v, &text)),
    }
    v.finish()?;
    Ok(changes)
}

/// Create a share link to a product.
#[utoipa::path(post, path = "/api/v1/share-links", tag = "share-links", request_body = CreateShareLinkRequest, security(("bearer" = [])),
    responses((status = 201, body = ShareLink), (status = 403, body = Problem), (status = 422, body = Problem, description = "validation_failed: unknown product, past expires_at")))]
async fn create_share_link(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<CreateShareLinkRequest>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::WriteSales)?;
    let new = validate_new(&state, &auth, body.parse()?).await?;
    let link = store::create(&state.db, &auth.tenant_id, new).await?;
    state
        .cache
        .invalidate(&[tags::share_links(&auth.tenant_id)]);
    Ok((StatusCode::CREATED, Json(link)))
}

/// List share links, newest first.
#[utoipa::path(get, path = "/api/v1/share-links", tag = "share-links", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = ShareLinkPage), (status = 400, body = Problem, description = "bad_request, unknown_field")))]
async fn list_share_links(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let page = Page::from_params(params.limit.as_deref(), params.cursor.as_deref())?;
    let fields = Fields::parse(params.fields.as_deref(), SHARE_LINK_FIELDS)?;
    let product_id = params
        .product_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if product_id.is_some_and(|p| p.chars().count() > MAX_ID_CHARS) {
        let message = format!("must be at most {MAX_ID_CHARS} characters");
        return Err(
            ApiError::bad_request(format!("bad query parameter product_id: {message}"))
                .with_errors(vec![FieldError::new("product_id", message)]),
        );
    }
    let tenant = &auth.tenant_id;
    let key = format!("share-links:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let (items, next) = store::list(&state.db, tenant, product_id, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::share_links(tenant)], compute)
        .await
}

/// One share link, with its click count.
#[utoipa::path(get, path = "/api/v1/share-links/{id}", tag = "share-links", params(("id" = String, Path), FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = ShareLink), (status = 400, body = Problem, description = "unknown_field"), (status = 404, body = Problem)))]
async fn get_share_link(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse(params.fields.as_deref(), SHARE_LINK_FIELDS)?;
    let tenant = &auth.tenant_id;
    let key = format!("share-link:{tenant}:{id:?}?{}", query.unwrap_or_default());
    let compute = || async {
        let link = store::get(&state.db, tenant, &id).await?;
        object_body(&link, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::share_links(tenant)], compute)
        .await
}

/// Turn a share link on or off, or change its expiry.
#[utoipa::path(patch, path = "/api/v1/share-links/{id}", tag = "share-links", params(("id" = String, Path)), request_body = UpdateShareLinkRequest, security(("bearer" = [])),
    responses((status = 200, body = ShareLink), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_share_link(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<UpdateShareLinkRequest>,
) -> ApiResult<Json<ShareLink>> {
    auth.require(Action::WriteSales)?;
    let changes = refusal_unless_missing(
        body.parse().and_then(validate_changes),
        store::exists(&state.db, &auth.tenant_id, &id),
        LinkError::LinkNotFound,
    )
    .await?;
    let link = store::update(&state.db, &auth.tenant_id, &id, changes).await?;
    // Committed: every node's `/s/{code}` answers from the new state.
    state.cache.invalidate(&[
        tags::share_link(&link.code),
        tags::share_links(&auth.tenant_id),
    ]);
    Ok(Json(link))
}

/// A shared product, for anyone holding the code (no token). Counts a
/// click when answered 200. Limited per client IP.
#[utoipa::path(get, path = "/s/{code}", tag = "share-links", params(("code" = String, Path)),
    responses((status = 200, body = SharedProduct), (status = 304, description = "If-None-Match names the current ETag"),
        (status = 404, body = Problem, description = "unknown or inactive link, deleted or inactive product"),
        (status = 410, body = Problem, description = "expired"), (status = 429, body = Problem, description = "rate_limited")))]
async fn open_share_link(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Every request counts toward the limit, whatever it is answered.
    state
        .limits
        .public_by_ip
        .check(&peer.ip().to_string())
        .await
        .map_err(ApiError::rate_limited)?;
    public::open(&state, &code, &headers, method == Method::GET).await
}
