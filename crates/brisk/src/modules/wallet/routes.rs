//! Wallet routes.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::TRANSACTION_FIELDS;
use super::store;
use crate::modules::{crm, tenancy};
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::http::error::{ApiError, ApiResult, Problem};
use crate::platform::http::extract::{ApiJson, ApiQuery, from_value};
use crate::platform::http::list::{Fields, FieldsQuery, ListQuery, Page, list_body, object_body};
use crate::platform::idempotency;
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;
use crate::platform::validation::Validator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_wallet))
        .routes(routes!(credit))
        .routes(routes!(transactions))
}

/// Largest single credit: far above any real top-up, far below overflow.
const MAX_CREDIT: i64 = 1_000_000_000_000_000;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Wallet {
    customer_id: String,
    balance: i64,
    currency: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreditRequest {
    amount: i64,
    reference: Option<String>,
}

async fn require_customer(
    db: &sqlx::AnyPool,
    tenant_id: &TenantId,
    customer_id: &str,
) -> ApiResult<()> {
    crm::customer_discount(db, tenant_id, customer_id)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found("no such customer"))
}

/// A customer's wallet balance.
#[utoipa::path(get, path = "/api/v1/customers/{id}/wallet", tag = "wallets", params(("id" = String, Path), FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Wallet), (status = 400, body = Problem, description = "unknown_field"), (status = 404, body = Problem)))]
async fn get_wallet(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(params): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse(
        params.fields.as_deref(),
        &["customer_id", "balance", "currency"],
    )?;
    let tenant = &auth.tenant_id;
    let key = format!("wallet:{tenant}:{id:?}?{}", query.unwrap_or_default());
    let compute = || async {
        require_customer(state.db.current_reader(), tenant, &id).await?;
        let balance = store::balance(state.db.current_reader(), tenant, &id).await?;
        let currency = tenancy::currency(&state, tenant).await?;
        let wallet = Wallet {
            customer_id: id.clone(),
            balance,
            currency,
        };
        object_body(&wallet, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &wallet_tags(tenant), compute)
        .await
}

/// What a wallet's reads are filed under: its balance and ledger change
/// with the wallets, its 404 with the customers.
fn wallet_tags(tenant: &TenantId) -> [String; 2] {
    [tags::wallets(tenant), tags::customers(tenant)]
}

/// Credit a customer's wallet. Takes an `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/customers/{id}/wallet/credits", tag = "wallets", request_body = CreditRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "retry-safe key")),
    security(("bearer" = [])),
    responses((status = 201, description = "{transaction, balance}"), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn credit(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<Value>,
) -> ApiResult<Response> {
    auth.require(Action::WriteSales)?;
    let key = idempotency::key_from(&headers)?;
    require_customer(state.db.writer(), &auth.tenant_id, &id).await?;
    let request = body.parse()?;
    // The route is the customer's own credits path: the same key sent to
    // two customers is two credits, never one replayed to the other.
    let route = format!("wallet.credit:{id}");
    state
        .idempotency
        .once(
            &auth.tenant_id,
            &route,
            key,
            &request,
            StatusCode::CREATED,
            |claim| async {
                let req: CreditRequest = from_value(request.clone())?;
                let mut v = Validator::new();
                v.check(req.amount > 0, "amount", "must be greater than zero");
                v.check(
                    req.amount <= MAX_CREDIT,
                    "amount",
                    format!("must be at most {MAX_CREDIT}"),
                );
                if let Some(reference) = &req.reference {
                    v.optional_text("reference", reference, 200);
                }
                v.finish()?;
                Ok(store::credit(
                    &state,
                    &auth.tenant_id,
                    &id,
                    req.amount,
                    req.reference.as_deref().map(str::trim),
                    claim,
                )
                .await?)
            },
        )
        .await
}

/// The wallet's ledger, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/wallet/transactions", tag = "wallets", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "{items: [WalletTransaction], next_cursor}"), (status = 404, body = Problem)))]
async fn transactions(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let page = Page::from_params(p.limit.as_deref(), p.cursor.as_deref())?;
    let fields = Fields::parse(p.fields.as_deref(), TRANSACTION_FIELDS)?;
    let tenant = &auth.tenant_id;
    let key = format!("ledger:{tenant}:{id:?}?{}", query.unwrap_or_default());
    let compute = || async {
        require_customer(state.db.current_reader(), tenant, &id).await?;
        let (items, next) = store::transactions(&state, tenant, &id, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &wallet_tags(tenant), compute)
        .await
}
