//! The low-stock count, for the dashboard.

use sqlx::{Any, Executor, Row};

use crate::platform::db::sql;
use crate::platform::tenant::TenantId;

/// How many active variants of active products have `stock <=
/// reorder_level`. One statement: the partial index `variants_low_stock`
/// holds exactly the live low variants, and each one's product is found by
/// primary key.
pub async fn low_stock_count<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
) -> Result<i64, sqlx::Error> {
    let row = sql("SELECT COUNT(*) AS n FROM variants v \
         JOIN products p ON p.tenant_id = v.tenant_id AND p.id = v.product_id \
         WHERE v.tenant_id = $1 AND v.low AND v.deleted_at IS NULL \
         AND v.active = 1 AND p.active = 1 AND p.deleted_at IS NULL")
    .bind(tenant_id)
    .fetch_one(ex)
    .await?;
    row.try_get("n")
}
