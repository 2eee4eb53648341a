//! Quotation shapes: rows as stored, the API's quotation and lines, and
//! the `quotation.accepted` event.

use serde::Serialize;
use sqlx::FromRow;

use super::error::QuoteError;
use super::lifecycle::QuotationStatus;
use crate::platform::clock;
use crate::platform::money::Money;

// A quotation line as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotationLine {
    #[serde(skip)]
    pub quotation_id: String,
    pub variant_id: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub discount: Money,
    pub line_total: Money,
    pub margin_bp: i64,
    pub margin_ok: bool,
    /// Whether `unit_price` was given by the request, not the engine: an
    /// edit keeps it, a re-pricing recomputes the others.
    #[serde(skip)]
    pub explicit_price: bool,
}

/// A `quotation_items` row: flags are stored as integers 0/1 (see
/// `platform::db`), and become booleans here, at the row boundary.
#[derive(Debug, Clone, FromRow)]
pub struct QuotationLineRow {
    pub quotation_id: String,
    pub variant_id: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub discount: Money,
    pub line_total: Money,
    pub margin_bp: i64,
    pub margin_ok: i64,
    pub explicit_price: i64,
}

impl From<QuotationLineRow> for QuotationLine {
    fn from(row: QuotationLineRow) -> Self {
        QuotationLine {
            quotation_id: row.quotation_id,
            variant_id: row.variant_id,
            sku: row.sku,
            quantity: row.quantity,
            unit_price: row.unit_price,
            discount: row.discount,
            line_total: row.line_total,
            margin_bp: row.margin_bp,
            margin_ok: row.margin_ok != 0,
            explicit_price: row.explicit_price != 0,
        }
    }
}

/// A `quotations` row. Its status is text as stored; [`QuotationRow::status`]
/// reads it, refusing any the lifecycle does not know.
#[derive(Debug, Clone, FromRow)]
pub struct QuotationRow {
    pub id: String,
    pub number: String,
    pub status: String,
    pub customer_id: String,
    pub valid_until: String,
    pub notes: Option<String>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    pub order_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const QUOTATION_COLUMNS: &str = "id, number, status, customer_id, valid_until, notes, subtotal, discount_total, total, order_id, created_at, updated_at";

impl QuotationRow {
    /// The stored status: a row with any other is corrupt, never defaulted.
    pub fn status(&self) -> Result<QuotationStatus, QuoteError> {
        QuotationStatus::parse_stored(&self.status).ok_or_else(|| QuoteError::CorruptStatus {
            id: self.id.clone(),
            status: self.status.clone(),
        })
    }

    /// The status the quotation reads as on `today` (`YYYY-MM-DD`).
    pub fn status_as_of(&self, today: &str) -> Result<QuotationStatus, QuoteError> {
        Ok(self.status()?.as_of(&self.valid_until, today))
    }

    pub fn into_quotation(
        self,
        items: Vec<QuotationLine>,
        today: &str,
    ) -> Result<Quotation, QuoteError> {
        Ok(Quotation {
            status: self.status_as_of(today)?,
            id: self.id,
            number: self.number,
            customer_id: self.customer_id,
            items,
            subtotal: self.subtotal,
            discount_total: self.discount_total,
            total: self.total,
            valid_until: self.valid_until,
            notes: self.notes,
            order_id: self.order_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Quotation {
    pub id: String,
    pub number: String,
    /// `draft`, `sent`, `accepted`, `rejected`, `converted`, or `expired`
    /// (a draft or sent quotation past `valid_until`).
    #[schema(value_type = String)]
    pub status: QuotationStatus,
    pub customer_id: String,
    pub items: Vec<QuotationLine>,
    pub subtotal: Money,
    pub discount_total: Money,
    pub total: Money,
    pub valid_until: String,
    pub notes: Option<String>,
    pub order_id: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

pub const QUOTATION_FIELDS: &[&str] = &[
    "id",
    "number",
    "status",
    "customer_id",
    "items",
    "subtotal",
    "discount_total",
    "total",
    "valid_until",
    "notes",
    "order_id",
    "created_at",
    "updated_at",
];

/// The `quotation.accepted` event, as its webhook will send it: the whole
/// quotation as `GET /quotations/{id}` answers it right after the
/// acceptance. `quotation_id`, `number`, `customer_id` and `total` repeat
/// the quotation's own for consumers that read only those.
#[derive(Debug, Clone, Serialize)]
pub struct QuotationAccepted {
    pub quotation_id: String,
    pub number: String,
    pub customer_id: String,
    pub total: Money,
    pub quotation: Quotation,
}

impl QuotationAccepted {
    pub fn new(quotation: Quotation) -> Self {
        QuotationAccepted {
            quotation_id: quotation.id.clone(),
            number: quotation.number.clone(),
            customer_id: quotation.customer_id.clone(),
            total: quotation.total,
            quotation,
        }
    }
}
