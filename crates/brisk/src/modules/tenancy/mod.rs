//! Tenancy: tenants, their users, sign-up, login and token refresh.
//!
//! Owns the `tenants`, `users` and `refresh_tokens` tables. Invariants:
//! e-mails are unique across tenants (compared lower-cased); every tenant
//! has exactly one user at creation, its `owner`; a refresh token works once
//! — presenting it again revokes its whole family (the login it came from);
//! passwords are stored only as argon2id hashes, refresh tokens only as
//! SHA-256 hashes; a failed login does not say whether the e-mail exists.
//!
//! Other modules read only a tenant's [`currency`]; tenancy calls no other
//! module. Failures are [`TenancyError`]s; `error.rs` alone maps them to
//! HTTP.

mod error;
mod routes;
mod store;

pub use error::TenancyError;
pub use routes::router;
pub use store::{DemoLogin, NewTenant, create_demo_tenant, create_tenant, create_user, currency};
