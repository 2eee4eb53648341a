//! Categories: a tenant's tree of product categories.

use super::error::CatalogError;
use super::model::*;
use crate::platform::cache::tags;
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{SqlBuilder, Tx, sql};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;
use crate::platform::validation::Invalid;

pub async fn create_category(
    state: &AppState,
    tenant_id: &TenantId,
    new: NewCategory,
) -> Result<Category, CatalogError> {
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
        return Err(Invalid::field("parent_id", "no such category").into());
    }
    state.cache.invalidate(&[tags::catalog(tenant_id)]);
    Ok(category)
}

pub async fn list_categories(
    state: &AppState,
    tenant_id: &TenantId,
    page: &Page,
) -> Result<(Vec<Category>, Option<String>), CatalogError> {
    let mut q = SqlBuilder::new(
        "SELECT id, name, parent_id, created_at FROM categories WHERE tenant_id = ",
    );
    q.bind(tenant_id)
        .after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q
        .build()
        .fetch_all_as::<_, Category>(state.db.current_reader())
        .await?;
    Ok(page.finish(rows, |c| Cursor {
        created_at: c.created_at,
        id: c.id.clone(),
    }))
}

pub(super) async fn category_exists(
    tx: &mut Tx,
    tenant_id: &TenantId,
    category_id: &str,
) -> Result<bool, CatalogError> {
    Ok(
        sql("SELECT 1 FROM categories WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(category_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}
