//! Redis as L2, as the fast invalidation fan-out between nodes, and as the
//! store of shared rate limits. One multiplexed, self-reconnecting
//! connection per node for commands, one subscriber connection.
//!
//! Every check is one round trip (a Lua script run by `EVALSHA`). When
//! Redis does not answer within [`RESPONSE_TIMEOUT`], the link stays away
//! from it for [`BACKOFF`] — callers fall back to L1, the database and
//! in-process limits — and tries again after.
//!
//! L2 entries are hashes `{c: clock at compute start, t: tags, b: bytes}`;
//! an invalidation takes the next value of `brisk:clock` and stamps each
//! tag with it (`brisk:tag:{tag}`), so an entry is current while no tag of
//! its carries a stamp above its `c`. A node that could not deliver an
//! invalidation stops using L2 and remembers the tags; once Redis answers
//! again it raises `brisk:floor` to the clock (entries computed before are
//! refused: one of them may have missed the lost invalidation) and hands
//! the tags back to the cache to invalidate again everywhere — another
//! node may meanwhile have taken such an entry from L2 into its L1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script, Value};

/// A command slower than this counts as Redis being away.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long to leave Redis alone after it failed.
const BACKOFF: Duration = Duration::from_millis(250);
/// Lost tags remembered one by one up to this many; past it, every node is
/// told to drop its whole L1 instead.
const LOST_TAGS: usize = 10_000;
/// How long an L2 entry lives (memory bound in Redis, not freshness).
const ENTRY_TTL_SECS: u64 = 3600;
/// How long a tag's stamp is kept: longer than any entry lives.
const TAG_TTL_SECS: u64 = 86_400;
/// The pub/sub channel invalidations travel on.
pub const CHANNEL: &str = "brisk:invalidate";

const GET: &str = r#"
local clock = tonumber(redis.call('GET', KEYS[2]) or '0')
local e = redis.call('HMGET', KEYS[1], 'c', 't', 'b')
if not e[1] then return {0, clock} end
local c = tonumber(e[1])
local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
if c < floor then return {0, clock} end
for tag in string.gmatch(e[2], '[^\n]+') do
  local stamp = redis.call('GET', 'brisk:tag:' .. tag)
  if stamp and tonumber(stamp) > c then return {0, clock} end
end
return {1, e[3]}
"#;

const PUT: &str = r#"
redis.call('HSET', KEYS[1], 'c', ARGV[1], 't', ARGV[2], 'b', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"#;

const INVALIDATE: &str = r#"
local n = redis.call('INCR', KEYS[1])
for i = 3, #ARGV do
  redis.call('SET', 'brisk:tag:' .. ARGV[i], n, 'EX', ARGV[2])
end
redis.call('PUBLISH', KEYS[2], ARGV[1])
return n
"#;

const RAISE_FLOOR: &str = r#"
local n = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], n)
return n
"#;

/// GCRA: a key's theoretical arrival time, in milliseconds of Redis's own
/// clock (one clock for every node). ARGV: interval ms, burst.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
"#;

/// Invalidations that did not reach Redis.
#[derive(Debug, Default)]
pub struct Lost {
    pub tags: std::collections::BTreeSet<String>,
    /// Too many to name: every node must drop its whole L1.
    pub everything: bool,
}

/// The answer of an L2 read.
pub enum Lookup {
    Hit(Bytes),
    /// No current entry; `clock` is what to store the computed one under.
    Miss {
        clock: u64,
    },
}

/// This node's link to Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Link>,
}

struct Link {
    client: Client,
    commands: ConnectionManager,
    get: Script,
    put: Script,
    invalidate: Script,
    raise_floor: Script,
    gcra: Script,
    /// Millis since `started` before which Redis is not tried.
    away_until: AtomicU64,
    started: Instant,
    /// An invalidation was lost while Redis was away: L2 is not used
    /// until [`RedisLink::heal`] raised the floor.
    lost_invalidation: AtomicBool,
    lost: std::sync::Mutex<Lost>,
    /// Tells this node's own fan-out messages from other nodes'.
    node: String,
}

impl RedisLink {
    /// A link that connects lazily: a Redis that is down at start only
    /// means the node starts without L2.
    pub fn new(url: &str, node: String) -> Result<RedisLink, redis::RedisError> {
        let client = Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(RedisLink {
            inner: Arc::new(Link {
                client,
                commands,
                get: Script::new(GET),
                put: Script::new(PUT),
                invalidate: Script::new(INVALIDATE),
                raise_floor: Script::new(RAISE_FLOOR),
                gcra: Script::new(GCRA),
                away_until: AtomicU64::new(0),
                started: Instant::now(),
                lost_invalidation: AtomicBool::new(false),
                lost: std::sync::Mutex::new(Lost::default()),
                node,
            }),
        })
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    pub(super) fn client(&self) -> &Client {
        &self.inner.client
    }

    fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    fn available(&self) -> bool {
        self.now_ms() >= self.inner.away_until.load(Ordering::Relaxed)
    }

    fn went_away(&self, error: &redis::RedisError) {
        let until = self.now_ms() + BACKOFF.as_millis() as u64;
        if self.inner.away_until.swap(until, Ordering::Relaxed) <= self.now_ms() {
            tracing::warn!(error = %error, "redis is away; serving without it");
        }
        metrics::counter!("brisk_redis_errors_total").increment(1);
    }

    /// Runs `script`, or `None` when Redis is away or fails.
    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Option<Value> {
        if !self.available() {
            return None;
        }
        let mut connection = self.inner.commands.clone();
        match invocation.invoke_async::<Value>(&mut connection).await {
            Ok(value) => Some(value),
            Err(error) => {
                self.went_away(&error);
                None
            }
        }
    }

    /// Whether an invalidation was lost and not yet healed.
    pub fn needs_healing(&self) -> bool {
        self.inner.lost_invalidation.load(Ordering::Acquire)
    }

    /// After lost invalidations, once Redis answers: refuses every entry
    /// older than now and hands back what was lost, for the cache to
    /// invalidate again on every node. `None` while Redis is still away.
    pub async fn heal(&self) -> Option<Lost> {
        if !self.available() {
            return None;
        }
        let mut connection = self.inner.commands.clone();
        let raised = self
            .inner
            .raise_floor
            .key("brisk:clock")
            .key("brisk:floor")
            .invoke_async::<u64>(&mut connection)
            .await;
        match raised {
            Ok(_) => {
                let lost = self
                    .inner
                    .lost
                    .lock()
                    .map(|mut lost| std::mem::take(&mut *lost))
                    .unwrap_or_default();
                self.inner.lost_invalidation.store(false, Ordering::Release);
                tracing::info!("redis is back; older L2 entries are refused");
                Some(lost)
            }
            Err(error) => {
                self.went_away(&error);
                None
            }
        }
    }

    fn remember_lost(&self, tags: &[String]) {
        if let Ok(mut lost) = self.inner.lost.lock()
            && !lost.everything
        {
            lost.tags.extend(tags.iter().cloned());
            if lost.tags.len() > LOST_TAGS {
                lost.tags.clear();
                lost.everything = true;
            }
        }
        self.inner.lost_invalidation.store(true, Ordering::Release);
    }

    /// The current L2 entry under `key`; `None` when Redis is away or an
    /// invalidation of this node's is lost.
    pub async fn get(&self, key: &str) -> Option<Lookup> {
        if self.needs_healing() {
            return None;
        }
        let mut invocation = self.inner.get.key(entry_key(key));
        invocation.key("brisk:clock").key("brisk:floor");
        match self.run(invocation).await? {
            Value::Array(items) => match items.as_slice() {
                [Value::Int(1), Value::BulkString(bytes)] => {
                    Some(Lookup::Hit(Bytes::copy_from_slice(bytes)))
                }
                [Value::Int(0), Value::Int(clock)] => Some(Lookup::Miss {
                    clock: u64::try_from(*clock).unwrap_or(0),
                }),
                _ => None,
            },
            _ => None,
        }
    }

    /// Stores computed bytes in the background (the reader does not wait).
    pub fn put(&self, key: &str, tags: &[String], clock: u64, bytes: Bytes) {
        let link = self.clone();
        let key = entry_key(key);
        let tags = tags.join("\n");
        tokio::spawn(async move {
            let mut invocation = link.inner.put.key(key);
            invocation
                .arg(clock)
                .arg(tags)
                .arg(bytes.as_ref())
                .arg(ENTRY_TTL_SECS);
            link.run(invocation).await;
        });
    }

    /// Stamps `tags` as invalidated in L2 and publishes them to every
    /// node; a failure is remembered (see the module).
    pub async fn invalidate(&self, tags: &[String]) {
        let message = format!("{}\n{}", self.inner.node, tags.join("\n"));
        let mut invocation = self.inner.invalidate.key("brisk:clock");
        invocation.key(CHANNEL).arg(message).arg(TAG_TTL_SECS);
        for tag in tags {
            invocation.arg(tag);
        }
        if self.run(invocation).await.is_none() {
            self.remember_lost(tags);
        }
    }

    /// GCRA check of one unit against `per_minute` for `key`: `Some(Ok)`
    /// allowed, `Some(Err(seconds))` refused, `None` when Redis is away
    /// (the caller falls back to its own limiter).
    pub async fn take(&self, key: &str, per_minute: u32) -> Option<Result<(), u64>> {
        let interval_ms = 60_000 / u64::from(per_minute.max(1));
        let mut invocation = self.inner.gcra.key(format!("brisk:limit:{key}"));
        invocation.arg(interval_ms.max(1)).arg(per_minute);
        match self.run(invocation).await? {
            Value::Int(0) => Some(Ok(())),
            Value::Int(wait_ms) => Some(Err(u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000))),
            _ => None,
        }
    }

    /// Whether Redis answers a PING now (readiness).
    pub async fn ping(&self) -> bool {
        let mut connection = self.inner.commands.clone();
        let pong = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await;
        matches!(pong, Ok(Ok(_)))
    }
}

fn entry_key(key: &str) -> String {
    format!("brisk:entry:{key}")
}
