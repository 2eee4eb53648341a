//! Inventory: stock levels and their movements.
//!
//! Owns the `stock` column of `variants`, the `stock_movements` table and
//! the stock rules, [`MAX_STOCK`] among them (the catalog checks a new
//! variant's initial stock against it). Invariants: stock never goes below
//! zero — every change is one conditional atomic `UPDATE … WHERE stock +
//! delta >= 0` (never read-then-write), and writes its movement row, with
//! the `stock_after` that update produced, in the same transaction. The
//! movements of a variant sum to its stock. An adjustment may not raise the
//! stock above `MAX_STOCK`; a cancellation may (its stock must be able to
//! come back).
//!
//! Refusals are [`StockError`]s; `error.rs` alone decides their HTTP
//! answers. Inventory calls no other module.

mod error;
mod routes;
mod store;

pub use error::StockError;
pub use routes::router;
pub use store::{
    Applied, Level, MAX_STOCK, Movement, STOCK_ENOUGH_PG, STOCK_SHORT_IDS_PG, StockTake, levels,
    lock_variants, out_of_stock_for, push_stock_check_pg, push_take_stock_pg, record_movements,
    record_movements_in_bulk, return_stock, set_levels, take_stock,
};
