//! The dashboard and the sales report, computed: a fixed number of
//! statements each (the dashboard's run concurrently on the read pool),
//! sums checked in Rust.

use std::collections::BTreeMap;

use serde::Serialize;
use time::Date;

use super::aggregates::{self, TopProduct};
use super::error::DashboardError;
use super::periods::{self, GroupBy};
use crate::modules::{catalog, crm, quotes, tenancy};
use crate::platform::clock;
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

/// How many products the dashboard ranks.
pub const TOP_PRODUCTS: i64 = 5;

#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Sales {
    pub orders: i64,
    pub revenue: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct OrdersByStatus {
    pub placed: i64,
    pub paid: i64,
    pub shipped: i64,
    pub delivered: i64,
    pub cancelled: i64,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Customers {
    pub total: i64,
    pub new_this_month: i64,
}

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Quotations {
    pub draft: i64,
    pub sent: i64,
    pub accepted: i64,
    pub open_value: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    /// When these figures were computed (RFC 3339).
    pub as_of: String,
    pub today: Sales,
    pub month: Sales,
    pub orders_by_status: OrdersByStatus,
    pub customers: Customers,
    pub low_stock_variants: i64,
    pub top_products: Vec<TopProduct>,
    pub quotations: Quotations,
}

pub const DASHBOARD_FIELDS: &[&str] = &[
    "as_of",
    "today",
    "month",
    "orders_by_status",
    "customers",
    "low_stock_variants",
    "top_products",
    "quotations",
];

/// The dashboard of `tenant_id` on `today` (UTC): six statements.
pub async fn dashboard(
    state: &AppState,
    tenant_id: &TenantId,
    today: Date,
) -> Result<Dashboard, DashboardError> {
    let as_of = clock::rfc3339(clock::now_micros());
    // Cached until the next write: read what is committed, never a
    // lagging replica.
    let db = state.db.current_reader();
    let first = periods::first_of_month(today);
    let (today_text, first_text) = (clock::format_date(today), clock::format_date(first));
    let month = periods::month_of(today);
    let (days, statuses, top, customers, low_stock, quotations) = tokio::try_join!(
        aggregates::sales_days(db, tenant_id, &first_text, &today_text),
        aggregates::status_counts(db, tenant_id),
        aggregates::top_products(db, tenant_id, &month, TOP_PRODUCTS),
        crm::customer_counts(db, tenant_id, clock::start_of_day_micros(first)),
        catalog::low_stock_count(db, tenant_id),
        quotes::quotation_counts(db, tenant_id, &today_text),
    )?;
    let mut month_sales = Sales::default();
    let mut today_sales = Sales::default();
    for day in &days {
        month_sales.orders = month_sales
            .orders
            .checked_add(day.orders)
            .ok_or(DashboardError::Overflow("month's orders"))?;
        month_sales.revenue = month_sales
            .revenue
            .checked_add(day.revenue)
            .ok_or(DashboardError::Overflow("month's revenue"))?;
        if day.day == today_text {
            today_sales = Sales {
                orders: day.orders,
                revenue: day.revenue,
            };
        }
    }
    let mut by_status = OrdersByStatus::default();
    for (status, n) in statuses {
        match status.as_str() {
            "placed" => by_status.placed = n,
            "paid" => by_status.paid = n,
            "shipped" => by_status.shipped = n,
            "delivered" => by_status.delivered = n,
            "cancelled" => by_status.cancelled = n,
            other => tracing::warn!(status = other, "order_status_counts: an unknown status"),
        }
    }
    Ok(Dashboard {
        as_of,
        today: today_sales,
        month: month_sales,
        orders_by_status: by_status,
        customers: Customers {
            total: customers.total,
            new_this_month: customers.created_since,
        },
        low_stock_variants: low_stock,
        top_products: top,
        quotations: Quotations {
            draft: quotations.draft,
            sent: quotations.sent,
            accepted: quotations.accepted,
            open_value: quotations.open_value,
        },
    })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub orders: i64,
    pub revenue: i64,
    pub cost: i64,
    /// `revenue − cost`.
    pub margin: i64,
}

impl Figures {
    fn add(&mut self, orders: i64, revenue: i64, cost: i64) -> Result<(), DashboardError> {
        self.orders = self
            .orders
            .checked_add(orders)
            .ok_or(DashboardError::Overflow("orders"))?;
        self.revenue = self
            .revenue
            .checked_add(revenue)
            .ok_or(DashboardError::Overflow("revenue"))?;
        self.cost = self
            .cost
            .checked_add(cost)
            .ok_or(DashboardError::Overflow("costs"))?;
        self.margin = self
            .revenue
            .checked_sub(self.cost)
            .ok_or(DashboardError::Overflow("margin"))?;
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SalesReport {
    pub currency: String,
    pub from: String,
    pub to: String,
    /// `day` or `month`.
    pub group_by: String,
    pub rows: Vec<ReportRow>,
    pub totals: Figures,
}

pub const REPORT_FIELDS: &[&str] = &["currency", "from", "to", "group_by", "rows", "totals"];

/// The sales report over a checked range: the tenant's currency (kept in
/// memory after its first read) and one range of `sales_daily`.
pub async fn sales_report(
    state: &AppState,
    tenant_id: &TenantId,
    from: Date,
    to: Date,
    group_by: GroupBy,
) -> Result<SalesReport, DashboardError> {
    let currency = tenancy::currency(state, tenant_id).await?;
    let (from_text, to_text) = (clock::format_date(from), clock::format_date(to));
    let days =
        aggregates::sales_days(state.db.current_reader(), tenant_id, &from_text, &to_text).await?;
    let mut by_period: BTreeMap<String, Figures> = periods::periods(from, to, group_by)
        .into_iter()
        .map(|p| (p, Figures::default()))
        .collect();
    let mut totals = Figures::default();
    for day in &days {
        if let Some(f) = by_period.get_mut(periods::period_of(&day.day, group_by)) {
            f.add(day.orders, day.revenue, day.cost)?;
        }
        totals.add(day.orders, day.revenue, day.cost)?;
    }
    Ok(SalesReport {
        currency,
        from: from_text,
        to: to_text,
        group_by: group_by.as_str().to_owned(),
        // Periods as text sort oldest first.
        rows: by_period
            .into_iter()
            .map(|(period, figures)| ReportRow { period, figures })
            .collect(),
        totals,
    })
}
