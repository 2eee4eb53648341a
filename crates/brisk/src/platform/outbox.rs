//! The transactional outbox: every business fact writes its event here in
//! its own transaction, so whatever follows from it (dashboard aggregates,
//! webhooks, cache invalidation) can never miss it or see one that did not
//! happen.

use crate::platform::clock::new_id;
use crate::platform::db::{Tx, sql};
use crate::platform::tenant::TenantId;

/// Event names, as webhooks will publish them.
pub mod topic {
    pub const ORDER_CREATED: &str = "order.created";
    pub const ORDER_STATUS_CHANGED: &str = "order.status_changed";
    pub const QUOTATION_ACCEPTED: &str = "quotation.accepted";
    pub const WALLET_CREDITED: &str = "wallet.credited";
}

/// Writes one event in the caller's transaction. Its only failures are the
/// database's, so each module's error carries them as it carries its own
/// statements' (503 when the database is busy or gone, else 500).
pub async fn publish(
    tx: &mut Tx,
    tenant_id: &TenantId,
    topic: &str,
    payload: &impl serde::Serialize,
    now: i64,
) -> Result<(), sqlx::Error> {
    // A payload that cannot be encoded fails like any value the database
    // could not be handed (a 500).
    let payload = serde_json::to_string(payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sql("INSERT INTO outbox (tenant_id, id, topic, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(tenant_id)
        .bind(new_id())
        .bind(topic)
        .bind(payload)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
