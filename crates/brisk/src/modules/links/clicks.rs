//! The click flusher: each node counts the clicks it answered in memory
//! ([`AppState::share_link_clicks`]) and writes them every
//! [`FLUSH_EVERY`] as `clicks = clicks + n`, a fixed handful of statements
//! per flush whatever the traffic. A flush that fails puts its counts back
//! for the next one; the stop signal triggers a last flush (the server has
//! finished its requests by then), so a graceful stop loses nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::watch;

use super::store;
use crate::platform::cache::{Cache, tags};
use crate::platform::db::Db;
use crate::platform::tally::Tally;
use crate::platform::tenant::TenantId;

#[cfg(doc)]
use crate::platform::state::AppState;

/// How often counted clicks are written: well inside the 2 s in which they
/// must show.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Last flushes tried on stop before giving up (the database is gone).
const FINAL_ATTEMPTS: u32 = 5;

/// Writes what was counted since the last flush; keeps what failed.
/// Returns the tenants whose links' counts changed (their cached link
/// reads are stale).
pub async fn flush(db: &Db, tally: &Tally<(TenantId, String)>) -> BTreeSet<TenantId> {
    let taken = tally.take();
    if taken.is_empty() {
        return BTreeSet::new();
    }
    let tenants: BTreeSet<TenantId> = taken.keys().map(|(tenant, _)| tenant.clone()).collect();
    let (written, failed) = store::add_clicks(db, taken.into_iter().collect()).await;
    if written > 0 {
        metrics::counter!("brisk_share_link_clicks_flushed_total").increment(written);
    }
    if !failed.is_empty() {
        tally.put_back(failed.into_iter().collect());
    }
    // A failed chunk may sit beside written ones: invalidating its tenants
    // too costs a re-read, never a stale count.
    if written > 0 {
        tenants
    } else {
        BTreeSet::new()
    }
}

/// [`flush`], then the written tenants' link reads invalidated.
async fn flush_and_invalidate(db: &Db, cache: &Cache, tally: &Tally<(TenantId, String)>) {
    let tenants = flush(db, tally).await;
    if !tenants.is_empty() {
        let stale: Vec<String> = tenants.iter().map(tags::share_links).collect();
        cache.invalidate(&stale);
    }
}

/// Flushes every [`FLUSH_EVERY`] until `stop`, then once more (retrying a
/// few times if the database hiccups).
pub async fn flush_until_stopped(
    db: Db,
    cache: Cache,
    tally: Tally<(TenantId, String)>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            _ = tick.tick() => flush_and_invalidate(&db, &cache, &tally).await,
        }
    }
    for attempt in 0..FINAL_ATTEMPTS {
        flush_and_invalidate(&db, &cache, &tally).await;
        if tally.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
    let lost: u64 = tally.take().values().sum();
    tracing::error!(
        clicks = lost,
        "share-link clicks could not be written before stopping"
    );
}

#[cfg(test)]
#[path = "clicks_tests.rs"]
mod tests;
