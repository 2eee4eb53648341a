//! Order routes.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::OrderError;
use super::lifecycle::{OrderStatus, PaymentMethod};
use super::model::{HISTORY_FIELDS, ORDER_DETAIL_FIELDS, ORDER_LIST_FIELDS, Order};
use super::store::{self, LinePrices, NewOrder, OrderFilter};
use crate::modules::pricing::{CartItem, check_items};
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::clock;
use crate::platform::http::error::{ApiError, ApiResult, Problem};
use crate::platform::http::extract::{ApiJson, ApiQuery, from_value};
use crate::platform::http::list::{
    Fields, FieldsQuery, ListQuery, Page, list_body, list_response, object_body,
};
use crate::platform::idempotency;
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(order_history))
        .routes(routes!(change_status))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OrderRequest {
    customer_id: String,
    items: Vec<OrderItemRequest>,
    payment_method: String,
    notes: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OrderItemRequest {
    variant_id: String,
    quantity: i64,
}

pub const NOTES_CHARS: usize = 10_000;

/// The parts of an order request checked without the database.
pub struct CheckedOrder {
    pub items: Vec<CartItem>,
    pub payment_method: PaymentMethod,
}

/// Checks what an order request can be checked for without the database.
pub fn check_order_request(req: &OrderRequest) -> ApiResult<CheckedOrder> {
    let items: Vec<CartItem> = req
        .items
        .iter()
        .map(|i| CartItem {
            variant_id: i.variant_id.clone(),
            quantity: i.quantity,
            unit_price: None,
        })
        .collect();
    let mut v = Validator::new();
    v.check(
        !req.customer_id.trim().is_empty(),
        "customer_id",
        "is required",
    );
    check_items(&mut v, &items, false);
    let method = PaymentMethod::parse(req.payment_method.trim());
    v.check(
        method.is_some(),
        "payment_method",
        "must be wallet or invoice",
    );
    if let Some(notes) = &req.notes {
        v.optional_text("notes", notes, NOTES_CHARS);
    }
    v.finish()?;
    // The validator refused a missing method above.
    let payment_method = method.ok_or_else(ApiError::internal)?;
    Ok(CheckedOrder {
        items,
        payment_method,
    })
}

/// Place an order: prices, stock, wallet debit, all in one transaction.
/// Takes an `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = OrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retry-safe key")),
    security(("bearer" = [])),
    responses((status = 201, body = Order), (status = 409, body = Problem, description = "out_of_stock, insufficient_funds"),
              (status = 422, body = Problem, description = "validation_failed, idempotency_key_reused")))]
async fn place_order(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    body: ApiJson<Value>,
) -> ApiResult<Response> {
    auth.require(Action::WriteSales)?;
    let key = idempotency::key_from(&headers)?;
    let request = body.parse()?;
    state
        .idempotency
        .once(
            &auth.tenant_id,
            "orders.place",
            key,
            &request,
            StatusCode::CREATED,
            |claim| async {
                let req: OrderRequest = from_value(request.clone())?;
                let checked = check_order_request(&req)?;
                let new = NewOrder {
                    customer_id: req.customer_id.trim().to_owned(),
                    items: checked.items,
                    payment_method: checked.payment_method,
                    notes: req.notes.map(|n| n.trim().to_owned()),
                    prices: LinePrices::Engine,
                    quotation_id: None,
                };
                Ok(store::place_order(&state, &auth.tenant_id, new, claim).await?)
            },
        )
        .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListParams {
    status: Option<String>,
    customer_id: Option<String>,
    /// First day (YYYY-MM-DD, UTC), inclusive.
    from: Option<String>,
    /// Last day (YYYY-MM-DD, UTC), inclusive.
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

fn date_param(name: &str, value: Option<&str>) -> ApiResult<Option<time::Date>> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => clock::parse_date(text)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{name} must be a date, YYYY-MM-DD"))),
    }
}

/// Orders newest first, by status, customer and date range, with items.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(OrderListParams), security(("bearer" = [])),
    responses((status = 200, description = "{items: [Order], next_cursor}"), (status = 400, body = Problem)))]
async fn list_orders(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<OrderListParams>,
) -> ApiResult<Response> {
    let page = Page::from_params(p.limit.as_deref(), p.cursor.as_deref())?;
    let fields = Fields::parse(p.fields.as_deref(), ORDER_LIST_FIELDS)?;
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request("status must be placed, paid, shipped, delivered or cancelled")
        })?),
    };
    let from = date_param("from", p.from.as_deref())?;
    let to = date_param("to", p.to.as_deref())?;
    let filter = OrderFilter {
        status,
        customer_id: p.customer_id.filter(|c| !c.is_empty()),
        from: from.map(clock::start_of_day_micros),
        until: to
            .and_then(|d| d.next_day())
            .map(clock::start_of_day_micros),
    };
    let tenant = &auth.tenant_id;
    let key = format!("orders:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let (items, next) = store::list_orders(&state, tenant, &filter, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::orders(tenant)], compute)
        .await
}

/// An order with its items and its latest 20 status changes.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
async fn get_order(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse_among(
        p.fields.as_deref(),
        &[ORDER_LIST_FIELDS, ORDER_DETAIL_FIELDS],
    )?;
    let tenant = &auth.tenant_id;
    let key = format!("order:{tenant}:{id:?}?{}", query.unwrap_or_default());
    let compute = || async {
        let order = store::order_detail(state.db.current_reader(), tenant, &id).await?;
        object_body(&order, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::orders(tenant)], compute)
        .await
}

/// An order's whole status history, newest first.
#[utoipa::path(get, path = "/api/v1/orders/{id}/history", tag = "orders", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "{items: [{status, note, created_at}], next_cursor}"), (status = 404, body = Problem)))]
async fn order_history(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let page = Page::from_params(p.limit.as_deref(), p.cursor.as_deref())?;
    let fields = Fields::parse(p.fields.as_deref(), HISTORY_FIELDS)?;
    let (items, next) = store::history(&state, &auth.tenant_id, &id, &page).await?;
    Ok(list_response(&items, next, &fields))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct StatusChange {
    status: String,
    note: Option<String>,
}

/// Move an order along its lifecycle: placed → paid → shipped → delivered;
/// placed or paid → cancelled (stock back, wallet refunded).
#[utoipa::path(post, path = "/api/v1/orders/{id}/status", tag = "orders", request_body = StatusChange, security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem, description = "invalid_transition"), (status = 422, body = Problem)))]
async fn change_status(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<Value>,
) -> ApiResult<Json<Order>> {
    let raw = body.parse();
    // The role a move needs depends on its target, read exactly as the move
    // will read it (trimmed); an unreadable target needs at least the sales
    // permission.
    let target = raw
        .as_ref()
        .ok()
        .and_then(|raw| raw.get("status"))
        .and_then(Value::as_str)
        .map(str::trim)
        .and_then(OrderStatus::parse);
    auth.require(target.map_or(Action::WriteSales, OrderStatus::required_action))?;
    if !store::order_exists(state.db.writer(), &auth.tenant_id, &id).await? {
        return Err(OrderError::NotFound.into());
    }
    let req: StatusChange = from_value(raw?)?;
    let mut v = Validator::new();
    let to = OrderStatus::parse(req.status.trim());
    v.check(
        to.is_some(),
        "status",
        "must be placed, paid, shipped, delivered or cancelled",
    );
    if let Some(note) = &req.note {
        v.optional_text("note", note, 1000);
    }
    v.finish()?;
    let to = to.ok_or_else(ApiError::internal)?;
    let order = store::change_status(
        &state,
        &auth.tenant_id,
        &id,
        to,
        req.note.as_deref().map(str::trim),
    )
    .await?;
    Ok(Json(order))
}
