//! Wallets: a prepaid balance per customer, and its ledger.
//!
//! Owns `wallets` and `wallet_transactions`. Invariants: the balance equals
//! credits + refunds − debits over the ledger and is never negative; every
//! change is one conditional atomic statement (`… WHERE balance >= amount`
//! for debits, an overflow guard for credits and refunds) writing its
//! ledger entry, with the `balance_after` it produced, in the same
//! transaction; a credit publishes `wallet.credited` (its answer,
//! [`Credited`]) in that transaction too. Debits and refunds run inside
//! the order's transaction and fail with [`WalletError`], which the order
//! carries; `error.rs` alone maps it onto the API's codes.

mod error;
mod model;
mod routes;
mod store;

pub use error::WalletError;
pub use model::Credited;
pub use routes::router;
pub use store::{
    FUNDS_ENOUGH_PG, Replayed, ReplayedEntry, credit, credit_at, debit, push_debit_pg,
    push_funds_check_pg, refund, replayed_wallets, write_replayed,
};
