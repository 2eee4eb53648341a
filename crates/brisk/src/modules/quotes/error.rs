//! What the quotation store can refuse or fail with, and the one mapping
//! of it onto the API's errors.

use super::lifecycle::QuotationStatus;
use crate::modules::crm::CrmError;
use crate::modules::orders::OrderError;
use crate::modules::pricing::PricingError;
use crate::platform::http::error::{ApiError, ErrorCode};
use crate::platform::validation::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error("no such quotation")]
    NotFound,
    /// The lifecycle has no such move from the status the quotation reads
    /// as (see `QuotationStatus::can_move_to`).
    #[error("a quotation that is {from} cannot be {to}")]
    InvalidTransition {
        from: QuotationStatus,
        to: QuotationStatus,
    },
    /// An edit of anything but a stored draft; `status` is what it reads as.
    #[error("a quotation that is {status} cannot be edited")]
    NotEditable { status: QuotationStatus },
    /// The move was allowed from the status read, but a racing move (or
    /// midnight) changed it before the conditional update.
    #[error("a quotation that is changed meanwhile cannot be {to}")]
    ChangedMeanwhile { to: QuotationStatus },
    /// Explicit prices below their product's minimum margin: one field per
    /// line at fault.
    #[error("an explicit price is below the product's minimum margin")]
    MarginTooLow(Invalid),
    /// A stored row whose status is none of the lifecycle's.
    #[error("quotation {id} has the unknown status {status:?}")]
    CorruptStatus { id: String, status: String },
    /// Placing the converted quotation's order (stock, funds, prices).
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Pricing the lines (unknown or inactive variants, amounts).
    #[error(transparent)]
    Pricing(#[from] PricingError),
    /// Reading the customer.
    #[error(transparent)]
    Customer(#[from] CrmError),
}

impl From<QuoteError> for ApiError {
    fn from(err: QuoteError) -> Self {
        match err {
            QuoteError::NotFound => ApiError::new(ErrorCode::NotFound, err.to_string()),
            QuoteError::InvalidTransition { .. }
            | QuoteError::NotEditable { .. }
            | QuoteError::ChangedMeanwhile { .. } => {
                ApiError::new(ErrorCode::InvalidTransition, err.to_string())
            }
            QuoteError::MarginTooLow(Invalid(lines)) => ApiError::new(
                ErrorCode::MarginTooLow,
                "an explicit price is below the product's minimum margin",
            )
            .with_errors(lines),
            QuoteError::CorruptStatus { .. } => {
                tracing::error!(error = %err, "corrupt quotation row");
                ApiError::internal()
            }
            QuoteError::Order(e) => ApiError::from(e),
            // Keeps the 503 (busy, unavailable) versus 500 split.
            QuoteError::Database(e) => ApiError::from(e),
            QuoteError::Pricing(e) => ApiError::from(e),
            QuoteError::Customer(e) => ApiError::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QuotationStatus::*;
    use super::*;
    use crate::platform::validation::FieldError;

    #[test]
    fn refusals_keep_their_answers() {
        let cases = [
            (QuoteError::NotFound, 404, "not_found", "no such quotation"),
            (
                QuoteError::InvalidTransition {
                    from: Expired,
                    to: Accepted,
                },
                409,
                "invalid_transition",
                "a quotation that is expired cannot be accepted",
            ),
            (
                QuoteError::NotEditable { status: Sent },
                409,
                "invalid_transition",
                "a quotation that is sent cannot be edited",
            ),
            (
                QuoteError::ChangedMeanwhile { to: Sent },
                409,
                "invalid_transition",
                "a quotation that is changed meanwhile cannot be sent",
            ),
            (
                QuoteError::CorruptStatus {
                    id: "q1".into(),
                    status: "lost".into(),
                },
                500,
                "internal",
                "an unexpected error occurred; it has been logged",
            ),
        ];
        for (err, status, code, detail) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.status.as_u16(), status, "{detail}");
            assert_eq!(api.code, code, "{detail}");
            assert_eq!(api.detail, detail);
            assert!(api.errors.is_empty());
        }
    }

    #[test]
    fn a_margin_too_low_lists_each_line() {
        let lines = vec![FieldError::new(
            "items[1].unit_price",
            "margin 10 bp is below",
        )];
        let api = ApiError::from(QuoteError::MarginTooLow(Invalid(lines.clone())));
        assert_eq!(api.status.as_u16(), 422);
        assert_eq!(api.code, ErrorCode::MarginTooLow);
        assert_eq!(
            api.detail,
            "an explicit price is below the product's minimum margin"
        );
        assert_eq!(api.errors, lines);
    }

    #[test]
    fn orders_database_and_upstream_errors_keep_their_answers() {
        let gone = ApiError::from(QuoteError::Order(OrderError::NotFound));
        assert_eq!(gone.detail, "no such order");
        let busy = ApiError::from(QuoteError::Database(sqlx::Error::PoolTimedOut));
        assert_eq!(busy.code, ErrorCode::Unavailable);
        let customer = ApiError::from(QuoteError::Customer(CrmError::CustomerNotFound));
        assert_eq!(customer.code, ErrorCode::NotFound);
    }
}
