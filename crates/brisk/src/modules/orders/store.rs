//! Order SQL: placement, reads and status changes.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor};

use super::error::OrderError;
use super::lifecycle::{OrderStatus, PaymentMethod};
use super::model::*;
use crate::modules::pricing::{self, CartItem, PricedLine};
use crate::modules::{crm, inventory, wallet};
use crate::platform::clock::{new_id, now_micros};
use crate::platform::db::{Backend, SqlBuilder, Tx, commit, next_number, sql};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::idempotency::Claim;
use crate::platform::outbox::{self, topic};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

/// Where an order's prices come from.
#[derive(Debug, Clone)]
pub enum LinePrices {
    /// The pricing engine, now (`POST /orders`).
    Engine,
    /// Prices fixed earlier, one per item in order (a converted quotation).
    Fixed(Vec<pricing::AgreedAmounts>),
}

#[derive(Debug, Clone)]
pub struct NewOrder {
    pub customer_id: String,
    pub items: Vec<CartItem>,
    pub payment_method: PaymentMethod,
    pub notes: Option<String>,
    pub prices: LinePrices,
    pub quotation_id: Option<String>,
}

/// Stock a cancelled order line gives back.
struct StockReturn<'a> {
    variant_id: &'a str,
    quantity: i64,
}

impl<'a> StockReturn<'a> {
    /// The positional lines `inventory::return_stock` still takes.
    fn for_inventory(returns: &'a [StockReturn<'a>]) -> Vec<(&'a str, i64)> {
        returns.iter().map(|r| (r.variant_id, r.quantity)).collect()
    }
}

pub(super) fn items_of(order_id: &str, lines: &[PricedLine]) -> Vec<OrderItem> {
    lines
        .iter()
        .map(|l| OrderItem {
            order_id: order_id.to_owned(),
            variant_id: l.variant_id.clone(),
            product_id: l.product_id.clone(),
            product_name: l.product_name.clone(),
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            discount: l.discount,
            line_total: l.line_total,
        })
        .collect()
}

/// Places an order: one transaction, a fixed number of statements, all or
/// nothing. The order of refusals: 422 (customer, variants, amounts), then
/// 409 `out_of_stock`, then 409 `insufficient_funds`.
pub async fn place_order(
    state: &AppState,
    tenant_id: &TenantId,
    new: NewOrder,
    claim: Option<Claim>,
) -> Result<Order, OrderError> {
    let now = now_micros();
    let order = match (state.db.backend(), claim) {
        // The order's writes are one statement, which shares a transaction
        // and a commit with the tenant's other orders that arrive meanwhile
        // (group commit); the reads before it hold a connection only while
        // they run.
        (Backend::Postgres, None) => {
            let (statement, placed) = {
                let mut conn = state.db.writer().acquire().await?;
                order_statement_pg(&mut conn, tenant_id, &new_id(), new, now, None).await?
            };
            let row = state
                .db
                .fetch_one_grouped(tenant_id.as_str(), statement)
                .await;
            placed.answer(row)?
        }
        (_, claim) => {
            let mut tx = state.db.begin().await?;
            let order = place_order_in(state, &mut tx, tenant_id, &new_id(), new, now).await?;
            if let Some(claim) = claim {
                claim.record(&mut tx, &order).await?;
            }
            commit(tx).await?;
            order
        }
    };
    state.cache.invalidate(&order.stale_reads(tenant_id));
    Ok(order)
}

/// A write of another module that an order's statement (PostgreSQL) makes
/// with the order, all or nothing: the move of the quotation a conversion
/// places. `check` appends to the statement's `WITH` list a part that
/// locks what it checks, and `holds` (an SQL condition) says whether the
/// check passed; `write` appends the write, to be made only once the
/// condition it is given (every check of the statement) holds, and
/// `written` says whether it was made. A check that does not hold is the
/// statement's first refusal ([`OrderError::QuotationChanged`]), with
/// nothing written.
pub struct JoinedWrite {
    pub check: Box<dyn FnOnce(&mut SqlBuilder) + Send>,
    pub holds: &'static str,
    pub write: PushGuardedWrite,
    pub written: &'static str,
}

/// Appends a write to a `WITH` list, guarded by the SQL condition given.
pub type PushGuardedWrite = Box<dyn FnOnce(&mut SqlBuilder, &str) + Send>;

/// PostgreSQL: places the order an accepted quotation converts into,
/// making the quotation's move (`joined`) in the same statement, grouped
/// with the tenant's other orders like [`place_order`]. The caller
/// invalidates.
pub async fn place_converted_order(
    state: &AppState,
    tenant_id: &TenantId,
    order_id: &str,
    new: NewOrder,
    now: i64,
    joined: JoinedWrite,
) -> Result<Order, OrderError> {
    let (statement, placed) = {
        let mut conn = state.db.writer().acquire().await?;
        order_statement_pg(&mut conn, tenant_id, order_id, new, now, Some(joined)).await?
    };
    let row = state
        .db
        .fetch_one_grouped(tenant_id.as_str(), statement)
        .await;
    placed.answer(row)
}

/// The body of [`place_order`] inside a caller's transaction (on SQLite a
/// quotation's conversion places its order in the transaction that
/// converts it; `brisk seed` places its history this way). A refusal
/// leaves the transaction to be rolled back.
pub async fn place_order_in(
    state: &AppState,
    tx: &mut Tx,
    tenant_id: &TenantId,
    order_id: &str,
    new: NewOrder,
    now: i64,
) -> Result<Order, OrderError> {
    match state.db.backend() {
        Backend::Postgres => {
            let (statement, placed) =
                order_statement_pg(tx, tenant_id, order_id, new, now, None).await?;
            let row = statement.fetch_one(&mut **tx).await;
            placed.answer(row)
        }
        Backend::Sqlite => place_order_sqlite(tx, tenant_id, order_id, new, now).await,
    }
}

/// The reads of a placement, with no lock held: the customer and the
/// variants, and the cart priced from them (the engine, or the amounts a
/// quotation agreed). On PostgreSQL a price change that commits meanwhile
/// is ordered after this order, which was priced before it. Stock is
/// checked where it is taken, atomically.
async fn priced_cart(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    new: &NewOrder,
) -> Result<pricing::PricedCart, OrderError> {
    let customer = crm::customer_discount(&mut *conn, tenant_id, &new.customer_id).await?;
    let variants = pricing::load_variants(&mut *conn, tenant_id, &new.items).await?;
    let customer = customer.ok_or_else(|| pricing::unknown_customer(&new.items, &variants))?;
    Ok(match &new.prices {
        LinePrices::Engine => pricing::price_cart(&new.items, &variants, customer.discount_bp)?,
        LinePrices::Fixed(prices) => pricing::agreed_cart(&new.items, prices, &variants)?,
    })
}

/// The stock each line takes, from `(variant, quantity)` in item order.
fn stock_takes<'a>(lines: impl Iterator<Item = (&'a str, i64)>) -> Vec<inventory::StockTake<'a>> {
    lines
        .enumerate()
        .map(|(i, (variant_id, quantity))| inventory::StockTake {
            variant_id,
            quantity,
            field: format!("items[{i}].quantity"),
        })
        .collect()
}

/// The stock each priced line takes.
fn cart_takes(cart: &pricing::PricedCart) -> Vec<inventory::StockTake<'_>> {
    stock_takes(
        cart.lines
            .iter()
            .map(|l| (l.variant_id.as_str(), l.quantity)),
    )
}

/// The order as placed, before its number and time are known.
fn unnumbered_order(
    order_id: &str,
    new: NewOrder,
    cart: &pricing::PricedCart,
    history_id: String,
) -> Order {
    let status = new.payment_method.initial_status();
    Order {
        id: order_id.to_owned(),
        number: String::new(),
        status: status.as_str().to_owned(),
        customer_id: new.customer_id,
        payment_method: new.payment_method.as_str().to_owned(),
        items: items_of(order_id, &cart.lines),
        subtotal: cart.totals.subtotal,
        discount_total: cart.totals.discount_total,
        total: cart.totals.total,
        notes: new.notes,
        quotation_id: new.quotation_id,
        status_history: Some(vec![HistoryEntry {
            id: history_id,
            status: status.as_str().to_owned(),
            note: None,
            created_at: 0,
        }]),
        created_at: 0,
        updated_at: 0,
    }
}

impl Order {
    /// Gives the order the number and time its counter handed out.
    fn numbered(mut self, number: String, created_at: i64) -> Order {
        self.number = number;
        self.created_at = created_at;
        self.updated_at = created_at;
        for entry in self.status_history.iter_mut().flatten() {
            entry.created_at = created_at;
        }
        self
    }
}

/// SQLite (one writer, so no lock is held while others wait for it): the
/// stock, the wallet, the number, the order's rows and its event, a few
/// statements in the caller's transaction.
async fn place_order_sqlite(
    tx: &mut Tx,
    tenant_id: &TenantId,
    order_id: &str,
    new: NewOrder,
    now: i64,
) -> Result<Order, OrderError> {
    let cart = priced_cart(tx, tenant_id, &new).await?;
    inventory::take_stock(tx, tenant_id, &cart_takes(&cart), order_id, now).await?;
    if new.payment_method == PaymentMethod::Wallet {
        wallet::debit(
            tx,
            tenant_id,
            &new.customer_id,
            cart.totals.total,
            order_id,
            now,
        )
        .await?;
    }
    let status = new.payment_method.initial_status();
    let unnumbered = unnumbered_order(order_id, new, &cart, new_id());
    let row = OrderInsert {
        tenant_id,
        order_id,
        status,
        order: &unnumbered,
        lines: &cart.lines,
    };
    let (number, created_at) = insert_numbered_order(tx, &row, now).await?;
    let order = unnumbered.numbered(number, created_at);
    outbox::publish(
        tx,
        tenant_id,
        topic::ORDER_CREATED,
        &outbox::aggregate("order", &order.id),
        &order,
        now,
    )
    .await?;
    Ok(order)
}

/// Orders of up to this many lines keep their statement in each
/// connection's statement cache whatever the number of values it binds
/// (see [`order_statement_pg`]): at most 2 × this many shapes per
/// connection, with or without a wallet payment.
const KEPT_ORDER_LINES: usize = 10;

/// PostgreSQL: every write of the order in one statement — the stock (with
/// its movements and `stock.low` events), the wallet debit and its ledger
/// entry, the tenant's order number, the order, its items, its first
/// history entry and `order.created` — built after the reads (which run on
/// `conn`). The contended rows are locked in the statement, most contended
/// last (variants, wallet, then the tenant's order counter, each only once
/// the previous part succeeded), and stay locked for the rest of the
/// statement and the commit alone. A short line or wallet is answered in
/// the `refused` column with nothing written ([`Unnumbered::answer`]).
/// `joined` (a conversion's quotation move) is checked first and written
/// with the rest.
async fn order_statement_pg(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    order_id: &str,
    new: NewOrder,
    now: i64,
    joined: Option<JoinedWrite>,
) -> Result<(crate::platform::db::Sql, Unnumbered), OrderError> {
    let cart = priced_cart(conn, tenant_id, &new).await?;
    let lines = cart_takes(&cart);
    let line_count = cart.lines.len().max(lines.len());
    let debit = new.payment_method == PaymentMethod::Wallet && cart.totals.total.minor_units() > 0;
    let status = new.payment_method.initial_status();
    let customer_id = new.customer_id.clone();
    let unnumbered = unnumbered_order(order_id, new, &cart, new_id());
    let event = CreatedEvent::of(&unnumbered)?;
    let row = OrderInsert {
        tenant_id,
        order_id,
        status,
        order: &unnumbered,
        lines: &cart.lines,
    };
    // The checks lock what they read (the variants, then the wallet);
    // the writes happen only once every check passed, so a refusal
    // writes nothing and leaves a shared transaction usable.
    let mut q = SqlBuilder::new("WITH ");
    let (joined_write, joined_holds, joined_written) = match joined {
        Some(j) => {
            (j.check)(&mut q);
            q.push(", ");
            (Some(j.write), Some(j.holds), Some(j.written))
        }
        None => (None, None, None),
    };
    inventory::push_stock_check_pg(&mut q, tenant_id, &lines);
    let mut ready = inventory::STOCK_ENOUGH_PG.to_owned();
    if let Some(holds) = joined_holds {
        ready = format!("{holds} AND {ready}");
    }
    if debit {
        q.push(", ");
        wallet::push_funds_check_pg(&mut q, tenant_id, &customer_id, cart.totals.total, &ready);
        ready = format!("{ready} AND {}", wallet::FUNDS_ENOUGH_PG);
    }
    q.push(", ");
    inventory::push_take_stock_pg(&mut q, tenant_id, &lines, order_id, now, &ready);
    if debit {
        q.push(", ");
        wallet::push_debit_pg(
            &mut q,
            tenant_id,
            &customer_id,
            cart.totals.total,
            order_id,
            now,
            &ready,
        );
    }
    if let Some(write) = joined_write {
        q.push(", ");
        write(&mut q, &ready);
    }
    // The number once the stock (and the money) is taken, so the
    // counter, which every order of the tenant queues on, is locked last.
    let mut taken = format!("(SELECT count(*) FROM stock_taken) = {}", lines.len());
    if debit {
        taken.push_str(" AND EXISTS (SELECT 1 FROM wallet_debit)");
    }
    if let Some(written) = joined_written {
        taken = format!("{taken} AND {written}");
    }
    q.push(", ");
    push_numbered_order_pg(&mut q, &row, now, &taken);
    q.push(", created_event AS (INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) SELECT ")
            .bind(tenant_id)
            .push(", ")
            .bind(new_id())
            .push(", ")
            .bind(topic::ORDER_CREATED)
            .push(", ")
            .bind(outbox::aggregate("order", order_id))
            .push(", ")
            .bind(event.head)
            .push(" || number || ")
            .bind(event.middle)
            .push(" || replace(")
            .bind(event.tail)
            .push(", ")
            .bind(CreatedEvent::TIME_PLACEHOLDER)
            .push(", '\"' || brisk_rfc3339(last_at) || '\"'), ")
            .bind(now)
            // The refusal is an answer, not an error. The locks held make a
            // passed check hold for the writes; should a write still miss
            // a line, the statement fails rather than write part of it.
            .push(" FROM numbered) SELECT (SELECT number FROM numbered) AS number, \
                   (SELECT last_at FROM numbered) AS last_at, CASE");
    if let Some(holds) = joined_holds {
        q.push(" WHEN NOT ")
            .push(holds)
            .push(" THEN 'quotation_changed'");
    }
    q.push(" WHEN NOT ")
        .push(inventory::STOCK_ENOUGH_PG)
        .push(" THEN 'out_of_stock:' || coalesce(")
        .push(inventory::STOCK_SHORT_IDS_PG)
        .push(", '')");
    if debit {
        q.push(" WHEN NOT ")
            .push(wallet::FUNDS_ENOUGH_PG)
            .push(" THEN 'insufficient_funds'");
    }
    q.push(" WHEN (SELECT count(*) FROM stock_taken) <> ")
        .push(&lines.len().to_string())
        .push(" THEN CAST(brisk_refuse('an order took part of its stock') AS TEXT) END AS refused");
    // The statement's text has one shape per line count and payment, and
    // the everyday shapes recur on every connection: kept in its statement
    // cache, each is parsed and planned once per connection instead of on
    // every order (a 3-line order paid from a wallet binds 102 values, past
    // the builder's limit for varying shapes; re-planned per order it ran
    // at 0.4 of invoice orders). Long orders are left to that limit.
    if line_count <= KEPT_ORDER_LINES {
        q.few_shapes();
    }
    Ok((q.build(), Unnumbered(unnumbered)))
}

/// The order [`order_statement_pg`] places, before its number and time.
struct Unnumbered(Order);

impl Unnumbered {
    /// The order, from what its statement answered: numbered, or refused.
    fn answer(self, row: Result<AnyRow, sqlx::Error>) -> Result<Order, OrderError> {
        let row = row?;
        let refused: Option<String> = sqlx::Row::try_get(&row, "refused")?;
        let order = self.0;
        match refused.as_deref() {
            None => {
                let number: String = sqlx::Row::try_get(&row, "number")?;
                let created_at: i64 = sqlx::Row::try_get(&row, "last_at")?;
                Ok(order.numbered(number, created_at))
            }
            Some("quotation_changed") => Err(OrderError::QuotationChanged),
            Some("insufficient_funds") => Err(wallet::WalletError::InsufficientFunds {
                amount: order.total.minor_units(),
            }
            .into()),
            Some(reason) => {
                let short = reason.strip_prefix("out_of_stock:").unwrap_or_default();
                let lines = stock_takes(
                    order
                        .items
                        .iter()
                        .map(|i| (i.variant_id.as_str(), i.quantity)),
                );
                Err(inventory::out_of_stock_for(&lines, short).into())
            }
        }
    }
}

/// The `order.created` payload (the order as the API shows it) cut around
/// what only the statement that numbers the order knows: `head` ends where
/// the number goes, `middle` runs to the status history, and `tail`, all of
/// it Brisk's own text, holds [`Self::TIME_PLACEHOLDER`] where the order's
/// time goes. Cut at keys whose quotes a JSON string value cannot contain
/// unescaped, so the customer's notes cannot move a cut.
struct CreatedEvent {
    head: String,
    middle: String,
    tail: String,
}

impl CreatedEvent {
    /// How the unnumbered order's time 0 serializes.
    const TIME_PLACEHOLDER: &'static str = "\"1970-01-01T00:00:00Z\"";

    fn of(unnumbered: &Order) -> Result<CreatedEvent, OrderError> {
        let text =
            serde_json::to_string(unnumbered).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let cut = |text: &str| -> Option<CreatedEvent> {
            let head_end = text.find(",\"number\":\"\"")? + ",\"number\":".len();
            let rest = text.get(head_end + 2..)?;
            let tail_start = rest.rfind(",\"status_history\":")?;
            Some(CreatedEvent {
                head: format!("{}\"", text.get(..head_end)?),
                middle: format!("\"{}", rest.get(..tail_start)?),
                tail: rest.get(tail_start..)?.to_owned(),
            })
        };
        cut(&text).ok_or_else(|| {
            sqlx::Error::Protocol("the order.created payload has an unexpected shape".into()).into()
        })
    }
}

/// What the order's own rows are made of, once stock and money are taken.
struct OrderInsert<'a> {
    tenant_id: &'a TenantId,
    order_id: &'a str,
    status: OrderStatus,
    /// The order as placed, number and times aside.
    order: &'a Order,
    lines: &'a [PricedLine],
}

pub(super) const INSERTED_ORDER_COLUMNS: &str = "tenant_id, id, number, customer_id, status, payment_method, subtotal, \
     discount_total, total, notes, quotation_id, created_at, updated_at";

/// Appends `VALUES`-style rows of the order's items to `q`.
fn push_items(q: &mut SqlBuilder, row: &OrderInsert<'_>) {
    for (i, (item, line)) in row.order.items.iter().zip(row.lines).enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(row.tenant_id)
            .push(", ")
            .bind(row.order_id)
            .push(", ")
            .bind(i as i64)
            .push(", ")
            .bind(item.variant_id.as_str())
            .push(", ")
            .bind(item.product_id.as_str())
            .push(", ")
            .bind(item.product_name.as_str())
            .push(", ")
            .bind(item.sku.as_str())
            .push(", ")
            .bind(item.quantity)
            .push(", ")
            .bind(item.unit_price)
            .push(", ")
            .bind(line.unit_cost)
            .push(", ")
            .bind(item.discount)
            .push(", ")
            .bind(item.line_total)
            .push(")");
    }
}

/// The columns of a history entry.
pub(super) const INSERTED_HISTORY_COLUMNS: &str =
    "tenant_id, id, order_id, status, note, created_at";

pub(super) const INSERTED_ITEM_COLUMNS: &str = "tenant_id, order_id, position, variant_id, product_id, product_name, \
     sku, quantity, unit_price, unit_cost, discount, line_total";

/// The first history entry's id of an order as placed.
fn first_history_id(order: &Order) -> &str {
    order
        .status_history
        .as_deref()
        .and_then(|h| h.first())
        .map_or("", |e| e.id.as_str())
}

/// SQLite (one writer, so no lock to hold briefly): the number, then the
/// order, its items and its first history entry, one statement each.
/// Returns the number and the order's time.
async fn insert_numbered_order(
    tx: &mut Tx,
    row: &OrderInsert<'_>,
    now: i64,
) -> Result<(String, i64), OrderError> {
    // The order's own time comes with its number (see next_number); its
    // movements and ledger entry carry theirs.
    let (number, created_at) = next_number(tx, row.tenant_id, "orders", now).await?;
    let number = order_number(number);
    let order = row.order;
    sql("INSERT INTO orders (tenant_id, id, number, customer_id, status, payment_method, subtotal, discount_total, total, \
         notes, quotation_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)")
    .bind(row.tenant_id)
    .bind(row.order_id)
    .bind(number.as_str())
    .bind(order.customer_id.as_str())
    .bind(row.status.as_str())
    .bind(order.payment_method.as_str())
    .bind(order.subtotal)
    .bind(order.discount_total)
    .bind(order.total)
    .bind(order.notes.clone())
    .bind(order.quotation_id.clone())
    .bind(created_at)
    .execute(&mut **tx)
    .await?;
    let mut q = SqlBuilder::new(&format!(
        "INSERT INTO order_items ({INSERTED_ITEM_COLUMNS}) VALUES "
    ));
    push_items(&mut q, row);
    q.one_shot();
    q.build().execute(&mut **tx).await?;
    sql_insert_history(
        row.tenant_id,
        first_history_id(order),
        row.order_id,
        row.status,
        None,
        created_at,
    )
    .execute(&mut **tx)
    .await?;
    Ok((number, created_at))
}

/// PostgreSQL: appends to a `WITH` list the tenant's order counter
/// (`numbered`: the number formatted like [`order_number`], and the
/// order's time, the counter's), the order, its items and its first
/// history entry — the same rows as [`insert_numbered_order`]. The counter
/// moves only once `after` (an SQL condition of the same statement) holds,
/// so its lock, which every order of the tenant queues on, is taken last.
fn push_numbered_order_pg(q: &mut SqlBuilder, row: &OrderInsert<'_>, now: i64, after: &str) {
    let order = row.order;
    q.push("n AS (INSERT INTO tenant_counters (tenant_id, name, value, last_at) SELECT ")
        .bind(row.tenant_id)
        .push(", 'orders', 1, ")
        .bind(now)
        .push(" WHERE ")
        .push(after)
        .push(
            " ON CONFLICT (tenant_id, name) DO UPDATE SET value = tenant_counters.value + 1, \
             last_at = CASE WHEN tenant_counters.last_at + 1 > excluded.last_at \
             THEN tenant_counters.last_at + 1 ELSE excluded.last_at END \
             RETURNING value, last_at), \
             numbered AS (SELECT 'SO-' || CASE WHEN value < 1000000 THEN lpad(CAST(value AS TEXT), 6, '0') \
             ELSE CAST(value AS TEXT) END AS number, last_at FROM n), ",
        )
        .push(&format!("o AS (INSERT INTO orders ({INSERTED_ORDER_COLUMNS}) SELECT "))
        .bind(row.tenant_id)
        .push(", ")
        .bind(row.order_id)
        .push(", number, ")
        .bind(order.customer_id.as_str())
        .push(", ")
        .bind(row.status.as_str())
        .push(", ")
        .bind(order.payment_method.as_str())
        .push(", ")
        .bind(order.subtotal)
        .push(", ")
        .bind(order.discount_total)
        .push(", ")
        .bind(order.total)
        .push(", ")
        .bind(order.notes.clone())
        .push(", ")
        .bind(order.quotation_id.clone())
        .push(", last_at, last_at FROM numbered RETURNING id), ")
        .push(&format!("h AS (INSERT INTO order_status_history ({INSERTED_HISTORY_COLUMNS}) SELECT "))
        .bind(row.tenant_id)
        .push(", ")
        .bind(first_history_id(order))
        .push(", id, ")
        .bind(row.status.as_str())
        .push(", NULL, (SELECT last_at FROM n) FROM o), ")
        .push(&format!("i AS (INSERT INTO order_items ({INSERTED_ITEM_COLUMNS}) SELECT * FROM (VALUES "));
    push_items(q, row);
    q.push(") AS v WHERE EXISTS (SELECT 1 FROM o))");
}

async fn insert_history(
    tx: &mut Tx,
    tenant_id: &TenantId,
    order_id: &str,
    status: OrderStatus,
    note: Option<&str>,
    now: i64,
) -> Result<HistoryEntry, OrderError> {
    let entry = HistoryEntry {
        id: new_id(),
        status: status.as_str().to_owned(),
        note: note.map(str::to_owned),
        created_at: now,
    };
    sql_insert_history(tenant_id, &entry.id, order_id, status, note, now)
        .execute(&mut **tx)
        .await?;
    Ok(entry)
}

fn sql_insert_history(
    tenant_id: &TenantId,
    id: &str,
    order_id: &str,
    status: OrderStatus,
    note: Option<&str>,
    at: i64,
) -> crate::platform::db::Sql {
    sql(
        "INSERT INTO order_status_history (tenant_id, id, order_id, status, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(order_id)
    .bind(status.as_str())
    .bind(note.map(str::to_owned))
    .bind(at)
}

async fn order_row<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Option<OrderRow>, OrderError> {
    Ok(sql_order_by_id()
        .bind(tenant_id)
        .bind(id)
        .fetch_optional_as::<_, OrderRow>(ex)
        .await?)
}

pub async fn order_exists<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> Result<bool, OrderError> {
    Ok(sql("SELECT 1 FROM orders WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(ex)
        .await?
        .is_some())
}

fn sql_order_by_id() -> crate::platform::db::Sql {
    crate::platform::db::sql_owned(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2"
    ))
}

async fn items_of_orders<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    order_ids: &[&str],
) -> Result<HashMap<String, Vec<OrderItem>>, OrderError> {
    let mut by_order: HashMap<String, Vec<OrderItem>> = HashMap::new();
    if order_ids.is_empty() {
        return Ok(by_order);
    }
    let mut q = SqlBuilder::new(
        "SELECT order_id, variant_id, product_id, product_name, sku, quantity, unit_price, discount, line_total \
         FROM order_items WHERE tenant_id = ",
    );
    q.bind(tenant_id).push(" AND order_id IN (");
    for (i, id) in order_ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind(*id);
    }
    q.push(") ORDER BY order_id, position");
    for item in q.build().fetch_all_as::<_, OrderItem>(ex).await? {
        by_order
            .entry(item.order_id.clone())
            .or_default()
            .push(item);
    }
    Ok(by_order)
}

async fn history_page<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    order_id: &str,
    limit: i64,
    after: Option<&Cursor>,
) -> Result<Vec<HistoryEntry>, OrderError> {
    let mut q = SqlBuilder::new(
        "SELECT id, status, note, created_at FROM order_status_history WHERE tenant_id = ",
    );
    q.bind(tenant_id)
        .push(" AND order_id = ")
        .bind(order_id)
        .after_cursor("", after)
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(limit);
    Ok(q.build().fetch_all_as::<_, HistoryEntry>(ex).await?)
}

/// [`order_detail`] inside a write transaction, which sees its own writes.
async fn order_detail_in(tx: &mut Tx, tenant_id: &TenantId, id: &str) -> Result<Order, OrderError> {
    let row = order_row(&mut **tx, tenant_id, id)
        .await?
        .ok_or(OrderError::NotFound)?;
    let items = items_of_orders(&mut **tx, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    let history = history_page(&mut **tx, tenant_id, id, HISTORY_IN_DETAIL, None).await?;
    Ok(row.into_order(items, Some(history)))
}

/// An order with its items and latest 20 history entries: three statements.
pub async fn order_detail<'c, E>(ex: E, tenant_id: &TenantId, id: &str) -> Result<Order, OrderError>
where
    E: Executor<'c, Database = Any> + Copy,
{
    let row = order_row(ex, tenant_id, id)
        .await?
        .ok_or(OrderError::NotFound)?;
    let items = items_of_orders(ex, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    let history = history_page(ex, tenant_id, id, HISTORY_IN_DETAIL, None).await?;
    Ok(row.into_order(items, Some(history)))
}

pub async fn history(
    state: &AppState,
    tenant_id: &TenantId,
    order_id: &str,
    page: &Page,
) -> Result<(Vec<HistoryEntry>, Option<String>), OrderError> {
    let db = state.db.reader();
    if !order_exists(db, tenant_id, order_id).await? {
        return Err(OrderError::NotFound);
    }
    let rows = history_page(
        db,
        tenant_id,
        order_id,
        page.fetch_limit(),
        page.after.as_ref(),
    )
    .await?;
    Ok(page.finish(rows, |h| Cursor {
        created_at: h.created_at,
        id: h.id.clone(),
    }))
}

#[derive(Debug, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub customer_id: Option<String>,
    /// Inclusive lower bound, micros.
    pub from: Option<i64>,
    /// Exclusive upper bound, micros.
    pub until: Option<i64>,
}

/// Orders newest first, with their items: two statements per page.
pub async fn list_orders(
    state: &AppState,
    tenant_id: &TenantId,
    filter: &OrderFilter,
    page: &Page,
) -> Result<(Vec<Order>, Option<String>), OrderError> {
    let db = state.db.current_reader();
    let mut q = SqlBuilder::new(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = "
    ));
    q.bind(tenant_id);
    if let Some(status) = filter.status {
        q.push(" AND status = ").bind(status.as_str());
    }
    if let Some(customer_id) = &filter.customer_id {
        q.push(" AND customer_id = ").bind(customer_id.as_str());
    }
    if let Some(from) = filter.from {
        q.push(" AND created_at >= ").bind(from);
    }
    if let Some(until) = filter.until {
        q.push(" AND created_at < ").bind(until);
    }
    q.after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q.build().fetch_all_as::<_, OrderRow>(db).await?;
    let (rows, next) = page.finish(rows, |o| Cursor {
        created_at: o.created_at,
        id: o.id.clone(),
    });
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut items = items_of_orders(db, tenant_id, &ids).await?;
    let orders = rows
        .into_iter()
        .map(|r| {
            let its = items.remove(&r.id).unwrap_or_default();
            r.into_order(its, None)
        })
        .collect();
    Ok((orders, next))
}

/// Moves an order along its lifecycle in one transaction; cancelling puts
/// the stock back and refunds a wallet payment. Publishes
/// `order.status_changed` with the order as it reads after the move, which
/// is also the answer.
pub async fn change_status(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    to: OrderStatus,
    note: Option<&str>,
) -> Result<Order, OrderError> {
    let mut tx = state.db.begin().await?;
    let event = change_status_in(state, &mut tx, tenant_id, id, to, note, now_micros()).await?;
    commit(tx).await?;
    state.cache.invalidate(&event.order.stale_reads(tenant_id));
    Ok(event.order)
}

/// The body of [`change_status`] inside a caller's transaction, at the
/// caller's clock (`brisk seed` moves back-dated orders with it); the
/// caller commits and invalidates the event's `stale_reads`.
pub async fn change_status_in(
    state: &AppState,
    tx: &mut Tx,
    tenant_id: &TenantId,
    id: &str,
    to: OrderStatus,
    note: Option<&str>,
    now: i64,
) -> Result<OrderStatusChanged, OrderError> {
    let tx = &mut *tx;
    let row = order_row(&mut **tx, tenant_id, id)
        .await?
        .ok_or(OrderError::NotFound)?;
    let from = OrderStatus::parse(&row.status).ok_or_else(|| OrderError::CorruptStatus {
        id: row.id.clone(),
        status: row.status.clone(),
    })?;
    if !from.can_move_to(to) {
        return Err(OrderError::InvalidTransition { from, to });
    }
    // Only from the status just read: of two racing moves, one wins. The
    // history entry's time is taken under the row lock, after the order's
    // last change, so the history reads in the order the moves happened.
    let moved = sql("UPDATE orders SET status = $4, \
                     updated_at = CASE WHEN updated_at + 1 > $5 THEN updated_at + 1 ELSE $5 END \
                     WHERE tenant_id = $1 AND id = $2 AND status = $3 RETURNING updated_at")
    .bind(tenant_id)
    .bind(id)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(moved) = moved else {
        return Err(OrderError::InvalidTransition { from, to });
    };
    let moved_at: i64 = sqlx::Row::try_get(&moved, "updated_at")?;
    if to == OrderStatus::Cancelled {
        let items = items_of_orders(&mut **tx, tenant_id, &[id])
            .await?
            .remove(id)
            .unwrap_or_default();
        let returns: Vec<StockReturn> = items
            .iter()
            .map(|i| StockReturn {
                variant_id: &i.variant_id,
                quantity: i.quantity,
            })
            .collect();
        let ids: Vec<&str> = returns.iter().map(|r| r.variant_id).collect();
        inventory::lock_variants(tx, state.db.backend(), tenant_id, &ids).await?;
        inventory::return_stock(
            tx,
            tenant_id,
            &StockReturn::for_inventory(&returns),
            id,
            now,
        )
        .await?;
        if row.payment_method == PaymentMethod::Wallet.as_str() {
            wallet::refund(tx, tenant_id, &row.customer_id, row.total, id, now).await?;
        }
    }
    insert_history(tx, tenant_id, id, to, note, moved_at).await?;
    // Read inside the transaction, as the detail would read it after the
    // commit: the event carries the very order the answer shows.
    let event = OrderStatusChanged {
        order_id: row.id,
        number: row.number,
        from,
        to,
        note: note.map(str::to_owned),
        order: order_detail_in(tx, tenant_id, id).await?,
    };
    outbox::publish(
        tx,
        tenant_id,
        topic::ORDER_STATUS_CHANGED,
        &outbox::aggregate("order", &event.order.id),
        &event,
        now,
    )
    .await?;
    Ok(event)
}
