//! Customer counts, for the dashboard.

use sqlx::{Any, Executor, Row};

use crate::platform::db::sql;
use crate::platform::tenant::TenantId;

/// How many live (not deleted) customers a tenant has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerCounts {
    pub total: i64,
    /// Of those, created at or after the instant asked about.
    pub created_since: i64,
}

/// One statement; both counts walk the partial index
/// `customers_tenant_created` (live customers by creation).
pub async fn customer_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    since_micros: i64,
) -> Result<CustomerCounts, sqlx::Error> {
    let row = sql(
        "SELECT (SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND deleted_at IS NULL) AS total, \
         (SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND deleted_at IS NULL AND created_at >= $2) AS created_since",
    )
    .bind(tenant_id)
    .bind(since_micros)
    .fetch_one(ex)
    .await?;
    Ok(CustomerCounts {
        total: row.try_get("total")?,
        created_since: row.try_get("created_since")?,
    })
}
