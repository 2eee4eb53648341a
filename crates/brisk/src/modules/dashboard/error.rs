//! [`DashboardError`]: why a dashboard or report read failed. Only this
//! file knows how each failure is answered over HTTP.

use crate::platform::http::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Another module's failure, already in the API's terms.
    #[error(transparent)]
    Module(#[from] ApiError),
    /// A sum of stored figures does not fit an i64: the stored data is
    /// wrong, never wrapped or clamped.
    #[error("the {0} do not fit a 64-bit integer")]
    Overflow(&'static str),
}

impl From<crate::modules::tenancy::TenancyError> for DashboardError {
    fn from(err: crate::modules::tenancy::TenancyError) -> Self {
        DashboardError::Module(err.into())
    }
}

impl From<DashboardError> for ApiError {
    fn from(err: DashboardError) -> Self {
        match err {
            DashboardError::Database(e) => ApiError::from(e),
            DashboardError::Module(e) => e,
            DashboardError::Overflow(what) => {
                tracing::error!(what, "sales figures overflow");
                ApiError::internal()
            }
        }
    }
}
