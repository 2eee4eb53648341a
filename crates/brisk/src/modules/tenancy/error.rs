//! [`TenancyError`]: why a sign-up, login, token or user operation failed.
//! Only this file knows how each failure is answered over HTTP.

use crate::platform::http::error::{ApiError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A user (of any tenant) already has this e-mail.
    #[error("a user with this e-mail already exists")]
    EmailTaken,
    /// Unknown e-mail or wrong password: the answer does not say which.
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    /// The refresh token is unknown, expired, revoked or already used.
    #[error("the refresh token is invalid, expired or already used")]
    RefreshRejected,
    /// A valid access token whose user was removed since.
    #[error("the token's user no longer exists")]
    UserGone,
    /// A valid access token whose tenant was removed since.
    #[error("the token's tenant no longer exists")]
    TenantGone,
    /// A stored user's role is not one Brisk knows.
    #[error("user {user_id}: the stored role {role:?} is not a role")]
    CorruptRole { user_id: String, role: String },
    /// Hashing or checking a password could not run.
    #[error("the password could not be hashed or checked")]
    PasswordHashing,
    /// Signing an access token failed (the signer logs why).
    #[error("an access token could not be signed")]
    TokenSigning,
}

impl From<TenancyError> for ApiError {
    fn from(err: TenancyError) -> Self {
        match err {
            TenancyError::Database(e) => ApiError::from(e),
            TenancyError::EmailTaken => ApiError::conflict(
                ErrorCode::EmailTaken,
                "a user with this e-mail already exists",
            ),
            TenancyError::InvalidCredentials => {
                ApiError::new(ErrorCode::InvalidCredentials, "wrong e-mail or password")
            }
            TenancyError::RefreshRejected => {
                ApiError::unauthorized("the refresh token is invalid, expired or already used")
            }
            TenancyError::UserGone => ApiError::unauthorized("the token's user no longer exists"),
            TenancyError::TenantGone => {
                ApiError::unauthorized("the token's tenant no longer exists")
            }
            TenancyError::CorruptRole { user_id, role } => {
                tracing::error!(table = "users", id = %user_id, role = %role, "stored role is not a role");
                ApiError::internal()
            }
            TenancyError::PasswordHashing => {
                tracing::error!("hashing or checking a password could not run");
                ApiError::internal()
            }
            TenancyError::TokenSigning => ApiError::internal(),
        }
    }
}
