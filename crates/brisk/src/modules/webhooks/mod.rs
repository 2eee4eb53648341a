//! Webhooks: a tenant's HTTP endpoints that are told, by a signed POST,
//! about the events they subscribe to — and the deliveries that carry each
//! event there, with retries and a circuit breaker per endpoint.
//!
//! Owns the `webhooks` and `webhook_deliveries` tables, and the
//! `webhook.delivery` rows of `jobs` (written in the job table's format,
//! with the delivery's id, so a delivery's next attempt is its job's
//! `run_at`). Invariants:
//! - Only owners and admins reach any webhook route, reads included.
//! - A webhook's URL is `http`/`https` and, unless
//!   `BRISK_WEBHOOK_ALLOW_PRIVATE`, never reaches a loopback, private,
//!   link-local, shared or unspecified address: checked when saved and
//!   again at every delivery, after DNS, by the client's own resolver, so
//!   the connection goes only to the vetted addresses (`ssrf`).
//! - The secret is shown once, in the create answer, and never again.
//! - Every dispatched event produces, in the dispatch transaction, exactly
//!   one delivery and one job per active, live webhook subscribed to it
//!   (`fanout`); events that happen while a webhook is inactive are not
//!   queued for it. A delivery's body is fixed when it is created, so every
//!   attempt sends the same bytes and the same event id.
//! - A delivery is `pending` until a 2xx (`delivered`) or until its last
//!   attempt failed (`failed`). Inactive webhooks, open circuits, and
//!   earlier pending events of the same aggregate hold it back without
//!   spending an attempt (`delivery`).
//! - Circuit: 5 failed attempts in a row open it for the cool-down
//!   (`BRISK_CIRCUIT_COOLDOWN_MS`); then exactly one delivery at a time
//!   probes; a failed probe doubles the cool-down (at most an hour), a
//!   success closes it and sends what waited.
//! - Deleted webhooks are soft-deleted: gone from every route, sent
//!   nothing more; their deliveries stay for the record.

mod delivery;
mod error;
mod fanout;
mod routes;
mod ssrf;
mod store;

use std::sync::Arc;

use crate::platform::db::Db;
use crate::platform::dispatch::Consumer;
use crate::platform::jobs::JobHandler;
use crate::platform::state::AppState;

pub use routes::router;
pub use store::DELIVERY_JOB;

/// The outbox consumer that creates deliveries.
pub fn consumer() -> Arc<dyn Consumer> {
    Arc::new(fanout::Fanout)
}

/// The handler of `webhook.delivery` jobs, with its one HTTP client.
pub fn delivery_handler(state: &AppState) -> Arc<dyn JobHandler> {
    Arc::new(delivery::DeliveryHandler::new(state))
}

/// Refreshes the `brisk_webhook_circuits_open` gauge (one statement), for
/// a `/metrics` scrape: webhooks whose circuit is open or half-open. Bounded
/// in time, so a scrape still answers (with the last value) while the
/// database does not.
pub async fn refresh_gauges(db: &Db) {
    let counted = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        store::circuits_not_closed(db),
    )
    .await;
    match counted {
        Ok(Ok(n)) => metrics::gauge!("brisk_webhook_circuits_open").set(n as f64),
        Ok(Err(err)) => tracing::warn!(error = %err, "webhooks: cannot count open circuits"),
        Err(_) => tracing::warn!("webhooks: counting open circuits timed out"),
    }
}
