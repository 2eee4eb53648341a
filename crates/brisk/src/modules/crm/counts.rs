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

/// One statement: one walk of the covering index `customers_live_count`
/// (tenant, deletion, creation; migration 0009) for both counts. The
/// partial index by creation would need a table read per row for
/// `deleted_at`, and SQLite rather scans the table when one tenant holds
/// most of it.
pub async fn customer_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    since_micros: i64,
) -> Result<CustomerCounts, sqlx::Error> {
    let row = sql(
        "SELECT COUNT(*) AS total, COUNT(CASE WHEN created_at >= $2 THEN 1 END) AS created_since \
         FROM customers WHERE tenant_id = $1 AND deleted_at IS NULL",
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
