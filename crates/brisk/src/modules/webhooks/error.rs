//! The webhook module's errors, and their one mapping to the HTTP edge.

use crate::platform::http::error::ApiError;
use crate::platform::validation::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No live webhook with that id in this tenant (deleted ones included).
    #[error("no such webhook")]
    NotFound,
    /// Well-formed input that breaks a rule; names each field.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A stored row that cannot be read back (an `events` column that is not
    /// a JSON list of strings): a bug or a hand edit, never the client's.
    #[error("stored webhook {id} is corrupt: {why}")]
    Corrupt { id: String, why: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type WebhookResult<T> = Result<T, WebhookError>;

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::NotFound => ApiError::not_found("no such webhook"),
            WebhookError::Invalid(invalid) => invalid.into(),
            WebhookError::Corrupt { .. } => {
                tracing::error!(error = %err, "webhooks: corrupt stored data");
                ApiError::internal()
            }
            WebhookError::Database(db) => db.into(),
        }
    }
}
