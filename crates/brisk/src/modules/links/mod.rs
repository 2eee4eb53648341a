//! Share links: a public code (`/s/{code}`) that shows one product of a
//! tenant to anyone holding it, and how often it was opened.
//!
//! Owns the `share_links` table. Invariants: a code is at least 8 URL-safe
//! random characters and unique across tenants (the public route knows no
//! tenant); a link always points at a product of its own tenant (the
//! foreign key includes `tenant_id`); `expires_at`, when set, was in the
//! future when it was written, and is compared with the clock at every
//! public request, never cached as a verdict. The public answer is served
//! from the cache (`public`): the link's state under `share_link(code)`,
//! the product's public view under that and `product(tenant, id)`; the
//! API's list and detail under `share_links(tenant)`. A link write
//! invalidates `share_link(code)` and `share_links(tenant)` after it
//! commits, catalog writes invalidate the product's tag. Clicks (only 200
//! answers) are counted in memory per node and written in batches by
//! `clicks`, as increments, so several nodes add up; each flush that wrote
//! invalidates its tenants' `share_links`; counts whose write failed are
//! kept for the next flush, and the last flush runs on graceful stop.
//!
//! Calls `catalog` (whether a product exists, its public view). Failures
//! are [`LinkError`]s; `error.rs` alone maps them to HTTP.

mod clicks;
mod error;
mod public;
mod routes;
mod store;

pub use clicks::{FLUSH_EVERY, flush_until_stopped};
pub use error::LinkError;
pub use routes::router;
pub use store::{NewLink, create as create_link};
