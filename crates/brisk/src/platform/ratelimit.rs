//! Keyed rate limits (per tenant, per login e-mail, per client IP for
//! logins and for public share-link hits), as buckets of N that refill
//! evenly over a minute.
//!
//! With Redis, a limit is one GCRA check in Redis (one round trip, Redis's
//! own clock), so it holds across every node; while Redis is away each
//! node falls back to its own in-process bucket for that key, which keeps
//! the limit per node rather than refusing everything.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::platform::cache::RedisLink;

/// A per-key limit of N per minute; `0` disables it.
#[derive(Clone)]
pub struct KeyedLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    per_minute: u32,
    /// Shared across nodes: the limit's name and the Redis link.
    shared: Option<(&'static str, RedisLink)>,
}

impl KeyedLimit {
    /// A limit of this node alone.
    pub fn per_minute(n: u32) -> Self {
        KeyedLimit {
            limiter: NonZeroU32::new(n).map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n)))),
            per_minute: n,
            shared: None,
        }
    }

    /// A limit every node shares through Redis (`name` keeps limits apart).
    pub fn shared(n: u32, name: &'static str, redis: Option<RedisLink>) -> Self {
        KeyedLimit {
            shared: redis.map(|link| (name, link)),
            ..KeyedLimit::per_minute(n)
        }
    }

    /// Takes one unit for `key`; when none is left, the seconds until one is.
    pub async fn check(&self, key: &str) -> Result<(), u64> {
        if self.limiter.is_none() {
            return Ok(());
        }
        if let Some((name, link)) = &self.shared
            && let Some(answer) = link.take(&format!("{name}:{key}"), self.per_minute).await
        {
            return answer;
        }
        self.check_here(key)
    }

    /// The in-process bucket (alone, or while Redis is away).
    fn check_here(&self, key: &str) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets keys whose buckets are full again, so memory stays bounded
    /// however many distinct keys pass by.
    pub fn forget_idle_keys(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The limits one node enforces. Cheap to clone: every authenticated
/// request takes a copy.
#[derive(Clone)]
pub struct Limits(Arc<LimitSet>);

impl std::ops::Deref for Limits {
    type Target = LimitSet;
    fn deref(&self) -> &LimitSet {
        &self.0
    }
}

/// The limits behind [`Limits`].
pub struct LimitSet {
    pub tenant_requests: KeyedLimit,
    pub login_by_email: KeyedLimit,
    pub login_by_ip: KeyedLimit,
    /// Public share-link hits per client IP.
    pub public_by_ip: KeyedLimit,
}

/// Each limit's N per minute (0 = off).
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    pub requests_per_minute: u32,
    pub logins_per_minute: u32,
    pub public_per_minute: u32,
}

impl Limits {
    /// Limits shared through `redis` when given, else this node's own.
    pub fn new(settings: LimitSettings, redis: Option<RedisLink>) -> Self {
        Limits(Arc::new(LimitSet {
            tenant_requests: KeyedLimit::shared(
                settings.requests_per_minute,
                "tenant",
                redis.clone(),
            ),
            login_by_email: KeyedLimit::shared(
                settings.logins_per_minute,
                "login-email",
                redis.clone(),
            ),
            login_by_ip: KeyedLimit::shared(settings.logins_per_minute, "login-ip", redis.clone()),
            public_by_ip: KeyedLimit::shared(settings.public_per_minute, "public-ip", redis),
        }))
    }

    /// Forgets full buckets, so the key maps stay small; run every minute.
    pub fn housekeeping(&self) {
        self.tenant_requests.forget_idle_keys();
        self.login_by_email.forget_idle_keys();
        self.login_by_ip.forget_idle_keys();
        self.public_by_ip.forget_idle_keys();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn allows_n_then_refuses_with_a_wait() {
        let limit = KeyedLimit::per_minute(3);
        for _ in 0..3 {
            assert!(limit.check("a").await.is_ok());
        }
        let wait = limit.check("a").await.unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limit.check("b").await.is_ok(), "keys are independent");
        assert!(KeyedLimit::per_minute(0).check("a").await.is_ok());
    }
}
