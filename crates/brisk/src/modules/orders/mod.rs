//! Orders: placement, the order lifecycle, and order reads.
//!
//! Owns `orders`, `order_items` and `order_status_history`. Invariants:
//! placing an order is one transaction that prices the items (pricing
//! engine, or the amounts a quotation agreed), takes every variant's stock
//! with one conditional atomic update, debits the wallet for wallet
//! payments with a conditional atomic update, and writes the order, its
//! items, its first history entry, the stock movements, the wallet entry
//! and an `order.created` outbox event — all or nothing, in the same number
//! of statements for 1 item as for 500. The reads (customer, variants,
//! prices) come first with no lock held. On PostgreSQL every write is then
//! one data-modifying statement: it locks and checks the contended rows in
//! a fixed order (the variants by id, then the wallet, each only once the
//! check before passed), takes the tenant's order counter last, and writes
//! only if every check passed, answering a refusal (out of stock,
//! insufficient funds) with nothing written. Without an idempotency key to
//! record beside it, the statement is a transaction of its own, shared by
//! group commit with the tenant's other orders that arrive meanwhile
//! (`platform::group_commit`): the rows stay locked for the statement and
//! the batch's commit, never for a round trip to Brisk. Another module's
//! write that must commit with the order (a converted quotation's move)
//! joins the statement as a [`JoinedWrite`]: its check is the first, its
//! write is guarded like the others. On SQLite (one
//! writer) the same writes are a few statements in one transaction. The lifecycle ([`OrderStatus`]) is
//! `placed → paid → shipped → delivered`, `placed | paid → cancelled`; a
//! status moves only from the state it was read in (conditional update), so
//! of two racing moves exactly one wins, and every move publishes
//! `order.status_changed` ([`OrderStatusChanged`]: the move and the order
//! after it) in its transaction. Cancelling puts the stock back and refunds
//! a wallet payment in the same transaction. [`sale_lines`] gives the sales
//! aggregates (the `dashboard` module) the figures and costs of many
//! orders in one statement. [`replay_history`] writes a back-dated history
//! in bulk for `brisk seed`, by the same rules (see `replay.rs`). The store
//! fails with
//! [`OrderError`]; `error.rs` alone maps it onto the API's codes.

mod error;
mod lifecycle;
mod model;
mod replay;
mod routes;
mod sales;
mod stale_reads;
mod store;

pub use error::OrderError;
pub use lifecycle::{OrderStatus, PaymentMethod};
pub use model::{Order, OrderStatusChanged};
pub use replay::{PastOrder, PastStep, ReplayCounts, ReplayError, replay_history};
pub use routes::router;
pub use sales::{SaleLine, sale_lines};
pub use stale_reads::StaleReads;
pub use store::{
    JoinedWrite, LinePrices, NewOrder, change_status_in, place_converted_order, place_order,
    place_order_in,
};
