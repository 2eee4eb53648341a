//! `/admin/customers`: the list with search, status and tag filters; a new
//! customer; a customer's page with its details (editable), wallet balance,
//! ledger and orders, and a wallet credit form.

use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::api::{id_segment, with_query};
use super::session::{Form, Posted, Signed, see_other};
use super::view::{self, Errors, Nav};
use crate::platform::auth::Action;
use crate::platform::money::{minor_digits, parse_major};

const STATUSES: [(&str, &str); 4] = [
    ("", "Any status"),
    ("lead", "Lead"),
    ("active", "Active"),
    ("inactive", "Inactive"),
];

#[derive(Deserialize, Default)]
pub struct ListFilters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    cursor: String,
}

/// `GET /admin/customers`.
pub async fn list(signed: Signed, Query(f): Query<ListFilters>) -> Response {
    let filters = [
        ("q", f.q.as_str()),
        ("status", f.status.as_str()),
        ("tag", f.tag.as_str()),
    ];
    let mut query = filters.to_vec();
    query.push(("cursor", f.cursor.as_str()));
    let reply = signed.get(&with_query("/api/v1/customers", &query)).await;
    let errors = Errors::unless_ok(&reply);
    let body = html! {
        @if signed.may(Action::WriteCustomers) {
            p.actions { a.button href="/admin/customers/new" { "New customer" } }
        }
        form.filters method="get" action="/admin/customers" role="search" {
            (view::input("Name or e-mail contains", "q", &f.q, "search", &errors))
            (view::select("Status", "status", &STATUSES, &f.status, &errors))
            (view::input("Tag", "tag", &f.tag, "text", &errors))
            button type="submit" { "Filter" }
        }
        (errors.summary())
        @if reply.ok() && reply.items().is_empty() {
            (view::empty("customers match"))
        } @else if reply.ok() {
            table #customers {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "E-mail" } th scope="col" { "Status" }
                    th scope="col" { "Tags" } th.num scope="col" { "Discount" } th scope="col" { "Created" }
                } }
                tbody {
                    @for c in reply.items() {
                        tr {
                            td { a href=(format!("/admin/customers/{}", view::text(&c["id"]))) { (view::text(&c["name"])) } }
                            td { (view::text(&c["email"])) }
                            td { (view::badge(c["status"].as_str().unwrap_or(""))) }
                            td { (tags_text(&c["tags"])) }
                            td.num { (percent(&c["discount_bp"])) }
                            td { (view::when(&c["created_at"])) }
                        }
                    }
                }
            }
            (view::pager("/admin/customers", &filters, &f.cursor, &reply))
        }
    };
    let status = if reply.ok() {
        StatusCode::OK
    } else {
        reply.status
    };
    signed.page(
        status,
        view::page(&signed, "Customers", Nav::Customers, body),
    )
}

fn tags_text(tags: &Value) -> String {
    tags.as_array()
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Basis points as a percentage: 250 → `2.5 %`.
fn percent(bp: &Value) -> String {
    let bp = bp.as_i64().unwrap_or(0);
    let whole = bp / 100;
    match bp % 100 {
        0 => format!("{whole} %"),
        rest if rest % 10 == 0 => format!("{whole}.{} %", rest / 10),
        rest => format!("{whole}.{rest:02} %"),
    }
}

/// The customer's fields as the form shows them.
struct Fields {
    name: String,
    email: String,
    phone: String,
    status: String,
    discount_bp: String,
    tags: String,
    notes: String,
}

impl Fields {
    fn of(customer: &Value) -> Fields {
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        Fields {
            name: text(&customer["name"]),
            email: text(&customer["email"]),
            phone: text(&customer["phone"]),
            status: text(&customer["status"]),
            discount_bp: customer["discount_bp"]
                .as_i64()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            tags: tags_text(&customer["tags"]),
            notes: text(&customer["notes"]),
        }
    }

    fn posted(form: &Form) -> Fields {
        Fields {
            name: form.get("name").to_owned(),
            email: form.get("email").to_owned(),
            phone: form.get("phone").to_owned(),
            status: form.get("status").to_owned(),
            discount_bp: form.get("discount_bp").to_owned(),
            tags: form.get("tags").to_owned(),
            notes: form.get("notes").to_owned(),
        }
    }

    /// The API's request: on create, blanks are left out (defaults); on
    /// update, blanks clear the optional fields.
    fn request(&self, update: bool) -> Value {
        let mut body = Map::new();
        let mut text = |name: &str, value: &str, clearable: bool| {
            if !value.is_empty() {
                body.insert(name.to_owned(), json!(value));
            } else if update && clearable {
                body.insert(name.to_owned(), Value::Null);
            }
        };
        text("name", &self.name, false);
        text("email", &self.email, true);
        text("phone", &self.phone, true);
        text("status", &self.status, false);
        text("notes", &self.notes, true);
        if !self.discount_bp.is_empty() {
            // A number when it reads as one; otherwise as typed, for the
            // API to name what is wrong with it.
            let value = self
                .discount_bp
                .parse::<i64>()
                .map_or_else(|_| json!(self.discount_bp), |n| json!(n));
            body.insert("discount_bp".to_owned(), value);
        }
        // A name emptied on the edit form is sent as typed, for the API to
        // refuse (a name is required), not quietly left as it was.
        if update && self.name.is_empty() {
            body.insert("name".to_owned(), json!(""));
        }
        let tags: Vec<&str> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if !tags.is_empty() || update {
            body.insert("tags".to_owned(), json!(tags));
        }
        Value::Object(body)
    }

    fn form(&self, signed: &Signed, action: &str, button: &str, errors: &Errors) -> Markup {
        let statuses = &STATUSES[1..];
        html! {
            form.card method="post" action=(action) {
                (view::csrf(signed))
                (errors.summary())
                div.row {
                    (view::input("Name", "name", &self.name, "text", errors))
                    (view::input("E-mail", "email", &self.email, "email", errors))
                    (view::input("Phone", "phone", &self.phone, "tel", errors))
                }
                div.row {
                    (view::select("Status", "status", statuses, if self.status.is_empty() { "active" } else { &self.status }, errors))
                    (view::input("Discount (basis points, 100 = 1 %)", "discount_bp", &self.discount_bp, "text", errors))
                    (view::input("Tags (comma-separated)", "tags", &self.tags, "text", errors))
                }
                p.field {
                    label for="f-notes" { "Notes" }
                    textarea #f-notes name="notes" rows="3" { (self.notes) }
                    @for m in errors.of("notes") { span.field-error { (m) } }
                }
                button type="submit" { (button) }
            }
        }
    }
}

/// `GET /admin/customers/new`.
pub async fn new_form(signed: Signed) -> Response {
    new_page(
        &signed,
        &Fields::of(&Value::Null),
        &Errors::default(),
        StatusCode::OK,
    )
}

fn new_page(signed: &Signed, fields: &Fields, errors: &Errors, status: StatusCode) -> Response {
    let body = html! {
        @if !signed.may(Action::WriteCustomers) {
            p.error role="alert" { "Your role may not create customers." }
        }
        (fields.form(signed, "/admin/customers", "Create customer", errors))
    };
    signed.page(
        status,
        view::page(signed, "New customer", Nav::Customers, body),
    )
}

/// `POST /admin/customers`: `POST /api/v1/customers`.
pub async fn create(posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let fields = Fields::posted(&form);
    let reply = signed
        .post("/api/v1/customers", &fields.request(false))
        .await;
    if reply.ok() {
        return signed.finish(see_other(&format!(
            "/admin/customers/{}",
            view::text(&reply.body["id"])
        )));
    }
    new_page(&signed, &fields, &Errors::from_reply(&reply), reply.status)
}

#[derive(Deserialize, Default)]
pub struct DetailQuery {
    #[serde(default)]
    ledger_cursor: String,
}

/// A refused form of the detail page, with its fields as typed.
#[derive(Default)]
struct Shown {
    edit: Option<(Fields, Errors)>,
    credit: Option<(String, String, Errors)>,
}

/// `GET /admin/customers/{id}`.
pub async fn detail(
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    detail_page(
        &signed,
        &id,
        &q.ledger_cursor,
        Shown::default(),
        StatusCode::OK,
    )
    .await
}

async fn detail_page(
    signed: &Signed,
    id: &str,
    ledger_cursor: &str,
    shown: Shown,
    status: StatusCode,
) -> Response {
    let id = id_segment(id);
    let customer = signed.get(&format!("/api/v1/customers/{id}")).await;
    if !customer.ok() {
        return signed.problem(&customer);
    }
    let wallet = signed.get(&format!("/api/v1/customers/{id}/wallet")).await;
    let ledger = signed
        .get(&with_query(
            &format!("/api/v1/customers/{id}/wallet/transactions"),
            &[("limit", "10"), ("cursor", ledger_cursor)],
        ))
        .await;
    let orders = signed
        .get(&with_query(
            "/api/v1/orders",
            &[("customer_id", id), ("limit", "10")],
        ))
        .await;
    let c = &customer.body;
    let (edit_fields, edit_errors) = shown
        .edit
        .unwrap_or_else(|| (Fields::of(c), Errors::default()));
    let (amount, reference, credit_errors) = shown
        .credit
        .unwrap_or_else(|| (String::new(), String::new(), Errors::default()));
    let title = view::text(&c["name"]);
    let body = html! {
        div.grid2 {
            section aria-labelledby="facts-heading" {
                h2 #facts-heading { "Details" }
                dl.facts {
                    dt { "Status" } dd { (view::badge(c["status"].as_str().unwrap_or(""))) }
                    dt { "E-mail" } dd { (view::text(&c["email"])) }
                    dt { "Phone" } dd { (view::text(&c["phone"])) }
                    dt { "Discount" } dd { (percent(&c["discount_bp"])) }
                    dt { "Tags" } dd { (tags_text(&c["tags"])) }
                    dt { "Created" } dd { (view::when(&c["created_at"])) }
                    dt { "Updated" } dd { (view::when(&c["updated_at"])) }
                }
            }
            section aria-labelledby="wallet-heading" {
                h2 #wallet-heading { "Wallet" }
                p { "Balance: " strong #wallet-balance { (signed.money(&wallet.body["balance"])) } }
                @if signed.may(Action::WriteSales) {
                    form method="post" action=(format!("/admin/customers/{id}/wallet/credits")) {
                        (view::csrf(signed))
                        (credit_errors.summary())
                        div.row {
                            (view::field_with(&format!("Amount to credit ({})", signed.currency), "amount", "amount", &amount, "text", &credit_errors))
                            (view::input("Reference", "reference", &reference, "text", &credit_errors))
                        }
                        button type="submit" { "Credit the wallet" }
                    }
                }
            }
        }
        section aria-labelledby="ledger-heading" {
            h2 #ledger-heading { "Wallet ledger" }
            @if ledger.items().is_empty() {
                (view::empty("wallet transactions"))
            } @else {
                table #ledger {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Type" } th.num scope="col" { "Amount" } th.num scope="col" { "Balance after" } th scope="col" { "Reference" } th scope="col" { "Order" } } }
                    tbody {
                        @for t in ledger.items() {
                            tr {
                                td { (view::when(&t["created_at"])) }
                                td { (view::text(&t["type"])) }
                                td.num { (signed.money(&t["amount"])) }
                                td.num { (signed.money(&t["balance_after"])) }
                                td { (view::text(&t["reference"])) }
                                td { @if let Some(order) = t["order_id"].as_str() { a href=(format!("/admin/orders/{order}")) { "Order" } } @else { "—" } }
                            }
                        }
                    }
                }
                (view::pager_as(&format!("/admin/customers/{id}"), &[], "ledger_cursor", ledger_cursor, &ledger))
            }
        }
        section aria-labelledby="orders-heading" {
            h2 #orders-heading { "Latest orders" }
            @if orders.items().is_empty() {
                (view::empty("orders"))
            } @else {
                (super::sales::orders_table(signed, orders.items()))
                p { a href=(format!("/admin/orders?customer_id={id}")) { "All orders of this customer" } }
            }
        }
        @if signed.may(Action::WriteCustomers) {
            section aria-labelledby="edit-heading" {
                h2 #edit-heading { "Edit" }
                (edit_fields.form(signed, &format!("/admin/customers/{id}"), "Save changes", &edit_errors))
            }
        }
    };
    signed.page(status, view::page(signed, &title, Nav::Customers, body))
}

/// `POST /admin/customers/{id}`: `PATCH /api/v1/customers/{id}`.
pub async fn update(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let fields = Fields::posted(&form);
    let reply = signed
        .call(
            Method::PATCH,
            &format!("/api/v1/customers/{}", id_segment(&id)),
            Some(&fields.request(true)),
        )
        .await;
    if reply.ok() {
        return signed.finish(see_other(&format!("/admin/customers/{}", id_segment(&id))));
    }
    if reply.status == StatusCode::NOT_FOUND {
        return signed.problem(&reply);
    }
    let shown = Shown {
        edit: Some((fields, Errors::from_reply(&reply))),
        ..Shown::default()
    };
    detail_page(&signed, &id, "", shown, reply.status).await
}

/// `POST /admin/customers/{id}/wallet/credits`: the amount as typed in
/// the tenant's currency, sent in minor units.
pub async fn credit(Path(id): Path<String>, posted: Posted) -> Response {
    let Posted { signed, form } = posted;
    let (amount, reference) = (
        form.get("amount").to_owned(),
        form.get("reference").to_owned(),
    );
    let refused = |errors: Errors, status: StatusCode| {
        let shown = Shown {
            credit: Some((amount.clone(), reference.clone(), errors)),
            ..Shown::default()
        };
        (shown, status)
    };
    let (shown, status) = match parse_major(&amount, &signed.currency) {
        None => refused(
            Errors::field(
                "amount",
                &format!(
                    "must be an amount like {} (at most {} digits after the point)",
                    if minor_digits(&signed.currency) == 0 {
                        "1999"
                    } else {
                        "19.99"
                    },
                    minor_digits(&signed.currency)
                ),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Some(minor) => {
            let mut body = json!({"amount": minor});
            if !reference.is_empty() {
                body["reference"] = json!(reference);
            }
            let reply = signed
                .post(
                    &format!("/api/v1/customers/{}/wallet/credits", id_segment(&id)),
                    &body,
                )
                .await;
            if reply.ok() {
                return signed.finish(see_other(&format!("/admin/customers/{}", id_segment(&id))));
            }
            if reply.status == StatusCode::NOT_FOUND {
                return signed.problem(&reply);
            }
            refused(Errors::from_reply(&reply), reply.status)
        }
    };
    detail_page(&signed, &id, "", shown, status).await
}
