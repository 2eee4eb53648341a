//! The back office: HTML pages under `/admin` for the people who run a
//! business on Brisk (sales, warehouse, owners), served by the same binary,
//! with its CSS and script embedded (nothing loaded from another host).
//!
//! Owns no table and no business rule. Every figure a page shows and every
//! change a form makes goes through the API's own routes, called in-process
//! ([`api::Api`]): the same authorization, validation, statements, cache,
//! limits and events as over HTTP. A refused form is shown again with the
//! API's messages next to its fields, and nothing changed.
//!
//! Invariants:
//! - a page is served only to a signed-in session (the `brisk_admin`
//!   cookie: `HttpOnly`, `SameSite=Strict`, `Path=/admin`, `Secure` when the
//!   request came over https through a proxy that says so, living as long as
//!   the refresh token); anything else is sent to `/admin/login`;
//! - every POST carries the session's CSRF token (an HMAC of the session's
//!   id under the server's secret), checked before anything else runs; a
//!   POST without it is a 403 that changes nothing, not even the session;
//! - a page offers only the actions the caller's role may take
//!   (`Role::may`); the server refuses the rest because the API route does;
//! - reading works without JavaScript: the script only refreshes the
//!   dashboard's figures and previews a quotation's prices.

mod api;
mod assets;
mod catalog;
mod customers;
mod dashboard;
mod reports;
mod sales;
mod session;
mod settings;
mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::platform::state::AppState;

pub use api::Api;
use session::Office;

/// The back office's routes. `api` is the API's own router with its state,
/// which every page and form calls in-process.
pub fn router(state: AppState, api: Router) -> Router<AppState> {
    let office = Office::new(state, Api::new(api));
    Router::new()
        .route("/admin/assets/{name}", get(assets::serve))
        .route(
            "/admin/login",
            get(session::login_page).post(session::login),
        )
        .route(
            "/admin/logout",
            get(session::logout_page).post(session::logout),
        )
        .route("/admin", get(dashboard::page))
        .route("/admin/fragments/dashboard", get(dashboard::figures))
        .route(
            "/admin/customers",
            get(customers::list).post(customers::create),
        )
        .route("/admin/customers/new", get(customers::new_form))
        .route(
            "/admin/customers/{id}",
            get(customers::detail).post(customers::update),
        )
        .route(
            "/admin/customers/{id}/wallet/credits",
            post(customers::credit),
        )
        .route("/admin/products", get(catalog::list).post(catalog::create))
        .route("/admin/products/new", get(catalog::new_form))
        .route("/admin/products/{id}", get(catalog::detail))
        .route("/admin/products/{id}/share-links", post(catalog::share))
        .route("/admin/variants/adjust", post(catalog::adjust_stock))
        .route(
            "/admin/quotations",
            get(sales::quotations).post(sales::create_quotation),
        )
        .route("/admin/quotations/new", get(sales::new_quotation))
        .route("/admin/quotations/preview", post(sales::preview))
        .route("/admin/quotations/{id}", get(sales::quotation))
        .route(
            "/admin/quotations/{id}/{action}",
            post(sales::move_quotation),
        )
        .route("/admin/orders", get(sales::orders))
        .route("/admin/orders/{id}", get(sales::order))
        .route("/admin/orders/{id}/status", post(sales::move_order))
        .route("/admin/reports", get(reports::page))
        .route("/admin/reports/sales.csv", get(reports::csv))
        .route("/admin/settings", get(settings::page))
        .route("/admin/settings/users", post(settings::create_user))
        .route("/admin/settings/webhooks", post(settings::create_webhook))
        .route("/admin/settings/jobs/{id}/retry", post(settings::retry_job))
        .fallback(view::not_found)
        .with_state(office)
}
