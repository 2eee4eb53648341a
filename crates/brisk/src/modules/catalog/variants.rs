//! Variants: adding and changing a product's variants, and what pricing
//! and order placement read of them.

use std::collections::HashMap;

use sqlx::{Any, Executor, FromRow};

use super::error::CatalogError;
use super::model::*;
use crate::modules::inventory;
use crate::platform::cache::tags;
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{SqlBuilder, Tx, commit, is_unique_violation, sql, sql_owned};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;
use crate::platform::validation::{Invalid, Validator};

/// A write refused by the per-tenant unique SKU index is a duplicate SKU.
fn map_sku_conflict(e: sqlx::Error) -> CatalogError {
    if is_unique_violation(&e) {
        CatalogError::DuplicateSku
    } else {
        e.into()
    }
}

/// A new variant of `product_id` as it will be stored and shown, with the
/// defaults of an omitted field.
pub(super) fn new_variant(new: &NewVariant, product_id: &str, now: i64) -> Variant {
    let option_values = new
        .option_values
        .iter()
        .flatten()
        .map(|(name, value)| (name.clone(), serde_json::Value::from(value.as_str())))
        .collect();
    Variant {
        id: new_id(),
        product_id: product_id.to_owned(),
        sku: new.sku.trim().to_owned(),
        price: new.price,
        cost: new.cost.unwrap_or(0),
        stock: new.stock.unwrap_or(0),
        reorder_level: new.reorder_level.unwrap_or(5),
        active: new.active.unwrap_or(true),
        option_values: serde_json::Value::Object(option_values),
        tiers: new.tiers.clone().unwrap_or_default(),
        created_at: now,
        updated_at: now,
    }
}

/// Inserts new variants of one product in one statement, with the
/// movements of their initial stock.
pub(super) async fn insert_variants(
    tx: &mut Tx,
    tenant_id: &TenantId,
    product_id: &str,
    first_position: i64,
    variants: &[Variant],
    now: i64,
) -> Result<(), CatalogError> {
    let mut q = SqlBuilder::new(
        "INSERT INTO variants (tenant_id, id, product_id, sku, price, cost, stock, reorder_level, active, \
         option_values, tiers, position, created_at, updated_at, last_movement_at) VALUES ",
    );
    for (i, v) in variants.iter().enumerate() {
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
            .bind(tiers_json(&v.tiers))
            .push(", ")
            .bind(first_position + i as i64)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now)
            .push(", ")
            .bind(now) // the initial movement's time, if it has one
            .push(")");
    }
    q.build()
        .execute(&mut **tx)
        .await
        .map_err(map_sku_conflict)?;
    let initial: Vec<inventory::Movement> = variants
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
    Ok(())
}

/// Tiers as the `tiers` column stores them. A `Vec` of plain structs
/// always serializes; the fallback is never taken.
fn tiers_json(tiers: &[Tier]) -> String {
    serde_json::to_string(tiers).unwrap_or_else(|_| "[]".into())
}

/// The variants of several products, in one statement, in client order.
pub(super) async fn variants_of_products<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    product_ids: &[&str],
) -> Result<HashMap<String, Vec<Variant>>, CatalogError>
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
            .push(row.try_into()?);
    }
    Ok(by_product)
}

/// Adds a variant to an existing product.
pub async fn add_variant(
    state: &AppState,
    tenant_id: &TenantId,
    product_id: &str,
    new: NewVariant,
) -> Result<Variant, CatalogError> {
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
        .ok_or(CatalogError::ProductNotFound)?;
    let options: String = sqlx::Row::try_get(&touched, "options")?;
    let options: Vec<ProductOption> = stored_json(&options, "products", product_id, "options")?;
    let mut v = Validator::new();
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
    let variant = new_variant(&new, product_id, now);
    insert_variants(
        &mut tx,
        tenant_id,
        product_id,
        next_position,
        std::slice::from_ref(&variant),
        now,
    )
    .await?;
    commit(tx).await?;
    state
        .cache
        .invalidate(&tags::products_changed(tenant_id, [product_id]));
    Ok(variant)
}

/// Field names of a single variant's body carry no `variant.` prefix (the
/// checks are shared with a product's `variants[i].` list).
fn strip_prefix(mut invalid: Invalid, prefix: &str) -> Invalid {
    for f in &mut invalid.0 {
        if let Some(rest) = f.field.strip_prefix(prefix) {
            f.field = rest.to_owned();
        }
    }
    invalid
}

/// A variant of a product that is not deleted, with the product's options.
async fn variant_with_options<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Option<(Variant, Vec<ProductOption>)>, CatalogError>
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
    let variant = Variant::try_from(VariantRow::from_row(&row)?)?;
    let options = stored_json(&options, "products", &variant.product_id, "options")?;
    Ok(Some((variant, options)))
}

pub async fn get_variant(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Variant, CatalogError> {
    variant_with_options(state.db.reader(), tenant_id, id)
        .await?
        .map(|(v, _)| v)
        .ok_or(CatalogError::VariantNotFound)
}

/// Whether a variant of a live product exists, on the primary (it decides
/// the answer to a write).
pub async fn variant_exists(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
) -> Result<bool, CatalogError> {
    Ok(sql("SELECT 1 FROM variants v JOIN products p ON p.tenant_id = v.tenant_id AND p.id = v.product_id \
            WHERE v.tenant_id = $1 AND v.id = $2 AND p.deleted_at IS NULL")
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(state.db.writer())
    .await?
    .is_some())
}

pub async fn patch_variant(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    patch: VariantPatch,
) -> Result<Variant, CatalogError> {
    let mut tx = state.db.begin().await?;
    let (_, options) = variant_with_options(&mut *tx, tenant_id, id)
        .await?
        .ok_or(CatalogError::VariantNotFound)?;
    let mut v = Validator::new();
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
        q.push(", tiers = ").bind(tiers_json(tiers));
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
    let updated = updated.ok_or(CatalogError::VariantNotFound)?;
    state.cache.invalidate(&tags::products_changed(
        tenant_id,
        [updated.product_id.as_str()],
    ));
    Ok(updated)
}

// ---------------------------------------------------------------------------
// For pricing and orders

/// What pricing and order placement need of a variant, with its product's
/// rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantForSale {
    pub id: String,
    pub product_id: String,
    pub product_name: String,
    pub sku: String,
    pub price: i64,
    pub cost: i64,
    pub tiers: Vec<Tier>,
    /// The variant is for sale…
    pub active: bool,
    /// …and so is its product.
    pub product_active: bool,
    pub min_margin_bp: i64,
}

/// [`VariantForSale`] as stored.
#[derive(FromRow)]
struct VariantForSaleRow {
    id: String,
    product_id: String,
    product_name: String,
    sku: String,
    price: i64,
    cost: i64,
    tiers: String,
    active: i64,
    product_active: i64,
    min_margin_bp: i64,
}

impl TryFrom<VariantForSaleRow> for VariantForSale {
    type Error = CatalogError;

    fn try_from(r: VariantForSaleRow) -> Result<Self, CatalogError> {
        Ok(VariantForSale {
            tiers: stored_json(&r.tiers, "variants", &r.id, "tiers")?,
            id: r.id,
            product_id: r.product_id,
            product_name: r.product_name,
            sku: r.sku,
            price: r.price,
            cost: r.cost,
            active: r.active != 0,
            product_active: r.product_active != 0,
            min_margin_bp: r.min_margin_bp,
        })
    }
}

/// Every listed variant of live products of the tenant, in one statement.
/// Missing ids are simply absent from the answer.
pub async fn variants_for_sale<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    ids: &[&str],
) -> Result<HashMap<String, VariantForSale>, CatalogError>
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
    let rows = q.build().fetch_all_as::<_, VariantForSaleRow>(ex).await?;
    rows.into_iter()
        .map(|r| VariantForSale::try_from(r).map(|v| (v.id.clone(), v)))
        .collect()
}
