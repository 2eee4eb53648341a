//! Dispatch latency, measured rather than asserted: run with
//!
//! ```text
//! cargo test --release --test api -- --ignored --nocapture bench_dispatch
//! ```
//!
//! (`BRISK_TEST_BACKEND=postgres` with `BRISK_TEST_POSTGRES_URL` for
//! PostgreSQL). Orders are placed against the real server with a webhook
//! subscribed to `order.created` on a loopback receiver; then, from the
//! database: **dispatch** = when the dispatcher handed the event to the
//! consumers (`outbox.processed_at`) minus when the order's transaction
//! began (`outbox.created_at`, so it includes the commit), and
//! **delivery** = when the receiver's 2xx was recorded minus the same start.
//! First "idle" (one order at a time, 20 ms apart: each wakes a sleeping
//! dispatcher), then "under load" (8 clients placing orders back to back).
//! Bounded: 200 + 2,000 orders, each phase waits at most 120 s.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

async fn receiver() -> String {
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::NO_CONTENT });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver binds");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://127.0.0.1:{port}/hook")
}

fn percentiles(mut micros: Vec<i64>) -> String {
    micros.sort_unstable();
    if micros.is_empty() {
        return "no samples".to_owned();
    }
    let at = |p: f64| {
        let i = ((micros.len() as f64 - 1.0) * p).round() as usize;
        micros[i] as f64 / 1000.0
    };
    format!(
        "n={} p50={:.1} ms p90={:.1} ms p99={:.1} ms max={:.1} ms",
        micros.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    )
}

/// `(dispatch, delivery)` latencies in micros of the tenant's order events.
async fn latencies(s: &TestServer, tenant: &str, expected: usize) -> (Vec<i64>, Vec<i64>) {
    let pool = s.raw_database().await;
    for _ in 0..1200 {
        let (delivered,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM webhook_deliveries WHERE tenant_id = $1 AND status = 'delivered'",
        )
        .bind(tenant)
        .fetch_one(&pool)
        .await
        .expect("count");
        if delivered as usize >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT o.created_at, o.processed_at, d.delivered_at FROM outbox o \
         JOIN webhook_deliveries d ON d.tenant_id = o.tenant_id AND d.event_id = o.id \
         WHERE o.tenant_id = $1 AND o.topic = 'order.created' AND o.processed_at IS NOT NULL",
    )
    .bind(tenant)
    .fetch_all(&pool)
    .await
    .expect("latencies");
    let dispatch = rows.iter().map(|(c, p, _)| p - c).collect();
    let delivery = rows
        .iter()
        .filter_map(|(c, _, d)| d.map(|d| d - c))
        .collect();
    (dispatch, delivery)
}

async fn setup(s: &TestServer, company: &str, url: &str) -> (Session, String, Vec<String>) {
    let owner = s.signup(company).await;
    let t = &owner.token;
    let hook = s
        .post(
            "/api/v1/webhooks",
            t,
            json!({"url": url, "events": ["order.created"]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    let customer = s
        .post("/api/v1/customers", t, json!({"name": "Bench"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let variants: Vec<Value> = (0..50)
        .map(|i| json!({"sku": format!("B{i}"), "price": 1000, "stock": 1_000_000}))
        .collect();
    let p = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "Bench", "variants": variants}),
        )
        .await;
    let ids = p.body["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    (owner, customer, ids)
}

fn order_body(customer: &str, variants: &[String], n: usize) -> Value {
    let items: Vec<Value> = (0..3)
        .map(|k| json!({"variant_id": variants[(n * 3 + k) % variants.len()], "quantity": 1}))
        .collect();
    json!({"customer_id": customer, "payment_method": "invoice", "items": items})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run by hand, see the module doc"]
async fn bench_dispatch_latency_idle_and_under_load() {
    let s = start_with(|c| {
        c.webhook_allow_private = true;
        c.rate_limit_per_minute = 0;
    })
    .await;
    let url = receiver().await;

    let (owner, customer, variants) = setup(&s, "Bench Idle", &url).await;
    for n in 0..200 {
        let r = s
            .post(
                "/api/v1/orders",
                &owner.token,
                order_body(&customer, &variants, n),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (dispatch, delivery) = latencies(&s, &owner.tenant_id, 200).await;
    println!(
        "backend={} idle      dispatch: {}",
        backend(),
        percentiles(dispatch)
    );
    println!(
        "backend={} idle      delivery: {}",
        backend(),
        percentiles(delivery)
    );

    let (owner, customer, variants) = setup(&s, "Bench Load", &url).await;
    let started = std::time::Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..8 {
        let (c, base, token, customer, variants) = (
            s.client.clone(),
            s.base.clone(),
            owner.token.clone(),
            customer.clone(),
            variants.clone(),
        );
        clients.spawn(async move {
            for n in 0..250 {
                let r = c
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&token)
                    .json(&order_body(&customer, &variants, client * 1000 + n))
                    .send()
                    .await
                    .expect("order sent");
                assert_eq!(r.status(), 201);
            }
        });
    }
    while clients.join_next().await.is_some() {}
    let took = started.elapsed();
    let (dispatch, delivery) = latencies(&s, &owner.tenant_id, 2000).await;
    println!(
        "backend={} load      {} orders in {:.1} s ({:.0}/s) from 8 clients",
        backend(),
        2000,
        took.as_secs_f64(),
        2000.0 / took.as_secs_f64()
    );
    println!(
        "backend={} load      dispatch: {}",
        backend(),
        percentiles(dispatch)
    );
    println!(
        "backend={} load      delivery: {}",
        backend(),
        percentiles(delivery)
    );
}
