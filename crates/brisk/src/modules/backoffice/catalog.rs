//! `/admin/products`: the list with its filters, a new product with
//! options, variants and a tier per variant, and a product's page: its
//! variants with tiers and stock, a stock-adjustment form per variant, a
//! variant's movements, and the product's share links.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::api::{id_segment, with_query};
use super::session::{Form, Posted, Signed, see_other};
use super::view::{self, Errors, Nav};
use crate::platform::auth::Action;
use crate::platform::money::{minor_digits, parse_major};

/// Rows of variants on the new-product form (blank rows are left out).
const VARIANT_ROWS: usize = 4;
/// Options on the new-product form.
const OPTION_ROWS: usize = 2;

#[derive(Deserialize, Default)]
pub struct ListFilters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category_id: String,
    #[serde(default)]
    active: String,
    #[serde(default)]
    min_price: String,
    #[serde(default)]
    max_price: String,
    #[serde(default)]
    cursor: String,
}

/// A price typed in the tenant's currency as the API's minor units; as
/// typed when it does not read as an amount (the API then names it).
fn price_filter(signed: &Signed, typed: &str) -> String {
    match parse_major(typed, &signed.currency) {
        Some(minor) => minor.to_string(),
        None => typed.to_owned(),
    }
}

/// `GET /admin/products`.
pub async fn list(signed: Signed, Query(f): Query<ListFilters>) -> Response {
    let (min, max) = (
        price_filter(&signed, &f.min_price),
        price_filter(&signed, &f.max_price),
    );
    let reply = signed
        .get(&with_query(
            "/api/v1/products",
            &[
                ("q", f.q.as_str()),
                ("category_id", f.category_id.as_str()),
                ("active", f.active.as_str()),
                ("min_price", min.as_str()),
                ("max_price", max.as_str()),
                ("cursor", f.cursor.as_str()),
            ],
        ))
        .await;
    let errors = Errors::unless_ok(&reply);
    let categories = signed.get("/api/v1/categories?limit=100").await;
    let mut category_options: Vec<(String, String)> = vec![(String::new(), "Any category".into())];
    category_options.extend(
        categories
            .items()
            .iter()
            .map(|c| (view::text(&c["id"]), view::text(&c["name"]))),
    );
    let category_refs: Vec<(&str, &str)> = category_options
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let filters = [
        ("q", f.q.as_str()),
        ("category_id", f.category_id.as_str()),
        ("active", f.active.as_str()),
        ("min_price", f.min_price.as_str()),
        ("max_price", f.max_price.as_str()),
    ];
    let body = html! {
        @if signed.may(Action::WriteCatalog) {
            p.actions { a.button href="/admin/products/new" { "New product" } }
        }
        form.filters method="get" action="/admin/products" role="search" {
            (view::input("Name contains", "q", &f.q, "search", &errors))
            @if category_refs.len() > 1 {
                (view::select("Category", "category_id", &category_refs, &f.category_id, &errors))
            }
            (view::select("Active", "active", &[("", "Any"), ("true", "Active"), ("false", "Inactive")], &f.active, &errors))
            (view::input(&format!("Lowest price ({})", signed.currency), "min_price", &f.min_price, "text", &errors))
            (view::input(&format!("Highest price ({})", signed.currency), "max_price", &f.max_price, "text", &errors))
            button type="submit" { "Filter" }
        }
        (errors.summary())
        @if reply.ok() && reply.items().is_empty() {
            (view::empty("products match"))
        } @else if reply.ok() {
            table #products {
                thead { tr {
                    th scope="col" { "Product" } th scope="col" { "Active" } th.num scope="col" { "Price" }
                    th.num scope="col" { "Stock" } th.num scope="col" { "Variants" }
                } }
                tbody {
                    @for p in reply.items() {
                        tr {
                            td { a href=(format!("/admin/products/{}", view::text(&p["id"]))) { (view::text(&p["name"])) } }
                            td { (if p["active"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                            td.num { (price_range(&signed, p)) }
                            td.num { (view::text(&p["stock_total"])) }
                            td.num { (view::text(&p["variant_count"])) }
                        }
                    }
                }
            }
            (view::pager("/admin/products", &filters, &f.cursor, &reply))
        }
    };
    let status = if reply.ok() {
        StatusCode::OK
    } else {
        reply.status
    };
    signed.page(status, view::page(&signed, "Products", Nav::Products, body))
}

fn price_range(signed: &Signed, p: &Value) -> String {
    let (min, max) = (signed.money(&p["price_min"]), signed.money(&p["price_max"]));
    if min == max {
        min
    } else {
        format!("{min} – {max}")
    }
}

/// `GET /admin/products/new`.
pub async fn new_form(signed: Signed) -> Response {
    new_page(
        &signed,
        &Form::parse(b""),
        &Errors::default(),
        StatusCode::OK,
    )
}

fn new_page(signed: &Signed, typed: &Form, errors: &Errors, status: StatusCode) -> Response {
    let body = html! {
        @if !signed.may(Action::WriteCatalog) {
            p.error role="alert" { "Your role may not create products." }
        }
        form.card method="post" action="/admin/products" {
            (view::csrf(signed))
            (errors.summary())
            div.row {
                (view::input("Name", "name", typed.get("name"), "text", errors))
                (view::input("Least margin (basis points)", "min_margin_bp", typed.get("min_margin_bp"), "text", errors))
            }
            (view::input("Description", "description", typed.get("description"), "text", errors))
            @for i in 0..OPTION_ROWS {
                fieldset {
                    legend { "Option " (i + 1) " (for example Size: S, M, L)" }
                    div.row {
                        (view::field_with("Name", &format!("option{i}_name"), &format!("options[{i}].name"), typed.get(&format!("option{i}_name")), "text", errors))
                        (view::field_with("Values (comma-separated)", &format!("option{i}_values"), &format!("options[{i}].values"), typed.get(&format!("option{i}_values")), "text", errors))
                    }
                }
            }
            @for i in 0..VARIANT_ROWS {
                fieldset {
                    legend { "Variant " (i + 1) @if i > 0 { " (leave blank for none)" } }
                    div.row {
                        (variant_input("SKU", i, "sku", typed, errors))
                        (variant_input(&format!("Price ({})", signed.currency), i, "price", typed, errors))
                        (variant_input(&format!("Cost ({})", signed.currency), i, "cost", typed, errors))
                        (variant_input("Stock", i, "stock", typed, errors))
                        (variant_input("Reorder level", i, "reorder_level", typed, errors))
                    }
                    div.row {
                        @for o in 0..OPTION_ROWS {
                            (view::field_with(&format!("Option {} value", o + 1), &format!("v{i}_option{o}"), &format!("variants[{i}].option_values"), typed.get(&format!("v{i}_option{o}")), "text", errors))
                        }
                        (view::field_with("Tier: from quantity", &format!("v{i}_tier_min"), &format!("variants[{i}].tiers"), typed.get(&format!("v{i}_tier_min")), "text", errors))
                        (view::field_with(&format!("Tier: unit price ({})", signed.currency), &format!("v{i}_tier_price"), &format!("variants[{i}].tiers[0].price"), typed.get(&format!("v{i}_tier_price")), "text", errors))
                    }
                }
            }
            button type="submit" { "Create product" }
        }
    };
    signed.page(
        status,
        view::page(signed, "New product", Nav::Products, body),
    )
}

fn variant_input(label: &str, i: usize, name: &str, typed: &Form, errors: &Errors) -> Markup {
    let html_name = format!("v{i}_{name}");
    view::field_with(
        label,
        &html_name,
        &format!("variants[{i}].{name}"),
        typed.get(&html_name),
        "text",
        errors,
    )
}

/// A whole number when it reads as one; otherwise as typed, for the API to
/// name what is wrong with it.
fn number(typed: &str) -> Value {
    typed
        .parse::<i64>()
        .map_or_else(|_| json!(typed), |n| json!(n))
}

/// The create request from the form, or the field whose amount does not
/// read as money.
fn product_request(signed: &Signed, form: &Form) -> Result<Value, Errors> {
    let money = |field: &str, typed: &str| -> Result<Value, Errors> {
        parse_major(typed, &signed.currency)
            .map(|minor| json!(minor))
            .ok_or_else(|| {
                Errors::field(
                    field,
                    &format!(
                        "must be an amount like {}",
                        if minor_digits(&signed.currency) == 0 {
                            "1999"
                        } else {
                            "19.99"
                        }
                    ),
                )
            })
    };
    let mut body = Map::new();
    body.insert("name".into(), json!(form.get("name")));
    if !form.get("description").is_empty() {
        body.insert("description".into(), json!(form.get("description")));
    }
    if !form.get("min_margin_bp").is_empty() {
        body.insert("min_margin_bp".into(), number(form.get("min_margin_bp")));
    }
    let mut options = Vec::new();
    let mut option_names = Vec::new();
    for i in 0..OPTION_ROWS {
        let name = form.get(&format!("option{i}_name"));
        let values: Vec<&str> = form
            .get(&format!("option{i}_values"))
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if !name.is_empty() || !values.is_empty() {
            options.push(json!({"name": name, "values": values}));
        }
        option_names.push(name);
    }
    if !options.is_empty() {
        body.insert("options".into(), json!(options));
    }
    let mut variants = Vec::new();
    for i in 0..VARIANT_ROWS {
        let field = |name: &str| form.get(&format!("v{i}_{name}"));
        let row_is_blank = [
            "sku",
            "price",
            "cost",
            "stock",
            "reorder_level",
            "tier_min",
            "tier_price",
        ]
        .iter()
        .all(|name| field(name).is_empty());
        if row_is_blank && i > 0 {
            continue;
        }
        let n = variants.len();
        let mut variant = Map::new();
        variant.insert("sku".into(), json!(field("sku")));
        variant.insert(
            "price".into(),
            money(&format!("variants[{n}].price"), field("price"))?,
        );
        if !field("cost").is_empty() {
            variant.insert(
                "cost".into(),
                money(&format!("variants[{n}].cost"), field("cost"))?,
            );
        }
        for name in ["stock", "reorder_level"] {
            if !field(name).is_empty() {
                variant.insert(name.into(), number(field(name)));
            }
        }
        let mut option_values = Map::new();
        for (o, option) in option_names.iter().enumerate() {
            let value = field(&format!("option{o}"));
            if !option.is_empty() && !value.is_empty() {
                option_values.insert((*option).to_owned(), json!(value));
            }
        }
        if !option_values.is_empty() {
            variant.insert("option_values".into(), Value::Object(option_values));
        }
        if !field("tier_min").is_empty() || !field("tier_price").is_empty() {
            let price = money(
                &format!("variants[{n}].tiers[0].price"),
                field("tier_price"),
            )?;
            variant.insert(
                "tiers".into(),
                json!([{"min_quantity": number(field("tier_min")), "price": price}]),
            );
        }
        variants.push(Value::Object(variant));
    }
    body.insert("variants".into(), json!(variants));
    Ok(Value::Object(body))
}

/// `POST /admin/products`: `POST /api/v1/products`.
pub async fn create(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let request = match product_request(&signed, &form) {
        Ok(request) => request,
        Err(errors) => {
            return new_page(&signed, &form, &errors, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let reply = signed.post("/api/v1/products", &request).await;
    if reply.ok() {
        return signed.finish(see_other(&format!(
            "/admin/products/{}",
            view::text(&reply.body["id"])
        )));
    }
    new_page(&signed, &form, &Errors::from_reply(&reply), reply.status)
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    /// The variant whose movements are shown (the first by default).
    #[serde(default)]
    variant: String,
    #[serde(default)]
    cursor: String,
}

/// A refused form on a product's page: which, its fields as typed, the
/// API's messages.
enum Refused {
    None,
    Adjustment {
        variant: String,
        delta: String,
        reason: String,
        errors: Errors,
    },
    Share {
        expires_at: String,
        errors: Errors,
    },
}

/// `GET /admin/products/{id}`.
pub async fn detail(
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    detail_page(&signed, &id, &q, Refused::None, StatusCode::OK).await
}

async fn detail_page(
    signed: &Signed,
    id: &str,
    q: &DetailQuery,
    refused: Refused,
    status: StatusCode,
) -> Response {
    let id = id_segment(id);
    let product = signed.get(&format!("/api/v1/products/{id}")).await;
    if !product.ok() {
        return signed.problem(&product);
    }
    let p = &product.body;
    let variants = p["variants"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let chosen = variants
        .iter()
        .find(|v| v["id"].as_str() == Some(q.variant.as_str()))
        .or_else(|| variants.first());
    let chosen_id = chosen.map(|v| view::text(&v["id"])).unwrap_or_default();
    let movements = match chosen {
        Some(_) => Some(
            signed
                .get(&with_query(
                    &format!("/api/v1/variants/{}/movements", id_segment(&chosen_id)),
                    &[("limit", "10"), ("cursor", q.cursor.as_str())],
                ))
                .await,
        ),
        None => None,
    };
    let links = signed
        .get(&with_query("/api/v1/share-links", &[("product_id", id)]))
        .await;
    let options = p["options"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let title = view::text(&p["name"]);
    let no_errors = Errors::default();
    let body = html! {
        section aria-labelledby="about-heading" {
            h2 #about-heading { "About" }
            dl.facts {
                dt { "Active" } dd { (if p["active"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                dt { "Description" } dd { (view::text(&p["description"])) }
                dt { "Least margin" } dd { (view::text(&p["min_margin_bp"])) " basis points" }
                @for o in options {
                    dt { (view::text(&o["name"])) } dd { (o["values"].as_array().map(|v| v.iter().map(view::text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                }
            }
        }
        section aria-labelledby="variants-heading" {
            h2 #variants-heading { "Variants" }
            table #variants {
                thead { tr {
                    th scope="col" { "SKU" } th scope="col" { "Options" } th.num scope="col" { "Price" } th.num scope="col" { "Cost" }
                    th scope="col" { "Tiers" } th.num scope="col" { "Stock" } th.num scope="col" { "Reorder level" } th scope="col" { "Movements" }
                } }
                tbody {
                    @for v in variants {
                        tr {
                            td { (view::text(&v["sku"])) @if v["active"].as_bool() == Some(false) { " " (view::badge("inactive")) } }
                            td { (v["option_values"].as_object().map(|o| o.iter().map(|(k, val)| format!("{k}: {}", view::text(val))).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                            td.num { (signed.money(&v["price"])) }
                            td.num { (signed.money(&v["cost"])) }
                            td { (tiers_text(signed, &v["tiers"])) }
                            td.num { (view::text(&v["stock"])) }
                            td.num { (view::text(&v["reorder_level"])) }
                            td { a href=(format!("/admin/products/{id}?variant={}", view::text(&v["id"]))) { "Movements of " (view::text(&v["sku"])) } }
                        }
                    }
                }
            }
        }
        @if signed.may(Action::WriteCatalog) {
            section aria-labelledby="adjust-heading" {
                h2 #adjust-heading { "Adjust stock" }
                @let (variant, delta, reason, errors) = match &refused {
                    Refused::Adjustment { variant, delta, reason, errors } => (variant.as_str(), delta.as_str(), reason.as_str(), errors),
                    _ => (chosen_id.as_str(), "", "", &no_errors),
                };
                form method="post" action="/admin/variants/adjust" {
                    (view::csrf(signed))
                    input type="hidden" name="product_id" value=(id);
                    (errors.summary())
                    div.row {
                        @let choices: Vec<(String, String)> = variants.iter().map(|v| (view::text(&v["id"]), view::text(&v["sku"]))).collect();
                        @let choices: Vec<(&str, &str)> = choices.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                        (view::select("Variant", "variant_id", &choices, variant, errors))
                        (view::input("Change (+ adds, − takes)", "delta", delta, "text", errors))
                        (view::input("Reason", "reason", reason, "text", errors))
                    }
                    button type="submit" { "Adjust stock" }
                }
            }
        }
        @if let (Some(movements), Some(chosen)) = (&movements, chosen) {
            section aria-labelledby="movements-heading" {
                h2 #movements-heading { "Movements of " (view::text(&chosen["sku"])) }
                @if movements.items().is_empty() {
                    (view::empty("movements"))
                } @else {
                    table #movements {
                        thead { tr { th scope="col" { "When" } th.num scope="col" { "Change" } th scope="col" { "Reason" } th.num scope="col" { "Stock after" } th scope="col" { "Order" } } }
                        tbody {
                            @for m in movements.items() {
                                tr {
                                    td { (view::when(&m["created_at"])) }
                                    td.num { (view::text(&m["delta"])) }
                                    td { (view::text(&m["reason"])) }
                                    td.num { (view::text(&m["stock_after"])) }
                                    td { @if let Some(order) = m["order_id"].as_str() { a href=(format!("/admin/orders/{order}")) { "Order" } } @else { "—" } }
                                }
                            }
                        }
                    }
                    (view::pager(&format!("/admin/products/{id}"), &[("variant", chosen_id.as_str())], &q.cursor, movements))
                }
            }
        }
        section aria-labelledby="links-heading" {
            h2 #links-heading { "Share links" }
            @if links.items().is_empty() {
                (view::empty("share links"))
            } @else {
                table #share-links {
                    thead { tr { th scope="col" { "Link" } th scope="col" { "Active" } th scope="col" { "Expires" } th.num scope="col" { "Clicks" } } }
                    tbody {
                        @for l in links.items() {
                            tr {
                                td { a href=(view::text(&l["url"])) { (view::text(&l["url"])) } }
                                td { (if l["active"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                                td { (view::when(&l["expires_at"])) }
                                td.num { (view::text(&l["clicks"])) }
                            }
                        }
                    }
                }
            }
            @if signed.may(Action::WriteSales) {
                @let (expires_at, errors) = match &refused {
                    Refused::Share { expires_at, errors } => (expires_at.as_str(), errors),
                    _ => ("", &no_errors),
                };
                form method="post" action=(format!("/admin/products/{id}/share-links")) {
                    (view::csrf(signed))
                    (errors.summary())
                    (view::input("Expires at (optional, UTC, like 2027-01-31T23:59:59Z)", "expires_at", expires_at, "text", errors))
                    button type="submit" { "Create a share link" }
                }
            }
        }
    };
    signed.page(status, view::page(signed, &title, Nav::Products, body))
}

fn tiers_text(signed: &Signed, tiers: &Value) -> String {
    tiers
        .as_array()
        .map(|tiers| {
            tiers
                .iter()
                .map(|t| {
                    format!(
                        "{}+ at {}",
                        view::text(&t["min_quantity"]),
                        signed.money(&t["price"])
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "—".to_owned())
}

/// `POST /admin/variants/adjust`:
/// `POST /api/v1/variants/{variant_id}/stock-adjustments`, back to the
/// product.
pub async fn adjust_stock(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let product_id = id_segment(form.get("product_id")).to_owned();
    let variant = form.get("variant_id").to_owned();
    let mut body = json!({"delta": number(form.get("delta"))});
    if !form.get("reason").is_empty() {
        body["reason"] = json!(form.get("reason"));
    }
    let reply = signed
        .post(
            &format!(
                "/api/v1/variants/{}/stock-adjustments",
                id_segment(&variant)
            ),
            &body,
        )
        .await;
    if reply.ok() {
        return signed.finish(see_other(&format!(
            "/admin/products/{product_id}?variant={}",
            id_segment(&variant)
        )));
    }
    if reply.status == StatusCode::NOT_FOUND {
        return signed.problem(&reply);
    }
    let refused = Refused::Adjustment {
        variant: variant.clone(),
        delta: form.get("delta").to_owned(),
        reason: form.get("reason").to_owned(),
        errors: Errors::from_reply(&reply),
    };
    let q = DetailQuery {
        variant,
        cursor: String::new(),
    };
    detail_page(&signed, &product_id, &q, refused, reply.status).await
}

/// `POST /admin/products/{id}/share-links`: `POST /api/v1/share-links`.
pub async fn share(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let mut body = json!({"product_id": id});
    if !form.get("expires_at").is_empty() {
        body["expires_at"] = json!(form.get("expires_at"));
    }
    let reply = signed.post("/api/v1/share-links", &body).await;
    if reply.ok() {
        return signed.finish(see_other(&format!("/admin/products/{}", id_segment(&id))));
    }
    let refused = Refused::Share {
        expires_at: form.get("expires_at").to_owned(),
        errors: Errors::from_reply(&reply),
    };
    detail_page(&signed, &id, &DetailQuery::default(), refused, reply.status).await
}
