//! The dashboard: every figure equals a model the test keeps of the orders
//! it placed (through the API, and historical ones written with their
//! `order.created` events the way placement writes them), follows each
//! change within a bounded wait, is served from the cache without SQL, and
//! reaches every node.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long a test waits for a figure to follow a write. The design keeps
/// it within about a second; the bound is generous so that a loaded test
/// machine does not fail the suite.
pub const FRESH_WITHIN: Duration = Duration::from_secs(10);

pub fn micros_now() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap()
}

pub fn date_of(micros: i64) -> time::Date {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap()
        .date()
}

pub fn day_text(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

pub fn month_text(date: time::Date) -> String {
    format!("{:04}-{:02}", date.year(), u8::from(date.month()))
}

pub fn micros_at(date: time::Date) -> i64 {
    i64::try_from(date.midnight().assume_utc().unix_timestamp_nanos() / 1000).unwrap()
}

fn rfc3339(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// A product of the shop: one variant.
#[derive(Debug, Clone)]
pub struct Item {
    pub product: String,
    pub name: String,
    pub variant: String,
    pub price: i64,
    pub cost: i64,
}

/// One order as the model knows it.
#[derive(Debug, Clone)]
pub struct Sale {
    pub id: String,
    pub created_at: i64,
    pub total: i64,
    pub cost: i64,
    pub status: String,
    /// `(product_id, name, quantity, line_total)`.
    pub lines: Vec<(String, String, i64, i64)>,
}

/// What the test placed, and what the figures must therefore be.
#[derive(Debug, Default, Clone)]
pub struct Model {
    pub sales: Vec<Sale>,
}

impl Model {
    fn live(&self) -> impl Iterator<Item = &Sale> {
        self.sales.iter().filter(|s| s.status != "cancelled")
    }

    /// `(orders, revenue, cost)` of the live orders created within `[from, to]`.
    pub fn figures(&self, from: time::Date, to: time::Date) -> (i64, i64, i64) {
        self.live()
            .filter(|s| (from..=to).contains(&date_of(s.created_at)))
            .fold((0, 0, 0), |(o, r, c), s| (o + 1, r + s.total, c + s.cost))
    }

    pub fn set_status(&mut self, id: &str, status: &str) {
        let sale = self.sales.iter_mut().find(|s| s.id == id).unwrap();
        sale.status = status.to_owned();
    }

    /// The order figures of the dashboard on `today`.
    pub fn dashboard(&self, today: time::Date) -> Value {
        let first = today.replace_day(1).unwrap();
        let (to_o, to_r, _) = self.figures(today, today);
        let (mo_o, mo_r, _) = self.figures(first, today);
        let mut by_status =
            json!({"placed": 0, "paid": 0, "shipped": 0, "delivered": 0, "cancelled": 0});
        for s in &self.sales {
            let n = by_status[&s.status].as_i64().unwrap();
            by_status[&s.status] = json!(n + 1);
        }
        let mut products: std::collections::BTreeMap<String, (String, i64, i64)> =
            Default::default();
        for s in self
            .live()
            .filter(|s| month_text(date_of(s.created_at)) == month_text(today))
        {
            for (id, name, q, r) in &s.lines {
                let e = products.entry(id.clone()).or_insert((name.clone(), 0, 0));
                e.1 += q;
                e.2 += r;
            }
        }
        let mut top: Vec<(String, (String, i64, i64))> = products.into_iter().collect();
        top.sort_by(|a, b| b.1.2.cmp(&a.1.2).then(a.0.cmp(&b.0)));
        let top: Vec<Value> = top
            .into_iter()
            .take(5)
            .map(|(id, (name, q, r))| json!({"product_id": id, "name": name, "quantity": q, "revenue": r}))
            .collect();
        json!({
            "today": {"orders": to_o, "revenue": to_r},
            "month": {"orders": mo_o, "revenue": mo_r},
            "orders_by_status": by_status,
            "top_products": top,
        })
    }
}

pub struct Shop {
    pub owner: Session,
    pub customer: String,
    pub items: Vec<Item>,
    pub model: Model,
    next_number: i64,
}

/// A tenant with three products (one variant each, plenty of stock) and a
/// customer with funds in the wallet.
pub async fn shop(s: &TestServer, company: &str) -> Shop {
    let owner = s.signup(company).await;
    let t = &owner.token;
    let mut items = Vec::new();
    for (name, sku, price, cost) in [
        ("Alpha", "ALPHA", 1000, 600),
        ("Beta", "BETA", 400, 250),
        ("Gamma", "GAMMA", 1000, 100),
    ] {
        let p = s
            .post(
                "/api/v1/products",
                t,
                json!({"name": name, "variants": [{"sku": sku, "price": price, "cost": cost, "stock": 100000}]}),
            )
            .await;
        assert_eq!(p.status, 201, "{}", p.body);
        items.push(Item {
            product: p.body["id"].as_str().unwrap().to_owned(),
            name: name.to_owned(),
            variant: p.body["variants"][0]["id"].as_str().unwrap().to_owned(),
            price,
            cost,
        });
    }
    let c = s
        .post("/api/v1/customers", t, json!({"name": "Buyer"}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    let customer = c.body["id"].as_str().unwrap().to_owned();
    let credit = s
        .post(
            &format!("/api/v1/customers/{customer}/wallet/credits"),
            t,
            json!({"amount": 1_000_000}),
        )
        .await;
    assert_eq!(credit.status, 201, "{}", credit.body);
    Shop {
        owner,
        customer,
        items,
        model: Model::default(),
        next_number: 0,
    }
}

impl Shop {
    /// Places an order through the API (`lines`: item index, quantity)
    /// and adds it to the model.
    pub async fn order(&mut self, s: &TestServer, lines: &[(usize, i64)], method: &str) -> String {
        let items: Vec<Value> = lines
            .iter()
            .map(|(i, q)| json!({"variant_id": self.items[*i].variant, "quantity": q}))
            .collect();
        let r = s
            .post(
                "/api/v1/orders",
                &self.owner.token,
                json!({"customer_id": self.customer, "payment_method": method, "items": items}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let created_at = OffsetDateTime::parse(r.body["created_at"].as_str().unwrap(), &Rfc3339)
            .unwrap()
            .unix_timestamp_nanos()
            / 1000;
        let sale = Sale {
            id: r.body["id"].as_str().unwrap().to_owned(),
            created_at: i64::try_from(created_at).unwrap(),
            total: r.body["total"].as_i64().unwrap(),
            cost: lines.iter().map(|(i, q)| self.items[*i].cost * q).sum(),
            status: r.body["status"].as_str().unwrap().to_owned(),
            lines: r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["product_id"].as_str().unwrap().to_owned(),
                        l["product_name"].as_str().unwrap().to_owned(),
                        l["quantity"].as_i64().unwrap(),
                        l["line_total"].as_i64().unwrap(),
                    )
                })
                .collect(),
        };
        let id = sale.id.clone();
        self.model.sales.push(sale);
        id
    }

    /// Moves an order through the API and in the model.
    pub async fn move_to(&mut self, s: &TestServer, id: &str, status: &str) {
        let r = s
            .post(
                &format!("/api/v1/orders/{id}/status"),
                &self.owner.token,
                json!({"status": status}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        self.model.set_status(id, status);
    }

    /// Writes an order created at `created_at` (micros) as placement
    /// writes one — the order, its lines, its first history entry and its
    /// `order.created` event, in one transaction — for history the API
    /// cannot backdate. Status `placed`, paid by invoice, list prices.
    pub async fn historical_order(
        &mut self,
        s: &TestServer,
        created_at: i64,
        lines: &[(usize, i64)],
    ) -> String {
        self.next_number += 1;
        let id = uuid::Uuid::now_v7().to_string();
        let number = format!("H-{:06}", self.next_number);
        let tenant = self.owner.tenant_id.clone();
        let mut total = 0;
        let mut cost = 0;
        let mut sale_lines = Vec::new();
        let mut items_json = Vec::new();
        for (i, q) in lines {
            let item = &self.items[*i];
            total += item.price * q;
            cost += item.cost * q;
            sale_lines.push((item.product.clone(), item.name.clone(), *q, item.price * q));
            items_json.push(
                json!({"variant_id": item.variant, "product_id": item.product,
                "product_name": item.name, "sku": item.name.to_uppercase(), "quantity": q,
                "unit_price": item.price, "discount": 0, "line_total": item.price * q}),
            );
        }
        let payload = json!({"id": id, "number": number, "status": "placed",
            "customer_id": self.customer, "payment_method": "invoice", "items": items_json,
            "subtotal": total, "discount_total": 0, "total": total, "notes": null,
            "quotation_id": null, "created_at": rfc3339(created_at), "updated_at": rfc3339(created_at)});
        let pool = s.raw_database().await;
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO orders (tenant_id, id, number, customer_id, status, payment_method, subtotal, \
             discount_total, total, created_at, updated_at) VALUES ($1, $2, $3, $4, 'placed', 'invoice', $5, 0, $5, $6, $6)",
        )
        .bind(&tenant)
        .bind(&id)
        .bind(&number)
        .bind(&self.customer)
        .bind(total)
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .unwrap();
        for (position, (i, q)) in lines.iter().enumerate() {
            let item = &self.items[*i];
            sqlx::query(
                "INSERT INTO order_items (tenant_id, order_id, position, variant_id, product_id, product_name, \
                 sku, quantity, unit_price, unit_cost, discount, line_total) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)",
            )
            .bind(&tenant)
            .bind(&id)
            .bind(position as i64)
            .bind(&item.variant)
            .bind(&item.product)
            .bind(&item.name)
            .bind(item.name.to_uppercase())
            .bind(*q)
            .bind(item.price)
            .bind(item.cost)
            .bind(item.price * q)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO order_status_history (tenant_id, id, order_id, status, created_at) \
             VALUES ($1, $2, $3, 'placed', $4)",
        )
        .bind(&tenant)
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&id)
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) \
             VALUES ($1, $2, 'order.created', $3, $4, $5)",
        )
        .bind(&tenant)
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(format!("order:{id}"))
        .bind(payload.to_string())
        .bind(micros_now())
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        pool.close().await;
        self.model.sales.push(Sale {
            id: id.clone(),
            created_at,
            total,
            cost,
            status: "placed".to_owned(),
            lines: sale_lines,
        });
        id
    }

    /// Orders of every kind: on both sides of today's and this month's
    /// UTC boundaries, moved along the lifecycle, cancelled (from placed,
    /// from paid, and one from last month).
    pub async fn trade(&mut self, s: &TestServer) {
        let today = OffsetDateTime::now_utc().date();
        let day_start = micros_at(today);
        let month_start = micros_at(today.replace_day(1).unwrap());
        self.historical_order(s, day_start - 1, &[(0, 1)]).await;
        self.historical_order(s, day_start, &[(1, 2)]).await;
        self.historical_order(s, month_start - 1, &[(2, 5)]).await;
        self.historical_order(s, month_start, &[(0, 3), (1, 1)])
            .await;
        self.historical_order(s, day_start - 40 * 86_400_000_000, &[(1, 10)])
            .await;
        let old = self.historical_order(s, month_start - 2, &[(0, 1)]).await;
        self.move_to(s, &old, "cancelled").await;

        self.order(s, &[(0, 2)], "invoice").await;
        let delivered = self.order(s, &[(1, 3), (0, 1)], "invoice").await;
        for status in ["paid", "shipped", "delivered"] {
            self.move_to(s, &delivered, status).await;
        }
        let cancelled = self.order(s, &[(2, 2)], "invoice").await;
        self.move_to(s, &cancelled, "cancelled").await;
        let refunded = self.order(s, &[(1, 1)], "wallet").await;
        self.move_to(s, &refunded, "cancelled").await;
        let paid = self.order(s, &[(2, 1)], "invoice").await;
        self.move_to(s, &paid, "paid").await;
    }
}

/// The dashboard without `as_of` (which changes at every computation).
pub async fn dashboard(s: &TestServer, token: &str) -> Value {
    let r = s.get("/api/v1/dashboard", token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut body = r.body;
    let as_of = body
        .as_object_mut()
        .unwrap()
        .remove("as_of")
        .expect("as_of");
    assert!(OffsetDateTime::parse(as_of.as_str().unwrap(), &Rfc3339).is_ok());
    body
}

/// The listed fields of the dashboard, once they equal `expected` (or
/// after [`FRESH_WITHIN`], whatever they are then).
pub async fn dashboard_once(s: &TestServer, token: &str, expected: &Value) -> Value {
    let deadline = tokio::time::Instant::now() + FRESH_WITHIN;
    loop {
        let body = dashboard(s, token).await;
        let seen: serde_json::Map<String, Value> = expected
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (k.clone(), body[k].clone()))
            .collect();
        let seen = Value::Object(seen);
        if &seen == expected || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn the_dashboard_equals_a_model_of_the_orders_customers_quotations_and_stock() {
    let s = start().await;
    let mut shop = shop(&s, "Dash Model").await;
    let t = shop.owner.token.clone();
    shop.trade(&s).await;

    // Another tenant's orders count nowhere here.
    let mut other = self::shop(&s, "Dash Other").await;
    other.order(&s, &[(0, 7)], "invoice").await;
    let o = other.order(&s, &[(1, 1)], "invoice").await;
    other.move_to(&s, &o, "paid").await;

    // Customers: the buyer (new), one from 40 days ago, one deleted.
    let old = s
        .post("/api/v1/customers", &t, json!({"name": "Old"}))
        .await;
    let gone = s
        .post("/api/v1/customers", &t, json!({"name": "Gone"}))
        .await;
    let gone_id = gone.body["id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/api/v1/customers/{gone_id}"), &t)
            .await
            .status,
        204
    );
    let pool = s.raw_database().await;
    sqlx::query("UPDATE customers SET created_at = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(micros_now() - 40 * 86_400_000_000)
        .bind(&shop.owner.tenant_id)
        .bind(old.body["id"].as_str().unwrap())
        .execute(&pool)
        .await
        .unwrap();

    // Low stock: at and below the reorder level count; above it, an
    // inactive variant, an inactive product and a deleted product do not.
    let low = s
        .post(
            "/api/v1/products",
            &t,
            json!({"name": "Lowly", "variants": [
                {"sku": "L1", "price": 100, "stock": 2, "reorder_level": 5},
                {"sku": "L2", "price": 100, "stock": 5, "reorder_level": 5},
                {"sku": "L3", "price": 100, "stock": 6, "reorder_level": 5},
                {"sku": "L4", "price": 100, "stock": 1, "reorder_level": 5, "active": false}]}),
        )
        .await;
    assert_eq!(low.status, 201, "{}", low.body);
    let hidden = s
        .post(
            "/api/v1/products",
            &t,
            json!({"name": "Hidden", "active": false, "variants": [{"sku": "H1", "price": 100, "stock": 0}]}),
        )
        .await;
    assert_eq!(hidden.status, 201, "{}", hidden.body);
    let deleted = s
        .post(
            "/api/v1/products",
            &t,
            json!({"name": "Deleted", "variants": [{"sku": "D1", "price": 100, "stock": 0}]}),
        )
        .await;
    let deleted_id = deleted.body["id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/api/v1/products/{deleted_id}"), &t)
            .await
            .status,
        204
    );

    // Quotations: a draft, a sent one, an accepted one count; expired
    // drafts and sent ones, and rejected ones, do not.
    let quote = |i: usize, q: i64| json!({"customer_id": shop.customer, "items": [{"variant_id": shop.items[i].variant, "quantity": q}]});
    let mut ids = Vec::new();
    let mut totals = Vec::new();
    for (i, q) in [(0, 1), (1, 2), (2, 3), (0, 4), (1, 5), (2, 6)] {
        let r = s.post("/api/v1/quotations", &t, quote(i, q)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
        totals.push(r.body["total"].as_i64().unwrap());
    }
    for (k, moves) in [
        (1, &["send"][..]),
        (2, &["send", "accept"][..]),
        (4, &["send"][..]),
        (5, &["send", "reject"][..]),
    ] {
        for m in moves {
            let r = s
                .post(&format!("/api/v1/quotations/{}/{m}", ids[k]), &t, json!({}))
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    // 3 (a draft) and 4 (sent) expire.
    for k in [3, 4] {
        sqlx::query(
            "UPDATE quotations SET valid_until = '2000-01-01' WHERE tenant_id = $1 AND id = $2",
        )
        .bind(&shop.owner.tenant_id)
        .bind(&ids[k])
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let today = OffsetDateTime::now_utc().date();
    let mut expected = shop.model.dashboard(today);
    expected["customers"] = json!({"total": 2, "new_this_month": 1});
    expected["low_stock_variants"] = json!(2);
    expected["quotations"] = json!({"draft": 1, "sent": 1, "accepted": 1, "open_value": totals[1]});
    let seen = dashboard_once(&s, &t, &expected).await;
    assert_eq!(seen, expected);
    // Sanity of the model itself: the boundaries split as designed.
    assert!(shop.model.sales.len() >= 11);

    let other_expected = other.model.dashboard(today);
    assert_eq!(
        dashboard_once(&s, &other.owner.token, &other_expected).await,
        other_expected
    );
}

#[tokio::test]
async fn order_figures_follow_each_order_and_status_change() {
    let s = start().await;
    let mut shop = shop(&s, "Dash Fresh").await;
    let t = shop.owner.token.clone();
    let today = OffsetDateTime::now_utc().date();
    // Cached before any order.
    let empty = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&s, &t, &empty).await, empty);

    let a = shop.order(&s, &[(0, 2), (1, 1)], "invoice").await;
    let expected = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&s, &t, &expected).await, expected);

    shop.move_to(&s, &a, "paid").await;
    let expected = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&s, &t, &expected).await, expected);

    let b = shop.order(&s, &[(2, 3)], "wallet").await;
    let expected = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&s, &t, &expected).await, expected);

    shop.move_to(&s, &b, "cancelled").await;
    let expected = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&s, &t, &expected).await, expected);
    assert_eq!(expected["orders_by_status"]["cancelled"], 1);
    assert_eq!(expected["today"]["orders"], 1);
}

#[tokio::test]
async fn customer_quotation_and_stock_writes_show_on_the_dashboard() {
    let s = start().await;
    let shop = shop(&s, "Dash Others").await;
    let t = &shop.owner.token;
    let base = dashboard(&s, t).await;
    assert_eq!(base["customers"], json!({"total": 1, "new_this_month": 1}));
    assert_eq!(base["low_stock_variants"], 0);

    // A new customer, then its deletion.
    let c = s
        .post("/api/v1/customers", t, json!({"name": "Newcomer"}))
        .await;
    assert_eq!(c.status, 201);
    let want = json!({"customers": {"total": 2, "new_this_month": 2}});
    assert_eq!(dashboard_once(&s, t, &want).await, want);
    let id = c.body["id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/api/v1/customers/{id}"), t).await.status,
        204
    );
    let want = json!({"customers": {"total": 1, "new_this_month": 1}});
    assert_eq!(dashboard_once(&s, t, &want).await, want);

    // A quotation created, sent, accepted.
    let q = s
        .post(
            "/api/v1/quotations",
            t,
            json!({"customer_id": shop.customer, "items": [{"variant_id": shop.items[0].variant, "quantity": 2}]}),
        )
        .await;
    assert_eq!(q.status, 201, "{}", q.body);
    let (qid, total) = (q.body["id"].as_str().unwrap(), q.body["total"].clone());
    let want = json!({"quotations": {"draft": 1, "sent": 0, "accepted": 0, "open_value": 0}});
    assert_eq!(dashboard_once(&s, t, &want).await, want);
    s.post(&format!("/api/v1/quotations/{qid}/send"), t, json!({}))
        .await;
    let want = json!({"quotations": {"draft": 0, "sent": 1, "accepted": 0, "open_value": total}});
    assert_eq!(dashboard_once(&s, t, &want).await, want);
    s.post(&format!("/api/v1/quotations/{qid}/accept"), t, json!({}))
        .await;
    let want = json!({"quotations": {"draft": 0, "sent": 0, "accepted": 1, "open_value": 0}});
    assert_eq!(dashboard_once(&s, t, &want).await, want);

    // Stock falling to the reorder level, then the product deactivated.
    let variant = &shop.items[1].variant;
    let r = s
        .post(
            &format!("/api/v1/variants/{variant}/stock-adjustments"),
            t,
            json!({"delta": -99_996, "reason": "count"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let want = json!({"low_stock_variants": 1});
    assert_eq!(dashboard_once(&s, t, &want).await, want);
    let product = &shop.items[1].product;
    let r = s
        .patch(
            &format!("/api/v1/products/{product}"),
            t,
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let want = json!({"low_stock_variants": 0});
    assert_eq!(dashboard_once(&s, t, &want).await, want);
}

#[tokio::test]
async fn a_cached_dashboard_runs_no_sql_and_answers_its_etag_with_304() {
    let s = start().await;
    let shop = shop(&s, "Dash Cache").await;
    let t = &shop.owner.token;
    let first = s.get("/api/v1/dashboard", t).await;
    assert_eq!(first.status, 200);
    assert!(first.statements() > 0);
    let again = s.get("/api/v1/dashboard", t).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.statements(), 0, "a cache hit runs no SQL");
    assert_eq!(again.bytes, first.bytes, "the same bytes, as_of included");
    let etag = again.header("etag").expect("an ETag").to_owned();
    let resp = s
        .client
        .get(format!("{}/api/v1/dashboard", s.base))
        .bearer_auth(t)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    let r = TestServer::read(resp).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.statements(), 0);
    // Field selection is its own entry.
    let some = s.get("/api/v1/dashboard?fields=today,month", t).await;
    assert_eq!(some.status, 200);
    let keys: Vec<&String> = some.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["month", "today"]);
    s.get("/api/v1/dashboard?fields=nope", t)
        .await
        .assert_problem(400, "unknown_field");
}

#[tokio::test]
async fn every_role_of_the_tenant_reads_the_dashboard() {
    let s = start().await;
    let shop = shop(&s, "Dash Roles").await;
    for role in ["admin", "sales", "warehouse", "viewer"] {
        let user = s.user_with_role(&shop.owner, role).await;
        assert_eq!(
            s.get("/api/v1/dashboard", &user.token).await.status,
            200,
            "{role}"
        );
    }
    s.get_anon("/api/v1/dashboard")
        .await
        .assert_problem(401, "unauthorized");
}

async fn two_nodes_see_one_change(redis: Option<&RedisServer>) {
    let url = redis.map(RedisServer::url);
    let u = url.clone();
    let a = start_with(move |c| c.redis_url = u).await;
    let b = start_beside(&a, move |c| c.redis_url = url).await;
    let mut shop = shop(&a, "Dash Nodes").await;
    let t = shop.owner.token.clone();
    let today = OffsetDateTime::now_utc().date();
    let empty = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&b, &t, &empty).await, empty);
    assert_eq!(dashboard_once(&a, &t, &empty).await, empty);
    // B serves from its cache now.
    assert_eq!(b.get("/api/v1/dashboard", &t).await.statements(), 0);

    let id = shop.order(&a, &[(0, 1)], "invoice").await;
    let expected = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&b, &t, &expected).await, expected);
    shop.move_to(&a, &id, "paid").await;
    let expected = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&b, &t, &expected).await, expected);
    let c = a
        .post("/api/v1/customers", &t, json!({"name": "Seen on B"}))
        .await;
    assert_eq!(c.status, 201);
    let want = json!({"customers": {"total": 2, "new_this_month": 2}});
    assert_eq!(dashboard_once(&b, &t, &want).await, want);
}

#[tokio::test]
async fn a_change_through_one_node_shows_on_the_other_nodes_dashboard() {
    // SQLite is one node: two processes on one file share no cache fan-out.
    if !is_postgres() {
        return;
    }
    two_nodes_see_one_change(None).await;
}

#[tokio::test]
async fn a_change_through_one_node_shows_on_the_other_nodes_dashboard_with_redis() {
    if !is_postgres() {
        return;
    }
    let redis = RedisServer::start().await;
    two_nodes_see_one_change(Some(&redis)).await;
}

/// Migration 0009 backfills the aggregates from the orders as they are,
/// and lists the order events still waiting in the outbox at that moment
/// so that their later dispatch is not counted a second time. Played here
/// by undoing 0009 on a database with both dispatched and waiting order
/// events, and starting a node that applies it again.
#[tokio::test]
async fn the_backfill_counts_every_order_once_whether_its_events_were_dispatched_or_not() {
    // A node without a dispatcher: every event waits.
    let a = start_with(|c| c.workers = 0).await;
    let mut shop = shop(&a, "Dash Backfill").await;
    let first = shop.order(&a, &[(0, 2)], "invoice").await;
    shop.order(&a, &[(1, 1), (2, 1)], "wallet").await;
    let pool = a.raw_database().await;
    // What an older version (without the aggregates) already dispatched.
    sqlx::query("UPDATE outbox SET processed_at = $1 WHERE processed_at IS NULL")
        .bind(micros_now())
        .execute(&pool)
        .await
        .unwrap();
    // Waiting at migration time: a new order, a move, a cancellation.
    let third = shop.order(&a, &[(2, 4)], "invoice").await;
    shop.move_to(&a, &third, "paid").await;
    shop.move_to(&a, &first, "cancelled").await;
    for table in [
        "sales_daily",
        "product_sales_monthly",
        "order_status_counts",
        "sales_backfilled_events",
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("DROP INDEX customers_live_count")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let b = start_beside(&a, |_| {}).await;
    let today = OffsetDateTime::now_utc().date();
    let t = shop.owner.token.clone();
    let expected = shop.model.dashboard(today);
    assert_eq!(expected["orders_by_status"]["cancelled"], 1);
    assert_eq!(dashboard_once(&b, &t, &expected).await, expected);
    // Once the waiting events are through, nothing changes any more...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pool = b.raw_database().await;
        let (waiting,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE processed_at IS NULL")
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        if waiting == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events still waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        dashboard(&b, &t).await["orders_by_status"],
        expected["orders_by_status"]
    );
    assert_eq!(dashboard(&b, &t).await["today"], expected["today"]);
    // ...and new orders count as usual.
    shop.order(&b, &[(0, 1)], "invoice").await;
    let expected = shop.model.dashboard(today);
    assert_eq!(dashboard_once(&b, &t, &expected).await, expected);
}
