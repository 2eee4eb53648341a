//! Quotations: priced offers to a customer, and their lifecycle
//! `draft → sent → accepted | rejected`, `accepted → converted` (into an
//! order).
//!
//! Owns `quotations` and `quotation_items`. Invariants: lines are priced by
//! the pricing engine, or at an explicit `unit_price` that must keep the
//! product's minimum margin (else 422 `margin_too_low`); a draft or sent
//! quotation past `valid_until` reads as `expired` and moves no further;
//! every move is a conditional update from the status just read, so racing
//! moves cannot both win; conversion marks the quotation converted and
//! places its order — at the quotation's prices — in one transaction.

mod routes;
mod store;

pub use routes::router;
