//! One folder per business capability. Each owns its tables and SQL; other
//! modules call its functions, never its SQL.

pub mod catalog;
pub mod crm;
pub mod inventory;
pub mod ops;
pub mod orders;
pub mod pricing;
pub mod quotes;
pub mod tenancy;
pub mod wallet;
pub mod webhooks;

use std::sync::Arc;

use crate::platform::db::{self, Db};
use crate::platform::dispatch::Consumer;
use crate::platform::jobs::JobHandler;
use crate::platform::state::AppState;

/// Everything that follows committed events, in the order it is handed
/// each batch.
pub fn consumers(_state: &AppState) -> Vec<Arc<dyn Consumer>> {
    vec![webhooks::consumer()]
}

/// The handler of every job type.
pub fn job_handlers(state: &AppState) -> Vec<Arc<dyn JobHandler>> {
    vec![webhooks::delivery_handler(state)]
}

/// Data fixes that need Rust and run once, right after the schema
/// migrations: today, folding the search text of rows older than the
/// folded search columns. A settings mark makes later starts skip it in one
/// statement; running it twice (two nodes starting at once) is harmless.
pub async fn backfill(db: &Db) -> Result<(), sqlx::Error> {
    const MARK: &str = "backfill.search_folding";
    let done = db::sql("SELECT 1 FROM settings WHERE key = $1")
        .bind(MARK)
        .fetch_optional(db.writer())
        .await?
        .is_some();
    if done {
        return Ok(());
    }
    let customers = crm::backfill_search(db).await?;
    let products = catalog::backfill_search(db).await?;
    if customers > 0 || products > 0 {
        tracing::info!(
            customers,
            products,
            "folded the search text of existing rows"
        );
    }
    db::setting_or_insert(db, MARK, "done").await?;
    Ok(())
}
