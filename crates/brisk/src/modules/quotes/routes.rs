//! Quotation routes.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::QuoteError;
use super::lifecycle::QuotationStatus;
use super::model::{QUOTATION_FIELDS, Quotation};
use super::store::{self, QuotationInput};
use crate::modules::orders::{Order, PaymentMethod};
use crate::modules::pricing::{CartItem, check_items};
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::clock;
use crate::platform::http::error::{ApiError, ApiResult, Problem};
use crate::platform::http::extract::{ActionJson, ApiJson, ApiQuery};
use crate::platform::http::list::{Fields, FieldsQuery, Page, list_body, object_body};
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, patch))
        .routes(routes!(send))
        .routes(routes!(accept))
        .routes(routes!(reject))
        .routes(routes!(convert))
}

const NOTES_CHARS: usize = 10_000;
const DEFAULT_VALIDITY_DAYS: i64 = 30;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct QuotationItem {
    variant_id: String,
    quantity: i64,
    /// Replaces the computed unit price; must keep the minimum margin.
    unit_price: Option<i64>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewQuotation {
    customer_id: String,
    items: Vec<QuotationItem>,
    /// YYYY-MM-DD, valid through that day (UTC); 30 days from today by default.
    valid_until: Option<String>,
    notes: Option<String>,
}

/// PATCH body: any subset; `notes: null` clears the notes.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct QuotationPatch {
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    customer_id: Option<Option<String>>,
    items: Option<Vec<QuotationItem>>,
    valid_until: Option<String>,
    #[serde(default, deserialize_with = "crate::platform::http::extract::present")]
    #[schema(value_type = Option<String>)]
    notes: Option<Option<String>>,
}

fn cart_items(items: &[QuotationItem]) -> Vec<CartItem> {
    items
        .iter()
        .map(|i| CartItem {
            variant_id: i.variant_id.clone(),
            quantity: i.quantity,
            unit_price: i.unit_price,
        })
        .collect()
}

fn check_valid_until(v: &mut Validator, text: &str) -> Option<String> {
    match clock::parse_date(text) {
        None => {
            v.error("valid_until", "must be a date, YYYY-MM-DD");
            None
        }
        Some(d) if d < clock::today() => {
            v.error("valid_until", "must not be in the past");
            None
        }
        Some(d) => Some(clock::format_date(d)),
    }
}

fn check_input(v: &mut Validator, input: &QuotationInput) {
    v.check(
        !input.customer_id.trim().is_empty(),
        "customer_id",
        "is required",
    );
    check_items(v, &input.items, true);
    if let Some(notes) = &input.notes {
        v.optional_text("notes", notes, NOTES_CHARS);
    }
}

/// Create a draft quotation, priced by the pricing engine or at explicit prices.
#[utoipa::path(post, path = "/api/v1/quotations", tag = "quotations", request_body = NewQuotation, security(("bearer" = [])),
    responses((status = 201, body = Quotation), (status = 422, body = Problem, description = "validation_failed, margin_too_low")))]
async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<NewQuotation>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::WriteSales)?;
    let req = body.parse()?;
    let mut v = Validator::new();
    let valid_until = match &req.valid_until {
        Some(text) => check_valid_until(&mut v, text).unwrap_or_default(),
        None => clock::format_date(
            clock::today().saturating_add(time::Duration::days(DEFAULT_VALIDITY_DAYS)),
        ),
    };
    let input = QuotationInput {
        customer_id: req.customer_id.trim().to_owned(),
        items: cart_items(&req.items),
        valid_until,
        notes: req.notes.map(|n| n.trim().to_owned()),
    };
    check_input(&mut v, &input);
    v.finish()?;
    let quotation = store::create(&state, &auth.tenant_id, input).await?;
    state
        .cache
        .invalidate(&tags::quotation_changed(&auth.tenant_id));
    Ok((StatusCode::CREATED, Json(quotation)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// draft, sent, accepted, rejected, converted or expired.
    status: Option<String>,
    customer_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

/// Quotations newest first, by status and customer.
#[utoipa::path(get, path = "/api/v1/quotations", tag = "quotations", params(ListParams), security(("bearer" = [])),
    responses((status = 200, description = "{items: [Quotation], next_cursor}"), (status = 400, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let page = Page::from_params(p.limit.as_deref(), p.cursor.as_deref())?;
    let fields = Fields::parse(p.fields.as_deref(), QUOTATION_FIELDS)?;
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(QuotationStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "status must be draft, sent, accepted, rejected, converted or expired",
            )
        })?),
    };
    let customer_id = p.customer_id.as_deref().filter(|c| !c.is_empty());
    let tenant = &auth.tenant_id;
    let key = format!(
        "quotations:{tenant}:{}?{}",
        as_of_today(),
        query.unwrap_or_default()
    );
    let compute = || async {
        let (items, next) = store::list(&state, tenant, status, customer_id, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::quotations(tenant)], compute)
        .await
}

/// The day a quotation's status is read on: a draft or sent quotation past
/// its date reads as expired, with no write to say so, so a cached answer
/// holds for one UTC day at most (the day is part of its key).
fn as_of_today() -> String {
    clock::format_date(clock::today())
}

/// A quotation with its lines.
#[utoipa::path(get, path = "/api/v1/quotations/{id}", tag = "quotations", params(FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Quotation), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse(p.fields.as_deref(), QUOTATION_FIELDS)?;
    let tenant = &auth.tenant_id;
    let key = format!(
        "quotation:{tenant}:{id:?}:{}?{}",
        as_of_today(),
        query.unwrap_or_default()
    );
    let compute = || async {
        let quotation = store::detail(state.db.current_reader(), tenant, &id).await?;
        object_body(&quotation, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::quotations(tenant)], compute)
        .await
}

/// Edit a draft (anything else is 409 `invalid_transition`); re-prices it.
#[utoipa::path(patch, path = "/api/v1/quotations/{id}", tag = "quotations", request_body = QuotationPatch, security(("bearer" = [])),
    responses((status = 200, body = Quotation), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<QuotationPatch>,
) -> ApiResult<Json<Quotation>> {
    auth.require(Action::WriteSales)?;
    // The quotation is read (404) before the body is looked at (400, 422).
    let edit = store::begin_edit(&state, &auth.tenant_id, &id).await?;
    let input = patched(edit.contents(), body)?;
    let saved = edit.save(&auth.tenant_id, input).await?;
    state
        .cache
        .invalidate(&tags::quotation_changed(&auth.tenant_id));
    Ok(Json(saved))
}

/// The stored contents with the PATCH body applied, checked as a whole.
fn patched(mut input: QuotationInput, body: ApiJson<QuotationPatch>) -> ApiResult<QuotationInput> {
    let patch = body.parse()?;
    let mut v = Validator::new();
    match patch.customer_id {
        Some(Some(c)) => input.customer_id = c.trim().to_owned(),
        Some(None) => v.error("customer_id", "must not be null"),
        None => {}
    }
    if let Some(items) = &patch.items {
        input.items = cart_items(items);
    }
    if let Some(text) = &patch.valid_until
        && let Some(date) = check_valid_until(&mut v, text)
    {
        input.valid_until = date;
    }
    if let Some(notes) = patch.notes {
        input.notes = notes.map(|n| n.trim().to_owned());
    }
    check_input(&mut v, &input);
    v.finish()?;
    Ok(input)
}

async fn move_quotation(
    state: &AppState,
    auth: &AuthUser,
    id: &str,
    to: QuotationStatus,
) -> ApiResult<Json<Quotation>> {
    auth.require(Action::WriteSales)?;
    let moved = store::transition(state, &auth.tenant_id, id, to).await?;
    state
        .cache
        .invalidate(&tags::quotation_changed(&auth.tenant_id));
    Ok(Json(moved))
}

/// draft → sent.
#[utoipa::path(post, path = "/api/v1/quotations/{id}/send", tag = "quotations", security(("bearer" = [])),
    responses((status = 200, body = Quotation), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn send(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    _body: ActionJson<Value>,
) -> ApiResult<Json<Quotation>> {
    move_quotation(&state, &auth, &id, QuotationStatus::Sent).await
}

/// sent → accepted.
#[utoipa::path(post, path = "/api/v1/quotations/{id}/accept", tag = "quotations", security(("bearer" = [])),
    responses((status = 200, body = Quotation), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn accept(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    _body: ActionJson<Value>,
) -> ApiResult<Json<Quotation>> {
    move_quotation(&state, &auth, &id, QuotationStatus::Accepted).await
}

/// sent → rejected.
#[utoipa::path(post, path = "/api/v1/quotations/{id}/reject", tag = "quotations", security(("bearer" = [])),
    responses((status = 200, body = Quotation), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn reject(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    _body: ActionJson<Value>,
) -> ApiResult<Json<Quotation>> {
    move_quotation(&state, &auth, &id, QuotationStatus::Rejected).await
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct ConvertRequest {
    /// `invoice` (default) or `wallet`.
    payment_method: Option<String>,
}

/// accepted → converted: places the order at the quotation's prices.
#[utoipa::path(post, path = "/api/v1/quotations/{id}/convert", tag = "quotations", request_body = ConvertRequest, security(("bearer" = [])),
    responses((status = 201, body = Order), (status = 404, body = Problem), (status = 409, body = Problem, description = "invalid_transition, out_of_stock, insufficient_funds"), (status = 422, body = Problem)))]
async fn convert(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ActionJson<ConvertRequest>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::WriteSales)?;
    if !store::exists(&state, &auth.tenant_id, &id).await? {
        return Err(QuoteError::NotFound.into());
    }
    let req = body.parse()?;
    let method = match req.payment_method.as_deref().map(str::trim) {
        None => PaymentMethod::Invoice,
        Some(m) => PaymentMethod::parse(m)
            .ok_or_else(|| ApiError::field("payment_method", "must be wallet or invoice"))?,
    };
    let order = store::convert(&state, &auth.tenant_id, &id, method).await?;
    Ok((StatusCode::CREATED, Json(order)))
}
