//! SQL for webhooks and their deliveries (the API's reads and writes; the
//! fan-out and the delivery job have their own statements beside them).

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::error::{WebhookError, WebhookResult};
use crate::platform::clock::{self, new_id, now_micros};
use crate::platform::db::{Db, SqlBuilder, Tx, commit, sql};
use crate::platform::http::list::{Cursor, Page};
use crate::platform::jobs;
use crate::platform::tenant::TenantId;

/// The events a webhook can subscribe to, by name.
pub const EVENTS: [&str; 6] = [
    "order.created",
    "order.status_changed",
    "quotation.accepted",
    "customer.created",
    "wallet.credited",
    "stock.low",
];

/// Subscribes to every event in [`EVENTS`]; only ever alone in the list.
pub const ALL_EVENTS: &str = "*";

/// The job type of one delivery attempt.
pub const DELIVERY_JOB: &str = "webhook.delivery";

/// Failed attempts in a row that open a webhook's circuit.
pub const FAILURES_TO_OPEN: i64 = 5;

/// The longest a circuit's cool-down grows to.
pub const MAX_COOLDOWN_MS: i64 = 3_600_000;

/// What a webhook's circuit says of its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    /// It works, or has failed fewer than 5 times in a row.
    Closed,
    /// 5 or more failures in a row; nothing is sent until `open_until`.
    Open,
    /// The cool-down is over: one delivery at a time may probe it.
    HalfOpen,
}

impl Circuit {
    pub fn of(failures: i64, open_until: Option<i64>, now: i64) -> Circuit {
        if failures < FAILURES_TO_OPEN {
            Circuit::Closed
        } else if open_until.is_some_and(|until| until > now) {
            Circuit::Open
        } else {
            Circuit::HalfOpen
        }
    }
}

/// A webhook as the API shows it (never with its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// Event names, or `["*"]`.
    pub events: Vec<String>,
    pub active: bool,
    pub circuit: Circuit,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// The answer to a create: the only one that carries the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    /// Signs every delivery (`Brisk-Signature`). Shown only here.
    pub secret: String,
    pub circuit: Circuit,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

pub const WEBHOOK_FIELDS: &[&str] = &[
    "id",
    "url",
    "events",
    "active",
    "circuit",
    "created_at",
    "updated_at",
];

/// A webhook's stored facts, from which its circuit is derived with the
/// clock ([`Circuit::of`]).
#[derive(FromRow, Serialize, Deserialize)]
struct WebhookRow {
    id: String,
    url: String,
    events: String,
    active: i64,
    failures: i64,
    open_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "id, url, events, active, failures, open_until, created_at, updated_at";

impl WebhookRow {
    fn into_webhook(self, now: i64) -> WebhookResult<Webhook> {
        let events = parse_events(&self.id, &self.events)?;
        Ok(Webhook {
            circuit: Circuit::of(self.failures, self.open_until, now),
            id: self.id,
            url: self.url,
            events,
            active: self.active != 0,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// The stored `events` column: a JSON list of names.
pub fn parse_events(id: &str, text: &str) -> WebhookResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| WebhookError::Corrupt {
        id: id.to_owned(),
        why: format!("events is not a JSON list of strings: {e}"),
    })
}

fn events_json(events: &[String]) -> String {
    // A Vec<String> always serializes.
    serde_json::to_string(events).unwrap_or_else(|_| "[]".to_owned())
}

/// A validated new webhook.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub active: bool,
}

/// A validated PATCH: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

pub async fn create(
    db: &Db,
    tenant_id: &TenantId,
    new: NewWebhook,
) -> WebhookResult<CreatedWebhook> {
    let now = now_micros();
    let id = new_id();
    sql("INSERT INTO webhooks (tenant_id, id, url, events, secret, active, failures, cooldown_ms, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $7)")
        .bind(tenant_id)
        .bind(id.as_str())
        .bind(new.url.as_str())
        .bind(events_json(&new.events))
        .bind(new.secret.as_str())
        .bind(new.active)
        .bind(now)
        .execute(db.writer())
        .await?;
    Ok(CreatedWebhook {
        id,
        url: new.url,
        events: new.events,
        active: new.active,
        secret: new.secret,
        circuit: Circuit::Closed,
        created_at: now,
        updated_at: now,
    })
}

/// A live webhook of the tenant, or `None`.
pub async fn get(db: &Db, tenant_id: &TenantId, id: &str) -> WebhookResult<Option<Webhook>> {
    let now = now_micros();
    sql(
        "SELECT id, url, events, active, failures, open_until, created_at, updated_at \
         FROM webhooks WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional_as::<_, WebhookRow>(db.reader())
    .await?
    .map(|row| row.into_webhook(now))
    .transpose()
}

/// Whether a live webhook exists (on the primary: it decides a write's
/// answer).
pub async fn exists(db: &Db, tenant_id: &TenantId, id: &str) -> WebhookResult<bool> {
    Ok(
        sql("SELECT 1 FROM webhooks WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(db.writer())
            .await?
            .is_some(),
    )
}

/// The tenant's live webhooks, newest first.
pub async fn list(db: &Db, tenant_id: &TenantId, page: &Page) -> WebhookResult<StoredPage> {
    let mut q = SqlBuilder::new(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE tenant_id = "
    ));
    q.bind(tenant_id).push(" AND deleted_at IS NULL");
    q.after_cursor("", page.after.as_ref());
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .bind(page.fetch_limit());
    // The primary on PostgreSQL: the page is cached until a write
    // invalidates it, so a replica's lag would stay in it.
    let rows = q
        .build()
        .fetch_all_as::<_, WebhookRow>(db.current_reader())
        .await?;
    let (rows, next) = page.finish(rows, |w| Cursor {
        created_at: w.created_at,
        id: w.id.clone(),
    });
    Ok(StoredPage { rows, next })
}

/// A page of webhooks as stored: what the list caches (under
/// `tags::webhooks`). It holds facts only — an open circuit turns
/// half-open with time and no write, so the circuit is derived when the
/// page is answered ([`StoredPage::at`]), never kept.
#[derive(Serialize, Deserialize)]
pub struct StoredPage {
    rows: Vec<WebhookRow>,
    next: Option<String>,
}

impl StoredPage {
    /// The page as the API shows it at `now` (micros), with its next cursor.
    pub fn at(self, now: i64) -> WebhookResult<(Vec<Webhook>, Option<String>)> {
        let webhooks = self
            .rows
            .into_iter()
            .map(|row| row.into_webhook(now))
            .collect::<WebhookResult<Vec<_>>>()?;
        Ok((webhooks, self.next))
    }
}

/// Applies `changes` to a live webhook; `None` when there is none. Setting
/// `active: true` also brings the webhook's deferred deliveries forward to
/// now (they waited while it was inactive); the second value says how many
/// were, so the caller can wake the job runners.
pub async fn update(
    db: &Db,
    tenant_id: &TenantId,
    id: &str,
    changes: WebhookChanges,
) -> WebhookResult<Option<(Webhook, u64)>> {
    let now = now_micros();
    let mut q = SqlBuilder::new("UPDATE webhooks SET updated_at = ");
    q.bind(now);
    if let Some(url) = &changes.url {
        q.push(", url = ").bind(url.as_str());
    }
    if let Some(events) = &changes.events {
        q.push(", events = ").bind(events_json(events));
    }
    if let Some(active) = changes.active {
        q.push(", active = ").bind(active);
    }
    q.push(" WHERE tenant_id = ")
        .bind(tenant_id)
        .push(" AND id = ")
        .bind(id)
        .push(" AND deleted_at IS NULL RETURNING ")
        .push(COLUMNS);
    let mut tx = db.begin().await?;
    let Some(row) = q
        .build()
        .fetch_optional_as::<_, WebhookRow>(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let requeued = if changes.active == Some(true) {
        requeue_deferred(&mut tx, tenant_id, id, now).await?
    } else {
        0
    };
    commit(tx).await?;
    Ok(Some((row.into_webhook(now)?, requeued)))
}

/// Soft-deletes a live webhook; `false` when there is none. Its pending
/// deliveries are never sent: their jobs find the webhook deleted and end.
pub async fn delete(db: &Db, tenant_id: &TenantId, id: &str) -> WebhookResult<bool> {
    let now = now_micros();
    let deleted = sql("UPDATE webhooks SET deleted_at = $1, updated_at = $1 \
                       WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL")
    .bind(now)
    .bind(tenant_id)
    .bind(id)
    .execute(db.writer())
    .await?;
    Ok(deleted > 0)
}

/// Brings the webhook's deferred delivery jobs (queued, due later) forward
/// to `now`: after it became active again, or after its circuit closed.
/// The deliveries are this module's; their jobs (same ids) the queue's.
pub async fn requeue_deferred(
    tx: &mut Tx,
    tenant_id: &TenantId,
    webhook_id: &str,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let pending: Vec<String> = sql(
        "SELECT id FROM webhook_deliveries WHERE tenant_id = $1 AND webhook_id = $2 AND status = 'pending'",
    )
    .bind(tenant_id)
    .bind(webhook_id)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| sqlx::Row::try_get(row, "id"))
    .collect::<Result<_, _>>()?;
    if pending.is_empty() {
        return Ok(0);
    }
    jobs::bring_forward(tx, tenant_id, DELIVERY_JOB, &pending, now).await
}

/// A delivery's state: `pending` (waiting or retrying), `delivered`, or
/// `failed` (gave up after the last attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub const NAMES: &'static str = "pending, delivered, failed";

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        Some(match text {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// One event's delivery to one webhook, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    #[schema(value_type = DeliveryStatus)]
    pub status: String,
    /// POSTs made so far.
    pub attempts: i64,
    /// The HTTP status of the last attempt, when it got an answer.
    pub response_status: Option<i64>,
    pub last_error: Option<String>,
    /// When a pending delivery is tried next (RFC 3339); `null` otherwise.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<String>,
    #[serde(with = "clock::as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

pub const DELIVERY_FIELDS: &[&str] = &[
    "id",
    "event_id",
    "event_type",
    "status",
    "attempts",
    "response_status",
    "last_error",
    "next_attempt_at",
    "delivered_at",
    "created_at",
];

#[derive(FromRow)]
struct DeliveryRow {
    id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    response_status: Option<i64>,
    last_error: Option<String>,
    next_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
    created_at: i64,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Delivery {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            status: row.status,
            attempts: row.attempts,
            response_status: row.response_status,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at.map(clock::rfc3339),
            delivered_at: row.delivered_at.map(clock::rfc3339),
            created_at: row.created_at,
        }
    }
}

/// A live webhook's deliveries, newest first, optionally of one status;
/// `None` when the tenant has no such webhook. One statement, plus one to
/// tell an empty page from a missing webhook.
pub async fn deliveries(
    db: &Db,
    tenant_id: &TenantId,
    webhook_id: &str,
    status: Option<DeliveryStatus>,
    page: &Page,
) -> WebhookResult<Option<(Vec<Delivery>, Option<String>)>> {
    // The next attempt is the delivery's job's run_at (same id), whether a
    // retry's backoff or a deferral set it.
    let mut q = SqlBuilder::new(
        "SELECT d.id, d.event_id, d.event_type, d.status, d.attempts, d.response_status, d.last_error, \
         CASE WHEN d.status = 'pending' THEN j.run_at END AS next_attempt_at, \
         d.delivered_at, d.created_at \
         FROM webhook_deliveries d \
         JOIN webhooks w ON w.tenant_id = d.tenant_id AND w.id = d.webhook_id AND w.deleted_at IS NULL \
         LEFT JOIN jobs j ON j.tenant_id = d.tenant_id AND j.id = d.id \
         WHERE d.tenant_id = ",
    );
    q.bind(tenant_id)
        .push(" AND d.webhook_id = ")
        .bind(webhook_id);
    if let Some(status) = status {
        q.push(" AND d.status = ").bind(status.as_str());
    }
    q.after_cursor("d.", page.after.as_ref());
    q.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ")
        .bind(page.fetch_limit());
    let rows = q
        .build()
        .fetch_all_as::<_, DeliveryRow>(db.reader())
        .await?;
    if rows.is_empty() && !exists(db, tenant_id, webhook_id).await? {
        return Ok(None);
    }
    let items: Vec<Delivery> = rows.into_iter().map(Delivery::from).collect();
    Ok(Some(page.finish(items, |d| Cursor {
        created_at: d.created_at,
        id: d.id.clone(),
    })))
}

/// Webhooks whose circuit is not closed (open, or waiting for its probe),
/// across every tenant: the `brisk_webhook_circuits_open` gauge.
pub async fn circuits_not_closed(db: &Db) -> Result<i64, sqlx::Error> {
    let row = sql("SELECT COUNT(*) AS n FROM webhooks WHERE failures >= 5 AND deleted_at IS NULL")
        .fetch_one(db.reader())
        .await?;
    sqlx::Row::try_get(&row, "n")
}
