//! What the sales aggregates (the `dashboard` module) read of orders: the
//! figures of many orders, of any tenants, in one statement inside the
//! dispatch transaction.

use crate::platform::db::{SqlBuilder, Tx};
use crate::platform::tenant::TenantId;

/// One line of an order, with the order's own figures repeated.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SaleLine {
    pub tenant_id: TenantId,
    pub order_id: String,
    /// The order's creation, micros UTC.
    pub created_at: i64,
    /// The order's `total`.
    pub order_total: i64,
    pub product_id: String,
    pub product_name: String,
    pub quantity: i64,
    pub line_total: i64,
    /// The variant's cost when the order was placed, per unit.
    pub unit_cost: i64,
}

/// Every line of the named orders (by `(tenant, order id)`), grouped by
/// order in position order. Unknown orders are absent. One statement
/// whatever the number of orders (a dispatch batch names at most a few
/// hundred); the primary keys serve each pair.
pub async fn sale_lines(
    tx: &mut Tx,
    orders: &[(TenantId, String)],
) -> Result<Vec<SaleLine>, sqlx::Error> {
    if orders.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = SqlBuilder::new("WITH wanted (tenant_id, id) AS (VALUES ");
    for (i, (tenant_id, id)) in orders.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(tenant_id)
            .push(", ")
            .bind(id.as_str())
            .push(")");
    }
    q.push(
        ") SELECT o.tenant_id, o.id AS order_id, o.created_at, o.total AS order_total, i.product_id, i.product_name, \
         i.quantity, i.line_total, i.unit_cost FROM wanted w \
         JOIN orders o ON o.tenant_id = w.tenant_id AND o.id = w.id \
         JOIN order_items i ON i.tenant_id = o.tenant_id AND i.order_id = o.id \
         ORDER BY o.tenant_id, o.id, i.position",
    );
    q.one_shot();
    q.build().fetch_all_as(&mut **tx).await
}
