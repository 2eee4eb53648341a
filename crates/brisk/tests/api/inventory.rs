//! Inventory: stock adjustments, movements and low-stock lists.

use crate::common::*;
use serde_json::{Value, json};

async fn product(
    s: &TestServer,
    token: &str,
    sku: &str,
    stock: i64,
    reorder_level: i64,
) -> (String, String) {
    let r = s
        .post("/api/v1/products", token, json!({"name": format!("P {sku}"), "variants": [{"sku": sku, "price": 100, "stock": stock, "reorder_level": reorder_level}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["variants"][0]["id"].as_str().unwrap().to_owned(),
    )
}

async fn stock_of(s: &TestServer, token: &str, vid: &str) -> i64 {
    s.get(&format!("/api/v1/variants/{vid}"), token).await.body["stock"]
        .as_i64()
        .unwrap()
}

async fn movements(s: &TestServer, token: &str, vid: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut path = format!("/api/v1/variants/{vid}/movements?limit=100");
    loop {
        let r = s.get(&path, token).await;
        assert_eq!(r.status, 200);
        all.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/variants/{vid}/movements?limit=100&cursor={c}"),
            None => return all,
        }
    }
}

#[tokio::test]
async fn adjustments_change_stock_and_write_a_movement_with_stock_after() {
    let s = start().await;
    let o = s.signup("Stock").await;
    let (_, vid) = product(&s, &o.token, "S1", 5, 2).await;
    let r = s
        .post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            &o.token,
            json!({"delta": 12, "reason": "delivery"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"variant_id": vid, "stock": 17}));
    let r = s
        .post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            &o.token,
            json!({"delta": -17, "reason": "stocktake"}),
        )
        .await;
    assert_eq!(r.body["stock"], 0);
    let mv = movements(&s, &o.token, &vid).await;
    let summary: Vec<(i64, &str, i64)> = mv
        .iter()
        .map(|m| {
            (
                m["delta"].as_i64().unwrap(),
                m["reason"].as_str().unwrap(),
                m["stock_after"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (-17, "stocktake", 0),
            (12, "delivery", 17),
            (5, "initial", 5)
        ],
        "newest first"
    );
    assert!(mv[0]["created_at"].as_str().is_some());
    assert_eq!(mv[0]["order_id"], Value::Null);
}

#[tokio::test]
async fn going_below_zero_is_409_out_of_stock_and_writes_nothing() {
    let s = start().await;
    let o = s.signup("Below").await;
    let (_, vid) = product(&s, &o.token, "B1", 3, 0).await;
    let r = s
        .post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            &o.token,
            json!({"delta": -4, "reason": "breakage"}),
        )
        .await;
    r.assert_problem(409, "out_of_stock");
    assert_eq!(stock_of(&s, &o.token, &vid).await, 3);
    assert_eq!(movements(&s, &o.token, &vid).await.len(), 1);
}

#[tokio::test]
async fn bad_adjustments_are_422_and_unknown_variants_404() {
    let s = start().await;
    let o = s.signup("BadAdj").await;
    let (_, vid) = product(&s, &o.token, "X1", 3, 0).await;
    let path = format!("/api/v1/variants/{vid}/stock-adjustments");
    for (body, field) in [
        (json!({"delta": 0, "reason": "nothing"}), "delta"),
        (json!({"delta": 5, "reason": ""}), "reason"),
        (json!({"delta": 5, "reason": "a\u{0000}b"}), "reason"),
        (json!({"delta": 5, "reason": "x".repeat(100_000)}), "reason"),
        (json!({"delta": 5}), "reason"),
        (json!({"reason": "x"}), "delta"),
        (json!({"delta": "5", "reason": "x"}), "delta"),
        (json!({"delta": 1.5, "reason": "x"}), "delta"),
        (
            json!({"delta": 9_000_000_000_000_000_000i64, "reason": "x"}),
            "delta",
        ),
        (
            json!({"delta": 18446744073709551615u64, "reason": "x"}),
            "delta",
        ),
    ] {
        let r = s.post(&path, &o.token, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        assert!(
            r.error_fields().contains(&field.to_owned()),
            "{body}: {:?}",
            r.error_fields()
        );
    }
    assert_eq!(stock_of(&s, &o.token, &vid).await, 3);
    assert_eq!(movements(&s, &o.token, &vid).await.len(), 1);
    s.post(
        "/api/v1/variants/nope/stock-adjustments",
        &o.token,
        json!({"delta": 1, "reason": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    // 404 outranks 422.
    s.post(
        "/api/v1/variants/nope/stock-adjustments",
        &o.token,
        json!({"delta": 0}),
    )
    .await
    .assert_problem(404, "not_found");
    s.get("/api/v1/variants/nope/movements", &o.token)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn two_hundred_concurrent_decrements_of_a_stock_of_50_succeed_exactly_50_times() {
    let s = start().await;
    let o = s.signup("Race").await;
    let (_, vid) = product(&s, &o.token, "R1", 50, 0).await;
    let mut handles = Vec::new();
    for _ in 0..200 {
        let client = s.client.clone();
        let url = format!("{}/api/v1/variants/{vid}/stock-adjustments", s.base);
        let token = o.token.clone();
        handles.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"delta": -1, "reason": "sale"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body["code"].as_str().unwrap_or("").to_owned())
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for h in handles {
        match h.await.unwrap() {
            (200, _) => ok += 1,
            (409, code) if code == "out_of_stock" => conflicts += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((ok, conflicts), (50, 150));
    assert_eq!(stock_of(&s, &o.token, &vid).await, 0);
    let mv = movements(&s, &o.token, &vid).await;
    let sales: Vec<&Value> = mv.iter().filter(|m| m["reason"] == "sale").collect();
    assert_eq!(sales.len(), 50);
    // Each sale left a distinct stock_after from 49 down to 0.
    let mut after: Vec<i64> = sales
        .iter()
        .map(|m| m["stock_after"].as_i64().unwrap())
        .collect();
    after.sort_unstable();
    assert_eq!(after, (0..50).collect::<Vec<_>>());
    let sum: i64 = mv.iter().map(|m| m["delta"].as_i64().unwrap()).sum();
    assert_eq!(sum, 0, "movements sum to the stock");
}

#[tokio::test]
async fn low_stock_lists_variants_at_or_below_their_reorder_level() {
    let s = start().await;
    let o = s.signup("Low").await;
    let other = s.signup("Low Other").await;
    let (pid_a, low_a) = product(&s, &o.token, "L1", 2, 5).await;
    let (_, at_level) = product(&s, &o.token, "L2", 5, 5).await;
    let (_, fine) = product(&s, &o.token, "L3", 50, 5).await;
    product(&s, &other.token, "L1", 0, 5).await;
    let r = s.get("/api/v1/inventory?low_stock=true", &o.token).await;
    assert_eq!(r.status, 200);
    let items = r.body["items"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["variant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![at_level.as_str(), low_a.as_str()]);
    assert_eq!(
        items[1],
        json!({"variant_id": low_a, "product_id": pid_a, "sku": "L1", "stock": 2, "reorder_level": 5})
    );
    // Restocking takes a variant off the list; selling puts one on.
    s.post(
        &format!("/api/v1/variants/{low_a}/stock-adjustments"),
        &o.token,
        json!({"delta": 10, "reason": "delivery"}),
    )
    .await;
    s.post(
        &format!("/api/v1/variants/{fine}/stock-adjustments"),
        &o.token,
        json!({"delta": -46, "reason": "sale"}),
    )
    .await;
    let r = s.get("/api/v1/inventory?low_stock=true", &o.token).await;
    let ids: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["variant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![fine.as_str(), at_level.as_str()]);
    let all = s.get("/api/v1/inventory", &o.token).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 3);
    s.get("/api/v1/inventory?low_stock=perhaps", &o.token)
        .await
        .assert_problem(400, "bad_request");
    let paged = s.get("/api/v1/inventory?limit=2", &o.token).await;
    let cursor = paged.body["next_cursor"].as_str().unwrap();
    let rest = s
        .get(
            &format!("/api/v1/inventory?limit=2&cursor={cursor}"),
            &o.token,
        )
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next_cursor"], Value::Null);
}

/// MAX_STOCK holds back increases only: a cancellation may return stock
/// above it, and that stock can still come down.
#[tokio::test]
async fn stock_returned_above_the_cap_can_still_be_taken_down() {
    let s = start().await;
    let o = s.signup("Cap").await;
    let t = &o.token;
    let cap: i64 = 1_000_000_000_000;
    let (_, vid) = product(&s, t, "CAP", cap, 0).await;
    let c = s.post("/api/v1/customers", t, json!({"name": "C"})).await;
    let order = s
        .post(
            "/api/v1/orders",
            t,
            json!({"customer_id": c.body["id"], "payment_method": "invoice",
                   "items": [{"variant_id": vid, "quantity": 1_000_000_000}]}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let adjust = |delta: i64| {
        let path = format!("/api/v1/variants/{vid}/stock-adjustments");
        let s = &s;
        async move {
            s.post(&path, t, json!({"delta": delta, "reason": "count"}))
                .await
        }
    };
    assert_eq!(adjust(1_000_000_000).await.status, 200, "back at the cap");
    let cancel = s
        .post(
            &format!(
                "/api/v1/orders/{}/status",
                order.body["id"].as_str().unwrap()
            ),
            t,
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    assert_eq!(stock_of(&s, t, &vid).await, cap + 1_000_000_000);
    adjust(1).await.assert_problem(422, "validation_failed");
    let down = adjust(-1).await;
    assert_eq!(down.status, 200, "{}", down.body);
    assert_eq!(down.body["stock"], cap + 999_999_999);
    // Returning stock never overflows the count: that cancellation is
    // refused and changes nothing. (Reaching i64 for real would take
    // millions of orders; the test sets the stock directly.)
    let second = s
        .post(
            "/api/v1/orders",
            t,
            json!({"customer_id": c.body["id"], "payment_method": "invoice",
                   "items": [{"variant_id": vid, "quantity": 10}]}),
        )
        .await;
    assert_eq!(second.status, 201, "{}", second.body);
    let pool = s.raw_database().await;
    let near_max = i64::MAX - 5;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE variants SET stock = {near_max} WHERE id = '{vid}'"
    )))
    .execute(&pool)
    .await
    .unwrap();
    let second_id = second.body["id"].as_str().unwrap();
    s.post(
        &format!("/api/v1/orders/{second_id}/status"),
        t,
        json!({"status": "cancelled"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    assert_eq!(stock_of(&s, t, &vid).await, near_max);
    assert_eq!(
        s.get(&format!("/api/v1/orders/{second_id}"), t).await.body["status"],
        "placed"
    );
}
