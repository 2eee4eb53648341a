//! Operations endpoints: health, readiness through a database outage,
//! metrics (including the background work's), the OpenAPI document and the
//! offline docs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

#[tokio::test]
async fn live_and_ready_answer_ok() {
    let s = start().await;
    let live = s.get_anon("/health/live").await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["status"], "ok");
    let ready = s.get_anon("/health/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["checks"]["database"], "ok");
}

/// A loopback TCP proxy that can cut every connection and refuse new ones,
/// to play a database outage without stopping the shared server.
struct Outage {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Outage {
    async fn in_front_of(upstream: String) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().await.push(link);
            }
        });
        Outage { addr, up, links }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn ready_is_503_while_postgres_is_unreachable_and_200_when_it_returns() {
    if !is_postgres() {
        // An embedded SQLite file cannot become unreachable while the
        // process runs; the outage is a PostgreSQL (networked) concern.
        return;
    }
    let (url, _) = fresh_database_url().await;
    let (head, rest) = url.split_once("@").unwrap();
    let (hostport, db) = rest.split_once('/').unwrap();
    let proxy = Outage::in_front_of(hostport.to_owned()).await;
    let proxied = format!("{head}@{}/{db}", proxy.addr);
    let s = start_with(|c| {
        c.database_url = proxied;
        c.database_acquire_timeout_ms = 500;
    })
    .await;
    assert_eq!(s.get_anon("/health/ready").await.status, 200);
    proxy.cut().await;
    let down = s.get_anon("/health/ready").await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.body["status"], "unavailable");
    // Public: the state only, never the database's error text.
    assert_eq!(down.body["checks"]["database"], "down", "{}", down.body);
    // A business request gets a 503 problem, not a 500.
    let r = s
        .post_anon(
            "/api/v1/auth/login",
            serde_json::json!({"email": "a@b.example", "password": "12345678"}),
        )
        .await;
    r.assert_problem(503, "unavailable");
    assert_eq!(
        s.get_anon("/health/live").await.status,
        200,
        "the process lives on"
    );
    proxy.restore();
    let mut back = 0;
    for _ in 0..50 {
        back = s.get_anon("/health/ready").await.status;
        if back == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(back, 200, "ready again once the database returns");
}

#[tokio::test]
async fn metrics_export_requests_latency_pool_and_statements() {
    let s = start().await;
    let owner = s.signup("Metrics").await;
    s.get("/api/v1/me", &owner.token).await;
    let r = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    for needle in [
        "brisk_http_requests_total{route=\"/api/v1/me\",method=\"GET\",status=\"200\"}",
        "brisk_http_request_duration_seconds_bucket{route=\"/api/v1/me\",method=\"GET\",status=\"200\",le=",
        "brisk_db_pool_connections{pool=\"primary\",state=\"in_use\"}",
        "brisk_db_pool_connections{pool=\"primary\",state=\"idle\"}",
        "brisk_db_pool_max_connections{pool=\"primary\"}",
        "brisk_db_statements_total{kind=\"select\"}",
        "brisk_db_statement_duration_seconds_bucket{kind=\"select\",le=",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_export_the_outbox_lag_and_jobs_by_status_and_type() {
    use crate::mail::*;
    let sink = sink();
    let s = start_with(|c| {
        c.smtp_url = Some(sink.url.clone());
        c.worker_poll_ms = 50;
    })
    .await;
    let shop = shop(&s, "USD", 100, 10).await;
    let customer = shop
        .customer(&s, "Metric", Some(&unique_email("metrics")))
        .await;
    shop.order(&s, &customer, 1).await;
    wait_for_jobs(&s, &shop.owner.token, "", "a confirmation sent", |j| {
        j.iter().any(|j| j["status"] == "done")
    })
    .await;
    let text = s.get_anon("/metrics").await.bytes;
    let text = String::from_utf8(text).unwrap();
    // Values are shared by every server of this test process; each scrape
    // writes every status of every known type, so the lines are there.
    for needle in [
        "brisk_outbox_lag_seconds ".to_owned(),
        "brisk_job_run_duration_seconds_bucket{type=\"email.order_confirmation\"".to_owned(),
    ]
    .into_iter()
    .chain(["queued", "running", "failed", "dead"].map(|status| {
        format!("brisk_jobs{{status=\"{status}\",type=\"email.order_confirmation\"}} ")
    })) {
        assert!(text.contains(&needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let s = start().await;
    let doc = s.get_anon("/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/customers", "get"),
        ("/api/v1/customers", "post"),
        ("/api/v1/customers/{id}", "get"),
        ("/api/v1/customers/{id}", "patch"),
        ("/api/v1/customers/{id}", "delete"),
        ("/api/v1/categories", "get"),
        ("/api/v1/categories", "post"),
        ("/api/v1/products", "get"),
        ("/api/v1/products", "post"),
        ("/api/v1/products/{id}", "get"),
        ("/api/v1/products/{id}", "patch"),
        ("/api/v1/products/{id}", "delete"),
        ("/api/v1/products/{id}/variants", "post"),
        ("/api/v1/variants/{id}", "get"),
        ("/api/v1/variants/{id}", "patch"),
        ("/api/v1/variants/{id}/stock-adjustments", "post"),
        ("/api/v1/variants/{id}/movements", "get"),
        ("/api/v1/inventory", "get"),
        ("/api/v1/pricing/calculate", "post"),
        ("/api/v1/quotations", "get"),
        ("/api/v1/quotations", "post"),
        ("/api/v1/quotations/{id}", "get"),
        ("/api/v1/quotations/{id}", "patch"),
        ("/api/v1/quotations/{id}/send", "post"),
        ("/api/v1/quotations/{id}/accept", "post"),
        ("/api/v1/quotations/{id}/reject", "post"),
        ("/api/v1/quotations/{id}/convert", "post"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/history", "get"),
        ("/api/v1/orders/{id}/status", "post"),
        ("/api/v1/customers/{id}/wallet", "get"),
        ("/api/v1/customers/{id}/wallet/credits", "post"),
        ("/api/v1/customers/{id}/wallet/transactions", "get"),
        ("/api/v1/admin/jobs", "get"),
        ("/api/v1/admin/jobs/{id}/retry", "post"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
    // Every operation's path parameters are exactly its template's
    // placeholders (a query parameter documented `in: path` makes the
    // document invalid), and no parameter is listed twice.
    for (path, item) in paths {
        let placeholders: std::collections::BTreeSet<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let in_path: std::collections::BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(in_path, placeholders, "{method} {path}");
            let mut seen = std::collections::BTreeSet::new();
            for p in &params {
                assert!(
                    seen.insert((p["in"].to_string(), p["name"].to_string())),
                    "{method} {path} lists {} twice",
                    p["name"]
                );
            }
        }
    }
    // List routes document their query parameters as such, none required.
    for (path, names) in [
        (
            "/api/v1/customers",
            &["status", "q", "tag", "limit", "cursor", "fields"][..],
        ),
        (
            "/api/v1/products",
            &[
                "category_id",
                "active",
                "q",
                "min_price",
                "max_price",
                "include",
                "limit",
                "cursor",
            ][..],
        ),
        (
            "/api/v1/orders",
            &["status", "customer_id", "from", "to", "limit", "cursor"][..],
        ),
        ("/api/v1/inventory", &["low_stock", "limit", "cursor"][..]),
        (
            "/api/v1/quotations",
            &["status", "customer_id", "limit", "cursor"][..],
        ),
    ] {
        let params = paths[path]["get"]["parameters"].as_array().unwrap();
        for name in names {
            let param = params
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("GET {path} does not document {name}"));
            assert_eq!(param["in"], "query", "GET {path} {name}");
            assert_ne!(param["required"], true, "GET {path} {name}");
        }
    }
}

#[tokio::test]
async fn docs_render_from_assets_inside_the_binary() {
    let s = start().await;
    let page = s
        .client
        .get(format!("{}/docs/", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets:\n{html}"
    );
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let r = s
            .client
            .get(format!("{}/docs/{asset}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
    }
    let init = s
        .client
        .get(format!("{}/docs/swagger-initializer.js", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"));
    assert!(
        init.contains("\"validatorUrl\": \"none\"") || init.contains("\"validatorUrl\":\"none\""),
        "{init}"
    );
    // /docs itself leads there.
    let bare = s
        .client
        .get(format!("{}/docs", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status().as_u16(), 200);
}
