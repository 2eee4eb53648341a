//! Catalog: categories, products, variants, images — through the real server.

use crate::common::*;
use serde_json::{Value, json};

fn shirt(sku_prefix: &str) -> Value {
    json!({
        "name": "T-Shirt",
        "description": "Cotton",
        "min_margin_bp": 2000,
        "options": [{"name": "Size", "values": ["S", "M", "L"]}, {"name": "Color", "values": ["Red"]}],
        "variants": [
            {"sku": format!("{sku_prefix}-S"), "price": 1999, "cost": 800, "stock": 10, "option_values": {"Size": "S", "Color": "Red"},
             "tiers": [{"min_quantity": 10, "price": 1799}, {"min_quantity": 50, "price": 1599}]},
            {"sku": format!("{sku_prefix}-M"), "price": 2099, "stock": 0, "reorder_level": 2, "option_values": {"Size": "M"}},
            {"sku": format!("{sku_prefix}-L"), "price": 2199, "cost": 900, "active": false}
        ],
        "images": [{"url": "https://cdn.example/front.png", "alt": "front"}, {"url": "https://cdn.example/back.png"}]
    })
}

async fn product_count(s: &TestServer, token: &str) -> usize {
    s.get("/api/v1/products?limit=100", token).await.body["items"]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn creating_a_product_returns_it_whole_with_variants_in_client_order() {
    let s = start().await;
    let o = s.signup("Cat").await;
    let r = s.post("/api/v1/products", &o.token, shirt("TS")).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let p = &r.body;
    assert_eq!(p["name"], "T-Shirt");
    assert_eq!(p["active"], true);
    assert_eq!(p["min_margin_bp"], 2000);
    assert_eq!(p["options"][0]["values"], json!(["S", "M", "L"]));
    let skus: Vec<&str> = p["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, vec!["TS-S", "TS-M", "TS-L"]);
    let s_variant = &p["variants"][0];
    assert!(s_variant["id"].as_str().is_some());
    assert_eq!(s_variant["tiers"][1]["price"], 1599);
    assert_eq!(s_variant["option_values"]["Size"], "S");
    let m = &p["variants"][1];
    assert_eq!(
        (
            m["cost"].as_i64(),
            m["stock"].as_i64(),
            m["reorder_level"].as_i64()
        ),
        (Some(0), Some(0), Some(2))
    );
    assert_eq!(
        p["variants"][2]["reorder_level"], 5,
        "reorder level defaults to 5"
    );
    assert_eq!(p["variants"][2]["active"], false);
    assert_eq!(p["images"][0]["alt"], "front");
    assert_eq!(p["images"][1]["url"], "https://cdn.example/back.png");
    assert_eq!(
        (
            p["price_min"].as_i64(),
            p["price_max"].as_i64(),
            p["stock_total"].as_i64()
        ),
        (Some(1999), Some(2199), Some(10))
    );

    // Detail returns the same, nested.
    let id = p["id"].as_str().unwrap();
    let d = s.get(&format!("/api/v1/products/{id}"), &o.token).await;
    assert_eq!(d.status, 200);
    assert_eq!(d.body["variants"], p["variants"]);
    assert_eq!(d.body["images"], p["images"]);
    assert_eq!(d.body["options"], p["options"]);

    // Initial stock is a movement with reason "initial".
    let vid = s_variant["id"].as_str().unwrap();
    let mv = s
        .get(&format!("/api/v1/variants/{vid}/movements"), &o.token)
        .await;
    assert_eq!(mv.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(mv.body["items"][0]["reason"], "initial");
    assert_eq!(mv.body["items"][0]["delta"], 10);
    assert_eq!(mv.body["items"][0]["stock_after"], 10);
    let m_id = m["id"].as_str().unwrap();
    let none = s
        .get(&format!("/api/v1/variants/{m_id}/movements"), &o.token)
        .await;
    assert!(
        none.body["items"].as_array().unwrap().is_empty(),
        "no movement for zero initial stock"
    );
}

#[tokio::test]
async fn categories_nest_under_parents_of_the_same_tenant() {
    let s = start().await;
    let o = s.signup("Cats").await;
    let other = s.signup("Other").await;
    let top = s
        .post("/api/v1/categories", &o.token, json!({"name": "Clothing"}))
        .await;
    assert_eq!(top.status, 201);
    assert_eq!(top.body["parent_id"], Value::Null);
    let top_id = top.body["id"].as_str().unwrap();
    let sub = s
        .post(
            "/api/v1/categories",
            &o.token,
            json!({"name": "Shirts", "parent_id": top_id}),
        )
        .await;
    assert_eq!(sub.status, 201);
    assert_eq!(sub.body["parent_id"], top_id);
    let list = s.get("/api/v1/categories", &o.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    s.post(
        "/api/v1/categories",
        &o.token,
        json!({"name": "X", "parent_id": "nope"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let theirs = s
        .post(
            "/api/v1/categories",
            &other.token,
            json!({"name": "Theirs", "parent_id": top_id}),
        )
        .await;
    theirs.assert_problem(422, "validation_failed");
    assert_eq!(theirs.error_fields(), vec!["parent_id"]);
    assert!(
        s.get("/api/v1/categories", &other.token).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    s.post("/api/v1/categories", &o.token, json!({"name": ""}))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn product_list_filters_by_category_active_name_and_price() {
    let s = start().await;
    let o = s.signup("Filters").await;
    let cat = s
        .post("/api/v1/categories", &o.token, json!({"name": "Mugs"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mk = |name: &str, sku: &str, price: i64, active: bool, category: Option<&str>| json!({"name": name, "active": active, "category_id": category, "variants": [{"sku": sku, "price": price}, {"sku": format!("{sku}-2"), "price": price * 3}]});
    for body in [
        mk("Blue Mug", "M1", 500, true, Some(&cat)),
        mk("Red Mug", "M2", 900, false, Some(&cat)),
        mk("Coffee Beans 100%_pure", "B1", 1500, true, None),
        mk("Tea", "T1", 300, true, None),
    ] {
        assert_eq!(s.post("/api/v1/products", &o.token, body).await.status, 201);
    }
    let names = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = s.get("/api/v1/products", &o.token).await;
    assert_eq!(
        names(&all),
        vec!["Tea", "Coffee Beans 100%_pure", "Red Mug", "Blue Mug"],
        "newest first"
    );
    let item = &all.body["items"][0];
    for key in [
        "id",
        "name",
        "category_id",
        "active",
        "price_min",
        "price_max",
        "stock_total",
        "variant_count",
    ] {
        assert!(item.get(key).is_some(), "{key} missing");
    }
    assert!(
        item.get("variants").is_none(),
        "variants only with include=variants"
    );
    assert_eq!(
        (
            item["price_min"].as_i64(),
            item["price_max"].as_i64(),
            item["variant_count"].as_i64()
        ),
        (Some(300), Some(900), Some(2))
    );

    assert_eq!(
        names(
            &s.get(&format!("/api/v1/products?category_id={cat}"), &o.token)
                .await
        ),
        vec!["Red Mug", "Blue Mug"]
    );
    assert_eq!(
        names(&s.get("/api/v1/products?active=false", &o.token).await),
        vec!["Red Mug"]
    );
    assert_eq!(
        names(&s.get("/api/v1/products?q=MUG", &o.token).await),
        vec!["Red Mug", "Blue Mug"]
    );
    assert_eq!(
        names(&s.get("/api/v1/products?q=ue%20m", &o.token).await),
        vec!["Blue Mug"]
    );
    assert_eq!(
        names(&s.get("/api/v1/products?q=ea", &o.token).await),
        vec!["Tea", "Coffee Beans 100%_pure"],
        "short needles work too"
    );
    assert_eq!(
        names(&s.get("/api/v1/products?q=100%25_", &o.token).await),
        vec!["Coffee Beans 100%_pure"],
        "% and _ are literal"
    );
    assert!(names(&s.get("/api/v1/products?q=0%25x", &o.token).await).is_empty());
    // A product matches when at least one variant is priced inside the range.
    assert_eq!(
        names(
            &s.get("/api/v1/products?min_price=1000&max_price=1600", &o.token)
                .await
        ),
        vec!["Coffee Beans 100%_pure", "Blue Mug"]
    );
    assert_eq!(
        names(
            &s.get("/api/v1/products?min_price=1600&max_price=2600", &o.token)
                .await
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&s.get("/api/v1/products?min_price=2000", &o.token).await),
        vec!["Coffee Beans 100%_pure", "Red Mug"]
    );
    assert_eq!(
        names(&s.get("/api/v1/products?max_price=400", &o.token).await),
        vec!["Tea"]
    );
    assert_eq!(
        names(
            &s.get(
                &format!("/api/v1/products?category_id={cat}&active=true&q=mug"),
                &o.token
            )
            .await
        ),
        vec!["Blue Mug"]
    );

    let with = s
        .get("/api/v1/products?include=variants&limit=2", &o.token)
        .await;
    assert_eq!(with.body["items"][0]["variants"][0]["sku"], "T1");
    assert_eq!(with.body["items"][0]["variants"][1]["sku"], "T1-2");
    assert!(with.body["next_cursor"].as_str().is_some());

    for bad in [
        "active=maybe",
        "min_price=cheap",
        "include=everything",
        "limit=0",
    ] {
        s.get(&format!("/api/v1/products?{bad}"), &o.token)
            .await
            .assert_problem(400, "bad_request");
    }
    let f = s
        .get("/api/v1/products?fields=name,variants", &o.token)
        .await;
    let mut keys: Vec<_> = f.body["items"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["id", "name", "variants"]);
    s.get("/api/v1/products?fields=name,colour", &o.token)
        .await
        .assert_problem(400, "unknown_field");
    // Options and images belong to the detail: a list item has none to
    // select, the detail selects them.
    for field in ["options", "images"] {
        s.get(&format!("/api/v1/products?fields=name,{field}"), &o.token)
            .await
            .assert_problem(400, "unknown_field");
    }
    let id = f.body["items"][0]["id"].as_str().unwrap().to_owned();
    let detail = s
        .get(
            &format!("/api/v1/products/{id}?fields=options,images"),
            &o.token,
        )
        .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let mut keys: Vec<_> = detail.body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, vec!["id", "images", "options"]);
}

#[tokio::test]
async fn a_product_page_runs_the_same_statements_for_1_and_100_products() {
    let s = start().await;
    let o = s.signup("Bounded").await;
    let body = |i: usize| json!({"name": format!("P{i}"), "variants": (0..5).map(|j| json!({"sku": format!("P{i}-{j}"), "price": 100 + j})).collect::<Vec<_>>()});
    assert_eq!(
        s.post("/api/v1/products", &o.token, body(0)).await.status,
        201
    );
    let one = s
        .get("/api/v1/products?include=variants&limit=100", &o.token)
        .await;
    let detail_one = s
        .get(
            &format!(
                "/api/v1/products/{}",
                one.body["items"][0]["id"].as_str().unwrap()
            ),
            &o.token,
        )
        .await;
    for i in 1..100 {
        let r = s.post("/api/v1/products", &o.token, body(i)).await;
        assert_eq!(r.status, 201);
    }
    let hundred = s
        .get("/api/v1/products?include=variants&limit=100", &o.token)
        .await;
    assert_eq!(hundred.body["items"].as_array().unwrap().len(), 100);
    assert_eq!(
        hundred.body["items"][99]["variants"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(one.statements(), hundred.statements());
    assert!(
        hundred.statements() <= 3,
        "{} statements",
        hundred.statements()
    );
    let without = s.get("/api/v1/products?limit=100", &o.token).await;
    assert_eq!(without.statements(), 1);
    let detail = s
        .get(
            &format!(
                "/api/v1/products/{}",
                hundred.body["items"][0]["id"].as_str().unwrap()
            ),
            &o.token,
        )
        .await;
    assert_eq!(detail.statements(), detail_one.statements());
    assert!(detail.statements() <= 3);
}

#[tokio::test]
async fn creating_a_product_runs_the_same_statements_for_1_and_50_variants() {
    let s = start().await;
    let o = s.signup("Writes").await;
    let body = |n: usize, tag: &str| {
        json!({"name": "P", "variants": (0..n).map(|j| json!({"sku": format!("{tag}-{j}"), "price": 100, "stock": 3})).collect::<Vec<_>>(),
                                            "images": [{"url": "https://x.example/1.png"}]})
    };
    let one = s.post("/api/v1/products", &o.token, body(1, "a")).await;
    let fifty = s.post("/api/v1/products", &o.token, body(50, "b")).await;
    assert_eq!(fifty.status, 201);
    assert_eq!(one.statements(), fifty.statements());
}

#[tokio::test]
async fn bad_products_get_422_naming_each_field_and_nothing_is_written() {
    let s = start().await;
    let o = s.signup("Bad").await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"name": "P", "variants": []}), vec!["variants"]),
        (
            json!({"name": "", "variants": [{"sku": "A", "price": 1}]}),
            vec!["name"],
        ),
        (
            json!({"name": "x".repeat(100_000), "variants": [{"sku": "A", "price": 1}]}),
            vec!["name"],
        ),
        (
            json!({"name": "bell\u{0007}", "variants": [{"sku": "A", "price": 1}]}),
            vec!["name"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": -1}]}),
            vec!["variants[0].price"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1, "cost": -5}]}),
            vec!["variants[0].cost"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1, "stock": -5}]}),
            vec!["variants[0].stock"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1, "reorder_level": -1}]}),
            vec!["variants[0].reorder_level"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1}, {"sku": "A", "price": 2}]}),
            vec!["variants[1].sku"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "", "price": 1}]}),
            vec!["variants[0].sku"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1, "tiers": [{"min_quantity": 1, "price": 1}]}]}),
            vec!["variants[0].tiers[0].min_quantity"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1, "tiers": [{"min_quantity": 3, "price": 1}, {"min_quantity": 3, "price": 2}]}]}),
            vec!["variants[0].tiers[1].min_quantity"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1, "option_values": {"Size": "XL"}}], "options": [{"name": "Size", "values": ["S"]}]}),
            vec!["variants[0].option_values"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1}], "min_margin_bp": 20000}),
            vec!["min_margin_bp"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1}], "images": [{"url": ""}]}),
            vec!["images[0].url"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": 1.5}]}),
            vec!["variants[0].price"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A", "price": "1"}]}),
            vec!["variants[0].price"],
        ),
        (json!({"name": "P"}), vec!["variants"]),
        (
            json!({"variants": [{"sku": "A", "price": 1}]}),
            vec!["name"],
        ),
        (
            json!({"name": "P", "variants": [{"sku": "A"}]}),
            vec!["variants[0].price"],
        ),
        (
            json!({"name": "P", "variants": [{"price": 1}]}),
            vec!["variants[0].sku"],
        ),
        (
            json!({"name": "P", "category_id": "nope", "variants": [{"sku": "A", "price": 1}]}),
            vec!["category_id"],
        ),
    ];
    for (body, fields) in cases {
        let r = s.post("/api/v1/products", &o.token, body.clone()).await;
        r.assert_problem(422, "validation_failed");
        let got = r.error_fields();
        for f in &fields {
            assert!(got.iter().any(|g| g == f), "{f} not in {got:?} for {body}");
        }
    }
    assert_eq!(product_count(&s, &o.token).await, 0, "nothing was written");
    assert!(
        s.get("/api/v1/inventory", &o.token).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn skus_are_unique_per_tenant_and_a_clash_writes_nothing() {
    let s = start().await;
    let o = s.signup("Sku").await;
    let other = s.signup("Sku Other").await;
    assert_eq!(
        s.post("/api/v1/products", &o.token, shirt("X"))
            .await
            .status,
        201
    );
    let clash = json!({"name": "Clash", "variants": [{"sku": "NEW-1", "price": 1, "stock": 4}, {"sku": "X-M", "price": 1}]});
    s.post("/api/v1/products", &o.token, clash)
        .await
        .assert_problem(409, "duplicate_sku");
    assert_eq!(
        product_count(&s, &o.token).await,
        1,
        "the clashing product was not written"
    );
    // NEW-1 is free: the failed request left no variant behind.
    let ok = s
        .post(
            "/api/v1/products",
            &o.token,
            json!({"name": "Ok", "variants": [{"sku": "NEW-1", "price": 1}]}),
        )
        .await;
    assert_eq!(ok.status, 201);
    // A deleted product's SKUs are free again.
    let gone = s
        .post(
            "/api/v1/products",
            &o.token,
            json!({"name": "Gone", "variants": [{"sku": "REUSE-1", "price": 1}]}),
        )
        .await;
    assert_eq!(
        s.delete(
            &format!("/api/v1/products/{}", gone.body["id"].as_str().unwrap()),
            &o.token
        )
        .await
        .status,
        204
    );
    assert_eq!(
        s.post(
            "/api/v1/products",
            &o.token,
            json!({"name": "Back", "variants": [{"sku": "REUSE-1", "price": 1}]})
        )
        .await
        .status,
        201
    );
    // Another tenant may use the same SKU.
    assert_eq!(
        s.post("/api/v1/products", &other.token, shirt("X"))
            .await
            .status,
        201
    );
    // Adding or renaming a variant onto a taken SKU is a 409 too.
    let pid = ok.body["id"].as_str().unwrap();
    s.post(
        &format!("/api/v1/products/{pid}/variants"),
        &o.token,
        json!({"sku": "X-S", "price": 5}),
    )
    .await
    .assert_problem(409, "duplicate_sku");
    let vid = ok.body["variants"][0]["id"].as_str().unwrap();
    s.patch(
        &format!("/api/v1/variants/{vid}"),
        &o.token,
        json!({"sku": "X-L"}),
    )
    .await
    .assert_problem(409, "duplicate_sku");
}

#[tokio::test]
async fn variants_are_added_read_and_patched_but_stock_cannot_be_patched() {
    let s = start().await;
    let o = s.signup("Variants").await;
    let p = s.post("/api/v1/products", &o.token, shirt("V")).await.body;
    let pid = p["id"].as_str().unwrap();
    let added = s
        .post(
            &format!("/api/v1/products/{pid}/variants"),
            &o.token,
            json!({"sku": "V-XL", "price": 2500, "stock": 7, "option_values": {"Size": "L"}}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["product_id"], pid);
    let vid = added.body["id"].as_str().unwrap();
    let got = s.get(&format!("/api/v1/variants/{vid}"), &o.token).await;
    assert_eq!(got.body["sku"], "V-XL");
    assert_eq!(got.body["stock"], 7);
    let detail = s.get(&format!("/api/v1/products/{pid}"), &o.token).await;
    assert_eq!(
        detail.body["variants"][3]["sku"], "V-XL",
        "appended in order"
    );
    assert_eq!(detail.body["stock_total"], 17);

    let patched = s
        .patch(&format!("/api/v1/variants/{vid}"), &o.token, json!({"price": 2400, "cost": 1000, "active": false, "tiers": [{"min_quantity": 5, "price": 2300}]}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        (
            patched.body["price"].as_i64(),
            patched.body["cost"].as_i64()
        ),
        (Some(2400), Some(1000))
    );
    assert_eq!(patched.body["active"], false);
    assert_eq!(patched.body["tiers"][0]["price"], 2300);
    assert_eq!(patched.body["stock"], 7);
    let r = s
        .patch(
            &format!("/api/v1/variants/{vid}"),
            &o.token,
            json!({"stock": 100}),
        )
        .await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.error_fields(), vec!["stock"]);
    s.patch(
        &format!("/api/v1/variants/{vid}"),
        &o.token,
        json!({"price": -1}),
    )
    .await
    .assert_problem(422, "validation_failed");
    s.patch(
        &format!("/api/v1/variants/{vid}"),
        &o.token,
        json!({"option_values": {"Fabric": "Silk"}}),
    )
    .await
    .assert_problem(422, "validation_failed");
    assert_eq!(
        s.get(&format!("/api/v1/variants/{vid}"), &o.token)
            .await
            .body["stock"],
        7
    );
    s.post(
        &format!("/api/v1/products/{pid}/variants"),
        &o.token,
        json!({"sku": "V-BAD", "price": -3}),
    )
    .await
    .assert_problem(422, "validation_failed");
    s.get("/api/v1/variants/nope", &o.token)
        .await
        .assert_problem(404, "not_found");
    s.post(
        "/api/v1/products/nope/variants",
        &o.token,
        json!({"sku": "Z", "price": 1}),
    )
    .await
    .assert_problem(404, "not_found");
}

#[tokio::test]
async fn products_are_patched_and_deleted_products_vanish() {
    let s = start().await;
    let o = s.signup("Patch").await;
    let cat = s
        .post("/api/v1/categories", &o.token, json!({"name": "C"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = s.post("/api/v1/products", &o.token, shirt("P")).await.body;
    let pid = p["id"].as_str().unwrap();
    let r = s
        .patch(&format!("/api/v1/products/{pid}"), &o.token, json!({"name": "Tee", "description": null, "category_id": cat, "active": false, "min_margin_bp": 100, "images": [{"url": "https://x.example/new.png"}]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "Tee");
    assert_eq!(r.body["description"], Value::Null);
    assert_eq!(r.body["category_id"], cat.as_str());
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["images"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["variants"].as_array().unwrap().len(), 3);
    s.patch(
        &format!("/api/v1/products/{pid}"),
        &o.token,
        json!({"category_id": "nope"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    s.patch(
        &format!("/api/v1/products/{pid}"),
        &o.token,
        json!({"name": ""}),
    )
    .await
    .assert_problem(422, "validation_failed");
    s.patch("/api/v1/products/nope", &o.token, json!({"name": 5}))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        s.get(&format!("/api/v1/products/{pid}"), &o.token)
            .await
            .body["name"],
        "Tee"
    );

    let vid = p["variants"][0]["id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/api/v1/products/{pid}"), &o.token)
            .await
            .status,
        204
    );
    s.get(&format!("/api/v1/products/{pid}"), &o.token)
        .await
        .assert_problem(404, "not_found");
    s.delete(&format!("/api/v1/products/{pid}"), &o.token)
        .await
        .assert_problem(404, "not_found");
    s.get(&format!("/api/v1/variants/{vid}"), &o.token)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(product_count(&s, &o.token).await, 0);
    assert!(
        s.get("/api/v1/inventory", &o.token).await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn other_tenants_catalog_is_404_everywhere() {
    let s = start().await;
    let a = s.signup("A").await;
    let b = s.signup("B").await;
    let p = s.post("/api/v1/products", &a.token, shirt("A")).await.body;
    let pid = p["id"].as_str().unwrap();
    let vid = p["variants"][0]["id"].as_str().unwrap();
    s.get(&format!("/api/v1/products/{pid}"), &b.token)
        .await
        .assert_problem(404, "not_found");
    s.patch(
        &format!("/api/v1/products/{pid}"),
        &b.token,
        json!({"name": "mine"}),
    )
    .await
    .assert_problem(404, "not_found");
    s.delete(&format!("/api/v1/products/{pid}"), &b.token)
        .await
        .assert_problem(404, "not_found");
    s.post(
        &format!("/api/v1/products/{pid}/variants"),
        &b.token,
        json!({"sku": "Q", "price": 1}),
    )
    .await
    .assert_problem(404, "not_found");
    s.get(&format!("/api/v1/variants/{vid}"), &b.token)
        .await
        .assert_problem(404, "not_found");
    s.patch(
        &format!("/api/v1/variants/{vid}"),
        &b.token,
        json!({"price": 1}),
    )
    .await
    .assert_problem(404, "not_found");
    s.get(&format!("/api/v1/variants/{vid}/movements"), &b.token)
        .await
        .assert_problem(404, "not_found");
    s.post(
        &format!("/api/v1/variants/{vid}/stock-adjustments"),
        &b.token,
        json!({"delta": 5, "reason": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(product_count(&s, &b.token).await, 0);
    // Nothing changed for A.
    assert_eq!(
        s.get(&format!("/api/v1/variants/{vid}"), &a.token)
            .await
            .body["stock"],
        10
    );
}

#[tokio::test]
async fn warehouse_writes_the_catalog_sales_and_viewer_only_read() {
    let s = start().await;
    let o = s.signup("Roles").await;
    let warehouse = s.user_with_role(&o, "warehouse").await;
    let sales = s.user_with_role(&o, "sales").await;
    let viewer = s.user_with_role(&o, "viewer").await;
    let p = s
        .post("/api/v1/products", &warehouse.token, shirt("W"))
        .await;
    assert_eq!(p.status, 201);
    let pid = p.body["id"].as_str().unwrap();
    let vid = p.body["variants"][0]["id"].as_str().unwrap();
    assert_eq!(
        s.post("/api/v1/categories", &warehouse.token, json!({"name": "C"}))
            .await
            .status,
        201
    );
    assert_eq!(
        s.post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            &warehouse.token,
            json!({"delta": 1, "reason": "count"})
        )
        .await
        .status,
        200
    );
    for who in [&sales, &viewer] {
        s.post("/api/v1/products", &who.token, shirt("Z"))
            .await
            .assert_problem(403, "forbidden");
        s.post("/api/v1/categories", &who.token, json!({"name": "C"}))
            .await
            .assert_problem(403, "forbidden");
        s.patch(
            &format!("/api/v1/products/{pid}"),
            &who.token,
            json!({"name": "x"}),
        )
        .await
        .assert_problem(403, "forbidden");
        s.delete(&format!("/api/v1/products/{pid}"), &who.token)
            .await
            .assert_problem(403, "forbidden");
        s.post(
            &format!("/api/v1/products/{pid}/variants"),
            &who.token,
            json!({"sku": "Q", "price": 1}),
        )
        .await
        .assert_problem(403, "forbidden");
        s.patch(
            &format!("/api/v1/variants/{vid}"),
            &who.token,
            json!({"price": 1}),
        )
        .await
        .assert_problem(403, "forbidden");
        s.post(
            &format!("/api/v1/variants/{vid}/stock-adjustments"),
            &who.token,
            json!({"delta": 1, "reason": "x"}),
        )
        .await
        .assert_problem(403, "forbidden");
        assert_eq!(
            s.get(&format!("/api/v1/products/{pid}"), &who.token)
                .await
                .status,
            200
        );
        assert_eq!(s.get("/api/v1/products", &who.token).await.status, 200);
        assert_eq!(
            s.get(&format!("/api/v1/variants/{vid}"), &who.token)
                .await
                .status,
            200
        );
        assert_eq!(
            s.get("/api/v1/inventory?low_stock=true", &who.token)
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn names_with_non_ascii_letters_are_found() {
    let s = start().await;
    let o = s.signup("Unicode").await;
    for (name, sku) in [
        ("Été Ölkanne", "U1"),
        ("Plain Jug", "U2"),
        ("İstanbul rug", "U3"),
        ("ᲐᲑᲒ georgian", "U4"),
    ] {
        let r = s
            .post(
                "/api/v1/products",
                &o.token,
                json!({"name": name, "variants": [{"sku": sku, "price": 1}]}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let names = |r: Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Needles of any length, in any case: "Ét", "ÖLK", "ölkanne", "éTÉ",
    // "öl", "é".
    for q in [
        "%C3%89t",
        "%C3%96LK",
        "%C3%B6lkanne",
        "%C3%A9T%C3%89",
        "%C3%B6l",
        "%C3%A9",
    ] {
        assert_eq!(
            names(s.get(&format!("/api/v1/products?q={q}"), &o.token).await),
            vec!["Été Ölkanne"],
            "q={q}"
        );
    }
    // Letters whose folding FTS5 and Rust disagree on: found as typed, and
    // (Georgian) in the other case too, on both backends.
    for (q, want) in [
        ("%C4%B0stanbul", "İstanbul rug"),
        ("%C4%B0stanbul%20rug", "İstanbul rug"),
        ("%E1%B2%90%E1%B2%91%E1%B2%92", "ᲐᲑᲒ georgian"),
        ("%E1%83%90%E1%83%91%E1%83%92", "ᲐᲑᲒ georgian"),
    ] {
        assert_eq!(
            names(s.get(&format!("/api/v1/products?q={q}"), &o.token).await),
            vec![want],
            "q={q}"
        );
    }
}

/// A missing product or variant outranks a bad body; an existing one
/// answers for its body.
#[tokio::test]
async fn a_missing_product_or_variant_outranks_a_bad_body() {
    let s = start().await;
    let o = s.signup("Outranks").await;
    let p = s.post("/api/v1/products", &o.token, shirt("O")).await.body;
    let pid = p["id"].as_str().unwrap();
    let vid = p["variants"][0]["id"].as_str().unwrap();
    s.post(
        "/api/v1/products/nope/variants",
        &o.token,
        json!({"sku": 5}),
    )
    .await
    .assert_problem(404, "not_found");
    let r = s
        .post(
            &format!("/api/v1/products/{pid}/variants"),
            &o.token,
            json!({"sku": 5}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    s.patch("/api/v1/variants/nope", &o.token, json!({"price": "x"}))
        .await
        .assert_problem(404, "not_found");
    let r = s
        .patch(
            &format!("/api/v1/variants/{vid}"),
            &o.token,
            json!({"price": "x"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = s
        .patch(
            &format!("/api/v1/products/{pid}"),
            &o.token,
            json!({"name": 5}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
}

/// A product whose stored options do not parse is corrupt data: reading it
/// or adding a variant to it is a 500, not a product without options.
#[tokio::test]
async fn a_product_with_corrupt_stored_options_is_an_internal_error() {
    let s = start().await;
    let o = s.signup("Corrupt options").await;
    let p = s.post("/api/v1/products", &o.token, shirt("C")).await.body;
    let pid = p["id"].as_str().unwrap();
    let pool = s.raw_database().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE products SET options = 'Size: S, M' WHERE id = '{pid}'"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    s.get(&format!("/api/v1/products/{pid}"), &o.token)
        .await
        .assert_problem(500, "internal");
    s.post(
        &format!("/api/v1/products/{pid}/variants"),
        &o.token,
        json!({"sku": "C-XL", "price": 1, "option_values": {"Size": "S"}}),
    )
    .await
    .assert_problem(500, "internal");
    let listed = s.get("/api/v1/products", &o.token).await;
    assert_eq!(
        listed.status, 200,
        "lists carry no options: {}",
        listed.body
    );
}
