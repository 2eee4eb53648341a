//! `brisk seed` as an operator runs it: the JSON it prints, logins that
//! work, counts the API agrees with, determinism per `--seed`, and sales
//! aggregates equal to a recomputation from the orders themselves.
//!
//! "Identical business data" means equal canonical dumps (below): names,
//! e-mails, SKUs, prices, costs, stock, tiers, order numbers, customers'
//! and variants' names per line, quantities, amounts, statuses and status
//! paths, quotation numbers and states, wallet ledgers. Ids (UUIDv7),
//! creation times and share-link codes are not compared.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::Row;

use crate::common::*;
use crate::process::brisk;

/// Runs `brisk seed --scale small --seed N --json` on `url`.
fn seed(url: &str, n: u64) -> Value {
    seed_with_history(url, n, "auto")
}

/// [`seed`] with `--history`.
fn seed_with_history(url: &str, n: u64, history: &str) -> Value {
    let out = brisk()
        .env("BRISK_LOG", "warn")
        .args([
            "seed",
            "--scale",
            "small",
            "--seed",
            &n.to_string(),
            "--database-url",
            url,
            "--json",
            "--history",
            history,
        ])
        .output()
        .expect("brisk seed runs");
    assert!(
        out.status.success(),
        "brisk seed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

async fn pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("connect")
}

/// Every row of `query` as text, one string per row, in the query's order.
async fn rows(db: &sqlx::AnyPool, query: &str) -> Vec<String> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(query.to_owned()))
        .fetch_all(db)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.try_get::<Option<String>, _>(i)
                        .map(|v| v.unwrap_or_else(|| "∅".into()))
                        .or_else(|_| {
                            r.try_get::<Option<i64>, _>(i)
                                .map(|v| v.map_or_else(|| "∅".into(), |n| n.to_string()))
                        })
                        .unwrap_or_else(|e| panic!("{query} column {i}: {e}"))
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

/// The business data of a seeded database, ids and creation times left
/// out (rows joined to their parents by natural keys).
async fn canonical_dump(url: &str) -> BTreeMap<&'static str, Vec<String>> {
    let db = pool(url).await;
    let queries: [(&str, &str); 17] = [
        (
            "tenants",
            "SELECT name, currency FROM tenants ORDER BY name",
        ),
        (
            "users",
            "SELECT email, name, role FROM users ORDER BY email",
        ),
        (
            "customers",
            "SELECT name, email, phone, status, discount_bp, tags FROM customers ORDER BY name",
        ),
        (
            "products",
            "SELECT p.name, p.description, c.name, p.options FROM products p \
             LEFT JOIN categories c ON c.tenant_id = p.tenant_id AND c.id = p.category_id ORDER BY p.name",
        ),
        (
            "variants",
            "SELECT sku, price, cost, stock, reorder_level, option_values, tiers FROM variants ORDER BY sku",
        ),
        (
            "orders",
            "SELECT o.number, c.name, o.status, o.payment_method, o.subtotal, o.discount_total, o.total, \
             (SELECT q.number FROM quotations q WHERE q.tenant_id = o.tenant_id AND q.id = o.quotation_id) \
             FROM orders o JOIN customers c ON c.tenant_id = o.tenant_id AND c.id = o.customer_id ORDER BY o.number",
        ),
        (
            "order_items",
            "SELECT o.number, i.position, i.sku, i.product_name, i.quantity, i.unit_price, i.unit_cost, i.discount, i.line_total \
             FROM order_items i JOIN orders o ON o.tenant_id = i.tenant_id AND o.id = i.order_id ORDER BY o.number, i.position",
        ),
        (
            "order_status_history",
            "SELECT o.number, h.status, COUNT(*) FROM order_status_history h \
             JOIN orders o ON o.tenant_id = h.tenant_id AND o.id = h.order_id GROUP BY o.number, h.status ORDER BY o.number, h.status",
        ),
        (
            "quotations",
            "SELECT q.number, c.name, q.status, q.total, (SELECT COUNT(*) FROM quotation_items i WHERE i.tenant_id = q.tenant_id AND i.quotation_id = q.id) \
             FROM quotations q JOIN customers c ON c.tenant_id = q.tenant_id AND c.id = q.customer_id ORDER BY q.number",
        ),
        (
            "wallet_transactions",
            "SELECT c.name, t.type, t.amount, t.balance_after FROM wallet_transactions t \
             JOIN customers c ON c.tenant_id = t.tenant_id AND c.id = t.customer_id ORDER BY c.name, t.created_at, t.type",
        ),
        (
            "wallets",
            "SELECT c.name, w.balance FROM wallets w \
             JOIN customers c ON c.tenant_id = w.tenant_id AND c.id = w.customer_id ORDER BY c.name",
        ),
        (
            "stock_movements",
            "SELECT v.sku, m.delta, m.reason, m.stock_after, COALESCE(o.number, '-') FROM stock_movements m \
             JOIN variants v ON v.tenant_id = m.tenant_id AND v.id = m.variant_id \
             LEFT JOIN orders o ON o.tenant_id = m.tenant_id AND o.id = m.order_id \
             ORDER BY v.sku, m.created_at, m.stock_after, m.delta",
        ),
        (
            "customer_tags",
            "SELECT c.name, t.tag FROM customer_tags t \
             JOIN customers c ON c.tenant_id = t.tenant_id AND c.id = t.customer_id ORDER BY c.name, t.tag",
        ),
        (
            "tenant_counters",
            "SELECT name, value FROM tenant_counters ORDER BY name",
        ),
        (
            "order_status_counts",
            "SELECT status, count FROM order_status_counts ORDER BY status",
        ),
        (
            "sales_daily",
            "SELECT COUNT(*), CAST(SUM(orders) AS BIGINT), CAST(SUM(revenue) AS BIGINT), CAST(SUM(cost) AS BIGINT) FROM sales_daily",
        ),
        (
            "product_sales_monthly",
            "SELECT name, CAST(SUM(quantity) AS BIGINT), CAST(SUM(revenue) AS BIGINT) FROM product_sales_monthly \
             GROUP BY name ORDER BY name",
        ),
    ];
    let mut dump = BTreeMap::new();
    for (name, query) in queries {
        dump.insert(name, rows(&db, query).await);
    }
    dump.insert(
        "share_links",
        rows(
            &db,
            "SELECT p.name, l.active, CASE WHEN l.expires_at IS NULL THEN 0 ELSE 1 END FROM share_links l \
             JOIN products p ON p.tenant_id = l.tenant_id AND p.id = l.product_id ORDER BY p.name, 2, 3",
        )
        .await,
    );
    db.close().await;
    dump
}

/// Every item of a list route, following cursors.
async fn count_all(s: &TestServer, token: &str, path: &str) -> u64 {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=100&fields=id&cursor={c}"),
            None => format!("{path}{sep}limit=100&fields=id"),
        };
        let r = s.get(&url, token).await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        n += r.body["items"].as_array().expect("items").len() as u64;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return n,
        }
    }
}

#[tokio::test]
async fn seed_small_logins_work_counts_match_the_api_and_aggregates_match_the_orders() {
    let (url, _dir) = fresh_database_url().await;
    let out = seed(&url, 7);
    let tenants = out["tenants"].as_array().expect("tenants");
    assert_eq!(tenants.len(), 1);
    let counts = &out["counts"];
    for key in [
        "customers",
        "products",
        "variants",
        "orders",
        "quotations",
        "share_links",
    ] {
        assert!(counts[key].as_u64().unwrap_or(0) > 0, "{key}: {counts}");
    }
    assert!(counts["orders"].as_u64().unwrap() >= 1000, "{counts}");

    let s = start_with(|c| c.database_url = url.clone()).await;
    let users = tenants[0]["users"].as_array().expect("users");
    let mut roles: Vec<&str> = users.iter().map(|u| u["role"].as_str().unwrap()).collect();
    roles.sort();
    assert_eq!(roles, ["admin", "owner", "sales", "viewer", "warehouse"]);
    let mut owner = String::new();
    for u in users {
        let r = s
            .post_anon(
                "/api/v1/auth/login",
                serde_json::json!({"email": u["email"], "password": u["password"]}),
            )
            .await;
        assert_eq!(r.status, 200, "login of {u}: {}", r.body);
        if u["role"] == "owner" {
            owner = r.body["access_token"].as_str().unwrap().to_owned();
        }
    }
    let me = s.get("/api/v1/me", &owner).await;
    assert_eq!(me.status, 200, "{}", me.body);

    // Counts the API agrees with.
    for (key, path) in [
        ("customers", "/api/v1/customers"),
        ("products", "/api/v1/products"),
        ("orders", "/api/v1/orders"),
        ("quotations", "/api/v1/quotations"),
        ("share_links", "/api/v1/share-links"),
    ] {
        assert_eq!(
            count_all(&s, &owner, path).await,
            counts[key].as_u64().unwrap(),
            "{key}"
        );
    }

    // Every quotation state, cancellations and wallet payments are there.
    let db = s.raw_database().await;
    let today = time::OffsetDateTime::now_utc().date();
    let quotations = s.get("/api/v1/quotations?limit=100", &owner).await;
    let mut states: Vec<String> = quotations.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["status"].as_str().unwrap().to_owned())
        .collect();
    states.sort();
    states.dedup();
    assert_eq!(
        states,
        [
            "accepted",
            "converted",
            "draft",
            "expired",
            "rejected",
            "sent"
        ]
    );
    let statuses = rows(
        &db,
        "SELECT status, payment_method, COUNT(*) FROM orders GROUP BY status, payment_method ORDER BY 1, 2",
    )
    .await;
    for want in [
        "cancelled|invoice",
        "cancelled|wallet",
        "delivered|wallet",
        "shipped|invoice",
    ] {
        assert!(
            statuses.iter().any(|r| r.starts_with(want)),
            "{want} in {statuses:?}"
        );
    }

    // Orders spread over the last 12 months.
    let months = rows(
        &db,
        "SELECT COUNT(*) FROM orders WHERE created_at < (SELECT MAX(created_at) FROM orders) - 300 * 86400000000",
    )
    .await;
    assert_ne!(months, ["0"], "orders reach back at least 300 days");

    // The report over 12 months by month equals a sum over the orders.
    let from = today - time::Duration::days(365);
    let report = s
        .get(
            &format!("/api/v1/reports/sales?from={from}&to={today}&group_by=month"),
            &owner,
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.body);
    let since = brisk::platform::clock::start_of_day_micros(from);
    let orders_sum = rows(
        &db,
        &format!(
            "SELECT COUNT(*), CAST(COALESCE(SUM(total), 0) AS BIGINT) FROM orders WHERE status <> 'cancelled' AND created_at >= {since}"
        ),
    )
    .await;
    let cost_sum = rows(
        &db,
        &format!(
            "SELECT CAST(COALESCE(SUM(i.unit_cost * i.quantity), 0) AS BIGINT) FROM order_items i JOIN orders o \
             ON o.tenant_id = i.tenant_id AND o.id = i.order_id WHERE o.status <> 'cancelled' AND o.created_at >= {since}"
        ),
    )
    .await;
    let totals = &report.body["totals"];
    assert_eq!(
        format!("{}|{}", totals["orders"], totals["revenue"]),
        orders_sum[0],
        "report totals {totals} vs the orders"
    );
    assert_eq!(totals["cost"].to_string(), cost_sum[0], "report cost");

    // The dashboard's status counts equal a count of the orders.
    let dashboard = s.get("/api/v1/dashboard", &owner).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    for r in rows(&db, "SELECT status, COUNT(*) FROM orders GROUP BY status").await {
        let (status, n) = r.split_once('|').unwrap();
        assert_eq!(
            dashboard.body["orders_by_status"][status].to_string(),
            n,
            "{status}: {}",
            dashboard.body
        );
    }
    // This month's top products equal a sum over this month's lines.
    let month_start = brisk::platform::clock::start_of_day_micros(today.replace_day(1).unwrap());
    let top = rows(
        &db,
        &format!(
            "SELECT i.product_id, CAST(SUM(i.line_total) AS BIGINT) AS revenue, CAST(SUM(i.quantity) AS BIGINT) FROM order_items i JOIN orders o \
             ON o.tenant_id = i.tenant_id AND o.id = i.order_id WHERE o.status <> 'cancelled' AND o.created_at >= {month_start} \
             GROUP BY i.product_id ORDER BY revenue DESC, i.product_id LIMIT 5"
        ),
    )
    .await;
    let shown: Vec<String> = dashboard.body["top_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}|{}|{}",
                p["product_id"].as_str().unwrap(),
                p["revenue"],
                p["quantity"]
            )
        })
        .collect();
    assert_eq!(shown, top, "top products");
    db.close().await;
    s.stop().await;
}

#[tokio::test]
async fn seed_small_is_deterministic_per_seed() {
    let (a, _da) = fresh_database_url().await;
    let (b, _db) = fresh_database_url().await;
    let (c, _dc) = fresh_database_url().await;
    // Three runs side by side: they share no database.
    let runs: Vec<_> = [(a.clone(), 7), (b.clone(), 7), (c.clone(), 8)]
        .into_iter()
        .map(|(url, n)| std::thread::spawn(move || seed(&url, n)))
        .collect();
    let mut outs: Vec<Value> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    outs.pop();
    let out_b = outs.pop().unwrap();
    let out_a = outs.pop().unwrap();
    assert_eq!(out_a["counts"], out_b["counts"]);
    assert_eq!(out_a["tenants"][0]["users"], out_b["tenants"][0]["users"]);
    let dump_a = canonical_dump(&a).await;
    let dump_b = canonical_dump(&b).await;
    for (table, rows) in &dump_a {
        assert!(!rows.is_empty(), "{table} is empty");
        assert_eq!(
            rows, &dump_b[table],
            "{table} differs between two runs of --seed 7"
        );
    }
    let dump_c = canonical_dump(&c).await;
    assert_ne!(
        dump_a["orders"], dump_c["orders"],
        "--seed 8 differs from 7"
    );
    assert_ne!(dump_a["variants"], dump_c["variants"]);
}

/// Medium and large seeds replay the order history in memory and write it
/// in bulk: the business data must be exactly what placing and moving every
/// order through the API's functions writes (orders, lines, histories,
/// stock movements, ledgers, counters, sales aggregates). The replayed
/// database must work afterwards: its stock and ledgers agree with their
/// movements, and the next order is numbered after the replayed ones.
#[tokio::test]
async fn a_replayed_order_history_writes_what_the_api_writes() {
    let (direct, _dd) = fresh_database_url().await;
    let (staged, _ds) = fresh_database_url().await;
    let runs: Vec<_> = [(direct.clone(), "api"), (staged.clone(), "replay")]
        .into_iter()
        .map(|(url, history)| std::thread::spawn(move || seed_with_history(&url, 11, history)))
        .collect();
    let mut outs: Vec<Value> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let out_staged = outs.pop().unwrap();
    let out_direct = outs.pop().unwrap();
    assert_eq!(out_direct["history"], "api");
    assert_eq!(out_staged["history"], "replay");
    assert_eq!(out_direct["counts"], out_staged["counts"]);
    assert_eq!(
        out_direct["tenants"][0]["users"],
        out_staged["tenants"][0]["users"]
    );
    let dump_direct = canonical_dump(&direct).await;
    let dump_staged = canonical_dump(&staged).await;
    for (table, rows) in &dump_direct {
        assert!(!rows.is_empty(), "{table} is empty");
        assert_eq!(
            rows, &dump_staged[table],
            "{table} differs between the API's history and the replayed one"
        );
    }
    for url in [&direct, &staged] {
        let db = pool(url).await;
        assert_eq!(
            rows(&db, "SELECT COUNT(*) FROM outbox").await,
            ["0"],
            "the seed's events are pruned once consumed"
        );
        db.close().await;
    }

    // And the same times, measured from the first order: the history is
    // drawn from the seed, only the run's clock differs. (Orders of
    // converted quotations are placed at the present time and left out.)
    let times: [&str; 4] = [
        "SELECT o.number, o.created_at - b.t, o.updated_at - b.t FROM orders o, \
         (SELECT MIN(created_at) AS t FROM orders) b WHERE o.quotation_id IS NULL ORDER BY o.number",
        "SELECT o.number, h.status, h.created_at - b.t FROM order_status_history h \
         JOIN orders o ON o.tenant_id = h.tenant_id AND o.id = h.order_id, \
         (SELECT MIN(created_at) AS t FROM orders) b WHERE o.quotation_id IS NULL ORDER BY o.number, h.created_at",
        "SELECT v.sku, m.delta, m.reason, m.created_at - b.t FROM stock_movements m \
         JOIN variants v ON v.tenant_id = m.tenant_id AND v.id = m.variant_id \
         JOIN orders o ON o.tenant_id = m.tenant_id AND o.id = m.order_id, \
         (SELECT MIN(created_at) AS t FROM orders) b WHERE o.quotation_id IS NULL ORDER BY v.sku, m.created_at, m.delta",
        "SELECT c.name, t.type, t.amount, t.created_at - b.t FROM wallet_transactions t \
         JOIN customers c ON c.tenant_id = t.tenant_id AND c.id = t.customer_id, \
         (SELECT MIN(created_at) AS t FROM orders) b WHERE t.order_id IS NOT NULL ORDER BY c.name, t.created_at",
    ];
    let (api_db, replay_db) = (pool(&direct).await, pool(&staged).await);
    for query in times {
        let api = rows(&api_db, query).await;
        assert!(!api.is_empty(), "{query}");
        assert_eq!(api, rows(&replay_db, query).await, "times differ: {query}");
    }
    api_db.close().await;
    replay_db.close().await;

    // The replayed database is consistent: every variant's stock is the
    // sum of its movements, every wallet's balance its ledger's, and the
    // latest movement and entry carry the figures the rows hold.
    let db = pool(&staged).await;
    assert_eq!(
        rows(
            &db,
            "SELECT COUNT(*) FROM variants v WHERE v.stock <> \
             (SELECT CAST(COALESCE(SUM(m.delta), 0) AS BIGINT) FROM stock_movements m \
              WHERE m.tenant_id = v.tenant_id AND m.variant_id = v.id)"
        )
        .await,
        ["0"],
        "stock is the sum of its movements"
    );
    assert_eq!(
        rows(
            &db,
            "SELECT COUNT(*) FROM wallets w WHERE w.balance <> \
             (SELECT CAST(COALESCE(SUM(CASE WHEN t.type = 'debit' THEN -t.amount ELSE t.amount END), 0) AS BIGINT) \
              FROM wallet_transactions t WHERE t.tenant_id = w.tenant_id AND t.customer_id = w.customer_id)"
        )
        .await,
        ["0"],
        "balances are the sums of their ledgers"
    );
    assert_eq!(
        rows(
            &db,
            "SELECT COUNT(*) FROM variants v WHERE v.last_movement_at <> \
             (SELECT MAX(m.created_at) FROM stock_movements m WHERE m.tenant_id = v.tenant_id AND m.variant_id = v.id)"
        )
        .await,
        ["0"],
        "each variant's last movement time is its latest movement's"
    );
    let s = start_with(|c| c.database_url = staged.clone()).await;
    let owner = out_staged["tenants"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["role"] == "owner")
        .unwrap()
        .clone();
    let login = s
        .post_anon(
            "/api/v1/auth/login",
            serde_json::json!({"email": owner["email"], "password": owner["password"]}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    let last = rows(&db, "SELECT MAX(number) FROM orders").await;
    let customer = rows(
        &db,
        "SELECT id FROM customers WHERE status = 'active' ORDER BY name LIMIT 1",
    )
    .await;
    let variant = rows(
        &db,
        "SELECT id FROM variants WHERE stock > 100 ORDER BY sku LIMIT 1",
    )
    .await;
    db.close().await;
    let placed = s
        .post(
            "/api/v1/orders",
            &token,
            serde_json::json!({
                "customer_id": customer[0],
                "items": [{"variant_id": variant[0], "quantity": 1}],
                "payment_method": "invoice"
            }),
        )
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    assert!(
        placed.body["number"].as_str().unwrap() > last[0].as_str(),
        "{} after {}",
        placed.body["number"],
        last[0]
    );
    s.stop().await;
}
