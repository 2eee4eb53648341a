//! Quotation SQL.

use std::collections::HashMap;

use sqlx::{Any, Executor};

use super::error::QuoteError;
use super::lifecycle::QuotationStatus;
use super::model::{
    QUOTATION_COLUMNS, Quotation, QuotationAccepted, QuotationLine, QuotationLineRow, QuotationRow,
};
use crate::modules::crm;
use crate::modules::orders::{self, LinePrices, NewOrder, PaymentMethod};
use crate::modules::pricing::{self, CartItem, PricedCart};
use crate::platform::cache::tags;
use crate::platform::clock::{self, new_id, now_micros};
use crate::platform::db::{Backend, SqlBuilder, Tx, commit, next_number, sql, sql_owned};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::outbox::{self, topic};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;
use crate::platform::validation::{FieldError, Invalid};

fn today() -> String {
    clock::format_date(clock::today())
}

/// `Q-000123`.
fn quotation_number(n: i64) -> String {
    format!("Q-{n:06}")
}

/// What a new or edited quotation says.
pub struct QuotationInput {
    pub customer_id: String,
    pub items: Vec<CartItem>,
    pub valid_until: String,
    pub notes: Option<String>,
}

/// Prices the lines; explicit prices must keep the product's minimum
/// margin. Loads customer and variants in two statements.
async fn price(
    tx: &mut Tx,
    tenant_id: &TenantId,
    input: &QuotationInput,
) -> Result<PricedCart, QuoteError> {
    let customer = crm::customer_discount(&mut **tx, tenant_id, &input.customer_id).await?;
    let variants = pricing::load_variants(&mut **tx, tenant_id, &input.items).await?;
    let customer = customer.ok_or_else(|| pricing::unknown_customer(&input.items, &variants))?;
    let cart = pricing::price_cart(&input.items, &variants, customer.discount_bp)?;
    let too_low: Vec<FieldError> = cart
        .lines
        .iter()
        .zip(&input.items)
        .enumerate()
        .filter(|(_, (line, item))| item.unit_price.is_some() && !line.margin_ok)
        .map(|(i, (line, _))| {
            FieldError::new(
                format!("items[{i}].unit_price"),
                format!(
                    "margin {} bp is below the product's minimum of {} bp",
                    line.margin_bp, line.min_margin_bp
                ),
            )
        })
        .collect();
    if !too_low.is_empty() {
        return Err(QuoteError::MarginTooLow(Invalid(too_low)));
    }
    Ok(cart)
}

async fn write_lines(
    tx: &mut Tx,
    tenant_id: &TenantId,
    quotation_id: &str,
    cart: &PricedCart,
    items: &[CartItem],
) -> Result<Vec<QuotationLine>, QuoteError> {
    let lines: Vec<QuotationLine> = cart
        .lines
        .iter()
        .zip(items)
        .map(|(l, item)| QuotationLine {
            quotation_id: quotation_id.to_owned(),
            variant_id: l.variant_id.clone(),
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price,
            discount: l.discount,
            line_total: l.line_total,
            margin_bp: l.margin_bp,
            margin_ok: l.margin_ok,
            explicit_price: item.unit_price.is_some(),
        })
        .collect();
    let mut q = SqlBuilder::new(
        "INSERT INTO quotation_items (tenant_id, quotation_id, position, variant_id, sku, quantity, unit_price, explicit_price, \
         discount, line_total, margin_bp, margin_ok) VALUES ",
    );
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        // Flags bind as the integers 0/1 the schema stores.
        q.push("(")
            .bind(tenant_id)
            .push(", ")
            .bind(quotation_id)
            .push(", ")
            .bind(i as i64)
            .push(", ")
            .bind(l.variant_id.as_str())
            .push(", ")
            .bind(l.sku.as_str())
            .push(", ")
            .bind(l.quantity)
            .push(", ")
            .bind(l.unit_price)
            .push(", ")
            .bind(l.explicit_price)
            .push(", ")
            .bind(l.discount)
            .push(", ")
            .bind(l.line_total)
            .push(", ")
            .bind(l.margin_bp)
            .push(", ")
            .bind(l.margin_ok)
            .push(")");
    }
    q.one_shot();
    q.build().execute(&mut **tx).await?;
    Ok(lines)
}

pub async fn create(
    state: &AppState,
    tenant_id: &TenantId,
    input: QuotationInput,
) -> Result<Quotation, QuoteError> {
    let id = new_id();
    let mut tx = state.db.begin().await?;
    let cart = price(&mut tx, tenant_id, &input).await?;
    let (number, now) = next_number(&mut tx, tenant_id, "quotations", now_micros()).await?;
    let number = quotation_number(number);
    sql("INSERT INTO quotations (tenant_id, id, number, customer_id, status, valid_until, notes, subtotal, discount_total, total, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $10)")
    .bind(tenant_id)
    .bind(id.as_str())
    .bind(number.as_str())
    .bind(input.customer_id.as_str())
    .bind(input.valid_until.as_str())
    .bind(input.notes.clone())
    .bind(cart.totals.subtotal)
    .bind(cart.totals.discount_total)
    .bind(cart.totals.total)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let lines = write_lines(&mut tx, tenant_id, &id, &cart, &input.items).await?;
    commit(tx).await?;
    QuotationRow {
        id,
        number,
        status: QuotationStatus::Draft.as_str().to_owned(),
        customer_id: input.customer_id,
        valid_until: input.valid_until,
        notes: input.notes,
        subtotal: cart.totals.subtotal,
        discount_total: cart.totals.discount_total,
        total: cart.totals.total,
        order_id: None,
        created_at: now,
        updated_at: now,
    }
    .into_quotation(lines, &today())
}

async fn row<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Option<QuotationRow>, QuoteError> {
    Ok(sql_owned(format!(
        "SELECT {QUOTATION_COLUMNS} FROM quotations WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional_as::<_, QuotationRow>(ex)
    .await?)
}

pub async fn exists(state: &AppState, tenant_id: &TenantId, id: &str) -> Result<bool, QuoteError> {
    Ok(
        sql("SELECT 1 FROM quotations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(state.db.reader())
            .await?
            .is_some(),
    )
}

async fn lines_of<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    ids: &[&str],
) -> Result<HashMap<String, Vec<QuotationLine>>, QuoteError> {
    let mut by_quotation: HashMap<String, Vec<QuotationLine>> = HashMap::new();
    if ids.is_empty() {
        return Ok(by_quotation);
    }
    let mut q = SqlBuilder::new(
        "SELECT quotation_id, variant_id, sku, quantity, unit_price, discount, line_total, margin_bp, margin_ok, explicit_price \
         FROM quotation_items WHERE tenant_id = ",
    );
    q.bind(tenant_id).push(" AND quotation_id IN (");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind(*id);
    }
    q.push(") ORDER BY quotation_id, position");
    for row in q.build().fetch_all_as::<_, QuotationLineRow>(ex).await? {
        let line = QuotationLine::from(row);
        by_quotation
            .entry(line.quotation_id.clone())
            .or_default()
            .push(line);
    }
    Ok(by_quotation)
}

/// A quotation with its lines: two statements.
pub async fn detail<'c, E: Executor<'c, Database = Any> + Copy>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Quotation, QuoteError> {
    let r = row(ex, tenant_id, id).await?.ok_or(QuoteError::NotFound)?;
    let lines = lines_of(ex, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    r.into_quotation(lines, &today())
}

/// [`detail`] inside a write transaction, which sees its own writes.
async fn detail_in(
    tx: &mut Tx,
    tenant_id: &TenantId,
    id: &str,
    today: &str,
) -> Result<Quotation, QuoteError> {
    let r = row(&mut **tx, tenant_id, id)
        .await?
        .ok_or(QuoteError::NotFound)?;
    let lines = lines_of(&mut **tx, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    r.into_quotation(lines, today)
}

pub async fn list(
    state: &AppState,
    tenant_id: &TenantId,
    status: Option<QuotationStatus>,
    customer_id: Option<&str>,
    page: &Page,
) -> Result<(Vec<Quotation>, Option<String>), QuoteError> {
    let db = state.db.current_reader();
    let today = today();
    let mut q = SqlBuilder::new(&format!(
        "SELECT {QUOTATION_COLUMNS} FROM quotations WHERE tenant_id = "
    ));
    q.bind(tenant_id);
    // What each status reads as (QuotationStatus::as_of), in SQL.
    match status {
        None => {}
        Some(QuotationStatus::Expired) => {
            q.push(" AND status IN ('draft', 'sent') AND valid_until < ")
                .bind(today.as_str());
        }
        Some(s @ (QuotationStatus::Draft | QuotationStatus::Sent)) => {
            q.push(" AND status = ")
                .bind(s.as_str())
                .push(" AND valid_until >= ")
                .bind(today.as_str());
        }
        Some(
            s
            @ (QuotationStatus::Accepted | QuotationStatus::Rejected | QuotationStatus::Converted),
        ) => {
            q.push(" AND status = ").bind(s.as_str());
        }
    }
    if let Some(c) = customer_id {
        q.push(" AND customer_id = ").bind(c);
    }
    q.after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q.build().fetch_all_as::<_, QuotationRow>(db).await?;
    let (rows, next) = page.finish(rows, |r| Cursor {
        created_at: r.created_at,
        id: r.id.clone(),
    });
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut lines = lines_of(db, tenant_id, &ids).await?;
    let quotations = rows
        .into_iter()
        .map(|r| {
            let l = lines.remove(&r.id).unwrap_or_default();
            r.into_quotation(l, &today)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((quotations, next))
}

/// An edit under way: the quotation read and locked in the transaction
/// that will save it, so two concurrent edits apply one after the other
/// instead of one overwriting the other. Dropped unsaved, it rolls back.
pub struct Edit {
    tx: Tx,
    current: QuotationRow,
    stored_items: Vec<CartItem>,
}

/// Starts an edit: 404 first, before the request's body is looked at.
pub async fn begin_edit(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
) -> Result<Edit, QuoteError> {
    let mut tx = state.db.begin().await?;
    let lock = match state.db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "", // the single writer is the lock
    };
    let current = sql_owned(format!(
        "SELECT {QUOTATION_COLUMNS} FROM quotations WHERE tenant_id = $1 AND id = $2{lock}"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional_as::<_, QuotationRow>(&mut *tx)
    .await?
    .ok_or(QuoteError::NotFound)?;
    let lines = lines_of(&mut *tx, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    let stored_items = lines
        .iter()
        .map(|l| CartItem {
            variant_id: l.variant_id.clone(),
            quantity: l.quantity,
            unit_price: l.explicit_price.then_some(l.unit_price.minor_units()),
        })
        .collect();
    Ok(Edit {
        tx,
        current,
        stored_items,
    })
}

impl Edit {
    /// The stored contents, for the request to change.
    pub fn contents(&self) -> QuotationInput {
        QuotationInput {
            customer_id: self.current.customer_id.clone(),
            items: self.stored_items.clone(),
            valid_until: self.current.valid_until.clone(),
            notes: self.current.notes.clone(),
        }
    }

    /// Re-prices and saves `input`. After the 404 and the request's own
    /// 400/422, the order of refusals is: 422 (pricing, margin), then 409.
    pub async fn save(
        mut self,
        tenant_id: &TenantId,
        input: QuotationInput,
    ) -> Result<Quotation, QuoteError> {
        let now = now_micros();
        let today = today();
        let id = self.current.id.clone();
        // Editability goes by the stored status: a draft past its date
        // reads as expired, yet an edit may give it a new date.
        if !self.current.status()?.can_edit() {
            // A 422 outranks the 409, but only for what this request sent:
            // ids it names that do not exist. Stored lines whose variant has
            // gone since are no fault of the request.
            let sent_lines =
                input.customer_id != self.current.customer_id || input.items != self.stored_items;
            if sent_lines {
                price(&mut self.tx, tenant_id, &input).await?;
            }
            return Err(QuoteError::NotEditable {
                status: self.current.status_as_of(&today)?,
            });
        }
        let cart = price(&mut self.tx, tenant_id, &input).await?;
        sql("UPDATE quotations SET customer_id = $3, valid_until = $4, notes = $5, subtotal = $6, discount_total = $7, \
             total = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id.as_str())
        .bind(input.customer_id.as_str())
        .bind(input.valid_until.as_str())
        .bind(input.notes.clone())
        .bind(cart.totals.subtotal)
        .bind(cart.totals.discount_total)
        .bind(cart.totals.total)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        sql("DELETE FROM quotation_items WHERE tenant_id = $1 AND quotation_id = $2")
            .bind(tenant_id)
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        write_lines(&mut self.tx, tenant_id, &id, &cart, &input.items).await?;
        let quotation = detail_in(&mut self.tx, tenant_id, &id, &today).await?;
        commit(self.tx).await?;
        Ok(quotation)
    }
}

/// Sends, accepts or rejects: a conditional move from the status the
/// quotation reads as, so of two racing moves one wins. Converting is
/// [`convert`], which places the order too. Accepting publishes
/// `quotation.accepted` with the quotation as the answer shows it.
pub async fn transition(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    to: QuotationStatus,
) -> Result<Quotation, QuoteError> {
    let now = now_micros();
    let today = today();
    let mut tx = state.db.begin().await?;
    let current = row(&mut *tx, tenant_id, id)
        .await?
        .ok_or(QuoteError::NotFound)?;
    let from = current.status_as_of(&today)?;
    // Converting is convert's: here it would mark a quotation converted
    // without its order.
    if !from.can_move_to(to) || to == QuotationStatus::Converted {
        return Err(QuoteError::InvalidTransition { from, to });
    }
    // `from` is stored as it reads (only draft and sent expire, and an
    // expired quotation moves nowhere); the date check keeps one that
    // expires meanwhile from moving.
    let moved = sql("UPDATE quotations SET status = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2 AND status = $3 AND valid_until >= $6")
        .bind(tenant_id)
        .bind(id)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(now)
        .bind(today.as_str())
        .execute(&mut *tx)
        .await?;
    if moved == 0 {
        return Err(QuoteError::ChangedMeanwhile { to });
    }
    // Read inside the transaction, as the detail would read it after the
    // commit: the event carries the very quotation the answer shows.
    let quotation = detail_in(&mut tx, tenant_id, id, &today).await?;
    if to == QuotationStatus::Accepted {
        let event = QuotationAccepted::new(quotation);
        outbox::publish(
            &mut tx,
            tenant_id,
            topic::QUOTATION_ACCEPTED,
            &outbox::aggregate("quotation", &event.quotation.id),
            &event,
            now,
        )
        .await?;
        commit(tx).await?;
        return Ok(event.quotation);
    }
    commit(tx).await?;
    Ok(quotation)
}

/// Converts an accepted quotation into an order at its prices: either both
/// happen or neither. On PostgreSQL the quotation's move is part of the
/// order's one statement (`conversion_pg`), which shares its commit
/// with the tenant's other orders (group commit); on SQLite one
/// transaction makes the move, then places the order.
pub async fn convert(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    payment_method: PaymentMethod,
) -> Result<orders::Order, QuoteError> {
    let now = now_micros();
    let order_id = new_id();
    let to = QuotationStatus::Converted;
    let order = match state.db.backend() {
        Backend::Postgres => {
            let (current, lines) = {
                let mut conn = state.db.writer().acquire().await?;
                let current = row(&mut *conn, tenant_id, id)
                    .await?
                    .ok_or(QuoteError::NotFound)?;
                let lines = lines_of(&mut *conn, tenant_id, &[id]).await?;
                (current, lines)
            };
            convertible(&current)?;
            let new = order_of(id, &current, lines, payment_method);
            let joined = conversion_pg(tenant_id, id, &order_id, now);
            orders::place_converted_order(state, tenant_id, &order_id, new, now, joined)
                .await
                .map_err(|e| match e {
                    orders::OrderError::QuotationChanged => QuoteError::ChangedMeanwhile { to },
                    e => QuoteError::Order(e),
                })?
        }
        Backend::Sqlite => {
            let mut tx = state.db.begin().await?;
            let current = row(&mut *tx, tenant_id, id)
                .await?
                .ok_or(QuoteError::NotFound)?;
            convertible(&current)?;
            let moved = sql(CONVERT)
                .bind(tenant_id)
                .bind(id)
                .bind(order_id.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if moved == 0 {
                return Err(QuoteError::ChangedMeanwhile { to });
            }
            let lines = lines_of(&mut *tx, tenant_id, &[id]).await?;
            let new = order_of(id, &current, lines, payment_method);
            let order =
                orders::place_order_in(state, &mut tx, tenant_id, &order_id, new, now).await?;
            commit(tx).await?;
            order
        }
    };
    let mut stale = order.stale_reads(tenant_id);
    stale.extend(tags::quotation_changed(tenant_id));
    state.cache.invalidate(&stale);
    Ok(order)
}

/// The move to `converted`, from `accepted` only (what a racing move
/// changed first is not converted).
const CONVERT: &str = "UPDATE quotations SET status = 'converted', order_id = $3, updated_at = $4 \
                       WHERE tenant_id = $1 AND id = $2 AND status = 'accepted'";

/// Whether the quotation as read may be converted. No date check: an
/// accepted quotation is converted whatever its date.
fn convertible(current: &QuotationRow) -> Result<(), QuoteError> {
    let from = current.status_as_of(&today())?;
    let to = QuotationStatus::Converted;
    if from.can_move_to(to) {
        Ok(())
    } else {
        Err(QuoteError::InvalidTransition { from, to })
    }
}

/// The order a quotation converts into: its customer, lines and notes, at
/// the amounts it agreed.
fn order_of(
    id: &str,
    current: &QuotationRow,
    mut lines: HashMap<String, Vec<QuotationLine>>,
    payment_method: PaymentMethod,
) -> NewOrder {
    let lines = lines.remove(id).unwrap_or_default();
    NewOrder {
        customer_id: current.customer_id.clone(),
        items: lines
            .iter()
            .map(|l| CartItem {
                variant_id: l.variant_id.clone(),
                quantity: l.quantity,
                unit_price: None,
            })
            .collect(),
        payment_method,
        notes: current.notes.clone(),
        prices: LinePrices::Fixed(
            lines
                .iter()
                .map(|l| pricing::AgreedAmounts {
                    unit_price: l.unit_price,
                    discount: l.discount,
                    line_total: l.line_total,
                })
                .collect(),
        ),
        quotation_id: Some(id.to_owned()),
    }
}

/// PostgreSQL: the move [`CONVERT`] makes, as part of the statement that
/// places the quotation's order. `quotation_locked` locks the quotation
/// while it is still accepted (the check); `quotation_converted` moves it
/// once every check of the statement passed, and returns a row when it did.
fn conversion_pg(tenant_id: &TenantId, id: &str, order_id: &str, now: i64) -> orders::JoinedWrite {
    let (tenant, quotation) = (tenant_id.clone(), id.to_owned());
    let check = move |q: &mut SqlBuilder| {
        q.push("quotation_locked AS MATERIALIZED (SELECT 1 FROM quotations WHERE tenant_id = ")
            .bind(&tenant)
            .push(" AND id = ")
            .bind(quotation.as_str())
            .push(" AND status = 'accepted' FOR UPDATE)");
    };
    let (tenant, quotation, order) = (tenant_id.clone(), id.to_owned(), order_id.to_owned());
    let write = move |q: &mut SqlBuilder, ready: &str| {
        q.push("quotation_converted AS (UPDATE quotations SET status = 'converted', order_id = ")
            .bind(order.as_str())
            .push(", updated_at = ")
            .bind(now)
            .push(" WHERE tenant_id = ")
            .bind(&tenant)
            .push(" AND id = ")
            .bind(quotation.as_str())
            .push(" AND status = 'accepted' AND ")
            .push(ready)
            .push(" RETURNING 1)");
    };
    orders::JoinedWrite {
        check: Box::new(check),
        holds: "EXISTS (SELECT 1 FROM quotation_locked)",
        write: Box::new(write),
        written: "EXISTS (SELECT 1 FROM quotation_converted)",
    }
}
