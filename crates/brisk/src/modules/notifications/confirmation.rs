//! The order confirmation: queued from `order.created`, sent by its job.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use serde::{Deserialize, Serialize};

use super::mailer::Mailer;
use crate::modules::crm::contacts::{self, Contact};
use crate::modules::tenancy;
use crate::platform::clock::now_micros;
use crate::platform::db::Tx;
use crate::platform::dispatch::{Consumer, Event};
use crate::platform::jobs::{self, BoxFuture, Job, JobHandler, NewJob, Outcome};
use crate::platform::money::format_money;
use crate::platform::outbox::topic;
use crate::platform::state::AppState;
use crate::platform::tenant::TenantId;

/// The job type of an order confirmation e-mail.
pub const EMAIL_ORDER_CONFIRMATION: &str = "email.order_confirmation";

/// What a confirmation needs of the order (the event carries the whole
/// order as `GET /api/v1/orders/{id}` answers it; the rest is ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderSummary {
    id: String,
    number: String,
    customer_id: String,
    items: Vec<Line>,
    subtotal: i64,
    discount_total: i64,
    total: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: i64,
    unit_price: i64,
    #[serde(default)]
    discount: i64,
    line_total: i64,
}

/// A confirmation job's payload: where to send, and what.
#[derive(Debug, Serialize, Deserialize)]
struct Confirmation {
    to: String,
    name: String,
    order: OrderSummary,
}

/// Queues a confirmation for every new order whose customer has an e-mail.
pub struct OrderConfirmations;

impl Consumer for OrderConfirmations {
    fn name(&self) -> &'static str {
        "order confirmations"
    }

    fn wants(&self, topic: &str) -> bool {
        topic == topic::ORDER_CREATED
    }

    fn consume<'a>(
        &'a self,
        tx: &'a mut Tx,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(queue_confirmations(tx, events))
    }
}

/// Two statements per batch: every customer's contact, then every job.
async fn queue_confirmations(tx: &mut Tx, events: &[Event]) -> Result<(), sqlx::Error> {
    let mut orders = Vec::with_capacity(events.len());
    for event in events {
        match serde_json::from_str::<OrderSummary>(&event.payload) {
            Ok(order) => orders.push((event.tenant_id.clone(), order)),
            // Failing the batch would stop every later event behind this
            // one; the order itself is fine, only its e-mail is lost.
            Err(err) => tracing::error!(
                event = %event.id, error = %err,
                "notifications: an order.created event is not an order; no confirmation for it"
            ),
        }
    }
    let customers: Vec<(TenantId, String)> = orders
        .iter()
        .map(|(tenant, order)| (tenant.clone(), order.customer_id.clone()))
        .collect();
    let contacts: HashMap<(TenantId, String), Contact> = contacts::contacts(tx, &customers).await?;
    let now = now_micros();
    let mut queued = Vec::new();
    for (tenant_id, order) in orders {
        let Some(contact) = contacts.get(&(tenant_id.clone(), order.customer_id.clone())) else {
            continue;
        };
        let payload = serde_json::to_string(&Confirmation {
            to: contact.email.clone(),
            name: contact.name.clone(),
            order,
        })
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        queued.push(NewJob::new(
            tenant_id,
            EMAIL_ORDER_CONFIRMATION,
            payload,
            now,
        ));
    }
    if queued.is_empty() {
        return Ok(());
    }
    jobs::enqueue_many(tx, &queued, now).await
}

/// Sends one confirmation.
pub struct SendConfirmation {
    state: AppState,
    mailer: Arc<Mailer>,
}

impl SendConfirmation {
    pub fn new(state: AppState, mailer: Arc<Mailer>) -> Self {
        SendConfirmation { state, mailer }
    }

    async fn send(&self, job: &Job) -> Result<(), String> {
        let confirmation: Confirmation = serde_json::from_str(&job.payload)
            .map_err(|e| format!("the job's payload is not a confirmation: {e}"))?;
        let currency = tenancy::currency(&self.state, &job.tenant_id)
            .await
            .map_err(|e| format!("the tenant's currency: {e}"))?;
        let message = compose(&confirmation, &currency, self.mailer.from(), &job.id)?;
        self.mailer
            .send(message)
            .await
            .map_err(|e| format!("SMTP: {e}"))
    }
}

impl JobHandler for SendConfirmation {
    fn kind(&self) -> &'static str {
        EMAIL_ORDER_CONFIRMATION
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.send(job).await {
                Ok(()) => Outcome::Done,
                Err(error) => {
                    tracing::warn!(job = %job.id, attempt = job.attempt, error, "notifications: order confirmation not sent");
                    Outcome::Failed(error)
                }
            }
        })
    }
}

/// The message: plain text, ASCII apart from what the tenant's data brings.
fn compose(
    c: &Confirmation,
    currency: &str,
    from: &Mailbox,
    job_id: &str,
) -> Result<Message, String> {
    let order = &c.order;
    let to: Mailbox = format!("{} <{}>", quoted(&c.name), c.to)
        .parse()
        .or_else(|_| c.to.parse())
        .map_err(|e| format!("the customer's address {:?}: {e}", c.to))?;
    let money = |minor: i64| format_money(minor, currency);
    let mut body = String::new();
    let _ = writeln!(body, "Hello {},\n", c.name);
    let _ = writeln!(body, "thank you for your order {}.\n", order.number);
    for line in &order.items {
        let _ = write!(
            body,
            "- {}: {} x {}",
            line.sku,
            line.quantity,
            money(line.unit_price)
        );
        if line.discount != 0 {
            let _ = write!(body, ", less {}", money(line.discount));
        }
        let _ = writeln!(body, ", line total {}", money(line.line_total));
    }
    let _ = writeln!(body);
    if order.discount_total != 0 {
        let _ = writeln!(body, "Subtotal: {}", money(order.subtotal));
        let _ = writeln!(body, "Discount: {}", money(order.discount_total));
    }
    let _ = writeln!(body, "Total: {}", money(order.total));
    // The same id on every attempt of this job: a copy sent again after a
    // lost answer can be recognised.
    let message_id = format!("<{job_id}.order-confirmation@{}>", from.email.domain());
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(format!("Order {} confirmed", order.number))
        .message_id(Some(message_id))
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| format!("the message does not build: {e}"))
}

/// A display name as a quoted string, so commas and brackets in it cannot
/// change the address.
fn quoted(name: &str) -> String {
    let escaped: String = name
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirmation(name: &str) -> Confirmation {
        Confirmation {
            to: "ada@example.com".into(),
            name: name.into(),
            order: OrderSummary {
                id: "o1".into(),
                number: "SO-000042".into(),
                customer_id: "c1".into(),
                items: vec![
                    Line {
                        sku: "HOOD-M".into(),
                        quantity: 2,
                        unit_price: 1999,
                        discount: 0,
                        line_total: 3998,
                    },
                    Line {
                        sku: "CAP".into(),
                        quantity: 1,
                        unit_price: 1000,
                        discount: 100,
                        line_total: 900,
                    },
                ],
                subtotal: 4998,
                discount_total: 100,
                total: 4898,
            },
        }
    }

    #[test]
    fn the_message_names_the_order_each_line_and_the_total() {
        let from: Mailbox = "Brisk <brisk@shop.example>".parse().unwrap();
        let message = compose(&confirmation("Ada Lovelace"), "USD", &from, "job-1").unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        for needle in [
            "Subject: Order SO-000042 confirmed",
            "To: \"Ada Lovelace\" <ada@example.com>",
            "From: Brisk <brisk@shop.example>",
            "Message-ID: <job-1.order-confirmation@shop.example>",
            "- HOOD-M: 2 x 19.99 USD, line total 39.98 USD",
            "- CAP: 1 x 10.00 USD, less 1.00 USD, line total 9.00 USD",
            "Subtotal: 49.98 USD",
            "Discount: 1.00 USD",
            "Total: 48.98 USD",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }

    #[test]
    fn a_name_with_address_syntax_cannot_redirect_the_message() {
        let from: Mailbox = "brisk@shop.example".parse().unwrap();
        let message = compose(
            &confirmation("Eve <eve@evil.example>, \"x\""),
            "USD",
            &from,
            "job-2",
        )
        .unwrap();
        let to: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(to, vec!["ada@example.com"]);
    }
}
