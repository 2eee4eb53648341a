//! CRM: the tenant's customers — who they are, their status, their standing
//! discount and their tags — and fast search over them.
//!
//! Owns the `customers` and `customer_tags` tables (and, on SQLite, the
//! `customer_search` / `customers_fts` trigram index that triggers keep in
//! step with `customers`). Invariants: `search_name`/`search_email` hold
//! the name and e-mail folded by `platform::search::fold`, written with
//! them; `status` is `lead`, `active` or `inactive`; `discount_bp` is
//! within 0–10000; a customer's tags are distinct and `customer_tags`
//! holds exactly the tags of live customers, written in the same
//! transaction as the customer; deletion is soft (`deleted_at`), because
//! orders and quotations keep referring to the customer, but a deleted
//! customer is gone from every list and lookup.
//! Stored tags that do not parse are [`CrmError::CorruptData`], never an
//! empty list. Other modules reach customers only through
//! [`customer_discount`] (a customer's standing discount, for pricing) and
//! [`contacts`] (e-mail addresses, for notifications) and
//! [`customer_counts`] (for the dashboard); CRM calls no other module. Failures are
//! [`CrmError`]s; `error.rs` alone maps them to HTTP.

pub mod contacts;
mod counts;
mod error;
mod routes;
mod store;

pub use counts::{CustomerCounts, customer_counts};
pub use error::CrmError;
pub use routes::router;
pub use store::{
    CustomerRef, CustomerStatus, NewCustomer, backfill_search, create as create_customer,
    customer_discount,
};
