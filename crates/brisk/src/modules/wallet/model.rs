//! Wallet shapes: the ledger entry and the answer to a credit, which is
//! also its `wallet.credited` event.

use serde::Serialize;
use sqlx::FromRow;

use crate::platform::clock;

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct WalletTransaction {
    pub id: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub reference: Option<String>,
    pub order_id: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
}

pub const TRANSACTION_FIELDS: &[&str] = &[
    "id",
    "type",
    "amount",
    "balance_after",
    "reference",
    "order_id",
    "created_at",
];

/// The answer to a credit, and the data of its `wallet.credited` event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Credited {
    pub customer_id: String,
    pub transaction: WalletTransaction,
    pub balance: i64,
}
