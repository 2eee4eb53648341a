//! Order shapes.

use serde::Serialize;
use sqlx::FromRow;

use super::lifecycle::OrderStatus;
use crate::platform::clock;
use crate::platform::money::Money;

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct OrderItem {
    #[serde(skip)]
    pub order_id: String,
    pub variant_id: String,
    pub product_id: String,
    pub product_name: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub discount: Money,
    pub line_total: Money,
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct HistoryEntry {
    #[serde(skip)]
    pub id: String,
    pub status: String,
    pub note: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct OrderRow {
    pub id: String,
    pub number: String,
    pub status: String,
    pub customer_id: String,
    pub payment_method: String,
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    pub notes: Option<String>,
    pub quotation_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const ORDER_COLUMNS: &str = "id, number, status, customer_id, payment_method, subtotal, discount_total, total, notes, \
     quotation_id, created_at, updated_at";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Order {
    pub id: String,
    pub number: String,
    pub status: String,
    pub customer_id: String,
    pub payment_method: String,
    pub items: Vec<OrderItem>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    pub notes: Option<String>,
    pub quotation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_history: Option<Vec<HistoryEntry>>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

impl Order {
    /// The cached reads an order placed, moved or cancelled makes stale:
    /// the order reads, its wallet's (debit, refund), its products' stock
    /// (catalog pages and details) and the dashboard.
    pub fn stale_reads(&self, tenant_id: &crate::platform::tenant::TenantId) -> Vec<String> {
        crate::platform::cache::tags::order_changed(
            tenant_id,
            self.payment_method == "wallet",
            self.items.iter().map(|item| item.product_id.as_str()),
        )
    }
}

impl OrderRow {
    pub fn into_order(
        self,
        items: Vec<OrderItem>,
        status_history: Option<Vec<HistoryEntry>>,
    ) -> Order {
        Order {
            id: self.id,
            number: self.number,
            status: self.status,
            customer_id: self.customer_id,
            payment_method: self.payment_method,
            items,
            subtotal: self.subtotal,
            discount_total: self.discount_total,
            total: self.total,
            notes: self.notes,
            quotation_id: self.quotation_id,
            status_history,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The `order.status_changed` event, as its webhook will send it: the move
/// and its note, and the whole order as it reads after the move (as
/// `GET /orders/{id}` answers it). `order_id` and `number` repeat the
/// order's own for consumers that read only the move.
#[derive(Debug, Clone, Serialize)]
pub struct OrderStatusChanged {
    pub order_id: String,
    pub number: String,
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub note: Option<String>,
    pub order: Order,
}

/// The fields of an order in a list. A list item carries no
/// `status_history` (only the detail does), so a list cannot select it.
pub const ORDER_LIST_FIELDS: &[&str] = &[
    "id",
    "number",
    "status",
    "customer_id",
    "payment_method",
    "items",
    "subtotal",
    "discount_total",
    "total",
    "notes",
    "quotation_id",
    "created_at",
    "updated_at",
];

/// What the order detail adds to [`ORDER_LIST_FIELDS`].
pub const ORDER_DETAIL_FIELDS: &[&str] = &["status_history"];

pub const HISTORY_FIELDS: &[&str] = &["status", "note", "created_at"];

/// How many history entries the order detail embeds.
pub const HISTORY_IN_DETAIL: i64 = 20;

/// `SO-000042`.
pub fn order_number(n: i64) -> String {
    format!("SO-{n:06}")
}
