//! Wallets: a prepaid balance per customer, and its ledger.
//!
//! Owns `wallets` and `wallet_transactions`. Invariants: the balance equals
//! credits + refunds − debits over the ledger and is never negative; every
//! change is one conditional atomic statement (`… WHERE balance >= amount`
//! for debits, an overflow guard for credits) writing its ledger entry, with
//! the `balance_after` it produced, in the same transaction.

mod routes;
mod store;

pub use routes::router;
pub use store::{debit, refund};
