//! The read cache seen from outside: catalog reads answered without the
//! database, ETags and 304s from the cached bytes, compressed bodies,
//! freshness after every kind of write on one node and across two nodes
//! (with Redis, without it, and with Redis dying and returning), single
//! flight, and rate limits shared through Redis.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn product(
    s: &TestServer,
    token: &str,
    name: &str,
    sku: &str,
    stock: i64,
) -> (String, String) {
    let r = s
        .post(
            "/api/v1/products",
            token,
            json!({"name": name, "variants": [{"sku": sku, "price": 1000, "cost": 400, "stock": stock}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["variants"][0]["id"].as_str().unwrap().to_owned(),
    )
}

async fn get_with(s: &TestServer, path: &str, token: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = s.client.get(format!("{}{path}", s.base)).bearer_auth(token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    TestServer::read(req.send().await.expect("request")).await
}

/// Polls `path` on `s` until `fresh` holds (bounded: the design answers
/// within a second; the bound leaves room for a slow machine).
async fn until_fresh(
    s: &TestServer,
    path: &str,
    token: &str,
    fresh: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.get(path, token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if fresh(&r.body) {
            return r.body;
        }
        assert!(Instant::now() < deadline, "{path} still stale: {}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_repeated_product_page_runs_no_statement_and_a_304_needs_no_database() {
    let s = start().await;
    let owner = s.signup("Cached").await;
    let t = &owner.token;
    for i in 0..3 {
        product(&s, t, &format!("Item {i}"), &format!("SKU-{i}"), 5).await;
    }
    for path in [
        "/api/v1/products?include=variants",
        "/api/v1/products?limit=2",
        "/api/v1/products?q=item&min_price=500",
        "/api/v1/categories",
    ] {
        let first = s.get(path, t).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert!(first.statements() > 0, "{path}: the first read computes");
        let again = s.get(path, t).await;
        assert_eq!(again.body, first.body);
        assert_eq!(again.statements(), 0, "{path}: the second read is a hit");
        let etag = again.header("etag").expect("etag").to_owned();
        assert_eq!(
            first.header("etag"),
            Some(etag.as_str()),
            "the tag is the bytes'"
        );
        let not_modified = get_with(&s, path, t, &[("if-none-match", &etag)]).await;
        assert_eq!(not_modified.status, 304);
        assert_eq!(not_modified.statements(), 0);
        assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    }
    // The next page, through its cursor, is a key of its own.
    let first = s.get("/api/v1/products?limit=2", t).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let page2 = s
        .get(&format!("/api/v1/products?limit=2&cursor={cursor}"), t)
        .await;
    assert_eq!(page2.body["items"].as_array().unwrap().len(), 1);
    let page2_again = s
        .get(&format!("/api/v1/products?limit=2&cursor={cursor}"), t)
        .await;
    assert_eq!(page2_again.statements(), 0);
    assert_eq!(page2_again.body, page2.body);
}

#[tokio::test]
async fn cached_bodies_come_compressed_as_the_client_asks_and_equal_the_plain_one() {
    let s = start().await;
    let owner = s.signup("Zipped").await;
    let t = &owner.token;
    for i in 0..20 {
        product(
            &s,
            t,
            &format!("A rather long product name {i}"),
            &format!("Z-{i}"),
            5,
        )
        .await;
    }
    let path = "/api/v1/products?include=variants";
    let plain = get_with(&s, path, t, &[("accept-encoding", "identity")]).await;
    assert!(plain.header("content-encoding").is_none());
    assert!(plain.bytes.len() > 1024);
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("gzip, br", "br"),
        ("zstd;q=1, gzip;q=0.5", "zstd"),
    ] {
        // Raw bytes: this client does not decompress by itself.
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .bearer_auth(t)
            .header("accept-encoding", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let encoding = r.headers()["content-encoding"].to_str().unwrap().to_owned();
        assert_eq!(encoding, expected, "{accept}");
        assert_eq!(r.headers()["etag"], plain.header("etag").unwrap());
        let body = r.bytes().await.unwrap().to_vec();
        assert!(body.len() < plain.bytes.len());
        let decoded = match expected {
            "gzip" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            }
            "br" => {
                let mut out = Vec::new();
                brotli::BrotliDecompress(&mut &body[..], &mut out).unwrap();
                out
            }
            _ => zstd::stream::decode_all(&body[..]).unwrap(),
        };
        assert_eq!(decoded, plain.bytes, "{accept}");
    }
}

#[tokio::test]
async fn every_write_that_changes_a_cached_read_shows_on_the_next_read() {
    let s = start().await;
    let owner = s.signup("Fresh").await;
    let t = &owner.token;
    let (pid, vid) = product(&s, t, "Kettle", "K-1", 10).await;
    let page = "/api/v1/products?include=variants";
    let detail = format!("/api/v1/products/{pid}");
    assert_eq!(s.get(page, t).await.body["items"][0]["stock_total"], 10);
    assert_eq!(s.get(&detail, t).await.body["variants"][0]["stock"], 10);

    // A rename.
    assert_eq!(
        s.patch(&detail, t, json!({"name": "Kettle 2"}))
            .await
            .status,
        200
    );
    assert_eq!(s.get(page, t).await.body["items"][0]["name"], "Kettle 2");
    assert_eq!(s.get(&detail, t).await.body["name"], "Kettle 2");
    // A stock adjustment.
    let adjusted = s
        .post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            t,
            json!({"delta": -3, "reason": "damaged"}),
        )
        .await;
    assert_eq!(adjusted.status, 200, "{}", adjusted.body);
    assert_eq!(s.get(page, t).await.body["items"][0]["stock_total"], 7);
    assert_eq!(s.get(&detail, t).await.body["variants"][0]["stock"], 7);
    // A variant's price.
    assert_eq!(
        s.patch(
            &format!("/api/v1/variants/{vid}"),
            t,
            json!({"price": 1500})
        )
        .await
        .status,
        200
    );
    assert_eq!(s.get(page, t).await.body["items"][0]["price_max"], 1500);
    // An order takes stock; cancelling it gives it back.
    let customer = s
        .post("/api/v1/customers", t, json!({"name": "Buyer"}))
        .await;
    let cid = customer.body["id"].as_str().unwrap();
    let order = s
        .post("/api/v1/orders", t, json!({"customer_id": cid, "payment_method": "invoice", "items": [{"variant_id": vid, "quantity": 2}]}))
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    assert_eq!(s.get(page, t).await.body["items"][0]["stock_total"], 5);
    assert_eq!(s.get(&detail, t).await.body["variants"][0]["stock"], 5);
    let oid = order.body["id"].as_str().unwrap();
    let cancelled = s
        .post(
            &format!("/api/v1/orders/{oid}/status"),
            t,
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(s.get(page, t).await.body["items"][0]["stock_total"], 7);
    // A new variant, a new product, a new category, a deletion.
    let added = s
        .post(
            &format!("/api/v1/products/{pid}/variants"),
            t,
            json!({"sku": "K-2", "price": 900, "stock": 1}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(
        s.get(&detail, t).await.body["variants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.get(page, t).await.body["items"][0]["variant_count"], 2);
    product(&s, t, "Toaster", "T-1", 1).await;
    assert_eq!(
        s.get(page, t).await.body["items"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        s.get("/api/v1/categories", t).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.post("/api/v1/categories", t, json!({"name": "Kitchen"}))
            .await
            .status,
        201
    );
    assert_eq!(
        s.get("/api/v1/categories", t).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.delete(&detail, t).await.status, 204);
    assert_eq!(s.get(&detail, t).await.status, 404);
    assert_eq!(
        s.get(page, t).await.body["items"].as_array().unwrap().len(),
        1
    );
}

/// GETs `path`, asserting a 200, and returns its body.
async fn read(s: &TestServer, path: &str, token: &str) -> Value {
    let r = s.get(path, token).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.body
}

fn count(body: &Value) -> usize {
    body["items"].as_array().map_or(0, Vec::len)
}

/// The sales reads (customers, wallets, quotations, orders, stock levels
/// and movements), share links and the user list are cached too; every write that changes one shows on
/// the very next read of the same node, each read having been warmed
/// first so a stale copy would be there to serve. No outbox dispatcher
/// runs: its repeated invalidation must not be what makes a read fresh.
#[tokio::test]
async fn every_write_that_changes_a_cached_sales_read_shows_on_the_next_read() {
    let s = start_with(|c| c.workers = 0).await;
    let owner = s.signup("Sales").await;
    let t = &owner.token;
    let made = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "Lamp", "variants": [{"sku": "L-1", "price": 1000, "cost": 400, "stock": 10, "reorder_level": 5}]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let vid = made.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let customers = "/api/v1/customers";
    let low = "/api/v1/inventory?low_stock=true";
    let movements = format!("/api/v1/variants/{vid}/movements");
    let quotations = "/api/v1/quotations";
    let sent = "/api/v1/quotations?status=sent";
    let orders = "/api/v1/orders";
    assert_eq!(count(&read(&s, customers, t).await), 0);
    assert_eq!(count(&read(&s, low, t).await), 0);
    // The opening stock is a movement of its own.
    let opening = count(&read(&s, &movements, t).await);
    assert_eq!(count(&read(&s, quotations, t).await), 0);
    assert_eq!(count(&read(&s, sent, t).await), 0);
    assert_eq!(count(&read(&s, orders, t).await), 0);

    // A new customer, then an edit.
    let created = s.post(customers, t, json!({"name": "Ada"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let cid = created.body["id"].as_str().unwrap().to_owned();
    let customer = format!("/api/v1/customers/{cid}");
    let wallet = format!("{customer}/wallet");
    let ledger = format!("{customer}/wallet/transactions");
    assert_eq!(read(&s, customers, t).await["items"][0]["name"], "Ada");
    assert_eq!(read(&s, &customer, t).await["name"], "Ada");
    assert_eq!(read(&s, &wallet, t).await["balance"], 0);
    assert_eq!(count(&read(&s, &ledger, t).await), 0);
    let edited = s.patch(&customer, t, json!({"name": "Ada L."})).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(read(&s, customers, t).await["items"][0]["name"], "Ada L.");
    assert_eq!(read(&s, &customer, t).await["name"], "Ada L.");
    // A warm read runs no statement.
    assert_eq!(s.get(&customer, t).await.statements(), 0);

    // A wallet credit (its reads warmed again: the edit invalidated them).
    assert_eq!(read(&s, &wallet, t).await["balance"], 0);
    assert_eq!(count(&read(&s, &ledger, t).await), 0);
    let credited = s
        .post(&format!("{wallet}/credits"), t, json!({"amount": 5000}))
        .await;
    assert_eq!(credited.status, 201, "{}", credited.body);
    assert_eq!(read(&s, &wallet, t).await["balance"], 5000);
    assert_eq!(count(&read(&s, &ledger, t).await), 1);

    // A quotation through its lifecycle, converted into a wallet-paid order.
    let quoted = s
        .post(
            quotations,
            t,
            json!({"customer_id": cid, "items": [{"variant_id": vid, "quantity": 2}]}),
        )
        .await;
    assert_eq!(quoted.status, 201, "{}", quoted.body);
    let qid = quoted.body["id"].as_str().unwrap().to_owned();
    let quotation = format!("/api/v1/quotations/{qid}");
    assert_eq!(read(&s, quotations, t).await["items"][0]["status"], "draft");
    assert_eq!(read(&s, &quotation, t).await["status"], "draft");
    for (action, status) in [("send", "sent"), ("accept", "accepted")] {
        let moved = s.post(&format!("{quotation}/{action}"), t, json!({})).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        assert_eq!(read(&s, &quotation, t).await["status"], status);
        assert_eq!(read(&s, quotations, t).await["items"][0]["status"], status);
        assert_eq!(
            count(&read(&s, sent, t).await),
            usize::from(status == "sent")
        );
    }
    let converted = s
        .post(
            &format!("{quotation}/convert"),
            t,
            json!({"payment_method": "wallet"}),
        )
        .await;
    assert_eq!(converted.status, 201, "{}", converted.body);
    let oid = converted.body["id"].as_str().unwrap().to_owned();
    let order = format!("/api/v1/orders/{oid}");
    assert_eq!(read(&s, &quotation, t).await["status"], "converted");
    assert_eq!(read(&s, orders, t).await["items"][0]["id"], oid.as_str());
    assert_eq!(read(&s, &wallet, t).await["balance"], 3000);
    assert_eq!(count(&read(&s, &ledger, t).await), 2);
    assert_eq!(count(&read(&s, &movements, t).await), opening + 1);
    assert_eq!(count(&read(&s, low, t).await), 0, "stock 8 is above 5");

    // Paid from the wallet, it starts paid; cancelled, the wallet is refunded.
    assert_eq!(read(&s, &order, t).await["status"], "paid");
    let cancelled = s
        .post(
            &format!("{order}/status"),
            t,
            json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(read(&s, &order, t).await["status"], "cancelled");
    assert_eq!(read(&s, orders, t).await["items"][0]["status"], "cancelled");
    assert_eq!(read(&s, &wallet, t).await["balance"], 5000);
    assert_eq!(count(&read(&s, &ledger, t).await), 3);
    assert_eq!(count(&read(&s, &movements, t).await), opening + 2);

    // An order on invoice, placed then paid; then stock taken below the
    // reorder level by hand.
    let paid_only = format!("{orders}?status=paid");
    assert_eq!(count(&read(&s, &paid_only, t).await), 0);
    let placed = s
        .post(orders, t, json!({"customer_id": cid, "payment_method": "invoice", "items": [{"variant_id": vid, "quantity": 1}]}))
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    assert_eq!(count(&read(&s, orders, t).await), 2);
    let invoiced = format!("/api/v1/orders/{}", placed.body["id"].as_str().unwrap());
    assert_eq!(read(&s, &invoiced, t).await["status"], "placed");
    let paid = s
        .post(&format!("{invoiced}/status"), t, json!({"status": "paid"}))
        .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(read(&s, &invoiced, t).await["status"], "paid");
    assert_eq!(count(&read(&s, &paid_only, t).await), 1);
    assert_eq!(count(&read(&s, low, t).await), 0, "stock 9 is above 5");
    assert_eq!(count(&read(&s, &movements, t).await), opening + 3);
    let adjusted = s
        .post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            t,
            json!({"delta": -5, "reason": "damaged"}),
        )
        .await;
    assert_eq!(adjusted.status, 200, "{}", adjusted.body);
    let low_now = read(&s, low, t).await;
    assert_eq!(count(&low_now), 1);
    assert_eq!(low_now["items"][0]["stock"], 4);
    assert_eq!(count(&read(&s, &movements, t).await), opening + 4);

    // A share link, created and then turned off.
    let product_id = made.body["id"].as_str().unwrap();
    let links = format!("/api/v1/share-links?product_id={product_id}");
    assert_eq!(count(&read(&s, &links, t).await), 0);
    let link = s
        .post("/api/v1/share-links", t, json!({"product_id": product_id}))
        .await;
    assert_eq!(link.status, 201, "{}", link.body);
    let link_path = format!("/api/v1/share-links/{}", link.body["id"].as_str().unwrap());
    assert_eq!(read(&s, &links, t).await["items"][0]["active"], true);
    assert_eq!(read(&s, &link_path, t).await["active"], true);
    let off = s.patch(&link_path, t, json!({"active": false})).await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(read(&s, &links, t).await["items"][0]["active"], false);
    assert_eq!(read(&s, &link_path, t).await["active"], false);

    // A new user.
    let users = count(&read(&s, "/api/v1/users", t).await);
    let hired = s
        .post(
            "/api/v1/users",
            t,
            json!({"email": "clerk@example.com", "name": "Clerk", "password": "correct horse battery staple", "role": "sales"}),
        )
        .await;
    assert_eq!(hired.status, 201, "{}", hired.body);
    assert_eq!(count(&read(&s, "/api/v1/users", t).await), users + 1);

    // A deleted customer is gone from every read of it.
    assert_eq!(s.delete(&customer, t).await.status, 204);
    assert_eq!(count(&read(&s, customers, t).await), 0);
    assert_eq!(s.get(&customer, t).await.status, 404);
    assert_eq!(s.get(&wallet, t).await.status, 404);
    assert_eq!(s.get(&ledger, t).await.status, 404);
}

#[tokio::test]
async fn one_tenant_s_cached_pages_never_reach_another_tenant() {
    let s = start().await;
    let a = s.signup("Tenant A").await;
    let b = s.signup("Tenant B").await;
    product(&s, &a.token, "Only A's", "A-1", 1).await;
    let path = "/api/v1/products?include=variants";
    assert_eq!(
        s.get(path, &a.token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get(path, &b.token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        s.get(path, &b.token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn two_hundred_concurrent_misses_on_one_cold_page_compute_it_once() {
    let s = start().await;
    let owner = s.signup("Herd").await;
    for i in 0..30 {
        product(&s, &owner.token, &format!("P{i}"), &format!("H-{i}"), 3).await;
    }
    let url = format!("{}/api/v1/products?include=variants&limit=30", s.base);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (client, url, token) = (s.client.clone(), url.clone(), owner.token.clone());
        requests.spawn(async move {
            let r = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            TestServer::read(r).await
        });
    }
    let mut computed = 0;
    let mut bodies = std::collections::HashSet::new();
    while let Some(r) = requests.join_next().await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        bodies.insert(r.bytes.clone());
        if r.statements() > 0 {
            computed += 1;
        }
    }
    assert_eq!(
        computed, 1,
        "one request computed the page; the rest waited for it"
    );
    assert_eq!(bodies.len(), 1);
}

#[tokio::test]
async fn cache_metrics_count_hits_misses_and_invalidations() {
    let s = start().await;
    let owner = s.signup("Metered").await;
    product(&s, &owner.token, "M", "M-1", 1).await;
    s.get("/api/v1/products", &owner.token).await;
    s.get("/api/v1/products", &owner.token).await;
    let metrics = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "brisk_cache_hits_total",
        "brisk_cache_misses_total",
        "brisk_cache_invalidations_total",
        "brisk_cache_compute_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

/// Renames the product through `a` and waits until `b` shows the new name.
async fn rename_and_watch(a: &TestServer, b: &TestServer, token: &str, pid: &str, round: usize) {
    let name = format!("Round {round}");
    let detail = format!("/api/v1/products/{pid}");
    let r = a.patch(&detail, token, json!({"name": name})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The writing node is fresh at once.
    assert_eq!(a.get(&detail, token).await.body["name"], name.as_str());
    until_fresh(b, &detail, token, |body| body["name"] == name.as_str()).await;
    until_fresh(b, "/api/v1/products", token, |body| {
        body["items"][0]["name"] == name.as_str()
    })
    .await;
}

async fn warm(s: &TestServer, token: &str, pid: &str) {
    for _ in 0..2 {
        s.get(&format!("/api/v1/products/{pid}"), token).await;
        s.get("/api/v1/products", token).await;
    }
}

#[tokio::test]
async fn a_second_node_serves_a_changed_product_fresh_with_redis_and_after_it_died_and_returned() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let a = start_with(|c| c.redis_url = Some(url.clone())).await;
    let b = start_beside(&a, |c| c.redis_url = Some(url.clone())).await;
    let owner = a.signup("Two nodes").await;
    let t = &owner.token;
    let (pid, _) = product(&a, t, "Shared", "S-1", 1).await;
    let ready = b.get_anon("/health/ready").await;
    assert_eq!(ready.body["checks"]["redis"], "ok", "{}", ready.body);

    for round in 0..3 {
        warm(&b, t, &pid).await;
        rename_and_watch(&a, &b, t, &pid, round).await;
    }
    // B reads what A computed from L2 without the database.
    let key_path = "/api/v1/products?limit=7";
    assert!(a.get(key_path, t).await.statements() > 0);
    until_in_redis(
        &url,
        &format!("brisk:entry:products:{}?limit=7", owner.tenant_id),
    )
    .await;
    let from_l2 = b.get(key_path, t).await;
    assert_eq!(from_l2.statements(), 0, "B found A's entry in L2");
    assert_eq!(from_l2.body, a.get(key_path, t).await.body);

    if is_postgres() {
        // Without Redis the nodes still hear each other through PostgreSQL.
        redis.stop();
        let ready = until_ready_says(&b, "down").await;
        assert_eq!(ready.status, 200, "redis down does not fail readiness");
        for round in 3..6 {
            warm(&b, t, &pid).await;
            rename_and_watch(&a, &b, t, &pid, round).await;
        }
        redis.restart().await;
        until_ready_says(&b, "ok").await;
        for round in 6..9 {
            warm(&b, t, &pid).await;
            rename_and_watch(&a, &b, t, &pid, round).await;
        }
    }
    b.stop().await;
    a.stop().await;
}

/// Until Redis holds `key` (A's L2 write happens after A answered).
async fn until_in_redis(url: &str, key: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let exists: bool = redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap();
        if exists {
            return;
        }
        assert!(Instant::now() < deadline, "{key} never reached Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_ready_says(s: &TestServer, redis: &str) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.get_anon("/health/ready").await;
        if r.body["checks"]["redis"] == redis {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "readiness never said redis {redis}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_redis_a_second_postgresql_node_hears_writes_through_postgresql() {
    if !is_postgres() {
        return; // SQLite serves one node; its fan-out is Redis.
    }
    let a = start().await;
    let b = start_beside(&a, |_| {}).await;
    let owner = a.signup("No redis").await;
    let t = &owner.token;
    let (pid, vid) = product(&a, t, "Plain", "P-1", 4).await;
    assert!(
        b.get_anon("/health/ready").await.body["checks"]
            .get("redis")
            .is_none()
    );
    for round in 0..3 {
        warm(&b, t, &pid).await;
        rename_and_watch(&a, &b, t, &pid, round).await;
    }
    // Stock taken on A shows on B's page.
    warm(&b, t, &pid).await;
    let r = a
        .post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            t,
            json!({"delta": -1, "reason": "count"}),
        )
        .await;
    assert_eq!(r.status, 200);
    until_fresh(&b, "/api/v1/products", t, |body| {
        body["items"][0]["stock_total"] == 3
    })
    .await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_tenant_limit_shared_through_redis_holds_across_two_nodes() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    const LIMIT: u32 = 20;
    let a = start_with(|c| {
        c.redis_url = Some(url.clone());
        c.rate_limit_per_minute = LIMIT;
    })
    .await;
    let b = start_beside(&a, |c| {
        c.redis_url = Some(url.clone());
        c.rate_limit_per_minute = LIMIT;
    })
    .await;
    // Signing up takes no token, so it does not count.
    let owner = a.signup("Limited").await;
    let mut refused = 0;
    for i in 0..=LIMIT {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = node
            .request(Method::GET, "/api/v1/customers", Some(&owner.token), None)
            .await;
        match r.status {
            200 => {}
            429 => {
                refused += 1;
                assert_eq!(r.code(), "rate_limited");
                assert!(r.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(
        refused, 1,
        "N+1 requests over two nodes: exactly one refused"
    );
}

#[tokio::test]
async fn a_login_limit_shared_through_redis_holds_across_two_nodes() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    const LIMIT: u32 = 5;
    let adjust = |c: &mut brisk::platform::config::Config| {
        c.redis_url = Some(url.clone());
        c.login_rate_limit_per_minute = LIMIT;
    };
    let a = start_with(adjust).await;
    let b = start_beside(&a, adjust).await;
    let owner = a.signup("Login limited").await;
    let mut refused = 0;
    for i in 0..=LIMIT {
        let node = if i % 2 == 0 { &a } else { &b };
        let r = node
            .post_anon(
                "/api/v1/auth/login",
                json!({"email": owner.email, "password": "wrong password!"}),
            )
            .await;
        match r.status {
            401 => {}
            429 => refused += 1,
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn with_redis_gone_limits_fall_back_to_each_node_and_reads_keep_working() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let s = start_with(|c| {
        c.redis_url = Some(url.clone());
        c.rate_limit_per_minute = 3;
    })
    .await;
    let owner = s.signup("Fallback").await;
    redis.stop();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(s.get("/api/v1/products", &owner.token).await.status);
    }
    assert_eq!(
        statuses,
        vec![200, 200, 200, 429],
        "the node's own bucket holds the limit"
    );
    let ready = until_ready_says(&s, "down").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["checks"]["database"], "ok");
}

#[tokio::test]
async fn a_write_whose_node_died_before_its_fan_out_is_invalidated_by_the_dispatcher() {
    let s = start().await;
    let owner = s.signup("Dead writer").await;
    let t = &owner.token;
    let (pid, vid) = product(&s, t, "Lamp", "L-1", 10).await;
    let customer = s
        .post("/api/v1/customers", t, json!({"name": "Buyer"}))
        .await;
    let cid = customer.body["id"].as_str().unwrap();
    let order = s
        .post("/api/v1/orders", t, json!({"customer_id": cid, "payment_method": "invoice", "items": [{"variant_id": vid, "quantity": 2}]}))
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let detail = format!("/api/v1/products/{pid}");
    assert_eq!(s.get(&detail, t).await.body["variants"][0]["stock"], 8);
    // Cached, once the dispatcher repeated the order's own invalidation.
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.get(&detail, t).await.statements() > 0 {
        assert!(
            Instant::now() < deadline,
            "the detail never settled in the cache"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Another node cancels the order, commits, and dies before it tells
    // anyone: its facts and its event are in the database, nothing else.
    let oid = order.body["id"].as_str().unwrap();
    let mut cancelled = order.body.clone();
    cancelled["status"] = json!("cancelled");
    let event = json!({"order_id": oid, "number": order.body["number"], "from": "placed", "to": "cancelled", "note": null, "order": cancelled});
    let db = s.raw_database().await;
    let mut tx = db.begin().await.unwrap();
    sqlx::query("UPDATE orders SET status = 'cancelled' WHERE tenant_id = $1 AND id = $2")
        .bind(&owner.tenant_id)
        .bind(oid)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE variants SET stock = stock + 2 WHERE tenant_id = $1 AND id = $2")
        .bind(&owner.tenant_id)
        .bind(&vid)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) VALUES ($1, $2, 'order.status_changed', $3, $4, $5)")
        .bind(&owner.tenant_id)
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(format!("order:{oid}"))
        .bind(event.to_string())
        .bind(time::OffsetDateTime::now_utc().unix_timestamp() * 1_000_000)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    until_fresh(&s, &detail, t, |body| body["variants"][0]["stock"] == 10).await;
    until_fresh(&s, "/api/v1/products", t, |body| {
        body["items"][0]["stock_total"] == 10
    })
    .await;
}
