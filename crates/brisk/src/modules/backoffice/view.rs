//! What every page shares: the HTML answer and its headers, the page
//! shell with the navigation the role may use, and the pieces pages are
//! built of (dates, fields with their errors, pagers, tables, charts).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::api::{Reply, with_query};
use super::session::{CSRF_FIELD, Signed};
use crate::platform::auth::Action;

/// Pages are private to their user and never cached; nothing on them may
/// come from another host, nor run inline.
const SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML answer with the back office's headers.
pub fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Brisk back office" }
            // No icon: without this line every page costs a 404 for /favicon.ico.
            link rel="icon" href="data:,";
            link rel="stylesheet" href="/admin/assets/admin.css";
            script src="/admin/assets/admin.js" defer {}
        }
    }
}

/// A page outside a session (sign-in, refusals).
pub fn bare(title: &str, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { span.brand { "Brisk" } }
                main #main { h1 { (title) } (main) }
            }
        }
    }
}

/// Where a page sits in the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Customers,
    Products,
    Quotations,
    Orders,
    Reports,
    Settings,
    None,
}

/// The page shell: skip link, navigation (only what the role may see),
/// the user's role and the sign-out button, then the page.
pub fn page(signed: &Signed, title: &str, here: Nav, main: Markup) -> Markup {
    let mut links = vec![
        (Nav::Dashboard, "/admin", "Dashboard"),
        (Nav::Customers, "/admin/customers", "Customers"),
        (Nav::Products, "/admin/products", "Products"),
        (Nav::Quotations, "/admin/quotations", "Quotations"),
        (Nav::Orders, "/admin/orders", "Orders"),
    ];
    if signed.may(Action::ReadReports) {
        links.push((Nav::Reports, "/admin/reports", "Reports"));
    }
    if signed.may(Action::ManageUsers) {
        links.push((Nav::Settings, "/admin/settings", "Settings"));
    }
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    a.brand href="/admin" { "Brisk" }
                    nav aria-label="Main" {
                        ul {
                            @for (nav, href, label) in &links {
                                li {
                                    @if *nav == here {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.signout method="post" action="/admin/logout" {
                        input type="hidden" name=(CSRF_FIELD) value=(signed.csrf);
                        span.role { "Signed in as " (signed.user.role.as_str()) }
                        button type="submit" { "Sign out" }
                    }
                }
                main #main { h1 { (title) } (main) }
            }
        }
    }
}

/// The page for an API refusal: its status and its sentence.
pub fn problem(signed: &Signed, reply: &Reply) -> Markup {
    let title = match reply.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        s if s.is_server_error() => "Something went wrong",
        _ => "Refused",
    };
    page(
        signed,
        title,
        Nav::None,
        html! {
            p role="alert" { (reply.detail()) }
            p { a href="/admin" { "Back to the dashboard" } }
        },
    )
}

/// Any other path under `/admin`.
pub async fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        bare(
            "Not found",
            html! { p { "There is no such page." } p { a href="/admin" { "Back to the dashboard" } } },
        ),
    )
}

/// A time the API wrote (RFC 3339, UTC) as people read it, with the zone.
pub fn when(value: &Value) -> Markup {
    match value.as_str() {
        Some(text) if text.len() >= 16 => html! {
            time datetime=(text) { (text[..10]) " " (text[11..16]) " UTC" }
        },
        Some(text) => html! { (text) },
        None => html! { "—" },
    }
}

/// Text of a JSON value: strings bare, numbers as written, null as a dash.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

/// The field errors of a refused form, by field name.
#[derive(Default)]
pub struct Errors {
    pub general: Option<String>,
    fields: Vec<(String, String)>,
}

impl Errors {
    /// What the API said: its sentence, and each field's message.
    pub fn from_reply(reply: &Reply) -> Errors {
        Errors {
            general: Some(reply.detail()),
            fields: reply.field_errors(),
        }
    }

    /// What a list's filters did wrong, if the API refused them.
    pub fn unless_ok(reply: &Reply) -> Errors {
        if reply.ok() {
            Errors::default()
        } else {
            Errors::from_reply(reply)
        }
    }

    pub fn field(field: &str, message: &str) -> Errors {
        Errors {
            general: Some(format!("{field} {message}")),
            fields: vec![(field.to_owned(), message.to_owned())],
        }
    }

    /// The messages for `field` and the fields under it (`items[0].quantity`
    /// under `items[0]`).
    pub fn of(&self, field: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(f, _)| {
                f == field
                    || f.strip_prefix(field)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .map(|(_, m)| m.as_str())
            .collect()
    }

    /// The summary at the top of a refused form.
    pub fn summary(&self) -> Markup {
        html! {
            @if let Some(general) = &self.general {
                div.error role="alert" {
                    p { (general) }
                    @if !self.fields.is_empty() {
                        ul { @for (field, message) in &self.fields { li { code { (field) } " " (message) } } }
                    }
                }
            }
        }
    }
}

/// The id of the element that carries a field's messages.
fn error_id(id: &str) -> String {
    format!("{id}-error")
}

/// A labelled input with the API's messages for `field` under it.
pub fn input(label: &str, name: &str, value: &str, kind: &str, errors: &Errors) -> Markup {
    field_with(label, name, name, value, kind, errors)
}

/// [`input`] whose HTML name differs from the API's field name.
pub fn field_with(
    label: &str,
    name: &str,
    field: &str,
    value: &str,
    kind: &str,
    errors: &Errors,
) -> Markup {
    let id = format!("f-{}", name.replace(['[', ']', '.'], "-"));
    field_with_id(&id, label, name, field, value, kind, errors)
}

/// [`field_with`] for a name that repeats on the page (a line of a form),
/// with an id of its own.
pub fn field_with_id(
    id: &str,
    label: &str,
    name: &str,
    field: &str,
    value: &str,
    kind: &str,
    errors: &Errors,
) -> Markup {
    let messages = errors.of(field);
    html! {
        p.field {
            label for=(id) { (label) }
            @if messages.is_empty() {
                input id=(id) name=(name) type=(kind) value=(value);
            } @else {
                input id=(id) name=(name) type=(kind) value=(value) aria-invalid="true" aria-describedby=(error_id(id));
                span.field-error id=(error_id(id)) { (messages.join("; ")) }
            }
        }
    }
}

/// A labelled select; `options` are `(value, label)`.
pub fn select(
    label: &str,
    name: &str,
    options: &[(&str, &str)],
    chosen: &str,
    errors: &Errors,
) -> Markup {
    let id = format!("f-{}", name.replace(['[', ']', '.'], "-"));
    let messages = errors.of(name);
    html! {
        p.field {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[(!messages.is_empty()).then_some("true")] aria-describedby=[(!messages.is_empty()).then(|| error_id(&id))] {
                @for (value, text) in options {
                    option value=(value) selected[*value == chosen] { (text) }
                }
            }
            @if !messages.is_empty() {
                span.field-error id=(error_id(&id)) { (messages.join("; ")) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(signed: &Signed) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(signed.csrf); }
}

/// "Next page" (the API's cursor) and "First page" links of a list, with
/// the list's filters kept.
pub fn pager(path: &str, filters: &[(&str, &str)], cursor: &str, reply: &Reply) -> Markup {
    pager_as(path, filters, "cursor", cursor, reply)
}

/// [`pager`] for a list whose cursor travels as `param` (a page with two
/// lists).
pub fn pager_as(
    path: &str,
    filters: &[(&str, &str)],
    param: &str,
    cursor: &str,
    reply: &Reply,
) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if !cursor.is_empty() {
                a href=(with_query(path, filters)) { "First page" }
            }
            @if let Some(next) = reply.next_cursor() {
                @let pairs: Vec<(&str, &str)> = filters.iter().copied().chain([(param, next)]).collect();
                a href=(with_query(path, &pairs)) rel="next" { "Next page" }
            }
        }
    }
}

/// A status as a badge (colour and text: never colour alone).
pub fn badge(status: &str) -> Markup {
    html! { span class=(format!("badge badge-{status}")) { (status) } }
}

/// One bar of a chart.
pub struct Bar {
    pub label: String,
    pub value: i64,
    /// What the bar's value reads as (money, a count).
    pub shown: String,
}

/// Bars as an inline SVG, drawn on the server: the title and description
/// name the chart for assistive technology, each bar carries its value as
/// a tooltip, and the same numbers follow as a table for those who cannot
/// see it.
pub fn bar_chart(id: &str, title: &str, bars: &[Bar]) -> Markup {
    const WIDTH: i64 = 720;
    const HEIGHT: i64 = 180;
    const TOP: i64 = 16;
    const BOTTOM: i64 = 24;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let count = i64::try_from(bars.len()).unwrap_or(1).max(1);
    let slot = WIDTH / count;
    let bar_width = (slot * 3 / 4).max(1);
    let plot = HEIGHT - TOP - BOTTOM;
    let best = bars.iter().max_by_key(|b| b.value);
    html! {
        figure.chart {
            svg id=(id) viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-labelledby=(format!("{id}-title {id}-desc")) {
                title id=(format!("{id}-title")) { (title) }
                desc id=(format!("{id}-desc")) {
                    (bars.len()) " bars"
                    @if let Some(best) = best { "; highest " (best.label) ": " (best.shown) }
                }
                line.axis x1="0" y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
                @for (i, bar) in bars.iter().enumerate() {
                    @let i = i64::try_from(i).unwrap_or(0);
                    @let h = if bar.value > 0 { (bar.value.saturating_mul(plot) / max).max(1) } else { 0 };
                    rect.bar x=(i * slot + (slot - bar_width) / 2) y=(HEIGHT - BOTTOM - h) width=(bar_width) height=(h) {
                        title { (bar.label) ": " (bar.shown) }
                    }
                }
                @if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
                    text.tick x="0" y=(HEIGHT - 6) { (first.label) }
                    text.tick x=(WIDTH) y=(HEIGHT - 6) text-anchor="end" { (last.label) }
                }
                @if let Some(best) = best {
                    text.tick x="0" y="12" { "highest " (best.shown) }
                }
            }
            figcaption { (title) }
            details {
                summary { "The numbers as a table" }
                table {
                    thead { tr { th scope="col" { "Period" } th scope="col" { "Value" } } }
                    tbody { @for bar in bars { tr { td { (bar.label) } td.num { (bar.shown) } } } }
                }
            }
        }
    }
}

/// The line a list shows when it has nothing.
pub fn empty(what: &str) -> Markup {
    html! { p.empty { "No " (what) " yet." } }
}
