//! The events business writes publish to the outbox, in the transaction of
//! the fact: `customer.created` and `stock.low` here (orders, quotations
//! and wallets have theirs tested beside them), and the aggregate every
//! event names so that the events of one order stay in order downstream.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn a_new_customer_publishes_customer_created_with_the_customer_as_answered() {
    let s = start().await;
    let owner = s.signup("Events Crm").await;
    let c = s
        .post(
            "/api/v1/customers",
            &owner.token,
            json!({"name": "Ada", "email": "ada@example.com", "tags": ["vip"]}),
        )
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    // A refused one publishes nothing.
    s.post("/api/v1/customers", &owner.token, json!({"name": ""}))
        .await
        .assert_problem(422, "validation_failed");
    let events = s.outbox(&owner.tenant_id, "customer.created").await;
    assert_eq!(events, vec![c.body.clone()]);
    let id = c.body["id"].as_str().unwrap();
    assert!(
        s.outbox_aggregates(&owner.tenant_id)
            .await
            .contains(&("customer.created".to_owned(), format!("customer:{id}")))
    );
}

#[tokio::test]
async fn stock_low_is_published_only_when_a_change_crosses_the_reorder_level_downward() {
    let s = start().await;
    let owner = s.signup("Events Stock").await;
    let t = &owner.token;
    let p = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "Lamp", "variants": [{"sku": "LAMP-1", "price": 1000, "stock": 10, "reorder_level": 5}]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let product = p.body["id"].as_str().unwrap().to_owned();
    let variant = p.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let adjust = |delta: i64| {
        let path = format!("/api/v1/variants/{variant}/stock-adjustments");
        let body = json!({"delta": delta, "reason": "count"});
        let s = &s;
        async move { s.post(&path, t, body).await }
    };
    assert_eq!(adjust(-4).await.status, 200); // 10 → 6: above
    assert_eq!(adjust(-1).await.status, 200); // 6 → 5: crosses
    assert_eq!(adjust(-1).await.status, 200); // 5 → 4: already at or below
    assert_eq!(adjust(10).await.status, 200); // 4 → 14: up
    // Editing the reorder level above the stock emits nothing.
    let raised = s
        .patch(
            &format!("/api/v1/variants/{variant}"),
            t,
            json!({"reorder_level": 20}),
        )
        .await;
    assert_eq!(raised.status, 200, "{}", raised.body);
    let lowered = s
        .patch(
            &format!("/api/v1/variants/{variant}"),
            t,
            json!({"reorder_level": 5}),
        )
        .await;
    assert_eq!(lowered.status, 200, "{}", lowered.body);
    // An order taking 14 → 3 crosses again; a refused one (out of stock)
    // publishes nothing.
    let customer = s
        .post("/api/v1/customers", t, json!({"name": "Buyer"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = |quantity: i64| {
        let body = json!({"customer_id": customer, "payment_method": "invoice",
                          "items": [{"variant_id": variant, "quantity": quantity}]});
        let s = &s;
        async move { s.post("/api/v1/orders", t, body).await }
    };
    order(100).await.assert_problem(409, "out_of_stock");
    assert_eq!(order(11).await.status, 201);
    let events = s.outbox(&owner.tenant_id, "stock.low").await;
    let low = |stock: i64| {
        json!({"variant_id": variant, "product_id": product, "sku": "LAMP-1",
               "stock": stock, "reorder_level": 5})
    };
    assert_eq!(events, vec![low(5), low(3)]);
}

#[tokio::test]
async fn the_events_of_one_order_name_the_order_as_their_aggregate() {
    let s = start().await;
    let owner = s.signup("Events Order").await;
    let t = &owner.token;
    let p = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "Mug", "variants": [{"sku": "MUG-1", "price": 500, "stock": 100}]}),
        )
        .await;
    let variant = p.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let customer = s
        .post("/api/v1/customers", t, json!({"name": "Buyer"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = s
        .post(
            "/api/v1/orders",
            t,
            json!({"customer_id": customer, "payment_method": "invoice",
                   "items": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await;
    let id = o.body["id"].as_str().unwrap();
    for status in ["paid", "shipped"] {
        let r = s
            .post(
                &format!("/api/v1/orders/{id}/status"),
                t,
                json!({"status": status}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let order_events: Vec<(String, String)> = s
        .outbox_aggregates(&owner.tenant_id)
        .await
        .into_iter()
        .filter(|(topic, _)| topic.starts_with("order."))
        .collect();
    let aggregate = format!("order:{id}");
    assert_eq!(
        order_events,
        vec![
            ("order.created".to_owned(), aggregate.clone()),
            ("order.status_changed".to_owned(), aggregate.clone()),
            ("order.status_changed".to_owned(), aggregate),
        ]
    );
}

/// Dispatched events and done jobs go after 7 days; undispatched events,
/// jobs not done, and younger rows stay.
#[tokio::test]
async fn dispatched_events_and_done_jobs_are_pruned_after_seven_days() {
    use brisk::platform::{dispatch, jobs};
    let s = start_with(|c| c.workers = 0).await;
    let owner = s.signup("Events Prune").await;
    let pool = s.raw_database().await;
    let day: i64 = 24 * 3600 * 1_000_000;
    let now = brisk::platform::clock::now_micros();
    let old = now - 8 * day;
    let young = now - 6 * day;
    for (id, processed) in [
        ("e-old", Some(old)),
        ("e-young", Some(young)),
        ("e-pending", None),
    ] {
        sqlx::query(
            "INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at, processed_at) \
             VALUES ($1, $2, 'customer.created', '', '{}', $3, $4)",
        )
        .bind(&owner.tenant_id)
        .bind(id)
        .bind(old)
        .bind(processed)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (id, status, updated) in [
        ("j-old", "done", old),
        ("j-young", "done", young),
        ("j-dead", "dead", old),
    ] {
        sqlx::query(
            "INSERT INTO jobs (tenant_id, id, kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at) \
             VALUES ($1, $2, 'email.order_confirmation', '{}', $3, 1, 8, $4, $4, $4)",
        )
        .bind(&owner.tenant_id)
        .bind(id)
        .bind(status)
        .bind(updated)
        .execute(&pool)
        .await
        .unwrap();
    }
    // The admin list, read twice: cached before the prune.
    let listed = |r: &Resp| r.body["items"].as_array().map(Vec::len);
    let before = s.get("/api/v1/admin/jobs", &owner.token).await;
    assert_eq!(listed(&before), Some(3), "{}", before.body);
    assert_eq!(
        s.get("/api/v1/admin/jobs", &owner.token).await.statements(),
        0
    );
    let state = &s.server.as_ref().unwrap().state;
    let cutoff = now - i64::try_from(dispatch::RETENTION.as_micros()).unwrap();
    assert_eq!(
        dispatch::prune_dispatched(&state.db, cutoff).await.unwrap(),
        1
    );
    assert_eq!(
        jobs::prune_done(&state.db, &state.cache, cutoff)
            .await
            .unwrap(),
        1
    );
    let after = s.get("/api/v1/admin/jobs", &owner.token).await;
    assert_eq!(
        listed(&after),
        Some(2),
        "the pruned job left the list: {}",
        after.body
    );
    let events: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM outbox WHERE tenant_id = $1 AND id LIKE 'e-%' ORDER BY id")
            .bind(&owner.tenant_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        events,
        vec![("e-pending".to_owned(),), ("e-young".to_owned(),)]
    );
    let left: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM jobs WHERE tenant_id = $1 ORDER BY id")
            .bind(&owner.tenant_id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, vec![("j-dead".to_owned(),), ("j-young".to_owned(),)]);
}

/// On PostgreSQL the order's statement assembles the `order.created`
/// payload around the number and time it hands out; on both backends the
/// event is the order exactly as the API answered it, whatever the notes
/// hold (text shaped like the payload's own keys, quotes, backslashes,
/// non-ASCII), for an invoice and a wallet order.
#[tokio::test]
async fn order_created_carries_the_order_as_answered_whatever_its_notes() {
    let s = start().await;
    let owner = s.signup("Events Created").await;
    let t = &owner.token;
    let p = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "Mug \"Deluxe\"", "variants": [
                {"sku": "MUG-1", "price": 1999, "stock": 100},
                {"sku": "MUG-2", "price": 2500, "stock": 100}]}),
        )
        .await;
    let variants: Vec<String> = p.body["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let customer = s
        .post(
            "/api/v1/customers",
            t,
            json!({"name": "Buyer", "discount_bp": 750}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let credited = s
        .post(
            &format!("/api/v1/customers/{customer}/wallet/credits"),
            t,
            json!({"amount": 100_000}),
        )
        .await;
    assert_eq!(credited.status, 201, "{}", credited.body);
    let notes = [
        None,
        Some(r#"","number":"","status_history":[{"created_at":"1970-01-01T00:00:00Z"}]"#),
        Some("\"quoted\", back\\slash, </script> and Zürich ✓"),
        Some("1970-01-01T00:00:00Z"),
    ];
    let mut answered = Vec::new();
    for (i, note) in notes.iter().enumerate() {
        let payment = if i % 2 == 0 { "invoice" } else { "wallet" };
        let o = s
            .post(
                "/api/v1/orders",
                t,
                json!({"customer_id": customer, "payment_method": payment, "notes": note,
                       "items": [{"variant_id": variants[0], "quantity": 2},
                                 {"variant_id": variants[1], "quantity": 1}]}),
            )
            .await;
        assert_eq!(o.status, 201, "{}", o.body);
        answered.push(o.body);
    }
    assert_eq!(s.outbox(&owner.tenant_id, "order.created").await, answered);
}

/// The SQL function that writes an order's time into its event on
/// PostgreSQL formats instants exactly as the API does.
#[tokio::test]
async fn the_databases_time_format_is_the_apis() {
    if !is_postgres() {
        return;
    }
    let s = start().await;
    let pool = s.raw_database().await;
    let mut instants: Vec<i64> = vec![
        0,
        1,
        10,
        100_000,
        120_000,
        999_999,
        1_000_000,
        1_764_680_072_123_456,
        1_764_680_072_100_000,
        1_764_680_072_000_001,
        253_402_300_799_999_999,
    ];
    let mut x: i64 = 0x2545_f491;
    for _ in 0..2_000 {
        // A fixed xorshift: the same instants every run, spread over 1970–2100.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        instants.push(x.rem_euclid(4_102_444_800_000_000));
    }
    for micros in instants {
        let (formatted,): (String,) = sqlx::query_as("SELECT brisk_rfc3339($1)")
            .bind(micros)
            .fetch_one(&pool)
            .await
            .expect("formats");
        assert_eq!(
            formatted,
            brisk::platform::clock::rfc3339(micros),
            "{micros}"
        );
    }
}
