//! The back office over HTTP, as a browser without JavaScript uses it:
//! cookies, forms, redirects. Every change is checked through the API, so
//! the pages are held to the same rules and the same data.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{self, Session, TestServer};

/// A browser: its own cookie jar, no redirects followed (the tests look at
/// each 303).
struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the first form on the page.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .unwrap_or_else(|| panic!("no CSRF field on the page:\n{}", self.body));
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').expect("closing quote")].to_owned()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    #[track_caller]
    fn assert_redirect(&self, to: &str) {
        assert_eq!(
            self.status, 303,
            "expected a redirect to {to}: {}",
            self.body
        );
        assert!(
            self.header("location").starts_with(to),
            "redirect to {:?}, expected {to}",
            self.header("location")
        );
    }
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        common::http_client();
        Browser {
            base: server.base.clone(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        };
        for cookie in page.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or("");
            let (name, value) = pair.split_once('=').expect("name=value");
            if cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Posts a form with the CSRF token of the page at `from`.
    async fn submit(&mut self, from: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(from).await.csrf();
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    async fn sign_in(server: &TestServer, email: &str, password: &str) -> Browser {
        let mut browser = Browser::new(server);
        let form = browser.get("/admin/login").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let token = form.csrf();
        let signed = browser
            .post(
                "/admin/login",
                &[("csrf", &token), ("email", email), ("password", password)],
            )
            .await;
        signed.assert_redirect("/admin");
        browser
    }
}

async fn owner_browser(server: &TestServer, company: &str) -> (Session, Browser) {
    let owner = server.signup(company).await;
    let browser = Browser::sign_in(server, &owner.email, "correct horse").await;
    (owner, browser)
}

async fn browser_with_role(server: &TestServer, owner: &Session, role: &str) -> Browser {
    let user = server.user_with_role(owner, role).await;
    Browser::sign_in(server, &user.email, "password-123").await
}

/// A product with two variants (stock 10 each) through the API.
async fn product(server: &TestServer, owner: &Session) -> Value {
    let sku = uuid::Uuid::now_v7().simple().to_string();
    let r = server
        .post(
            "/api/v1/products",
            &owner.token,
            json!({"name": "Hoodie", "variants": [
                {"sku": format!("H-S-{sku}"), "price": 1999, "cost": 800, "stock": 10},
                {"sku": format!("H-M-{sku}"), "price": 2199, "cost": 900, "stock": 10}
            ]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

async fn customer(server: &TestServer, owner: &Session, name: &str) -> String {
    let r = server
        .post("/api/v1/customers", &owner.token, json!({"name": name}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

const PAGES: [&str; 11] = [
    "/admin",
    "/admin/fragments/dashboard",
    "/admin/customers",
    "/admin/customers/new",
    "/admin/products",
    "/admin/products/new",
    "/admin/quotations",
    "/admin/quotations/new",
    "/admin/orders",
    "/admin/reports",
    "/admin/settings",
];

#[tokio::test]
async fn signing_in_gives_a_strict_http_only_cookie_and_every_page_is_served() {
    let server = common::start().await;
    let owner = server.signup("Back Office").await;
    let mut anonymous = Browser::new(&server);
    anonymous
        .get("/admin")
        .await
        .assert_redirect("/admin/login");
    anonymous
        .get("/admin/customers")
        .await
        .assert_redirect("/admin/login");

    // A wrong password: the API's refusal, no session.
    let form = anonymous.get("/admin/login").await;
    let token = form.csrf();
    let wrong = anonymous
        .post(
            "/admin/login",
            &[
                ("csrf", &token),
                ("email", &owner.email),
                ("password", "not it"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("The e-mail or the password is wrong."));
    assert!(!anonymous.cookies.contains_key("brisk_admin"));
    // A login form's token is good for its own browser only.
    let mut other = Browser::new(&server);
    let stolen = other
        .post(
            "/admin/login",
            &[
                ("csrf", &token),
                ("email", &owner.email),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(stolen.status, 403, "{}", stolen.body);

    let mut browser = Browser::new(&server);
    let token = browser.get("/admin/login").await.csrf();
    let signed = browser
        .post(
            "/admin/login",
            &[
                ("csrf", &token),
                ("email", &owner.email),
                ("password", "correct horse"),
            ],
        )
        .await;
    signed.assert_redirect("/admin");
    let session_cookie = signed
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("brisk_admin="))
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=2592000",
    ] {
        assert!(
            session_cookie.contains(attribute),
            "{attribute} in {session_cookie}"
        );
    }
    assert!(
        !session_cookie.contains("Secure"),
        "plain HTTP: {session_cookie}"
    );
    // Already signed in: the login page sends to the dashboard.
    browser.get("/admin/login").await.assert_redirect("/admin");

    for path in PAGES {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert_eq!(
            page.header("content-type"),
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(page.header("cache-control"), "no-store", "{path}");
        assert!(
            page.header("content-security-policy")
                .contains("default-src 'self'"),
            "{path}"
        );
        for outside in [
            "src=\"http",
            "href=\"http",
            "src=\"//",
            "href=\"//",
            "url(http",
        ] {
            assert!(
                !page.body.contains(outside),
                "{path} loads from another host: {outside}"
            );
        }
        assert!(
            page.body.len() < 60_000,
            "{path} is {} bytes",
            page.body.len()
        );
    }
    for asset in ["/admin/assets/admin.css", "/admin/assets/admin.js"] {
        let page = browser.get(asset).await;
        assert_eq!(page.status, 200, "{asset}");
        assert!(
            !page.body.contains("http://") && !page.body.contains("https://"),
            "{asset}"
        );
    }
    assert_eq!(browser.get("/admin/no-such-page").await.status, 404);

    // Behind a proxy that says the browser came over https: Secure.
    let mut secure = Browser::new(&server);
    let token = secure.get("/admin/login").await.csrf();
    let request = secure
        .client
        .post(format!("{}/admin/login", secure.base))
        .header("x-forwarded-proto", "https")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("csrf", token.as_str()),
                    ("email", &owner.email),
                    ("password", "correct horse"),
                ])
                .finish(),
        );
    let page = secure.send(request).await;
    page.assert_redirect("/admin");
    assert!(
        page.set_cookies()
            .iter()
            .any(|c| c.starts_with("brisk_admin=") && c.contains("; Secure")),
        "{:?}",
        page.set_cookies()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_a_403_that_changes_nothing() {
    let server = common::start().await;
    let (owner, mut browser) = owner_browser(&server, "Csrf Co").await;
    let (_, mut other) = owner_browser(&server, "Other Co").await;
    let other_token = other.get("/admin/customers/new").await.csrf();
    for token in [None, Some("forged"), Some(other_token.as_str())] {
        let mut fields = vec![("name", "Mallory")];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let page = browser.post("/admin/customers", &fields).await;
        assert_eq!(page.status, 403, "token {token:?}: {}", page.body);
    }
    // A session's own token from another session (stolen page) is refused too.
    let logout = browser
        .post("/admin/logout", &[("csrf", other_token.as_str())])
        .await;
    assert_eq!(logout.status, 403);
    let customers = server.get("/api/v1/customers", &owner.token).await;
    assert_eq!(
        customers.body["items"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    // Still signed in: the refused logout changed nothing either.
    assert_eq!(browser.get("/admin").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn the_sales_flow_runs_through_the_forms() {
    let server = common::start().await;
    let (owner, mut browser) = owner_browser(&server, "Flow Co").await;

    // A product with two variants and a tier.
    let sku = uuid::Uuid::now_v7().simple().to_string();
    let (sku_s, sku_m) = (format!("HS-{sku}"), format!("HM-{sku}"));
    let created = browser
        .submit(
            "/admin/products/new",
            "/admin/products",
            &[
                ("name", "Flow hoodie"),
                ("option0_name", "Size"),
                ("option0_values", "S, M"),
                ("v0_sku", &sku_s),
                ("v0_price", "19.99"),
                ("v0_cost", "8"),
                ("v0_stock", "20"),
                ("v0_option0", "S"),
                ("v0_tier_min", "10"),
                ("v0_tier_price", "17.50"),
                ("v1_sku", &sku_m),
                ("v1_price", "21.99"),
                ("v1_stock", "5"),
                ("v1_option0", "M"),
            ],
        )
        .await;
    created.assert_redirect("/admin/products/");
    let product_path = created.header("location").to_owned();
    let product_id = product_path.rsplit('/').next().unwrap().to_owned();
    let api_product = server
        .get(&format!("/api/v1/products/{product_id}"), &owner.token)
        .await;
    assert_eq!(api_product.status, 200);
    let variants = api_product.body["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 2);
    let small = variants
        .iter()
        .find(|v| v["sku"] == sku_s.as_str())
        .unwrap();
    assert_eq!(small["price"], 1999);
    assert_eq!(small["tiers"][0]["min_quantity"], 10);
    assert_eq!(small["tiers"][0]["price"], 1750);
    let small_id = small["id"].as_str().unwrap().to_owned();
    let page = browser.get(&product_path).await;
    assert!(
        page.body.contains("$19.99") && page.body.contains("10+ at $17.50"),
        "{}",
        page.body
    );

    // A customer, and a wallet credit in dollars.
    let created = browser
        .submit(
            "/admin/customers/new",
            "/admin/customers",
            &[
                ("name", "Ada Flow"),
                ("email", "ada@flow.example"),
                ("tags", "vip, north"),
            ],
        )
        .await;
    created.assert_redirect("/admin/customers/");
    let customer_path = created.header("location").to_owned();
    let customer_id = customer_path.rsplit('/').next().unwrap().to_owned();
    let credited = browser
        .submit(
            &customer_path,
            &format!("{customer_path}/wallet/credits"),
            &[("amount", "1,000.50"), ("reference", "opening")],
        )
        .await;
    credited.assert_redirect(&customer_path);
    let wallet = server
        .get(
            &format!("/api/v1/customers/{customer_id}/wallet"),
            &owner.token,
        )
        .await;
    assert_eq!(wallet.body["balance"], 100_050);
    let page = browser.get(&customer_path).await;
    assert!(page.body.contains("$1,000.50"), "{}", page.body);

    // A quotation: preview (tier price at 10), create, send, accept, convert.
    let lines = [
        ("customer_id", customer_id.as_str()),
        ("variant_id", small_id.as_str()),
        ("quantity", "10"),
        ("variant_id", ""),
        ("quantity", "1"),
    ];
    let token = browser.get("/admin/quotations/new").await.csrf();
    let mut preview_fields = vec![("csrf", token.as_str())];
    preview_fields.extend_from_slice(&lines);
    let preview = browser
        .post("/admin/quotations/preview", &preview_fields)
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("$175.00"),
        "the tier's price: {}",
        preview.body
    );
    let mut no_script = preview_fields.clone();
    no_script.push(("intent", "preview"));
    let preview = browser.post("/admin/quotations", &no_script).await;
    assert_eq!(preview.status, 200);
    assert!(preview.body.contains("$175.00"), "{}", preview.body);
    let mut create = preview_fields.clone();
    create.push(("intent", "create"));
    let created = browser.post("/admin/quotations", &create).await;
    created.assert_redirect("/admin/quotations/");
    let quotation_path = created.header("location").to_owned();
    for action in ["send", "accept"] {
        let moved = browser
            .submit(&quotation_path, &format!("{quotation_path}/{action}"), &[])
            .await;
        moved.assert_redirect(&quotation_path);
    }
    let converted = browser
        .submit(
            &quotation_path,
            &format!("{quotation_path}/convert"),
            &[("payment_method", "invoice")],
        )
        .await;
    converted.assert_redirect("/admin/orders/");
    let order_path = converted.header("location").to_owned();
    let order_id = order_path.rsplit('/').next().unwrap().to_owned();
    let page = browser.get(&order_path).await;
    assert!(
        page.body.contains("$175.00") && page.body.contains("Mark paid"),
        "{}",
        page.body
    );

    // Pay and ship it.
    for status in ["paid", "shipped"] {
        let moved = browser
            .submit(
                &order_path,
                &format!("{order_path}/status"),
                &[("status", status)],
            )
            .await;
        moved.assert_redirect(&order_path);
    }
    let order = server
        .get(&format!("/api/v1/orders/{order_id}"), &owner.token)
        .await;
    assert_eq!(order.body["status"], "shipped");
    assert_eq!(order.body["total"], 17_500);
    let stock = server
        .get(&format!("/api/v1/variants/{small_id}"), &owner.token)
        .await;
    assert_eq!(stock.body["stock"], 10, "20 less the 10 ordered");

    // The dashboard and the report show it.
    let fragment = browser.get("/admin/fragments/dashboard").await;
    assert!(fragment.body.contains("$175.00"), "{}", fragment.body);
    let csv = browser.get("/admin/reports/sales.csv?group_by=month").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), "text/csv; charset=utf-8");
    assert!(csv.header("content-disposition").starts_with("attachment"));
    assert!(
        csv.body
            .starts_with("period,orders,revenue (USD),cost (USD),margin (USD)\r\n")
    );
    assert!(
        csv.body.contains(",1,175.00,80.00,95.00\r\n"),
        "{}",
        csv.body
    );
    assert!(
        csv.body.ends_with("total,1,175.00,80.00,95.00\r\n"),
        "{}",
        csv.body
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refused_form_shows_the_apis_messages_and_changes_nothing() {
    let server = common::start().await;
    let (owner, mut browser) = owner_browser(&server, "Refusals").await;
    let made = product(&server, &owner).await;
    let variant = made["variants"][0]["id"].as_str().unwrap().to_owned();
    let product_id = made["id"].as_str().unwrap().to_owned();

    let page = browser
        .submit(
            "/admin/customers/new",
            "/admin/customers",
            &[("email", "not an e-mail")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(
        page.body.contains("is required"),
        "the API's message for name: {}",
        page.body
    );
    assert!(page.body.contains("aria-invalid=\"true\""));
    assert!(
        page.body.contains("value=\"not an e-mail\""),
        "what was typed stays"
    );

    let product_path = format!("/admin/products/{product_id}");
    let page = browser
        .submit(
            &product_path,
            "/admin/variants/adjust",
            &[
                ("product_id", &product_id),
                ("variant_id", &variant),
                ("delta", "-11"),
                ("reason", "count"),
            ],
        )
        .await;
    assert_eq!(page.status, 409, "{}", page.body);
    let page = browser
        .submit(
            &product_path,
            "/admin/variants/adjust",
            &[
                ("product_id", &product_id),
                ("variant_id", &variant),
                ("delta", "0"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    let stock = server
        .get(&format!("/api/v1/variants/{variant}"), &owner.token)
        .await;
    assert_eq!(stock.body["stock"], 10, "unchanged");

    let customer_id = customer(&server, &owner, "Wally").await;
    let customer_path = format!("/admin/customers/{customer_id}");
    // Emptying the name on the edit form: the API's refusal, the name kept.
    let page = browser
        .submit(
            &customer_path,
            &customer_path,
            &[("name", ""), ("status", "active")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    let kept = server
        .get(&format!("/api/v1/customers/{customer_id}"), &owner.token)
        .await;
    assert_eq!(kept.body["name"], "Wally");
    for amount in ["abc", "1.999", "-5"] {
        let page = browser
            .submit(
                &customer_path,
                &format!("{customer_path}/wallet/credits"),
                &[("amount", amount)],
            )
            .await;
        assert_eq!(page.status, 422, "{amount}: {}", page.body);
    }
    let page = browser
        .submit(
            &customer_path,
            &format!("{customer_path}/wallet/credits"),
            &[("amount", "0")],
        )
        .await;
    assert_eq!(
        page.status, 422,
        "the API refuses a zero credit: {}",
        page.body
    );
    let wallet = server
        .get(
            &format!("/api/v1/customers/{customer_id}/wallet"),
            &owner.token,
        )
        .await;
    assert_eq!(wallet.body["balance"], 0);

    let page = browser
        .submit(
            "/admin/products/new",
            "/admin/products",
            &[
                ("name", "No price"),
                ("v0_sku", "NP-1"),
                ("v0_price", "1.2.3"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    let page = browser
        .submit(
            "/admin/products/new",
            "/admin/products",
            &[("name", ""), ("v0_sku", "NP-2"), ("v0_price", "5")],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.body);
    let products = server.get("/api/v1/products", &owner.token).await;
    assert_eq!(
        products.body["items"].as_array().unwrap().len(),
        1,
        "only the first product"
    );

    let page = browser
        .submit(
            "/admin/quotations/new",
            "/admin/quotations",
            &[("customer_id", &customer_id), ("intent", "create")],
        )
        .await;
    assert_eq!(page.status, 422, "a quotation without lines: {}", page.body);
    let page = browser.get("/admin/orders?from=not-a-date").await;
    assert!(page.status == 400 || page.status == 422, "{}", page.status);
    server.stop().await;
}

#[tokio::test]
async fn each_role_sees_only_its_actions_and_the_server_refuses_the_rest() {
    let server = common::start().await;
    let (owner, _) = owner_browser(&server, "Roles").await;
    let made = product(&server, &owner).await;
    let product_id = made["id"].as_str().unwrap().to_owned();
    let variant = made["variants"][0]["id"].as_str().unwrap().to_owned();
    let customer_id = customer(&server, &owner, "Role customer").await;
    let product_path = format!("/admin/products/{product_id}");
    let customer_path = format!("/admin/customers/{customer_id}");

    let mut viewer = browser_with_role(&server, &owner, "viewer").await;
    for (path, absent) in [
        ("/admin/customers", "New customer"),
        ("/admin/products", "New product"),
        ("/admin/quotations", "New quotation"),
        (product_path.as_str(), "Adjust stock"),
        (product_path.as_str(), "Create a share link"),
        (customer_path.as_str(), "Credit the wallet"),
        (customer_path.as_str(), "Save changes"),
        ("/admin", "/admin/settings"),
        ("/admin", "/admin/reports"),
    ] {
        let page = viewer.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains(absent),
            "a viewer sees {absent:?} on {path}"
        );
    }
    assert_eq!(viewer.get("/admin/settings").await.status, 403);
    // A form posted anyway is refused by the API and changes nothing.
    let page = viewer
        .submit(
            "/admin/customers",
            "/admin/customers",
            &[("name", "Sneaky")],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);

    let mut sales = browser_with_role(&server, &owner, "sales").await;
    let page = sales.get(&product_path).await;
    assert!(
        !page.body.contains("Adjust stock"),
        "sales may not adjust stock"
    );
    assert!(page.body.contains("Create a share link"));
    let page = sales.get(&customer_path).await;
    assert!(page.body.contains("Credit the wallet"));
    let refused = sales
        .submit(
            &product_path,
            "/admin/variants/adjust",
            &[
                ("product_id", &product_id),
                ("variant_id", &variant),
                ("delta", "5"),
                ("reason", "sneak"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let stock = server
        .get(&format!("/api/v1/variants/{variant}"), &owner.token)
        .await;
    assert_eq!(stock.body["stock"], 10);
    assert_eq!(sales.get("/admin/settings").await.status, 403);
    assert_eq!(sales.get("/admin/reports").await.status, 200);

    let mut warehouse = browser_with_role(&server, &owner, "warehouse").await;
    let page = warehouse.get(&product_path).await;
    assert!(page.body.contains("Adjust stock"));
    let adjusted = warehouse
        .submit(
            &product_path,
            "/admin/variants/adjust",
            &[
                ("product_id", &product_id),
                ("variant_id", &variant),
                ("delta", "5"),
                ("reason", "delivery"),
            ],
        )
        .await;
    adjusted.assert_redirect(&product_path);
    let stock = server
        .get(&format!("/api/v1/variants/{variant}"), &owner.token)
        .await;
    assert_eq!(stock.body["stock"], 15);
    assert!(
        !warehouse
            .get(&customer_path)
            .await
            .body
            .contains("Credit the wallet")
    );
    assert_eq!(viewer.get("/admin/reports").await.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn another_tenants_ids_are_404_pages() {
    let server = common::start().await;
    let (theirs, _) = owner_browser(&server, "Theirs").await;
    let (_, mut mine) = owner_browser(&server, "Mine").await;
    let made = product(&server, &theirs).await;
    let customer_id = customer(&server, &theirs, "Not yours").await;
    let variant = made["variants"][0]["id"].as_str().unwrap();
    let order = server
        .post(
            "/api/v1/orders",
            &theirs.token,
            json!({"customer_id": customer_id, "payment_method": "invoice", "items": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.body);
    let quotation = server
        .post(
            "/api/v1/quotations",
            &theirs.token,
            json!({"customer_id": customer_id, "items": [{"variant_id": variant, "quantity": 1}]}),
        )
        .await;
    assert_eq!(quotation.status, 201, "{}", quotation.body);
    for path in [
        format!("/admin/products/{}", made["id"].as_str().unwrap()),
        format!("/admin/customers/{customer_id}"),
        format!("/admin/orders/{}", order.body["id"].as_str().unwrap()),
        format!(
            "/admin/quotations/{}",
            quotation.body["id"].as_str().unwrap()
        ),
        "/admin/orders/..%2F..%2Fapi%2Fv1%2Fme".to_owned(),
    ] {
        let page = mine.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    }
    // Nor can a form reach them.
    let customer_path = format!("/admin/customers/{customer_id}");
    let token = mine.get("/admin/customers/new").await.csrf();
    let page = mine
        .post(
            &format!("{customer_path}/wallet/credits"),
            &[("csrf", &token), ("amount", "5")],
        )
        .await;
    assert_eq!(page.status, 404, "{}", page.body);
    let wallet = server
        .get(
            &format!("/api/v1/customers/{customer_id}/wallet"),
            &theirs.token,
        )
        .await;
    assert_eq!(wallet.body["balance"], 0);
    server.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_and_logout_ends_the_login() {
    let server = common::start().await;
    let (owner, mut browser) = owner_browser(&server, "Renewal").await;
    let cookie = browser.cookies["brisk_admin"].clone();
    let mut parts = cookie.splitn(3, '~');
    let (id, refresh, _) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    // An access token past its time (signed with the test secret).
    let expired = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let claims = json!({"sub": owner.user_id, "tid": owner.tenant_id, "role": "owner", "iat": 1, "exp": 2});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"test-secret-for-brisk"),
        )
        .unwrap()
    };
    browser
        .cookies
        .insert("brisk_admin".into(), format!("{id}~{refresh}~{expired}"));
    let page = browser.get("/admin/customers").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let renewed = browser.cookies["brisk_admin"].clone();
    assert!(
        renewed.starts_with(&format!("{id}~")),
        "the session keeps its id"
    );
    assert!(!renewed.contains(refresh), "the refresh token was rotated");
    // The old refresh token was used once: presenting it again is refused.
    let reused = server
        .post_anon("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(reused.status, 401);
    // That revoked the family, the rotated token with it: the browser is
    // sent to sign in again.
    browser.cookies.insert("brisk_admin".into(), {
        let mut p = renewed.splitn(3, '~');
        let (i, r) = (p.next().unwrap(), p.next().unwrap());
        format!("{i}~{r}~{expired}")
    });
    browser.get("/admin").await.assert_redirect("/admin/login");

    // Sign in again, then out.
    let mut browser = Browser::sign_in(&server, &owner.email, "correct horse").await;
    let refresh = browser.cookies["brisk_admin"]
        .split('~')
        .nth(1)
        .unwrap()
        .to_owned();
    let out = browser.submit("/admin/logout", "/admin/logout", &[]).await;
    out.assert_redirect("/admin/login");
    assert!(
        !browser.cookies.contains_key("brisk_admin"),
        "the cookie is gone"
    );
    let after = server
        .post_anon("/api/v1/auth/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(after.status, 401, "the login was ended");
    browser.get("/admin").await.assert_redirect("/admin/login");
    server.stop().await;
}

#[tokio::test]
async fn the_open_dashboard_sees_a_new_order_and_pages_cost_what_their_api_calls_cost() {
    let server = common::start().await;
    let (owner, mut browser) = owner_browser(&server, "Live").await;
    let made = product(&server, &owner).await;
    let customer_id = customer(&server, &owner, "Live customer").await;
    let before = browser.get("/admin/fragments/dashboard").await;
    assert_eq!(before.status, 200);
    let etag = before.header("etag").to_owned();
    assert!(
        !etag.is_empty(),
        "the fragment carries an ETag for the refresh"
    );
    let variant = made["variants"][1]["id"].as_str().unwrap();
    let order = server
        .post(
            "/api/v1/orders",
            &owner.token,
            json!({"customer_id": customer_id, "payment_method": "invoice", "items": [{"variant_id": variant, "quantity": 2}]}),
        )
        .await;
    assert_eq!(order.status, 201);
    // The API promises the dashboard within a second; allow a slow machine.
    let mut seen = false;
    for _ in 0..100 {
        let page = browser.get("/admin/fragments/dashboard").await;
        if page.body.contains("$43.98") {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the dashboard shows the order's $43.98");

    // A list page runs the statements of its one API call, no more.
    let _warm = browser.get("/admin/customers").await;
    let page_statements = browser
        .get("/admin/customers")
        .await
        .header("x-brisk-statements")
        .parse::<u64>()
        .unwrap();
    let api_statements = server
        .get("/api/v1/customers", &owner.token)
        .await
        .statements();
    assert!(
        page_statements <= api_statements,
        "page {page_statements} statements, API {api_statements}"
    );
    server.stop().await;
}

#[tokio::test]
async fn requests_racing_with_an_expired_access_token_share_one_renewal() {
    let server = common::start().await;
    let (owner, browser) = owner_browser(&server, "Racing").await;
    let cookie = browser.cookies["brisk_admin"].clone();
    let mut parts = cookie.splitn(3, '~');
    let (id, refresh) = (parts.next().unwrap(), parts.next().unwrap());
    let expired = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let claims = json!({"sub": owner.user_id, "tid": owner.tenant_id, "role": "owner", "iat": 1, "exp": 2});
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"test-secret-for-brisk"),
        )
        .unwrap()
    };
    let stale = format!("brisk_admin={id}~{refresh}~{expired}");
    // The dashboard's refresh and a click, and more, all at once.
    let requests = (0..8).map(|i| {
        let client = browser.client.clone();
        let url = format!(
            "{}{}",
            browser.base,
            if i % 2 == 0 {
                "/admin/fragments/dashboard"
            } else {
                "/admin/customers"
            }
        );
        let stale = stale.clone();
        tokio::spawn(async move {
            let response = client
                .get(url)
                .header("cookie", stale)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let cookie = response
                .headers()
                .get("set-cookie")
                .and_then(|v| v.to_str().ok())
                .map(|c| c.split(';').next().unwrap().to_owned());
            (status, cookie)
        })
    });
    let answers: Vec<(u16, Option<String>)> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let renewed: std::collections::BTreeSet<_> =
        answers.iter().filter_map(|(_, c)| c.clone()).collect();
    assert_eq!(renewed.len(), 1, "one renewal, shared: {renewed:?}");
    // The shared renewal is a live login.
    let mut browser = browser;
    let value = renewed.into_iter().next().unwrap();
    browser.cookies.insert(
        "brisk_admin".into(),
        value.trim_start_matches("brisk_admin=").to_owned(),
    );
    assert_eq!(browser.get("/admin").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_password_is_sent_as_typed_spaces_and_all() {
    let server = common::start().await;
    let owner = server.signup("Spaces").await;
    let email = format!("spaced-{}@example.com", uuid::Uuid::now_v7().simple());
    let r = server
        .post(
            "/api/v1/users",
            &owner.token,
            json!({"email": email, "name": "Spaced", "password": "  spaced out  ", "role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mut browser = Browser::new(&server);
    let token = browser.get("/admin/login").await.csrf();
    let trimmed = browser
        .post(
            "/admin/login",
            &[
                ("csrf", &token),
                ("email", &email),
                ("password", "spaced out"),
            ],
        )
        .await;
    assert_eq!(trimmed.status, 401, "the spaces are part of the password");
    Browser::sign_in(&server, &email, "  spaced out  ").await;
    server.stop().await;
}
