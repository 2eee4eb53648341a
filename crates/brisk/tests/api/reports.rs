//! The sales report: rows and totals equal the model of the orders placed
//! (by day and by month, empty periods zero-filled, defaults), bad input
//! is refused with the documented codes, and only owner, admin and sales
//! read it. Plus an ignored benchmark over 100,000 orders.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::dashboard::{
    FRESH_WITHIN, Model, date_of, day_text, micros_at, micros_now, month_text, shop,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The report the model predicts.
fn expected(model: &Model, from: time::Date, to: time::Date, by_month: bool) -> Value {
    let mut rows = Vec::new();
    let mut period_start = from;
    while period_start <= to {
        let period_end = if by_month {
            let next = if period_start.month() == time::Month::December {
                time::Date::from_calendar_date(period_start.year() + 1, time::Month::January, 1)
            } else {
                time::Date::from_calendar_date(period_start.year(), period_start.month().next(), 1)
            }
            .unwrap();
            next.previous_day().unwrap().min(to)
        } else {
            period_start
        };
        let (o, r, c) = model.figures(period_start, period_end);
        let period = if by_month {
            month_text(period_start)
        } else {
            day_text(period_start)
        };
        rows.push(json!({"period": period, "orders": o, "revenue": r, "cost": c, "margin": r - c}));
        period_start = period_end.next_day().unwrap();
    }
    let (o, r, c) = model.figures(from, to);
    json!({"currency": "USD", "from": day_text(from), "to": day_text(to),
           "group_by": if by_month { "month" } else { "day" },
           "rows": rows, "totals": {"orders": o, "revenue": r, "cost": c, "margin": r - c}})
}

/// The report at `query` once it equals `want` (or after the bound).
async fn report_once(s: &TestServer, token: &str, query: &str, want: &Value) -> Value {
    let deadline = tokio::time::Instant::now() + FRESH_WITHIN;
    loop {
        let r = s.get(&format!("/api/v1/reports/sales{query}"), token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if &r.body == want || tokio::time::Instant::now() > deadline {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn the_sales_report_equals_the_model_by_day_and_by_month() {
    let s = start().await;
    let mut shop = shop(&s, "Report Model").await;
    let t = shop.owner.token.clone();
    shop.trade(&s).await;
    let mut other = shop_for_other(&s).await;
    other.order(&s, &[(0, 9)], "invoice").await;

    let today = OffsetDateTime::now_utc().date();
    let from = today - time::Duration::days(45);
    // By day, across the month boundary, days without orders included.
    let want = expected(&shop.model, from, today, false);
    assert_eq!(want["rows"].as_array().unwrap().len(), 46);
    let query = format!(
        "?from={}&to={}&group_by=day",
        day_text(from),
        day_text(today)
    );
    assert_eq!(report_once(&s, &t, &query, &want).await, want);
    // By month: the first and last months are cut at the range's ends.
    let want = expected(&shop.model, from, today, true);
    let query = format!(
        "?from={}&to={}&group_by=month",
        day_text(from),
        day_text(today)
    );
    assert_eq!(report_once(&s, &t, &query, &want).await, want);
    // Defaults: this month by day, up to today.
    let first = today.replace_day(1).unwrap();
    let want = expected(&shop.model, first, today, false);
    assert_eq!(report_once(&s, &t, "", &want).await, want);
    // A range with no orders at all is all zeros.
    let (a, b) = (
        time::Date::from_calendar_date(2001, time::Month::February, 27).unwrap(),
        time::Date::from_calendar_date(2001, time::Month::March, 2).unwrap(),
    );
    let want = expected(&shop.model, a, b, false);
    assert_eq!(want["totals"]["orders"], 0);
    assert_eq!(
        report_once(&s, &t, "?from=2001-02-27&to=2001-03-02", &want).await,
        want
    );
    // The boundary days split exactly: yesterday's last microsecond and
    // today's first are in different rows.
    let yesterday = today.previous_day().unwrap();
    let want = expected(&shop.model, yesterday, today, false);
    assert!(want["rows"][0]["orders"].as_i64().unwrap() >= 1);
    let query = format!("?from={}&to={}", day_text(yesterday), day_text(today));
    assert_eq!(report_once(&s, &t, &query, &want).await, want);

    // A cancellation leaves its day and month at once.
    let live = shop
        .model
        .sales
        .iter()
        .find(|s| s.status == "placed" && date_of(s.created_at) == today)
        .map(|s| s.id.clone())
        .unwrap();
    shop.move_to(&s, &live, "cancelled").await;
    let want = expected(&shop.model, first, today, false);
    assert_eq!(report_once(&s, &t, "", &want).await, want);
}

async fn shop_for_other(s: &TestServer) -> crate::dashboard::Shop {
    shop(s, "Report Other").await
}

#[tokio::test]
async fn bad_ranges_are_422_and_malformed_parameters_400() {
    let s = start().await;
    let owner = s.signup("Report Input").await;
    let t = &owner.token;
    let get = |q: &str| {
        let path = format!("/api/v1/reports/sales?{q}");
        let s = &s;
        async move { s.get(&path, t).await }
    };
    let r = get("from=2026-03-02&to=2026-03-01").await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["from"]);
    // 366 days by day is the most; 367 is refused.
    assert_eq!(get("from=2024-01-01&to=2024-12-31").await.status, 200);
    get("from=2025-01-01&to=2026-01-02")
        .await
        .assert_problem(422, "validation_failed");
    // 120 months by month is the most; 121 is refused.
    assert_eq!(
        get("from=2016-01-01&to=2025-12-31&group_by=month")
            .await
            .status,
        200
    );
    get("from=2016-01-01&to=2026-01-01&group_by=month")
        .await
        .assert_problem(422, "validation_failed");
    for bad in [
        "from=2026-02-30",
        "to=x",
        "from=2026-1-1",
        "group_by=week",
        "group_by=DAY",
    ] {
        get(bad).await.assert_problem(400, "bad_request");
    }
    get("fields=rows,nope")
        .await
        .assert_problem(400, "unknown_field");
    // A malformed parameter is a 400 even for a role that may not read.
    let viewer = s.user_with_role(&owner, "viewer").await;
    s.get("/api/v1/reports/sales?from=x", &viewer.token)
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn only_owner_admin_and_sales_read_the_sales_report() {
    let s = start().await;
    let owner = s.signup("Report Roles").await;
    assert_eq!(
        s.get("/api/v1/reports/sales", &owner.token).await.status,
        200
    );
    for (role, status) in [
        ("admin", 200),
        ("sales", 200),
        ("warehouse", 403),
        ("viewer", 403),
    ] {
        let user = s.user_with_role(&owner, role).await;
        let r = s.get("/api/v1/reports/sales", &user.token).await;
        assert_eq!(r.status, status, "{role}: {}", r.body);
        if status == 403 {
            r.assert_problem(403, "forbidden");
        }
    }
}

#[tokio::test]
async fn a_cached_report_runs_no_sql_and_answers_its_etag_with_304() {
    let s = start().await;
    let owner = s.signup("Report Cache").await;
    let t = &owner.token;
    let path = "/api/v1/reports/sales?from=2026-01-01&to=2026-03-31&group_by=month";
    let first = s.get(path, t).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["rows"].as_array().unwrap().len(), 3);
    let again = s.get(path, t).await;
    assert_eq!(again.statements(), 0);
    let etag = again.header("etag").unwrap().to_owned();
    let resp = s
        .client
        .get(format!("{}{path}", s.base))
        .bearer_auth(t)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 304);
}

/// 100,000 orders over 366 days, written in bulk; times the uncached
/// report by day over the whole range. Run with
/// `cargo test --release --test api reports::bench -- --ignored --nocapture`.
#[tokio::test]
#[ignore]
async fn bench_sales_report_over_100k_orders_and_366_days() {
    let s = start().await;
    let shop = shop(&s, "Report Bench").await;
    let t = shop.owner.token.clone();
    let today = OffsetDateTime::now_utc().date();
    let from = today - time::Duration::days(365);
    let start_micros = micros_at(from);
    let pool = s.raw_database().await;
    let seeding = Instant::now();
    const ORDERS: i64 = 100_000;
    const CHUNK: i64 = 500;
    let mut n = 0;
    while n < ORDERS {
        let mut tx = pool.begin().await.unwrap();
        let mut orders = String::from(
            "INSERT INTO orders (tenant_id, id, number, customer_id, status, payment_method, subtotal, \
             discount_total, total, created_at, updated_at) VALUES ",
        );
        let mut items = String::from(
            "INSERT INTO order_items (tenant_id, order_id, position, variant_id, product_id, product_name, \
             sku, quantity, unit_price, unit_cost, discount, line_total) VALUES ",
        );
        let mut events = String::from(
            "INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) VALUES ",
        );
        for k in 0..CHUNK {
            let i = n + k;
            let id = uuid::Uuid::now_v7().to_string();
            // Spread over the 366 days, a few seconds apart.
            let at = start_micros + (i % 366) * 86_400_000_000 + (i / 366) * 1_000_000;
            let item = &shop.items[(i % 3) as usize];
            let q = 1 + i % 4;
            let sep = if k > 0 { ", " } else { "" };
            orders.push_str(&format!(
                "{sep}('{tenant}', '{id}', 'B-{i:07}', '{customer}', 'placed', 'invoice', {total}, 0, {total}, {at}, {at})",
                tenant = shop.owner.tenant_id,
                customer = shop.customer,
                total = item.price * q,
            ));
            items.push_str(&format!(
                "{sep}('{tenant}', '{id}', 0, '{variant}', '{product}', '{name}', 'SKU', {q}, {price}, {cost}, 0, {total})",
                tenant = shop.owner.tenant_id,
                variant = item.variant,
                product = item.product,
                name = item.name,
                price = item.price,
                cost = item.cost,
                total = item.price * q,
            ));
            let payload = json!({"id": id, "status": "placed"}).to_string();
            events.push_str(&format!(
                "{sep}('{tenant}', '{eid}', 'order.created', 'order:{id}', '{payload}', {now})",
                tenant = shop.owner.tenant_id,
                eid = uuid::Uuid::now_v7(),
                now = micros_now(),
            ));
        }
        for q in [orders, items, events] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(q))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        n += CHUNK;
    }
    println!("seeded {ORDERS} orders in {:?}", seeding.elapsed());
    // Wait for the dispatcher to fold them into the aggregates.
    let folding = Instant::now();
    let query = format!("?from={}&to={}", day_text(from), day_text(today));
    loop {
        let r = s.get(&format!("/api/v1/reports/sales{query}"), &t).await;
        if r.body["totals"]["orders"] == ORDERS {
            break;
        }
        assert!(
            folding.elapsed() < Duration::from_secs(900),
            "not folded: {}",
            r.body["totals"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("aggregated in {:?}", folding.elapsed());
    // Uncached: each round spells `fields` differently (empty names are
    // ignored), so each is its own cache entry and computes (statements >
    // 0 proves it).
    let mut times = Vec::new();
    for round in 0..20 {
        let fields = format!("currency,from,to,group_by,rows,totals{}", ",".repeat(round));
        let path = format!("/api/v1/reports/sales{query}&fields={fields}");
        let began = Instant::now();
        let r = s.get(&path, &t).await;
        let took = began.elapsed();
        assert_eq!(r.status, 200, "{}", r.body);
        if r.statements() > 0 {
            times.push(took);
        }
        assert_eq!(r.body["rows"].as_array().unwrap().len(), 366);
    }
    times.sort();
    println!(
        "uncached report, 366 days over {ORDERS} orders ({} backend): min {:?}, median {:?}, max {:?} over {} runs",
        backend(),
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
    let cached = Instant::now();
    let r = s.get(&format!("/api/v1/reports/sales{query}"), &t).await;
    println!(
        "cached: {:?} ({} statements)",
        cached.elapsed(),
        r.statements()
    );
    assert!(times[times.len() / 2] < Duration::from_millis(50));
}
