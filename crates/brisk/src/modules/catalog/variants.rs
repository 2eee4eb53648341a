//! Variants: adding and changing a product's variants, and what pricing
//! and order placement read of them.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, FromRow};

use super::model::*;
use super::products::product_not_found;
use crate::modules::inventory;
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{SqlBuilder, Tx, commit, is_unique_violation, sql, sql_owned};
use crate::platform::http::error::{ApiError, ApiResult, ErrorCode, Invalid};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

fn duplicate_sku() -> ApiError {
    ApiError::conflict(
        ErrorCode::DuplicateSku,
        "a variant with this SKU already exists",
    )
}

fn map_sku_conflict(e: sqlx::Error) -> ApiError {
    if is_unique_violation(&e) {
        duplicate_sku()
    } else {
        e.into()
    }
}

fn variant_not_found() -> ApiError {
    ApiError::not_found("no such variant")
}

/// Inserts variants of one product in one statement; returns them as shown.
pub(super) async fn insert_variants(
    tx: &mut Tx,
    tenant_id: &TenantId,
    product_id: &str,
    first_position: i64,
    variants: &[NewVariant],
    now: i64,
) -> ApiResult<Vec<Variant>> {
    let mut shown = Vec::with_capacity(variants.len());
    let mut q = SqlBuilder::new(
        "INSERT INTO variants (tenant_id, id, product_id, sku, price, cost, stock, reorder_level, active, \
         option_values, tiers, position, created_at, updated_at, last_movement_at) VALUES ",
    );
    for (i, nv) in variants.iter().enumerate() {
        let option_values = serde_json::to_value(nv.option_values.clone().unwrap_or_default())
            .unwrap_or_else(|_| serde_json::json!({}));
        let tiers: Vec<Tier> = nv.tiers.clone().unwrap_or_default();
        let v = Variant {
            id: new_id(),
            product_id: product_id.to_owned(),
            sku: nv.sku.trim().to_owned(),
            price: nv.price,
            cost: nv.cost.unwrap_or(0),
            stock: nv.stock.unwrap_or(0),
            reorder_level: nv.reorder_level.unwrap_or(5),
            active: nv.active.unwrap_or(true),
            option_values,
            tiers,
            created_at: now,
            updated_at: now,
        };
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(tenant_id)
            .push(", ")
            .bind(v.id.clone())
            .push(", ")
            .bind(product_id)
            .push(", ")
            .bind(v.sku.clone())
            .push(", ")
            .bind(v.price)
            .push(", ")
            .bind(v.cost)
            .push(", ")
            .bind(v.stock)
            .push(", ")
            .bind(v.reorder_level)
            .push(", ")
            .bind(v.active)
            .push(", ")
            .bind(v.option_values.to_string())
            .push(", ")
            .bind(serde_json::to_string(&v.tiers).unwrap_or_else(|_| "[]".into()))
            .push(", ")
            .bind(first_position + i as i64)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now) // the initial movement's time, if it has one
            .push(")");
        shown.push(v);
    }
    q.build()
        .execute(&mut **tx)
        .await
        .map_err(map_sku_conflict)?;
    let initial: Vec<inventory::Movement> = shown
        .iter()
        .filter(|v| v.stock > 0)
        .map(|v| {
            let applied = inventory::Applied {
                stock: v.stock,
                at: now,
            };
            inventory::Movement::new(&v.id, v.stock, "initial", applied, None)
        })
        .collect();
    inventory::record_movements(tx, tenant_id, &initial).await?;
    Ok(shown)
}

/// The variants of several products, in one statement, in client order.
pub(super) async fn variants_of_products<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    product_ids: &[&str],
) -> ApiResult<HashMap<String, Vec<Variant>>>
where
    E: Executor<'c, Database = Any>,
{
    let mut q = SqlBuilder::new(&format!(
        "SELECT {VARIANT_COLUMNS} FROM variants v WHERE v.tenant_id = "
    ));
    q.bind(tenant_id)
        .push(" AND v.product_id IN ")
        .bind_in(product_ids.iter().copied())
        .push(" ORDER BY v.product_id, v.position");
    let rows = q.build().fetch_all_as::<_, VariantRow>(ex).await?;
    let mut by_product: HashMap<String, Vec<Variant>> = HashMap::new();
    for row in rows {
        by_product
            .entry(row.product_id.clone())
            .or_default()
            .push(row.into());
    }
    Ok(by_product)
}

/// Adds a variant to an existing product.
pub async fn add_variant(
    state: &AppState,
    tenant_id: &TenantId,
    product_id: &str,
    body: impl FnOnce() -> ApiResult<NewVariant>,
) -> ApiResult<Variant> {
    let now = now_micros();
    let mut tx = state.db.begin().await?;
    // Touching the product first locks its row, so concurrent additions
    // take positions one after the other, and a product deleted meanwhile
    // is a 404.
    let touched = sql("UPDATE products SET updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING options")
        .bind(tenant_id)
        .bind(product_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(product_not_found)?;
    let options: String = sqlx::Row::try_get(&touched, "options")?;
    let options: Vec<ProductOption> = serde_json::from_str(&options).unwrap_or_default();
    let new = body()?;
    let mut v = crate::platform::validation::Validator::new();
    check_variant(&mut v, "variant", &new, &options);
    v.finish().map_err(|e| strip_prefix(e, "variant."))?;
    let next_position: i64 = sqlx::Row::try_get(
        &sql("SELECT CAST(COALESCE(MAX(position), -1) + 1 AS BIGINT) AS next FROM variants WHERE tenant_id = $1 AND product_id = $2")
            .bind(tenant_id)
            .bind(product_id)
            .fetch_one(&mut *tx)
            .await?,
        "next",
    )?;
    let mut variants = insert_variants(
        &mut tx,
        tenant_id,
        product_id,
        next_position,
        std::slice::from_ref(&new),
        now,
    )
    .await?;
    commit(tx).await?;
    variants.pop().ok_or_else(ApiError::internal)
}

/// Field names of a single variant's body carry no `variant.` prefix.
fn strip_prefix(e: Invalid, prefix: &str) -> ApiError {
    let mut e = ApiError::from(e);
    for f in &mut e.errors {
        if let Some(rest) = f.field.strip_prefix(prefix) {
            f.field = rest.to_owned();
        }
    }
    if let Some(rest) = e.detail.strip_prefix(prefix) {
        e.detail = rest.to_owned();
    }
    e
}

/// A variant of a product that is not deleted, with the product's options.
async fn variant_with_options<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> ApiResult<Option<(Variant, Vec<ProductOption>)>>
where
    E: Executor<'c, Database = Any>,
{
    let row = sql_owned(format!(
        "SELECT {VARIANT_COLUMNS}, p.options AS product_options FROM variants v \
         JOIN products p ON p.tenant_id = v.tenant_id AND p.id = v.product_id \
         WHERE v.tenant_id = $1 AND v.id = $2 AND p.deleted_at IS NULL"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let options: String = sqlx::Row::try_get(&row, "product_options")?;
    let variant: Variant = VariantRow::from_row(&row)?.into();
    Ok(Some((
        variant,
        serde_json::from_str(&options).unwrap_or_default(),
    )))
}

pub async fn get_variant(state: &AppState, tenant_id: &TenantId, id: &str) -> ApiResult<Variant> {
    variant_with_options(state.db.reader(), tenant_id, id)
        .await?
        .map(|(v, _)| v)
        .ok_or_else(variant_not_found)
}

pub async fn patch_variant(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    body: impl FnOnce() -> ApiResult<VariantPatch>,
) -> ApiResult<Variant> {
    let mut tx = state.db.begin().await?;
    let (_, options) = variant_with_options(&mut *tx, tenant_id, id)
        .await?
        .ok_or_else(variant_not_found)?;
    let patch = body()?;
    let mut v = crate::platform::validation::Validator::new();
    v.check(
        patch.stock.is_none(),
        "stock",
        "stock changes only through stock adjustments, orders and cancellations",
    );
    if let Some(sku) = &patch.sku {
        check_sku(&mut v, "sku", sku);
    }
    for (field, value) in [
        ("price", patch.price),
        ("cost", patch.cost),
        ("reorder_level", patch.reorder_level),
    ] {
        if let Some(value) = value {
            v.check(value >= 0, field, "must not be negative");
        }
    }
    if let Some(tiers) = &patch.tiers {
        check_tiers(&mut v, "variant", tiers);
    }
    if let Some(values) = &patch.option_values {
        check_option_values(&mut v, "option_values", values, &options);
    }
    v.finish().map_err(|e| strip_prefix(e, "variant."))?;
    let now = now_micros();
    let mut q = SqlBuilder::new("UPDATE variants SET updated_at = ");
    q.bind(now);
    if let Some(sku) = &patch.sku {
        q.push(", sku = ").bind(sku.trim());
    }
    for (column, value) in [
        ("price", patch.price),
        ("cost", patch.cost),
        ("reorder_level", patch.reorder_level),
    ] {
        if let Some(value) = value {
            q.push(&format!(", {column} = ")).bind(value);
        }
    }
    if let Some(active) = patch.active {
        q.push(", active = ").bind(active);
    }
    if let Some(values) = &patch.option_values {
        q.push(", option_values = ")
            .bind(serde_json::to_string(values).unwrap_or_else(|_| "{}".into()));
    }
    if let Some(tiers) = &patch.tiers {
        q.push(", tiers = ")
            .bind(serde_json::to_string(tiers).unwrap_or_else(|_| "[]".into()));
    }
    q.push(" WHERE tenant_id = ")
        .bind(tenant_id)
        .push(" AND id = ")
        .bind(id);
    q.build()
        .execute(&mut *tx)
        .await
        .map_err(map_sku_conflict)?;
    let updated = variant_with_options(&mut *tx, tenant_id, id)
        .await?
        .map(|(v, _)| v);
    commit(tx).await?;
    updated.ok_or_else(variant_not_found)
}

// ---------------------------------------------------------------------------
// For pricing and orders

/// What pricing and order placement need of a variant, with its product's
/// rule.
#[derive(Debug, Clone, FromRow)]
pub struct VariantForSale {
    pub id: String,
    pub product_id: String,
    pub product_name: String,
    pub sku: String,
    pub price: i64,
    pub cost: i64,
    pub tiers: String,
    pub active: i64,
    pub product_active: i64,
    pub min_margin_bp: i64,
}

/// Every listed variant of live products of the tenant, in one statement.
/// Missing ids are simply absent from the answer.
pub async fn variants_for_sale<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    ids: &[&str],
) -> ApiResult<HashMap<String, VariantForSale>>
where
    E: Executor<'c, Database = Any>,
{
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut q = SqlBuilder::new(
        "SELECT v.id, v.product_id, p.name AS product_name, v.sku, v.price, v.cost, v.tiers, v.active, \
         p.active AS product_active, p.min_margin_bp \
         FROM variants v JOIN products p ON p.tenant_id = v.tenant_id AND p.id = v.product_id \
         WHERE v.tenant_id = ",
    );
    q.bind(tenant_id)
        .push(" AND p.deleted_at IS NULL AND v.id IN ")
        .bind_in(ids.iter().copied());
    let rows: Vec<AnyRow> = q.build().fetch_all(ex).await?;
    rows.iter()
        .map(|r| VariantForSale::from_row(r).map(|v| (v.id.clone(), v)))
        .collect::<Result<HashMap<_, _>, _>>()
        .map_err(Into::into)
}
