//! The request pipeline every route gets, through the real server.

use std::io::Read;

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_400_wrong_type_is_415_oversized_is_413() {
    let s = start().await;
    let url = format!("{}/api/v1/auth/signup", s.base);
    let malformed = TestServer::read(
        s.client
            .post(&url)
            .header("content-type", "application/json")
            .body("{\"company_name\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    malformed.assert_problem(400, "bad_request");
    let trailing = TestServer::read(
        s.client
            .post(&url)
            .header("content-type", "application/json")
            .body("{} {}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    trailing.assert_problem(400, "bad_request");
    let text = TestServer::read(
        s.client
            .post(&url)
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    text.assert_problem(415, "unsupported_media_type");
    let none = TestServer::read(s.client.post(&url).body("{}").send().await.unwrap()).await;
    none.assert_problem(415, "unsupported_media_type");
    let big = vec![b' '; 1024 * 1024 + 1];
    let too_large = TestServer::read(
        s.client
            .post(&url)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    too_large.assert_problem(413, "payload_too_large");
    // Invalid UTF-8 inside a string is malformed JSON.
    let bad_utf8 = TestServer::read(
        s.client
            .post(&url)
            .header("content-type", "application/json")
            .body(b"{\"company_name\": \"\xff\xfe\"}".to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    bad_utf8.assert_problem(400, "bad_request");
}

#[tokio::test]
async fn a_413_is_decided_from_content_length_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = start().await;
    let addr = s.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Declare 50 MiB but send nothing: the answer must come anyway.
    stream
        .write_all(b"POST /api/v1/auth/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 52428800\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("payload_too_large"), "{head}");
}

#[tokio::test]
async fn error_precedence_is_401_then_body_format_then_403() {
    let s = start().await;
    let owner = s.signup("Order").await;
    let viewer = s.user_with_role(&owner, "viewer").await;
    let url = format!("{}/api/v1/users", s.base);
    // No token and a malformed body: 401 wins.
    let r = TestServer::read(
        s.client
            .post(&url)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem(401, "unauthorized");
    // Viewer (403) with a malformed body: 400 wins.
    let r = TestServer::read(
        s.client
            .post(&url)
            .bearer_auth(&viewer.token)
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_problem(400, "bad_request");
    // Viewer with a well-formed but invalid body: 403 wins over 422.
    s.post("/api/v1/users", &viewer.token, json!({"role": 5}))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problems() {
    let s = start().await;
    s.get_anon("/api/v1/nothing-here")
        .await
        .assert_problem(404, "not_found");
    let r = s
        .request(Method::DELETE, "/api/v1/auth/login", None, None)
        .await;
    r.assert_problem(405, "method_not_allowed");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let s = start().await;
    let r = s.get_anon("/health/live").await;
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
    let r = TestServer::read(
        s.client
            .get(format!("{}/health/live", s.base))
            .header("x-request-id", "abc-123")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
}

#[tokio::test]
async fn responses_over_1_kib_are_compressed_with_gzip_br_or_zstd() {
    let s = start().await;
    let url = format!("{}/openapi.json", s.base);
    let plain = s
        .client
        .get(&url)
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 1024);
    for encoding in ["gzip", "br", "zstd"] {
        let r = s
            .client
            .get(&url)
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
            Some(encoding)
        );
        let body = r.bytes().await.unwrap();
        assert!(body.len() < plain.len(), "{encoding} made it smaller");
        if encoding == "gzip" {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, plain, "gzip decodes to the same document");
        }
    }
    let refused = s
        .client
        .get(&url)
        .header("accept-encoding", "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
    // Small responses are not compressed.
    let small = s
        .client
        .get(format!("{}/health/live", s.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(small.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn get_responses_carry_an_etag_and_if_none_match_gets_304() {
    let s = start().await;
    let owner = s.signup("Etag").await;
    let first = s.get("/api/v1/me", &owner.token).await;
    let etag = first.header("etag").expect("etag").to_owned();
    let again = s
        .client
        .get(format!("{}/api/v1/me", s.base))
        .bearer_auth(&owner.token)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(
        again.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some(etag.as_str())
    );
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = s
        .client
        .get(format!("{}/api/v1/me", s.base))
        .bearer_auth(&owner.token)
        .header("if-none-match", "W/\"0000-1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 200);
}

#[tokio::test]
async fn lists_paginate_by_keyset_newest_first_and_validate_limit_and_cursor() {
    let s = start().await;
    let owner = s.signup("Pages").await;
    for role in ["sales", "viewer", "warehouse", "admin"] {
        s.user_with_role(&owner, role).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let r = s.get(&path, &owner.token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        for item in r.body["items"].as_array().unwrap() {
            seen.push((
                item["created_at"].as_str().unwrap().to_owned(),
                item["id"].as_str().unwrap().to_owned(),
            ));
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, ties by id");
    assert_eq!(
        seen.last().unwrap().1,
        owner.user_id,
        "the owner came first, so is listed last"
    );

    for bad in [
        "limit=0",
        "limit=-1",
        "limit=ten",
        "cursor=bm9wZQ",
        "cursor=%%%",
    ] {
        let r = s.get(&format!("/api/v1/users?{bad}"), &owner.token).await;
        r.assert_problem(400, "bad_request");
    }
    let r = s.get("/api/v1/users?limit=1000", &owner.token).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn fields_selects_top_level_fields_and_rejects_unknown_ones() {
    let s = start().await;
    let owner = s.signup("Fields").await;
    let r = s.get("/api/v1/users?fields=email,role", &owner.token).await;
    assert_eq!(r.status, 200);
    let item = &r.body["items"][0];
    let mut keys: Vec<_> = item.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, vec!["email", "id", "role"]);
    let r = s
        .get("/api/v1/users?fields=email,password_hash", &owner.token)
        .await;
    r.assert_problem(400, "unknown_field");
    // Any GET, objects too: /me has no id of its own to add.
    let me = s.get("/api/v1/me?fields=tenant", &owner.token).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.body.as_object().unwrap().len(), 1, "{}", me.body);
    assert!(me.body["tenant"]["currency"].is_string());
    s.get("/api/v1/me?fields=password", &owner.token)
        .await
        .assert_problem(400, "unknown_field");
}

#[tokio::test]
async fn the_statement_counter_reports_sql_per_request() {
    let s = start().await;
    let owner = s.signup("Count").await;
    let me = s.get("/api/v1/me", &owner.token).await;
    assert_eq!(me.statements(), 2, "one for the user, one for the tenant");
    let live = s.get_anon("/health/live").await;
    assert_eq!(live.statements(), 0);
    // A 401 never reaches the database.
    assert_eq!(s.get_anon("/api/v1/me").await.statements(), 0);
}

#[tokio::test]
async fn a_request_over_the_timeout_gets_503_and_the_server_keeps_serving() {
    let s = start_with(|c| c.request_timeout_ms = 1).await;
    // Signing up hashes a password (tens of milliseconds): over a 1 ms budget.
    let r = s
        .post_anon("/api/v1/auth/signup", json!({"company_name": "T", "name": "T", "email": "t@t.example", "password": "12345678"}))
        .await;
    r.assert_problem(503, "unavailable");
    assert_eq!(s.get_anon("/health/live").await.status, 200);
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_problem_and_the_server_lives_on() {
    use axum::Router;
    use axum::routing::get;
    use brisk::platform::http::pipeline::{PipelineOptions, apply};

    async fn boom() -> &'static str {
        let v: Vec<u8> = Vec::new();
        let i = v.len() + 3;
        if i > 2 {
            panic!("handler bug");
        }
        "unreachable"
    }
    let app = apply(
        Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "fine" })),
        PipelineOptions {
            request_timeout: std::time::Duration::from_secs(5),
            statement_count_header: false,
            sql_log: None,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = http_client();
    for _ in 0..3 {
        let r = TestServer::read(
            client
                .get(format!("http://{addr}/boom"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        r.assert_problem(500, "internal");
    }
    let ok = client
        .get(format!("http://{addr}/ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}

/// No stored text can hold a NUL character (PostgreSQL's cannot), so one in
/// a URL is a 400 and one in a JSON string a 422 naming the field: never a
/// database error.
#[tokio::test]
async fn nul_characters_are_refused_before_the_database() {
    let s = start().await;
    let o = s.signup("Nul").await;
    let t = &o.token;
    for path in [
        "/api/v1/orders/x%00y",
        "/api/v1/variants/x%00y",
        "/api/v1/customers?q=a%00b",
        "/api/v1/products?q=a%00b",
        "/api/v1/products?q=%00",
        "/api/v1/orders?customer_id=a%00b",
    ] {
        s.get(path, t).await.assert_problem(400, "bad_request");
    }
    // A forged cursor can smuggle one too.
    let forged = brisk::platform::http::list::Cursor {
        created_at: 1,
        id: "\u{0}".into(),
    }
    .encode();
    for list in ["/api/v1/customers", "/api/v1/orders", "/api/v1/products"] {
        s.get(&format!("{list}?cursor={forged}"), t)
            .await
            .assert_problem(400, "bad_request");
    }
    let r = s
        .post(
            "/api/v1/orders",
            t,
            json!({"customer_id": "c\u{0}", "payment_method": "invoice",
                   "items": [{"variant_id": "v\u{0}", "quantity": 1}]}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, ["customer_id", "items[0].variant_id"]);
    let r = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "P", "options": [{"name": "Size", "values": ["M"]}],
                   "variants": [{"sku": "S", "price": 1, "option_values": {"Size\u{0}": "M"}}]}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), ["variants[0].option_values.Size\u{0}"]);
    let login = s
        .post_anon(
            "/api/v1/auth/login",
            json!({"email": "a\u{0}@b.example", "password": "12345678"}),
        )
        .await;
    login.assert_problem(422, "validation_failed");
    assert_eq!(login.error_fields(), ["email"]);
    // An escaped backslash before "u0000" is plain text, not a NUL.
    let c = s
        .post("/api/v1/customers", t, json!({"name": "back\\u0000slash"}))
        .await;
    assert_eq!(c.status, 201, "{}", c.body);
    assert_eq!(c.body["name"], "back\\u0000slash");
}

/// Compression changes how a body is encoded, never the answer: a client
/// that excludes identity still gets the handler's status and body.
#[tokio::test]
async fn excluding_identity_never_turns_an_answer_into_a_406() {
    let s = start().await;
    let o = s.signup("Identity").await;
    for accept in [
        "identity;q=0",
        "*;q=0",
        "gzip;q=0, identity;q=0",
        "br, *;q=0",
    ] {
        let get = |path: &str| {
            s.client
                .get(format!("{}{path}", s.base))
                .bearer_auth(&o.token)
                .header("accept-encoding", accept)
                .send()
        };
        let missing = TestServer::read(get("/api/v1/customers/nope").await.unwrap()).await;
        missing.assert_problem(404, "not_found");
        let me = get("/api/v1/me").await.unwrap();
        assert_eq!(me.status(), 200, "{accept}");
        let created = s
            .client
            .post(format!("{}/api/v1/customers", s.base))
            .bearer_auth(&o.token)
            .header("accept-encoding", accept)
            .json(&json!({"name": "Created"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{accept}");
    }
}

/// axum's own plain-text rejections (a path id that is not UTF-8) are
/// problem+json like every other error.
#[tokio::test]
async fn a_path_id_that_is_not_utf8_is_a_problem_400() {
    let s = start().await;
    let o = s.signup("Utf8").await;
    for path in ["/api/v1/customers/%FF", "/api/v1/orders/%C3%28"] {
        let r = s.get(path, &o.token).await;
        r.assert_problem(400, "bad_request");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
}

/// The authorization scheme is case-insensitive (RFC 9110).
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let s = start().await;
    let o = s.signup("Scheme").await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = s
            .client
            .get(format!("{}/api/v1/me", s.base))
            .header("authorization", format!("{scheme} {}", o.token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    let r = s
        .client
        .get(format!("{}/api/v1/me", s.base))
        .header("authorization", format!("Basic {}", o.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
