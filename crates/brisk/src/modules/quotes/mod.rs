//! Quotations: priced offers to a customer, and their lifecycle
//! ([`QuotationStatus`]) `draft → sent → accepted | rejected`,
//! `accepted → converted` (into an order).
//!
//! Owns `quotations` and `quotation_items`. Invariants: lines are priced by
//! the pricing engine, or at an explicit `unit_price` that must keep the
//! product's minimum margin (else 422 `margin_too_low`); a draft or sent
//! quotation past `valid_until` reads as `expired` (never stored) and moves
//! no further, while an accepted one converts whatever its date; only a
//! stored draft is edited; every move is a conditional update from the
//! status just read, so racing moves cannot both win; a stored status the
//! lifecycle does not know is corrupt data (500), never defaulted;
//! accepting publishes `quotation.accepted` ([`QuotationAccepted`]: the
//! quotation as read back) in its transaction; conversion marks the
//! quotation converted and places its order — at the quotation's prices —
//! all or nothing (on PostgreSQL in the order's one statement, which the
//! tenant's other orders share a commit with). [`quotation_counts`]
//! counts them as the dashboard shows them. The store fails with
//! [`QuoteError`]; `error.rs` alone maps it onto the API's codes.

mod counts;
mod error;
mod lifecycle;
mod model;
mod routes;
mod store;

pub use counts::{QuotationCounts, quotation_counts};
pub use error::QuoteError;
pub use lifecycle::QuotationStatus;
pub use model::{Quotation, QuotationAccepted};
pub use routes::router;
pub use store::{QuotationInput, convert, create as create_quotation, transition};
