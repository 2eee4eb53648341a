//! Catalog routes: thin — parse, authorize, call the store, shape.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::CatalogError;
use super::model::*;
use super::products::ProductFilter;
use super::{categories, products, variants};
use crate::platform::auth::{Action, AuthUser};
use crate::platform::cache::tags;
use crate::platform::http::error::{ApiError, ApiResult, Problem};
use crate::platform::http::extract::{
    ApiJson, ApiQuery, parse_bool, parse_i64, refusal_unless_missing,
};
use crate::platform::http::list::{
    Fields, FieldsQuery, ListQuery, Page, list_body, object_body, object_response,
};
use crate::platform::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_category, list_categories))
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, patch_product, delete_product))
        .routes(routes!(add_variant))
        .routes(routes!(get_variant, patch_variant))
}

/// Create a category, optionally under a parent.
#[utoipa::path(post, path = "/api/v1/categories", tag = "catalog", request_body = NewCategory, security(("bearer" = [])),
    responses((status = 201, body = Category), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_category(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<NewCategory>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::WriteCatalog)?;
    let new = body.parse()?;
    check_category(&new).finish()?;
    let category = categories::create_category(&state, &auth.tenant_id, new).await?;
    Ok((StatusCode::CREATED, Json(category)))
}

/// The tenant's categories, newest first.
#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, description = "{items: [Category], next_cursor}")))]
async fn list_categories(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<ListQuery>,
) -> ApiResult<Response> {
    let page = Page::from_params(p.limit.as_deref(), p.cursor.as_deref())?;
    let fields = Fields::parse(p.fields.as_deref(), CATEGORY_FIELDS)?;
    let tenant = &auth.tenant_id;
    let key = format!("categories:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let (items, next) = categories::list_categories(&state, tenant, &page).await?;
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::catalog(tenant)], compute)
        .await
}

/// Create a product with its options, variants and images, in one transaction.
#[utoipa::path(post, path = "/api/v1/products", tag = "catalog", request_body = NewProduct, security(("bearer" = [])),
    responses((status = 201, body = Product), (status = 403, body = Problem), (status = 409, body = Problem, description = "duplicate_sku"), (status = 422, body = Problem)))]
async fn create_product(
    State(state): State<AppState>,
    auth: AuthUser,
    body: ApiJson<NewProduct>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::WriteCatalog)?;
    let new = body.parse()?;
    check_new_product(&new).finish()?;
    let product = products::create_product(&state, &auth.tenant_id, new).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListParams {
    category_id: Option<String>,
    active: Option<String>,
    /// Case-insensitive substring of the name.
    q: Option<String>,
    /// Keep products with at least one variant priced at or above this.
    min_price: Option<String>,
    /// Keep products with at least one variant priced at or below this.
    max_price: Option<String>,
    /// `variants` to embed each product's variants.
    include: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    fields: Option<String>,
}

/// Products, newest first, with price range and stock totals per item.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ProductListParams), security(("bearer" = [])),
    responses((status = 200, description = "{items: [Product], next_cursor}"), (status = 400, body = Problem)))]
async fn list_products(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<ProductListParams>,
) -> ApiResult<Response> {
    let page = Page::from_params(p.limit.as_deref(), p.cursor.as_deref())?;
    let fields = Fields::parse(p.fields.as_deref(), PRODUCT_LIST_FIELDS)?;
    let mut include_variants = false;
    for part in p
        .include
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if part != "variants" {
            return Err(ApiError::bad_request("include takes only `variants`"));
        }
        include_variants = true;
    }
    // Naming `variants` in fields asks for them too.
    include_variants |= p.fields.is_some() && fields.wants("variants");
    if p.q.as_deref().is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::bad_request("q must be at most 200 characters"));
    }
    let filter = ProductFilter {
        category_id: p.category_id.filter(|c| !c.is_empty()),
        active: parse_bool("active", p.active.as_deref())?,
        q: p.q.map(|q| q.trim().to_owned()),
        min_price: parse_i64("min_price", p.min_price.as_deref())?,
        max_price: parse_i64("max_price", p.max_price.as_deref())?,
    };
    let tenant = &auth.tenant_id;
    // Every parameter is in the raw query, so it names the page exactly.
    let key = format!("products:{tenant}?{}", query.unwrap_or_default());
    let compute = || async {
        let (mut items, next) =
            products::list_products(&state, tenant, &filter, &page, include_variants).await?;
        for item in &mut items {
            // Lists carry no options or images; only detail does.
            item.options = None;
            item.images = None;
        }
        list_body(&items, next, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::catalog(tenant)], compute)
        .await
}

/// A product with its options, variants and images.
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog", params(FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Product), (status = 404, body = Problem)))]
async fn get_product(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    ApiQuery(p): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse_among(
        p.fields.as_deref(),
        &[PRODUCT_LIST_FIELDS, PRODUCT_DETAIL_FIELDS],
    )?;
    let tenant = &auth.tenant_id;
    // The id quoted: a decoded id may hold `?`, and must not make one
    // product's key read as another's with a query.
    let key = format!("product:{tenant}:{id:?}?{}", query.unwrap_or_default());
    let compute = || async {
        let product = products::product_detail(&state, tenant, &id).await?;
        object_body(&product, &fields)
    };
    state
        .cache
        .respond_with(&headers, &key, &[tags::product(tenant, &id)], compute)
        .await
}

/// Change a product's name, description, category, active flag, minimum
/// margin or images (`images` replaces the set).
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "catalog", request_body = ProductPatch, security(("bearer" = [])),
    responses((status = 200, body = Product), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn patch_product(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<ProductPatch>,
) -> ApiResult<Json<Product>> {
    auth.require(Action::WriteCatalog)?;
    let patch = refusal_unless_missing(
        body.parse(),
        products::product_exists(&state, &auth.tenant_id, &id),
        CatalogError::ProductNotFound,
    )
    .await?;
    let product = products::patch_product(&state, &auth.tenant_id, &id, patch).await?;
    Ok(Json(product))
}

/// Delete a product: it disappears from every read; orders keep their lines.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "catalog", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_product(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    auth.require(Action::WriteCatalog)?;
    products::delete_product(&state, &auth.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a variant to a product.
#[utoipa::path(post, path = "/api/v1/products/{id}/variants", tag = "catalog", request_body = NewVariant, security(("bearer" = [])),
    responses((status = 201, body = Variant), (status = 404, body = Problem), (status = 409, body = Problem, description = "duplicate_sku"), (status = 422, body = Problem)))]
async fn add_variant(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<NewVariant>,
) -> ApiResult<impl IntoResponse> {
    auth.require(Action::WriteCatalog)?;
    let new = refusal_unless_missing(
        body.parse(),
        products::product_exists(&state, &auth.tenant_id, &id),
        CatalogError::ProductNotFound,
    )
    .await?;
    let variant = variants::add_variant(&state, &auth.tenant_id, &id, new).await?;
    Ok((StatusCode::CREATED, Json(variant)))
}

/// A variant.
#[utoipa::path(get, path = "/api/v1/variants/{id}", tag = "catalog", params(FieldsQuery), security(("bearer" = [])),
    responses((status = 200, body = Variant), (status = 404, body = Problem)))]
async fn get_variant(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<FieldsQuery>,
) -> ApiResult<Response> {
    let fields = Fields::parse(p.fields.as_deref(), VARIANT_FIELDS)?;
    let variant = variants::get_variant(&state, &auth.tenant_id, &id).await?;
    Ok(object_response(&variant, &fields))
}

/// Change a variant (not its stock: use stock adjustments).
#[utoipa::path(patch, path = "/api/v1/variants/{id}", tag = "catalog", request_body = VariantPatch, security(("bearer" = [])),
    responses((status = 200, body = Variant), (status = 404, body = Problem), (status = 409, body = Problem, description = "duplicate_sku"), (status = 422, body = Problem)))]
async fn patch_variant(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: ApiJson<VariantPatch>,
) -> ApiResult<Json<Variant>> {
    auth.require(Action::WriteCatalog)?;
    let patch = refusal_unless_missing(
        body.parse(),
        variants::variant_exists(&state, &auth.tenant_id, &id),
        CatalogError::VariantNotFound,
    )
    .await?;
    let variant = variants::patch_variant(&state, &auth.tenant_id, &id, patch).await?;
    Ok(Json(variant))
}
