//! Inventory: stock levels and their movements.
//!
//! Owns the `stock` column of `variants` and the `stock_movements` table.
//! Invariants: stock never goes below zero — every change is one
//! conditional atomic `UPDATE … WHERE stock + delta >= 0` (never
//! read-then-write), and writes its movement row, with the `stock_after` that
//! update produced, in the same transaction. The movements of a variant sum
//! to its stock.

mod routes;
mod store;

pub use routes::router;
pub use store::{MAX_STOCK, Movement, lock_variants, record_movements, return_stock, take_stock};
