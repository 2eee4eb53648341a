//! Wallets: balances, credits (idempotent), the ledger and its invariants.

use crate::common::*;
use serde_json::{Value, json};

async fn customer(s: &TestServer, token: &str) -> String {
    s.post("/api/v1/customers", token, json!({"name": "Wallet holder"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_new_wallet_is_empty_and_credits_add_with_balance_after() {
    let s = start().await;
    let o = s.signup("Wallets").await;
    let c = customer(&s, &o.token).await;
    let w = s
        .get(&format!("/api/v1/customers/{c}/wallet"), &o.token)
        .await;
    assert_eq!(w.status, 200);
    assert_eq!(
        w.body,
        json!({"customer_id": c, "balance": 0, "currency": "USD"})
    );
    let only = s
        .get(
            &format!("/api/v1/customers/{c}/wallet?fields=balance"),
            &o.token,
        )
        .await;
    assert_eq!(only.body, json!({"balance": 0}));
    s.get(
        &format!("/api/v1/customers/{c}/wallet?fields=owner"),
        &o.token,
    )
    .await
    .assert_problem(400, "unknown_field");
    let r = s
        .post(
            &format!("/api/v1/customers/{c}/wallet/credits"),
            &o.token,
            json!({"amount": 2500, "reference": "bank transfer 42"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["balance"], 2500);
    let tx = &r.body["transaction"];
    assert_eq!(
        (
            tx["type"].as_str(),
            tx["amount"].as_i64(),
            tx["balance_after"].as_i64()
        ),
        (Some("credit"), Some(2500), Some(2500))
    );
    assert_eq!(tx["reference"], "bank transfer 42");
    assert!(tx["id"].as_str().is_some() && tx["created_at"].as_str().is_some());
    let r = s
        .post(
            &format!("/api/v1/customers/{c}/wallet/credits"),
            &o.token,
            json!({"amount": 500}),
        )
        .await;
    assert_eq!(r.body["transaction"]["balance_after"], 3000);
    assert_eq!(
        s.get(&format!("/api/v1/customers/{c}/wallet"), &o.token)
            .await
            .body["balance"],
        3000
    );
    let list = s
        .get(
            &format!("/api/v1/customers/{c}/wallet/transactions"),
            &o.token,
        )
        .await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["amount"], 500, "newest first");
    assert_eq!(items[0]["order_id"], Value::Null);
    assert_eq!(items[0]["reference"], Value::Null);
}

#[tokio::test]
async fn bad_credits_are_422_unknown_customers_404_and_nothing_changes() {
    let s = start().await;
    let o = s.signup("Bad credits").await;
    let other = s.signup("Other").await;
    let c = customer(&s, &o.token).await;
    let theirs = customer(&s, &other.token).await;
    let path = format!("/api/v1/customers/{c}/wallet/credits");
    for body in [
        json!({"amount": 0}),
        json!({"amount": -5}),
        json!({"amount": 1.5}),
        json!({"amount": "10"}),
        json!({"amount": 1_000_000_000_000_001i64}),
        json!({"amount": 10, "reference": "x".repeat(100_000)}),
        json!({"amount": 10, "reference": "bell\u{0007}"}),
        json!({}),
    ] {
        let r = s.post(&path, &o.token, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        assert!(!r.error_fields().is_empty(), "{body}");
    }
    s.post(
        &format!("/api/v1/customers/{theirs}/wallet/credits"),
        &o.token,
        json!({"amount": 10}),
    )
    .await
    .assert_problem(404, "not_found");
    s.post(
        "/api/v1/customers/nope/wallet/credits",
        &o.token,
        json!({"amount": 10}),
    )
    .await
    .assert_problem(404, "not_found");
    s.get(&format!("/api/v1/customers/{theirs}/wallet"), &o.token)
        .await
        .assert_problem(404, "not_found");
    s.get(
        &format!("/api/v1/customers/{theirs}/wallet/transactions"),
        &o.token,
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(
        s.get(&format!("/api/v1/customers/{c}/wallet"), &o.token)
            .await
            .body["balance"],
        0
    );
    assert!(
        s.get(
            &format!("/api/v1/customers/{c}/wallet/transactions"),
            &o.token
        )
        .await
        .body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.get(&format!("/api/v1/customers/{theirs}/wallet"), &other.token)
            .await
            .body["balance"],
        0
    );
}

#[tokio::test]
async fn a_balance_that_would_overflow_is_refused() {
    let s = start().await;
    let o = s.signup("Overflow").await;
    let c = customer(&s, &o.token).await;
    s.post(
        &format!("/api/v1/customers/{c}/wallet/credits"),
        &o.token,
        json!({"amount": 1}),
    )
    .await;
    let pool = s.raw_database().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE wallets SET balance = {} WHERE customer_id = '{c}'",
        i64::MAX - 5
    )))
    .execute(&pool)
    .await
    .unwrap();
    let r = s
        .post(
            &format!("/api/v1/customers/{c}/wallet/credits"),
            &o.token,
            json!({"amount": 10}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["amount"]);
    assert_eq!(
        s.get(&format!("/api/v1/customers/{c}/wallet"), &o.token)
            .await
            .body["balance"],
        i64::MAX - 5
    );
}

#[tokio::test]
async fn credits_take_an_idempotency_key() {
    let s = start().await;
    let o = s.signup("Idem").await;
    let c = customer(&s, &o.token).await;
    let d = customer(&s, &o.token).await;
    let send_to = |customer: &str, body: Value, key: &str| {
        let req = s
            .client
            .post(format!(
                "{}/api/v1/customers/{customer}/wallet/credits",
                s.base
            ))
            .bearer_auth(&o.token)
            .header("idempotency-key", key)
            .json(&body);
        async move { TestServer::read(req.send().await.unwrap()).await }
    };
    let send = |body: Value, key: &str| {
        let req = s
            .client
            .post(format!("{}/api/v1/customers/{c}/wallet/credits", s.base))
            .bearer_auth(&o.token)
            .header("idempotency-key", key)
            .json(&body);
        async move { TestServer::read(req.send().await.unwrap()).await }
    };
    let first = send(json!({"amount": 700, "reference": "r"}), "credit-1").await;
    assert_eq!(first.status, 201);
    let again = send(json!({"reference": "r", "amount": 700}), "credit-1").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    send(json!({"amount": 701, "reference": "r"}), "credit-1")
        .await
        .assert_problem(422, "idempotency_key_reused");
    // The same key and body sent to another customer's wallet is another
    // route, so another credit: never the first customer's replayed.
    let theirs = send_to(&d, json!({"amount": 700, "reference": "r"}), "credit-1").await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
    assert!(theirs.headers.get("idempotent-replayed").is_none());
    assert_ne!(
        theirs.body["transaction"]["id"],
        first.body["transaction"]["id"]
    );
    for who in [&c, &d] {
        assert_eq!(
            s.get(&format!("/api/v1/customers/{who}/wallet"), &o.token)
                .await
                .body["balance"],
            700
        );
    }
    // A refused credit is remembered as refused.
    send(json!({"amount": -1}), "credit-2")
        .await
        .assert_problem(422, "validation_failed");
    send(json!({"amount": -1}), "credit-2")
        .await
        .assert_problem(422, "validation_failed");
    let bad_key = TestServer::read(
        s.client
            .post(format!("{}/api/v1/customers/{c}/wallet/credits", s.base))
            .bearer_auth(&o.token)
            .header("idempotency-key", "x".repeat(300))
            .json(&json!({"amount": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    bad_key.assert_problem(400, "bad_request");
}

#[tokio::test]
async fn only_sales_admin_and_owner_credit_wallets_everyone_reads() {
    let s = start().await;
    let o = s.signup("Roles").await;
    let c = customer(&s, &o.token).await;
    let path = format!("/api/v1/customers/{c}/wallet/credits");
    let sales = s.user_with_role(&o, "sales").await;
    assert_eq!(
        s.post(&path, &sales.token, json!({"amount": 5}))
            .await
            .status,
        201
    );
    for role in ["warehouse", "viewer"] {
        let u = s.user_with_role(&o, role).await;
        s.post(&path, &u.token, json!({"amount": 5}))
            .await
            .assert_problem(403, "forbidden");
        assert_eq!(
            s.get(&format!("/api/v1/customers/{c}/wallet"), &u.token)
                .await
                .body["balance"],
            5
        );
    }
}

#[tokio::test]
async fn the_ledger_always_sums_to_the_balance() {
    let s = start().await;
    let o = s.signup("Ledger").await;
    let t = &o.token;
    let c = customer(&s, t).await;
    let p = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "P", "variants": [{"sku": "P", "price": 300, "stock": 100}]}),
        )
        .await;
    let v = p.body["variants"][0]["id"].as_str().unwrap().to_owned();
    s.post(
        &format!("/api/v1/customers/{c}/wallet/credits"),
        t,
        json!({"amount": 2000}),
    )
    .await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let r = s.post("/api/v1/orders", t, json!({"customer_id": c, "payment_method": "wallet", "items": [{"variant_id": v, "quantity": 1}]})).await;
        assert_eq!(r.status, 201);
        orders.push(r.body["id"].as_str().unwrap().to_owned());
    }
    s.post(
        &format!("/api/v1/orders/{}/status", orders[1]),
        t,
        json!({"status": "cancelled"}),
    )
    .await;
    s.post(
        &format!("/api/v1/customers/{c}/wallet/credits"),
        t,
        json!({"amount": 50}),
    )
    .await;
    let balance = s
        .get(&format!("/api/v1/customers/{c}/wallet"), t)
        .await
        .body["balance"]
        .as_i64()
        .unwrap();
    assert_eq!(balance, 2000 - 4 * 300 + 300 + 50);
    let list = s
        .get(
            &format!("/api/v1/customers/{c}/wallet/transactions?limit=100"),
            t,
        )
        .await;
    let items = list.body["items"].as_array().unwrap();
    let mut sum = 0;
    for e in items.iter().rev() {
        let amount = e["amount"].as_i64().unwrap();
        sum += if e["type"] == "debit" {
            -amount
        } else {
            amount
        };
        assert_eq!(
            e["balance_after"].as_i64().unwrap(),
            sum,
            "balance_after follows the ledger"
        );
    }
    assert_eq!(sum, balance);
    let kinds: Vec<&str> = items.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "credit", "refund", "debit", "debit", "debit", "debit", "credit"
        ]
    );
}
