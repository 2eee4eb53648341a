//! Orders: placement (all or nothing), idempotency, lifecycle, reads and
//! the concurrency races of issue 4 — through the real server.

use crate::common::*;
use serde_json::{Value, json};

struct Shop {
    owner: Session,
    customer: String,
    /// Variants with stock 50, price 1000, cost 600.
    variants: Vec<String>,
}

async fn shop(s: &TestServer, variants: usize, stock: i64) -> Shop {
    let owner = s.signup("Shop").await;
    let customer = s
        .post(
            "/api/v1/customers",
            &owner.token,
            json!({"name": "Buyer", "discount_bp": 1000}),
        )
        .await;
    assert_eq!(customer.status, 201, "{}", customer.body);
    let vs: Vec<Value> = (0..variants)
        .map(|i| json!({"sku": format!("V{i}"), "price": 1000, "cost": 600, "stock": stock}))
        .collect();
    let p = s
        .post(
            "/api/v1/products",
            &owner.token,
            json!({"name": "Thing", "variants": vs}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    Shop {
        customer: customer.body["id"].as_str().unwrap().to_owned(),
        variants: p.body["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect(),
        owner,
    }
}

async fn stock(s: &TestServer, token: &str, variant: &str) -> i64 {
    s.get(&format!("/api/v1/variants/{variant}"), token)
        .await
        .body["stock"]
        .as_i64()
        .unwrap()
}

async fn count(s: &TestServer, token: &str, path: &str) -> usize {
    let mut n = 0;
    let mut next = format!(
        "{path}{}limit=100",
        if path.contains('?') { "&" } else { "?" }
    );
    loop {
        let r = s.get(&next, token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        n += r.body["items"].as_array().unwrap().len();
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                next = format!(
                    "{path}{}limit=100&cursor={c}",
                    if path.contains('?') { "&" } else { "?" }
                )
            }
            None => return n,
        }
    }
}

async fn credit(s: &TestServer, token: &str, customer: &str, amount: i64) {
    let r = s
        .post(
            &format!("/api/v1/customers/{customer}/wallet/credits"),
            token,
            json!({"amount": amount}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn balance(s: &TestServer, token: &str, customer: &str) -> i64 {
    s.get(&format!("/api/v1/customers/{customer}/wallet"), token)
        .await
        .body["balance"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn an_invoice_order_is_priced_takes_stock_and_records_everything() {
    let s = start().await;
    let shop = shop(&s, 2, 50).await;
    let t = &shop.owner.token;
    let r = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice", "notes": "rush",
                                          "items": [{"variant_id": shop.variants[1], "quantity": 3}, {"variant_id": shop.variants[0], "quantity": 2}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let o = &r.body;
    assert_eq!(o["status"], "placed");
    assert_eq!(o["payment_method"], "invoice");
    assert_eq!(o["customer_id"], shop.customer.as_str());
    assert!(o["number"].as_str().unwrap().starts_with("SO-"));
    assert_eq!(
        o["items"][0],
        json!({"variant_id": shop.variants[1], "sku": "V1", "quantity": 3, "unit_price": 1000, "discount": 300, "line_total": 2700, "product_id": o["items"][0]["product_id"], "product_name": "Thing"})
    );
    assert_eq!(
        (
            o["subtotal"].as_i64(),
            o["discount_total"].as_i64(),
            o["total"].as_i64()
        ),
        (Some(5000), Some(500), Some(4500))
    );
    assert_eq!(stock(&s, t, &shop.variants[1]).await, 47);
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 48);
    let id = o["id"].as_str().unwrap();
    let mv = s
        .get(
            &format!("/api/v1/variants/{}/movements", shop.variants[1]),
            t,
        )
        .await;
    assert_eq!(mv.body["items"][0]["delta"], -3);
    assert_eq!(mv.body["items"][0]["stock_after"], 47);
    assert_eq!(mv.body["items"][0]["order_id"], id);
    let d = s.get(&format!("/api/v1/orders/{id}"), t).await;
    assert_eq!(d.status, 200);
    assert_eq!(
        d.body["status_history"],
        json!([{"status": "placed", "note": null, "created_at": d.body["created_at"]}])
    );
    assert_eq!(d.body["items"], o["items"]);
    assert_eq!(
        balance(&s, t, &shop.customer).await,
        0,
        "an invoice order does not touch the wallet"
    );
}

#[tokio::test]
async fn a_wallet_order_is_paid_at_once_and_debits_the_wallet() {
    let s = start().await;
    let shop = shop(&s, 1, 50).await;
    let t = &shop.owner.token;
    credit(&s, t, &shop.customer, 10_000).await;
    let r = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "wallet", "items": [{"variant_id": shop.variants[0], "quantity": 4}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["status"], "paid");
    assert_eq!(r.body["total"], 3600);
    assert_eq!(balance(&s, t, &shop.customer).await, 6400);
    let tx = s
        .get(
            &format!("/api/v1/customers/{}/wallet/transactions", shop.customer),
            t,
        )
        .await;
    let first = &tx.body["items"][0];
    assert_eq!(
        (
            first["type"].as_str(),
            first["amount"].as_i64(),
            first["balance_after"].as_i64()
        ),
        (Some("debit"), Some(3600), Some(6400))
    );
    assert_eq!(first["order_id"], r.body["id"]);
    let d = s
        .get(
            &format!("/api/v1/orders/{}", r.body["id"].as_str().unwrap()),
            t,
        )
        .await;
    assert_eq!(d.body["status_history"][0]["status"], "paid");
}

#[tokio::test]
async fn out_of_stock_and_insufficient_funds_write_nothing_at_all() {
    let s = start().await;
    let shop = shop(&s, 2, 5).await;
    let t = &shop.owner.token;
    credit(&s, t, &shop.customer, 1000).await;
    // Second line short: the first line's stock is not taken either.
    let r = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice",
                                          "items": [{"variant_id": shop.variants[0], "quantity": 2}, {"variant_id": shop.variants[1], "quantity": 6}]}))
        .await;
    r.assert_problem(409, "out_of_stock");
    assert_eq!(r.error_fields(), vec!["items[1].quantity"]);
    // In stock but the wallet is short.
    let r = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "wallet", "items": [{"variant_id": shop.variants[0], "quantity": 2}]}))
        .await;
    r.assert_problem(409, "insufficient_funds");
    // Both short: stock is checked first.
    let r = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "wallet", "items": [{"variant_id": shop.variants[0], "quantity": 9}]}))
        .await;
    r.assert_problem(409, "out_of_stock");
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 5);
    assert_eq!(stock(&s, t, &shop.variants[1]).await, 5);
    assert_eq!(balance(&s, t, &shop.customer).await, 1000);
    assert_eq!(count(&s, t, "/api/v1/orders").await, 0);
    assert_eq!(
        count(
            &s,
            t,
            &format!("/api/v1/variants/{}/movements", shop.variants[0])
        )
        .await,
        1,
        "only the initial movement"
    );
    assert_eq!(
        count(
            &s,
            t,
            &format!("/api/v1/customers/{}/wallet/transactions", shop.customer)
        )
        .await,
        1,
        "only the credit"
    );
    // The next order still gets the next number.
    let ok = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 1}]}))
        .await;
    assert_eq!(ok.body["number"], "SO-000001");
}

#[tokio::test]
async fn bad_orders_are_422_naming_each_problem_and_change_nothing() {
    let s = start().await;
    let shop = shop(&s, 2, 50).await;
    let other = s.signup("Other").await;
    let t = &shop.owner.token;
    let inactive = s.post("/api/v1/products", t, json!({"name": "Old", "variants": [{"sku": "OLD", "price": 5, "stock": 5, "active": false}]})).await;
    let inactive = inactive.body["variants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let their_customer = s
        .post("/api/v1/customers", &other.token, json!({"name": "Theirs"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let their_variant = s
        .post(
            "/api/v1/products",
            &other.token,
            json!({"name": "T", "variants": [{"sku": "T", "price": 5, "stock": 5}]}),
        )
        .await;
    let their_variant = their_variant.body["variants"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (c, v0, v1) = (
        shop.customer.as_str(),
        shop.variants[0].as_str(),
        shop.variants[1].as_str(),
    );
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": []}),
            vec!["items"],
        ),
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": v0, "quantity": 0}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": v0, "quantity": -1}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": v0, "quantity": 1}, {"variant_id": v0, "quantity": 1}]}),
            vec!["items[1].variant_id"],
        ),
        (
            json!({"customer_id": c, "payment_method": "cash", "items": [{"variant_id": v0, "quantity": 1}]}),
            vec!["payment_method"],
        ),
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": inactive, "quantity": 1}]}),
            vec!["items[0].variant_id"],
        ),
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": "nope", "quantity": 1}, {"variant_id": their_variant, "quantity": 1}]}),
            vec!["items[0].variant_id", "items[1].variant_id"],
        ),
        (
            json!({"customer_id": their_customer, "payment_method": "invoice", "items": [{"variant_id": v1, "quantity": 1}]}),
            vec!["customer_id"],
        ),
        (
            json!({"customer_id": "nope", "payment_method": "invoice", "items": [{"variant_id": "nope", "quantity": 1}]}),
            vec!["customer_id", "items[0].variant_id"],
        ),
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": v0, "quantity": 9_223_372_036_854_775_807i64}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": v0, "quantity": "1"}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"payment_method": "invoice", "items": [{"variant_id": v0, "quantity": 1}]}),
            vec!["customer_id"],
        ),
        // Every missing or mistyped field at once, not only serde's first.
        (json!({}), vec!["customer_id", "items", "payment_method"]),
        (
            json!({"customer_id": 7, "payment_method": "invoice", "items": [{"quantity": "2"}]}),
            vec!["customer_id", "items[0].quantity", "items[0].variant_id"],
        ),
    ];
    for (body, fields) in cases {
        let r = s.post("/api/v1/orders", t, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        let mut got = r.error_fields();
        got.sort();
        let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{body}");
    }
    assert_eq!(count(&s, t, "/api/v1/orders").await, 0);
    assert_eq!(stock(&s, t, v0).await, 50);
}

#[tokio::test]
async fn amounts_too_large_for_i64_are_422_never_wrapped() {
    let s = start().await;
    let shop = shop(&s, 1, 50).await;
    let t = &shop.owner.token;
    let gold = s.post("/api/v1/products", t, json!({"name": "Gold", "variants": [{"sku": "AU", "price": 4_611_686_018_427_387_904i64, "stock": 10}]})).await;
    let gold = gold.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let r = s.post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": gold, "quantity": 2}]})).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["items[0].quantity"]);
    // Two lines that fit alone but not together.
    let gold2 = s.post("/api/v1/products", t, json!({"name": "Gold2", "variants": [{"sku": "AU2", "price": 4_611_686_018_427_387_904i64, "stock": 10}]})).await;
    let gold2 = gold2.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let r = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": gold, "quantity": 1}, {"variant_id": gold2, "quantity": 1}]}))
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(stock(&s, t, &gold).await, 10);
}

#[tokio::test]
async fn placing_1_or_100_items_runs_the_same_statements_and_lists_do_not_grow_per_order() {
    let s = start().await;
    let shop = shop(&s, 100, 50).await;
    let t = &shop.owner.token;
    credit(&s, t, &shop.customer, 100_000_000).await;
    let order = |n: usize, method: &str| {
        json!({"customer_id": shop.customer, "payment_method": method,
        "items": shop.variants.iter().take(n).map(|v| json!({"variant_id": v, "quantity": 1})).collect::<Vec<_>>()})
    };
    for method in ["invoice", "wallet"] {
        let one = s.post("/api/v1/orders", t, order(1, method)).await;
        let hundred = s.post("/api/v1/orders", t, order(100, method)).await;
        assert_eq!(hundred.status, 201, "{}", hundred.body);
        assert_eq!(one.statements(), hundred.statements(), "{method}");
    }
    let few = s.get("/api/v1/orders?limit=1", t).await;
    let many = s.get("/api/v1/orders?limit=100", t).await;
    assert_eq!(many.body["items"].as_array().unwrap().len(), 4);
    assert_eq!(few.statements(), many.statements());
    assert!(many.statements() <= 2);
    assert_eq!(
        many.body["items"][0]["items"].as_array().unwrap().len(),
        100
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let s = start().await;
    let shop = shop(&s, 1, 50).await;
    let t = &shop.owner.token;
    let body = json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 2}]});
    let send = |body: Value, key: &'static str| {
        let client = s.client.clone();
        let url = format!("{}/api/v1/orders", s.base);
        let token = t.clone();
        async move {
            TestServer::read(
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("idempotency-key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let first = send(body.clone(), "order-1").await;
    assert_eq!(first.status, 201);
    // Same body, keys reordered: the same JSON value.
    let reordered = json!({"items": [{"quantity": 2, "variant_id": shop.variants[0]}], "payment_method": "invoice", "customer_id": shop.customer});
    let again = send(reordered, "order-1").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(count(&s, t, "/api/v1/orders").await, 1);
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 48);
    let other = send(json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 3}]}), "order-1").await;
    other.assert_problem(422, "idempotency_key_reused");
    // A refused first attempt is remembered too (below 500).
    let bad = json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 999}]});
    send(bad.clone(), "order-2")
        .await
        .assert_problem(409, "out_of_stock");
    s.post(
        &format!("/api/v1/variants/{}/stock-adjustments", shop.variants[0]),
        t,
        json!({"delta": 5000, "reason": "delivery"}),
    )
    .await;
    let replayed = send(bad, "order-2").await;
    replayed.assert_problem(409, "out_of_stock");
    // Keys are per tenant.
    let other_shop_owner = s.signup("Elsewhere").await;
    let r = TestServer::read(
        s.client
            .post(format!("{}/api/v1/orders", s.base))
            .bearer_auth(&other_shop_owner.token)
            .header("idempotency-key", "order-1")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn fifty_concurrent_retries_with_one_key_create_one_order_with_one_body() {
    let s = start().await;
    let shop = shop(&s, 1, 500).await;
    let t = &shop.owner.token;
    let body = json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 1}]});
    let answers = s
        .post_concurrently(50, "/api/v1/orders", t, body, Some("same-key"))
        .await;
    let mut bodies = Vec::new();
    for r in answers {
        assert_eq!(r.status, 201, "{}", r.body);
        bodies.push(r.body);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert_eq!(count(&s, t, "/api/v1/orders").await, 1);
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 499);
}

#[tokio::test]
async fn two_hundred_concurrent_orders_for_a_stock_of_50_sell_exactly_50() {
    let s = start().await;
    let shop = shop(&s, 1, 50).await;
    let t = &shop.owner.token;
    let body = json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 1}]});
    let answers = s
        .post_concurrently(200, "/api/v1/orders", t, body, None)
        .await;
    let (mut created, mut refused) = (0, 0);
    for r in answers {
        match (r.status, r.code()) {
            (201, _) => created += 1,
            (409, "out_of_stock") => refused += 1,
            other => panic!("unexpected {other:?}: {}", r.body),
        }
    }
    assert_eq!((created, refused), (50, 150));
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 0);
    assert_eq!(count(&s, t, "/api/v1/orders").await, 50);
    let movements = count(
        &s,
        t,
        &format!("/api/v1/variants/{}/movements", shop.variants[0]),
    )
    .await;
    assert_eq!(movements, 51, "50 order movements and the initial one");
    // Numbers are unique.
    let list = s.get("/api/v1/orders?limit=100", t).await;
    let mut numbers: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["number"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 50);
}

/// Concurrent orders of one tenant share transactions and commits on
/// PostgreSQL (group commit); each still stands alone. Accepted orders,
/// orders refused for stock and orders refused for funds, all at once:
/// every good one is written whole, numbered without gaps in the order of
/// their times, and no refused one leaves a trace.
#[tokio::test]
async fn refused_orders_do_not_fail_the_orders_committed_with_them() {
    let s = start().await;
    let shop = shop(&s, 2, 1_000).await;
    let t = &shop.owner.token;
    let (plenty, none) = (&shop.variants[0], &shop.variants[1]);
    let emptied = s
        .post(
            &format!("/api/v1/variants/{none}/stock-adjustments"),
            t,
            json!({"delta": -1_000, "reason": "stocktake"}),
        )
        .await;
    assert_eq!(emptied.status, 200, "{}", emptied.body);
    // 3 wallet orders of 900 (1000 less the customer's 10 %) are funded.
    credit(&s, t, &shop.customer, 2_700).await;
    let order = |variant: &str, payment: &str| {
        json!({"customer_id": shop.customer, "payment_method": payment,
               "items": [{"variant_id": variant, "quantity": 1}]})
    };
    let bodies: Vec<(Value, &str)> = (0..60)
        .map(|i| match i % 3 {
            0 => (order(plenty, "invoice"), "created"),
            1 => (order(none, "invoice"), "out_of_stock"),
            _ => (order(plenty, "wallet"), "wallet"),
        })
        .collect();
    let answers = futures_util::future::join_all(
        bodies
            .iter()
            .map(|(body, _)| s.post("/api/v1/orders", t, body.clone())),
    )
    .await;
    let (mut invoices, mut paid, mut numbers) = (0, 0, Vec::new());
    for (answer, (_, kind)) in answers.iter().zip(&bodies) {
        match (*kind, answer.status) {
            ("created", 201) => invoices += 1,
            ("out_of_stock", 409) => assert_eq!(answer.code(), "out_of_stock"),
            ("wallet", 201) => paid += 1,
            ("wallet", 409) => assert_eq!(answer.code(), "insufficient_funds"),
            other => panic!("unexpected {other:?}: {}", answer.body),
        }
        if answer.status == 201 {
            let created_at = answer.body["created_at"].as_str().unwrap().to_owned();
            numbers.push((
                answer.body["number"].as_str().unwrap().to_owned(),
                created_at,
            ));
        }
    }
    assert_eq!((invoices, paid), (20, 3));
    numbers.sort();
    let expected: Vec<String> = (1..=23).map(|n| format!("SO-{n:06}")).collect();
    assert_eq!(
        numbers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        expected
    );
    // Compared as instants: RFC 3339 drops trailing zeros of the fraction
    // (`.76965Z` is 769,650 µs), so the text's order is not the time's.
    let instant = |text: &str| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    };
    assert!(
        numbers
            .windows(2)
            .all(|w| instant(&w[0].1) < instant(&w[1].1)),
        "a higher number is a later time: {numbers:?}"
    );
    assert_eq!(stock(&s, t, plenty).await, 1_000 - 23);
    assert_eq!(stock(&s, t, none).await, 0);
    assert_eq!(balance(&s, t, &shop.customer).await, 0);
    assert_eq!(count(&s, t, "/api/v1/orders").await, 23);
    let movements = count(&s, t, &format!("/api/v1/variants/{plenty}/movements")).await;
    assert_eq!(movements, 1 + 23, "the initial stock and one per order");
    assert_eq!(
        s.outbox(&shop.owner.tenant_id, "order.created").await.len(),
        23
    );
}

#[tokio::test]
async fn fifty_concurrent_wallet_orders_against_ten_orders_of_funds_pay_exactly_ten() {
    let s = start().await;
    let shop = shop(&s, 1, 1000).await;
    let t = &shop.owner.token;
    // Each order: 1000 − 10 % = 900.
    credit(&s, t, &shop.customer, 9000).await;
    let body = json!({"customer_id": shop.customer, "payment_method": "wallet", "items": [{"variant_id": shop.variants[0], "quantity": 1}]});
    let answers = s
        .post_concurrently(50, "/api/v1/orders", t, body, None)
        .await;
    let (mut paid, mut refused) = (0, 0);
    for r in answers {
        match (r.status, r.code()) {
            (201, _) => paid += 1,
            (409, "insufficient_funds") => refused += 1,
            other => panic!("unexpected {other:?}: {}", r.body),
        }
    }
    assert_eq!((paid, refused), (10, 40));
    assert_eq!(balance(&s, t, &shop.customer).await, 0);
    assert_eq!(
        stock(&s, t, &shop.variants[0]).await,
        990,
        "refused orders took no stock"
    );
    let entries = s
        .get(
            &format!(
                "/api/v1/customers/{}/wallet/transactions?limit=100",
                shop.customer
            ),
            t,
        )
        .await;
    let items = entries.body["items"].as_array().unwrap();
    let ledger: i64 = items
        .iter()
        .map(|e| {
            if e["type"] == "debit" {
                -e["amount"].as_i64().unwrap()
            } else {
                e["amount"].as_i64().unwrap()
            }
        })
        .sum();
    assert_eq!(ledger, 0, "the ledger sums to the balance");
    assert!(
        items
            .iter()
            .all(|e| e["balance_after"].as_i64().unwrap() >= 0)
    );
}

#[tokio::test]
async fn the_lifecycle_moves_forward_and_refuses_everything_else() {
    let s = start().await;
    let shop = shop(&s, 1, 50).await;
    let t = &shop.owner.token;
    let o = s.post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 1}]})).await;
    let id = o.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/orders/{id}/status");
    s.post(&path, t, json!({"status": "shipped"}))
        .await
        .assert_problem(409, "invalid_transition");
    s.post(&path, t, json!({"status": "placed"}))
        .await
        .assert_problem(409, "invalid_transition");
    for status in ["paid", "shipped", "delivered"] {
        let r = s
            .post(
                &path,
                t,
                json!({"status": status, "note": format!("now {status}")}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], status);
    }
    for status in ["cancelled", "paid", "placed", "shipped", "delivered"] {
        s.post(&path, t, json!({"status": status}))
            .await
            .assert_problem(409, "invalid_transition");
    }
    let d = s.get(&format!("/api/v1/orders/{id}"), t).await;
    let history: Vec<&str> = d.body["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, vec!["delivered", "shipped", "paid", "placed"]);
    assert_eq!(d.body["status_history"][0]["note"], "now delivered");
    s.post(&path, t, json!({"status": "lost"}))
        .await
        .assert_problem(422, "validation_failed");
    s.post("/api/v1/orders/nope/status", t, json!({"status": "paid"}))
        .await
        .assert_problem(404, "not_found");
}

/// `order.status_changed` carries what its webhook will send: the move,
/// its note, and the whole order after it, exactly as the answer shows it.
#[tokio::test]
async fn a_status_change_publishes_the_move_and_the_order_after_it() {
    let s = start().await;
    let shop = shop(&s, 1, 50).await;
    let t = &shop.owner.token;
    let o = s.post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 2}]})).await;
    let id = o.body["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{id}/status");
    s.post(&path, t, json!({"status": "delivered"}))
        .await
        .assert_problem(409, "invalid_transition");
    let paid = s
        .post(&path, t, json!({"status": "paid", "note": " wired "}))
        .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    let cancelled = s.post(&path, t, json!({"status": "cancelled"})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let events = s
        .outbox(&shop.owner.tenant_id, "order.status_changed")
        .await;
    assert_eq!(
        events.len(),
        2,
        "a refused move publishes nothing: {events:?}"
    );
    for (event, (answer, from, to, note)) in events.iter().zip([
        (&paid.body, "placed", "paid", json!("wired")),
        (&cancelled.body, "paid", "cancelled", Value::Null),
    ]) {
        assert_eq!(event["order_id"], id);
        assert_eq!(event["number"], o.body["number"]);
        assert_eq!(event["from"], from);
        assert_eq!(event["to"], to);
        assert_eq!(event["note"], note);
        assert_eq!(&event["order"], answer, "the order as the answer shows it");
    }
    assert_eq!(
        events[1]["order"]["status_history"][0]["status"], "cancelled",
        "the order as it reads after the move"
    );
}

#[tokio::test]
async fn cancelling_puts_stock_back_and_refunds_a_wallet_payment() {
    let s = start().await;
    let shop = shop(&s, 2, 50).await;
    let t = &shop.owner.token;
    credit(&s, t, &shop.customer, 5000).await;
    let o = s
        .post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "wallet",
                                          "items": [{"variant_id": shop.variants[0], "quantity": 2}, {"variant_id": shop.variants[1], "quantity": 1}]}))
        .await;
    assert_eq!(o.status, 201, "{}", o.body);
    assert_eq!(balance(&s, t, &shop.customer).await, 5000 - 2700);
    let id = o.body["id"].as_str().unwrap();
    let r = s
        .post(
            &format!("/api/v1/orders/{id}/status"),
            t,
            json!({"status": "cancelled", "note": "changed mind"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 50);
    assert_eq!(stock(&s, t, &shop.variants[1]).await, 50);
    assert_eq!(balance(&s, t, &shop.customer).await, 5000);
    let mv = s
        .get(
            &format!("/api/v1/variants/{}/movements", shop.variants[0]),
            t,
        )
        .await;
    assert_eq!(mv.body["items"][0]["delta"], 2);
    assert_eq!(mv.body["items"][0]["stock_after"], 50);
    assert_eq!(mv.body["items"][0]["order_id"], id);
    let entries = s
        .get(
            &format!("/api/v1/customers/{}/wallet/transactions", shop.customer),
            t,
        )
        .await;
    assert_eq!(entries.body["items"][0]["type"], "refund");
    assert_eq!(entries.body["items"][0]["amount"], 2700);
    assert_eq!(entries.body["items"][0]["balance_after"], 5000);
    // An invoice order cancelled after being marked paid refunds nothing.
    let inv = s.post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 1}]})).await;
    let inv_id = inv.body["id"].as_str().unwrap();
    s.post(
        &format!("/api/v1/orders/{inv_id}/status"),
        t,
        json!({"status": "paid"}),
    )
    .await;
    s.post(
        &format!("/api/v1/orders/{inv_id}/status"),
        t,
        json!({"status": "cancelled"}),
    )
    .await;
    assert_eq!(balance(&s, t, &shop.customer).await, 5000);
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 50);
}

#[tokio::test]
async fn concurrent_cancel_and_ship_have_exactly_one_winner() {
    let s = start().await;
    let shop = shop(&s, 1, 100).await;
    let t = &shop.owner.token;
    credit(&s, t, &shop.customer, 1_000_000).await;
    for round in 0..10 {
        let o = s.post("/api/v1/orders", t, json!({"customer_id": shop.customer, "payment_method": "wallet", "items": [{"variant_id": shop.variants[0], "quantity": 3}]})).await;
        assert_eq!(o.status, 201);
        let id = o.body["id"].as_str().unwrap().to_owned();
        let go = |status: &'static str| {
            let client = s.client.clone();
            let url = format!("{}/api/v1/orders/{id}/status", s.base);
            let token = t.clone();
            tokio::spawn(async move {
                TestServer::read(
                    client
                        .post(url)
                        .bearer_auth(token)
                        .json(&json!({"status": status}))
                        .send()
                        .await
                        .unwrap(),
                )
                .await
            })
        };
        let (cancel, ship) = (go("cancelled"), go("shipped"));
        let (cancel, ship) = (cancel.await.unwrap(), ship.await.unwrap());
        let statuses = (cancel.status, ship.status);
        assert!(
            statuses == (200, 409) || statuses == (409, 200),
            "round {round}: {statuses:?}"
        );
        let loser = if cancel.status == 409 { &cancel } else { &ship };
        loser.assert_problem(409, "invalid_transition");
        let final_status = s.get(&format!("/api/v1/orders/{id}"), t).await.body["status"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            final_status,
            if cancel.status == 200 {
                "cancelled"
            } else {
                "shipped"
            }
        );
    }
    // Stock and wallet agree with the orders that stand.
    let list = s.get("/api/v1/orders?limit=100", t).await;
    let live: i64 = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] != "cancelled")
        .map(|o| o["items"][0]["quantity"].as_i64().unwrap())
        .sum();
    assert_eq!(stock(&s, t, &shop.variants[0]).await, 100 - live);
    let spent: i64 = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] != "cancelled")
        .map(|o| o["total"].as_i64().unwrap())
        .sum();
    assert_eq!(balance(&s, t, &shop.customer).await, 1_000_000 - spent);
}

#[tokio::test]
async fn orders_filter_by_status_customer_and_dates_and_history_pages() {
    let s = start().await;
    let shop = shop(&s, 1, 100).await;
    let t = &shop.owner.token;
    let second = s
        .post("/api/v1/customers", t, json!({"name": "Second"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let place = |customer: String| {
        s.post("/api/v1/orders", t, json!({"customer_id": customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 1}]}))
    };
    let a = place(shop.customer.clone()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = place(second.clone()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    place(shop.customer.clone()).await;
    s.post(
        &format!("/api/v1/orders/{a}/status"),
        t,
        json!({"status": "paid"}),
    )
    .await;
    let ids = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&s.get("/api/v1/orders?status=paid", t).await),
        vec![a.clone()]
    );
    assert_eq!(
        ids(&s
            .get(&format!("/api/v1/orders?customer_id={second}"), t)
            .await),
        vec![b.clone()]
    );
    let today = time::OffsetDateTime::now_utc().date();
    let fmt = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    assert_eq!(
        ids(&s
            .get(
                &format!("/api/v1/orders?from={}&to={}", fmt(today), fmt(today)),
                t
            )
            .await)
        .len(),
        3
    );
    assert!(
        ids(&s
            .get(
                &format!("/api/v1/orders?to={}", fmt(today.previous_day().unwrap())),
                t
            )
            .await)
        .is_empty()
    );
    assert!(
        ids(&s
            .get(
                &format!("/api/v1/orders?from={}", fmt(today.next_day().unwrap())),
                t
            )
            .await)
        .is_empty()
    );
    for bad in ["status=lost", "from=yesterday", "to=2026-13-01"] {
        s.get(&format!("/api/v1/orders?{bad}"), t)
            .await
            .assert_problem(400, "bad_request");
    }
    // 25 status notes: detail shows the latest 20, /history pages through all.
    let c = place(shop.customer.clone()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.post(
        &format!("/api/v1/orders/{c}/status"),
        t,
        json!({"status": "paid"}),
    )
    .await;
    s.post(
        &format!("/api/v1/orders/{c}/status"),
        t,
        json!({"status": "shipped"}),
    )
    .await;
    s.post(
        &format!("/api/v1/orders/{c}/status"),
        t,
        json!({"status": "delivered"}),
    )
    .await;
    let d = s.get(&format!("/api/v1/orders/{c}"), t).await;
    assert_eq!(d.body["status_history"].as_array().unwrap().len(), 4);
    let h = s
        .get(&format!("/api/v1/orders/{c}/history?limit=3"), t)
        .await;
    assert_eq!(h.body["items"].as_array().unwrap().len(), 3);
    let cursor = h.body["next_cursor"].as_str().unwrap();
    let rest = s
        .get(
            &format!("/api/v1/orders/{c}/history?limit=3&cursor={cursor}"),
            t,
        )
        .await;
    assert_eq!(rest.body["items"][0]["status"], "placed");
    s.get("/api/v1/orders/nope/history", t)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn roles_and_tenants_guard_orders() {
    let s = start().await;
    let shop = shop(&s, 1, 100).await;
    let t = &shop.owner.token;
    let sales = s.user_with_role(&shop.owner, "sales").await;
    let warehouse = s.user_with_role(&shop.owner, "warehouse").await;
    let viewer = s.user_with_role(&shop.owner, "viewer").await;
    let body = json!({"customer_id": shop.customer, "payment_method": "invoice", "items": [{"variant_id": shop.variants[0], "quantity": 1}]});
    assert_eq!(
        s.post("/api/v1/orders", &sales.token, body.clone())
            .await
            .status,
        201
    );
    s.post("/api/v1/orders", &warehouse.token, body.clone())
        .await
        .assert_problem(403, "forbidden");
    s.post("/api/v1/orders", &viewer.token, body.clone())
        .await
        .assert_problem(403, "forbidden");
    let id = s.post("/api/v1/orders", t, body).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/orders/{id}/status");
    s.post(&path, &warehouse.token, json!({"status": "paid"}))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        s.post(&path, &sales.token, json!({"status": "paid"}))
            .await
            .status,
        200
    );
    // The role is checked against the target exactly as the move reads it:
    // padding cannot slip a sales user past the warehouse's moves.
    for padded in ["shipped", " shipped", "shipped\n", "\tshipped "] {
        s.post(&path, &sales.token, json!({"status": padded}))
            .await
            .assert_problem(403, "forbidden");
    }
    assert_eq!(
        s.post(&path, &warehouse.token, json!({"status": " shipped "}))
            .await
            .status,
        200
    );
    s.post(&path, &viewer.token, json!({"status": "delivered"}))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        s.get(&format!("/api/v1/orders/{id}"), &viewer.token)
            .await
            .status,
        200
    );
    let other = s.signup("Other").await;
    s.get(&format!("/api/v1/orders/{id}"), &other.token)
        .await
        .assert_problem(404, "not_found");
    s.post(&path, &other.token, json!({"status": "delivered"}))
        .await
        .assert_problem(404, "not_found");
    s.get(&format!("/api/v1/orders/{id}/history"), &other.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(count(&s, &other.token, "/api/v1/orders").await, 0);
}

#[tokio::test]
async fn a_request_abandoned_by_the_timeout_frees_its_idempotency_key() {
    let seeder = start().await;
    let owner = seeder.signup("Abandon").await;
    let t = &owner.token;
    let customer = seeder
        .post("/api/v1/customers", t, json!({"name": "C"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut variants = Vec::new();
    for k in 0..5 {
        let vs: Vec<Value> = (0..100)
            .map(|i| json!({"sku": format!("A{i}-{k}"), "price": 10, "stock": 10}))
            .collect();
        let p = seeder
            .post("/api/v1/products", t, json!({"name": "P", "variants": vs}))
            .await;
        variants.extend(
            p.body["variants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
    }
    // A second node on the same database with a 20 ms budget: placing a
    // 500-line order (debug build) does not fit in it, so the pipeline's
    // timeout drops requests mid-way, wherever they happen to be: before
    // the claim, while the claim is written, or inside the order's
    // transaction (which rolls back). Whichever it is, no key may stay in
    // flight. (Without the release on drop, this test fails.)
    let s = start_beside(&seeder, |c| c.request_timeout_ms = 20).await;
    let body = json!({"customer_id": customer, "payment_method": "invoice",
                      "items": variants.iter().map(|v| json!({"variant_id": v, "quantity": 1})).collect::<Vec<_>>()});
    let mut placed = 0;
    let mut abandoned = 0;
    for attempt in 0..8 {
        let r = TestServer::read(
            s.client
                .post(format!("{}/api/v1/orders", s.base))
                .bearer_auth(t)
                .header("idempotency-key", format!("slow-{attempt}"))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        match r.status {
            201 => placed += 1,
            503 => abandoned += 1,
            other => panic!("unexpected status {other}: {}", r.body),
        }
    }
    assert!(abandoned > 0, "the 20 ms budget never cut an order short");
    // The abandoned claims are released promptly, not left in flight until
    // they go stale.
    let pool = s.raw_database().await;
    let scalar = |query: &'static str| {
        let pool = pool.clone();
        async move {
            let row: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(query.to_owned()))
                .fetch_one(&pool)
                .await
                .unwrap();
            row.0
        }
    };
    // Generous: a dropped transaction's rollback (which frees the row lock
    // the release waits on) may lag on a loaded machine. A stale claim is
    // only ever taken over, never deleted, so only a release empties this.
    let mut in_flight = -1;
    for _ in 0..1500 {
        in_flight = scalar(
            "SELECT COUNT(*) FROM idempotency_keys WHERE key LIKE 'slow-%' AND status IS NULL",
        )
        .await;
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(in_flight, 0, "every abandoned claim was released");
    assert_eq!(
        scalar("SELECT COUNT(*) FROM orders").await,
        placed,
        "only the orders that answered 201 exist; the abandoned ones rolled back"
    );
    // The seeder's 30 s budget would wait a whole minute for a stale claim;
    // a released key runs again at once.
    let retry = TestServer::read(
        seeder
            .client
            .post(format!("{}/api/v1/orders", seeder.base))
            .bearer_auth(t)
            .header("idempotency-key", "slow-0")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(retry.status, 201, "{}", retry.body);
}

#[tokio::test]
async fn fields_select_order_fields_and_history_belongs_to_the_detail() {
    let s = start().await;
    let shop = shop(&s, 1, 5).await;
    let t = &shop.owner.token;
    let placed = s
        .post(
            "/api/v1/orders",
            t,
            json!({"customer_id": shop.customer, "payment_method": "invoice",
                   "items": [{"variant_id": shop.variants[0], "quantity": 1}]}),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let id = placed.body["id"].as_str().unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let list = s.get("/api/v1/orders?fields=number,total", t).await;
    assert_eq!(keys(&list.body["items"][0]), ["id", "number", "total"]);
    // A list item carries no history, so a list cannot select it.
    s.get("/api/v1/orders?fields=number,status_history", t)
        .await
        .assert_problem(400, "unknown_field");
    let detail = s
        .get(&format!("/api/v1/orders/{id}?fields=status_history"), t)
        .await;
    assert_eq!(keys(&detail.body), ["id", "status_history"]);
    assert_eq!(detail.body["status_history"][0]["status"], "placed");
}

/// The hourly sweep forgets keys past their 48-hour retention, recorded or
/// left in flight by a node that died; a younger key is kept and replays.
#[tokio::test]
async fn keys_past_their_retention_are_forgotten_and_run_again() {
    let s = start().await;
    let shop = shop(&s, 1, 50).await;
    let t = &shop.owner.token;
    let body = json!({"customer_id": shop.customer, "payment_method": "invoice",
                      "items": [{"variant_id": shop.variants[0], "quantity": 1}]});
    let (s, body) = (&s, &body);
    let place = |key: &'static str| async move {
        s.post_concurrently(1, "/api/v1/orders", t, body.clone(), Some(key))
            .await
            .remove(0)
    };
    let old = place("old").await;
    assert_eq!(old.status, 201, "{}", old.body);
    let young = place("young").await;
    assert_eq!(young.status, 201, "{}", young.body);
    let pool = s.raw_database().await;
    let run = |statement: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .unwrap()
        }
    };
    // A claim left in flight by a dead node, and the "old" key, both aged
    // 49 hours.
    run("INSERT INTO idempotency_keys (tenant_id, route, key, request, created_at) \
         SELECT tenant_id, route, 'dead', request, created_at FROM idempotency_keys WHERE key = 'old'"
        .to_owned())
    .await;
    let hours_49: i64 = 49 * 3600 * 1_000_000;
    run(format!(
        "UPDATE idempotency_keys SET created_at = created_at - {hours_49} WHERE key IN ('old', 'dead')"
    ))
    .await;
    let state = &s.server.as_ref().unwrap().state;
    let forgotten = brisk::platform::idempotency::forget_expired(&state.db)
        .await
        .unwrap();
    assert_eq!(forgotten, 2);
    let keys: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(
        "SELECT key FROM idempotency_keys ORDER BY key".to_owned(),
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(keys, [("young".to_owned(),)]);
    // A forgotten key is a new request; a kept one replays.
    let again = place("old").await;
    assert_eq!(again.status, 201);
    assert!(again.headers.get("idempotent-replayed").is_none());
    assert_ne!(again.body["id"], old.body["id"]);
    let replay = place("young").await;
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body, young.body);
    assert_eq!(count(s, t, "/api/v1/orders").await, 3);
}
