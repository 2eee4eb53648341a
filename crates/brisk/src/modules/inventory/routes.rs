//! Inventory routes: stock adjustments, movements, stock levels.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::StockError;
use super::store::{self, MOVEMENT_FIELDS, STOCK_LEVEL_FIELDS};
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::http::error::{ApiError, ApiResult, Problem};
use crate::platform::http::extract::{ApiJson, ApiQuery};
use crate::platform::http::list::{Fields, ListQuery, Page, list_body};
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(adjust_stock))
        .routes(routes!(list_movements))
        .routes(routes!(list_stock))
}

/// The largest single adjustment accepted, either way.
const MAX_DELTA: i64 = 1_000_000_000;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct StockAdjustment {
    delta: i64,
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StockAfter {
    variant_id: String,
    stock: i64,
}

/// Add or remove stock, with a reason.
#[utoipa::path(post, path = "/api/v1/variants/{id}/stock-adjustments", tag = "inventory", request_body = StockAdjustment,
    security(("bearer" = [])),
    responses((status = 200, body = StockAfter), (status = 404, body = Problem), (status = 409, body = Problem, description = "out_of_stock"), (status = 422, body = Problem)))]
async fn adjust_stock(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<StockAdjustment>,
) -> ApiResult<Json<StockAfter>> {
    auth.require(Action::WriteCatalog)?;
    let checked = body.parse().and_then(|req| {
        let mut v = Validator::new();
        v.check(req.delta != 0, "delta", "must not be zero");
        v.check(
            (-MAX_DELTA..=MAX_DELTA).contains(&req.delta),
            "delta",
            format!("must be within ±{MAX_DELTA}"),
        );
        v.text("reason", &req.reason, 200);
        v.finish().map(|()| req).map_err(ApiError::from)
    });
    let req = match checked {
        Ok(req) => req,
        // A missing variant outranks a bad body.
        Err(e) => {
            return Err(
                if store::variant_exists(state.db.writer(), &auth.tenant_id, &id).await? {
                    e
                } else {
                    StockError::VariantNotFound.into()
                },
            );
        }
    };
    let stock =
        store::adjust_stock(&state, &auth.tenant_id, &id, req.delta, req.reason.trim()).await?;
    Ok(Json(StockAfter {
        variant_id: id,
        stock,
    }))
}

/// A variant's stock movements, newest first.
#[utoipa::path(get, path = "/api/v1/variants/{id}/movements", tag = "inventory", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "{items: [Movement], next_cursor}"), (status = 404, body = Problem)))]
async fn list_movements(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let page = Page::from_params(params.limit.as_deref(), params.cursor.as_deref())?;
    let fields = Fields::parse(params.fields.as_deref(), MOVEMENT_FIELDS)?;
    let tenant = &auth.tenant_id;
    let key = format!("movements:{tenant}:{id:?}?{}", query.unwrap_or_default());
    // Every stock movement is written with a stock change, and every stock
    // change invalidates the catalog tag.
    let compute = || async {
        let (items, next) = store::list_movements(&state, tenant, &id, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::catalog(tenant)], compute)
        .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StockParams {
    /// `true`: only variants at or below their reorder level.
    low_stock: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

/// Stock levels; `low_stock=true` keeps variants whose stock <= reorder_level.
#[utoipa::path(get, path = "/api/v1/inventory", tag = "inventory", params(StockParams), security(("bearer" = [])),
    responses((status = 200, description = "{items: [{variant_id, product_id, sku, stock, reorder_level}], next_cursor}")))]
async fn list_stock(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<StockParams>,
) -> ApiResult<Response> {
    let page = Page::from_params(params.limit.as_deref(), params.cursor.as_deref())?;
    let fields = Fields::parse(params.fields.as_deref(), STOCK_LEVEL_FIELDS)?;
    let low_only =
        crate::platform::http::extract::parse_bool("low_stock", params.low_stock.as_deref())?
            .unwrap_or(false);
    let tenant = &auth.tenant_id;
    let key = format!("stock:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let (items, next) = store::list_stock(&state, tenant, low_only, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::catalog(tenant)], compute)
        .await
}
