//! Catalog SQL. Every read runs a fixed number of statements: a product
//! page is one statement (two with its variants), a product's detail three.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Executor, FromRow};

use super::model::*;
use crate::modules::inventory;
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{Backend, SqlBuilder, Tx, commit, is_unique_violation, sql, sql_owned};
use crate::platform::http::error::{ApiError, ApiResult, ErrorCode, Invalid};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::search;
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

fn product_not_found() -> ApiError {
    ApiError::not_found("no such product")
}

fn variant_not_found() -> ApiError {
    ApiError::not_found("no such variant")
}

// ---------------------------------------------------------------------------
// Categories

pub async fn create_category(
    state: &AppState,
    tenant_id: &TenantId,
    new: NewCategory,
) -> ApiResult<Category> {
    let category = Category {
        id: new_id(),
        name: new.name.trim().to_owned(),
        parent_id: new.parent_id.clone(),
        created_at: now_micros(),
    };
    // The parent must be this tenant's: the insert selects nothing otherwise.
    let inserted = sql("INSERT INTO categories (tenant_id, id, name, parent_id, created_at) \
                        SELECT $1, $2, $3, $4, $5 \
                        WHERE $4 IS NULL OR EXISTS (SELECT 1 FROM categories WHERE tenant_id = $1 AND id = $4)")
    .bind(tenant_id)
    .bind(category.id.clone())
    .bind(category.name.clone())
    .bind(category.parent_id.clone())
    .bind(category.created_at)
    .execute(state.db.writer())
    .await?;
    if inserted == 0 {
        return Err(ApiError::field("parent_id", "no such category"));
    }
    Ok(category)
}

pub async fn list_categories(
    state: &AppState,
    tenant_id: &TenantId,
    page: &Page,
) -> ApiResult<(Vec<Category>, Option<String>)> {
    let mut q = SqlBuilder::new(
        "SELECT id, name, parent_id, created_at FROM categories WHERE tenant_id = ",
    );
    q.bind(tenant_id)
        .after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q
        .build()
        .fetch_all_as::<_, Category>(state.db.reader())
        .await?;
    Ok(page.finish(rows, |c| Cursor {
        created_at: c.created_at,
        id: c.id.clone(),
    }))
}

// ---------------------------------------------------------------------------
// Products

/// Inserts variants of one product in one statement; returns them as shown.
async fn insert_variants(
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
        .map(|v| inventory::Movement::new(&v.id, v.stock, "initial", (v.stock, now), None))
        .collect();
    inventory::record_movements(tx, tenant_id, &initial).await?;
    Ok(shown)
}

async fn insert_images(
    tx: &mut Tx,
    tenant_id: &TenantId,
    product_id: &str,
    images: &[NewImage],
) -> ApiResult<Vec<Image>> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let mut shown = Vec::with_capacity(images.len());
    let mut q = SqlBuilder::new(
        "INSERT INTO product_images (tenant_id, id, product_id, url, alt, position) VALUES ",
    );
    for (i, image) in images.iter().enumerate() {
        let shown_image = Image {
            id: new_id(),
            url: image.url.trim().to_owned(),
            alt: image.alt.clone(),
        };
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(tenant_id)
            .push(", ")
            .bind(shown_image.id.clone())
            .push(", ")
            .bind(product_id)
            .push(", ")
            .bind(shown_image.url.clone())
            .push(", ")
            .bind(shown_image.alt.clone())
            .push(", ")
            .bind(i as i64)
            .push(")");
        shown.push(shown_image);
    }
    q.one_shot();
    q.build().execute(&mut **tx).await?;
    Ok(shown)
}

async fn category_exists(tx: &mut Tx, tenant_id: &TenantId, category_id: &str) -> ApiResult<bool> {
    Ok(
        sql("SELECT 1 FROM categories WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(category_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// Creates a product with its variants, images and initial stock movements
/// in one transaction, in a fixed number of statements.
pub async fn create_product(
    state: &AppState,
    tenant_id: &TenantId,
    new: NewProduct,
) -> ApiResult<Product> {
    let now = now_micros();
    let id = new_id();
    let options: Vec<ProductOption> = new
        .options
        .unwrap_or_default()
        .into_iter()
        .map(|o| ProductOption {
            name: o.name.trim().to_owned(),
            values: o.values.iter().map(|v| v.trim().to_owned()).collect(),
        })
        .collect();
    let mut tx = state.db.begin().await?;
    if let Some(category_id) = &new.category_id
        && !category_exists(&mut tx, tenant_id, category_id).await?
    {
        return Err(ApiError::field("category_id", "no such category"));
    }
    let active = new.active.unwrap_or(true);
    let min_margin_bp = new.min_margin_bp.unwrap_or(0);
    let description = new.description.as_deref().map(str::trim).map(str::to_owned);
    sql("INSERT INTO products (tenant_id, id, name, description, category_id, active, min_margin_bp, options, created_at, updated_at, search_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)")
    .bind(tenant_id)
    .bind(id.clone())
    .bind(new.name.trim())
    .bind(description.clone())
    .bind(new.category_id.clone())
    .bind(active)
    .bind(min_margin_bp)
    .bind(serde_json::to_string(&options).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .bind(search::fold(new.name.trim()))
    .execute(&mut *tx)
    .await?;
    let variants = insert_variants(&mut tx, tenant_id, &id, 0, &new.variants, now).await?;
    let images = insert_images(
        &mut tx,
        tenant_id,
        &id,
        new.images.as_deref().unwrap_or_default(),
    )
    .await?;
    commit(tx).await?;
    let mut product = Product {
        id,
        name: new.name.trim().to_owned(),
        description,
        category_id: new.category_id,
        active,
        min_margin_bp,
        price_min: 0,
        price_max: 0,
        stock_total: 0,
        variant_count: 0,
        options: Some(options),
        variants: None,
        images: Some(images),
        created_at: now,
        updated_at: now,
    };
    aggregate(&mut product, &variants);
    product.variants = Some(variants);
    Ok(product)
}

const PRODUCT_COLUMNS: &str = "p.id, p.name, p.description, p.category_id, p.active, p.min_margin_bp, p.options, \
     p.created_at, p.updated_at";

/// Per-product aggregates as correlated subqueries: each is an index probe
/// on `variants_product`, bounded by the page size.
const PRODUCT_AGGREGATES: &str = ", \
     (SELECT MIN(v.price) FROM variants v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id) AS price_min, \
     (SELECT MAX(v.price) FROM variants v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id) AS price_max, \
     (SELECT CAST(SUM(v.stock) AS BIGINT) FROM variants v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id) AS stock_total, \
     (SELECT COUNT(*) FROM variants v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id) AS variant_count";

/// `AND <the product's name contains needle, case-insensitively>`, on the
/// name as folded by [`search::fold`].
/// SQLite answers from the FTS5 trigram index (three characters or more;
/// shorter needles have no trigram and walk the tenant's products);
/// PostgreSQL from the `pg_trgm` GIN index on `(tenant_id, search_name)`.
fn name_contains(q: &mut SqlBuilder, backend: Backend, needle: &str) {
    if backend == Backend::Postgres {
        q.push(" AND p.search_name LIKE ")
            .bind(search::contains_pattern(needle))
            .push(" ESCAPE '\\'");
        return;
    }
    let folded = search::fold(needle);
    if folded.chars().count() >= 3 {
        // One FTS5 phrase: a trigram substring match, with no operator
        // characters to escape but the double quote. The index holds the
        // folded name, so it narrows; the folded column below decides.
        let phrase = format!("\"{}\"", folded.replace('"', "\"\""));
        q.push(
            " AND p.id IN (SELECT s.product_id FROM product_search s WHERE s.tenant_id = p.tenant_id \
             AND s.rid IN (SELECT rowid FROM products_fts WHERE products_fts MATCH ",
        )
        .bind(phrase)
        .push("))");
    }
    q.push(" AND instr(p.search_name, ")
        .bind(folded)
        .push(") > 0");
}

#[derive(Debug, Default)]
pub struct ProductFilter {
    pub category_id: Option<String>,
    pub active: Option<bool>,
    pub q: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
}

pub async fn list_products(
    state: &AppState,
    tenant_id: &TenantId,
    filter: &ProductFilter,
    page: &Page,
    with_variants: bool,
) -> ApiResult<(Vec<Product>, Option<String>)> {
    let mut q = SqlBuilder::new(&format!(
        "SELECT {PRODUCT_COLUMNS}{PRODUCT_AGGREGATES} FROM products p WHERE p.tenant_id = "
    ));
    q.bind(tenant_id).push(" AND p.deleted_at IS NULL");
    if let Some(category_id) = &filter.category_id {
        q.push(" AND p.category_id = ").bind(category_id.as_str());
    }
    if let Some(active) = filter.active {
        q.push(" AND p.active = ").bind(active);
    }
    let searching = filter.q.as_deref().is_some_and(|n| !n.is_empty());
    if let Some(needle) = filter.q.as_deref().filter(|n| !n.is_empty()) {
        name_contains(&mut q, state.db.backend(), needle);
    }
    if filter.min_price.is_some() || filter.max_price.is_some() {
        q.push(" AND EXISTS (SELECT 1 FROM variants v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id");
        if let Some(min) = filter.min_price {
            q.push(" AND v.price >= ").bind(min);
        }
        if let Some(max) = filter.max_price {
            q.push(" AND v.price <= ").bind(max);
        }
        q.push(")");
    }
    q.after_cursor("p.", page.after.as_ref())
        .push(" ORDER BY p.created_at DESC, p.id DESC LIMIT ")
        .bind(page.fetch_limit());
    let mut statement = q.build();
    if searching {
        // How selective a pattern is decides the best plan: plan each run.
        statement = statement.planned_per_run();
    }
    let rows = statement
        .fetch_all_as::<_, ProductRow>(state.db.reader())
        .await?;
    let (rows, next) = page.finish(rows, |p| Cursor {
        created_at: p.created_at,
        id: p.id.clone(),
    });
    let mut products: Vec<Product> = rows.into_iter().map(ProductRow::into_product).collect();
    if with_variants && !products.is_empty() {
        let ids: Vec<&str> = products.iter().map(|p| p.id.as_str()).collect();
        let mut by_product = variants_of_products(state.db.reader(), tenant_id, &ids).await?;
        for p in &mut products {
            p.variants = Some(by_product.remove(&p.id).unwrap_or_default());
        }
    }
    Ok((products, next))
}

/// The variants of several products, in one statement, in client order.
async fn variants_of_products<'c, E>(
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

async fn product_row<'c, E>(ex: E, tenant_id: &TenantId, id: &str) -> ApiResult<Option<ProductRow>>
where
    E: Executor<'c, Database = Any>,
{
    // Aggregates are computed from the variants by the caller.
    Ok(sql_owned(format!(
        "SELECT {PRODUCT_COLUMNS}, NULL AS price_min, NULL AS price_max, NULL AS stock_total, NULL AS variant_count \
         FROM products p WHERE p.tenant_id = $1 AND p.id = $2 AND p.deleted_at IS NULL"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional_as::<_, ProductRow>(ex)
    .await?)
}

/// A product with options, variants and images: three statements.
pub async fn product_detail(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
) -> ApiResult<Product> {
    product_detail_on(state.db.reader(), tenant_id, id).await
}

/// [`product_detail`] from a chosen pool (the primary, right after a write).
async fn product_detail_on(
    db: &sqlx::AnyPool,
    tenant_id: &TenantId,
    id: &str,
) -> ApiResult<Product> {
    let row = product_row(db, tenant_id, id)
        .await?
        .ok_or_else(product_not_found)?;
    let variants = variants_of_products(db, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    let images = sql("SELECT id, url, alt FROM product_images WHERE tenant_id = $1 AND product_id = $2 ORDER BY position")
        .bind(tenant_id)
        .bind(id)
        .fetch_all(db)
        .await?
        .iter()
        .map(|r| {
            Ok(Image {
                id: sqlx::Row::try_get(r, "id")?,
                url: sqlx::Row::try_get(r, "url")?,
                alt: sqlx::Row::try_get(r, "alt")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let options = row.options();
    let mut product = row.into_product();
    aggregate(&mut product, &variants);
    product.options = Some(options);
    product.variants = Some(variants);
    product.images = Some(images);
    Ok(product)
}

/// 404 if the product is missing; else validates and applies the patch.
pub async fn patch_product(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    patch: impl FnOnce() -> ApiResult<ProductPatch>,
) -> ApiResult<Product> {
    let mut tx = state.db.begin().await?;
    product_row(&mut *tx, tenant_id, id)
        .await?
        .ok_or_else(product_not_found)?;
    let patch = patch()?;
    check_product_patch(&patch).finish()?;
    if let Some(Some(category_id)) = &patch.category_id
        && !category_exists(&mut tx, tenant_id, category_id).await?
    {
        return Err(ApiError::field("category_id", "no such category"));
    }
    let mut q = SqlBuilder::new("UPDATE products SET updated_at = ");
    q.bind(now_micros());
    if let Some(Some(name)) = &patch.name {
        q.push(", name = ").bind(name.trim());
        q.push(", search_name = ").bind(search::fold(name.trim()));
    }
    if let Some(description) = &patch.description {
        q.push(", description = ")
            .bind(description.as_deref().map(str::trim));
    }
    if let Some(category_id) = &patch.category_id {
        q.push(", category_id = ").bind(category_id.clone());
    }
    if let Some(active) = patch.active {
        q.push(", active = ").bind(active);
    }
    if let Some(bp) = patch.min_margin_bp {
        q.push(", min_margin_bp = ").bind(bp);
    }
    q.push(" WHERE tenant_id = ")
        .bind(tenant_id)
        .push(" AND id = ")
        .bind(id);
    q.build().execute(&mut *tx).await?;
    if let Some(images) = &patch.images {
        sql("DELETE FROM product_images WHERE tenant_id = $1 AND product_id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_images(&mut tx, tenant_id, id, images).await?;
    }
    commit(tx).await?;
    product_detail_on(state.db.writer(), tenant_id, id).await
}

pub async fn delete_product(state: &AppState, tenant_id: &TenantId, id: &str) -> ApiResult<()> {
    let now = now_micros();
    let mut tx = state.db.begin().await?;
    let deleted = sql("UPDATE products SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if deleted == 0 {
        return Err(product_not_found());
    }
    // Its variants go with it, freeing their SKUs.
    sql("UPDATE variants SET deleted_at = $3 WHERE tenant_id = $1 AND product_id = $2")
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    commit(tx).await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Variants

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

/// Fills the folded search name of products written before it existed
/// (migration 0005), in batches, one transaction each. Returns how many.
pub async fn backfill_search(db: &crate::platform::db::Db) -> Result<u64, sqlx::Error> {
    let mut filled = 0u64;
    loop {
        let rows: Vec<(String, String, String)> =
            sql("SELECT tenant_id, id, name FROM products WHERE search_name IS NULL LIMIT 500")
                .fetch_all_as(db.writer())
                .await?;
        if rows.is_empty() {
            return Ok(filled);
        }
        let mut tx = db.begin().await?;
        for (tenant_id, id, name) in &rows {
            sql("UPDATE products SET search_name = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant_id.as_str())
                .bind(id.as_str())
                .bind(search::fold(name))
                .execute(&mut *tx)
                .await?;
        }
        commit(tx).await?;
        filled = filled.saturating_add(rows.len() as u64);
    }
}
