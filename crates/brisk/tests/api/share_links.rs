//! Share links: the tenant's CRUD, the public `/s/{code}` (through the
//! cache, limited per IP) and click counting across nodes and stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn product_body(name: &str, sku: &str) -> Value {
    json!({
        "name": name,
        "description": "Soft and warm",
        "variants": [
            {"sku": format!("{sku}-S"), "price": 1500, "cost": 700, "stock": 3},
            {"sku": format!("{sku}-L"), "price": 2500, "cost": 900}
        ],
        "images": [{"url": "https://cdn.example/a.png", "alt": "front"}, {"url": "https://cdn.example/b.png"}]
    })
}

async fn product(s: &TestServer, o: &Session, name: &str) -> String {
    let sku = format!("SKU-{}", uuid::Uuid::now_v7().simple());
    let r = s
        .post("/api/v1/products", &o.token, product_body(name, &sku))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn link(s: &TestServer, o: &Session, product_id: &str) -> Value {
    let r = s
        .post(
            "/api/v1/share-links",
            &o.token,
            json!({"product_id": product_id}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

fn rfc3339_in(offset: Duration, past: bool) -> String {
    let now = time::OffsetDateTime::now_utc();
    let at = if past { now - offset } else { now + offset };
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Polls the link until its `clicks` is `expected` (at most 10 s).
/// Sends `body` as JSON without checking that it is JSON.
async fn malformed(
    s: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: &'static str,
) -> Resp {
    let sent = s
        .client
        .request(method, format!("{}{path}", s.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent");
    TestServer::read(sent).await
}

async fn wait_for_clicks(s: &TestServer, o: &Session, id: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.get(&format!("/api/v1/share-links/{id}"), &o.token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let clicks = r.body["clicks"].as_i64().unwrap();
        if clicks == expected {
            return;
        }
        assert!(clicks < expected, "clicks {clicks} overshot {expected}");
        assert!(
            Instant::now() < deadline,
            "clicks stayed at {clicks}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/s/{code}` on `s` until `check` holds (at most 1 s).
async fn within_a_second(s: &TestServer, path: &str, check: impl Fn(&Resp) -> bool) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let r = s.get_anon(path).await;
        if check(&r) || Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn creating_a_share_link_returns_every_contract_field_and_lists_by_product() {
    let s = start().await;
    let o = s.signup("Links").await;
    let p1 = product(&s, &o, "Scarf").await;
    let p2 = product(&s, &o, "Hat").await;
    let expires = rfc3339_in(Duration::from_secs(86_400), false);
    let r = s
        .post(
            "/api/v1/share-links",
            &o.token,
            json!({"product_id": p1, "expires_at": expires}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let l = &r.body;
    let code = l["code"].as_str().unwrap();
    assert!(code.len() >= 8, "{code}");
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(l["url"], format!("/s/{code}"));
    assert_eq!(l["product_id"], p1.as_str());
    assert_eq!(l["active"], true);
    assert_eq!(l["clicks"], 0);
    assert!(l["id"].is_string());
    assert!(l["created_at"].as_str().unwrap().ends_with('Z'));
    let expires_back = time::OffsetDateTime::parse(
        l["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let expires_sent =
        time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!((expires_back - expires_sent).abs() < time::Duration::seconds(1));
    let id = l["id"].as_str().unwrap();

    let got = s.get(&format!("/api/v1/share-links/{id}"), &o.token).await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body, l);
    let other = link(&s, &o, &p2).await;
    let third = link(&s, &o, &p1).await;
    assert_ne!(other["code"], l["code"]);
    assert_ne!(third["code"], l["code"]);
    assert_eq!(other["expires_at"], Value::Null);

    // Newest first; by product; pages; fields=.
    let all = s.get("/api/v1/share-links", &o.token).await;
    assert_eq!(all.status, 200);
    let ids: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            third["id"].as_str().unwrap(),
            other["id"].as_str().unwrap(),
            id
        ]
    );
    let by_product = s
        .get(&format!("/api/v1/share-links?product_id={p1}"), &o.token)
        .await;
    let ids: Vec<&str> = by_product.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third["id"].as_str().unwrap(), id]);
    let first_page = s
        .get(
            &format!("/api/v1/share-links?product_id={p1}&limit=1"),
            &o.token,
        )
        .await;
    assert_eq!(first_page.body["items"].as_array().unwrap().len(), 1);
    let cursor = first_page.body["next_cursor"].as_str().unwrap();
    let second_page = s
        .get(
            &format!("/api/v1/share-links?product_id={p1}&limit=1&cursor={cursor}"),
            &o.token,
        )
        .await;
    assert_eq!(second_page.body["items"][0]["id"], id);
    assert_eq!(second_page.body["next_cursor"], Value::Null);
    let slim = s
        .get("/api/v1/share-links?fields=code,clicks", &o.token)
        .await;
    let keys: Vec<&String> = slim.body["items"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "{}", slim.body);
    s.get("/api/v1/share-links?fields=nope", &o.token)
        .await
        .assert_problem(400, "unknown_field");
    s.get("/api/v1/share-links?cursor=zzz", &o.token)
        .await
        .assert_problem(400, "bad_request");
    let one_field = s
        .get(&format!("/api/v1/share-links/{id}?fields=url"), &o.token)
        .await;
    assert_eq!(
        one_field.body,
        json!({"id": id, "url": format!("/s/{code}")})
    );
}

#[tokio::test]
async fn roles_that_write_quotations_create_links_and_every_role_reads_them() {
    let s = start().await;
    let o = s.signup("Roles").await;
    let p = product(&s, &o, "Mug").await;
    let viewer = s.user_with_role(&o, "viewer").await;
    let sales = s.user_with_role(&o, "sales").await;
    let warehouse = s.user_with_role(&o, "warehouse").await;
    s.post(
        "/api/v1/share-links",
        &viewer.token,
        json!({"product_id": p}),
    )
    .await
    .assert_problem(403, "forbidden");
    s.post(
        "/api/v1/share-links",
        &warehouse.token,
        json!({"product_id": p}),
    )
    .await
    .assert_problem(403, "forbidden");
    // 403 outranks 422.
    s.post(
        "/api/v1/share-links",
        &viewer.token,
        json!({"product_id": "nope"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let made = link(&s, &sales, &p).await;
    let id = made["id"].as_str().unwrap();
    s.patch(
        &format!("/api/v1/share-links/{id}"),
        &viewer.token,
        json!({"active": false}),
    )
    .await
    .assert_problem(403, "forbidden");
    let listed = s.get("/api/v1/share-links", &viewer.token).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.get(&format!("/api/v1/share-links/{id}"), &viewer.token)
            .await
            .status,
        200
    );
    s.get("/api/v1/share-links", "not-a-token")
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn the_public_page_shows_the_product_and_counts_its_clicks_within_two_seconds() {
    let s = start().await;
    let o = s.signup("Public").await;
    let p = product(&s, &o, "Blanket").await;
    let l = link(&s, &o, &p).await;
    let (id, url) = (l["id"].as_str().unwrap(), l["url"].as_str().unwrap());
    let r = s.get_anon(url).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("etag").is_some());
    assert_eq!(
        r.body,
        json!({"product": {
            "id": p, "name": "Blanket", "description": "Soft and warm",
            "price_min": 1500, "price_max": 2500,
            "images": r.body["product"]["images"].clone(),
        }})
    );
    let images = r.body["product"]["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["url"], "https://cdn.example/a.png");
    assert_eq!(images[0]["alt"], "front");
    assert_eq!(images[1]["url"], "https://cdn.example/b.png");
    for field in ["cost", "stock_total", "min_margin_bp", "variants"] {
        assert!(r.body["product"].get(field).is_none(), "{field} leaked");
    }
    for _ in 0..4 {
        assert_eq!(s.get_anon(url).await.status, 200);
    }
    wait_for_clicks(&s, &o, id, 5).await;
    // A 304 is not a click.
    let etag = r.header("etag").unwrap().to_owned();
    let not_modified = s
        .client
        .get(format!("{}{url}", s.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status().as_u16(), 304);
    // Neither is a HEAD: it only looks.
    let head = s
        .client
        .head(format!("{}{url}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(s.get_anon(url).await.status, 200);
    wait_for_clicks(&s, &o, id, 6).await;
}

#[tokio::test]
async fn a_cache_hit_on_the_public_page_runs_no_sql() {
    let s = start().await;
    let o = s.signup("Hits").await;
    let p = product(&s, &o, "Kettle").await;
    let l = link(&s, &o, &p).await;
    let url = l["url"].as_str().unwrap();
    let first = s.get_anon(url).await;
    assert_eq!(first.status, 200);
    assert!(first.statements() > 0);
    for _ in 0..3 {
        let hit = s.get_anon(url).await;
        assert_eq!(hit.status, 200);
        assert_eq!(hit.statements(), 0, "a hit touched the database");
        assert_eq!(hit.bytes, first.bytes);
    }
}

#[tokio::test]
async fn expiry_is_checked_at_every_request_and_answers_410() {
    let s = start().await;
    let o = s.signup("Expiry").await;
    let p = product(&s, &o, "Lamp").await;
    let r = s
        .post(
            "/api/v1/share-links",
            &o.token,
            json!({"product_id": p, "expires_at": rfc3339_in(Duration::from_millis(1500), false)}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let url = r.body["url"].as_str().unwrap().to_owned();
    let id = r.body["id"].as_str().unwrap().to_owned();
    // Served (and cached) while it is valid ...
    assert_eq!(s.get_anon(&url).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // ... and 410 once the clock passes expires_at, cache or not.
    s.get_anon(&url).await.assert_problem(410, "expired");
    s.get_anon(&url).await.assert_problem(410, "expired");
    wait_for_clicks(&s, &o, &id, 1).await;
    // A new expiry in the future brings it back at once.
    let r = s
        .patch(
            &format!("/api/v1/share-links/{id}"),
            &o.token,
            json!({"expires_at": rfc3339_in(Duration::from_secs(3600), false)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get_anon(&url).await.status, 200);
    let r = s
        .patch(
            &format!("/api/v1/share-links/{id}"),
            &o.token,
            json!({"expires_at": null}),
        )
        .await;
    assert_eq!(r.body["expires_at"], Value::Null);
    assert_eq!(s.get_anon(&url).await.status, 200);
}

#[tokio::test]
async fn deactivating_a_link_is_404_at_once_and_reactivating_serves_it_again() {
    let s = start().await;
    let o = s.signup("Toggle").await;
    let p = product(&s, &o, "Chair").await;
    let l = link(&s, &o, &p).await;
    let (id, url) = (l["id"].as_str().unwrap(), l["url"].as_str().unwrap());
    assert_eq!(s.get_anon(url).await.status, 200);
    let r = s
        .patch(
            &format!("/api/v1/share-links/{id}"),
            &o.token,
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    s.get_anon(url).await.assert_problem(404, "not_found");
    let r = s
        .patch(
            &format!("/api/v1/share-links/{id}"),
            &o.token,
            json!({"active": true}),
        )
        .await;
    assert_eq!(r.body["active"], true);
    assert_eq!(s.get_anon(url).await.status, 200);
    wait_for_clicks(&s, &o, id, 2).await;
}

#[tokio::test]
async fn inactive_or_deleted_products_unknown_codes_and_other_tenants_links_are_404() {
    let s = start().await;
    let o = s.signup("Gone").await;
    let other = s.signup("Other").await;
    let hidden = product(&s, &o, "Hidden").await;
    let deleted = product(&s, &o, "Deleted").await;
    let hidden_link = link(&s, &o, &hidden).await;
    let deleted_link = link(&s, &o, &deleted).await;
    // Served (and cached) first: the product's writes must reach the page.
    for l in [&hidden_link, &deleted_link] {
        assert_eq!(s.get_anon(l["url"].as_str().unwrap()).await.status, 200);
    }
    let r = s
        .patch(
            &format!("/api/v1/products/{hidden}"),
            &o.token,
            json!({"active": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.delete(&format!("/api/v1/products/{deleted}"), &o.token)
            .await
            .status,
        204
    );
    for l in [&hidden_link, &deleted_link] {
        s.get_anon(l["url"].as_str().unwrap())
            .await
            .assert_problem(404, "not_found");
    }
    for path in [
        "/s/doesnotexist1",
        "/s/a%2Fb",
        "/s/x-y",
        &format!("/s/{}", "a".repeat(200)),
    ] {
        s.get_anon(path).await.assert_problem(404, "not_found");
    }
    // Only the 200 before was counted.
    tokio::time::sleep(Duration::from_millis(600)).await;
    wait_for_clicks(&s, &o, hidden_link["id"].as_str().unwrap(), 1).await;

    // Another tenant's link id is not there at all.
    let id = hidden_link["id"].as_str().unwrap();
    s.get(&format!("/api/v1/share-links/{id}"), &other.token)
        .await
        .assert_problem(404, "not_found");
    s.patch(
        &format!("/api/v1/share-links/{id}"),
        &other.token,
        json!({"active": false}),
    )
    .await
    .assert_problem(404, "not_found");
    // 404 outranks 422.
    s.patch(
        &format!("/api/v1/share-links/{id}"),
        &other.token,
        json!({"active": "no"}),
    )
    .await
    .assert_problem(404, "not_found");
    s.get("/api/v1/share-links/nope", &o.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        s.get("/api/v1/share-links", &other.token).await.body["items"],
        json!([])
    );
    assert_eq!(
        s.get(&format!("/api/v1/share-links/{id}"), &o.token)
            .await
            .body["active"],
        true
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_the_documented_errors_and_changes_nothing() {
    let s = start().await;
    let o = s.signup("Bad").await;
    let other = s.signup("Elsewhere").await;
    let mine = product(&s, &o, "Mine").await;
    let theirs = product(&s, &other, "Theirs").await;
    let deleted = product(&s, &o, "Deleted").await;
    assert_eq!(
        s.delete(&format!("/api/v1/products/{deleted}"), &o.token)
            .await
            .status,
        204
    );
    let past = rfc3339_in(Duration::from_secs(60), true);
    for (body, fields) in [
        (json!({"product_id": "no-such-product"}), vec!["product_id"]),
        (json!({"product_id": theirs}), vec!["product_id"]),
        (json!({"product_id": deleted}), vec!["product_id"]),
        (json!({}), vec!["product_id"]),
        (json!({"product_id": ""}), vec!["product_id"]),
        (
            json!({"product_id": mine, "expires_at": past}),
            vec!["expires_at"],
        ),
        (
            json!({"product_id": mine, "expires_at": "tomorrow"}),
            vec!["expires_at"],
        ),
        (
            json!({"product_id": "nope", "expires_at": past}),
            vec!["expires_at", "product_id"],
        ),
        (json!({"product_id": 42}), vec!["product_id"]),
    ] {
        let r = s.post("/api/v1/share-links", &o.token, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        let mut named = r.error_fields();
        named.sort();
        assert_eq!(named, fields, "{body}: {}", r.body);
    }
    malformed(
        &s,
        Method::POST,
        "/api/v1/share-links",
        &o.token,
        "{\"product_id\": ",
    )
    .await
    .assert_problem(400, "bad_request");
    assert_eq!(
        s.get("/api/v1/share-links", &o.token).await.body["items"],
        json!([])
    );

    // PATCH: past expiry, wrong types, malformed JSON; the link is unchanged.
    let l = link(&s, &o, &mine).await;
    let id = l["id"].as_str().unwrap();
    for (body, field) in [
        (json!({"expires_at": past}), "expires_at"),
        (json!({"expires_at": "soon"}), "expires_at"),
        (json!({"active": null}), "active"),
        (json!({"active": "yes"}), "active"),
    ] {
        let r = s
            .patch(&format!("/api/v1/share-links/{id}"), &o.token, body.clone())
            .await;
        r.assert_problem(422, "validation_failed");
        assert_eq!(r.error_fields(), [field], "{body}: {}", r.body);
    }
    malformed(
        &s,
        Method::PATCH,
        &format!("/api/v1/share-links/{id}"),
        &o.token,
        "{",
    )
    .await
    .assert_problem(400, "bad_request");
    let after = s.get(&format!("/api/v1/share-links/{id}"), &o.token).await;
    assert_eq!(after.body, l);
    assert_eq!(s.get_anon(l["url"].as_str().unwrap()).await.status, 200);
}

#[tokio::test]
async fn a_renamed_product_shows_its_new_name_at_once_here_and_within_a_second_elsewhere() {
    let a = start().await;
    let b = start_beside(&a, |_| {}).await;
    let o = a.signup("Rename").await;
    let p = product(&a, &o, "Old name").await;
    let l = link(&a, &o, &p).await;
    let (id, url) = (l["id"].as_str().unwrap(), l["url"].as_str().unwrap());
    assert_eq!(a.get_anon(url).await.body["product"]["name"], "Old name");
    assert_eq!(b.get_anon(url).await.body["product"]["name"], "Old name");
    let r = a
        .patch(
            &format!("/api/v1/products/{p}"),
            &o.token,
            json!({"name": "New name"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        a.get_anon(url).await.body["product"]["name"],
        "New name",
        "the writing node serves the new name at once"
    );
    // Another node hears about writes through the database's or Redis's
    // fan-out; a SQLite file shared by two processes has neither (one
    // node is SQLite's deployment).
    if is_postgres() {
        let r = within_a_second(&b, url, |r| r.body["product"]["name"] == "New name").await;
        assert_eq!(r.body["product"]["name"], "New name");
        let r = a
            .patch(
                &format!("/api/v1/share-links/{id}"),
                &o.token,
                json!({"active": false}),
            )
            .await;
        assert_eq!(r.status, 200);
        let r = within_a_second(&b, url, |r| r.status == 404).await;
        r.assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn the_public_limit_counts_every_request_and_clicks_count_only_200s() {
    let s = start_with(|c| c.public_rate_limit_per_minute = 5).await;
    let o = s.signup("Limited").await;
    let p = product(&s, &o, "Rug").await;
    let l = link(&s, &o, &p).await;
    let (id, url) = (l["id"].as_str().unwrap(), l["url"].as_str().unwrap());
    assert_eq!(s.get_anon(url).await.status, 200);
    assert_eq!(s.get_anon(url).await.status, 200);
    for _ in 0..3 {
        s.get_anon("/s/unknowncode1")
            .await
            .assert_problem(404, "not_found");
    }
    let refused = s.get_anon(url).await;
    refused.assert_problem(429, "rate_limited");
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
    s.get_anon("/s/unknowncode1")
        .await
        .assert_problem(429, "rate_limited");
    // The tenant's own API is not behind this limit.
    wait_for_clicks(&s, &o, id, 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    wait_for_clicks(&s, &o, id, 2).await;
}

/// `total` GETs of `url`, alternating between `nodes`, 32 at a time.
async fn hit_many(nodes: &[&TestServer], url: &str, total: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let client = http_client();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (next, bases, client, url) =
            (next.clone(), bases.clone(), client.clone(), url.to_owned());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let base = &bases[i % bases.len()];
                let resp = client
                    .get(format!("{base}{url}"))
                    .send()
                    .await
                    .expect("request sent");
                assert_eq!(resp.status().as_u16(), 200);
                let _ = resp.bytes().await;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("worker");
    }
}

async fn ten_thousand_clicks_over_two_nodes(redis: Option<&RedisServer>) {
    let url_of_redis = redis.map(RedisServer::url);
    let with_redis = url_of_redis.clone();
    let mut a = start_with(move |c| c.redis_url = with_redis).await;
    let with_redis = url_of_redis.clone();
    let b = start_beside(&a, move |c| c.redis_url = with_redis).await;
    let o = a.signup("Clicks").await;
    let p = product(&a, &o, "Popular").await;
    let l = link(&a, &o, &p).await;
    let (id, url) = (
        l["id"].as_str().unwrap().to_owned(),
        l["url"].as_str().unwrap().to_owned(),
    );
    hit_many(&[&a, &b], &url, 10_000).await;
    // Graceful stops, right away: what is still counted in memory is
    // written by each node's last flush.
    b.stop().await;
    let server = a.server.take().expect("running");
    server.shutdown().await.expect("clean shutdown");
    let pool = a.raw_database().await;
    let (clicks,): (i64,) = sqlx::query_as("SELECT clicks FROM share_links WHERE id = $1")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(clicks, 10_000);
}

#[tokio::test]
async fn ten_thousand_clicks_over_two_nodes_are_all_written_by_their_graceful_stops() {
    ten_thousand_clicks_over_two_nodes(None).await;
}

#[tokio::test]
async fn ten_thousand_clicks_over_two_nodes_sharing_redis_are_all_written_by_their_graceful_stops()
{
    let redis = RedisServer::start().await;
    ten_thousand_clicks_over_two_nodes(Some(&redis)).await;
}

#[tokio::test]
async fn openapi_describes_the_share_link_routes() {
    let s = start().await;
    let doc = s.get_anon("/openapi.json").await;
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/share-links", "get"),
        ("/api/v1/share-links", "post"),
        ("/api/v1/share-links/{id}", "get"),
        ("/api/v1/share-links/{id}", "patch"),
        ("/s/{code}", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
}
