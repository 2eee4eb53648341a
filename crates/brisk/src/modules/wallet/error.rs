//! What the wallet store can refuse or fail with, and the one mapping of
//! it onto the API's errors.

use crate::platform::http::error::{ApiError, ErrorCode};
use crate::platform::idempotency::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// A debit larger than the balance; nothing was written.
    #[error("the customer's wallet holds less than the order total of {amount}")]
    InsufficientFunds { amount: i64 },
    /// A credit or refund that would take the balance past `i64::MAX`.
    #[error("the balance would exceed the largest amount Brisk can hold")]
    BalanceOverflow,
    #[error(transparent)]
    Idempotency(#[from] RecordError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<WalletError> for ApiError {
    fn from(err: WalletError) -> Self {
        match err {
            WalletError::InsufficientFunds { .. } => {
                ApiError::new(ErrorCode::InsufficientFunds, err.to_string())
            }
            // The amount asked for is what cannot be added: a credit's
            // `amount` field, or (on a cancellation) the order's total.
            WalletError::BalanceOverflow => ApiError::field("amount", err.to_string()),
            WalletError::Idempotency(e) => ApiError::from(e),
            // Keeps the 503 (busy, unavailable) versus 500 split.
            WalletError::Database(e) => ApiError::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_answers() {
        let short = ApiError::from(WalletError::InsufficientFunds { amount: 250 });
        assert_eq!(short.status.as_u16(), 409);
        assert_eq!(short.code, ErrorCode::InsufficientFunds);
        assert_eq!(
            short.detail,
            "the customer's wallet holds less than the order total of 250"
        );
        let overflow = ApiError::from(WalletError::BalanceOverflow);
        assert_eq!(overflow.status.as_u16(), 422);
        assert_eq!(overflow.code, ErrorCode::ValidationFailed);
        assert_eq!(overflow.errors.len(), 1);
        assert_eq!(overflow.errors[0].field, "amount");
        assert_eq!(
            overflow.errors[0].message,
            "the balance would exceed the largest amount Brisk can hold"
        );
    }

    #[test]
    fn database_errors_keep_503_versus_500() {
        let gone = ApiError::from(WalletError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(gone.code, ErrorCode::Unavailable);
        let bug = ApiError::from(WalletError::Database(sqlx::Error::RowNotFound));
        assert_eq!(bug.code, ErrorCode::Internal);
        let taken = ApiError::from(WalletError::Idempotency(RecordError::TakenOver));
        assert_eq!(taken.code, ErrorCode::Unavailable);
    }
}
