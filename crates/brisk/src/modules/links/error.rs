//! [`LinkError`]: why a share-link operation failed. Only this file knows
//! how each failure is answered over HTTP.

use crate::platform::http::error::{ApiError, ErrorCode};
use crate::platform::validation::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// No such link of the tenant (by id), or no link with this code.
    #[error("no such share link")]
    LinkNotFound,
    /// The link or its product cannot be shown (inactive, deleted): for the
    /// public, the same as a code that does not exist.
    #[error("nothing to show here")]
    NothingToShow,
    /// The link's `expires_at` has passed.
    #[error("this share link has expired")]
    Expired,
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Fresh codes kept colliding with existing ones (never expected).
    #[error("could not pick an unused code")]
    NoFreeCode,
    /// A cached link state does not parse (never read as a default).
    #[error("a cached share link state does not parse: {0}")]
    CorruptState(serde_json::Error),
}

impl From<LinkError> for ApiError {
    fn from(err: LinkError) -> Self {
        match err {
            LinkError::Database(e) => ApiError::from(e),
            LinkError::LinkNotFound => ApiError::not_found("no such share link"),
            LinkError::NothingToShow => ApiError::not_found("no such share link"),
            LinkError::Expired => ApiError::new(ErrorCode::Expired, "this share link has expired"),
            LinkError::Invalid(invalid) => ApiError::from(invalid),
            LinkError::NoFreeCode => {
                tracing::error!("could not pick an unused share-link code");
                ApiError::internal()
            }
            LinkError::CorruptState(e) => {
                tracing::error!(error = %e, "a cached share link state does not parse");
                ApiError::internal()
            }
        }
    }
}
