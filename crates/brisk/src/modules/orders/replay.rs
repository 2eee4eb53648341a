//! Back-dated order history written in bulk (`brisk seed` at medium and
//! large scale): a timeline of placements and status moves replayed in
//! memory by the same rules [`place_order_in`](super::place_order_in) and
//! [`change_status_in`](super::change_status_in) apply, then written with
//! multi-row statements, and its events handed to the sales aggregates'
//! consumer directly (never through the outbox).
//!
//! Why it exists: the API's functions spend a round trip per statement, and
//! a million orders with their moves are about thirty million of them.
//! Why its rows are the API's: the prices come from the pricing engine
//! (`pricing::price_cart`), the stock and ledger figures from
//! `inventory::Level::apply` and `wallet::Replayed`, the numbers and times
//! from `db::advance_counter` — each the in-memory twin of the statement
//! the API runs, next to it in its module — and the seed's tests write the
//! same history both ways and compare every row's business data.
//!
//! Invariants:
//! - The database is the replay's alone (a fresh one being seeded): levels,
//!   balances and the counter are read once, replayed, and written back as
//!   figures.
//! - A step the API would refuse (unknown or inactive variant, short stock,
//!   short balance, a move the lifecycle forbids) fails the whole replay,
//!   as it fails the seed on the direct path; so does a take that would
//!   cross a reorder level, because the replay does not publish
//!   `stock.low`.
//! - One transaction writes all of the history's rows or none of them; the
//!   aggregates follow in a transaction per batch of events, as the
//!   dispatcher would commit them.

use std::collections::HashMap;

use super::error::OrderError;
use super::lifecycle::{OrderStatus, PaymentMethod};
use super::model::{HISTORY_IN_DETAIL, HistoryEntry, Order, OrderStatusChanged, order_number};
use super::store::{
    INSERTED_HISTORY_COLUMNS, INSERTED_ITEM_COLUMNS, INSERTED_ORDER_COLUMNS, items_of,
};
use crate::modules::catalog::VariantForSale;
use crate::modules::inventory::{self, Level, Movement};
use crate::modules::pricing::{self, CartItem};
use crate::modules::wallet::{self, Replayed, ReplayedEntry};
use crate::platform::clock::new_id;
use crate::platform::db::{self, Backend, JSON_ROWS_PER_STATEMENT, Tx, commit};
use crate::platform::dispatch::{Consumer, Event};
use crate::platform::outbox::{self, topic};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

/// Events per consumer call (and transaction): a dispatch batch's size.
const EVENTS_PER_BATCH: usize = 1_000;

/// An order of the history, as the seed drew it.
#[derive(Debug, Clone)]
pub struct PastOrder {
    pub id: String,
    pub customer_id: String,
    /// The customer's standing discount (as `crm` stores it).
    pub discount_bp: i64,
    pub items: Vec<CartItem>,
    pub payment_method: PaymentMethod,
}

/// One step of the timeline: the order's index in the list handed over.
#[derive(Debug, Clone, Copy)]
pub enum PastStep {
    Place(usize),
    Move(usize, OrderStatus),
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Refused(String),
}

impl From<pricing::PricingError> for ReplayError {
    fn from(err: pricing::PricingError) -> Self {
        ReplayError::Order(err.into())
    }
}

fn refused(message: String) -> ReplayError {
    ReplayError::Refused(message)
}

/// What a replay wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayCounts {
    pub placed: u64,
    pub moved: u64,
    pub cancelled: u64,
}

/// A placed order as the replay keeps it: the order as it reads now, its
/// whole history (oldest first) and its lines' unit costs.
struct Kept {
    order: Order,
    history: Vec<HistoryEntry>,
    unit_costs: Vec<i64>,
}

/// An event of the history, rebuilt into its payload only when handed over.
#[derive(Debug, Clone, Copy)]
enum Fact {
    /// `order.created` of order `k`.
    Created { k: usize, at: i64 },
    /// `order.status_changed` of order `k`: its `entries`-th history entry.
    Moved {
        k: usize,
        from: OrderStatus,
        to: OrderStatus,
        entries: usize,
        at: i64,
    },
}

/// Replays `timeline` (sorted by time) over `orders` for `tenant_id`, writes
/// the result in one transaction, and hands every event to `aggregates`.
/// `progress` is told, as it goes, how many orders were replayed
/// (`"orders"`) and then how many events the aggregates took (`"events"`,
/// one per step of the timeline).
pub async fn replay_history(
    state: &AppState,
    tenant_id: &TenantId,
    orders: &[PastOrder],
    timeline: &[(i64, PastStep)],
    aggregates: &dyn Consumer,
    progress: &mut (dyn FnMut(&'static str, u64) + Send),
) -> Result<ReplayCounts, ReplayError> {
    let mut tx = state.db.begin().await?;

    // What the API reads per order, read once.
    let mut variant_ids: Vec<&str> = orders
        .iter()
        .flat_map(|o| o.items.iter().map(|i| i.variant_id.as_str()))
        .collect();
    variant_ids.sort_unstable();
    variant_ids.dedup();
    let mut for_sale: HashMap<String, VariantForSale> = HashMap::new();
    let mut levels: HashMap<String, Level> = HashMap::new();
    for chunk in variant_ids.chunks(500) {
        let items: Vec<CartItem> = chunk
            .iter()
            .map(|id| CartItem {
                variant_id: (*id).to_owned(),
                quantity: 1,
                unit_price: None,
            })
            .collect();
        for_sale.extend(pricing::load_variants(&mut *tx, tenant_id, &items).await?);
        levels.extend(inventory::levels(&mut *tx, tenant_id, chunk).await?);
    }
    let mut wallets = wallet::replayed_wallets(&mut *tx, tenant_id).await?;
    let mut counter = db::counter(&mut tx, tenant_id, "orders").await?;

    // The replay.
    let mut kept: Vec<Option<Kept>> = (0..orders.len()).map(|_| None).collect();
    let mut movements: Vec<Movement> = Vec::new();
    let mut ledger: Vec<ReplayedEntry> = Vec::new();
    let mut facts: Vec<Fact> = Vec::with_capacity(timeline.len());
    let mut counts = ReplayCounts::default();
    for &(now, step) in timeline {
        match step {
            PastStep::Place(k) => {
                let o = orders
                    .get(k)
                    .ok_or_else(|| refused(format!("no order {k} in the history")))?;
                if kept[k].is_some() {
                    return Err(refused(format!("order {} placed twice", o.id)));
                }
                let cart = pricing::price_cart(&o.items, &for_sale, o.discount_bp)?;
                for line in &cart.lines {
                    let level = levels
                        .get_mut(&line.variant_id)
                        .ok_or_else(|| refused(format!("no variant {}", line.variant_id)))?;
                    let (applied, crossed_low) =
                        level.apply(-line.quantity, now).ok_or_else(|| {
                            refused(format!(
                                "variant {} has less than the {} order {} asks for",
                                line.variant_id, line.quantity, o.id
                            ))
                        })?;
                    if crossed_low {
                        return Err(refused(format!(
                            "order {} would take variant {} to its reorder level; \
                             the replay publishes no stock.low",
                            o.id, line.variant_id
                        )));
                    }
                    movements.push(Movement::new(
                        &line.variant_id,
                        -line.quantity,
                        "order",
                        applied,
                        Some(&o.id),
                    ));
                }
                if o.payment_method == PaymentMethod::Wallet {
                    let total = cart.totals.total.minor_units();
                    let entry = wallets
                        .get_mut(&o.customer_id)
                        .and_then(|w| w.debit(&o.customer_id, total, &o.id, now))
                        .ok_or_else(|| {
                            refused(format!(
                                "the wallet of customer {} cannot pay order {}",
                                o.customer_id, o.id
                            ))
                        })?;
                    ledger.extend(entry);
                }
                counter = db::advance_counter(counter, now)
                    .ok_or_else(|| refused("the order counter overflows".into()))?;
                let created_at = counter.1;
                let status = o.payment_method.initial_status();
                let order = Order {
                    id: o.id.clone(),
                    number: order_number(counter.0),
                    status: status.as_str().to_owned(),
                    customer_id: o.customer_id.clone(),
                    payment_method: o.payment_method.as_str().to_owned(),
                    items: items_of(&o.id, &cart.lines),
                    subtotal: cart.totals.subtotal,
                    discount_total: cart.totals.discount_total,
                    total: cart.totals.total,
                    notes: None,
                    quotation_id: None,
                    status_history: None,
                    created_at,
                    updated_at: created_at,
                };
                kept[k] = Some(Kept {
                    order,
                    history: vec![HistoryEntry {
                        id: new_id(),
                        status: status.as_str().to_owned(),
                        note: None,
                        created_at,
                    }],
                    unit_costs: cart.lines.iter().map(|l| l.unit_cost).collect(),
                });
                facts.push(Fact::Created { k, at: now });
                counts.placed += 1;
                if counts.placed % 10_000 == 0 {
                    progress("orders", 10_000);
                }
            }
            PastStep::Move(k, to) => {
                let Kept { order, history, .. } = kept
                    .get_mut(k)
                    .and_then(Option::as_mut)
                    .ok_or_else(|| refused(format!("order {k} moved before it was placed")))?;
                let from =
                    OrderStatus::parse(&order.status).ok_or_else(|| OrderError::CorruptStatus {
                        id: order.id.clone(),
                        status: order.status.clone(),
                    })?;
                if !from.can_move_to(to) {
                    return Err(OrderError::InvalidTransition { from, to }.into());
                }
                let moved_at = order.updated_at.saturating_add(1).max(now);
                order.status = to.as_str().to_owned();
                order.updated_at = moved_at;
                if to == OrderStatus::Cancelled {
                    for item in &order.items {
                        let level = levels
                            .get_mut(&item.variant_id)
                            .ok_or_else(|| refused(format!("no variant {}", item.variant_id)))?;
                        let (applied, _) = level.apply(item.quantity, now).ok_or_else(|| {
                            refused(format!("returning stock overflows {}", item.variant_id))
                        })?;
                        movements.push(Movement::new(
                            &item.variant_id,
                            item.quantity,
                            "order_cancelled",
                            applied,
                            Some(&order.id),
                        ));
                    }
                    if order.payment_method == PaymentMethod::Wallet.as_str() {
                        let entry = wallets
                            .get_mut(&order.customer_id)
                            .and_then(|w| {
                                w.refund(
                                    &order.customer_id,
                                    order.total.minor_units(),
                                    &order.id,
                                    now,
                                )
                            })
                            .ok_or_else(|| {
                                refused(format!("refunding order {} overflows", order.id))
                            })?;
                        ledger.extend(entry);
                    }
                    counts.cancelled += 1;
                }
                history.push(HistoryEntry {
                    id: new_id(),
                    status: to.as_str().to_owned(),
                    note: None,
                    created_at: moved_at,
                });
                facts.push(Fact::Moved {
                    k,
                    from,
                    to,
                    entries: history.len(),
                    at: now,
                });
                counts.moved += 1;
            }
        }
    }
    progress("orders", counts.placed % 10_000);

    // The rows.
    let placed: Vec<&Kept> = kept.iter().flatten().collect();
    let backend = state.db.backend();
    write_orders(&mut tx, backend, tenant_id, &placed).await?;
    inventory::record_movements_in_bulk(&mut tx, backend, tenant_id, &movements).await?;
    let touched: Vec<(&str, Level)> = variant_ids
        .iter()
        .filter_map(|id| levels.get(*id).map(|l| (*id, *l)))
        .collect();
    inventory::set_levels(&mut tx, tenant_id, &touched).await?;
    let mut paid: Vec<&str> = ledger.iter().map(|e| e.customer_id.as_str()).collect();
    paid.sort_unstable();
    paid.dedup();
    let balances: Vec<(&str, Replayed)> = paid
        .into_iter()
        .filter_map(|c| wallets.get(c).map(|w| (c, *w)))
        .collect();
    wallet::write_replayed(&mut tx, backend, tenant_id, &ledger, &balances).await?;
    db::set_counter(&mut tx, tenant_id, "orders", counter).await?;

    commit(tx).await?;

    // The events, to the aggregates only, in the order they happened, a
    // transaction per batch as the dispatcher does (one transaction for all
    // of them would leave PostgreSQL every superseded version of the hot
    // aggregate rows to step over).
    for (b, batch) in facts.chunks(EVENTS_PER_BATCH).enumerate() {
        let mut events = Vec::with_capacity(batch.len());
        for (i, fact) in batch.iter().enumerate() {
            let seq = (b * EVENTS_PER_BATCH + i + 1) as i64;
            events.push(event_of(tenant_id, &kept, *fact, seq)?);
        }
        let mut tx = state.db.begin().await?;
        aggregates.consume(&mut tx, &events).await?;
        commit(tx).await?;
        progress("events", batch.len() as u64);
    }
    Ok(counts)
}

#[derive(serde::Serialize)]
struct OrderRowOut<'a> {
    tenant_id: &'a str,
    id: &'a str,
    number: &'a str,
    customer_id: &'a str,
    status: &'a str,
    payment_method: &'a str,
    subtotal: i64,
    discount_total: i64,
    total: i64,
    notes: Option<&'a str>,
    quotation_id: Option<&'a str>,
    created_at: i64,
    updated_at: i64,
}

#[derive(serde::Serialize)]
struct ItemRowOut<'a> {
    tenant_id: &'a str,
    order_id: &'a str,
    position: i64,
    variant_id: &'a str,
    product_id: &'a str,
    product_name: &'a str,
    sku: &'a str,
    quantity: i64,
    unit_price: i64,
    unit_cost: i64,
    discount: i64,
    line_total: i64,
}

#[derive(serde::Serialize)]
struct HistoryRowOut<'a> {
    tenant_id: &'a str,
    id: &'a str,
    order_id: &'a str,
    status: &'a str,
    note: Option<&'a str>,
    created_at: i64,
}

/// Orders, their items and their histories, thousands of rows per
/// statement ([`db::insert_json_rows`]).
async fn write_orders(
    tx: &mut Tx,
    backend: Backend,
    tenant_id: &TenantId,
    placed: &[&Kept],
) -> Result<(), sqlx::Error> {
    let tenant = tenant_id.as_str();
    for chunk in placed.chunks(JSON_ROWS_PER_STATEMENT) {
        let rows: Vec<OrderRowOut<'_>> = chunk
            .iter()
            .map(|k| {
                let o = &k.order;
                OrderRowOut {
                    tenant_id: tenant,
                    id: &o.id,
                    number: &o.number,
                    customer_id: &o.customer_id,
                    status: &o.status,
                    payment_method: &o.payment_method,
                    subtotal: o.subtotal.minor_units(),
                    discount_total: o.discount_total.minor_units(),
                    total: o.total.minor_units(),
                    notes: o.notes.as_deref(),
                    quotation_id: o.quotation_id.as_deref(),
                    created_at: o.created_at,
                    updated_at: o.updated_at,
                }
            })
            .collect();
        db::insert_json_rows(tx, backend, "orders", INSERTED_ORDER_COLUMNS, &rows).await?;
    }
    let lines: Vec<ItemRowOut<'_>> = placed
        .iter()
        .flat_map(|k| {
            k.order
                .items
                .iter()
                .enumerate()
                .map(move |(i, item)| ItemRowOut {
                    tenant_id: tenant,
                    order_id: &k.order.id,
                    position: i as i64,
                    variant_id: &item.variant_id,
                    product_id: &item.product_id,
                    product_name: &item.product_name,
                    sku: &item.sku,
                    quantity: item.quantity,
                    unit_price: item.unit_price.minor_units(),
                    unit_cost: k.unit_costs.get(i).copied().unwrap_or_default(),
                    discount: item.discount.minor_units(),
                    line_total: item.line_total.minor_units(),
                })
        })
        .collect();
    for chunk in lines.chunks(JSON_ROWS_PER_STATEMENT) {
        db::insert_json_rows(tx, backend, "order_items", INSERTED_ITEM_COLUMNS, chunk).await?;
    }
    let entries: Vec<HistoryRowOut<'_>> = placed
        .iter()
        .flat_map(|k| {
            k.history.iter().map(move |h| HistoryRowOut {
                tenant_id: tenant,
                id: &h.id,
                order_id: &k.order.id,
                status: &h.status,
                note: h.note.as_deref(),
                created_at: h.created_at,
            })
        })
        .collect();
    for chunk in entries.chunks(JSON_ROWS_PER_STATEMENT) {
        db::insert_json_rows(
            tx,
            backend,
            "order_status_history",
            INSERTED_HISTORY_COLUMNS,
            chunk,
        )
        .await?;
    }
    Ok(())
}

/// The event as the API published it at the time: `order.created` carries
/// the order as placed, `order.status_changed` the move and the order's
/// detail right after it (its latest history entries, newest first).
fn event_of(
    tenant_id: &TenantId,
    kept: &[Option<Kept>],
    fact: Fact,
    seq: i64,
) -> Result<Event, ReplayError> {
    let k = match fact {
        Fact::Created { k, .. } | Fact::Moved { k, .. } => k,
    };
    let Some(Kept { order, history, .. }) = kept.get(k).and_then(Option::as_ref) else {
        return Err(refused(format!("no order {k} to publish")));
    };
    let as_of = |entries: usize| -> Order {
        let shown = &history[..entries.min(history.len())];
        let last = shown.last().map_or(order.created_at, |h| h.created_at);
        Order {
            status: shown
                .last()
                .map_or_else(|| order.status.clone(), |h| h.status.clone()),
            updated_at: last,
            status_history: Some(
                shown
                    .iter()
                    .rev()
                    .take(HISTORY_IN_DETAIL as usize)
                    .cloned()
                    .collect(),
            ),
            ..order.clone()
        }
    };
    let encode = |e: serde_json::Error| sqlx::Error::Encode(Box::new(e));
    let (topic, payload, at) = match fact {
        Fact::Created { at, .. } => (
            topic::ORDER_CREATED,
            serde_json::to_string(&as_of(1)).map_err(encode)?,
            at,
        ),
        Fact::Moved {
            from,
            to,
            entries,
            at,
            ..
        } => (
            topic::ORDER_STATUS_CHANGED,
            serde_json::to_string(&OrderStatusChanged {
                order_id: order.id.clone(),
                number: order.number.clone(),
                from,
                to,
                note: None,
                order: as_of(entries),
            })
            .map_err(encode)?,
            at,
        ),
    };
    Ok(Event {
        seq,
        tenant_id: tenant_id.clone(),
        id: new_id(),
        topic: topic.to_owned(),
        aggregate: outbox::aggregate("order", &order.id),
        payload,
        created_at: at,
    })
}
