//! `/admin`: every figure of `GET /api/v1/dashboard`, this month's revenue
//! by day from the sales report, orders by status, top products and the
//! low-stock list. The figures live in a fragment the page reloads every
//! second while open (ETag-checked, so an unchanged dashboard costs a 304).

use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::session::Signed;
use super::view::{self, Bar, Nav};
use crate::platform::auth::Action;

const STATUSES: [&str; 5] = ["placed", "paid", "shipped", "delivered", "cancelled"];

/// The figures, or the page for the API's refusal.
async fn figures_markup(signed: &Signed) -> Result<Markup, Response> {
    let dashboard = signed.get("/api/v1/dashboard").await;
    if !dashboard.ok() {
        return Err(signed.problem(&dashboard));
    }
    let d = &dashboard.body;
    let low = signed
        .get("/api/v1/inventory?low_stock=true&limit=10")
        .await;
    let report = if signed.may(Action::ReadReports) {
        let reply = signed.get("/api/v1/reports/sales?group_by=day").await;
        reply.ok().then_some(reply)
    } else {
        None
    };
    let by_status: Vec<Bar> = STATUSES
        .iter()
        .map(|status| {
            let n = d["orders_by_status"][status].as_i64().unwrap_or(0);
            Bar {
                label: (*status).to_owned(),
                value: n,
                shown: n.to_string(),
            }
        })
        .collect();
    Ok(html! {
        p.muted { "As of " (view::when(&d["as_of"])) "; refreshes by itself while open." }
        dl.figures {
            div { dt { "Revenue today" } dd #today-revenue { (signed.money(&d["today"]["revenue"])) } }
            div { dt { "Orders today" } dd #today-orders { (view::text(&d["today"]["orders"])) } }
            div { dt { "Revenue this month" } dd #month-revenue { (signed.money(&d["month"]["revenue"])) } }
            div { dt { "Orders this month" } dd #month-orders { (view::text(&d["month"]["orders"])) } }
            div { dt { "Customers" } dd #customers-total { (view::text(&d["customers"]["total"])) } }
            div { dt { "New customers this month" } dd { (view::text(&d["customers"]["new_this_month"])) } }
            div { dt { "Low-stock variants" } dd #low-stock { (view::text(&d["low_stock_variants"])) } }
            div { dt { "Draft quotations" } dd { (view::text(&d["quotations"]["draft"])) } }
            div { dt { "Sent quotations" } dd { (view::text(&d["quotations"]["sent"])) } }
            div { dt { "Accepted quotations" } dd { (view::text(&d["quotations"]["accepted"])) } }
            div { dt { "Open quotation value" } dd { (signed.money(&d["quotations"]["open_value"])) } }
        }
        @if let Some(report) = &report {
            section aria-labelledby="revenue-heading" {
                h2 #revenue-heading { "Revenue by day, this month" }
                @let bars: Vec<Bar> = report.body["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]).iter().map(|row| Bar {
                    label: view::text(&row["period"]),
                    value: row["revenue"].as_i64().unwrap_or(0),
                    shown: signed.money(&row["revenue"]),
                }).collect();
                (view::bar_chart("revenue-chart", "Revenue by day this month", &bars))
            }
        }
        div.grid2 {
            section aria-labelledby="status-heading" {
                h2 #status-heading { "Orders by status" }
                (view::bar_chart("status-chart", "Orders by current status", &by_status))
                table #orders-by-status {
                    thead { tr { th scope="col" { "Status" } th.num scope="col" { "Orders" } } }
                    tbody {
                        @for bar in &by_status {
                            tr { td { a href=(format!("/admin/orders?status={}", bar.label)) { (bar.label) } } td.num { (bar.shown) } }
                        }
                    }
                }
            }
            section aria-labelledby="top-heading" {
                h2 #top-heading { "Top products this month" }
                @let top = d["top_products"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                @if top.is_empty() {
                    (view::empty("sales this month"))
                } @else {
                    table {
                        thead { tr { th scope="col" { "Product" } th.num scope="col" { "Quantity" } th.num scope="col" { "Revenue" } } }
                        tbody {
                            @for p in top {
                                tr {
                                    td { a href=(format!("/admin/products/{}", view::text(&p["product_id"]))) { (view::text(&p["name"])) } }
                                    td.num { (view::text(&p["quantity"])) }
                                    td.num { (signed.money(&p["revenue"])) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="low-heading" {
            h2 #low-heading { "Low stock" }
            @if low.items().is_empty() {
                p.empty { "No variant is at or below its reorder level." }
            } @else {
                table #low-stock-list {
                    thead { tr { th scope="col" { "SKU" } th.num scope="col" { "Stock" } th.num scope="col" { "Reorder level" } } }
                    tbody {
                        @for v in low.items() {
                            tr {
                                td { a href=(format!("/admin/products/{}", view::text(&v["product_id"]))) { (view::text(&v["sku"])) } }
                                td.num { (view::text(&v["stock"])) }
                                td.num { (view::text(&v["reorder_level"])) }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// `GET /admin`.
pub async fn page(signed: Signed) -> Response {
    let figures = match figures_markup(&signed).await {
        Ok(figures) => figures,
        Err(refused) => return refused,
    };
    let body = html! {
        div #dashboard data-refresh="/admin/fragments/dashboard" aria-live="polite" { (figures) }
    };
    signed.page(
        StatusCode::OK,
        view::page(&signed, "Dashboard", Nav::Dashboard, body),
    )
}

/// `GET /admin/fragments/dashboard`: the figures alone, for the refresh.
pub async fn figures(signed: Signed) -> Response {
    match figures_markup(&signed).await {
        Ok(figures) => signed.finish(view::html(StatusCode::OK, figures)),
        Err(refused) => refused,
    }
}
