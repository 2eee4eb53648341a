//! Webhooks through the real server, delivering to real receivers: small
//! HTTP servers on loopback that record every request and answer with
//! scripted statuses. Waits are polls with a generous bound; nothing here
//! asserts that something happened within a time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use brisk::platform::config::Config;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::*;

// ---------------------------------------------------------------------------
// Receivers

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
    json: Value,
    at: Instant,
    answered: u16,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn event_id(&self) -> &str {
        self.json["id"].as_str().unwrap_or("")
    }
    fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap_or("")
    }
}

#[derive(Default)]
struct Script {
    /// Answers for the next requests, in order; then `otherwise`.
    next: VecDeque<u16>,
    otherwise: u16,
    requests: Vec<Received>,
}

/// An HTTP endpoint on 127.0.0.1 that records what it is sent.
#[derive(Clone)]
struct Receiver {
    url: String,
    port: u16,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    async fn start(first: &[u16], otherwise: u16) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            next: first.iter().copied().collect(),
            otherwise,
            requests: Vec::new(),
        }));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver binds");
        let port = listener.local_addr().expect("receiver address").port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/brisk"),
            port,
            script,
        }
    }

    async fn healthy() -> Receiver {
        Receiver::start(&[], 200).await
    }

    fn requests(&self) -> Vec<Received> {
        self.script.lock().expect("script").requests.clone()
    }

    fn answer_from_now_on(&self, status: u16) {
        self.script.lock().expect("script").otherwise = status;
    }

    fn of_event(&self, event_id: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.event_id() == event_id)
            .collect()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.event_type() == event_type)
            .collect()
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut script = script.lock().expect("script");
    let answer = script.next.pop_front().unwrap_or(script.otherwise);
    script.requests.push(Received {
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
        answered: answer,
    });
    StatusCode::from_u16(answer).expect("a valid status")
}

// ---------------------------------------------------------------------------
// Helpers

/// Quick retries and cool-downs, loopback receivers allowed.
fn fast(c: &mut Config) {
    c.webhook_allow_private = true;
    c.retry_base_ms = 100;
    c.circuit_cooldown_ms = 500;
    c.job_lease_ms = 30_000;
    c.worker_poll_ms = 100;
}

/// Polls `check` until it gives a value (at most 60 s: CI may be slow).
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_webhook(s: &TestServer, token: &str, body: Value) -> Value {
    let r = s.post("/api/v1/webhooks", token, body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn subscribe(s: &TestServer, token: &str, rx: &Receiver, events: Value) -> String {
    create_webhook(s, token, json!({"url": rx.url, "events": events})).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn deliveries(s: &TestServer, token: &str, webhook: &str) -> Vec<Value> {
    let r = s
        .get(
            &format!("/api/v1/webhooks/{webhook}/deliveries?limit=100"),
            token,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

async fn circuit(s: &TestServer, token: &str, webhook: &str) -> String {
    let r = s.get(&format!("/api/v1/webhooks/{webhook}"), token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["circuit"].as_str().expect("circuit").to_owned()
}

async fn webhook_ids(s: &TestServer, token: &str) -> Vec<String> {
    let r = s.get("/api/v1/webhooks?limit=100", token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| w["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn customer(s: &TestServer, token: &str) -> String {
    let r = s
        .post("/api/v1/customers", token, json!({"name": "Buyer"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().expect("id").to_owned()
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

/// A variant with stock to order from.
async fn variant(s: &TestServer, token: &str) -> String {
    let r = s
        .post(
            "/api/v1/products",
            token,
            json!({"name": "Thing", "variants": [{"sku": "T-1", "price": 1000, "cost": 600, "stock": 50}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["variants"][0]["id"]
        .as_str()
        .expect("variant")
        .to_owned()
}

async fn place_order(s: &TestServer, token: &str, customer: &str, variant: &str) -> String {
    let r = s
        .post(
            "/api/v1/orders",
            token,
            json!({"customer_id": customer, "payment_method": "invoice",
                   "items": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().expect("order id").to_owned()
}

async fn move_order(s: &TestServer, token: &str, order: &str, status: &str) {
    let r = s
        .post(
            &format!("/api/v1/orders/{order}/status"),
            token,
            json!({"status": status}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Checks `Brisk-Signature` the way a receiver would.
#[track_caller]
fn assert_signed(secret: &str, request: &Received) {
    let header = request.header("brisk-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("Brisk-Signature is t=…,v1=…: {header:?}"));
    let seconds: i64 = t.parse().expect("t is unix seconds");
    assert!(seconds > 1_600_000_000, "t is a unix time: {seconds}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(&request.body);
    assert_eq!(
        v1,
        hex::encode(mac.finalize().into_bytes()),
        "the signature verifies"
    );
}

fn rfc3339(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is RFC 3339: {e}"))
}

// ---------------------------------------------------------------------------
// Delivery

#[tokio::test]
async fn a_subscriber_gets_each_of_its_events_once_signed_and_in_the_documented_shape() {
    let s = start_with(fast).await;
    let o = s.signup("Hooked").await;
    let t = &o.token;
    let rx = Receiver::healthy().await;
    let everything = Receiver::healthy().await;
    let secret = "a-secret-of-sixteen-or-more";
    let created = create_webhook(
        &s,
        t,
        json!({"url": rx.url, "events": ["order.created", "wallet.credited"], "secret": secret}),
    )
    .await;
    assert_eq!(created["url"], rx.url.as_str());
    assert_eq!(
        created["events"],
        json!(["order.created", "wallet.credited"])
    );
    assert_eq!(created["active"], true);
    assert_eq!(created["secret"], secret);
    assert_eq!(created["circuit"], "closed");
    rfc3339(created["created_at"].as_str().expect("created_at"));
    let hook = created["id"].as_str().expect("id").to_owned();
    // By name: this one goes through the delivery client's own resolver.
    let all = create_webhook(
        &s,
        t,
        json!({"url": format!("http://localhost:{}/all", everything.port), "events": ["*"]}),
    )
    .await;
    let generated = all["secret"].as_str().expect("a generated secret");
    assert!(
        generated.starts_with("whsec_") && generated.len() >= 16 + 6,
        "{generated}"
    );

    // The secret is shown once.
    let one = s.get(&format!("/api/v1/webhooks/{hook}"), t).await;
    assert_eq!(one.status, 200);
    assert!(one.body.get("secret").is_none(), "{}", one.body);
    assert_eq!(one.body["events"], created["events"]);
    let list = s.get("/api/v1/webhooks", t).await;
    assert!(
        list.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|w| w.get("secret").is_none())
    );

    let c = customer(&s, t).await;
    let v = variant(&s, t).await;
    credit(&s, t, &c, 5000).await;
    let order = place_order(&s, t, &c, &v).await;
    move_order(&s, t, &order, "paid").await;

    // The catch-all subscriber got the last event: every event of this
    // test has been dispatched, so the other webhook's deliveries are all
    // there.
    eventually(
        "the catch-all receiver gets order.status_changed",
        async || (!everything.of_type("order.status_changed").is_empty()).then_some(()),
    )
    .await;
    let done = eventually("both deliveries are delivered", async || {
        let items = deliveries(&s, t, &hook).await;
        items
            .iter()
            .all(|d| d["status"] == "delivered")
            .then_some(items)
    })
    .await;
    assert_eq!(done.len(), 2, "one delivery per subscribed event: {done:?}");

    let got = rx.requests();
    assert_eq!(got.len(), 2, "each event once, nothing unsubscribed");
    let mut types: Vec<&str> = got.iter().map(Received::event_type).collect();
    types.sort_unstable();
    assert_eq!(types, ["order.created", "wallet.credited"]);
    for request in &got {
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(
            request.header("user-agent"),
            format!("Brisk-Webhooks/{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(request.header("brisk-event-id"), request.event_id());
        assert_signed(secret, request);
        let body = request.json.as_object().expect("a JSON object");
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["created_at", "data", "id", "tenant_id", "type"]);
        assert_eq!(body["tenant_id"], o.tenant_id.as_str());
        rfc3339(body["created_at"].as_str().expect("created_at"));
        let delivery = done
            .iter()
            .find(|d| d["event_id"] == request.event_id())
            .expect("the delivery of this event");
        assert_eq!(delivery["event_type"], request.event_type());
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["response_status"], 200);
        assert_eq!(delivery["last_error"], Value::Null);
        assert_eq!(delivery["next_attempt_at"], Value::Null);
        rfc3339(delivery["delivered_at"].as_str().expect("delivered_at"));
    }
    let credited = &rx.of_type("wallet.credited")[0].json["data"];
    assert_eq!(credited["customer_id"], c.as_str());
    assert_eq!(credited["balance"], 5000);
    assert_eq!(credited["transaction"]["amount"], 5000);
    let placed = &rx.of_type("order.created")[0].json["data"];
    assert_eq!(placed["id"], order.as_str());
    assert_eq!(placed["status"], "placed");

    // The generated secret signs too.
    for request in everything.requests() {
        assert_signed(generated, &request);
    }
    let metrics = s.get_anon("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.bytes);
    assert!(
        text.contains("brisk_webhook_deliveries_total{outcome=\"delivered\"}"),
        "{text}"
    );
    assert!(text.contains("brisk_webhook_circuits_open"), "{text}");
}

#[tokio::test]
async fn the_events_of_one_order_arrive_in_the_order_they_happened() {
    // One worker: deliveries run one at a time, in the order the
    // dispatcher handed their events over (commit order).
    let s = start_with(|c| {
        fast(c);
        c.workers = 1;
    })
    .await;
    let o = s.signup("Ordered").await;
    let t = &o.token;
    let rx = Receiver::healthy().await;
    subscribe(&s, t, &rx, json!(["order.created", "order.status_changed"])).await;
    let c = customer(&s, t).await;
    let v = variant(&s, t).await;
    let order = place_order(&s, t, &c, &v).await;
    for status in ["paid", "shipped", "delivered"] {
        move_order(&s, t, &order, status).await;
    }
    let got = eventually("four events", async || {
        let got = rx.requests();
        (got.len() >= 4).then_some(got)
    })
    .await;
    let seen: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            (
                r.event_type().to_owned(),
                r.json["data"]["to"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("order.created".to_owned(), String::new()),
            ("order.status_changed".to_owned(), "paid".to_owned()),
            ("order.status_changed".to_owned(), "shipped".to_owned()),
            ("order.status_changed".to_owned(), "delivered".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_later_event_of_an_aggregate_waits_until_the_earlier_one_is_delivered() {
    // Two workers, and an endpoint that fails the first event twice: the
    // second event of the same aggregate is held back meanwhile. Events
    // are written straight into the outbox with their aggregate, as a
    // business write would.
    let s = start_with(fast).await;
    let o = s.signup("Aggregate").await;
    let t = &o.token;
    let rx = Receiver::start(&[500, 500], 200).await;
    let hook = subscribe(&s, t, &rx, json!(["order.status_changed"])).await;
    let db = s.raw_database().await;
    let first = uuid::Uuid::now_v7().to_string();
    let second = uuid::Uuid::now_v7().to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1_000_000;
    for (id, to) in [(&first, "paid"), (&second, "shipped")] {
        sqlx::query(
            "INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) \
             VALUES ($1, $2, 'order.status_changed', 'order:agg-1', $3, $4)",
        )
        .bind(o.tenant_id.clone())
        .bind(id.clone())
        .bind(json!({"order_id": "agg-1", "to": to}).to_string())
        .bind(now)
        .execute(&db)
        .await
        .expect("an outbox event");
    }
    db.close().await;
    eventually("both delivered", async || {
        let items = deliveries(&s, t, &hook).await;
        (items.len() == 2 && items.iter().all(|d| d["status"] == "delivered")).then_some(())
    })
    .await;
    let got = rx.requests();
    let order: Vec<&str> = got.iter().map(Received::event_id).collect();
    assert_eq!(
        order,
        [
            first.as_str(),
            first.as_str(),
            first.as_str(),
            second.as_str()
        ],
        "the first event's three attempts, then the second"
    );
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200, 200]
    );
}

#[tokio::test]
async fn a_deleted_webhook_is_sent_nothing_and_is_gone() {
    let s = start_with(fast).await;
    let o = s.signup("Deleted").await;
    let t = &o.token;
    let gone_rx = Receiver::healthy().await;
    let control = Receiver::healthy().await;
    let gone = subscribe(&s, t, &gone_rx, json!(["wallet.credited"])).await;
    let kept = subscribe(&s, t, &control, json!(["wallet.credited"])).await;
    let r = s.delete(&format!("/api/v1/webhooks/{gone}"), t).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let path = format!("/api/v1/webhooks/{gone}");
    s.get(&path, t).await.assert_problem(404, "not_found");
    s.patch(&path, t, json!({"active": false}))
        .await
        .assert_problem(404, "not_found");
    s.delete(&path, t).await.assert_problem(404, "not_found");
    s.get(&format!("{path}/deliveries"), t)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(webhook_ids(&s, t).await, [kept]);

    let c = customer(&s, t).await;
    credit(&s, t, &c, 100).await;
    eventually("the control receiver gets the credit", async || {
        (control.requests().len() == 1).then_some(())
    })
    .await;
    assert!(
        gone_rx.requests().is_empty(),
        "a deleted webhook gets nothing"
    );
}

#[tokio::test]
async fn an_endpoint_failing_twice_gets_three_attempts_with_growing_gaps_then_it_is_delivered() {
    let s = start_with(fast).await;
    let o = s.signup("Flaky").await;
    let t = &o.token;
    let rx = Receiver::start(&[500, 503], 200).await;
    let hook = subscribe(&s, t, &rx, json!(["wallet.credited"])).await;
    let c = customer(&s, t).await;
    credit(&s, t, &c, 700).await;
    let delivery = eventually("delivered", async || {
        deliveries(&s, t, &hook)
            .await
            .into_iter()
            .find(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["response_status"], 200);
    assert_eq!(delivery["last_error"], Value::Null);
    let got = rx.requests();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 503, 200]
    );
    // Every attempt sends the same event, byte for byte, under the same id.
    assert!(got.iter().all(|r| r.body == got[0].body));
    assert!(got.iter().all(|r| r.event_id() == delivery["event_id"]));
    // Backoff from a 100 ms base with ±20 % jitter: the first retry waits
    // at least 80 ms, the second at least 320 ms (×4).
    let first_gap = got[1].at - got[0].at;
    let second_gap = got[2].at - got[1].at;
    assert!(first_gap >= Duration::from_millis(80), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(320), "{second_gap:?}");
}

#[tokio::test]
async fn an_endpoint_that_always_fails_trips_its_circuit_and_gives_up_after_eight_attempts() {
    let s = start_with(|c| {
        fast(c);
        // 5 ms, 20 ms, 100 ms, 600 ms, then 3.6 s between attempts.
        c.retry_base_ms = 5;
    })
    .await;
    let o = s.signup("Broken").await;
    let t = &o.token;
    let broken_rx = Receiver::start(&[], 500).await;
    let healthy_rx = Receiver::healthy().await;
    let broken = subscribe(&s, t, &broken_rx, json!(["wallet.credited"])).await;
    let healthy = subscribe(
        &s,
        t,
        &healthy_rx,
        json!(["wallet.credited", "order.created"]),
    )
    .await;
    let c = customer(&s, t).await;
    let v = variant(&s, t).await;
    credit(&s, t, &c, 100).await;

    // The circuit opens on the 5th failure in a row, not before. The
    // circuit is read first: once it is not closed, the attempts (written
    // with it) are at least 5.
    eventually("the circuit trips", async || {
        let state = circuit(&s, t, &broken).await;
        let items = deliveries(&s, t, &broken).await;
        let d = items.first()?;
        let attempts = d["attempts"].as_i64().unwrap_or(0);
        if attempts >= 1 {
            assert_eq!(d["response_status"], 500, "{d}");
            assert!(
                d["last_error"].as_str().is_some_and(|e| e.contains("500")),
                "{d}"
            );
        }
        if state != "closed" {
            assert!(attempts >= 5, "{state} after {attempts} attempts");
            assert!(["open", "half_open"].contains(&state.as_str()), "{state}");
            return Some(());
        }
        None
    })
    .await;
    // The other endpoint is not held up by this one.
    eventually("the healthy endpoint gets the credit", async || {
        (healthy_rx.of_type("wallet.credited").len() == 1).then_some(())
    })
    .await;
    let order = place_order(&s, t, &c, &v).await;
    eventually("the healthy endpoint gets the order", async || {
        (healthy_rx.of_type("order.created").len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        healthy_rx.of_type("order.created")[0].json["data"]["id"],
        order.as_str()
    );

    let failed = eventually("the broken delivery gives up", async || {
        deliveries(&s, t, &broken)
            .await
            .into_iter()
            .find(|d| d["status"] == "failed")
    })
    .await;
    assert_eq!(failed["attempts"], 8);
    assert_eq!(failed["response_status"], 500);
    assert_eq!(failed["next_attempt_at"], Value::Null);
    assert!(failed["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    let event = failed["event_id"].as_str().expect("event id");
    assert_eq!(broken_rx.of_event(event).len(), 8, "8 attempts, no more");
    assert!(["open", "half_open"].contains(&circuit(&s, t, &broken).await.as_str()));
    assert_eq!(circuit(&s, t, &healthy).await, "closed");
    let r = s
        .get(
            &format!("/api/v1/webhooks/{broken}/deliveries?status=failed"),
            t,
        )
        .await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));
    let r = s
        .get(
            &format!("/api/v1/webhooks/{broken}/deliveries?status=delivered"),
            t,
        )
        .await;
    assert_eq!(r.body["items"], json!([]));
}

/// The webhook and job lists are served from the cache (what the back
/// office's settings page reads), and every change shows on the next read:
/// a webhook created; its delivery job queued and attempted; its circuit
/// opened by failures, turned half-open by the clock alone (the read that
/// shows it runs no statement: the circuit is derived from cached facts,
/// never cached itself); deliveries brought forward by activation; the
/// circuit closed by a success and the job done.
#[tokio::test]
async fn the_cached_webhook_and_job_lists_show_every_change_and_the_circuit_s_clock() {
    let s = start_with(|c| {
        fast(c);
        c.retry_base_ms = 5;
        c.circuit_cooldown_ms = 5_000;
    })
    .await;
    let o = s.signup("Cached Hooks").await;
    let t = &o.token;
    let hooks = "/api/v1/webhooks";
    let jobs = "/api/v1/admin/jobs?type=webhook.delivery";
    for path in [hooks, jobs] {
        let first = s.get(path, t).await;
        assert_eq!(first.body["items"], json!([]), "{path}: {}", first.body);
        let again = s.get(path, t).await;
        assert_eq!(again.statements(), 0, "{path}: the second read is a hit");
    }
    let listed = async |path: &str| -> (Value, u64) {
        let r = s.get(path, t).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let first = r.body["items"].get(0).cloned().unwrap_or(Value::Null);
        (first, r.statements())
    };

    // Five failures, then the endpoint works.
    let rx = Receiver::start(&[500, 500, 500, 500, 500], 200).await;
    let hook = subscribe(&s, t, &rx, json!(["wallet.credited"])).await;
    let (shown, _) = listed(hooks).await;
    assert_eq!(shown["id"], hook.as_str(), "created, listed at once");
    assert_eq!(shown["circuit"], "closed");
    let c = customer(&s, t).await;
    credit(&s, t, &c, 100).await;
    eventually("the delivery job listed with an attempt", async || {
        let (job, _) = listed(jobs).await;
        (job["attempts"].as_i64().unwrap_or(0) >= 1).then_some(())
    })
    .await;
    eventually("the circuit listed open", async || {
        let (shown, _) = listed(hooks).await;
        (shown["circuit"] == "open").then_some(())
    })
    .await;
    // Inactive, the delivery waits without probing: nothing writes the
    // webhook until it is active again.
    let r = s
        .patch(&format!("{hooks}/{hook}"), t, json!({"active": false}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (shown, _) = listed(hooks).await;
    assert_eq!(shown["active"], false);
    assert_eq!(shown["circuit"], "open", "still cooling down: {shown}");
    let statements = eventually("the circuit listed half-open", async || {
        let (shown, statements) = listed(hooks).await;
        (shown["circuit"] == "half_open").then_some(statements)
    })
    .await;
    assert_eq!(statements, 0, "the clock turned it, from the cached page");
    assert_eq!(rx.requests().len(), 5, "no probe while inactive");

    let r = s
        .patch(&format!("{hooks}/{hook}"), t, json!({"active": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the circuit listed closed", async || {
        let (shown, _) = listed(hooks).await;
        (shown["circuit"] == "closed").then_some(())
    })
    .await;
    eventually("the job listed done", async || {
        let (job, _) = listed(jobs).await;
        (job["status"] == "done").then_some(())
    })
    .await;
    assert_eq!(rx.requests().len(), 6, "five failures and one success");
}

#[tokio::test]
async fn an_inactive_webhook_is_sent_nothing_until_it_is_active_again_then_gets_what_was_pending() {
    let s = start_with(fast).await;
    let o = s.signup("Paused").await;
    let t = &o.token;
    let rx = Receiver::start(&[], 500).await;
    let control = Receiver::healthy().await;
    let hook = subscribe(&s, t, &rx, json!(["wallet.credited"])).await;
    subscribe(&s, t, &control, json!(["wallet.credited"])).await;
    let c = customer(&s, t).await;
    credit(&s, t, &c, 100).await;
    eventually("a first failed attempt", async || {
        (!rx.requests().is_empty()).then_some(())
    })
    .await;

    let r = s
        .patch(
            &format!("/api/v1/webhooks/{hook}"),
            t,
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    // The pending delivery is put aside (its next attempt is far off): no
    // attempt is on its way any more.
    let pending = eventually("the delivery waits for the webhook", async || {
        let items = deliveries(&s, t, &hook).await;
        let d = items.first()?.clone();
        let next = d["next_attempt_at"].as_str().map(rfc3339)?;
        (d["status"] == "pending"
            && next > time::OffsetDateTime::now_utc() + time::Duration::minutes(5))
        .then_some(d)
    })
    .await;
    rx.answer_from_now_on(200);
    let sent_before = rx.requests().len();

    // An event while inactive is not queued for it.
    credit(&s, t, &c, 200).await;
    eventually("the control receiver gets both credits", async || {
        (control.requests().len() == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.requests().len(), sent_before, "nothing while inactive");
    assert_eq!(deliveries(&s, t, &hook).await.len(), 1);

    let r = s
        .patch(
            &format!("/api/v1/webhooks/{hook}"),
            t,
            json!({"active": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let delivered = eventually("the pending delivery goes out", async || {
        deliveries(&s, t, &hook)
            .await
            .into_iter()
            .find(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(delivered["event_id"], pending["event_id"]);
    assert_eq!(
        delivered["attempts"].as_i64(),
        pending["attempts"].as_i64().map(|n| n + 1)
    );
    let got = rx.requests();
    assert_eq!(got.len(), sent_before + 1);
    assert_eq!(
        got.last().map(Received::event_id),
        pending["event_id"].as_str()
    );
}

#[tokio::test]
async fn a_private_address_is_refused_again_at_delivery() {
    // One node saves webhooks to loopback (allowed there, sends nothing);
    // the node that delivers does not allow private addresses.
    let saver = start_with(|c| {
        fast(c);
        c.workers = 0;
    })
    .await;
    let deliverer = start_beside(&saver, |c| {
        fast(c);
        c.webhook_allow_private = false;
    })
    .await;
    let o = saver.signup("Sneaky").await;
    let t = &o.token;
    let rx = Receiver::healthy().await;
    let literal = subscribe(&saver, t, &rx, json!(["wallet.credited"])).await;
    let named = create_webhook(
        &saver,
        t,
        json!({"url": format!("http://localhost:{}/hooks", rx.port), "events": ["wallet.credited"]}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let c = customer(&saver, t).await;
    credit(&saver, t, &c, 100).await;
    for hook in [&literal, &named] {
        let d = eventually("a refused attempt", async || {
            deliveries(&saver, t, hook)
                .await
                .into_iter()
                .find(|d| d["attempts"].as_i64() >= Some(1))
        })
        .await;
        assert_eq!(d["status"], "pending");
        assert_eq!(d["response_status"], Value::Null);
        let error = d["last_error"].as_str().unwrap_or("");
        assert!(
            error.starts_with("refused:") && error.contains("loopback"),
            "{error}"
        );
    }
    assert!(rx.requests().is_empty(), "nothing reached the receiver");
    deliverer.stop().await;
}

// ---------------------------------------------------------------------------
// The API

#[tokio::test]
async fn bad_input_is_a_422_naming_each_field_and_creates_nothing() {
    // The default configuration: private addresses are refused.
    let s = start().await;
    let o = s.signup("Strict").await;
    let t = &o.token;
    let ok_events = json!(["order.created"]);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["url", "events"]),
        (
            json!({"url": "ftp://files.example.com/x", "events": ok_events}),
            vec!["url"],
        ),
        (
            json!({"url": "not a url", "events": ok_events}),
            vec!["url"],
        ),
        (json!({"url": "http://", "events": ok_events}), vec!["url"]),
        (
            json!({"url": "mailto:ops@example.com", "events": ok_events}),
            vec!["url"],
        ),
        (json!({"url": "", "events": ok_events}), vec!["url"]),
        (json!({"url": 42, "events": ok_events}), vec!["url"]),
        (
            json!({"url": "https://93.184.216.34/h", "events": []}),
            vec!["events"],
        ),
        (
            json!({"url": "https://93.184.216.34/h", "events": ["order.shipped"]}),
            vec!["events[0]"],
        ),
        (
            json!({"url": "https://93.184.216.34/h", "events": ["order.created", "nope"]}),
            vec!["events[1]"],
        ),
        (
            json!({"url": "https://93.184.216.34/h", "events": ["*", "order.created"]}),
            vec!["events"],
        ),
        (
            json!({"url": "https://93.184.216.34/h", "events": ok_events, "secret": "too-short"}),
            vec!["secret"],
        ),
        (
            json!({"url": "gopher://x", "events": [], "secret": "x"}),
            vec!["url", "events", "secret"],
        ),
    ];
    let private = [
        "http://127.0.0.1:9/h",
        "http://127.1.2.3/h",
        "http://2130706433/h",
        "http://localhost:8080/h",
        "http://api.localhost/h",
        "http://10.0.0.7/h",
        "http://172.16.5.4/h",
        "http://172.31.0.1/h",
        "http://192.168.0.10/h",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.1.1/h",
        "http://0.0.0.0/h",
        "http://[::1]/h",
        "http://[::]/h",
        "http://[fc00::1]/h",
        "http://[fd12:3456::5]/h",
        "http://[fe80::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://[::ffff:169.254.169.254]/h",
        "http://[::ffff:10.1.1.1]/h",
    ];
    let cases = cases.into_iter().chain(
        private
            .iter()
            .map(|url| (json!({"url": url, "events": ["*"]}), vec!["url"])),
    );
    for (body, fields) in cases {
        let r = s.post("/api/v1/webhooks", t, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), fields, "{body}: {}", r.body);
    }
    assert!(webhook_ids(&s, t).await.is_empty(), "nothing was created");

    // A public address, and a host that does not resolve (checked again at
    // each delivery), are accepted.
    let public = create_webhook(
        &s,
        t,
        json!({"url": "https://93.184.216.34/hook", "events": ["wallet.credited"]}),
    )
    .await;
    let id = public["id"].as_str().expect("id").to_owned();
    create_webhook(
        &s,
        t,
        json!({"url": "https://brisk-webhook-test.invalid/hook", "events": ["*"], "active": false}),
    )
    .await;

    let path = format!("/api/v1/webhooks/{id}");
    for (body, fields) in [
        (json!({"url": "http://10.0.0.1/h"}), vec!["url"]),
        (json!({"url": null}), vec!["url"]),
        (json!({"events": null}), vec!["events"]),
        (json!({"active": null}), vec!["active"]),
        (json!({"events": ["nope"]}), vec!["events[0]"]),
        (json!({"events": []}), vec!["events"]),
        (
            json!({"url": "ftp://x", "events": []}),
            vec!["url", "events"],
        ),
    ] {
        let r = s.patch(&path, t, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), fields, "{body}: {}", r.body);
    }
    let unchanged = s.get(&path, t).await;
    assert_eq!(unchanged.body["url"], "https://93.184.216.34/hook");
    assert_eq!(unchanged.body["events"], json!(["wallet.credited"]));
    assert_eq!(unchanged.body["active"], true);

    // 404 outranks 422; unknown ids and bad queries.
    s.patch("/api/v1/webhooks/nope", t, json!({"url": "ftp://x"}))
        .await
        .assert_problem(404, "not_found");
    s.get("/api/v1/webhooks/nope", t)
        .await
        .assert_problem(404, "not_found");
    s.get("/api/v1/webhooks/nope/deliveries", t)
        .await
        .assert_problem(404, "not_found");
    s.get(&format!("{path}/deliveries?status=bogus"), t)
        .await
        .assert_problem(400, "bad_request");
    s.get(&format!("{path}?fields=secret"), t)
        .await
        .assert_problem(400, "unknown_field");
    s.get("/api/v1/webhooks?limit=0", t)
        .await
        .assert_problem(400, "bad_request");
    assert_eq!(webhook_ids(&s, t).await.len(), 2);

    // A good PATCH changes what it names and nothing else.
    let r = s
        .patch(&path, t, json!({"events": ["*"], "active": false}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["events"], json!(["*"]));
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["url"], "https://93.184.216.34/hook");
    assert!(r.body.get("secret").is_none());
}

#[tokio::test]
async fn lists_page_newest_first_and_select_fields() {
    let s = start_with(fast).await;
    let o = s.signup("Paged").await;
    let t = &o.token;
    let mut made = Vec::new();
    for i in 0..3 {
        let w = create_webhook(
            &s,
            t,
            json!({"url": format!("https://93.184.216.{i}/h"), "events": ["*"]}),
        )
        .await;
        made.push(w["id"].as_str().expect("id").to_owned());
    }
    let first = s.get("/api/v1/webhooks?limit=2&fields=url,active", t).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let items = first.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], made[2].as_str());
    assert_eq!(items[1]["id"], made[1].as_str());
    let mut keys: Vec<&str> = items[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["active", "id", "url"]);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = s
        .get(&format!("/api/v1/webhooks?limit=2&cursor={cursor}"), t)
        .await;
    assert_eq!(second.body["items"][0]["id"], made[0].as_str());
    assert_eq!(second.body["next_cursor"], Value::Null);
    // Another tenant sees none of them.
    let other = s.signup("Other").await;
    assert!(webhook_ids(&s, &other.token).await.is_empty());
    s.get(&format!("/api/v1/webhooks/{}", made[0]), &other.token)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn only_owners_and_admins_manage_or_even_read_webhooks() {
    let s = start_with(fast).await;
    let owner = s.signup("Roles").await;
    let hook = create_webhook(
        &s,
        &owner.token,
        json!({"url": "https://93.184.216.34/h", "events": ["*"]}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let one = format!("/api/v1/webhooks/{hook}");
    let body = json!({"url": "https://93.184.216.35/h", "events": ["order.created"]});
    for role in ["sales", "warehouse", "viewer"] {
        let user = s.user_with_role(&owner, role).await;
        let t = &user.token;
        s.post("/api/v1/webhooks", t, body.clone())
            .await
            .assert_problem(403, "forbidden");
        s.get("/api/v1/webhooks", t)
            .await
            .assert_problem(403, "forbidden");
        s.get(&one, t).await.assert_problem(403, "forbidden");
        s.patch(&one, t, json!({"active": false}))
            .await
            .assert_problem(403, "forbidden");
        s.delete(&one, t).await.assert_problem(403, "forbidden");
        s.get(&format!("{one}/deliveries"), t)
            .await
            .assert_problem(403, "forbidden");
    }
    assert_eq!(webhook_ids(&s, &owner.token).await, [hook]);
    let r = s.get(&one, &owner.token).await;
    assert_eq!(r.body["active"], true, "unchanged by the refused PATCH");

    let admin = s.user_with_role(&owner, "admin").await;
    let made = create_webhook(&s, &admin.token, body).await;
    assert_eq!(webhook_ids(&s, &admin.token).await.len(), 2);
    let r = s.patch(&one, &admin.token, json!({"active": false})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s
        .delete(
            &format!("/api/v1/webhooks/{}", made["id"].as_str().expect("id")),
            &admin.token,
        )
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn openapi_describes_the_webhook_routes() {
    let s = start().await;
    let doc = s.get_anon("/openapi.json").await;
    let paths = doc.body["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/webhooks", "post"),
        ("/api/v1/webhooks", "get"),
        ("/api/v1/webhooks/{id}", "get"),
        ("/api/v1/webhooks/{id}", "patch"),
        ("/api/v1/webhooks/{id}", "delete"),
        ("/api/v1/webhooks/{id}/deliveries", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = &doc.body["components"]["schemas"];
    for name in [
        "Webhook",
        "CreatedWebhook",
        "CreateWebhookRequest",
        "UpdateWebhookRequest",
        "WebhookPage",
        "Delivery",
        "DeliveryPage",
        "Circuit",
    ] {
        assert!(schemas[name].is_object(), "{name} schema missing");
    }
}

#[tokio::test]
async fn every_webhook_read_uses_an_index() {
    use brisk::platform::db::{Backend, SqlLog, sql};
    let log = SqlLog::default();
    let s = start_with(|c| {
        fast(c);
        c.sql_log = Some(log.clone());
    })
    .await;
    let o = s.signup("Plans").await;
    let t = &o.token;
    let rx = Receiver::healthy().await;
    let hook = subscribe(&s, t, &rx, json!(["wallet.credited"])).await;
    let c = customer(&s, t).await;
    credit(&s, t, &c, 100).await;
    eventually("a delivery", async || {
        (!deliveries(&s, t, &hook).await.is_empty()).then_some(())
    })
    .await;
    log.take();
    for path in [
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{hook}"),
        format!("/api/v1/webhooks/{hook}/deliveries"),
        format!("/api/v1/webhooks/{hook}/deliveries?status=pending"),
        "/api/v1/webhooks/missing/deliveries".to_owned(),
        "/metrics".to_owned(),
    ] {
        s.get(&path, t).await;
    }
    s.patch(
        &format!("/api/v1/webhooks/{hook}"),
        t,
        json!({"active": true}),
    )
    .await;
    let db = &s.server.as_ref().expect("server").state.db;
    let mut conn = db.writer().acquire().await.expect("a connection");
    if db.backend() == Backend::Postgres {
        // Tiny tables: price sequential scans out so the plan shows which
        // index would serve the query.
        sql("SET enable_seqscan = off")
            .execute(&mut *conn)
            .await
            .expect("set");
    }
    let statements = log.take();
    let reads: Vec<_> = statements
        .iter()
        .filter(|st| {
            let head = st.text.trim_start().to_ascii_uppercase();
            head.starts_with("SELECT") || head.starts_with("UPDATE JOBS")
        })
        .collect();
    assert!(reads.len() >= 7, "{} statements", reads.len());
    for st in reads {
        let rows = st
            .explain(db.backend())
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("EXPLAIN {}: {e}", st.text));
        let plan: Vec<String> = rows
            .iter()
            .map(|row| match db.backend() {
                Backend::Sqlite => sqlx::Row::try_get::<String, _>(row, 3).unwrap_or_default(),
                Backend::Postgres => sqlx::Row::try_get::<String, _>(row, 0).unwrap_or_default(),
            })
            .collect();
        let scans: Vec<&String> = plan
            .iter()
            .filter(|line| match db.backend() {
                Backend::Sqlite => {
                    let l = line.trim_start();
                    l.starts_with("SCAN ")
                        && !l.contains("USING INDEX")
                        && !l.contains("USING COVERING INDEX")
                        && !l.starts_with("SCAN CONSTANT ROW")
                }
                Backend::Postgres => line.contains("Seq Scan"),
            })
            .collect();
        assert!(
            scans.is_empty(),
            "a table scan in\n{}\nfor {}",
            plan.join("\n"),
            st.text
        );
    }
    if db.backend() == Backend::Postgres {
        sql("RESET enable_seqscan")
            .execute(&mut *conn)
            .await
            .expect("reset");
    }
}

/// A 3xx is an answer, not a way elsewhere: the delivery attempt fails with
/// that status and the address it points to hears nothing.
#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failed_attempt() {
    let s = start_with(fast).await;
    let o = s.signup("Redirected").await;
    let t = &o.token;
    let target = Receiver::healthy().await;
    let location = target.url.clone();
    let app = axum::Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let hook = create_webhook(
        &s,
        t,
        json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["wallet.credited"]}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let c = customer(&s, t).await;
    credit(&s, t, &c, 700).await;
    let attempted = eventually("a failed attempt", async || {
        deliveries(&s, t, &hook)
            .await
            .into_iter()
            .find(|d| d["attempts"].as_i64().unwrap_or(0) >= 1 && d["response_status"] == 307)
    })
    .await;
    assert_eq!(attempted["status"], "pending", "{attempted}");
    assert!(attempted["delivered_at"].is_null(), "{attempted}");
    assert!(target.requests().is_empty(), "the redirect was followed");
}
