//! The outbox dispatcher: hands every committed event, in commit order, to
//! the consumers that subscribe to it (webhooks and notifications today).
//!
//! Invariants:
//! - One dispatch is one transaction: read the oldest undispatched events,
//!   let every consumer write its effects (deliveries, jobs, aggregates) in
//!   that transaction, mark the events dispatched, commit. A node that dies
//!   mid-way rolls back all of it, so an effect happens once per event.
//! - Dispatch is serialized across nodes (a transaction-scoped advisory lock
//!   on PostgreSQL; the single writer connection on SQLite), and events are
//!   read in `seq` order. Two events of one aggregate (an order) are written
//!   by transactions that hold that aggregate's row lock in turn, so the
//!   later one is inserted only after the earlier one committed: reading
//!   pending events by `seq` hands them over in the order they happened.
//! - Events are marked one by one (by `seq`), never "everything below N":
//!   an event that commits late with a lower `seq` is still dispatched.
//! - The dispatcher sleeps until a commit on this node wakes it
//!   (`db::committed`), a PostgreSQL `NOTIFY brisk_outbox` from a node that
//!   runs no dispatcher of its own (see [`announce_postgres`]), or a slow
//!   poll (the fallback if a notification is lost), so an idle node reads
//!   the outbox about once a second. The notification is sent after the
//!   business commit, never inside it: a `NOTIFY` in a transaction takes a
//!   database-wide lock at commit and would serialize every order.
//! - Consumers that act outside the database (cache invalidation) get
//!   `after_commit` once the dispatch committed; they must be idempotent.
//! - Dispatched events are deleted after 7 days.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::{Notify, watch};

use crate::platform::cache::{Cache, tags};
use crate::platform::clock::now_micros;
use crate::platform::db::{self, Backend, Db, Tx, sql};
use crate::platform::jobs::BoxFuture;
use crate::platform::tenant::TenantId;

/// How long dispatched events are kept.
pub const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Events handed over per transaction.
const BATCH: i64 = 500;
/// Serializes dispatchers across PostgreSQL nodes (`pg_advisory_xact_lock`).
const DISPATCH_LOCK: i64 = 0x6272_6973_6b01;

/// A committed business event.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub tenant_id: TenantId,
    pub id: String,
    /// `order.created`, …
    pub topic: String,
    /// What the event is about (`order:<id>`); events of one aggregate are
    /// handed over in order. Empty when order does not matter.
    pub aggregate: String,
    /// JSON.
    pub payload: String,
    /// Micros.
    pub created_at: i64,
}

/// Something that follows from committed events.
pub trait Consumer: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Whether events of this topic concern it.
    fn wants(&self, topic: &str) -> bool;
    /// Writes its effects in the dispatch transaction. `events` are the ones
    /// it wants, in order, a bounded batch; a fixed number of statements per
    /// call, whatever the batch size.
    fn consume<'a>(
        &'a self,
        tx: &'a mut Tx,
        events: &'a [Event],
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
    /// After the dispatch committed (effects outside the database).
    fn after_commit(&self, _events: &[Event]) {}
}

#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    consumers: Arc<Vec<Arc<dyn Consumer>>>,
    idle_poll: Duration,
    /// Fired after a dispatch committed, for the job runners of this node
    /// (consumers enqueue jobs).
    jobs_wake: Arc<Notify>,
    /// Told that the jobs of the dispatched events' tenants changed.
    cache: Cache,
}

impl Dispatcher {
    pub fn new(
        db: Db,
        consumers: Vec<Arc<dyn Consumer>>,
        idle_poll: Duration,
        jobs_wake: Arc<Notify>,
        cache: Cache,
    ) -> Self {
        Dispatcher {
            db,
            consumers: Arc::new(consumers),
            idle_poll,
            jobs_wake,
            cache,
        }
    }

    /// Dispatches until stopped, waking on `wake` (commits of this node,
    /// and notifications from other nodes).
    pub async fn run(self, mut stop: watch::Receiver<bool>, wake: Arc<Notify>) {
        loop {
            if *stop.borrow() {
                break;
            }
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let committed = db::committed().notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            match self.dispatch_once().await {
                // A full batch: more may be waiting.
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "outbox: dispatch failed; retrying");
                }
            }
            tokio::select! {
                () = &mut woken => {}
                () = &mut committed => {}
                () = tokio::time::sleep(self.idle_poll) => {}
                _ = stop.changed() => {}
            }
        }
        // What committed before the stop is handed over before the end.
        if let Err(err) = self.dispatch_once().await {
            tracing::warn!(error = %err, "outbox: last dispatch before stopping failed");
        }
    }

    /// One batch: returns how many events were dispatched.
    pub async fn dispatch_once(&self) -> Result<usize, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        if self.db.backend() == Backend::Postgres {
            sql("SELECT pg_advisory_xact_lock($1)")
                .bind(DISPATCH_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        let rows = sql(
            "SELECT seq, tenant_id, id, topic, aggregate, payload, created_at FROM outbox \
                        WHERE processed_at IS NULL ORDER BY seq LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(Event {
                seq: row.try_get("seq")?,
                tenant_id: row.try_get("tenant_id")?,
                id: row.try_get("id")?,
                topic: row.try_get("topic")?,
                aggregate: row.try_get("aggregate")?,
                payload: row.try_get("payload")?,
                created_at: row.try_get("created_at")?,
            });
        }
        let mut handed: Vec<(Arc<dyn Consumer>, Vec<Event>)> = Vec::new();
        for consumer in self.consumers.iter() {
            let wanted: Vec<Event> = events
                .iter()
                .filter(|e| consumer.wants(&e.topic))
                .cloned()
                .collect();
            if !wanted.is_empty() {
                consumer.consume(&mut tx, &wanted).await?;
                handed.push((consumer.clone(), wanted));
            }
        }
        let now = now_micros();
        let mut mark = db::SqlBuilder::new("UPDATE outbox SET processed_at = ");
        mark.bind(now).push(" WHERE seq IN (");
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                mark.push(", ");
            }
            mark.bind(e.seq);
        }
        mark.push(")").one_shot();
        mark.build().execute(&mut *tx).await?;
        db::commit(tx).await?;
        if !handed.is_empty() {
            // A consumer may have enqueued jobs for any tenant it was
            // handed events of: their job lists are stale (one tag per
            // tenant per batch, not per event).
            let tenants = handed
                .iter()
                .flat_map(|(_, wanted)| wanted.iter().map(|e| &e.tenant_id));
            self.cache.invalidate(&tags::jobs_of(tenants));
            self.jobs_wake.notify_waiters();
        }
        for (consumer, wanted) in &handed {
            consumer.after_commit(wanted);
        }
        if let Some(oldest) = events.first() {
            let lag = now.saturating_sub(oldest.created_at) as f64 / 1e6;
            metrics::histogram!("brisk_outbox_dispatch_lag_seconds").record(lag.max(0.0));
        }
        metrics::counter!("brisk_outbox_events_dispatched_total").increment(events.len() as u64);
        Ok(events.len())
    }
}

/// Age in seconds of the oldest event not yet dispatched (0 when none).
pub async fn lag_seconds(db: &Db) -> Result<f64, sqlx::Error> {
    let row = sql("SELECT MIN(created_at) AS oldest FROM outbox WHERE processed_at IS NULL")
        .fetch_one(db.reader())
        .await?;
    let oldest: Option<i64> = row.try_get("oldest")?;
    Ok(oldest.map_or(0.0, |t| now_micros().saturating_sub(t).max(0) as f64 / 1e6))
}

/// Deletes events dispatched before `cutoff` (micros); returns how many.
pub async fn prune_dispatched(db: &Db, cutoff: i64) -> Result<u64, sqlx::Error> {
    sql("DELETE FROM outbox WHERE processed_at IS NOT NULL AND processed_at < $1")
        .bind(cutoff)
        .execute(db.writer())
        .await
}

/// Listens for other nodes' commits (`NOTIFY brisk_outbox`, `brisk_jobs`)
/// and wakes the dispatcher and the job runner. PostgreSQL only; reconnects
/// after a lost connection (the slow poll covers the gap).
pub async fn listen_postgres(
    url: String,
    outbox: Arc<Notify>,
    jobs: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen_all(["brisk_outbox", "brisk_jobs"]).await?;
            loop {
                let note = listener.recv().await?;
                match note.channel() {
                    "brisk_jobs" => jobs.notify_waiters(),
                    _ => outbox.notify_waiters(),
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listener => {
                if let Err(err) = result {
                    tracing::warn!(error = %err, "outbox: notification listener lost; reconnecting");
                }
            }
            _ = stop.changed() => return,
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// On a node that runs no dispatcher (`BRISK_WORKERS=0`), tells the other
/// nodes that this one committed: at most one `NOTIFY brisk_outbox` per
/// few milliseconds, from its own short transaction.
pub async fn announce_postgres(db: Db, mut stop: watch::Receiver<bool>) {
    loop {
        let committed = db::committed().notified();
        tokio::select! {
            () = committed => {}
            _ = stop.changed() => return,
        }
        // Commits that land meanwhile share this one notification.
        tokio::time::sleep(Duration::from_millis(5)).await;
        if let Err(err) = sql("SELECT pg_notify('brisk_outbox', '')")
            .execute(db.writer())
            .await
        {
            tracing::debug!(error = %err, "outbox: could not announce a commit");
        }
    }
}
