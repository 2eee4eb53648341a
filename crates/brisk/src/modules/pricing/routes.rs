//! `POST /api/v1/pricing/calculate`: a read, open to every role.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{CartItem, PricedLine, check_items, load_variants, price_cart, unknown_customer};
use crate::modules::{crm, tenancy};
use crate::platform::auth::AuthUser;
use crate::platform::http::error::{ApiResult, Problem};
use crate::platform::http::extract::ApiJson;
use crate::platform::money::Money;
use crate::platform::state::AppState;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(calculate))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PricingRequest {
    customer_id: Option<String>,
    items: Vec<PricingItem>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PricingItem {
    variant_id: String,
    quantity: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PricingResponse {
    currency: String,
    customer_id: Option<String>,
    lines: Vec<PricedLine>,
    subtotal: Money,
    discount_total: Money,
    total: Money,
    margin_ok: bool,
}

/// Price a cart of 1–500 items for an optional customer. Three statements
/// at most, whatever the number of items.
#[utoipa::path(post, path = "/api/v1/pricing/calculate", tag = "pricing", request_body = PricingRequest, security(("bearer" = [])),
    responses((status = 200, body = PricingResponse), (status = 422, body = Problem)))]
async fn calculate(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<PricingRequest>,
) -> ApiResult<Json<PricingResponse>> {
    let req = body.parse()?;
    let items: Vec<CartItem> = req
        .items
        .into_iter()
        .map(|i| CartItem {
            variant_id: i.variant_id,
            quantity: i.quantity,
            unit_price: None,
        })
        .collect();
    let mut v = Validator::new();
    check_items(&mut v, &items, false);
    v.finish()?;
    let db = state.db.reader();
    let customer = match &req.customer_id {
        Some(id) => Some(crm::customer_discount(db, &auth.tenant_id, id).await?),
        None => None,
    };
    let variants = load_variants(db, &auth.tenant_id, &items).await?;
    let discount_bp = match customer {
        Some(Some(c)) => c.discount_bp,
        Some(None) => return Err(unknown_customer(&items, &variants).into()),
        None => 0,
    };
    let cart = price_cart(&items, &variants, discount_bp)?;
    let currency = tenancy::currency(&state, &auth.tenant_id).await?;
    Ok(Json(PricingResponse {
        currency,
        customer_id: req.customer_id,
        lines: cart.lines,
        subtotal: cart.totals.subtotal,
        discount_total: cart.totals.discount_total,
        total: cart.totals.total,
        margin_ok: cart.totals.margin_ok,
    }))
}
