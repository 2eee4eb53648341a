//! Notifications: e-mail that follows from business events. Today, the
//! order confirmation: every `order.created` event whose customer has an
//! e-mail becomes an `email.order_confirmation` job, which sends that
//! customer the order's number, lines and total over SMTP.
//!
//! Owns no table: it writes jobs through `platform::jobs` and reads
//! contacts through `crm::contacts`. Invariants:
//! - Without `BRISK_SMTP_URL` nothing is registered: no job is queued and no
//!   node claims an e-mail job. With it, the job is enqueued in the
//!   dispatch transaction of the event (so once per order), with the
//!   customer's address and the order as they were then; a customer
//!   without an e-mail (or deleted before the dispatch) gets none.
//! - A batch of events costs two statements: the contacts of all its
//!   customers, then all its jobs.
//! - One pooled SMTP transport per process, built once from the URL:
//!   `smtp://host:port` talks plain SMTP (a local relay), `smtps://…`
//!   implicit TLS through rustls (ring) with the platform's trust store.
//!   The settings are checked when the process starts, so a bad URL or
//!   From address stops the start instead of killing every job.
//! - A failed send is a failed attempt (retried with backoff, dead after
//!   `max_attempts`). Delivery is at least once: a send that the relay
//!   accepted but whose outcome was lost is sent again, with the same
//!   `Message-ID` (made from the job's id) so mail systems can drop the copy.

mod confirmation;
mod mailer;

use std::sync::Arc;

use crate::platform::config::Config;
use crate::platform::dispatch::Consumer;
use crate::platform::jobs::JobHandler;
use crate::platform::state::AppState;

pub use confirmation::EMAIL_ORDER_CONFIRMATION;
pub use mailer::{Mailer, MailerError};

/// The SMTP URL when e-mail is on (set and not blank).
fn smtp_url(config: &Config) -> Option<&str> {
    config
        .smtp_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
}

/// Checks `BRISK_SMTP_URL` and `BRISK_SMTP_FROM` when e-mail is on; the
/// error says which setting is wrong (never the URL itself: it may carry a
/// password).
pub fn check_settings(config: &Config) -> Result<(), MailerError> {
    match smtp_url(config) {
        Some(url) => Mailer::check(url, &config.smtp_from),
        None => Ok(()),
    }
}

/// What follows from events: the confirmations to queue, when e-mail is on.
pub fn consumers(state: &AppState) -> Vec<Arc<dyn Consumer>> {
    match smtp_url(&state.config) {
        Some(_) => vec![Arc::new(confirmation::OrderConfirmations)],
        None => Vec::new(),
    }
}

/// The e-mail job handlers, with this process's one SMTP transport, when
/// e-mail is on.
pub fn job_handlers(state: &AppState) -> Vec<Arc<dyn JobHandler>> {
    let Some(url) = smtp_url(&state.config) else {
        return Vec::new();
    };
    match Mailer::new(url, &state.config.smtp_from) {
        Ok(mailer) => vec![Arc::new(confirmation::SendConfirmation::new(
            state.clone(),
            Arc::new(mailer),
        ))],
        Err(err) => {
            // check_settings refused this at start; only an embedder that
            // skipped it gets here. E-mail jobs wait for a node that can
            // send them.
            tracing::error!(error = %err, "notifications: e-mail is off on this node");
            Vec::new()
        }
    }
}
