//! [`PricingError`]: why a cart could not be priced. Only this file knows
//! how each failure is answered over HTTP. (An amount out of range inside
//! the engine is [`super::engine::Overflow`]; a cart reports it as an
//! invalid line.)

use crate::modules::catalog::CatalogError;
use crate::platform::http::error::ApiError;
use crate::platform::validation::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Reading the cart's variants failed (corrupt stored tiers among them).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The cart is refused: each unknown, unsellable or overflowing line
    /// (and an unknown customer) named.
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

impl From<PricingError> for ApiError {
    fn from(err: PricingError) -> Self {
        match err {
            PricingError::Database(e) => ApiError::from(e),
            PricingError::Catalog(e) => ApiError::from(e),
            PricingError::Invalid(invalid) => ApiError::from(invalid),
        }
    }
}
