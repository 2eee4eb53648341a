//! Pricing through the real server: the rules of docs/api.md, bounded statements
//! and bad carts.

use crate::common::*;
use serde_json::{Value, json};

struct Catalog {
    tee: String,
    mug: String,
    cheap: String,
    inactive: String,
}

async fn catalog(s: &TestServer, token: &str) -> Catalog {
    let r = s
        .post(
            "/api/v1/products",
            token,
            json!({"name": "Tee", "min_margin_bp": 3000, "variants": [
                {"sku": "TEE", "price": 2000, "cost": 1200, "tiers": [{"min_quantity": 10, "price": 1800}, {"min_quantity": 50, "price": 1500}]},
                {"sku": "CHEAP", "price": 0, "cost": 0},
                {"sku": "OLD", "price": 100, "active": false}
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mug = s
        .post(
            "/api/v1/products",
            token,
            json!({"name": "Mug", "variants": [{"sku": "MUG", "price": 999, "cost": 1000}]}),
        )
        .await;
    Catalog {
        tee: r.body["variants"][0]["id"].as_str().unwrap().to_owned(),
        cheap: r.body["variants"][1]["id"].as_str().unwrap().to_owned(),
        inactive: r.body["variants"][2]["id"].as_str().unwrap().to_owned(),
        mug: mug.body["variants"][0]["id"].as_str().unwrap().to_owned(),
    }
}

async fn customer(s: &TestServer, token: &str, discount_bp: i64) -> String {
    let r = s
        .post(
            "/api/v1/customers",
            token,
            json!({"name": "Buyer", "discount_bp": discount_bp}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_cart_is_priced_with_tiers_discount_and_margins() {
    let s = start().await;
    let o = s.signup("Pricing").await;
    let c = catalog(&s, &o.token).await;
    let buyer = customer(&s, &o.token, 1250).await;
    let r = s
        .post(
            "/api/v1/pricing/calculate",
            &o.token,
            json!({"customer_id": buyer, "items": [
                {"variant_id": c.tee, "quantity": 12},
                {"variant_id": c.mug, "quantity": 1},
                {"variant_id": c.cheap, "quantity": 3}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["currency"], "USD");
    let lines = r.body["lines"].as_array().unwrap();
    // Tee: tier 10 → 1800; 21600 × 12.5 % = 2700; total 18900;
    // margin (18900 − 14400) × 10000 / 18900 = 2380 < 3000.
    assert_eq!(
        lines[0],
        json!({"variant_id": c.tee, "sku": "TEE", "quantity": 12, "unit_price": 1800, "discount": 2700, "line_total": 18900, "margin_bp": 2380, "margin_ok": false})
    );
    // Mug: 999 × 12.5 % = 124.875 → 125; total 874; margin (874 − 1000) × 10000 / 874 = −1441.6 → −1441.
    assert_eq!(lines[1]["discount"], 125);
    assert_eq!(lines[1]["line_total"], 874);
    assert_eq!(lines[1]["margin_bp"], -1441);
    assert_eq!(lines[1]["margin_ok"], false);
    // Free item with no cost: margin 0, below the Tee's minimum of 3000.
    assert_eq!(lines[2]["line_total"], 0);
    assert_eq!(lines[2]["margin_bp"], 0);
    assert_eq!(lines[2]["margin_ok"], false);
    assert_eq!(r.body["subtotal"], 21600 + 999);
    assert_eq!(r.body["discount_total"], 2700 + 125);
    assert_eq!(r.body["total"], 18900 + 874);
    assert_eq!(r.body["margin_ok"], false);
}

#[tokio::test]
async fn without_a_customer_there_is_no_discount_and_every_role_may_price() {
    let s = start().await;
    let o = s.signup("Roles").await;
    let c = catalog(&s, &o.token).await;
    for role in ["viewer", "warehouse", "sales"] {
        let u = s.user_with_role(&o, role).await;
        let r = s
            .post(
                "/api/v1/pricing/calculate",
                &u.token,
                json!({"items": [{"variant_id": c.tee, "quantity": 50}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{role}: {}", r.body);
        assert_eq!(r.body["lines"][0]["unit_price"], 1500);
        assert_eq!(r.body["discount_total"], 0);
        assert_eq!(r.body["total"], 75000);
        // (75000 − 60000) × 10000 / 75000 = 2000 < 3000
        assert_eq!(r.body["lines"][0]["margin_bp"], 2000);
    }
}

#[tokio::test]
async fn pricing_runs_the_same_statements_for_1_and_500_items() {
    let s = start().await;
    let o = s.signup("Bounded").await;
    let variants: Vec<Value> = (0..100)
        .map(|j| json!({"sku": format!("B-{j}"), "price": 100 + j, "cost": 50}))
        .collect();
    let mut ids = Vec::new();
    for k in 0..5 {
        let vs: Vec<Value> = variants.iter().map(|v| json!({"sku": format!("{}-{k}", v["sku"].as_str().unwrap()), "price": v["price"], "cost": 50})).collect();
        let r = s
            .post(
                "/api/v1/products",
                &o.token,
                json!({"name": format!("P{k}"), "variants": vs}),
            )
            .await;
        assert_eq!(r.status, 201);
        ids.extend(
            r.body["variants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
    }
    let buyer = customer(&s, &o.token, 500).await;
    let cart = |n: usize| json!({"customer_id": buyer, "items": ids.iter().take(n).map(|id| json!({"variant_id": id, "quantity": 2})).collect::<Vec<_>>()});
    // Warm the tenant-currency cache so both calls do the same work.
    s.post("/api/v1/pricing/calculate", &o.token, cart(1)).await;
    let one = s.post("/api/v1/pricing/calculate", &o.token, cart(1)).await;
    let many = s
        .post("/api/v1/pricing/calculate", &o.token, cart(500))
        .await;
    assert_eq!(many.status, 200, "{}", many.body);
    assert_eq!(many.body["lines"].as_array().unwrap().len(), 500);
    assert_eq!(one.statements(), many.statements());
    assert!(many.statements() <= 3, "{}", many.statements());
    // Lines keep the client's order.
    assert_eq!(many.body["lines"][499]["variant_id"], ids[499].as_str());
}

#[tokio::test]
async fn bad_carts_are_422_naming_each_item() {
    let s = start().await;
    let o = s.signup("Bad").await;
    let other = s.signup("Other").await;
    let c = catalog(&s, &o.token).await;
    let theirs = catalog(&s, &other.token).await;
    let their_customer = customer(&s, &other.token, 0).await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"items": []}), vec!["items"]),
        (
            json!({"items": [{"variant_id": c.tee, "quantity": 0}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"items": [{"variant_id": c.tee, "quantity": -2}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"items": [{"variant_id": c.tee, "quantity": 1}, {"variant_id": c.tee, "quantity": 2}]}),
            vec!["items[1].variant_id"],
        ),
        (
            json!({"items": [{"variant_id": "nope", "quantity": 1}, {"variant_id": c.mug, "quantity": 1}, {"variant_id": theirs.tee, "quantity": 1}]}),
            vec!["items[0].variant_id", "items[2].variant_id"],
        ),
        (
            json!({"items": [{"variant_id": c.inactive, "quantity": 1}]}),
            vec!["items[0].variant_id"],
        ),
        (
            json!({"customer_id": their_customer, "items": [{"variant_id": c.tee, "quantity": 1}]}),
            vec!["customer_id"],
        ),
        (
            json!({"items": [{"variant_id": c.tee, "quantity": 1_000_000_001i64}]}),
            vec!["items[0].quantity"],
        ),
        (
            json!({"items": [{"variant_id": c.tee, "quantity": "3"}]}),
            vec!["items[0].quantity"],
        ),
    ];
    for (body, fields) in cases {
        let r = s
            .post("/api/v1/pricing/calculate", &o.token, body.clone())
            .await;
        r.assert_problem(422, "validation_failed");
        let mut got = r.error_fields();
        got.sort();
        let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{body}");
    }
    let too_many: Vec<Value> = (0..501)
        .map(|i| json!({"variant_id": format!("v{i}"), "quantity": 1}))
        .collect();
    let r = s
        .post(
            "/api/v1/pricing/calculate",
            &o.token,
            json!({"items": too_many}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["items"]);
}

#[tokio::test]
async fn amounts_that_would_overflow_are_422_not_wrapped() {
    let s = start().await;
    let o = s.signup("Overflow").await;
    let r = s.post("/api/v1/products", &o.token, json!({"name": "Gold", "variants": [{"sku": "AU", "price": 9_000_000_000_000_000_000i64}]})).await;
    assert_eq!(r.status, 201);
    let v = r.body["variants"][0]["id"].as_str().unwrap().to_owned();
    let r = s
        .post(
            "/api/v1/pricing/calculate",
            &o.token,
            json!({"items": [{"variant_id": v, "quantity": 2}]}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["items[0].quantity"]);
    assert_eq!(s.get_anon("/health/live").await.status, 200);
}

/// Every amount of the line fits in i64, only its margin would not: the
/// margin saturates and reports, and the cart is priced and can be ordered.
#[tokio::test]
async fn a_margin_beyond_i64_saturates_instead_of_refusing_the_cart() {
    let s = start().await;
    let o = s.signup("Margins").await;
    let t = &o.token;
    let p = s
        .post(
            "/api/v1/products",
            t,
            json!({"name": "Loss leader", "variants": [{"sku": "LL", "price": 1, "cost": 1_000_000_000_000_000i64, "stock": 3}]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let variant = p.body["variants"][0]["id"].as_str().unwrap();
    let priced = s
        .post(
            "/api/v1/pricing/calculate",
            t,
            json!({"items": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await;
    assert_eq!(priced.status, 200, "{}", priced.body);
    assert_eq!(priced.body["lines"][0]["margin_bp"], i64::MIN);
    assert_eq!(priced.body["margin_ok"], false);
    let c = customer(&s, t, 0).await;
    let order = s
        .post(
            "/api/v1/orders",
            t,
            json!({"customer_id": c, "payment_method": "invoice", "items": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
}

/// A variant whose stored tiers do not parse is corrupt data: pricing it is
/// a 500, never the list price its lost tiers would have undercut. Other
/// variants still price.
#[tokio::test]
async fn a_variant_with_corrupt_stored_tiers_is_an_internal_error_not_a_list_price() {
    let s = start().await;
    let o = s.signup("Corrupt tiers").await;
    let c = catalog(&s, &o.token).await;
    let pool = s.raw_database().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE variants SET tiers = '[{{\"min_quantity\": 10,' WHERE id = '{}'",
        c.tee
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let priced = s
        .post(
            "/api/v1/pricing/calculate",
            &o.token,
            json!({"items": [{"variant_id": c.tee, "quantity": 12}]}),
        )
        .await;
    priced.assert_problem(500, "internal");
    assert_eq!(priced.body["lines"], Value::Null, "{}", priced.body);
    let other = s
        .post(
            "/api/v1/pricing/calculate",
            &o.token,
            json!({"items": [{"variant_id": c.mug, "quantity": 1}]}),
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.body);
    s.get(&format!("/api/v1/variants/{}", c.tee), &o.token)
        .await
        .assert_problem(500, "internal");
}
