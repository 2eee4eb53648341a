//! Dashboard and sales report: `GET /api/v1/dashboard` and
//! `GET /api/v1/reports/sales`, one module because both read the same
//! sales aggregates.
//!
//! Owns `sales_daily` (per tenant and UTC day: orders, revenue, cost of the
//! orders created that day and not cancelled), `product_sales_monthly` (per
//! tenant, UTC month and product: quantity and line totals, for the top
//! products), `order_status_counts` (every order by current status) and
//! `sales_backfilled_events` (migration bookkeeping, see below).
//!
//! **Why aggregates kept by the dispatcher.** Order placement must never
//! queue on a per-tenant row for the dashboard's sake, so placement writes
//! nothing here. The aggregates follow from the `order.created` and
//! `order.status_changed` outbox events instead, in the dispatcher's own
//! transaction ([`SalesAggregates`]): the dispatcher is already serialized
//! across nodes, so this adds no contention anywhere, and each event's
//! effect is committed with the event's "dispatched" mark — exactly once,
//! even if a node dies mid-batch. A new order adds 1 order, its `total` and
//! Σ `unit_cost × quantity` to its UTC creation day, its lines to its
//! month's products, and 1 to its initial status; a move shifts one count
//! between statuses, and a cancellation takes the order's figures back from
//! its creation day and month. Deltas are summed in Rust with checked
//! arithmetic and written with one multi-row upsert per table; the orders'
//! figures come from `orders::sale_lines` (one statement per batch, costs
//! included: the event does not carry them).
//!
//! **Reads.** The report is one primary-key range of `sales_daily` (≤ 366
//! rows by day); the dashboard is six small indexed statements run
//! concurrently (this month's days, status counts, top products, and
//! counts from `crm`, `catalog` and `quotes`). Both are cached whole
//! (`platform::cache`): the dashboard under its tenant and the UTC date
//! (a new day or month, and quotations expiring overnight, change the key),
//! tagged `dashboard(tenant)`, read through `Cache::get_or_refresh`: while
//! orders stream in, one reader recomputes in the background and the
//! others get bytes whose computation began less than 250 ms ago, instead
//! of all of them waiting for each recomputation; a report under its tenant, range and
//! grouping, tagged `sales_month(tenant, m)` for every month it covers.
//!
//! **Freshness.** Once a dispatch that touched the aggregates commits, the
//! consumer's `after_commit` invalidates the dashboard of every tenant in
//! the batch and the report months of the orders added or cancelled, here
//! and (through the cache's fan-out) on every node. Customer, quotation
//! and stock writes invalidate `dashboard(tenant)` in their own routes.
//!
//! **Backfill.** Migration 0009 fills the aggregates from the orders as
//! they are at migration time, and lists in `sales_backfilled_events` the
//! order events still waiting in the outbox then: the backfill already
//! counts their effects, so the consumer drops each of them once instead
//! of counting it twice.
//!
//! Failures are [`DashboardError`]s; `error.rs` alone maps them to HTTP.

mod aggregates;
mod error;
mod periods;
mod reads;
mod routes;

pub use aggregates::SalesAggregates;
pub use error::DashboardError;
pub use routes::router;

use std::sync::Arc;

use crate::platform::dispatch::Consumer;
use crate::platform::state::AppState;

/// The outbox consumer that keeps the sales aggregates.
pub fn consumer(state: &AppState) -> Arc<dyn Consumer> {
    Arc::new(SalesAggregates::new(state.cache.clone()))
}
