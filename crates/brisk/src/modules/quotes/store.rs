//! Quotation SQL.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::json;
use sqlx::{Any, Executor, FromRow};

use crate::modules::crm;
use crate::modules::orders::{self, LinePrices, NewOrder, PaymentMethod};
use crate::modules::pricing::{self, CartItem, PricedCart};
use crate::platform::clock::{self, new_id, now_micros};
use crate::platform::db::{Backend, SqlBuilder, Tx, commit, next_number, sql, sql_owned};
use crate::platform::http::error::{ApiError, ApiResult, ErrorCode, FieldError};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::outbox::{self, topic};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct QuotationLine {
    #[serde(skip)]
    pub quotation_id: String,
    pub variant_id: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: i64,
    pub discount: i64,
    pub line_total: i64,
    pub margin_bp: i64,
    #[serde(serialize_with = "as_bool")]
    #[schema(value_type = bool)]
    pub margin_ok: i64,
    #[serde(skip)]
    pub explicit_price: i64,
}

fn as_bool<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(*v != 0)
}

#[derive(Debug, Clone, FromRow)]
pub struct QuotationRow {
    pub id: String,
    pub number: String,
    pub status: String,
    pub customer_id: String,
    pub valid_until: String,
    pub notes: Option<String>,
    pub subtotal: i64,
    pub discount_total: i64,
    pub total: i64,
    pub order_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const QUOTATION_COLUMNS: &str = "id, number, status, customer_id, valid_until, notes, subtotal, discount_total, total, order_id, created_at, updated_at";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Quotation {
    pub id: String,
    pub number: String,
    /// `draft`, `sent`, `accepted`, `rejected`, `converted`, or `expired`
    /// (a draft or sent quotation past `valid_until`).
    pub status: String,
    pub customer_id: String,
    pub items: Vec<QuotationLine>,
    pub subtotal: i64,
    pub discount_total: i64,
    pub total: i64,
    pub valid_until: String,
    pub notes: Option<String>,
    pub order_id: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
}

pub const QUOTATION_FIELDS: &[&str] = &[
    "id",
    "number",
    "status",
    "customer_id",
    "items",
    "subtotal",
    "discount_total",
    "total",
    "valid_until",
    "notes",
    "order_id",
    "created_at",
    "updated_at",
];

/// The status a quotation reads as today.
pub fn effective_status(stored: &str, valid_until: &str, today: &str) -> String {
    if matches!(stored, "draft" | "sent") && valid_until < today {
        "expired".to_owned()
    } else {
        stored.to_owned()
    }
}

impl QuotationRow {
    fn into_quotation(self, items: Vec<QuotationLine>, today: &str) -> Quotation {
        Quotation {
            status: effective_status(&self.status, &self.valid_until, today),
            id: self.id,
            number: self.number,
            customer_id: self.customer_id,
            items,
            subtotal: self.subtotal,
            discount_total: self.discount_total,
            total: self.total,
            valid_until: self.valid_until,
            notes: self.notes,
            order_id: self.order_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

fn today() -> String {
    clock::format_date(clock::today())
}

fn not_found() -> ApiError {
    ApiError::not_found("no such quotation")
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
async fn price(tx: &mut Tx, tenant_id: &TenantId, input: &QuotationInput) -> ApiResult<PricedCart> {
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
        .map(|(i, (line, _))| FieldError {
            field: format!("items[{i}].unit_price"),
            message: format!(
                "margin {} bp is below the product's minimum of {} bp",
                line.margin_bp, line.min_margin_bp
            ),
        })
        .collect();
    if !too_low.is_empty() {
        return Err(ApiError::new(
            ErrorCode::MarginTooLow,
            "an explicit price is below the product's minimum margin",
        )
        .with_errors(too_low));
    }
    Ok(cart)
}

async fn write_lines(
    tx: &mut Tx,
    tenant_id: &TenantId,
    quotation_id: &str,
    cart: &PricedCart,
    items: &[CartItem],
) -> ApiResult<Vec<QuotationLine>> {
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
            margin_ok: i64::from(l.margin_ok),
            explicit_price: i64::from(item.unit_price.is_some()),
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
) -> ApiResult<Quotation> {
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
    Ok(QuotationRow {
        id,
        number,
        status: "draft".into(),
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
    .into_quotation(lines, &today()))
}

async fn row<'c, E: Executor<'c, Database = Any>>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> ApiResult<Option<QuotationRow>> {
    Ok(sql_owned(format!(
        "SELECT {QUOTATION_COLUMNS} FROM quotations WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional_as::<_, QuotationRow>(ex)
    .await?)
}

pub async fn exists(state: &AppState, tenant_id: &TenantId, id: &str) -> ApiResult<bool> {
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
) -> ApiResult<HashMap<String, Vec<QuotationLine>>> {
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
    for line in q.build().fetch_all_as::<_, QuotationLine>(ex).await? {
        by_quotation
            .entry(line.quotation_id.clone())
            .or_default()
            .push(line);
    }
    Ok(by_quotation)
}

pub async fn detail<'c, E: Executor<'c, Database = Any> + Copy>(
    ex: E,
    tenant_id: &TenantId,
    id: &str,
) -> ApiResult<Quotation> {
    let r = row(ex, tenant_id, id).await?.ok_or_else(not_found)?;
    let lines = lines_of(ex, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    Ok(r.into_quotation(lines, &today()))
}

pub async fn list(
    state: &AppState,
    tenant_id: &TenantId,
    status: Option<&str>,
    customer_id: Option<&str>,
    page: &Page,
) -> ApiResult<(Vec<Quotation>, Option<String>)> {
    let db = state.db.reader();
    let today = today();
    let mut q = SqlBuilder::new(&format!(
        "SELECT {QUOTATION_COLUMNS} FROM quotations WHERE tenant_id = "
    ));
    q.bind(tenant_id);
    match status {
        None => {}
        Some("expired") => {
            q.push(" AND status IN ('draft', 'sent') AND valid_until < ")
                .bind(today.as_str());
        }
        Some(s @ ("draft" | "sent")) => {
            q.push(" AND status = ")
                .bind(s)
                .push(" AND valid_until >= ")
                .bind(today.as_str());
        }
        Some(s) => {
            q.push(" AND status = ").bind(s);
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
    Ok((
        rows.into_iter()
            .map(|r| {
                let l = lines.remove(&r.id).unwrap_or_default();
                r.into_quotation(l, &today)
            })
            .collect(),
        next,
    ))
}

fn invalid(from: &str, action: &str) -> ApiError {
    ApiError::conflict(
        ErrorCode::InvalidTransition,
        format!("a quotation that is {from} cannot be {action}"),
    )
}

/// Edits a draft: `change` turns the stored contents into the new ones
/// (400/422 for a bad body). The row is read and locked inside the
/// transaction, so two concurrent edits apply one after the other instead
/// of one overwriting the other. Order of refusals: 404, 422, 409.
pub async fn edit(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    change: impl FnOnce(QuotationInput) -> ApiResult<QuotationInput>,
) -> ApiResult<Quotation> {
    let now = now_micros();
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
    .ok_or_else(not_found)?;
    let lines = lines_of(&mut *tx, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    let stored_items: Vec<CartItem> = lines
        .iter()
        .map(|l| CartItem {
            variant_id: l.variant_id.clone(),
            quantity: l.quantity,
            unit_price: (l.explicit_price != 0).then_some(l.unit_price),
        })
        .collect();
    let input = change(QuotationInput {
        customer_id: current.customer_id.clone(),
        items: stored_items.clone(),
        valid_until: current.valid_until.clone(),
        notes: current.notes.clone(),
    })?;
    if current.status != "draft" {
        // A 422 outranks the 409, but only for what this request sent: ids
        // it names that do not exist. Stored lines whose variant has gone
        // since are no fault of the request.
        let sent_lines = input.customer_id != current.customer_id || input.items != stored_items;
        if sent_lines {
            price(&mut tx, tenant_id, &input).await?;
        }
        return Err(invalid(
            &effective_status(&current.status, &current.valid_until, &today()),
            "edited",
        ));
    }
    let cart = price(&mut tx, tenant_id, &input).await?;
    sql("UPDATE quotations SET customer_id = $3, valid_until = $4, notes = $5, subtotal = $6, discount_total = $7, \
         total = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2")
    .bind(tenant_id)
    .bind(id)
    .bind(input.customer_id.as_str())
    .bind(input.valid_until.as_str())
    .bind(input.notes.clone())
    .bind(cart.totals.subtotal)
    .bind(cart.totals.discount_total)
    .bind(cart.totals.total)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sql("DELETE FROM quotation_items WHERE tenant_id = $1 AND quotation_id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    write_lines(&mut tx, tenant_id, id, &cart, &input.items).await?;
    commit(tx).await?;
    detail(state.db.writer(), tenant_id, id).await
}

/// send, accept, reject: a conditional move from the one status allowed.
pub async fn transition(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    from: &str,
    to: &str,
    action: &str,
) -> ApiResult<Quotation> {
    let now = now_micros();
    let today = today();
    let mut tx = state.db.begin().await?;
    let current = row(&mut *tx, tenant_id, id).await?.ok_or_else(not_found)?;
    let shown = effective_status(&current.status, &current.valid_until, &today);
    if shown != from {
        return Err(invalid(&shown, action));
    }
    let moved = sql("UPDATE quotations SET status = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2 AND status = $3 AND valid_until >= $6")
        .bind(tenant_id)
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .bind(today.as_str())
        .execute(&mut *tx)
        .await?;
    if moved == 0 {
        return Err(invalid("changed meanwhile", action));
    }
    if to == "accepted" {
        outbox::publish(&mut tx, tenant_id, topic::QUOTATION_ACCEPTED, &json!({"quotation_id": id, "number": current.number, "customer_id": current.customer_id, "total": current.total}), now).await?;
    }
    commit(tx).await?;
    detail(state.db.writer(), tenant_id, id).await
}

/// Converts an accepted quotation into an order at its prices, in one
/// transaction: either both happen or neither.
pub async fn convert(
    state: &AppState,
    tenant_id: &TenantId,
    id: &str,
    payment_method: PaymentMethod,
) -> ApiResult<orders::Order> {
    let now = now_micros();
    let order_id = new_id();
    let mut tx = state.db.begin().await?;
    let current = row(&mut *tx, tenant_id, id).await?.ok_or_else(not_found)?;
    if current.status != "accepted" {
        return Err(invalid(
            &effective_status(&current.status, &current.valid_until, &today()),
            "converted",
        ));
    }
    let moved = sql("UPDATE quotations SET status = 'converted', order_id = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND status = 'accepted'")
        .bind(tenant_id)
        .bind(id)
        .bind(order_id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if moved == 0 {
        return Err(invalid("changed meanwhile", "converted"));
    }
    let lines = lines_of(&mut *tx, tenant_id, &[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    let new = NewOrder {
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
    };
    let order = orders::place_order_in(state, &mut tx, tenant_id, &order_id, new, now).await?;
    commit(tx).await?;
    Ok(order)
}
