//! Quotations and orders: `/admin/quotations` (list, a new quotation with
//! a product/variant picker and a live price preview from the pricing
//! engine, send, accept, reject, convert) and `/admin/orders` (filters by
//! status, customer and dates; an order's lines and status history; the
//! status moves the role may make).

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{Reply, id_segment, with_query};
use super::session::{Form, Posted, Signed, see_other};
use super::view::{self, Errors, Nav};
use crate::modules::orders::OrderStatus;
use crate::modules::quotes::QuotationStatus;
use crate::platform::auth::Action;

/// Lines on the new-quotation form (blank lines are left out).
const LINE_ROWS: usize = 5;

// ---- quotations ----

#[derive(Deserialize, Default)]
pub struct QuotationFilters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /admin/quotations`.
pub async fn quotations(signed: Signed, Query(f): Query<QuotationFilters>) -> Response {
    let filters = [
        ("status", f.status.as_str()),
        ("customer_id", f.customer_id.as_str()),
    ];
    let mut query = filters.to_vec();
    query.push(("cursor", f.cursor.as_str()));
    let reply = signed.get(&with_query("/api/v1/quotations", &query)).await;
    let errors = Errors::unless_ok(&reply);
    let mut statuses = vec![("", "Any status")];
    statuses.extend(
        QuotationStatus::ALL
            .iter()
            .map(|s| (s.as_str(), s.as_str())),
    );
    let body = html! {
        @if signed.may(Action::WriteSales) {
            p.actions { a.button href="/admin/quotations/new" { "New quotation" } }
        }
        form.filters method="get" action="/admin/quotations" {
            (view::select("Status", "status", &statuses, &f.status, &errors))
            @if !f.customer_id.is_empty() { input type="hidden" name="customer_id" value=(f.customer_id); }
            button type="submit" { "Filter" }
        }
        (errors.summary())
        @if reply.ok() && reply.items().is_empty() {
            (view::empty("quotations match"))
        } @else if reply.ok() {
            table #quotations {
                thead { tr {
                    th scope="col" { "Number" } th scope="col" { "Status" } th.num scope="col" { "Total" }
                    th scope="col" { "Valid until" } th scope="col" { "Created" }
                } }
                tbody {
                    @for q in reply.items() {
                        tr {
                            td { a href=(format!("/admin/quotations/{}", view::text(&q["id"]))) { (view::text(&q["number"])) } }
                            td { (view::badge(q["status"].as_str().unwrap_or(""))) }
                            td.num { (signed.money(&q["total"])) }
                            td { (view::text(&q["valid_until"])) }
                            td { (view::when(&q["created_at"])) }
                        }
                    }
                }
            }
            (view::pager("/admin/quotations", &filters, &f.cursor, &reply))
        }
    };
    let status = if reply.ok() {
        StatusCode::OK
    } else {
        reply.status
    };
    signed.page(
        status,
        view::page(&signed, "Quotations", Nav::Quotations, body),
    )
}

#[derive(Deserialize, Default)]
pub struct PickerQuery {
    /// Narrows the variant picker to products whose name contains it.
    #[serde(default)]
    q: String,
    /// Narrows the customer picker to names or e-mails containing it.
    #[serde(default)]
    customer_q: String,
}

/// `GET /admin/quotations/new`.
pub async fn new_quotation(signed: Signed, Query(p): Query<PickerQuery>) -> Response {
    let typed = Form::parse(b"");
    let search = Search {
        products: &p.q,
        customers: &p.customer_q,
    };
    new_quotation_page(
        &signed,
        &search,
        &typed,
        None,
        &Errors::default(),
        StatusCode::OK,
    )
    .await
}

/// What the pickers are narrowed to.
struct Search<'a> {
    products: &'a str,
    customers: &'a str,
}

/// The form: customer, lines (a variant picker and a quantity each), date
/// and notes, with the price preview under it.
async fn new_quotation_page(
    signed: &Signed,
    search: &Search<'_>,
    typed: &Form,
    preview: Option<Markup>,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let customers = signed
        .get(&with_query(
            "/api/v1/customers",
            &[
                ("limit", "100"),
                ("fields", "id,name"),
                ("q", search.customers),
            ],
        ))
        .await;
    let products = signed
        .get(&with_query(
            "/api/v1/products",
            &[
                ("include", "variants"),
                ("active", "true"),
                ("limit", "50"),
                // Only what the picker shows: less JSON to read back.
                ("fields", "id,name,variants"),
                ("q", search.products),
            ],
        ))
        .await;
    let mut customer_options: Vec<(String, String)> =
        vec![(String::new(), "Choose a customer".into())];
    customer_options.extend(
        customers
            .items()
            .iter()
            .map(|c| (view::text(&c["id"]), view::text(&c["name"]))),
    );
    let mut variant_options: Vec<(String, String)> = vec![(String::new(), "No line".into())];
    for p in products.items() {
        for v in p["variants"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            variant_options.push((
                view::text(&v["id"]),
                format!(
                    "{} — {} ({})",
                    view::text(&p["name"]),
                    view::text(&v["sku"]),
                    signed.money(&v["price"])
                ),
            ));
        }
    }
    let customer_refs: Vec<(&str, &str)> = customer_options
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let variant_picker = Picker::new(&variant_options);
    let lines = typed.all("variant_id");
    let quantities = typed.all("quantity");
    let body = html! {
        @if !signed.may(Action::WriteSales) {
            p.error role="alert" { "Your role may not create quotations." }
        }
        form.filters method="get" action="/admin/quotations/new" role="search" {
            (view::input("Find customers", "customer_q", search.customers, "search", &Errors::default()))
            (view::input("Find products by name", "q", search.products, "search", &Errors::default()))
            button type="submit" { "Narrow the pickers" }
        }
        form.card #quotation-form method="post" action="/admin/quotations" data-preview="/admin/quotations/preview" data-preview-into="preview" {
            (view::csrf(signed))
            input type="hidden" name="q" value=(search.products);
            input type="hidden" name="customer_q" value=(search.customers);
            (errors.summary())
            (view::select("Customer", "customer_id", &customer_refs, typed.get("customer_id"), errors))
            @for i in 0..LINE_ROWS {
                fieldset {
                    legend { "Line " (i + 1) }
                    div.row {
                        (line_select(i, &variant_picker, lines.get(i).copied().unwrap_or(""), errors))
                        (view::field_with_id(&format!("f-quantity-{i}"), "Quantity", "quantity", &format!("items[{i}].quantity"), quantities.get(i).copied().unwrap_or("1"), "number", errors))
                    }
                }
            }
            div.row {
                (view::input("Valid until (optional)", "valid_until", typed.get("valid_until"), "date", errors))
                (view::input("Notes", "notes", typed.get("notes"), "text", errors))
            }
            div.actions {
                button type="submit" name="intent" value="preview" class="secondary" { "Preview prices" }
                button type="submit" name="intent" value="create" { "Create quotation" }
            }
            section #preview aria-live="polite" aria-label="Price preview" {
                @if let Some(preview) = &preview { (preview) } @else { p.muted { "Choose a customer and lines to see their prices." } }
            }
        }
    };
    signed.page(
        status,
        view::page(signed, "New quotation", Nav::Quotations, body),
    )
}

/// The variant picker's options, escaped once for all [`LINE_ROWS`] lines:
/// a few hundred product names escaped five times over were most of the
/// form's time (profiled: `maud::escape` at 16 %).
struct Picker<'a> {
    options: &'a [(String, String)],
    rendered: Vec<String>,
}

impl<'a> Picker<'a> {
    fn new(options: &'a [(String, String)]) -> Self {
        let rendered = options
            .iter()
            .map(|(value, text)| html! { option value=(value) { (text) } }.into_string())
            .collect();
        Picker { options, rendered }
    }

    /// The options with `chosen` selected.
    fn options(&self, chosen: &str) -> PreEscaped<String> {
        let mut out =
            String::with_capacity(self.rendered.iter().map(String::len).sum::<usize>() + 16);
        for ((value, text), rendered) in self.options.iter().zip(&self.rendered) {
            if value == chosen {
                out.push_str(&html! { option value=(value) selected { (text) } }.into_string());
            } else {
                out.push_str(rendered);
            }
        }
        PreEscaped(out)
    }
}

/// A line's variant picker; its label names the line (ids stay unique).
fn line_select(i: usize, picker: &Picker<'_>, chosen: &str, errors: &Errors) -> Markup {
    let id = format!("f-line-{i}");
    let messages = errors.of(&format!("items[{i}]"));
    html! {
        p.field {
            label for=(id) { "Variant" }
            select id=(id) name="variant_id" aria-invalid=[(!messages.is_empty()).then_some("true")] {
                (picker.options(chosen))
            }
            @if !messages.is_empty() { span.field-error { (messages.join("; ")) } }
        }
    }
}

/// The items the form names: each chosen variant with its quantity.
fn items_of(form: &Form) -> Vec<Value> {
    let quantities = form.all("quantity");
    form.all("variant_id")
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, variant)| {
            let typed = quantities.get(i).copied().unwrap_or("");
            let quantity = typed
                .parse::<i64>()
                .map_or_else(|_| json!(typed), |n| json!(n));
            json!({"variant_id": variant, "quantity": quantity})
        })
        .collect()
}

/// The pricing engine's answer for the form's lines, as a table.
async fn price_preview(signed: &Signed, form: &Form) -> (Markup, StatusCode) {
    let items = items_of(form);
    if items.is_empty() {
        return (
            html! { p.muted { "Choose a variant for at least one line." } },
            StatusCode::OK,
        );
    }
    let mut body = json!({"items": items});
    if !form.get("customer_id").is_empty() {
        body["customer_id"] = json!(form.get("customer_id"));
    }
    let reply = signed.post("/api/v1/pricing/calculate", &body).await;
    if !reply.ok() {
        return (Errors::from_reply(&reply).summary(), reply.status);
    }
    let p = &reply.body;
    let markup = html! {
        table #price-preview {
            caption { "Prices from the pricing engine" }
            thead { tr {
                th scope="col" { "SKU" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" }
                th.num scope="col" { "Discount" } th.num scope="col" { "Line total" } th scope="col" { "Margin" }
            } }
            tbody {
                @for l in p["lines"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    tr {
                        td { (view::text(&l["sku"])) }
                        td.num { (view::text(&l["quantity"])) }
                        td.num { (signed.money(&l["unit_price"])) }
                        td.num { (signed.money(&l["discount"])) }
                        td.num { (signed.money(&l["line_total"])) }
                        td { (if l["margin_ok"].as_bool().unwrap_or(false) { "ok" } else { "below the least margin" }) }
                    }
                }
            }
            tfoot {
                tr { th scope="row" colspan="4" { "Subtotal" } td.num { (signed.money(&p["subtotal"])) } td {} }
                tr { th scope="row" colspan="4" { "Discount" } td.num { (signed.money(&p["discount_total"])) } td {} }
                tr { th scope="row" colspan="4" { "Total" } td.num #preview-total { (signed.money(&p["total"])) } td {} }
            }
        }
    };
    (markup, StatusCode::OK)
}

/// `POST /admin/quotations/preview`: the preview alone, for the script. A
/// refusal of the engine (a line being typed) is the preview's content,
/// answered 200 like any other.
pub async fn preview(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let (markup, _) = price_preview(&signed, &form).await;
    signed.finish(view::html(StatusCode::OK, markup))
}

/// `POST /admin/quotations`: a preview without script, or
/// `POST /api/v1/quotations`.
pub async fn create_quotation(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let (products, customers) = (form.get("q").to_owned(), form.get("customer_q").to_owned());
    let search = Search {
        products: &products,
        customers: &customers,
    };
    if form.get("intent") == "preview" {
        let (markup, status) = price_preview(&signed, &form).await;
        return new_quotation_page(
            &signed,
            &search,
            &form,
            Some(markup),
            &Errors::default(),
            status,
        )
        .await;
    }
    let mut body = json!({"customer_id": form.get("customer_id"), "items": items_of(&form)});
    for name in ["valid_until", "notes"] {
        if !form.get(name).is_empty() {
            body[name] = json!(form.get(name));
        }
    }
    let reply = signed.post("/api/v1/quotations", &body).await;
    if reply.ok() {
        return signed.finish(see_other(&format!(
            "/admin/quotations/{}",
            view::text(&reply.body["id"])
        )));
    }
    new_quotation_page(
        &signed,
        &search,
        &form,
        None,
        &Errors::from_reply(&reply),
        reply.status,
    )
    .await
}

/// `GET /admin/quotations/{id}`.
pub async fn quotation(signed: Signed, Path(id): Path<String>) -> Response {
    quotation_page(&signed, &id, None, StatusCode::OK).await
}

async fn quotation_page(
    signed: &Signed,
    id: &str,
    refused: Option<&Reply>,
    status: StatusCode,
) -> Response {
    let id = id_segment(id);
    let reply = signed.get(&format!("/api/v1/quotations/{id}")).await;
    if !reply.ok() {
        return signed.problem(&reply);
    }
    let q = &reply.body;
    let customer = signed
        .get(&format!(
            "/api/v1/customers/{}?fields=name",
            id_segment(q["customer_id"].as_str().unwrap_or(""))
        ))
        .await;
    let current = q["status"].as_str().and_then(QuotationStatus::parse);
    let moves: Vec<(QuotationStatus, &str)> = [
        (QuotationStatus::Sent, "send"),
        (QuotationStatus::Accepted, "accept"),
        (QuotationStatus::Rejected, "reject"),
        (QuotationStatus::Converted, "convert"),
    ]
    .into_iter()
    .filter(|(to, _)| current.is_some_and(|from| from.can_move_to(*to)))
    .collect();
    let title = format!("Quotation {}", view::text(&q["number"]));
    let body = html! {
        @if let Some(refused) = refused { (Errors::from_reply(refused).summary()) }
        dl.facts {
            dt { "Status" } dd #quotation-status { (view::badge(q["status"].as_str().unwrap_or(""))) }
            dt { "Customer" } dd { a href=(format!("/admin/customers/{}", view::text(&q["customer_id"]))) { (if customer.ok() { view::text(&customer.body["name"]) } else { "The customer".to_owned() }) } }
            dt { "Valid until" } dd { (view::text(&q["valid_until"])) " (UTC)" }
            dt { "Created" } dd { (view::when(&q["created_at"])) }
            @if let Some(notes) = q["notes"].as_str() { dt { "Notes" } dd { (notes) } }
        }
        (lines_table(signed, q))
        @if signed.may(Action::WriteSales) && !moves.is_empty() {
            div.actions {
                @for (to, action) in &moves {
                    form method="post" action=(format!("/admin/quotations/{id}/{action}")) {
                        (view::csrf(signed))
                        @if *to == QuotationStatus::Converted {
                            (view::select("Payment", "payment_method", &[("invoice", "Invoice"), ("wallet", "From the customer's wallet")], "invoice", &Errors::default()))
                            button type="submit" { "Convert to an order" }
                        } @else {
                            button type="submit" class=[(*to == QuotationStatus::Rejected).then_some("danger")] { (capitalized(action)) }
                        }
                    }
                }
            }
        }
    };
    signed.page(status, view::page(signed, &title, Nav::Quotations, body))
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `POST /admin/quotations/{id}/{send|accept|reject|convert}`.
pub async fn move_quotation(
    Path((id, action)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let Posted { signed, form } = posted;
    if !matches!(action.as_str(), "send" | "accept" | "reject" | "convert") {
        return view::not_found().await;
    }
    let body = if action == "convert" && !form.get("payment_method").is_empty() {
        json!({"payment_method": form.get("payment_method")})
    } else {
        json!({})
    };
    let reply = signed
        .post(
            &format!("/api/v1/quotations/{}/{action}", id_segment(&id)),
            &body,
        )
        .await;
    if reply.ok() && action == "convert" {
        return signed.finish(see_other(&format!(
            "/admin/orders/{}",
            view::text(&reply.body["id"])
        )));
    }
    if reply.ok() {
        return signed.finish(see_other(&format!("/admin/quotations/{}", id_segment(&id))));
    }
    if reply.status == StatusCode::NOT_FOUND {
        return signed.problem(&reply);
    }
    quotation_page(&signed, &id, Some(&reply), reply.status).await
}

/// The lines and totals of a quotation or an order.
fn lines_table(signed: &Signed, document: &Value) -> Markup {
    html! {
        table #lines {
            thead { tr {
                th scope="col" { "SKU" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" }
                th.num scope="col" { "Discount" } th.num scope="col" { "Line total" }
            } }
            tbody {
                @for l in document["items"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    tr {
                        td { (view::text(&l["sku"])) }
                        td.num { (view::text(&l["quantity"])) }
                        td.num { (signed.money(&l["unit_price"])) }
                        td.num { (signed.money(&l["discount"])) }
                        td.num { (signed.money(&l["line_total"])) }
                    }
                }
            }
            tfoot {
                tr { th scope="row" colspan="4" { "Subtotal" } td.num { (signed.money(&document["subtotal"])) } }
                tr { th scope="row" colspan="4" { "Discount" } td.num { (signed.money(&document["discount_total"])) } }
                tr { th scope="row" colspan="4" { "Total" } td.num #total { (signed.money(&document["total"])) } }
            }
        }
    }
}

// ---- orders ----

#[derive(Deserialize, Default)]
pub struct OrderFilters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

/// A table of orders (the list, a customer's latest).
pub fn orders_table(signed: &Signed, orders: &[Value]) -> Markup {
    html! {
        table.orders {
            thead { tr {
                th scope="col" { "Number" } th scope="col" { "Status" } th scope="col" { "Payment" }
                th.num scope="col" { "Total" } th scope="col" { "Created" }
            } }
            tbody {
                @for o in orders {
                    tr {
                        td { a href=(format!("/admin/orders/{}", view::text(&o["id"]))) { (view::text(&o["number"])) } }
                        td { (view::badge(o["status"].as_str().unwrap_or(""))) }
                        td { (view::text(&o["payment_method"])) }
                        td.num { (signed.money(&o["total"])) }
                        td { (view::when(&o["created_at"])) }
                    }
                }
            }
        }
    }
}

/// `GET /admin/orders`.
pub async fn orders(signed: Signed, Query(f): Query<OrderFilters>) -> Response {
    let filters = [
        ("status", f.status.as_str()),
        ("customer_id", f.customer_id.as_str()),
        ("from", f.from.as_str()),
        ("to", f.to.as_str()),
    ];
    let mut query = filters.to_vec();
    query.push(("cursor", f.cursor.as_str()));
    let reply = signed.get(&with_query("/api/v1/orders", &query)).await;
    let errors = Errors::unless_ok(&reply);
    let mut statuses = vec![("", "Any status")];
    statuses.extend(OrderStatus::ALL.iter().map(|s| (s.as_str(), s.as_str())));
    let body = html! {
        form.filters method="get" action="/admin/orders" role="search" {
            (view::select("Status", "status", &statuses, &f.status, &errors))
            (view::input("Customer id", "customer_id", &f.customer_id, "text", &errors))
            (view::input("From (UTC)", "from", &f.from, "date", &errors))
            (view::input("To (UTC)", "to", &f.to, "date", &errors))
            button type="submit" { "Filter" }
        }
        (errors.summary())
        @if reply.ok() && reply.items().is_empty() {
            (view::empty("orders match"))
        } @else if reply.ok() {
            (orders_table(&signed, reply.items()))
            (view::pager("/admin/orders", &filters, &f.cursor, &reply))
        }
    };
    let status = if reply.ok() {
        StatusCode::OK
    } else {
        reply.status
    };
    signed.page(status, view::page(&signed, "Orders", Nav::Orders, body))
}

/// `GET /admin/orders/{id}`.
pub async fn order(signed: Signed, Path(id): Path<String>) -> Response {
    order_page(&signed, &id, None, StatusCode::OK).await
}

async fn order_page(
    signed: &Signed,
    id: &str,
    refused: Option<&Reply>,
    status: StatusCode,
) -> Response {
    let id = id_segment(id);
    let reply = signed.get(&format!("/api/v1/orders/{id}")).await;
    if !reply.ok() {
        return signed.problem(&reply);
    }
    let o = &reply.body;
    let current = o["status"].as_str().and_then(OrderStatus::parse);
    let moves: Vec<OrderStatus> = OrderStatus::ALL
        .into_iter()
        .filter(|to| {
            current.is_some_and(|from| from.can_move_to(*to)) && signed.may(to.required_action())
        })
        .collect();
    let title = format!("Order {}", view::text(&o["number"]));
    let body = html! {
        @if let Some(refused) = refused { (Errors::from_reply(refused).summary()) }
        dl.facts {
            dt { "Status" } dd #order-status { (view::badge(o["status"].as_str().unwrap_or(""))) }
            dt { "Customer" } dd { a href=(format!("/admin/customers/{}", view::text(&o["customer_id"]))) { "The customer's page" } }
            dt { "Payment" } dd { (view::text(&o["payment_method"])) }
            dt { "Created" } dd { (view::when(&o["created_at"])) }
            @if let Some(notes) = o["notes"].as_str() { dt { "Notes" } dd { (notes) } }
        }
        (lines_table(signed, o))
        @if !moves.is_empty() {
            section aria-labelledby="move-heading" {
                h2 #move-heading { "Change the status" }
                div.actions {
                    @for to in &moves {
                        form method="post" action=(format!("/admin/orders/{id}/status")) {
                            (view::csrf(signed))
                            input type="hidden" name="status" value=(to.as_str());
                            button type="submit" class=[(*to == OrderStatus::Cancelled).then_some("danger")] { "Mark " (to.as_str()) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="history-heading" {
            h2 #history-heading { "Status history" }
            table #history {
                thead { tr { th scope="col" { "When" } th scope="col" { "Status" } th scope="col" { "Note" } } }
                tbody {
                    @for h in o["status_history"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                        tr { td { (view::when(&h["created_at"])) } td { (view::badge(h["status"].as_str().unwrap_or(""))) } td { (view::text(&h["note"])) } }
                    }
                }
            }
        }
    };
    signed.page(status, view::page(signed, &title, Nav::Orders, body))
}

/// `POST /admin/orders/{id}/status`: `POST /api/v1/orders/{id}/status`.
pub async fn move_order(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let mut body = json!({"status": form.get("status")});
    if !form.get("note").is_empty() {
        body["note"] = json!(form.get("note"));
    }
    let reply = signed
        .post(&format!("/api/v1/orders/{}/status", id_segment(&id)), &body)
        .await;
    if reply.ok() {
        return signed.finish(see_other(&format!("/admin/orders/{}", id_segment(&id))));
    }
    if reply.status == StatusCode::NOT_FOUND {
        return signed.problem(&reply);
    }
    order_page(&signed, &id, Some(&reply), reply.status).await
}
