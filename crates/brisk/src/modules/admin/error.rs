//! What the admin routes can refuse, and how each refusal is answered.

use crate::platform::http::error::{ApiError, ErrorCode, FieldError};
use crate::platform::jobs::STATUSES;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("status must be one of {}", STATUSES.join(", "))]
    UnknownStatus,
    #[error("no such job")]
    JobNotFound,
    #[error("only a dead job can be retried; this one is {status}")]
    JobNotDead { status: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<AdminError> for ApiError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::UnknownStatus => {
                let message = err.to_string();
                ApiError::bad_request(format!("bad query parameter status: {message}")).with_errors(
                    vec![FieldError {
                        field: "status".into(),
                        message,
                    }],
                )
            }
            AdminError::JobNotFound => ApiError::not_found(err.to_string()),
            AdminError::JobNotDead { .. } => {
                ApiError::conflict(ErrorCode::InvalidTransition, err.to_string())
            }
            AdminError::Database(db) => ApiError::from(db),
        }
    }
}
