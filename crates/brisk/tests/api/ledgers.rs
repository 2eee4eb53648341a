//! Ledgers read in the order they happened: a wallet's transactions, a
//! variant's stock movements and a tenant's order numbers, listed newest
//! first, must agree with their running figures (`balance_after`,
//! `stock_after`, `number`) even when transactions wait for each other's
//! locks — through the real server, on both backends.

use crate::common::*;
use serde_json::{Value, json};

/// Every page of a list, newest first.
async fn all(s: &TestServer, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut next = format!("{path}?limit=100");
    loop {
        let r = s.get(&next, token).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => next = format!("{path}?limit=100&cursor={c}"),
            None => return items,
        }
    }
}

/// Oldest to newest, each entry's running figure is the previous one moved
/// by its own amount, and the newest is the current figure.
fn assert_chain(
    entries_newest_first: &[Value],
    signed: impl Fn(&Value) -> i64,
    after: &str,
    now: i64,
) {
    let mut running: Option<i64> = None;
    for e in entries_newest_first.iter().rev() {
        let figure = e[after].as_i64().unwrap();
        if let Some(previous) = running {
            assert_eq!(
                previous + signed(e),
                figure,
                "{after} out of order at {e}\nledger, newest first: {entries_newest_first:#?}"
            );
        }
        running = Some(figure);
    }
    assert_eq!(
        running,
        Some(now),
        "the newest entry's {after} is the current figure"
    );
}

fn wallet_amount(e: &Value) -> i64 {
    let amount = e["amount"].as_i64().unwrap();
    if e["type"] == "debit" {
        -amount
    } else {
        amount
    }
}

struct Shop {
    owner: Session,
    customer: String,
    variant: String,
}

async fn shop(s: &TestServer) -> Shop {
    let owner = s.signup("Ledgers").await;
    let t = &owner.token;
    let c = s.post("/api/v1/customers", t, json!({"name": "C"})).await;
    let customer = c.body["id"].as_str().unwrap().to_owned();
    let p = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "P", "variants": [{"sku": "L1", "price": 300, "stock": 100000}]}),
        )
        .await;
    let variant = p.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let credit = s
        .post(
            &format!("/api/v1/customers/{customer}/wallet/credits"),
            t,
            json!({"amount": 1000}),
        )
        .await;
    assert_eq!(credit.status, 201, "{}", credit.body);
    Shop {
        owner,
        customer,
        variant,
    }
}

async fn check_ledgers(s: &TestServer, shop: &Shop) {
    let t = &shop.owner.token;
    let c = &shop.customer;
    let balance = s
        .get(&format!("/api/v1/customers/{c}/wallet"), t)
        .await
        .body["balance"]
        .as_i64()
        .unwrap();
    let ledger = all(s, t, &format!("/api/v1/customers/{c}/wallet/transactions")).await;
    assert_chain(&ledger, wallet_amount, "balance_after", balance);
    let v = &shop.variant;
    let stock = s.get(&format!("/api/v1/variants/{v}"), t).await.body["stock"]
        .as_i64()
        .unwrap();
    let movements = all(s, t, &format!("/api/v1/variants/{v}/movements")).await;
    assert_chain(
        &movements,
        |m| m["delta"].as_i64().unwrap(),
        "stock_after",
        stock,
    );
    let orders = all(s, t, "/api/v1/orders").await;
    let numbers: Vec<&str> = orders
        .iter()
        .map(|o| o["number"].as_str().unwrap())
        .collect();
    let mut descending = numbers.clone();
    descending.sort_by(|a, b| b.cmp(a));
    assert_eq!(numbers, descending, "newest first is highest number first");
}

/// PostgreSQL, made deterministic: an order waits on a variant's row lock
/// (held from outside) after reading the clock, while a credit to the same
/// wallet commits. The order's debit and movement still list after the
/// credit, since they were applied after it.
#[tokio::test]
async fn an_order_that_waited_for_a_lock_lists_after_what_committed_meanwhile() {
    if !is_postgres() {
        return; // SQLite's one writer cannot be held from outside this way
    }
    let s = start().await;
    let shop = shop(&s).await;
    let t = shop.owner.token.clone();
    let pool = s.raw_database().await;
    let mut holder = pool.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM variants WHERE id = '{}' FOR UPDATE",
        shop.variant
    )))
    .execute(&mut *holder)
    .await
    .unwrap();
    let order = {
        let req = s
            .client
            .post(format!("{}/api/v1/orders", s.base))
            .bearer_auth(&t)
            .json(
                &json!({"customer_id": shop.customer, "payment_method": "wallet",
                          "items": [{"variant_id": shop.variant, "quantity": 1}]}),
            );
        tokio::spawn(async move { TestServer::read(req.send().await.unwrap()).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let credit = s
        .post(
            &format!("/api/v1/customers/{}/wallet/credits", shop.customer),
            &t,
            json!({"amount": 50}),
        )
        .await;
    assert_eq!(credit.status, 201, "{}", credit.body);
    let adjusted = tokio::spawn({
        let req = s
            .client
            .post(format!(
                "{}/api/v1/variants/{}/stock-adjustments",
                s.base, shop.variant
            ))
            .bearer_auth(&t)
            .json(&json!({"delta": 5, "reason": "recount"}));
        async move { TestServer::read(req.send().await.unwrap()).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    holder.commit().await.unwrap();
    let order = order.await.unwrap();
    assert_eq!(order.status, 201, "{}", order.body);
    assert_eq!(adjusted.await.unwrap().status, 200);
    check_ledgers(&s, &shop).await;
}

/// Both backends: credits, wallet orders, cancellations and stock
/// adjustments of one customer and one variant, all at once. Afterwards
/// every ledger reads in the order its figures were applied.
#[tokio::test]
async fn ledgers_read_in_order_after_a_concurrent_mix() {
    let s = start().await;
    let shop = shop(&s).await;
    let t = shop.owner.token.clone();
    let order_body = json!({"customer_id": shop.customer, "payment_method": "wallet",
                            "items": [{"variant_id": shop.variant, "quantity": 1}]});
    let credit = s
        .post(
            &format!("/api/v1/customers/{}/wallet/credits", shop.customer),
            &t,
            json!({"amount": 100000}),
        )
        .await;
    assert_eq!(credit.status, 201);
    let mut to_cancel = Vec::new();
    for _ in 0..15 {
        let o = s.post("/api/v1/orders", &t, order_body.clone()).await;
        assert_eq!(o.status, 201, "{}", o.body);
        to_cancel.push(o.body["id"].as_str().unwrap().to_owned());
    }
    let mut tasks = Vec::new();
    for k in 0..150usize {
        let (path, body) = match k % 5 {
            0 => (
                format!("/api/v1/customers/{}/wallet/credits", shop.customer),
                json!({"amount": 7 + k as i64}),
            ),
            1 | 2 => ("/api/v1/orders".to_owned(), order_body.clone()),
            3 => (
                format!("/api/v1/variants/{}/stock-adjustments", shop.variant),
                json!({"delta": if k % 2 == 0 { 3 } else { -2 }, "reason": "count"}),
            ),
            _ => match to_cancel.pop() {
                Some(id) => (
                    format!("/api/v1/orders/{id}/status"),
                    json!({"status": "cancelled"}),
                ),
                None => ("/api/v1/orders".to_owned(), order_body.clone()),
            },
        };
        let req = s
            .client
            .post(format!("{}{path}", s.base))
            .bearer_auth(&t)
            .json(&body);
        tasks.push(tokio::spawn(async move {
            TestServer::read(req.send().await.unwrap()).await
        }));
    }
    for task in tasks {
        let r = task.await.unwrap();
        assert!(matches!(r.status, 200 | 201), "{}: {}", r.status, r.body);
    }
    check_ledgers(&s, &shop).await;
}
