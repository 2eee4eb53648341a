//! How an invalidation reaches the other nodes: PostgreSQL `NOTIFY
//! brisk_cache` (on PostgreSQL, always) and Redis pub/sub (with Redis).
//! Either alone is enough; both together mean a node that lost one still
//! hears the other. The notification is sent after the business commit,
//! from its own statement: a `NOTIFY` inside the business transaction
//! would take PostgreSQL's commit-time notify lock and serialize writes.
//!
//! Messages are `{node}\n{tag}\n{tag}…`; a node ignores its own (it
//! applied them before it answered). Tags queued within a few milliseconds
//! share one notification.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::Cache;

/// A tag that tells the receiving nodes to drop their whole L1.
pub const CLEAR_ALL: &str = "*";

/// The PostgreSQL channel.
pub const PG_CHANNEL: &str = "brisk_cache";
/// PostgreSQL refuses payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7000;
/// How long queued tags wait for company before they are sent.
const COALESCE: Duration = Duration::from_millis(2);

type Queue = Arc<Mutex<Option<mpsc::UnboundedReceiver<Vec<String>>>>>;

/// The sending side, held by the cache. Cheap to clone.
#[derive(Clone)]
pub struct Fanout {
    node: String,
    postgres: Option<mpsc::UnboundedSender<Vec<String>>>,
    queue: Queue,
}

impl Fanout {
    /// No other node to tell (SQLite, tests).
    pub fn none() -> Fanout {
        Fanout {
            node: String::new(),
            postgres: None,
            queue: Arc::new(Mutex::new(None)),
        }
    }

    /// Tells the other nodes through PostgreSQL; [`Fanout::send_postgres`]
    /// must run for anything to leave.
    pub fn postgres(node: String) -> Fanout {
        let (sender, receiver) = mpsc::unbounded_channel();
        Fanout {
            node,
            postgres: Some(sender),
            queue: Arc::new(Mutex::new(Some(receiver))),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub(super) fn send(&self, tags: &[String]) {
        if let Some(sender) = &self.postgres {
            // Closed only once the sender task stopped, at shutdown.
            let _ = sender.send(tags.to_vec());
        }
    }

    /// Sends queued invalidations as `NOTIFY brisk_cache` until `stop`,
    /// then sends what is left.
    ///
    /// It sends on a connection of its own, not one of the request pool: a
    /// burst of writes queued for the pool must not hold back the news of
    /// the writes already committed.
    pub async fn send_postgres(self, url: String, mut stop: watch::Receiver<bool>) {
        let receiver = self.queue.lock().ok().and_then(|mut q| q.take());
        let Some(mut receiver) = receiver else {
            return;
        };
        let mut link = Notifier {
            url,
            connection: None,
        };
        loop {
            let first = tokio::select! {
                tags = receiver.recv() => tags,
                _ = stop.changed() => None,
            };
            let Some(mut tags) = first else { break };
            tokio::time::sleep(COALESCE).await;
            while let Ok(more) = receiver.try_recv() {
                tags.extend(more);
            }
            link.notify(&self.node, tags).await;
        }
        let mut rest = Vec::new();
        while let Ok(more) = receiver.try_recv() {
            rest.extend(more);
        }
        if !rest.is_empty() {
            link.notify(&self.node, rest).await;
        }
        if let Some(connection) = link.connection.take() {
            let _ = sqlx::Connection::close(connection).await;
        }
    }
}

/// The notifier's own PostgreSQL connection, opened on first use and again
/// after it failed.
struct Notifier {
    url: String,
    connection: Option<sqlx::PgConnection>,
}

impl Notifier {
    async fn notify(&mut self, node: &str, mut tags: Vec<String>) {
        use sqlx::Connection;
        tags.sort_unstable();
        tags.dedup();
        for payload in payloads(node, &tags) {
            // One retry on a fresh connection: the old one may have died
            // since the last message.
            for attempt in 0..2 {
                let connection = match self.connection.as_mut() {
                    Some(connection) => connection,
                    None => match sqlx::PgConnection::connect(&self.url).await {
                        Ok(connection) => self.connection.insert(connection),
                        Err(err) => {
                            tracing::warn!(error = %err, "cache: cannot reach PostgreSQL to notify other nodes");
                            break;
                        }
                    },
                };
                let sent = sqlx::query("SELECT pg_notify('brisk_cache', $1)")
                    .bind(&payload)
                    .execute(&mut *connection)
                    .await;
                match sent {
                    Ok(_) => break,
                    Err(err) => {
                        self.connection = None;
                        if attempt == 1 {
                            // The dispatcher repeats event-borne invalidations,
                            // and a node whose listener lost its connection
                            // clears its L1.
                            tracing::warn!(error = %err, "cache: could not notify other nodes");
                        }
                    }
                }
            }
        }
    }
}

/// `tags` cut into messages under PostgreSQL's payload limit.
fn payloads(node: &str, tags: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = node.to_owned();
    for tag in tags {
        if current.len() + tag.len() + 1 > MAX_PAYLOAD && current.len() > node.len() {
            out.push(std::mem::replace(&mut current, node.to_owned()));
        }
        current.push('\n');
        current.push_str(tag);
    }
    if current.len() > node.len() {
        out.push(current);
    }
    out
}

/// Applies another node's message to this node's L1.
fn apply(cache: &Cache, node: &str, message: &str) {
    let mut lines = message.split('\n');
    if lines.next() == Some(node) {
        return;
    }
    let tags: Vec<String> = lines.filter(|t| !t.is_empty()).map(str::to_owned).collect();
    if tags.iter().any(|t| t == CLEAR_ALL) {
        cache.clear_here();
    } else {
        cache.invalidate_here(&tags);
    }
}

/// Listens on `brisk_cache` and applies other nodes' invalidations. Every
/// (re)connection clears L1 first: messages sent while it was away are
/// lost.
pub async fn listen_postgres(
    cache: Cache,
    url: String,
    node: String,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let listener = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(PG_CHANNEL).await?;
            cache.clear_here();
            loop {
                let note = listener.recv().await?;
                apply(&cache, &node, note.payload());
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            result = listener => {
                if let Err(err) = result {
                    tracing::warn!(error = %err, "cache: invalidation listener lost; reconnecting");
                }
            }
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Subscribes to Redis's invalidation channel and applies other nodes'
/// messages; clears L1 on every (re)subscription, as above.
pub async fn listen_redis(cache: Cache, mut stop: watch::Receiver<bool>) {
    use futures_util::StreamExt;
    let Some(link) = cache.redis().cloned() else {
        return;
    };
    let node = link.node().to_owned();
    loop {
        let subscription = async {
            let mut pubsub = link.client().get_async_pubsub().await?;
            pubsub.subscribe(super::redis::CHANNEL).await?;
            cache.clear_here();
            tracing::info!("cache: subscribed to redis invalidations");
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                if let Ok(text) = message.get_payload::<String>() {
                    apply(&cache, &node, &text);
                }
            }
            Ok::<(), redis::RedisError>(())
        };
        tokio::select! {
            result = subscription => {
                // The next subscription clears L1: what was sent meanwhile
                // is lost. Not now: while Redis stays down, L1 (kept fresh
                // by this node's writes and PostgreSQL's channel) serves.
                match result {
                    Ok(()) => tracing::warn!("cache: redis subscription ended; resubscribing"),
                    Err(err) => tracing::debug!(error = %err, "cache: redis subscription failed"),
                }
            }
            _ = stop.changed() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_stay_under_the_limit_and_keep_every_tag() {
        let tags: Vec<String> = (0..2000)
            .map(|i| format!("t:tenant:product:{i:020}"))
            .collect();
        let out = payloads("node", &tags);
        assert!(out.len() > 1);
        let mut seen = 0;
        for p in &out {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            assert!(p.starts_with("node\n"));
            seen += p.split('\n').skip(1).count();
        }
        assert_eq!(seen, tags.len());
        assert!(payloads("node", &[]).is_empty());
    }
}
