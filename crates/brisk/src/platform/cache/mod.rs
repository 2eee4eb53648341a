//! The read cache: ready-to-send response bytes, kept in process (L1, moka)
//! and, with `BRISK_REDIS_URL`, in Redis (L2) shared by every node.
//!
//! Invariants:
//! - **Invalidated by events, never served stale by time.** Every entry is
//!   filed under tags (`t:{tenant}:catalog`, `t:{tenant}:product:{id}`, …;
//!   see [`tags`]). A write invalidates its tags once it committed. L1 keys
//!   carry the current version of each of their tags, so an invalidation
//!   makes every older entry unreachable at once — including one whose
//!   computation was still running when the write committed (it lands under
//!   the old versions, where no reader looks).
//! - **Every node hears every invalidation within a second**: the writing
//!   node applies it locally before it answers, then fans it out through
//!   Redis pub/sub (when configured) and PostgreSQL `NOTIFY brisk_cache`
//!   (always, on PostgreSQL); the outbox dispatcher repeats the invalidation
//!   for every event it hands over, so a node that died between its commit
//!   and its fan-out still has its write heard. A node that loses either
//!   subscription drops its whole L1 when it reconnects: it may have missed
//!   something while away.
//! - **L2 is checked, not trusted**: a Redis entry records the Redis clock
//!   read before its computation started; the read script refuses it when
//!   any of its tags was invalidated after that. Redis being down only
//!   costs speed: reads fall back to L1 and the database, readiness says
//!   `redis: down` without failing, and the client reconnects by itself.
//! - **Single flight**: concurrent misses on one key run one computation;
//!   the others wait for its bytes (or its error, which is not cached).
//! - **Bounded**: L1 weighs entries by their bytes (`BRISK_CACHE_MB`), and
//!   every entry also leaves after [`L1_TTL`] as a memory backstop (not a
//!   freshness rule: invalidation already removed anything stale).
//! - **Refresh without a stampede, within a stated bound**
//!   ([`Cache::get_or_refresh`], for reads invalidated many times a second
//!   such as the dashboard): after an invalidation, one caller recomputes in
//!   the background while the others get the previous bytes — but only
//!   bytes whose computation *started* less than the given grace ago. Those
//!   reflect every write committed before that start, so no write stays
//!   invisible for longer than the grace; past it, callers wait for the
//!   fresh bytes as any miss does.

mod encoding;
mod fanout;
mod redis;
pub mod tags;

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::Response;
use dashmap::DashMap;

use crate::platform::http::error::ApiResult;

pub use self::encoding::Cached;
pub use self::fanout::{Fanout, listen_postgres, listen_redis};
pub use self::redis::RedisLink;

/// Longest an L1 entry lives (a memory backstop, not a freshness rule).
pub const L1_TTL: Duration = Duration::from_secs(600);
/// Tag versions older than this are forgotten: every entry that could have
/// been filed under an older version has left L1 by then.
const TAG_MEMORY: Duration = Duration::from_secs(900);

/// The cache one node uses. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    /// Keys are `{key}|{tag versions}`; see [`Cache::versioned_key`].
    l1: moka::future::Cache<String, Arc<Cached>>,
    /// Tag → (version, when it was invalidated). A tag that is absent has
    /// version 0: it was not invalidated within [`TAG_MEMORY`].
    versions: DashMap<String, (u64, Instant)>,
    /// Source of versions: increasing, so a re-invalidated tag never reuses
    /// a version some older entry was filed under.
    clock: AtomicU64,
    l2: Option<RedisLink>,
    fanout: Fanout,
    /// Tags invalidated here whose stamps are not yet in Redis: L2 is not
    /// read or written for them meanwhile (it may still hold what they
    /// invalidated).
    pending: DashMap<String, u32>,
    /// For [`Cache::get_or_refresh`]: the newest bytes of each key
    /// (unversioned) and when their computation started. Entries leave
    /// after [`RECENT_TTL`], longer than any grace.
    recent: moka::sync::Cache<String, (Arc<Cached>, Instant)>,
    /// Keys whose background refresh is running (one at a time per key).
    refreshing: DashMap<String, ()>,
    /// Key → the versioned key its newest bytes were filed under in L1
    /// (see [`Cache::replace_older`]). Pruned by housekeeping of keys whose
    /// entry has left L1.
    current: DashMap<String, String>,
}

/// How long [`Inner::recent`] keeps bytes: past any grace a caller asks.
const RECENT_TTL: Duration = Duration::from_secs(2);

/// How big L1 may grow and where to fan invalidations out.
#[derive(Clone, Debug)]
pub struct CacheOptions {
    pub l1_bytes: u64,
}

impl Cache {
    pub fn new(options: CacheOptions, l2: Option<RedisLink>, fanout: Fanout) -> Cache {
        let l1 = moka::future::Cache::builder()
            .max_capacity(options.l1_bytes)
            .weigher(|key: &String, value: &Arc<Cached>| {
                let bytes = key.len() as u64 + value.weight();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(L1_TTL)
            .eviction_listener(|_key, _value, cause| {
                if cause.was_evicted() {
                    metrics::counter!("brisk_cache_evictions_total").increment(1);
                }
            })
            .build();
        Cache {
            inner: Arc::new(Inner {
                l1,
                versions: DashMap::new(),
                clock: AtomicU64::new(0),
                l2,
                fanout,
                pending: DashMap::new(),
                recent: moka::sync::Cache::builder()
                    .max_capacity(10_000)
                    .time_to_live(RECENT_TTL)
                    .build(),
                refreshing: DashMap::new(),
                current: DashMap::new(),
            }),
        }
    }

    /// An L1-only cache with no fan-out (unit tests, tools).
    pub fn local(l1_bytes: u64) -> Cache {
        Cache::new(CacheOptions { l1_bytes }, None, Fanout::none())
    }

    /// The cached bytes under `key`, or those `compute` produces, filed
    /// under `tags`. Concurrent callers with the same key and tag versions
    /// share one computation. An error is handed to every waiter and not
    /// kept.
    pub async fn get_or_compute<F, Fut, E>(
        &self,
        key: &str,
        tags: &[String],
        compute: F,
    ) -> Result<Arc<Cached>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let versioned = self.versioned_key(key, tags);
        let mut hit = true;
        let result = self
            .inner
            .l1
            .try_get_with(versioned.clone(), async {
                hit = false;
                self.fill(key, tags, compute).await.map(Arc::new)
            })
            .await;
        if hit {
            metrics::counter!("brisk_cache_hits_total", "layer" => "l1").increment(1);
        } else if result.is_ok() {
            self.replace_older(key, versioned).await;
        }
        result.map_err(|shared| (*shared).clone())
    }

    /// Drops the entry `key` had under older tag versions, now that
    /// `versioned` holds its current bytes: an invalidated entry can never
    /// be read again, and without this it would sit in L1 until evicted.
    /// Under a stream of writes (every order invalidates the catalog) such
    /// entries filled L1 to its bound (64 MiB of unreadable bytes measured).
    async fn replace_older(&self, key: &str, versioned: String) {
        let older = self.inner.current.insert(key.to_owned(), versioned.clone());
        if let Some(older) = older.filter(|older| *older != versioned) {
            self.inner.l1.invalidate(&older).await;
        }
    }

    /// Like [`Cache::get_or_compute`], for keys invalidated so often that
    /// every reader would otherwise wait for a recomputation: when the
    /// current bytes are missing but bytes whose computation started less
    /// than `grace` ago exist, those are returned at once and one
    /// background task computes the current ones. A write committed before
    /// the returned bytes' computation started is in them, so a write is
    /// never invisible for longer than `grace`.
    pub async fn get_or_refresh<F, Fut, E>(
        &self,
        key: &str,
        tags: &[String],
        grace: Duration,
        compute: F,
    ) -> Result<Arc<Cached>, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
        E: Clone + Send + Sync + 'static,
    {
        let versioned = self.versioned_key(key, tags);
        if let Some(current) = self.inner.l1.get(&versioned).await {
            metrics::counter!("brisk_cache_hits_total", "layer" => "l1").increment(1);
            return Ok(current);
        }
        let recent = self
            .inner
            .recent
            .get(key)
            .filter(|(_, started)| started.elapsed() < grace);
        let Some((bytes, _)) = recent else {
            return self.compute_recording(key, tags, compute).await;
        };
        metrics::counter!("brisk_cache_hits_total", "layer" => "recent").increment(1);
        if self.inner.refreshing.insert(key.to_owned(), ()).is_none() {
            let (cache, key, tags) = (self.clone(), key.to_owned(), tags.to_vec());
            tokio::spawn(async move {
                // An error is not kept; the next caller tries again.
                let _ = cache.compute_recording(&key, &tags, compute).await;
                cache.inner.refreshing.remove(&key);
            });
        }
        Ok(bytes)
    }

    /// [`Cache::get_or_compute`], remembering the bytes and when their
    /// computation started in [`Inner::recent`].
    async fn compute_recording<F, Fut, E>(
        &self,
        key: &str,
        tags: &[String],
        compute: F,
    ) -> Result<Arc<Cached>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let mut started = None;
        let started_here = &mut started;
        let cached = self
            .get_or_compute(key, tags, || async move {
                *started_here = Some(Instant::now());
                compute().await
            })
            .await?;
        // Only the caller that computed knows when its reads began.
        if let Some(started) = started {
            self.inner
                .recent
                .insert(key.to_owned(), (cached.clone(), started));
        }
        Ok(cached)
    }

    /// An L1 miss: L2 if it has a current entry, else the computation
    /// (whose bytes then go to L2 too).
    async fn fill<F, Fut, E>(&self, key: &str, tags: &[String], compute: F) -> Result<Cached, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let mut l2_clock = None;
        let l2 = self.inner.l2.as_ref().filter(|_| {
            self.inner.pending.is_empty()
                || !tags.iter().any(|t| self.inner.pending.contains_key(t))
        });
        if let Some(l2) = l2 {
            match l2.get(key).await {
                Some(redis::Lookup::Hit(bytes)) => {
                    metrics::counter!("brisk_cache_hits_total", "layer" => "l2").increment(1);
                    return Ok(Cached::new(bytes));
                }
                Some(redis::Lookup::Miss { clock }) => l2_clock = Some(clock),
                None => {}
            }
        }
        metrics::counter!("brisk_cache_misses_total").increment(1);
        let started = Instant::now();
        let bytes = compute().await?;
        metrics::histogram!("brisk_cache_compute_seconds").record(started.elapsed().as_secs_f64());
        if let (Some(l2), Some(clock)) = (l2, l2_clock) {
            l2.put(key, tags, clock, bytes.clone());
        }
        Ok(Cached::new(bytes))
    }

    /// `key` plus the current version of each tag: an entry filed under
    /// older versions is never found again.
    fn versioned_key(&self, key: &str, tags: &[String]) -> String {
        let mut versioned = String::with_capacity(key.len() + 4 * tags.len() + 1);
        versioned.push_str(key);
        versioned.push('|');
        for tag in tags {
            let version = self.inner.versions.get(tag).map_or(0, |v| v.0);
            // Writing into a String cannot fail.
            let _ = write!(versioned, "{version},");
        }
        versioned
    }

    /// Invalidates `tags` here at once, then on every other node (and in
    /// L2) through the fan-out. Call it after the write committed.
    pub fn invalidate(&self, tags: &[String]) {
        if tags.is_empty() {
            return;
        }
        self.invalidate_here(tags);
        let Some(l2) = self.inner.l2.clone() else {
            self.inner.fanout.send(tags);
            return;
        };
        for tag in tags {
            *self.inner.pending.entry(tag.clone()).or_insert(0) += 1;
        }
        // Redis first, then PostgreSQL: a node told through PostgreSQL must
        // not find the old entry still current in L2.
        let (cache, tags) = (self.clone(), tags.to_vec());
        tokio::spawn(async move {
            l2.invalidate(&tags).await;
            cache.inner.fanout.send(&tags);
            for tag in &tags {
                cache.inner.pending.remove_if_mut(tag, |_, n| {
                    *n -= 1;
                    *n == 0
                });
            }
        });
    }

    /// Once Redis is back after this node lost invalidations: raises the
    /// L2 floor and sends the lost ones again, to every node (or tells
    /// every node to drop its L1 when there were too many to name). Run it
    /// often; it does nothing while nothing was lost.
    pub async fn heal(&self) {
        let Some(l2) = &self.inner.l2 else { return };
        if !l2.needs_healing() {
            return;
        }
        let Some(lost) = l2.heal().await else { return };
        if lost.everything {
            self.clear_here();
            self.invalidate(&[fanout::CLEAR_ALL.to_owned()]);
        } else if !lost.tags.is_empty() {
            self.invalidate(&lost.tags.into_iter().collect::<Vec<_>>());
        }
    }

    /// Waits (at most `limit`) until every invalidation of this node has
    /// reached Redis: a graceful stop calls it so none is lost.
    pub async fn settle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.inner.pending.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Invalidates `tags` in this node's L1 only (what a fan-out message
    /// from another node does).
    pub fn invalidate_here(&self, tags: &[String]) {
        let now = Instant::now();
        for tag in tags {
            let version = self.inner.clock.fetch_add(1, Ordering::Relaxed) + 1;
            self.inner.versions.insert(tag.clone(), (version, now));
        }
        metrics::counter!("brisk_cache_invalidations_total").increment(tags.len() as u64);
    }

    /// Drops every L1 entry: after this node may have missed invalidations.
    pub fn clear_here(&self) {
        // A new version for every known tag is not enough (a tag first
        // invalidated while we were away is unknown here), so drop all.
        self.inner.l1.invalidate_all();
        self.inner.current.clear();
        metrics::counter!("brisk_cache_clears_total").increment(1);
    }

    /// Forgets tag versions nobody can still be filed under; run every
    /// minute or so.
    pub async fn housekeeping(&self) {
        let now = Instant::now();
        self.inner
            .versions
            .retain(|_, (_, at)| now.duration_since(*at) < TAG_MEMORY);
        self.inner.l1.run_pending_tasks().await;
        let l1 = &self.inner.l1;
        self.inner
            .current
            .retain(|_, versioned| l1.contains_key(versioned.as_str()));
    }

    /// Whether L2 answers (for readiness): `None` without Redis.
    pub async fn redis_up(&self) -> Option<bool> {
        match &self.inner.l2 {
            Some(l2) => Some(l2.ping().await),
            None => None,
        }
    }

    /// How this node tells the others.
    pub fn fanout(&self) -> &Fanout {
        &self.inner.fanout
    }

    /// The Redis link, for what shares it (rate limits, fan-out).
    pub fn redis(&self) -> Option<&RedisLink> {
        self.inner.l2.as_ref()
    }

    /// L1's weight in bytes and entry count (for tests and metrics).
    pub fn l1_size(&self) -> (u64, u64) {
        (self.inner.l1.weighted_size(), self.inner.l1.entry_count())
    }
}

impl Cache {
    /// A GET answered from the cache: `compute` (which does the database
    /// work and serializes) runs only on a miss; a hit costs no statement,
    /// and a matching `If-None-Match` gets a 304 from the cached ETag.
    pub async fn respond_with<F, Fut>(
        &self,
        request: &HeaderMap,
        key: &str,
        tags: &[String],
        compute: F,
    ) -> ApiResult<Response>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ApiResult<Bytes>>,
    {
        let cached = self.get_or_compute(key, tags, compute).await?;
        Ok(cached.respond(request))
    }
}

/// Serves cached bytes as a JSON response: `304` when `If-None-Match`
/// names its ETag (no database work at all), else the body in the best
/// encoding the client accepts, compressed once and kept.
pub fn respond(cached: &Cached, request: &HeaderMap) -> Response {
    cached.respond(request)
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
