//! The outbox consumer: turns each committed event into one pending
//! delivery, and one `webhook.delivery` job, per webhook subscribed to it.
//!
//! It runs inside the dispatcher's transaction, so a delivery exists
//! exactly when its event was dispatched (never twice, never lost). The
//! work per batch is bounded: one SELECT for every subscribed webhook of
//! the batch's tenants, then multi-row INSERTs of at most [`ROWS_PER_INSERT`]
//! rows each.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;

use super::store::{self, ALL_EVENTS, DELIVERY_JOB, EVENTS};
use crate::platform::clock::{self, new_id, now_micros};
use crate::platform::db::{SqlBuilder, Tx};
use crate::platform::dispatch::{Consumer, Event};
use crate::platform::jobs::{self, BoxFuture, NewJob};

/// Rows per INSERT: well under both databases' limits on bound values
/// (SQLite 32766, PostgreSQL 65535) at 8 values a row.
const ROWS_PER_INSERT: usize = 500;

pub struct Fanout;

/// A webhook that may receive events of its tenant.
struct Subscriber {
    id: String,
    /// `None`: every event.
    events: Option<Vec<String>>,
}

impl Subscriber {
    fn wants(&self, topic: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.iter().any(|e| e == topic))
    }
}

/// One (event, webhook) pair to insert.
struct NewDelivery<'a> {
    id: String,
    webhook_id: &'a str,
    event: &'a Event,
    body: &'a str,
}

impl Consumer for Fanout {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    /// Only the documented events: a `*` subscription is to those, never to
    /// an internal topic some module might publish later.
    fn wants(&self, topic: &str) -> bool {
        EVENTS.contains(&topic)
    }

    fn consume<'a>(
        &'a self,
        tx: &'a mut Tx,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(fan_out(tx, events))
    }
}

async fn fan_out(tx: &mut Tx, events: &[Event]) -> Result<(), sqlx::Error> {
    let tenants: BTreeSet<&str> = events.iter().map(|e| e.tenant_id.as_str()).collect();
    let subscribers = subscribers(tx, &tenants).await?;
    if subscribers.is_empty() {
        return Ok(());
    }
    // The body is the same for every webhook of an event: build it once.
    let mut bodies: Vec<Option<String>> = Vec::with_capacity(events.len());
    for event in events {
        bodies.push(
            subscribers
                .get(event.tenant_id.as_str())
                .filter(|subs| subs.iter().any(|s| s.wants(&event.topic)))
                .and_then(|_| body(event)),
        );
    }
    let mut pairs = Vec::new();
    for (event, body) in events.iter().zip(&bodies) {
        let (Some(body), Some(subs)) = (body, subscribers.get(event.tenant_id.as_str())) else {
            continue;
        };
        for sub in subs.iter().filter(|s| s.wants(&event.topic)) {
            pairs.push(NewDelivery {
                id: new_id(),
                webhook_id: &sub.id,
                event,
                body,
            });
        }
    }
    let now = now_micros();
    for chunk in pairs.chunks(ROWS_PER_INSERT) {
        insert_deliveries(tx, chunk, now).await?;
    }
    jobs::enqueue_many(tx, &delivery_jobs(&pairs, now), now).await
}

/// Every active, live webhook of these tenants, by tenant (oldest first).
async fn subscribers(
    tx: &mut Tx,
    tenants: &BTreeSet<&str>,
) -> Result<HashMap<String, Vec<Subscriber>>, sqlx::Error> {
    let mut q = SqlBuilder::new("SELECT tenant_id, id, events FROM webhooks WHERE tenant_id IN ");
    q.bind_in(tenants.iter().copied())
        .push(" AND deleted_at IS NULL AND active = 1 ORDER BY tenant_id, created_at, id");
    let rows = q.build().fetch_all(&mut **tx).await?;
    let mut by_tenant: HashMap<String, Vec<Subscriber>> = HashMap::new();
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let id: String = row.try_get("id")?;
        let text: String = row.try_get("events")?;
        // One corrupt row must not stop the outbox for every tenant: it
        // gets nothing and says so in the log.
        let events = match store::parse_events(&id, &text) {
            Ok(events) => events,
            Err(err) => {
                tracing::error!(error = %err, "webhooks: skipping a webhook whose events cannot be read");
                continue;
            }
        };
        let events = (events.iter().all(|e| e != ALL_EVENTS)).then_some(events);
        by_tenant
            .entry(tenant_id)
            .or_default()
            .push(Subscriber { id, events });
    }
    Ok(by_tenant)
}

/// The exact JSON POSTed for `event`: `{id, type, created_at, tenant_id,
/// data}` in that order, `data` being the event's payload as published.
/// `None` (and an error in the log) for a payload that is not JSON: that
/// event is not sent, and the outbox goes on.
fn body(event: &Event) -> Option<String> {
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&event.payload) {
        tracing::error!(error = %err, event_id = %event.id, topic = %event.topic,
            "webhooks: an event's payload is not JSON; it is not delivered");
        return None;
    }
    let text = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    Some(format!(
        "{{\"id\":{},\"type\":{},\"created_at\":{},\"tenant_id\":{},\"data\":{}}}",
        text(&event.id),
        text(&event.topic),
        text(&clock::rfc3339(event.created_at)),
        text(event.tenant_id.as_str()),
        event.payload.trim(),
    ))
}

async fn insert_deliveries(
    tx: &mut Tx,
    chunk: &[NewDelivery<'_>],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut q = SqlBuilder::new(
        "INSERT INTO webhook_deliveries \
         (tenant_id, id, webhook_id, event_id, event_type, aggregate, seq, body, status, attempts, created_at) VALUES ",
    );
    for (i, d) in chunk.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(&d.event.tenant_id)
            .push(", ")
            .bind(d.id.as_str())
            .push(", ")
            .bind(d.webhook_id)
            .push(", ")
            .bind(d.event.id.as_str())
            .push(", ")
            .bind(d.event.topic.as_str())
            .push(", ")
            .bind(d.event.aggregate.as_str())
            .push(", ")
            .bind(d.event.seq)
            .push(", ")
            .bind(d.body)
            .push(", 'pending', 0, ")
            .bind(now)
            .push(")");
    }
    // An event is dispatched once, so this never fires; if it ever did, a
    // duplicate must not roll back (and so stall) the whole dispatch. The
    // job of a row that was not inserted finds no delivery and ends.
    q.push(" ON CONFLICT (tenant_id, webhook_id, event_id) DO NOTHING")
        .one_shot();
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// One `webhook.delivery` job per delivery, with the delivery's id. Their
/// run_at rises by a microsecond per row in event order, so runners claim
/// them (`ORDER BY run_at`) in the order the events happened.
fn delivery_jobs(pairs: &[NewDelivery<'_>], now: i64) -> Vec<NewJob> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, d)| NewJob {
            tenant_id: d.event.tenant_id.clone(),
            id: d.id.clone(),
            kind: DELIVERY_JOB,
            payload: serde_json::json!({ "delivery_id": d.id }).to_string(),
            run_at: now.saturating_add(i64::try_from(i).unwrap_or(i64::MAX)),
        })
        .collect()
}
