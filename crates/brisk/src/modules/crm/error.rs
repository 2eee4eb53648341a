//! [`CrmError`]: why a customer operation failed. Only this file knows how
//! each failure is answered over HTTP.

use crate::platform::http::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// No such customer of the tenant, or it was deleted.
    #[error("no such customer")]
    CustomerNotFound,
    /// A stored JSON column does not parse; never read as a default.
    #[error("{table} {id}: the stored {column} do not parse: {source}")]
    CorruptData {
        table: &'static str,
        id: String,
        column: &'static str,
        source: serde_json::Error,
    },
}

impl From<CrmError> for ApiError {
    fn from(err: CrmError) -> Self {
        match err {
            CrmError::Database(e) => ApiError::from(e),
            CrmError::CustomerNotFound => ApiError::not_found("no such customer"),
            CrmError::CorruptData {
                table,
                id,
                column,
                source,
            } => {
                tracing::error!(table, id = %id, column, error = %source, "stored data does not parse");
                ApiError::internal()
            }
        }
    }
}
