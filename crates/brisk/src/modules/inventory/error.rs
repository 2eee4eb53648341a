//! [`StockError`]: why a stock change was refused. Only this file knows how
//! each refusal is answered over HTTP.

use super::store::MAX_STOCK;
use crate::platform::http::error::{ApiError, ErrorCode};
use crate::platform::validation::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// No such variant (or its product was deleted).
    #[error("no such variant")]
    VariantNotFound,
    /// Taking the stock would leave it below zero; nothing was written.
    /// `shortages` names each line (or the adjustment) that is short.
    #[error("{detail}")]
    OutOfStock {
        detail: String,
        shortages: Vec<FieldError>,
    },
    /// An adjustment would take the stock above [`MAX_STOCK`].
    #[error("the stock would exceed {MAX_STOCK}")]
    AboveMaximum,
    /// Returning an order's stock would overflow a variant's count.
    #[error("returning the stock would overflow a variant's stock count")]
    ReturnOverflow,
}

impl From<StockError> for ApiError {
    fn from(err: StockError) -> Self {
        match err {
            StockError::Database(e) => ApiError::from(e),
            StockError::VariantNotFound => ApiError::not_found("no such variant"),
            StockError::OutOfStock { detail, shortages } => {
                ApiError::conflict(ErrorCode::OutOfStock, detail).with_errors(shortages)
            }
            StockError::AboveMaximum => {
                ApiError::field("delta", format!("would take the stock above {MAX_STOCK}"))
            }
            // Only an order's cancellation (a status change) returns stock.
            StockError::ReturnOverflow => ApiError::field(
                "status",
                "returning this order's stock would overflow a variant's stock count",
            ),
        }
    }
}
