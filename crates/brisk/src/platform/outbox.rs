//! The transactional outbox: every business fact writes its event here in
//! its own transaction, so whatever follows from it (dashboard aggregates,
//! webhooks, cache invalidation) can never miss it or see one that did not
//! happen.

use crate::platform::clock::new_id;
use crate::platform::db::{SqlBuilder, Tx, sql};
use crate::platform::tenant::TenantId;

/// Event names, as webhooks will publish them.
pub mod topic {
    pub const ORDER_CREATED: &str = "order.created";
    pub const ORDER_STATUS_CHANGED: &str = "order.status_changed";
    pub const QUOTATION_ACCEPTED: &str = "quotation.accepted";
    pub const WALLET_CREDITED: &str = "wallet.credited";
    pub const CUSTOMER_CREATED: &str = "customer.created";
    pub const STOCK_LOW: &str = "stock.low";

    /// Every topic, for validating subscriptions.
    pub const ALL: [&str; 6] = [
        ORDER_CREATED,
        ORDER_STATUS_CHANGED,
        QUOTATION_ACCEPTED,
        CUSTOMER_CREATED,
        WALLET_CREDITED,
        STOCK_LOW,
    ];
}

/// What an event is about, e.g. `order:0193…`: the dispatcher and the
/// webhook deliveries keep the events of one aggregate in order.
pub fn aggregate(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

/// Writes one event in the caller's transaction. Its only failures are the
/// database's, so each module's error carries them as it carries its own
/// statements' (503 when the database is busy or gone, else 500).
pub async fn publish(
    tx: &mut Tx,
    tenant_id: &TenantId,
    topic: &str,
    aggregate: &str,
    payload: &impl serde::Serialize,
    now: i64,
) -> Result<(), sqlx::Error> {
    // A payload that cannot be encoded fails like any value the database
    // could not be handed (a 500).
    let payload = serde_json::to_string(payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sql("INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(tenant_id)
        .bind(new_id())
        .bind(topic)
        .bind(aggregate)
        .bind(payload)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Writes several events of one topic in one statement (none for an empty
/// slice): `(aggregate, payload)` each.
pub async fn publish_all<P: serde::Serialize>(
    tx: &mut Tx,
    tenant_id: &TenantId,
    topic: &str,
    events: &[(String, P)],
    now: i64,
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut q = SqlBuilder::new(
        "INSERT INTO outbox (tenant_id, id, topic, aggregate, payload, created_at) VALUES ",
    );
    for (i, (aggregate, payload)) in events.iter().enumerate() {
        let payload =
            serde_json::to_string(payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        if i > 0 {
            q.push(", ");
        }
        q.push("(")
            .bind(tenant_id)
            .push(", ")
            .bind(new_id())
            .push(", ")
            .bind(topic)
            .push(", ")
            .bind(aggregate.as_str())
            .push(", ")
            .bind(payload)
            .push(", ")
            .bind(now)
            .push(")");
    }
    q.one_shot();
    q.build().execute(&mut **tx).await?;
    Ok(())
}
