//! Inventory SQL.

use serde::Serialize;
use sqlx::FromRow;

use super::error::StockError;
use crate::platform::cache::tags;
use crate::platform::clock::{self, new_id, now_micros};
use crate::platform::db::{SqlBuilder, Tx, commit, sql};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::outbox::{self, topic};
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;
use crate::platform::validation::FieldError;

/// The most a variant may hold: far beyond any warehouse, and small enough
/// that sums over a product's variants can never overflow.
pub const MAX_STOCK: i64 = 1_000_000_000_000;

/// A stock change to record.
#[derive(Debug, Clone)]
pub struct Movement {
    pub variant_id: String,
    pub delta: i64,
    pub reason: String,
    pub stock_after: i64,
    pub order_id: Option<String>,
    /// When: taken under the variant's row lock, after its previous
    /// movement (`variants.last_movement_at`, see migration 0006).
    pub at: i64,
}

/// A stock change as applied to a variant: the stock it left and the time
/// of its movement (see [`Movement::at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub stock: i64,
    pub at: i64,
}

impl Movement {
    pub fn new(
        variant_id: &str,
        delta: i64,
        reason: &str,
        applied: Applied,
        order_id: Option<&str>,
    ) -> Self {
        Movement {
            variant_id: variant_id.to_owned(),
            delta,
            reason: reason.to_owned(),
            stock_after: applied.stock,
            order_id: order_id.map(str::to_owned),
            at: applied.at,
        }
    }
}

/// The data of a `stock.low` event: a change took this variant from above
/// its reorder level to at or below it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StockLow {
    pub variant_id: String,
    pub product_id: String,
    pub sku: String,
    pub stock: i64,
    pub reorder_level: i64,
}

impl StockLow {
    /// The event when `delta` took the stock across the reorder level
    /// downward; raising `reorder_level` or a change that stays below it
    /// is no crossing.
    fn crossing(row: &sqlx::any::AnyRow, delta: i64) -> Result<Option<StockLow>, sqlx::Error> {
        let stock: i64 = sqlx::Row::try_get(row, "stock")?;
        let reorder_level: i64 = sqlx::Row::try_get(row, "reorder_level")?;
        let before = stock.saturating_sub(delta);
        if delta >= 0 || stock > reorder_level || before <= reorder_level {
            return Ok(None);
        }
        Ok(Some(StockLow {
            variant_id: sqlx::Row::try_get(row, "id")?,
            product_id: sqlx::Row::try_get(row, "product_id")?,
            sku: sqlx::Row::try_get(row, "sku")?,
            stock,
            reorder_level,
        }))
    }
}

/// Publishes the `stock.low` events of one transaction in one statement.
async fn publish_low(
    tx: &mut Tx,
    tenant_id: &TenantId,
    lows: Vec<StockLow>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let events: Vec<(String, StockLow)> = lows
        .into_iter()
        .map(|low| (outbox::aggregate("variant", &low.variant_id), low))
        .collect();
    outbox::publish_all(tx, tenant_id, topic::STOCK_LOW, &events, now).await
}

/// One line of an order taking stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockTake<'a> {
    pub variant_id: &'a str,
    pub quantity: i64,
    /// The request field an `out_of_stock` answer names for this line.
    pub field: String,
}

/// Writes movement rows in one statement (none for an empty slice).
pub async fn record_movements(
    tx: &mut Tx,
    tenant_id: &TenantId,
    movements: &[Movement],
) -> Result<(), StockError> {
    if movements.is_empty() {
        return Ok(());
    }
    let mut q = SqlBuilder::new(&format!(
        "INSERT INTO stock_movements ({MOVEMENT_COLUMNS}) VALUES "
    ));
    for (i, m) in movements.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(tenant_id)
            .push(", ")
            .bind(new_id())
            .push(", ")
            .bind(m.variant_id.as_str())
            .push(", ")
            .bind(m.delta)
            .push(", ")
            .bind(m.reason.as_str())
            .push(", ")
            .bind(m.stock_after)
            .push(", ")
            .bind(m.order_id.clone())
            .push(", ")
            .bind(m.at)
            .push(")");
    }
    q.one_shot();
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Whether the variant exists (and its product is not deleted: a
/// product's deletion marks its variants too).
pub async fn variant_exists<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    variant_id: &str,
) -> Result<bool, StockError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    Ok(
        sql("SELECT 1 FROM variants WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant_id)
            .bind(variant_id)
            .fetch_optional(ex)
            .await?
            .is_some(),
    )
}

/// Applies `delta` to a variant's stock, atomically, and records why.
/// 404 for an unknown variant, 409 `out_of_stock` when the stock would go
/// below zero (and nothing is written). Only an increase is held to
/// `MAX_STOCK`: a cancellation may have returned stock above it, and that
/// stock must still be able to come down.
pub async fn adjust_stock(
    state: &AppState,
    tenant_id: &TenantId,
    variant_id: &str,
    delta: i64,
    reason: &str,
) -> Result<i64, StockError> {
    let now = now_micros();
    let mut tx = state.db.begin().await?;
    // The movement's time is taken under the row lock: after the variant's
    // previous movement, however long this waited (see Movement::at).
    let updated = sql("UPDATE variants SET stock = stock + $3, updated_at = $4, \
         last_movement_at = CASE WHEN last_movement_at + 1 > $4 THEN last_movement_at + 1 ELSE $4 END \
         WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL AND stock + $3 >= 0 AND ($3 <= 0 OR stock + $3 <= $5) \
         RETURNING id, product_id, sku, stock, reorder_level, last_movement_at")
    .bind(tenant_id)
    .bind(variant_id)
    .bind(delta)
    .bind(now)
    .bind(MAX_STOCK)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = updated else {
        let current = sql(
            "SELECT stock FROM variants WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .bind(variant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = current else {
            return Err(StockError::VariantNotFound);
        };
        let stock: i64 = sqlx::Row::try_get(&row, "stock")?;
        let after = stock.saturating_add(delta);
        return Err(if after < 0 {
            StockError::OutOfStock {
                detail: format!("variant {variant_id} has {stock}, {} requested", -delta),
                shortages: vec![FieldError::new(
                    "delta",
                    format!("would take the stock to {after}"),
                )],
            }
        } else {
            StockError::AboveMaximum
        });
    };
    let stock: i64 = sqlx::Row::try_get(&row, "stock")?;
    let at: i64 = sqlx::Row::try_get(&row, "last_movement_at")?;
    let product_id: String = sqlx::Row::try_get(&row, "product_id")?;
    if let Some(low) = StockLow::crossing(&row, delta)? {
        publish_low(&mut tx, tenant_id, vec![low], now).await?;
    }
    record_movements(
        &mut tx,
        tenant_id,
        &[Movement::new(
            variant_id,
            delta,
            reason,
            Applied { stock, at },
            None,
        )],
    )
    .await?;
    commit(tx).await?;
    state
        .cache
        .invalidate(&tags::products_changed(tenant_id, [product_id.as_str()]));
    Ok(stock)
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct MovementView {
    pub id: String,
    pub variant_id: String,
    pub delta: i64,
    pub reason: String,
    pub stock_after: i64,
    pub order_id: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
}

pub const MOVEMENT_FIELDS: &[&str] = &[
    "id",
    "variant_id",
    "delta",
    "reason",
    "stock_after",
    "order_id",
    "created_at",
];

/// A variant's movements, newest first. Two statements: the variant's
/// existence (404) and the page.
pub async fn list_movements(
    state: &AppState,
    tenant_id: &TenantId,
    variant_id: &str,
    page: &Page,
) -> Result<(Vec<MovementView>, Option<String>), StockError> {
    let db = state.db.current_reader();
    if !variant_exists(db, tenant_id, variant_id).await? {
        return Err(StockError::VariantNotFound);
    }
    let mut q = SqlBuilder::new(
        "SELECT id, variant_id, delta, reason, stock_after, order_id, created_at FROM stock_movements WHERE tenant_id = ",
    );
    q.bind(tenant_id)
        .push(" AND variant_id = ")
        .bind(variant_id)
        .after_cursor("", page.after.as_ref())
        .push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q.build().fetch_all_as::<_, MovementView>(db).await?;
    Ok(page.finish(rows, |m| Cursor {
        created_at: m.created_at,
        id: m.id.clone(),
    }))
}

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct StockLevel {
    pub variant_id: String,
    pub product_id: String,
    pub sku: String,
    pub stock: i64,
    pub reorder_level: i64,
    #[serde(skip)]
    pub created_at: i64,
}

pub const STOCK_LEVEL_FIELDS: &[&str] =
    &["variant_id", "product_id", "sku", "stock", "reorder_level"];

/// Stock levels, newest variants first; with `low_only`, those at or below
/// their reorder level (served by the partial index `variants_low_stock`).
pub async fn list_stock(
    state: &AppState,
    tenant_id: &TenantId,
    low_only: bool,
    page: &Page,
) -> Result<(Vec<StockLevel>, Option<String>), StockError> {
    let mut q = SqlBuilder::new(
        "SELECT v.id AS variant_id, v.product_id, v.sku, v.stock, v.reorder_level, v.created_at \
         FROM variants v WHERE v.tenant_id = ",
    );
    // Variants carry their product's deletion, so no join is needed.
    q.bind(tenant_id).push(" AND v.deleted_at IS NULL");
    if low_only {
        q.push(" AND v.low");
    }
    q.after_cursor("v.", page.after.as_ref())
        .push(" ORDER BY v.created_at DESC, v.id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q
        .build()
        .fetch_all_as::<_, StockLevel>(state.db.current_reader())
        .await?;
    Ok(page.finish(rows, |s| Cursor {
        created_at: s.created_at,
        id: s.variant_id.clone(),
    }))
}

/// Locks the rows of these variants in id order (PostgreSQL), so that
/// transactions touching several variants always lock them in the same
/// order and never deadlock. SQLite's single writer needs no lock.
pub async fn lock_variants(
    tx: &mut Tx,
    backend: crate::platform::db::Backend,
    tenant_id: &TenantId,
    ids: &[&str],
) -> Result<(), StockError> {
    if backend != crate::platform::db::Backend::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut q = SqlBuilder::new("SELECT id FROM variants WHERE tenant_id = ");
    q.bind(tenant_id)
        .push(" AND id IN ")
        .bind_in(ids.iter().copied())
        .push(" ORDER BY id FOR UPDATE");
    q.one_shot();
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Which rows a batch of stock changes may touch.
#[derive(Clone, Copy)]
enum Bound {
    /// Taking stock: only where it stays ≥ 0.
    NotNegative,
    /// Returning stock: only where it stays exact (no i64 overflow; no
    /// `MAX_STOCK` cap, see [`adjust_stock`]).
    NoOverflow,
}

/// Applies one stock change per variant in a single statement:
/// `(variant, delta)` pairs, each only within `bound`.
/// Returns the variants changed, each with the change as applied, and the
/// ones the change took down to their reorder level.
async fn apply_deltas(
    tx: &mut Tx,
    tenant_id: &TenantId,
    deltas: &[(&str, i64)],
    bound: Bound,
    now: i64,
) -> Result<(std::collections::HashMap<String, Applied>, Vec<StockLow>), StockError> {
    let mut q = SqlBuilder::new("WITH d (vid, delta) AS (VALUES ");
    for (i, (id, delta)) in deltas.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(").bind(*id).push(", ").bind(*delta).push(")");
    }
    q.push(") UPDATE variants SET stock = variants.stock + d.delta, updated_at = ")
        .bind(now)
        .push(", last_movement_at = CASE WHEN variants.last_movement_at + 1 > ")
        .bind(now)
        .push(" THEN variants.last_movement_at + 1 ELSE ")
        .bind(now)
        .push(" END FROM d WHERE variants.tenant_id = ")
        .bind(tenant_id)
        .push(" AND variants.id = d.vid");
    match bound {
        Bound::NotNegative => q.push(" AND variants.stock + d.delta >= 0"),
        // Returned deltas are positive: compare without computing the sum.
        Bound::NoOverflow => q
            .push(" AND variants.stock <= ")
            .bind(i64::MAX)
            .push(" - d.delta"),
    };
    q.push(" RETURNING id, product_id, sku, stock, reorder_level, last_movement_at")
        .one_shot();
    let rows = q.build().fetch_all(&mut **tx).await?;
    let delta_of: std::collections::HashMap<&str, i64> = deltas.iter().copied().collect();
    let mut applied = std::collections::HashMap::with_capacity(rows.len());
    let mut lows = Vec::new();
    for r in &rows {
        let id: String = sqlx::Row::try_get(r, "id")?;
        let delta = delta_of.get(id.as_str()).copied().unwrap_or(0);
        if let Some(low) = StockLow::crossing(r, delta)? {
            lows.push(low);
        }
        applied.insert(
            id,
            Applied {
                stock: sqlx::Row::try_get(r, "stock")?,
                at: sqlx::Row::try_get(r, "last_movement_at")?,
            },
        );
    }
    Ok((applied, lows))
}

/// Takes stock for an order: every line or none. An `out_of_stock`
/// refusal names each short line; nothing is written then (the caller's
/// transaction rolls back).
pub async fn take_stock(
    tx: &mut Tx,
    tenant_id: &TenantId,
    lines: &[StockTake<'_>],
    order_id: &str,
    now: i64,
) -> Result<(), StockError> {
    if lines.is_empty() {
        return Ok(());
    }
    let deltas: Vec<(&str, i64)> = lines.iter().map(|l| (l.variant_id, -l.quantity)).collect();
    let (after, lows) = apply_deltas(tx, tenant_id, &deltas, Bound::NotNegative, now).await?;
    if after.len() < lines.len() {
        return Err(out_of_stock(lines, |id| !after.contains_key(id)));
    }
    let movements: Vec<Movement> = lines
        .iter()
        .filter_map(|l| {
            after.get(l.variant_id).map(|applied| {
                Movement::new(l.variant_id, -l.quantity, "order", *applied, Some(order_id))
            })
        })
        .collect();
    publish_low(tx, tenant_id, lows, now).await?;
    record_movements(tx, tenant_id, &movements).await
}

/// The `out_of_stock` refusal naming each line whose variant `is_short`.
fn out_of_stock(lines: &[StockTake<'_>], is_short: impl Fn(&str) -> bool) -> StockError {
    let shortages: Vec<FieldError> = lines
        .iter()
        .filter(|l| is_short(l.variant_id))
        .map(|l| {
            FieldError::new(
                l.field.clone(),
                format!(
                    "variant {} has less than the {} requested",
                    l.variant_id, l.quantity
                ),
            )
        })
        .collect();
    let detail = match shortages.as_slice() {
        [one] => one.message.clone(),
        many => format!("{} lines ask for more than is in stock", many.len()),
    };
    StockError::OutOfStock { detail, shortages }
}

/// PostgreSQL, for a statement that takes an order's stock with the
/// order's other writes (see the `orders` module): appends to a `WITH`
/// list `stock_wanted` (the lines), `stock_locked` (their variants, locked
/// in id order, so two such statements never wait on each other in a
/// cycle, and read as they are once locked) and `stock_short` (the lines
/// whose variant is gone or holds less than the line takes). Nothing is
/// written yet: [`STOCK_ENOUGH_PG`] says whether every line can be taken,
/// and [`push_take_stock_pg`] takes them once the statement's checks all
/// passed.
pub fn push_stock_check_pg(q: &mut SqlBuilder, tenant_id: &TenantId, lines: &[StockTake<'_>]) {
    q.push("stock_wanted (vid, delta, movement_id, event_id) AS (VALUES ");
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(l.variant_id)
            .push(", ")
            .bind(-l.quantity)
            .push(", ")
            .bind(new_id())
            .push(", ")
            .bind(new_id())
            .push(")");
    }
    // The ids are listed where the scan of `variants` names them, so it is
    // a primary-key lookup whatever the table's statistics say (a join to
    // `stock_wanted` alone let a young table's stale statistics pick a
    // scan of every variant of the tenant).
    q.push("), stock_locked AS MATERIALIZED (SELECT id, stock FROM variants WHERE tenant_id = ")
        .bind(tenant_id)
        .push(" AND id IN ")
        .bind_in(lines.iter().map(|l| l.variant_id))
        .push(
            " ORDER BY id FOR UPDATE), \
             stock_short AS MATERIALIZED (SELECT w.vid FROM stock_wanted w LEFT JOIN stock_locked l \
             ON l.id = w.vid WHERE l.id IS NULL OR l.stock + w.delta < 0)",
        );
}

/// Whether every line of [`push_stock_check_pg`] can be taken (an SQL
/// condition of the same statement).
pub const STOCK_ENOUGH_PG: &str = "NOT EXISTS (SELECT 1 FROM stock_short)";

/// The ids of the lines [`push_stock_check_pg`] found short,
/// comma-separated (an SQL expression of the same statement).
pub const STOCK_SHORT_IDS_PG: &str = "(SELECT string_agg(vid, ',') FROM stock_short)";

/// PostgreSQL: appends to a `WITH` list, after [`push_stock_check_pg`],
/// what [`take_stock`] does: `stock_taken` takes every line once `ready`
/// (an SQL condition of the same statement: every check passed) holds,
/// and returns the variants taken; then their movements and the
/// `stock.low` events of the variants the take brought to their reorder
/// level. When `ready` is false nothing is written.
pub fn push_take_stock_pg(
    q: &mut SqlBuilder,
    tenant_id: &TenantId,
    lines: &[StockTake<'_>],
    order_id: &str,
    now: i64,
    ready: &str,
) {
    q.push("stock_taken AS (UPDATE variants SET stock = variants.stock + w.delta, updated_at = ")
        .bind(now)
        .push(", last_movement_at = CASE WHEN variants.last_movement_at + 1 > ")
        .bind(now)
        .push(" THEN variants.last_movement_at + 1 ELSE ")
        .bind(now)
        .push(" END FROM stock_wanted w WHERE variants.tenant_id = ")
        .bind(tenant_id)
        // Listed again for the same reason as in `stock_locked`.
        .push(" AND variants.id IN ")
        .bind_in(lines.iter().map(|l| l.variant_id))
        .push(" AND variants.id = w.vid AND variants.stock + w.delta >= 0 AND ")
        .push(ready)
        .push(
            " RETURNING variants.id, variants.product_id, variants.sku, variants.stock, \
             variants.reorder_level, variants.last_movement_at, w.delta, w.movement_id, w.event_id), ",
        )
        .push(&format!(
            "stock_moved AS (INSERT INTO stock_movements ({MOVEMENT_COLUMNS}) SELECT "
        ))
        .bind(tenant_id)
        .push(", movement_id, id, delta, 'order', stock, ")
        .bind(order_id)
        .push(
            ", last_movement_at FROM stock_taken), \
             stock_low AS (INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) SELECT ",
        )
        .bind(tenant_id)
        .push(", event_id, ")
        .bind(topic::STOCK_LOW)
        // The payload as `StockLow` serializes.
        .push(
            ", 'variant:' || id, '{\"variant_id\":' || to_json(id) || ',\"product_id\":' || to_json(product_id) \
             || ',\"sku\":' || to_json(sku) || ',\"stock\":' || stock || ',\"reorder_level\":' || reorder_level || '}', ",
        )
        .bind(now)
        .push(" FROM stock_taken WHERE stock <= reorder_level AND stock - delta > reorder_level)");
}

/// The refusal for the lines a statement built with [`push_stock_check_pg`]
/// found short: `short_ids` as [`STOCK_SHORT_IDS_PG`] listed them.
pub fn out_of_stock_for(lines: &[StockTake<'_>], short_ids: &str) -> StockError {
    let short: std::collections::HashSet<&str> = short_ids.split(',').collect();
    out_of_stock(lines, |id| short.contains(id))
}

/// Puts an order's stock back (a cancellation), with movement rows:
/// `(variant, quantity)` per line.
pub async fn return_stock(
    tx: &mut Tx,
    tenant_id: &TenantId,
    lines: &[(&str, i64)],
    order_id: &str,
    now: i64,
) -> Result<(), StockError> {
    if lines.is_empty() {
        return Ok(());
    }
    let (after, _) = apply_deltas(tx, tenant_id, lines, Bound::NoOverflow, now).await?;
    if after.len() < lines.len() {
        return Err(StockError::ReturnOverflow);
    }
    let movements: Vec<Movement> = lines
        .iter()
        .filter_map(|(id, q)| {
            after
                .get(*id)
                .map(|applied| Movement::new(id, *q, "order_cancelled", *applied, Some(order_id)))
        })
        .collect();
    record_movements(tx, tenant_id, &movements).await
}

/// The columns [`record_movements`] and [`record_movements_in_bulk`] write.
const MOVEMENT_COLUMNS: &str =
    "tenant_id, id, variant_id, delta, reason, stock_after, order_id, created_at";

/// A variant's stock figures as a replay of back-dated history works on
/// them (`brisk seed`'s bulk order history): the stock, the level below
/// which it is low, the time of its last movement and of its last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub stock: i64,
    pub reorder_level: i64,
    pub last_movement_at: i64,
    pub updated_at: i64,
}

impl Level {
    /// What [`take_stock`] (negative `delta`) and [`return_stock`] do to a
    /// variant, applied in memory at `now`: the same bounds (never below
    /// zero, never past `i64`), the same times (`updated_at = now`, the
    /// movement after the previous one). `None` when the update would be
    /// refused; `crossed_low` when a take moved the stock from above its
    /// reorder level to at or below it (the API publishes `stock.low`).
    pub fn apply(&mut self, delta: i64, now: i64) -> Option<(Applied, bool)> {
        let stock = self.stock.checked_add(delta)?;
        if stock < 0 {
            return None;
        }
        let crossed_low =
            delta < 0 && stock <= self.reorder_level && self.stock > self.reorder_level;
        self.stock = stock;
        self.updated_at = now;
        self.last_movement_at = self.last_movement_at.saturating_add(1).max(now);
        Some((
            Applied {
                stock,
                at: self.last_movement_at,
            },
            crossed_low,
        ))
    }
}

/// The [`Level`] of each named variant (one statement; the caller keeps
/// the list within the bound-value limits).
pub async fn levels<'c, E>(
    ex: E,
    tenant_id: &TenantId,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, Level>, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let mut q = SqlBuilder::new(
        "SELECT id, stock, reorder_level, last_movement_at, updated_at FROM variants WHERE tenant_id = ",
    );
    q.bind(tenant_id)
        .push(" AND id IN ")
        .bind_in(ids.iter().copied());
    q.one_shot();
    let rows: Vec<(String, i64, i64, i64, i64)> = q.build().fetch_all_as(ex).await?;
    Ok(rows
        .into_iter()
        .map(|(id, stock, reorder_level, last_movement_at, updated_at)| {
            (
                id,
                Level {
                    stock,
                    reorder_level,
                    last_movement_at,
                    updated_at,
                },
            )
        })
        .collect())
}

/// [`record_movements`] for a bulk writer: thousands of rows per statement
/// ([`crate::platform::db::insert_json_rows`]), each with a new id.
pub async fn record_movements_in_bulk(
    tx: &mut Tx,
    backend: crate::platform::db::Backend,
    tenant_id: &TenantId,
    movements: &[Movement],
) -> Result<(), sqlx::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        tenant_id: &'a str,
        id: String,
        variant_id: &'a str,
        delta: i64,
        reason: &'a str,
        stock_after: i64,
        order_id: Option<&'a str>,
        created_at: i64,
    }
    for chunk in movements.chunks(crate::platform::db::JSON_ROWS_PER_STATEMENT) {
        let rows: Vec<Row<'_>> = chunk
            .iter()
            .map(|m| Row {
                tenant_id: tenant_id.as_str(),
                id: new_id(),
                variant_id: &m.variant_id,
                delta: m.delta,
                reason: &m.reason,
                stock_after: m.stock_after,
                order_id: m.order_id.as_deref(),
                created_at: m.at,
            })
            .collect();
        crate::platform::db::insert_json_rows(
            tx,
            backend,
            "stock_movements",
            MOVEMENT_COLUMNS,
            &rows,
        )
        .await?;
    }
    Ok(())
}

/// Writes replayed [`Level`]s back (stock and its times), in statements of
/// a few hundred variants. Only for a replay that holds the database to
/// itself (`brisk seed`): it sets figures, it does not apply deltas.
pub async fn set_levels(
    tx: &mut Tx,
    tenant_id: &TenantId,
    levels: &[(&str, Level)],
) -> Result<(), sqlx::Error> {
    for chunk in levels.chunks(500) {
        let mut q = SqlBuilder::new("WITH l (vid, stock, moved, changed) AS (VALUES ");
        for (i, (id, level)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(*id)
                .push(", ")
                .bind(level.stock)
                .push(", ")
                .bind(level.last_movement_at)
                .push(", ")
                .bind(level.updated_at)
                .push(")");
        }
        q.push(
            ") UPDATE variants SET stock = l.stock, last_movement_at = l.moved, updated_at = l.changed \
             FROM l WHERE variants.tenant_id = ",
        )
        .bind(tenant_id)
        .push(" AND variants.id = l.vid");
        q.one_shot();
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
