//! [`CatalogError`]: why a catalog operation failed. Only this file knows
//! how each failure is answered over HTTP.

use crate::modules::inventory::StockError;
use crate::platform::http::error::{ApiError, ErrorCode};
use crate::platform::validation::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// No such product of the tenant, or it was deleted.
    #[error("no such product")]
    ProductNotFound,
    /// No such variant of the tenant, or its product was deleted.
    #[error("no such variant")]
    VariantNotFound,
    /// Another live variant of the tenant has this SKU.
    #[error("a variant with this SKU already exists")]
    DuplicateSku,
    /// Well-formed input that breaks a catalog rule, each field named.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A stored JSON column does not parse. Never replaced by a default:
    /// a variant whose tiers are lost would be sold at its list price.
    #[error("{table} {id}: the stored {column} do not parse: {source}")]
    CorruptData {
        table: &'static str,
        id: String,
        column: &'static str,
        source: serde_json::Error,
    },
    /// Recording a new variant's initial stock failed.
    #[error(transparent)]
    Stock(#[from] StockError),
}

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::Database(e) => ApiError::from(e),
            CatalogError::ProductNotFound => ApiError::not_found("no such product"),
            CatalogError::VariantNotFound => ApiError::not_found("no such variant"),
            CatalogError::DuplicateSku => ApiError::conflict(
                ErrorCode::DuplicateSku,
                "a variant with this SKU already exists",
            ),
            CatalogError::Invalid(invalid) => ApiError::from(invalid),
            CatalogError::CorruptData {
                table,
                id,
                column,
                source,
            } => {
                tracing::error!(table, id = %id, column, error = %source, "stored data does not parse");
                ApiError::internal()
            }
            CatalogError::Stock(e) => ApiError::from(e),
        }
    }
}
