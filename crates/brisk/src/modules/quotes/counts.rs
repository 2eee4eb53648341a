//! Quotation counts by the status they read as, for the dashboard.

use sqlx::{Any, Executor, Row};

use crate::platform::db::sql;
use crate::platform::tenant::TenantId;

/// Quotations of a tenant as they read today.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotationCounts {
    /// Drafts not past `valid_until`.
    pub draft: i64,
    /// Sent ones not past `valid_until`.
    pub sent: i64,
    /// Accepted ones (whatever their date: they still convert).
    pub accepted: i64,
    /// Σ `total` of the counted sent ones.
    pub open_value: i64,
}

/// One statement over the index `quotations_status`. `today` is
/// `YYYY-MM-DD` (UTC): a draft or sent quotation with `valid_until` before
/// it reads as expired and counts in neither (the rule of
/// `QuotationStatus::as_of`). An overflowing sum is the database's error,
/// never a wrapped figure.
pub async fn quotation_counts<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    today: &str,
) -> Result<QuotationCounts, sqlx::Error> {
    let rows = sql(
        "SELECT status, COUNT(*) AS n, CAST(COALESCE(SUM(total), 0) AS BIGINT) AS value FROM quotations \
         WHERE tenant_id = $1 AND (status = 'accepted' OR (status IN ('draft', 'sent') AND valid_until >= $2)) \
         GROUP BY status",
    )
    .bind(tenant_id)
    .bind(today)
    .fetch_all(ex)
    .await?;
    let mut counts = QuotationCounts::default();
    for row in rows {
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        match status.as_str() {
            "draft" => counts.draft = n,
            "sent" => {
                counts.sent = n;
                counts.open_value = row.try_get("value")?;
            }
            _ => counts.accepted = n,
        }
    }
    Ok(counts)
}
