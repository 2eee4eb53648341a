//! The sales aggregates and the outbox consumer that keeps them:
//! `sales_daily`, `product_sales_monthly`, `order_status_counts` (and
//! `sales_backfilled_events`, the migration's list of events it already
//! counted).
//!
//! Each dispatch batch becomes deltas summed in Rust with checked
//! arithmetic, then a fixed number of statements: one to drop events the
//! backfill counted, one to read the figures of the orders involved, and
//! one multi-row upsert per table (`… ON CONFLICT … DO UPDATE SET x = x +
//! excluded.x`), split only when a batch has more rows than one statement
//! may bind.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use serde::Deserialize;
use sqlx::Row;

use super::periods;
use crate::modules::orders::{self, SaleLine};
use crate::platform::cache::{Cache, tags};
use crate::platform::clock;
use crate::platform::db::{SqlBuilder, Tx, sql};
use crate::platform::dispatch::{Consumer, Event};
use crate::platform::jobs::BoxFuture;
use crate::platform::outbox::topic;
use crate::platform::tenant::TenantId;

/// Rows per upsert statement (6 binds each: well under either backend's
/// bind limit).
const ROWS_PER_STATEMENT: usize = 1000;

const CANCELLED: &str = "cancelled";

/// Keeps the sales aggregates from order events, in the dispatch
/// transaction, and invalidates the dashboard and the touched report
/// months once that committed.
pub struct SalesAggregates {
    cache: Cache,
    /// The tags each batch touched (by the `seq` of its first event),
    /// from `consume` to `after_commit`. A batch whose transaction rolled
    /// back leaves its entry until the retry of that batch replaces it.
    touched: Mutex<BTreeMap<i64, Vec<String>>>,
}

impl SalesAggregates {
    pub fn new(cache: Cache) -> Self {
        SalesAggregates {
            cache,
            touched: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Consumer for SalesAggregates {
    fn name(&self) -> &'static str {
        "sales aggregates"
    }

    fn wants(&self, topic: &str) -> bool {
        topic == topic::ORDER_CREATED || topic == topic::ORDER_STATUS_CHANGED
    }

    fn consume<'a>(
        &'a self,
        tx: &'a mut Tx,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let tags = apply(tx, events).await?;
            if let (Some(first), Ok(mut touched)) = (events.first(), self.touched.lock()) {
                // Only batches in flight stay: at most a retried one.
                touched.retain(|seq, _| *seq >= first.seq);
                touched.insert(first.seq, tags);
            }
            Ok(())
        })
    }

    fn after_commit(&self, events: &[Event]) {
        let tags = events.first().and_then(|first| {
            self.touched
                .lock()
                .ok()
                .and_then(|mut touched| touched.remove(&first.seq))
        });
        // Without a record (never expected), every tenant's dashboard in
        // the batch is still invalidated.
        let tags = tags.unwrap_or_else(|| {
            events
                .iter()
                .map(|e| tags::dashboard(&e.tenant_id))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        });
        self.cache.invalidate(&tags);
    }
}

/// What the aggregates need of an event's payload (the rest is ignored).
#[derive(Debug, Deserialize)]
struct CreatedPayload {
    id: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct MovedPayload {
    order_id: String,
    from: String,
    to: String,
}

#[derive(Debug)]
enum Fact {
    Created {
        order_id: String,
        status: String,
    },
    Moved {
        order_id: String,
        from: String,
        to: String,
    },
}

#[derive(Debug)]
struct Parsed {
    seq: i64,
    tenant_id: TenantId,
    fact: Fact,
}

fn parse(event: &Event) -> Option<Parsed> {
    let fact = if event.topic == topic::ORDER_CREATED {
        serde_json::from_str::<CreatedPayload>(&event.payload)
            .map(|p| Fact::Created {
                order_id: p.id,
                status: p.status,
            })
            .map_err(|e| e.to_string())
    } else {
        serde_json::from_str::<MovedPayload>(&event.payload)
            .map(|p| Fact::Moved {
                order_id: p.order_id,
                from: p.from,
                to: p.to,
            })
            .map_err(|e| e.to_string())
    };
    match fact {
        Ok(fact) => Some(Parsed {
            seq: event.seq,
            tenant_id: event.tenant_id.clone(),
            fact,
        }),
        Err(error) => {
            // Failing the batch would hold every later event (webhooks,
            // e-mails) behind this one for ever; the order itself is fine.
            tracing::error!(event = %event.id, topic = %event.topic, %error,
                "sales aggregates: the event does not parse; its figures are not counted");
            None
        }
    }
}

/// One order's contribution to the aggregates.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OrderFigures {
    day: String,
    month: String,
    total: i64,
    cost: i64,
    /// `(product_id, name, quantity, line totals)`, one per product.
    products: Vec<(String, String, i64, i64)>,
}

fn figures(lines: &[&SaleLine]) -> Option<OrderFigures> {
    let first = lines.first()?;
    let day = periods::day_of_micros(first.created_at)?;
    let mut cost: i64 = 0;
    let mut products: Vec<(String, String, i64, i64)> = Vec::new();
    for line in lines {
        cost = cost.checked_add(line.unit_cost.checked_mul(line.quantity)?)?;
        match products.iter_mut().find(|p| p.0 == line.product_id) {
            Some(p) => {
                p.2 = p.2.checked_add(line.quantity)?;
                p.3 = p.3.checked_add(line.line_total)?;
            }
            None => products.push((
                line.product_id.clone(),
                line.product_name.clone(),
                line.quantity,
                line.line_total,
            )),
        }
    }
    Some(OrderFigures {
        day: clock::format_date(day),
        month: periods::month_of(day),
        total: first.order_total,
        cost,
        products,
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct DayDelta {
    orders: i64,
    revenue: i64,
    cost: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ProductDelta {
    name: String,
    quantity: i64,
    revenue: i64,
}

/// The batch's net change to each aggregate row.
#[derive(Debug, Default)]
struct Deltas {
    days: BTreeMap<(TenantId, String), DayDelta>,
    products: BTreeMap<(TenantId, String, String), ProductDelta>,
    statuses: BTreeMap<(TenantId, String), i64>,
}

impl Deltas {
    /// One order's figures added (`sign` 1) or taken back (`sign` -1).
    fn of_order(tenant_id: &TenantId, f: &OrderFigures, sign: i64) -> Option<Deltas> {
        let mut d = Deltas::default();
        d.days.insert(
            (tenant_id.clone(), f.day.clone()),
            DayDelta {
                orders: sign,
                revenue: f.total.checked_mul(sign)?,
                cost: f.cost.checked_mul(sign)?,
            },
        );
        for (product_id, name, quantity, revenue) in &f.products {
            d.products.insert(
                (tenant_id.clone(), f.month.clone(), product_id.clone()),
                ProductDelta {
                    name: name.clone(),
                    quantity: quantity.checked_mul(sign)?,
                    revenue: revenue.checked_mul(sign)?,
                },
            );
        }
        Some(d)
    }

    /// One order leaving `from` (none for a new order) for `to`.
    fn of_move(tenant_id: &TenantId, from: Option<&str>, to: &str) -> Deltas {
        let mut d = Deltas::default();
        if let Some(from) = from {
            d.statuses.insert((tenant_id.clone(), from.to_owned()), -1);
        }
        *d.statuses
            .entry((tenant_id.clone(), to.to_owned()))
            .or_insert(0) += 1;
        d
    }

    /// Adds `other` to these; all or nothing, `None` (and unchanged) on
    /// overflow.
    fn merge(&mut self, other: &Deltas) -> Option<()> {
        let days = other
            .days
            .iter()
            .map(|(k, d)| {
                let cur = self.days.get(k).copied().unwrap_or_default();
                Some((
                    k.clone(),
                    DayDelta {
                        orders: cur.orders.checked_add(d.orders)?,
                        revenue: cur.revenue.checked_add(d.revenue)?,
                        cost: cur.cost.checked_add(d.cost)?,
                    },
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        let products = other
            .products
            .iter()
            .map(|(k, p)| {
                let cur = self.products.get(k).cloned().unwrap_or_default();
                // The latest sale names the product; a cancellation keeps
                // the name it had (unless the row is new and needs one).
                let name = if p.quantity > 0 || cur.name.is_empty() {
                    p.name.clone()
                } else {
                    cur.name
                };
                Some((
                    k.clone(),
                    ProductDelta {
                        name,
                        quantity: cur.quantity.checked_add(p.quantity)?,
                        revenue: cur.revenue.checked_add(p.revenue)?,
                    },
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        let statuses = other
            .statuses
            .iter()
            .map(|(k, n)| {
                let cur = self.statuses.get(k).copied().unwrap_or(0);
                Some((k.clone(), cur.checked_add(*n)?))
            })
            .collect::<Option<Vec<_>>>()?;
        self.days.extend(days);
        self.products.extend(products);
        self.statuses.extend(statuses);
        Some(())
    }
}

/// The batch's effects: a fixed number of statements. Returns the cache
/// tags they touch: the dashboard of every tenant in the batch, and the
/// report month of every order added or taken back.
async fn apply(tx: &mut Tx, events: &[Event]) -> Result<Vec<String>, sqlx::Error> {
    let parsed: Vec<Parsed> = events.iter().filter_map(parse).collect();
    let counted = drop_backfilled(tx, &parsed).await?;
    let facts: Vec<&Parsed> = parsed
        .iter()
        .filter(|p| !counted.contains(&(p.tenant_id.clone(), p.seq)))
        .collect();
    let wanted: Vec<(TenantId, String)> = facts
        .iter()
        .filter_map(|p| match &p.fact {
            Fact::Created { order_id, .. } => Some((p.tenant_id.clone(), order_id.clone())),
            Fact::Moved { order_id, to, .. } if to == CANCELLED => {
                Some((p.tenant_id.clone(), order_id.clone()))
            }
            Fact::Moved { .. } => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let lines = orders::sale_lines(tx, &wanted).await?;
    let mut by_order: HashMap<(&TenantId, &str), Vec<&SaleLine>> = HashMap::new();
    for line in &lines {
        by_order
            .entry((&line.tenant_id, line.order_id.as_str()))
            .or_default()
            .push(line);
    }
    let mut deltas = Deltas::default();
    for p in facts {
        let (order_id, sign, from, to) = match &p.fact {
            Fact::Created { order_id, status } => (order_id, 1, None, status),
            Fact::Moved { order_id, from, to } => (
                order_id,
                if to == CANCELLED { -1 } else { 0 },
                Some(from.as_str()),
                to,
            ),
        };
        let applied = (|| {
            let mut one = Deltas::of_move(&p.tenant_id, from, to);
            if sign != 0 {
                let lines = by_order.get(&(&p.tenant_id, order_id.as_str()))?;
                one.merge(&Deltas::of_order(&p.tenant_id, &figures(lines)?, sign)?)?;
            }
            deltas.merge(&one)
        })();
        if applied.is_none() {
            tracing::error!(seq = p.seq, tenant = %p.tenant_id, order = %order_id,
                "sales aggregates: the order is unknown or its figures overflow; not counted");
        }
    }
    upsert_days(tx, &deltas.days).await?;
    upsert_products(tx, &deltas.products).await?;
    upsert_statuses(tx, &deltas.statuses).await?;
    let mut touched: BTreeSet<String> = events
        .iter()
        .map(|e| tags::dashboard(&e.tenant_id))
        .collect();
    touched.extend(
        deltas
            .days
            .keys()
            .map(|(tenant_id, day)| tags::sales_month(tenant_id, day.get(..7).unwrap_or(day))),
    );
    Ok(touched.into_iter().collect())
}

/// Deletes, and returns, the batch's events that the migration's backfill
/// already counted (one statement; the list is empty soon after the
/// migration).
async fn drop_backfilled(
    tx: &mut Tx,
    parsed: &[Parsed],
) -> Result<HashSet<(TenantId, i64)>, sqlx::Error> {
    let mut counted = HashSet::new();
    if parsed.is_empty() {
        return Ok(counted);
    }
    let mut q =
        SqlBuilder::new("DELETE FROM sales_backfilled_events WHERE (tenant_id, seq) IN (VALUES ");
    for (i, p) in parsed.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(&p.tenant_id)
            .push(", ")
            .bind(p.seq)
            .push(")");
    }
    q.push(") RETURNING tenant_id, seq").one_shot();
    for row in q.build().fetch_all(&mut **tx).await? {
        counted.insert((row.try_get("tenant_id")?, row.try_get("seq")?));
    }
    Ok(counted)
}

async fn upsert_days(
    tx: &mut Tx,
    days: &BTreeMap<(TenantId, String), DayDelta>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = days
        .iter()
        .filter(|(_, d)| **d != DayDelta::default())
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = SqlBuilder::new(
            "INSERT INTO sales_daily (tenant_id, day, orders, revenue, cost) VALUES ",
        );
        for (i, ((tenant_id, day), d)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(tenant_id)
                .push(", ")
                .bind(day.as_str())
                .push(", ")
                .bind(d.orders)
                .push(", ")
                .bind(d.revenue)
                .push(", ")
                .bind(d.cost)
                .push(")");
        }
        q.push(
            " ON CONFLICT (tenant_id, day) DO UPDATE SET orders = sales_daily.orders + excluded.orders, \
             revenue = sales_daily.revenue + excluded.revenue, cost = sales_daily.cost + excluded.cost",
        )
        .one_shot();
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn upsert_products(
    tx: &mut Tx,
    products: &BTreeMap<(TenantId, String, String), ProductDelta>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = products
        .iter()
        .filter(|(_, p)| p.quantity != 0 || p.revenue != 0)
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = SqlBuilder::new(
            "INSERT INTO product_sales_monthly (tenant_id, month, product_id, name, quantity, revenue) VALUES ",
        );
        for (i, ((tenant_id, month, product_id), p)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(tenant_id)
                .push(", ")
                .bind(month.as_str())
                .push(", ")
                .bind(product_id.as_str())
                .push(", ")
                .bind(p.name.as_str())
                .push(", ")
                .bind(p.quantity)
                .push(", ")
                .bind(p.revenue)
                .push(")");
        }
        q.push(
            " ON CONFLICT (tenant_id, month, product_id) DO UPDATE SET \
             quantity = product_sales_monthly.quantity + excluded.quantity, \
             revenue = product_sales_monthly.revenue + excluded.revenue, \
             name = CASE WHEN excluded.quantity > 0 THEN excluded.name ELSE product_sales_monthly.name END",
        )
        .one_shot();
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn upsert_statuses(
    tx: &mut Tx,
    statuses: &BTreeMap<(TenantId, String), i64>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = statuses.iter().filter(|(_, n)| **n != 0).collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            SqlBuilder::new("INSERT INTO order_status_counts (tenant_id, status, count) VALUES ");
        for (i, ((tenant_id, status), n)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push("(")
                .bind(tenant_id)
                .push(", ")
                .bind(status.as_str())
                .push(", ")
                .bind(**n)
                .push(")");
        }
        q.push(
            " ON CONFLICT (tenant_id, status) DO UPDATE SET count = order_status_counts.count + excluded.count",
        )
        .one_shot();
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A tenant's sales days in `[from, to]` (`YYYY-MM-DD`), oldest first: one
/// range of the primary key.
pub async fn sales_days<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    ex: E,
    tenant_id: &TenantId,
    from: &str,
    to: &str,
) -> Result<Vec<SalesDay>, sqlx::Error> {
    sql("SELECT day, orders, revenue, cost FROM sales_daily \
         WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY day")
    .bind(tenant_id)
    .bind(from)
    .bind(to)
    .fetch_all_as::<_, SalesDay>(ex)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SalesDay {
    pub day: String,
    pub orders: i64,
    pub revenue: i64,
    pub cost: i64,
}

/// Every order of a tenant by current status.
pub async fn status_counts<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    ex: E,
    tenant_id: &TenantId,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sql("SELECT status, count FROM order_status_counts WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_all(ex)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("count")?)))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct TopProduct {
    pub product_id: String,
    pub name: String,
    pub quantity: i64,
    pub revenue: i64,
}

/// A month's best-selling products by revenue, ties by product id: the
/// first rows of the index `product_sales_monthly_top`.
pub async fn top_products<'c, E: sqlx::Executor<'c, Database = sqlx::Any>>(
    ex: E,
    tenant_id: &TenantId,
    month: &str,
    limit: i64,
) -> Result<Vec<TopProduct>, sqlx::Error> {
    sql(
        "SELECT product_id, name, quantity, revenue FROM product_sales_monthly \
         WHERE tenant_id = $1 AND month = $2 AND quantity > 0 \
         ORDER BY revenue DESC, product_id LIMIT $3",
    )
    .bind(tenant_id)
    .bind(month)
    .bind(limit)
    .fetch_all_as::<_, TopProduct>(ex)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        order: &str,
        product: &str,
        quantity: i64,
        line_total: i64,
        unit_cost: i64,
    ) -> SaleLine {
        SaleLine {
            tenant_id: TenantId::new("t"),
            order_id: order.to_owned(),
            created_at: 1_767_225_599_999_999, // 2025-12-31T23:59:59.999999Z
            order_total: 900,
            product_id: product.to_owned(),
            product_name: format!("name {product}"),
            quantity,
            line_total,
            unit_cost,
        }
    }

    #[test]
    fn an_order_counts_on_its_utc_day_and_month_with_lines_of_one_product_merged() {
        let lines = [
            line("o", "a", 2, 400, 100),
            line("o", "b", 1, 300, 50),
            line("o", "a", 1, 200, 100),
        ];
        let refs: Vec<&SaleLine> = lines.iter().collect();
        let f = figures(&refs).unwrap();
        assert_eq!(f.day, "2025-12-31");
        assert_eq!(f.month, "2025-12");
        assert_eq!(f.cost, 350);
        assert_eq!(f.products[0], ("a".to_owned(), "name a".to_owned(), 3, 600));
    }

    #[test]
    fn a_cancellation_takes_back_exactly_what_the_order_added() {
        let lines = [line("o", "a", 2, 400, 100)];
        let refs: Vec<&SaleLine> = lines.iter().collect();
        let f = figures(&refs).unwrap();
        let t = TenantId::new("t");
        let mut d = Deltas::default();
        d.merge(&Deltas::of_order(&t, &f, 1).unwrap()).unwrap();
        d.merge(&Deltas::of_move(&t, None, "placed")).unwrap();
        d.merge(&Deltas::of_order(&t, &f, -1).unwrap()).unwrap();
        d.merge(&Deltas::of_move(&t, Some("placed"), "cancelled"))
            .unwrap();
        assert_eq!(d.days.values().next(), Some(&DayDelta::default()));
        assert_eq!(
            d.products.values().next().map(|p| (p.quantity, p.revenue)),
            Some((0, 0))
        );
        assert_eq!(d.statuses.get(&(t.clone(), "placed".to_owned())), Some(&0));
        assert_eq!(d.statuses.get(&(t, "cancelled".to_owned())), Some(&1));
    }

    #[test]
    fn an_overflowing_merge_changes_nothing() {
        let t = TenantId::new("t");
        let mut d = Deltas::default();
        d.days.insert(
            (t.clone(), "2026-01-01".to_owned()),
            DayDelta {
                orders: 1,
                revenue: i64::MAX,
                cost: 0,
            },
        );
        let mut more = Deltas::of_move(&t, None, "placed");
        more.days.insert(
            (t.clone(), "2026-01-01".to_owned()),
            DayDelta {
                orders: 1,
                revenue: 1,
                cost: 0,
            },
        );
        assert!(d.merge(&more).is_none());
        assert!(d.statuses.is_empty());
    }

    #[test]
    fn overflowing_figures_are_refused_not_wrapped() {
        let lines = [line("o", "a", 2, 400, i64::MAX)];
        let refs: Vec<&SaleLine> = lines.iter().collect();
        assert!(figures(&refs).is_none());
    }
}
