//! What the order store can refuse or fail with, and the one mapping of it
//! onto the API's errors.

use super::lifecycle::OrderStatus;
use crate::modules::crm::CrmError;
use crate::modules::inventory::StockError;
use crate::modules::pricing::PricingError;
use crate::modules::wallet::WalletError;
use crate::platform::http::error::{ApiError, ErrorCode};
use crate::platform::idempotency::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("no such order")]
    NotFound,
    /// The lifecycle has no such move, or a racing move changed the status
    /// first.
    #[error("an order that is {from} cannot become {to}")]
    InvalidTransition { from: OrderStatus, to: OrderStatus },
    /// A stored row whose status is none of the lifecycle's.
    #[error("order {id} has the unknown status {status:?}")]
    CorruptStatus { id: String, status: String },
    /// The wallet payment or refund (insufficient funds, overflow).
    #[error(transparent)]
    Wallet(#[from] WalletError),
    #[error(transparent)]
    Idempotency(#[from] RecordError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Taking or returning stock (out of stock, above the cap).
    #[error(transparent)]
    Stock(#[from] StockError),
    /// Pricing the cart (unknown, inactive or repeated variants, amounts).
    #[error(transparent)]
    Pricing(#[from] PricingError),
    /// Reading the customer.
    #[error(transparent)]
    Customer(#[from] CrmError),
    /// The quotation an order converts was no longer accepted when the
    /// order's statement locked it (a racing conversion or move).
    #[error("a quotation that is changed meanwhile cannot be converted")]
    QuotationChanged,
}

impl From<OrderError> for ApiError {
    fn from(err: OrderError) -> Self {
        match err {
            OrderError::NotFound => ApiError::new(ErrorCode::NotFound, err.to_string()),
            OrderError::InvalidTransition { .. } => {
                ApiError::new(ErrorCode::InvalidTransition, err.to_string())
            }
            OrderError::CorruptStatus { .. } => {
                tracing::error!(error = %err, "corrupt order row");
                ApiError::internal()
            }
            OrderError::Wallet(e) => ApiError::from(e),
            OrderError::Idempotency(e) => ApiError::from(e),
            // Keeps the 503 (busy, unavailable) versus 500 split.
            OrderError::Database(e) => ApiError::from(e),
            OrderError::Stock(e) => ApiError::from(e),
            OrderError::Pricing(e) => ApiError::from(e),
            OrderError::Customer(e) => ApiError::from(e),
            OrderError::QuotationChanged => {
                ApiError::new(ErrorCode::InvalidTransition, err.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::wallet::WalletError;

    #[test]
    fn refusals_keep_their_answers() {
        let gone = ApiError::from(OrderError::NotFound);
        assert_eq!(
            (gone.status.as_u16(), gone.code),
            (404, ErrorCode::NotFound)
        );
        assert_eq!(gone.detail, "no such order");
        let moved = ApiError::from(OrderError::InvalidTransition {
            from: OrderStatus::Delivered,
            to: OrderStatus::Cancelled,
        });
        assert_eq!(
            (moved.status.as_u16(), moved.code),
            (409, ErrorCode::InvalidTransition)
        );
        assert_eq!(
            moved.detail,
            "an order that is delivered cannot become cancelled"
        );
        let short = ApiError::from(OrderError::Wallet(WalletError::InsufficientFunds {
            amount: 7,
        }));
        assert_eq!(short.code, ErrorCode::InsufficientFunds);
    }

    #[test]
    fn corrupt_rows_and_database_errors_are_5xx() {
        let corrupt = ApiError::from(OrderError::CorruptStatus {
            id: "o1".into(),
            status: "lost".into(),
        });
        assert_eq!(corrupt.code, ErrorCode::Internal);
        let busy = ApiError::from(OrderError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(busy.code, ErrorCode::Unavailable);
        let bug = ApiError::from(OrderError::Database(sqlx::Error::RowNotFound));
        assert_eq!(bug.code, ErrorCode::Internal);
    }

    #[test]
    fn other_modules_refusals_keep_their_own_answers() {
        let stock = crate::modules::inventory::StockError::VariantNotFound;
        assert_eq!(
            ApiError::from(OrderError::Stock(stock)),
            ApiError::from(crate::modules::inventory::StockError::VariantNotFound)
        );
        let customer = CrmError::CustomerNotFound;
        assert_eq!(
            ApiError::from(OrderError::Customer(customer)).code,
            ErrorCode::NotFound
        );
    }
}
