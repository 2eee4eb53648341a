//! One folder per business capability. Each owns its tables and SQL; other
//! modules call its functions, never its SQL. Each answers its own error
//! enum (in its `error.rs`, the one place that maps it to HTTP).
//!
//! Calls between modules never form a cycle: catalog → inventory; pricing
//! → catalog, crm, tenancy; inventory, crm and tenancy call no module;
//! orders, quotes and wallet build on these, which never call them;
//! links calls catalog. A type or constant lives in the module whose rule
//! it is (`MAX_STOCK` in inventory, `Tier` in catalog).

pub mod admin;
pub mod backoffice;
pub mod catalog;
pub mod crm;
pub mod dashboard;
pub mod inventory;
pub mod links;
pub mod notifications;
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
pub fn consumers(state: &AppState) -> Vec<Arc<dyn Consumer>> {
    let mut consumers: Vec<Arc<dyn Consumer>> = vec![
        webhooks::consumer(),
        Arc::new(orders::StaleReads {
            cache: state.cache.clone(),
        }),
    ];
    consumers.extend(notifications::consumers(state));
    consumers.push(dashboard::consumer(state));
    consumers
}

/// The handler of every job type.
pub fn job_handlers(state: &AppState) -> Vec<Arc<dyn JobHandler>> {
    let mut handlers: Vec<Arc<dyn JobHandler>> = vec![webhooks::delivery_handler(state)];
    handlers.extend(notifications::job_handlers(state));
    handlers
}

/// Data fixes that need Rust and run once, right after the schema
/// migrations: today, folding the search text of rows older than the
/// folded search columns, in batches of one read and one multi-row write.
/// A settings mark makes later starts skip it in one statement; running it
/// twice (two nodes starting at once) is harmless.
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
