//! Products: create, read, list, change and delete, with their images.
//! Every read runs a fixed number of statements: a product page is one
//! statement (two with its variants), a product's detail three.

use super::categories::category_exists;
use super::error::CatalogError;
use super::model::*;
use super::variants::{insert_variants, new_variant, variants_of_products};
use crate::platform::cache::tags;
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{Backend, Db, SqlBuilder, Tx, commit, sql, sql_owned};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::search;
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;
use crate::platform::validation::Invalid;
use sqlx::{Any, Executor};

async fn insert_images(
    tx: &mut Tx,
    tenant_id: &TenantId,
    product_id: &str,
    images: &[NewImage],
) -> Result<Vec<Image>, CatalogError> {
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

/// Creates a product with its variants, images and initial stock movements
/// in one transaction, in a fixed number of statements.
pub async fn create_product(
    state: &AppState,
    tenant_id: &TenantId,
    new: NewProduct,
) -> Result<Product, CatalogError> {
    create_product_at(state, tenant_id, new, now_micros()).await
}

/// [`create_product`] at the caller's clock (`brisk seed` back-dates the
/// catalog before the order history it seeds, so stock ledgers read in
/// time order).
pub async fn create_product_at(
    state: &AppState,
    tenant_id: &TenantId,
    new: NewProduct,
    now: i64,
) -> Result<Product, CatalogError> {
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
        return Err(Invalid::field("category_id", "no such category").into());
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
    let variants: Vec<Variant> = new
        .variants
        .iter()
        .map(|v| new_variant(v, &id, now))
        .collect();
    insert_variants(&mut tx, tenant_id, &id, 0, &variants, now).await?;
    let images = insert_images(
        &mut tx,
        tenant_id,
        &id,
        new.images.as_deref().unwrap_or_default(),
    )
    .await?;
    commit(tx).await?;
    state
        .cache
        .invalidate(&tags::products_changed(tenant_id, [id.as_str()]));
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
fn name_contains(q: &mut SqlBuilder, backend: Backend, tenant_id: &TenantId, needle: &str) {
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
        // The tenant is bound, not taken from the outer row: correlated,
        // SQLite re-ran the FTS query for every product of the page's walk
        // (9 s for a name matching one product of 10,000; 9 ms bound).
        let phrase = format!("\"{}\"", folded.replace('"', "\"\""));
        q.push(" AND p.id IN (SELECT s.product_id FROM product_search s WHERE s.tenant_id = ")
            .bind(tenant_id)
            .push(" AND s.rid IN (SELECT rowid FROM products_fts WHERE products_fts MATCH ")
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
) -> Result<(Vec<Product>, Option<String>), CatalogError> {
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
        name_contains(&mut q, state.db.backend(), tenant_id, needle);
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
        .fetch_all_as::<_, ProductRow>(state.db.current_reader())
        .await?;
    let (rows, next) = page.finish(rows, |p| Cursor {
        created_at: p.created_at,
        id: p.id.clone(),
    });
    let mut products: Vec<Product> = rows.into_iter().map(ProductRow::into_product).collect();
    if with_variants && !products.is_empty() {
        let ids: Vec<&str> = products.iter().map(|p| p.id.as_str()).collect();
        let mut by_product =
            variants_of_products(state.db.current_reader(), tenant_id, &ids).await?;
        for p in &mut products {
            p.variants = Some(by_product.remove(&p.id).unwrap_or_default());
        }
    }
    Ok((products, next))
}

async fn product_row<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Option<ProductRow>, CatalogError>
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
) -> Result<Product, CatalogError> {
    product_detail_on(state.db.current_reader(), tenant_id, id).await
}

/// [`product_detail`] from a chosen pool (the primary, right after a write).
async fn product_detail_on(
    db: &sqlx::AnyPool,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Product, CatalogError> {
    let row = product_row(db, tenant_id, id)
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
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
    let options = row.options()?;
    let mut product = row.into_product();
    aggregate(&mut product, &variants);
    product.options = Some(options);
    product.variants = Some(variants);
    product.images = Some(images);
    Ok(product)
}

/// Whether a live product exists, on the primary (it decides the answer to
/// a write).
pub async fn product_exists(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
) -> Result<bool, CatalogError> {
    Ok(
        sql("SELECT 1 FROM products WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(state.db.writer())
            .await?
            .is_some(),
    )
}

/// The public view of a live, active product, or `None` when it is
/// missing, deleted or inactive: two statements. The caller caches it
/// until the product's next write, so it reads where every commit is seen
/// (`current_reader`), never a lagging replica.
pub async fn public_product(
    db: &Db,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Option<PublicProduct>, CatalogError> {
    let Some(row) = sql(
        "SELECT p.id, p.name, p.description, \
         (SELECT MIN(v.price) FROM variants v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id) AS price_min, \
         (SELECT MAX(v.price) FROM variants v WHERE v.tenant_id = p.tenant_id AND v.product_id = p.id) AS price_max \
         FROM products p WHERE p.tenant_id = $1 AND p.id = $2 AND p.deleted_at IS NULL AND p.active = 1",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db.current_reader())
    .await?
    else {
        return Ok(None);
    };
    let images = sql("SELECT id, url, alt FROM product_images WHERE tenant_id = $1 AND product_id = $2 ORDER BY position")
        .bind(tenant_id)
        .bind(id)
        .fetch_all(db.current_reader())
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
    Ok(Some(PublicProduct {
        id: sqlx::Row::try_get(&row, "id")?,
        name: sqlx::Row::try_get(&row, "name")?,
        description: sqlx::Row::try_get(&row, "description")?,
        price_min: sqlx::Row::try_get::<Option<i64>, _>(&row, "price_min")?.unwrap_or(0),
        price_max: sqlx::Row::try_get::<Option<i64>, _>(&row, "price_max")?.unwrap_or(0),
        images,
    }))
}

/// Not found if the product is missing; else validates and applies the
/// patch.
pub async fn patch_product(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    patch: ProductPatch,
) -> Result<Product, CatalogError> {
    let mut tx = state.db.begin().await?;
    product_row(&mut *tx, tenant_id, id)
        .await?
        .ok_or(CatalogError::ProductNotFound)?;
    check_product_patch(&patch).finish()?;
    if let Some(Some(category_id)) = &patch.category_id
        && !category_exists(&mut tx, tenant_id, category_id).await?
    {
        return Err(Invalid::field("category_id", "no such category").into());
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
    state
        .cache
        .invalidate(&tags::products_changed(tenant_id, [id]));
    product_detail_on(state.db.writer(), tenant_id, id).await
}

pub async fn delete_product(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
) -> Result<(), CatalogError> {
    let now = now_micros();
    let mut tx = state.db.begin().await?;
    let deleted = sql("UPDATE products SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if deleted == 0 {
        return Err(CatalogError::ProductNotFound);
    }
    // Its variants go with it, freeing their SKUs.
    sql("UPDATE variants SET deleted_at = $3 WHERE tenant_id = $1 AND product_id = $2")
        .bind(tenant_id)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    commit(tx).await?;
    state
        .cache
        .invalidate(&tags::products_changed(tenant_id, [id]));
    Ok(())
}

/// Rows per backfill statement: 500 rows of three values stay far below
/// either backend's limit on bound values.
const BACKFILL_BATCH: usize = 500;

/// Fills the folded search name of products written before it existed
/// (migration 0005): per batch, one statement reads up to
/// [`BACKFILL_BATCH`] rows and one writes them all. Returns how many.
pub async fn backfill_search(db: &crate::platform::db::Db) -> Result<u64, sqlx::Error> {
    let mut filled = 0u64;
    loop {
        let rows: Vec<(String, String, String)> =
            sql("SELECT tenant_id, id, name FROM products WHERE search_name IS NULL LIMIT $1")
                .bind(BACKFILL_BATCH as i64)
                .fetch_all_as(db.writer())
                .await?;
        if rows.is_empty() {
            return Ok(filled);
        }
        let mut q = SqlBuilder::new("WITH folded (tenant_id, id, search_name) AS (VALUES ");
        for (i, (tenant_id, id, name)) in rows.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(tenant_id.as_str())
                .push(", ")
                .bind(id.as_str())
                .push(", ")
                .bind(search::fold(name))
                .push(")");
        }
        // `search_name IS NULL` again: a row renamed since it was read has
        // its folded name from that write, which is newer than this one.
        q.push(
            ") UPDATE products SET search_name = folded.search_name FROM folded \
             WHERE products.tenant_id = folded.tenant_id AND products.id = folded.id \
             AND products.search_name IS NULL",
        )
        .one_shot();
        q.build().execute(db.writer()).await?;
        filled = filled.saturating_add(rows.len() as u64);
        if rows.len() < BACKFILL_BATCH {
            // A short batch was the last one.
            return Ok(filled);
        }
    }
}
