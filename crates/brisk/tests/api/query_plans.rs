//! Every list and lookup query of the business modules uses an index, never
//! a full table scan — checked with EXPLAIN QUERY PLAN (SQLite) and EXPLAIN
//! with sequential scans disabled (PostgreSQL) on a seeded database, for
//! every statement the real endpoints ran.

use crate::common::*;
use brisk::platform::db::{Backend, CapturedStatement, SqlLog};
use serde_json::json;
use sqlx::{Executor, Row};

const STATUSES: [&str; 3] = ["lead", "active", "inactive"];

/// The plan lines that read a whole table. SQLite names tables by their
/// alias in plans (`SCAN p`), so every `SCAN` without an index counts,
/// except scans of a CTE built from bound values or of a constant row.
fn full_scans(backend: Backend, plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter(|line| match backend {
            Backend::Sqlite => {
                // `a > b > c`: the node, after its ancestors (see `explain`).
                let l = line.rsplit(" > ").next().unwrap_or(line).trim();
                // A full-text query under a correlated subquery runs once
                // per row of the outer walk: a full scan in disguise.
                if l.contains("VIRTUAL TABLE") && line.contains("CORRELATED") {
                    return true;
                }
                l.starts_with("SCAN ")
                    && !l.contains("USING INDEX")
                    && !l.contains("USING COVERING INDEX")
                    && !l.contains("USING INTEGER PRIMARY KEY")
                    && !l.contains("VIRTUAL TABLE")
                    && !l.starts_with("SCAN CONSTANT ROW")
                    && !VALUE_CTES.contains(&&l[5..])
            }
            Backend::Postgres => line.contains("Seq Scan on"),
        })
        .cloned()
        .collect()
}

/// CTEs that hold a request's own bound values (`WITH d (vid, delta) AS (VALUES …)`).
const VALUE_CTES: &[&str] = &["d"];

async fn explain(
    pool: &sqlx::AnyPool,
    backend: Backend,
    statement: &CapturedStatement,
) -> Vec<String> {
    let mut conn = pool.acquire().await.unwrap();
    if backend == Backend::Postgres {
        // With sequential scans priced out, a Seq Scan in the plan means no
        // index can serve the query at all.
        conn.execute("SET enable_seqscan = off").await.unwrap();
    }
    let rows = statement
        .explain(backend)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("EXPLAIN {}: {e}", statement.text));
    match backend {
        // Each node after its ancestors, `a > b > c`, so a check can see
        // what a node runs under.
        Backend::Sqlite => {
            let nodes: Vec<(i64, i64, String)> = rows
                .iter()
                .map(|r| {
                    (
                        r.try_get::<i64, _>("id").unwrap_or_default(),
                        r.try_get::<i64, _>("parent").unwrap_or_default(),
                        r.try_get::<String, _>("detail").unwrap_or_default(),
                    )
                })
                .collect();
            nodes
                .iter()
                .map(|(_, parent, detail)| {
                    let mut path = vec![detail.clone()];
                    let mut up = *parent;
                    while let Some((id, grand, d)) =
                        nodes.iter().find(|(id, ..)| *id == up && up != 0)
                    {
                        path.push(d.clone());
                        up = if *grand == *id { 0 } else { *grand };
                    }
                    path.reverse();
                    path.join(" > ")
                })
                .collect()
        }
        Backend::Postgres => rows
            .iter()
            .map(|r| r.try_get::<String, _>(0).unwrap_or_default())
            .collect(),
    }
}

#[tokio::test]
async fn every_read_of_customers_catalog_inventory_pricing_and_the_dashboard_uses_an_index() {
    let log = SqlLog::default();
    let s = start_with(|c| c.sql_log = Some(log.clone())).await;
    let backend = if is_postgres() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let a = s.signup("Plans A").await;
    let b = s.signup("Plans B").await;

    // Seed thousands of rows across two tenants.
    let cat = s
        .post("/api/v1/categories", &a.token, json!({"name": "Cat"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut variant_ids = Vec::new();
    let mut product_ids = Vec::new();
    for i in 0..600 {
        let owner = if i % 3 == 0 { &b } else { &a };
        let body = json!({
            "name": format!("Product {i} {}", if i % 7 == 0 { "Widget" } else { "Gadget" }),
            "category_id": if owner.tenant_id == a.tenant_id && i % 2 == 0 { Some(cat.clone()) } else { None },
            "variants": [
                {"sku": format!("S{i}-A"), "price": 100 + i, "stock": i % 10, "reorder_level": 3},
                {"sku": format!("S{i}-B"), "price": 5000 + i, "stock": 20},
                {"sku": format!("S{i}-C"), "price": 9000 + i, "stock": 1}
            ],
            "images": [{"url": format!("https://img.example/{i}.png")}]
        });
        let r = s.post("/api/v1/products", &owner.token, body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        if owner.tenant_id == a.tenant_id {
            product_ids.push(r.body["id"].as_str().unwrap().to_owned());
            variant_ids.push(r.body["variants"][0]["id"].as_str().unwrap().to_owned());
        }
    }
    let mut customer_ids = Vec::new();
    for i in 0..1500 {
        let owner = if i % 3 == 0 { &b } else { &a };
        let r = s
            .post(
                "/api/v1/customers",
                &owner.token,
                json!({"name": format!("Customer {i}"), "email": format!("c{i}@shop{}.example", i % 50),
                       "status": STATUSES[i % 3], "tags": [format!("t{}", i % 20)], "discount_bp": i % 1000}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        if owner.tenant_id == a.tenant_id {
            customer_ids.push(r.body["id"].as_str().unwrap().to_owned());
        }
    }
    let pool = s.raw_database().await;
    pool.execute("ANALYZE").await.unwrap();
    log.take();

    // Every read endpoint of the modules, with every filter.
    let t = &a.token;
    let (p, v, c) = (&product_ids[10], &variant_ids[10], &customer_ids[10]);
    let list = s.get("/api/v1/products?limit=5", t).await;
    let cursor = list.body["next_cursor"].as_str().unwrap().to_owned();
    let customers = s.get("/api/v1/customers?limit=5", t).await;
    let customer_cursor = customers.body["next_cursor"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    log.take();
    let reads = [
        "/api/v1/products".to_owned(),
        format!("/api/v1/products?cursor={cursor}"),
        "/api/v1/products?include=variants&limit=50".to_owned(),
        format!("/api/v1/products?category_id={cat}"),
        "/api/v1/products?active=true".to_owned(),
        "/api/v1/products?q=widget".to_owned(),
        "/api/v1/products?q=Pr".to_owned(),
        "/api/v1/products?min_price=5100&max_price=5200".to_owned(),
        format!("/api/v1/products/{p}"),
        format!("/api/v1/variants/{v}"),
        format!("/api/v1/variants/{v}/movements"),
        "/api/v1/inventory?low_stock=true".to_owned(),
        "/api/v1/inventory".to_owned(),
        "/api/v1/categories".to_owned(),
        "/api/v1/customers".to_owned(),
        format!("/api/v1/customers?cursor={customer_cursor}"),
        "/api/v1/customers?status=lead".to_owned(),
        "/api/v1/customers?tag=t7".to_owned(),
        "/api/v1/customers?q=shop1".to_owned(),
        "/api/v1/customers?q=customer%2012".to_owned(),
        "/api/v1/customers?q=c1".to_owned(),
        "/api/v1/customers?status=active&tag=t3&q=cust".to_owned(),
        format!("/api/v1/customers/{c}"),
        "/api/v1/users".to_owned(),
        "/api/v1/me".to_owned(),
        "/api/v1/dashboard".to_owned(),
        "/api/v1/reports/sales?from=2025-01-01&to=2025-12-31".to_owned(),
        "/api/v1/reports/sales?from=2016-01-01&to=2025-12-31&group_by=month".to_owned(),
    ];
    for path in &reads {
        let r = s.get(path, t).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let items: Vec<_> = variant_ids
        .iter()
        .take(50)
        .map(|id| json!({"variant_id": id, "quantity": 3}))
        .collect();
    let priced = s
        .post(
            "/api/v1/pricing/calculate",
            t,
            json!({"customer_id": c, "items": items}),
        )
        .await;
    assert_eq!(priced.status, 200, "{}", priced.body);
    // Writes find their rows by key too.
    let adj = s
        .post(
            &format!("/api/v1/variants/{v}/stock-adjustments"),
            t,
            json!({"delta": 1, "reason": "count"}),
        )
        .await;
    assert_eq!(adj.status, 200);
    assert_eq!(
        s.patch(
            &format!("/api/v1/products/{p}"),
            t,
            json!({"name": "Renamed"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.patch(
            &format!("/api/v1/customers/{c}"),
            t,
            json!({"name": "Renamed"})
        )
        .await
        .status,
        200
    );

    let statements = log.take();
    assert!(statements.len() > reads.len());
    let mut failures = Vec::new();
    for statement in statements.iter().filter(|st| {
        let head = st.text.trim_start().to_ascii_uppercase();
        head.starts_with("SELECT")
            || head.starts_with("WITH")
            || head.starts_with("UPDATE")
            || head.starts_with("DELETE")
    }) {
        let plan = explain(&pool, backend, statement).await;
        let scans = full_scans(backend, &plan);
        if !scans.is_empty() {
            failures.push(format!("{}\n  plan: {plan:?}", statement.text));
        }
    }
    assert!(
        failures.is_empty(),
        "full table scans:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_scan_detector_tells_index_searches_from_full_scans() {
    let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        full_scans(Backend::Sqlite, &lines(&["SCAN products"])).len(),
        1
    );
    assert_eq!(
        full_scans(Backend::Sqlite, &lines(&["SCAN v"])).len(),
        1,
        "plans name tables by alias"
    );
    assert!(full_scans(Backend::Sqlite, &lines(&["SCAN d", "SCAN CONSTANT ROW"])).is_empty());
    assert!(
        full_scans(
            Backend::Sqlite,
            &lines(&["SEARCH products USING INDEX products_tenant_created (tenant_id=?)"])
        )
        .is_empty()
    );
    assert!(
        full_scans(
            Backend::Sqlite,
            &lines(&["SCAN products_fts VIRTUAL TABLE INDEX 0:M1"])
        )
        .is_empty()
    );
    assert_eq!(
        full_scans(
            Backend::Sqlite,
            &lines(&[
                "CORRELATED LIST SUBQUERY 2 > LIST SUBQUERY 1 > SCAN products_fts VIRTUAL TABLE INDEX 0:M1"
            ])
        )
        .len(),
        1,
        "a full-text query run per outer row"
    );
    assert!(
        full_scans(
            Backend::Sqlite,
            &lines(&[
                "LIST SUBQUERY 2 > LIST SUBQUERY 1 > SCAN products_fts VIRTUAL TABLE INDEX 0:M1"
            ])
        )
        .is_empty()
    );
    assert_eq!(
        full_scans(
            Backend::Postgres,
            &lines(&["  ->  Seq Scan on orders  (cost=0.00..1.01 rows=1 width=8)"])
        )
        .len(),
        1
    );
    assert!(
        full_scans(
            Backend::Postgres,
            &lines(&["Index Scan using orders_pkey on orders"])
        )
        .is_empty()
    );
}
