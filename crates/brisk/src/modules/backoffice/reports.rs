//! `/admin/reports`: the sales report by day or month as a chart and a
//! table, and the same rows as a CSV download.

use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::api::{Reply, with_query};
use super::session::Signed;
use super::view::{self, Bar, Errors, Nav};
use crate::platform::money::decimal;

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    group_by: String,
}

impl ReportQuery {
    fn pairs(&self) -> [(&str, &str); 3] {
        [
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("group_by", self.group_by.as_str()),
        ]
    }

    async fn fetch(&self, signed: &Signed) -> Reply {
        signed
            .get(&with_query("/api/v1/reports/sales", &self.pairs()))
            .await
    }
}

/// `GET /admin/reports`.
pub async fn page(signed: Signed, Query(q): Query<ReportQuery>) -> Response {
    let reply = q.fetch(&signed).await;
    if matches!(
        reply.status,
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
    ) {
        return signed.problem(&reply);
    }
    let errors = Errors::unless_ok(&reply);
    let r = &reply.body;
    let rows = r["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let bars: Vec<Bar> = rows
        .iter()
        .map(|row| Bar {
            label: view::text(&row["period"]),
            value: row["revenue"].as_i64().unwrap_or(0),
            shown: signed.money(&row["revenue"]),
        })
        .collect();
    let body = html! {
        form.filters method="get" action="/admin/reports" {
            (view::input("From (UTC)", "from", if q.from.is_empty() { r["from"].as_str().unwrap_or("") } else { &q.from }, "date", &errors))
            (view::input("To (UTC)", "to", if q.to.is_empty() { r["to"].as_str().unwrap_or("") } else { &q.to }, "date", &errors))
            (view::select("By", "group_by", &[("day", "Day"), ("month", "Month")], if q.group_by.is_empty() { "day" } else { &q.group_by }, &errors))
            button type="submit" { "Show" }
        }
        (errors.summary())
        @if reply.ok() {
            p.actions { a.button href=(with_query("/admin/reports/sales.csv", &q.pairs())) download { "Download as CSV" } }
            (view::bar_chart("sales-chart", &format!("Revenue by {} from {} to {}", view::text(&r["group_by"]), view::text(&r["from"]), view::text(&r["to"])), &bars))
            table #sales-report {
                thead { tr {
                    th scope="col" { "Period" } th.num scope="col" { "Orders" } th.num scope="col" { "Revenue" }
                    th.num scope="col" { "Cost" } th.num scope="col" { "Margin" }
                } }
                tbody {
                    @for row in rows {
                        tr {
                            td { (view::text(&row["period"])) }
                            td.num { (view::text(&row["orders"])) }
                            td.num { (signed.money(&row["revenue"])) }
                            td.num { (signed.money(&row["cost"])) }
                            td.num { (signed.money(&row["margin"])) }
                        }
                    }
                }
                tfoot { tr {
                    th scope="row" { "Total" }
                    td.num { (view::text(&r["totals"]["orders"])) }
                    td.num { (signed.money(&r["totals"]["revenue"])) }
                    td.num { (signed.money(&r["totals"]["cost"])) }
                    td.num { (signed.money(&r["totals"]["margin"])) }
                } }
            }
        }
    };
    let status = if reply.ok() {
        StatusCode::OK
    } else {
        reply.status
    };
    signed.page(
        status,
        view::page(&signed, "Sales report", Nav::Reports, body),
    )
}

/// `GET /admin/reports/sales.csv`: the report's rows, amounts as decimals
/// of the currency (named in the header), then the totals.
pub async fn csv(signed: Signed, Query(q): Query<ReportQuery>) -> Response {
    let reply = q.fetch(&signed).await;
    if !reply.ok() {
        return signed.problem(&reply);
    }
    let r = &reply.body;
    let currency = r["currency"].as_str().unwrap_or(&signed.currency);
    let amount = |v: &serde_json::Value| decimal(v.as_i64().unwrap_or(0), currency);
    let mut out =
        format!("period,orders,revenue ({currency}),cost ({currency}),margin ({currency})\r\n");
    let rows = r["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for row in rows.iter().chain(std::iter::once(&r["totals"])) {
        let period = row["period"].as_str().unwrap_or("total");
        out.push_str(&format!(
            "{period},{},{},{},{}\r\n",
            row["orders"].as_i64().unwrap_or(0),
            amount(&row["revenue"]),
            amount(&row["cost"]),
            amount(&row["margin"])
        ));
    }
    let name = format!(
        "attachment; filename=\"sales-{}-{}.csv\"",
        r["from"].as_str().unwrap_or(""),
        r["to"].as_str().unwrap_or("")
    );
    let mut response = out.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    signed.finish(response)
}
